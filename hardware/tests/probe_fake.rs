//! The probe against the fake EC2-like host tree: every group reads its files, severities
//! follow the recommendations.

use hardware::fake_host;
use hardware::probe::{probe, Severity};
use hardware::root::HostRoot;
use std::path::Path;

fn item<'a>(report: &'a hardware::probe::Report, name: &str) -> &'a hardware::probe::Item {
    report
        .items
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no item {name} in {:#?}", report.items))
}

#[test]
fn probe_reads_every_group_of_the_fake_host() {
    let dir = tempfile::tempdir().unwrap();
    fake_host::build(dir.path()).unwrap();
    let root = HostRoot::fake(dir.path());
    let report = probe(&root, Some(Path::new("/var/lib/weir/logs")));
    let expect = [
        ("cpu.online", Some("4"), Severity::Info),
        ("cpu.smt_siblings", Some("2"), Severity::Info),
        ("cpu.numa_nodes", Some("1"), Severity::Info),
        ("cpu.governor", Some("powersave"), Severity::Warning),
        ("memory.total_bytes", Some("67108864000"), Severity::Ok),
        ("vm.swappiness", Some("60"), Severity::Warning),
        (
            "memory.transparent_hugepage",
            Some("always"),
            Severity::Warning,
        ),
        ("kernel.version", Some("6.1.0-18-cloud-amd64"), Severity::Ok),
        ("kernel.io_uring_disabled", Some("0"), Severity::Ok),
        ("kernel.clocksource", Some("xen"), Severity::Warning),
        ("limits.memlock_bytes", Some("65536"), Severity::Critical),
        ("limits.nofile", Some("1024"), Severity::Warning),
        ("fs.aio-max-nr", Some("65536"), Severity::Warning),
        ("disk.filesystem", Some("xfs"), Severity::Ok),
        (
            "disk.nvme1n1.scheduler",
            Some("mq-deadline"),
            Severity::Warning,
        ),
        ("disk.nvme1n1.rotational", Some("0"), Severity::Ok),
        (
            "disk.nvme1n1.model",
            Some("Amazon EC2 NVMe Instance Storage"),
            Severity::Info,
        ),
        ("net.eth0.driver", Some("ena"), Severity::Info),
        ("net.eth0.speed_mbps", Some("25000"), Severity::Info),
        ("net.eth0.queues", Some("rx 2 tx 2"), Severity::Info),
        (
            "net.eth0.irq_affinity",
            Some("50:0-3 51:0-3 52:0-3"),
            Severity::Warning,
        ),
        ("net.core.somaxconn", Some("128"), Severity::Warning),
    ];
    for (name, value, severity) in expect {
        let i = item(&report, name);
        assert_eq!(i.value.as_deref(), value, "{name}");
        assert_eq!(i.severity, severity, "{name}");
    }
    assert_eq!(
        item(&report, "disk.mount").value.as_deref(),
        Some("/dev/nvme1n1 on /var/lib/weir")
    );
    assert!(!report.items.iter().any(|i| i.name.starts_with("net.lo")));
    assert_eq!(report.worst(), Severity::Critical);
}

#[test]
fn missing_knobs_are_not_applicable_rather_than_errors() {
    let dir = tempfile::tempdir().unwrap();
    let report = probe(&HostRoot::fake(dir.path()), Some(Path::new("/data")));
    assert!(!report.items.is_empty());
    for i in &report.items {
        assert_eq!(i.value, None, "{} read from an empty tree", i.name);
        assert_eq!(i.severity, Severity::NotApplicable, "{}", i.name);
    }
}
