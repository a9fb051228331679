//! `weir bench run` and `weir bench compare` end to end: a shipped workload against a real
//! `weir serve` (topics created with the workload's partitions, every acknowledged record read
//! back by kcat, the result document valid against docs/bench-result.schema.json and
//! round-tripping through `bench::report::BenchResult`, the HDR log written), the same workload
//! against weir and a `weir bench null-sink` side by side, and the ceiling check saying loudly
//! that a run against a null sink measured the generator.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{free_port, ServeProcess};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn weir(args: &[&str]) -> String {
    support::run(
        Command::new(env!("CARGO_BIN_EXE_weir")).args(args),
        b"",
        Duration::from_secs(120),
    )
}

/// `weir bench run bench/workloads/WORKLOAD --bootstrap ADDR` without warm-up, measuring for
/// `test_seconds`, with `extra` flags; returns stdout.
fn bench_run(workload: &str, bootstrap: &str, test_seconds: &str, extra: &[&str]) -> String {
    let path = repo().join("bench/workloads").join(workload);
    let mut args = vec![
        "bench",
        "run",
        path.to_str().unwrap(),
        "--bootstrap",
        bootstrap,
        "--warmup-seconds",
        "0",
        "--test-seconds",
        test_seconds,
    ];
    args.extend_from_slice(extra);
    weir(&args)
}

/// Checks `doc` against the JSON Schema and through serde; panics with every violation.
fn check_document(doc: &serde_json::Value) {
    let schema: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("docs/bench-result.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}\n{doc:#}");
    let typed: bench::report::BenchResult = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&typed).unwrap(), doc);
}

fn serve(dir: &Path) -> ServeProcess {
    // One partition per auto-created topic while the workload asks for 2: the run must create
    // its topics, not rely on auto-creation.
    ServeProcess::one_shard(dir, &["--log-segment-bytes", "8388608"])
}

struct Sink(Child, String);

impl Sink {
    fn start(partitions: u32) -> Sink {
        let addr = format!("127.0.0.1:{}", free_port());
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["bench", "null-sink", "--listen", &addr, "--partitions"])
            .arg(partitions.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.contains("listening"), "{line}");
        Sink(child, addr)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_shipped_workload_runs_against_weir_and_its_result_matches_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve(dir.path());
    let json = dir.path().join("result.json");
    let hlog = dir.path().join("result.hlog");
    let stdout = bench_run(
        "smoke.yaml",
        &broker.addr,
        "2.5",
        &[
            "--topic-prefix",
            "smoke",
            "--json",
            json.to_str().unwrap(),
            "--hdr-log",
            hlog.to_str().unwrap(),
        ],
    );
    for needle in [
        "== run 'smoke'",
        "p99.9",
        "latency",
        "delay",
        "ceiling",
        "broker",
    ] {
        assert!(stdout.contains(needle), "{needle}: {stdout}");
    }
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    check_document(&doc);
    let r: bench::report::BenchResult = serde_json::from_value(doc).unwrap();
    assert_eq!(r.config.topics, vec!["smoke-0", "smoke-1"]);
    assert_eq!(
        r.config.partitions_per_topic, 2,
        "CreateTopics with the workload's partitions"
    );
    assert_eq!(r.config.producer_rate, 2000.0);
    assert_eq!(r.publish.failed, 0);
    // 2000/s for 2.5 s (the run stops offering at the deadline and drains what is in flight).
    assert!(
        (2_500..=5_500).contains(&r.publish.records),
        "{:?}",
        r.publish
    );
    assert_eq!(r.publish_latency_ms.count, r.publish.records);
    assert_eq!(
        r.publish_delay_ms.as_ref().map(|d| d.count),
        Some(r.publish.records)
    );
    assert!(
        r.publish.compression_ratio > 1.3,
        "lz4 on JSON logs: {:?}",
        r.publish
    );
    let cpu = r.broker_cpu.as_ref().expect("the local broker's CPU");
    assert_eq!(cpu.pid, broker.pid());
    assert!(cpu.cpu_s > 0.0, "{cpu:?}");
    let ceiling = r.ceiling.as_ref().expect("ceiling checked by default");
    assert!(ceiling.sufficient, "{ceiling:?}");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);

    // Every acknowledged record is in weir's log (no warm-up: nothing else was sent).
    let mut in_log = 0u64;
    for topic in &r.config.topics {
        let out = support::kcat_consume(&broker.addr, topic, "%p\\n", Duration::from_secs(60));
        let lines: Vec<&str> = out.lines().collect();
        assert!(
            lines.contains(&"0") && lines.contains(&"1"),
            "{topic}: keys spread over both partitions"
        );
        in_log += lines.len() as u64;
    }
    assert_eq!(in_log, r.publish.records);

    // The HDR log: one interval a second, which add up to the run's histograms.
    let per_tag = hdr_log(&hlog);
    assert_eq!(
        per_tag.keys().collect::<Vec<_>>(),
        ["publish_delay", "publish_latency"],
        "no consumers, no e2e_latency"
    );
    for tag in ["publish_latency", "publish_delay"] {
        check_intervals(tag, &per_tag[tag], 3, r.publish.records);
    }
    broker.stop();
}

/// The intervals of an HDR log read back with the hdrhistogram crate's reader, by tag:
/// (start s, length s, count).
fn hdr_log(path: &Path) -> std::collections::BTreeMap<String, Vec<(f64, f64, u64)>> {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let log = std::fs::read(path).unwrap();
    assert!(log.starts_with(b"#"));
    let mut per_tag: std::collections::BTreeMap<String, Vec<(f64, f64, u64)>> = Default::default();
    for entry in IntervalLogIterator::new(&log) {
        if let LogEntry::Interval(i) = entry.expect("a well-formed log line") {
            let bytes = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                i.encoded_histogram(),
            )
            .unwrap();
            let h: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
                .deserialize(&mut std::io::Cursor::new(bytes))
                .unwrap();
            per_tag
                .entry(i.tag().map(|t| t.as_str().to_string()).unwrap_or_default())
                .or_default()
                .push((
                    i.start_timestamp().as_secs_f64(),
                    i.duration().as_secs_f64(),
                    h.len(),
                ));
        }
    }
    per_tag
}

/// At least `min` intervals of about a second, in order without overlap, adding up to `total`.
/// (The log writes start and length rounded to the millisecond: they may disagree by 1.5 ms.)
fn check_intervals(tag: &str, intervals: &[(f64, f64, u64)], min: usize, total: u64) {
    assert!(intervals.len() >= min, "{tag}: {intervals:?}");
    assert!(
        intervals.iter().all(|(_, length, _)| *length <= 1.5),
        "{tag}: {intervals:?}"
    );
    assert!(
        intervals
            .windows(2)
            .all(|w| w[1].0 >= w[0].0 + w[0].1 - 0.002),
        "{tag}: intervals overlap: {intervals:?}"
    );
    let sum: u64 = intervals.iter().map(|(_, _, n)| n).sum();
    assert_eq!(sum, total, "{tag}: {intervals:?}");
}

/// A workload with consumers: each topic is read while it is produced, every acknowledged record
/// is consumed once, and each carries one end-to-end latency sample, which the HDR log has too,
/// one interval per second.
#[test]
fn a_workload_with_consumers_measures_end_to_end_latency_of_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve(dir.path());
    let json = dir.path().join("result.json");
    let hlog = dir.path().join("result.hlog");
    let stdout = bench_run(
        "smoke-e2e.yaml",
        &broker.addr,
        "2.5",
        &[
            "--check-ceiling",
            "false",
            "--json",
            json.to_str().unwrap(),
            "--hdr-log",
            hlog.to_str().unwrap(),
        ],
    );
    assert!(stdout.contains("e2e"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    check_document(&doc);
    let r: bench::report::BenchResult = serde_json::from_value(doc).unwrap();
    assert_eq!(r.config.consumers_per_subscription, 2);
    assert_eq!(r.publish.failed, 0);
    assert!(r.publish.records >= 1_000, "{:?}", r.publish);
    let e2e = r.e2e_latency_ms.as_ref().expect("end-to-end latency");
    assert_eq!(
        e2e.count, r.publish.records,
        "one sample per acknowledged record: {e2e:?} {:?}",
        r.warnings
    );
    assert!(e2e.p50 > 0.0 && e2e.max >= e2e.p99, "{e2e:?}");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    let per_tag = hdr_log(&hlog);
    let e2e_intervals = per_tag
        .get("e2e_latency")
        .unwrap_or_else(|| panic!("no e2e_latency intervals: {per_tag:?}"));
    check_intervals("e2e_latency", e2e_intervals, 2, e2e.count);
    check_intervals(
        "publish_latency",
        &per_tag["publish_latency"],
        2,
        r.publish.records,
    );
    broker.stop();
}

#[test]
fn compare_runs_one_workload_against_weir_and_a_null_sink_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve(dir.path());
    let sink = Sink::start(2);
    let json = dir.path().join("compare.json");
    let workload = repo().join("bench/workloads/smoke.yaml");
    let stdout = weir(&[
        "bench",
        "compare",
        workload.to_str().unwrap(),
        "--target",
        &format!("weir={}", broker.addr),
        "--target",
        &format!("sink={}", sink.1),
        "--warmup-seconds",
        "0",
        "--test-seconds",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    let header = stdout
        .lines()
        .find(|l| l.contains("weir") && l.contains("sink") && !l.contains("=="))
        .unwrap_or_else(|| panic!("no table header: {stdout}"));
    assert!(header.find("weir") < header.find("sink"), "{header}");
    let row = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row: {stdout}"))
            .split_whitespace()
            .last()
            .unwrap()
            .to_string()
    };
    assert_ne!(row("msg/s"), "0");
    assert_eq!(row("failed"), "0");
    let docs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(docs.len(), 2);
    for d in &docs {
        check_document(d);
    }
    assert_eq!(docs[0]["target_name"], "weir");
    assert_eq!(docs[1]["target_name"], "sink");
    assert_eq!(docs[0]["config"]["topics"], docs[1]["config"]["topics"]);
    // One ceiling measured, used for both.
    assert_eq!(
        docs[0]["ceiling"]["msg_per_s"],
        docs[1]["ceiling"]["msg_per_s"]
    );
    assert_eq!(docs[0]["broker_cpu"]["pid"], broker.pid());
    assert_eq!(docs[1]["broker_cpu"]["pid"], sink.0.id());
    broker.stop();
}

#[test]
fn against_a_null_sink_the_ceiling_check_says_the_generator_was_measured() {
    // The generator against a null sink cannot reach 2x itself: the run must say so. Other tests
    // running beside this one can slow one of the two phases, so every attempt checks that the
    // verdict matches the ratio, and one of three must see the expected ratio (< 2x).
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::start(4);
    let json = dir.path().join("produce.json");
    let mut low_seen = false;
    for attempt in 0..3 {
        let output = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["bench", "produce", "--bootstrap", &sink.1, "--topic"])
            .arg(format!("t{attempt}"))
            .args(["--records", "200000", "--record-size", "256", "--acks", "1"])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        check_document(&doc);
        assert_eq!(doc["kind"], "produce");
        assert_eq!(doc["publish"]["records"], 200000);
        let ratio = doc["ceiling"]["ratio"].as_f64().unwrap();
        let sufficient = doc["ceiling"]["sufficient"].as_bool().unwrap();
        let warned = doc["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().starts_with("GENERATOR-BOUND"));
        assert_eq!(sufficient, ratio >= 2.0, "{doc}");
        assert_eq!(warned, !sufficient, "{doc}");
        assert_eq!(
            stdout.contains("WARNING   GENERATOR-BOUND"),
            warned,
            "{stdout}"
        );
        assert_eq!(stdout.contains("TOO LOW"), warned, "{stdout}");
        if warned {
            low_seen = true;
            break;
        }
    }
    assert!(
        low_seen,
        "the generator measured itself at 2x its own ceiling three times"
    );
}

#[test]
fn the_librdkafka_cross_check_reports_both_rates_on_the_same_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = serve(dir.path());
    let json = dir.path().join("x.json");
    let stdout = bench_run(
        "smoke.yaml",
        &broker.addr,
        "1",
        &[
            "--topic-prefix",
            "xcheck",
            "--check-ceiling",
            "false",
            "--cross-check-librdkafka",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert!(stdout.contains("crosscheck librdkafka"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    check_document(&doc);
    assert!(doc["ceiling"].is_null());
    let x = &doc["cross_check"];
    let records = doc["publish"]["records"].as_u64().unwrap();
    assert_eq!(
        x["records"], records,
        "librdkafka sent the run's record count: {x}"
    );
    assert!(
        x["tool"].as_str().unwrap().starts_with("librdkafka 2."),
        "{x}"
    );
    for k in ["msg_per_s", "ours_msg_per_s", "ratio"] {
        assert!(x[k].as_f64().unwrap() > 0.0, "{k}: {x}");
    }
    // The rate-limited run's own rate is not what librdkafka is compared with: ours ran closed
    // loop too.
    assert!(
        x["ours_msg_per_s"].as_f64().unwrap() > 2.0 * doc["publish"]["msg_per_s"].as_f64().unwrap(),
        "{doc}"
    );
    // Both wrote to the first topic: the run's share of its records (about half: the rate is
    // split over the two topics, so not exactly), then librdkafka's `records`, then ours again.
    let out = support::kcat_consume(&broker.addr, "xcheck-0", "%o\\n", Duration::from_secs(60));
    assert!(
        out.lines().count() as u64 > 2 * records,
        "{} records in xcheck-0, the cross-check runs wrote {records} each",
        out.lines().count()
    );
    broker.stop();
}
