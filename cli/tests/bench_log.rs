//! `weir bench log` end to end on a small size: every figure is present and positive, and no data
//! file is left behind.

use std::process::Command;

#[test]
fn bench_log_reports_every_row_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("out.json");
    let output = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["bench", "log", "--dir"])
        .arg(dir.path())
        .args(["--bytes", "64MiB", "--case-seconds", "1", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "weir bench log failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("group commit"), "{stdout}");

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let positive = |v: &serde_json::Value, what: &str| {
        let mbps = v["mb_per_s"].as_f64().unwrap_or(0.0);
        assert!(mbps > 0.0, "{what}: {v}");
    };
    positive(&report["raw"]["write"], "raw write");
    positive(&report["raw"]["read"], "raw read");
    let appends = report["appends"].as_array().unwrap();
    assert_eq!(appends.len(), 9, "3 batch sizes x 3 modes: {appends:?}");
    for batch in [16384, 65536, 1048576] {
        for mode in ["no_fsync", "fsync_per_batch", "group_commit"] {
            let row = appends
                .iter()
                .find(|r| r["batch_target_bytes"] == batch && r["mode"] == mode)
                .unwrap_or_else(|| panic!("no row for {batch} {mode}"));
            positive(&row["throughput"], mode);
            assert!(row["ratio_to_raw_write"].as_f64().unwrap() > 0.0, "{row}");
        }
    }
    let reads = report["cold_reads"].as_array().unwrap();
    assert_eq!(reads.len(), 3, "{reads:?}");
    for row in reads {
        positive(&row["throughput"], "cold read");
        assert!(row["ratio_to_raw_read"].as_f64().unwrap() > 0.0, "{row}");
    }

    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("out.json")],
        "data files left behind"
    );
}
