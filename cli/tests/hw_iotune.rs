//! `weir hw iotune` writes a well-formed io-properties file, and its figures are of the same
//! order as fio's (O_DIRECT, io_uring, same block sizes and depths, same directory). Loose on
//! purpose: this checks that iotune measures what it says, not how fast the disk is.

use std::path::Path;
use std::process::Command;

use hardware::iotune::IoProperties;

const FILE_BYTES: u64 = 64 << 20;

fn fio(dir: &Path, rw: &str, bs: &str, depth: u32, time_based: bool) -> serde_json::Value {
    let mut args = vec![
        "--name=weir-iotune-check".to_string(),
        format!("--filename={}", dir.join("fio.scratch").display()),
        "--direct=1".into(),
        "--ioengine=io_uring".into(),
        format!("--rw={rw}"),
        format!("--bs={bs}"),
        format!("--iodepth={depth}"),
        format!("--size={FILE_BYTES}"),
        "--output-format=json".into(),
    ];
    if time_based {
        args.extend(["--time_based".into(), "--runtime=1".into()]);
    }
    let out = Command::new("fio")
        .args(&args)
        .output()
        .expect("fio is missing: scripts/test installs it (apt-get install fio)");
    assert!(
        out.status.success(),
        "fio {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("fio JSON");
    doc["jobs"][0].clone()
}

fn same_order(what: &str, weir: f64, fio: f64) {
    assert!(weir > 0.0 && fio > 0.0, "{what}: weir {weir}, fio {fio}");
    let ratio = weir / fio;
    assert!(
        (0.1..=10.0).contains(&ratio),
        "{what}: weir {weir:.0} vs fio {fio:.0} (ratio {ratio:.2}) are not the same order"
    );
    eprintln!("{what}: weir {weir:.0}, fio {fio:.0}, ratio {ratio:.2}");
}

#[test]
fn iotune_writes_its_properties_and_agrees_with_fio() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let out_file = dir.path().join("io.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["hw", "iotune", "--dir"])
        .arg(dir.path())
        .args([
            "--file-bytes",
            &FILE_BYTES.to_string(),
            "--depths",
            "1,16",
            "--pass-ms",
            "400",
        ])
        .arg("--out")
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !dir.path().join(hardware::iotune::SCRATCH_FILE).exists(),
        "the scratch file was left behind"
    );
    let p = IoProperties::read(&out_file).unwrap();
    assert_eq!(p.file_bytes, FILE_BYTES);
    assert_eq!(p.seq_write.bytes, FILE_BYTES);
    assert_eq!(p.seq_read.bytes, FILE_BYTES);
    for rows in [&p.random_read, &p.random_write] {
        assert_eq!(
            rows.iter().map(|r| r.queue_depth).collect::<Vec<_>>(),
            [1, 16]
        );
        for r in rows.iter() {
            let l = &r.latency_us;
            assert!(
                r.iops > 0 && l.samples == r.operations && l.samples > 0,
                "{r:?}"
            );
            assert!(l.p50_us <= l.p99_us && l.p99_us <= l.p999_us && l.p999_us <= l.max_us);
        }
    }
    assert!(p.fdatasync.samples > 0 && p.fdatasync.p50_us > 0.0);
    assert!([1, 16].contains(&p.suggested.writes_in_flight));
    assert_eq!(p.suggested.write_group_bytes % 4096, 0);

    let write = fio(dir.path(), "write", "128k", 4, false);
    same_order(
        "seq write bytes/s",
        p.seq_write.bytes_per_s as f64,
        write["write"]["bw_bytes"].as_f64().unwrap(),
    );
    let read = fio(dir.path(), "read", "128k", 4, false);
    same_order(
        "seq read bytes/s",
        p.seq_read.bytes_per_s as f64,
        read["read"]["bw_bytes"].as_f64().unwrap(),
    );
    let random = fio(dir.path(), "randread", "4k", 16, true);
    let weir_qd16 = p.random_read.iter().find(|r| r.queue_depth == 16).unwrap();
    same_order(
        "randread qd16 IOPS",
        weir_qd16.iops as f64,
        random["read"]["iops"].as_f64().unwrap(),
    );
}
