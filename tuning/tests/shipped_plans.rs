//! The plans shipped in tuning/plans/ parse, fit their budgets with --local, and take about as
//! long as their comments say (quick ≈ 5 min, standard ≈ 1 h, latency ≈ 20 min, at most).

use std::path::Path;

use tuning::plan::SweepPlan;

fn load(name: &str) -> SweepPlan {
    SweepPlan::load(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(name),
    )
    .unwrap()
}

#[test]
fn every_shipped_plan_fits_its_budget_and_its_stated_duration() {
    for (name, minutes, points) in [
        ("quick.toml", 4.0..=6.0, 24),
        ("standard.toml", 50.0..=65.0, 162),
        ("latency.toml", 15.0..=20.0, 45),
    ] {
        let plan = load(name);
        let estimate_min = plan.check_budget(true).unwrap() / 60.0;
        assert!(
            minutes.contains(&estimate_min),
            "{name}: {estimate_min} min"
        );
        assert_eq!(plan.points().unwrap().len(), points, "{name}");
    }
    // The closing sweep: at least 3 linger x 3 batch x 3 codecs x acks 1/all.
    let standard = load("standard.toml").axes;
    assert!(standard.linger_ms.len() >= 3 && standard.batch_size.len() >= 3);
    assert!(standard.compression.len() >= 3 && standard.acks == ["1", "all"]);
}
