//! The shipped EC2 catalogue is valid (every figure sourced or explicitly unknown, units in
//! range, figures consistent) and covers the families the issue names; the rules catch a
//! unit mistake and a dangling source.

use hardware::catalogue::{Catalogue, Figure, EC2_TOML};

#[test]
fn the_shipped_catalogue_is_valid_and_covers_the_named_families() {
    let c = Catalogue::shipped().unwrap();
    let problems = c.problems();
    assert!(problems.is_empty(), "{problems:#?}");
    for family in [
        "i3en", "i4i", "i7ie", "im4gn", "is4gen", "m6i", "m7i", "m7g", "r6i", "m6id", "c6gn",
        "c7gn",
    ] {
        assert!(
            c.instance.iter().filter(|i| i.family == family).count() >= 3,
            "{family}: fewer than three sizes"
        );
    }
    // Spot checks against the source (storage-optimized-instances.md, ebs-optimized.md).
    let i = c.find("i3en.6xlarge").unwrap();
    assert_eq!(i.vcpus.value(), Some(24.0));
    assert_eq!(i.instance_store_disks.value(), Some(2.0));
    assert_eq!(i.ebs_max_mbps.value(), Some(4750.0));
    let m = c.find("m6i.xlarge").unwrap();
    assert_eq!(m.network_baseline_gbps.value(), Some(1.562));
    assert_eq!(m.network_burst_gbps.value(), Some(12.5));
    // Prices: every type has one, from the dated Karpenter table (spot checks against it).
    assert!(c
        .instance
        .iter()
        .all(|i| matches!(&i.on_demand_usd_per_hour, Figure::Known { source, .. } if source == "karpenter-prices")));
    assert_eq!(
        c.find("i3en.large").unwrap().on_demand_usd_per_hour.value(),
        Some(0.226)
    );
    assert_eq!(
        c.find("i7ie.6xlarge")
            .unwrap()
            .on_demand_usd_per_hour
            .value(),
        Some(3.1188)
    );
    // Honesty: what we could not source stays unknown rather than guessed.
    assert!(c.find("i7ie.xlarge").unwrap().vcpus.value().is_none());
    let known: usize = c
        .instance
        .iter()
        .flat_map(|i| i.figures())
        .filter(|(_, f)| matches!(f, Figure::Known { .. }))
        .count();
    assert!(known > 300, "only {known} sourced figures");
}

#[test]
fn unit_mistakes_and_dangling_sources_are_named() {
    let bad_memory = EC2_TOML.replacen(
        "memory_gib = { value = 16, source = \"aws-gp\" }",
        "memory_gib = { value = 16384, source = \"aws-gp\" }",
        1,
    );
    assert_ne!(bad_memory, EC2_TOML);
    let problems = Catalogue::parse(&bad_memory).unwrap().problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("m6i.xlarge") && p.contains("GiB per vCPU")),
        "{problems:#?}"
    );
    let dangling = EC2_TOML.replacen("source = \"aws-so\"", "source = \"aws-nowhere\"", 1);
    let problems = Catalogue::parse(&dangling).unwrap().problems();
    assert!(
        problems.iter().any(|p| p.contains("aws-nowhere")),
        "{problems:#?}"
    );
    let undated = EC2_TOML.replacen("date = \"2023-06-15\"", "date = \"June 2023\"", 1);
    let problems = Catalogue::parse(&undated).unwrap().problems();
    assert!(
        problems.iter().any(|p| p.contains("YYYY-MM-DD")),
        "{problems:#?}"
    );
    let typo = EC2_TOML.replacen("vcpus = {", "vcpu = {", 1);
    assert!(
        Catalogue::parse(&typo).is_err(),
        "an unknown key must be refused"
    );
}
