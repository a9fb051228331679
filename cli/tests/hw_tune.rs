//! `weir hw tune` on the fake host tree (never the real host): --check lists every tuner,
//! --dry-run changes nothing, --apply then --revert restores the files byte for byte, bad
//! tuner names are refused by name.

use std::path::Path;
use std::process::{Command, Output};

fn weir(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["hw", "tune", "--root", root.to_str().unwrap()];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--data-dir",
        hardware::fake_host::DATA_DIR,
        "--ballast-bytes",
        "65536",
    ]);
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(&all)
        .output()
        .expect("running weir")
}

fn ok(root: &Path, args: &[&str]) -> String {
    let out = weir(root, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for rel in [
        "proc/sys/vm/swappiness",
        "proc/sys/fs/aio-max-nr",
        "sys/devices/pci0000:00/0000:00:04.0/nvme/nvme1/nvme1n1/queue/scheduler",
        "proc/irq/50/smp_affinity_list",
        "proc/sys/kernel/core_pattern",
    ] {
        out.push((rel.to_string(), std::fs::read(root.join(rel)).unwrap()));
    }
    out
}

#[test]
fn check_apply_revert_through_the_cli_on_a_fake_host() {
    let dir = tempfile::tempdir().unwrap();
    hardware::fake_host::build(dir.path()).unwrap();
    let root = dir.path();
    let before = files(root);
    let check = ok(root, &["--check"]);
    for tuner in hardware::tune::all() {
        assert!(
            check.contains(tuner.name()),
            "{} missing from {check}",
            tuner.name()
        );
    }
    assert!(
        check.contains("\"powersave\" -> \"performance\""),
        "{check}"
    );
    let dry = ok(root, &["--apply", "--dry-run"]);
    assert!(dry.contains("would change"), "{dry}");
    assert_eq!(files(root), before);
    let applied = ok(root, &["--apply", "--only", "swappiness,disk_scheduler"]);
    assert!(applied.contains("changed"), "{applied}");
    let after = files(root);
    assert_eq!(after[0].1, b"1");
    assert_eq!(after[2].1, b"mq-deadline [none]\n");
    assert_eq!(after[1], before[1], "aio_max_nr was not asked for");
    assert!(ok(root, &["--check", "--only", "swappiness"]).contains("ok"));
    let reverted = ok(root, &["--revert"]);
    assert!(reverted.contains("restored"), "{reverted}");
    assert_eq!(files(root), before);
    assert!(ok(root, &["--revert"]).contains("nothing to revert"));
}

#[test]
fn unknown_tuners_and_missing_modes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = weir(dir.path(), &["--check", "--only", "swapiness"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("swapiness") && err.contains("swappiness"),
        "{err}"
    );
    let out = weir(dir.path(), &[]);
    assert!(!out.status.success(), "no mode must be an error");
}
