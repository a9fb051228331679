//! `weir bench consume` and `weir bench e2e` against `weir serve`: the consumer reads back exactly
//! what `weir bench produce` wrote (record count, value bytes, per-partition counts — the latter
//! checked against kcat — for every codec, seen as that codec in the batches), and an e2e run
//! reads every record it produced with an end-to-end latency for each.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use support::{free_port, ServeProcess};

/// Runs `weir bench ARGS --json FILE`; returns the JSON (the command must succeed).
fn bench(args: &[&str], json: &std::path::Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_weir"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "weir bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap()
}

fn broker(dir: &std::path::Path) -> ServeProcess {
    let data = dir.join("data");
    let addr = format!("127.0.0.1:{}", free_port());
    ServeProcess::start(
        &dir.join("serve.stderr"),
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--shards",
            "2",
            "--kafka-addr",
            &addr,
            "--num-partitions",
            "3",
        ],
    )
}

#[test]
fn the_consumer_reads_back_exactly_what_the_producer_wrote_for_every_codec() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let addr = broker.addr.clone();
    for (codec, records) in [
        ("none", 3000u64),
        ("gzip", 1000),
        ("snappy", 1000),
        ("lz4", 2000),
        ("zstd", 1000),
    ] {
        let topic = format!("readback-{codec}");
        let n = records.to_string();
        let produced = bench(
            &[
                "produce",
                "--bootstrap",
                &addr,
                "--topic",
                &topic,
                "--records",
                &n,
                "--record-size",
                "300",
                "--acks",
                "1",
                "--keys",
                "50",
                "--compression",
                codec,
            ],
            &dir.path().join(format!("p-{codec}.json")),
        );
        assert_eq!(produced["records_acked"], records, "{codec}: {produced}");
        // A small max.partition.fetch.bytes forces many fetches, and batches cut at the end of
        // a response, refetched from their offset.
        let consumed = bench(
            &[
                "consume",
                "--bootstrap",
                &addr,
                "--topic",
                &topic,
                "--records",
                &n,
                "--max-partition-fetch-bytes",
                "20000",
                "--consumers",
                "2",
                "--duration-s",
                "60",
            ],
            &dir.path().join(format!("c-{codec}.json")),
        );
        assert_eq!(consumed["records"], records, "{codec}: {consumed}");
        assert_eq!(consumed["value_bytes"], records * 300, "{codec}");
        assert!(consumed["fetches"].as_u64().unwrap() > 3, "{codec}");
        let codecs = consumed["codecs"].as_object().unwrap();
        assert_eq!(
            codecs.keys().collect::<Vec<_>>(),
            vec![codec],
            "{codec}: {consumed}"
        );
        // Per partition as kcat (librdkafka) counts them.
        let out = support::kcat_consume(&addr, &topic, "%p\\n", Duration::from_secs(60));
        let mut kcat: BTreeMap<String, u64> = BTreeMap::new();
        for l in out.lines() {
            *kcat.entry(l.to_string()).or_insert(0) += 1;
        }
        let ours: BTreeMap<String, u64> = consumed["per_partition"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(p, n)| (p.clone(), n.as_u64().unwrap()))
            .collect();
        assert_eq!(ours, kcat, "{codec}: per partition");
    }
    broker.stop();
}

#[test]
fn an_e2e_run_consumes_every_record_it_produced_with_an_end_to_end_latency_each() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let report = bench(
        &[
            "e2e",
            "--bootstrap",
            &broker.addr,
            "--topic",
            "e2e",
            "--records",
            "4000",
            "--rate",
            "2000",
            "--record-size",
            "200",
            "--acks",
            "1",
            "--linger-ms",
            "1",
            "--idle-s",
            "10",
        ],
        &dir.path().join("e2e.json"),
    );
    assert_eq!(report["produce"]["records_acked"], 4000, "{report}");
    assert_eq!(report["consume"]["records"], 4000, "{report}");
    let e2e = &report["e2e_latency"];
    // One sample per record: a value without a sane stamp (0, or garbage) would be hours or
    // years off and fall outside the histogram's hour.
    assert_eq!(e2e["count"], 4000, "{report}");
    let (p50, max) = (
        e2e["p50_ms"].as_f64().unwrap(),
        e2e["max_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= max && max < 30_000.0, "{e2e}");
    assert!(
        report["produce"]["publish_delay"]["count"] == 4000,
        "{report}"
    );
    broker.stop();
}

#[test]
fn fetch_max_wait_ms_is_what_the_broker_holds_an_empty_fetch_for() {
    // Nothing is produced: each Fetch (fetch.min.bytes 1) returns only when fetch.max.wait.ms
    // runs out, so the number of fetches in a fixed time follows the setting.
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path());
    let fetches = |wait_ms: &str| {
        let json = dir.path().join(format!("wait-{wait_ms}.json"));
        let r = bench(
            &[
                "consume",
                "--bootstrap",
                &broker.addr,
                "--topic",
                "quiet",
                "--from",
                "latest",
                "--duration-s",
                "1.5",
                "--fetch-max-wait-ms",
                wait_ms,
            ],
            &json,
        );
        assert_eq!(r["records"], 0, "{r}");
        r["fetches"].as_u64().unwrap()
    };
    let slow = fetches("400");
    let fast = fetches("10");
    // 1.5 s (less Metadata and ListOffsets) / 400 ms: at most 4 fetches, at least 1.
    assert!((1..=4).contains(&slow), "{slow} fetches at 400 ms");
    assert!(
        fast >= 5 * slow,
        "{fast} fetches at 10 ms vs {slow} at 400 ms"
    );
    broker.stop();
}
