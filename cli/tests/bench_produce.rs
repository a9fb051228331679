//! `weir bench produce` end to end: against `weir serve` (every acknowledged record must be in
//! the log, read back by kcat, for each codec kcat then decompresses) and against
//! `weir bench null-sink` (every record acknowledged, offsets as counted by the sink).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{free_port, ServeProcess};

fn produce(
    bootstrap: &str,
    topic: &str,
    extra: &[&str],
    json: &std::path::Path,
) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "bench",
            "produce",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
        ])
        .args(["--record-size", "512", "--acks", "1", "--linger-ms", "5"])
        .args(["--batch-size", "16384", "--connections", "2", "--json"])
        .arg(json)
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "weir bench produce failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("p99.9"), "{stdout}");
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

/// Records of `topic` read back from the beginning by kcat: (partition, offset, value length).
fn consume_all(bootstrap: &str, topic: &str) -> Vec<(u32, u64, usize)> {
    let out = support::kcat_consume(bootstrap, topic, "%p %o %S\\n", Duration::from_secs(60));
    out.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn produced_records_are_all_in_weirs_log_for_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let broker = ServeProcess::start(
        &dir.path().join("serve.stderr"),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--shards",
            "2",
            "--kafka-addr",
            &addr,
            "--num-partitions",
            "3",
            "--log-segment-bytes",
            "8388608",
        ],
    );
    for (codec, records) in [
        ("none", 3000u64),
        ("gzip", 1000),
        ("snappy", 1000),
        ("lz4", 3000),
        ("zstd", 1000),
    ] {
        let topic = format!("bench-{codec}");
        let json = dir.path().join(format!("{codec}.json"));
        let report = produce(
            &addr,
            &topic,
            &["--records", &records.to_string(), "--compression", codec],
            &json,
        );
        assert_eq!(report["publish"]["records"], records, "{codec}: {report}");
        assert_eq!(report["publish"]["failed"], 0, "{codec}");
        assert_eq!(report["config"]["partitions_per_topic"], 3, "{codec}");
        assert_eq!(report["publish_latency_ms"]["count"], records, "{codec}");
        let got = consume_all(&addr, &topic);
        assert_eq!(got.len() as u64, records, "{codec}: records in the log");
        assert!(
            got.iter().all(|&(_, _, len)| len == 512),
            "{codec}: value sizes"
        );
        // Offsets per partition are dense from 0: nothing lost or duplicated.
        for p in 0..3 {
            let mut offsets: Vec<u64> = got.iter().filter(|r| r.0 == p).map(|r| r.1).collect();
            offsets.sort_unstable();
            assert!(
                offsets.iter().enumerate().all(|(i, &o)| o == i as u64),
                "{codec} p{p}"
            );
        }
    }
    broker.stop();
}

struct Sink(Child);

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_null_sink_acknowledges_everything_with_keys_spread_by_murmur2() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut sink = Sink(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["bench", "null-sink", "--listen", &addr, "--partitions", "4"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Wait for the ready line.
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(sink.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.contains("listening"), "{line}");
    let report = produce(
        &addr,
        "t",
        &[
            "--records",
            "20000",
            "--keys",
            "100",
            "--compression",
            "zstd",
        ],
        &dir.path().join("sink.json"),
    );
    assert_eq!(report["publish"]["records"], 20000, "{report}");
    // The producer found the sink's 4 partitions through Metadata (where murmur2 puts each key
    // is checked against librdkafka in bench/tests/null_sink.rs).
    assert_eq!(report["config"]["partitions_per_topic"], 4, "{report}");
    assert!(
        report["publish"]["compression_ratio"].as_f64().unwrap() > 1.5,
        "{report}"
    );
    assert!(
        report["publish"]["batches"].as_u64().unwrap() >= 4,
        "{report}"
    );
}
