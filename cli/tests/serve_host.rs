//! `weir serve` and what it knows of its host, through real processes: the io-properties file
//! `weir hw iotune` wrote is picked up from the data directory (or `--io-properties`), the
//! startup line names the values it set, a bad file refuses to start naming the key, `none` turns
//! it off; `--broker-rack` reaches kafka-python's cluster metadata and DescribeCluster; the
//! placement line names each shard's CPU, core and node.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod support;
use support::{free_port, run, ServeProcess};

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

/// A short `weir hw iotune` of `dir` (its io-properties land in `dir/io-properties.toml`); the
/// two suggestions it wrote.
fn iotune(dir: &Path) -> (i64, i64) {
    let out = weir()
        .args(["hw", "iotune", "--dir"])
        .arg(dir)
        .args([
            "--file-bytes",
            "8388608",
            "--depths",
            "1,4",
            "--pass-ms",
            "200",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "iotune: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join("io-properties.toml")).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    let s = &t["suggested"];
    (
        s["writes_in_flight"].as_integer().unwrap(),
        s["write_group_bytes"].as_integer().unwrap(),
    )
}

fn serve_args(data: &Path, extra: &[String]) -> Vec<String> {
    let mut args = vec![
        "--data-dir".to_string(),
        data.display().to_string(),
        "--shards".into(),
        "1".into(),
        "--kafka-addr".into(),
        format!("127.0.0.1:{}", free_port()),
    ];
    args.extend(extra.iter().cloned());
    args
}

fn start(dir: &Path, data: &Path, extra: &[String]) -> Result<ServeProcess, String> {
    let args = serve_args(data, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ServeProcess::try_start(&dir.join("serve.stderr"), None, &args)
}

#[test]
fn serve_uses_the_io_properties_iotune_wrote_and_refuses_a_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let (writes, group) = iotune(&data);

    // Found in the data directory without being named.
    let broker = start(dir.path(), &data, &[]).unwrap();
    let log = broker.log();
    let expected = format!("writes in flight per partition 16 -> {writes}");
    assert!(log.contains(&expected), "{expected:?} not in\n{log}");
    let expected = format!("write group bytes 4194304 -> {group}");
    assert!(log.contains(&expected), "{expected:?} not in\n{log}");
    assert!(log.contains("io-properties.toml"), "{log}");
    broker.stop();

    // `none`: the built-in limits.
    let broker = start(
        dir.path(),
        &data,
        &["--io-properties".into(), "none".into()],
    )
    .unwrap();
    let log = broker.log();
    assert!(
        log.contains("no io-properties file") && log.contains("16 writes in flight"),
        "{log}"
    );
    broker.stop();

    // A file out of range, named by the flag: refused at startup, naming the key and the value.
    let text = std::fs::read_to_string(data.join("io-properties.toml")).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        text.replace(
            &format!("writes_in_flight = {writes}"),
            "writes_in_flight = 0",
        ),
    )
    .unwrap();
    let e = start(
        dir.path(),
        &data,
        &["--io-properties".into(), bad.display().to_string()],
    )
    .err()
    .expect("a broker with writes_in_flight = 0 started");
    assert!(
        e.contains("io.properties.file") && e.contains("suggested.writes_in_flight = 0"),
        "{e}"
    );
    // And a broken file in the data directory is not silently skipped.
    std::fs::write(data.join("io-properties.toml"), "version = 1\n").unwrap();
    let e = start(dir.path(), &data, &[])
        .err()
        .expect("a broker with a broken io-properties file started");
    assert!(
        e.contains("io.properties.file") && e.contains("missing field"),
        "{e}"
    );
}

const RACK_PY: &str = r#"
import sys
from kafka import KafkaAdminClient, KafkaConsumer
bootstrap = sys.argv[1]
admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000)
brokers = admin.describe_cluster()["brokers"]
print("describe_cluster", [(b["broker_id"], b["rack"]) for b in brokers])
c = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=20000)
c.topics()
print("metadata", [(b.node_id, b.rack) for b in c._client.cluster.brokers()])
c.close()
admin.close()
"#;

#[test]
fn kafka_python_sees_the_broker_rack_and_the_placement_line_names_cpus() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let broker = start(
        dir.path(),
        &data,
        &[
            "--broker-rack".into(),
            "us-east-1b".into(),
            "--node-id".into(),
            "4".into(),
        ],
    )
    .unwrap();
    let script = dir.path().join("rack.py");
    std::fs::write(&script, RACK_PY).unwrap();
    let out = run(
        Command::new("python3").arg(&script).arg(&broker.addr),
        b"",
        Duration::from_secs(60),
    );
    assert!(
        out.contains("describe_cluster [(4, 'us-east-1b')]"),
        "{out}"
    );
    assert!(out.contains("metadata [(4, 'us-east-1b')]"), "{out}");
    let log = broker.log();
    assert!(
        log.contains("weir: shards on cpu ") && log.contains("(core "),
        "{log}"
    );
    broker.stop();

    // Without a rack, the field is null.
    let plain = start(dir.path(), &data, &[]).unwrap();
    let out = run(
        Command::new("python3").arg(&script).arg(&plain.addr),
        b"",
        Duration::from_secs(60),
    );
    assert!(out.contains("metadata [(1, None)]"), "{out}");
    plain.stop();
}
