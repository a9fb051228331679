//! Log compaction through `weir serve` with real clients: kcat produces keyed records (and
//! tombstones) to a `cleanup.policy=compact` topic of small segments, the broker compacts it on
//! its retention-check interval, and kcat reads back only the latest value of each key, at the
//! offset it was written, across the gaps (the exact semantics, restarts included, are in-process
//! in `engine/tests/compaction.rs`). And `__consumer_offsets`: it is
//! compacted too, committed offsets survive compaction and restarts (SIGTERM and kill -9), and
//! clients see it as internal (Metadata is_internal, produce and delete refused, and described as
//! compacted even once its record lost cleanup.policy).
//!
//! The same with compressed batches (lz4, zstd, gzip, snappy from confluent-kafka): compacted
//! and re-compressed with their codec.
//!
//! Client code: kcat, and `tests/clients/compaction.py` (confluent-kafka and kafka-python).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{disk_batches, kcat_consume, run, ServeProcess};

const LIMIT: Duration = Duration::from_secs(60);

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/compaction.py")
}

fn py(b: &ServeProcess, args: &[&str]) -> String {
    let mut c = Command::new("python3");
    c.arg(script()).arg(args[0]).arg(&b.addr).args(&args[1..]);
    b.run_client(&mut c, b"", LIMIT)
}

fn start(data: &Path, tag: &str, extra: &[&str]) -> ServeProcess {
    let d = data.to_str().expect("utf-8 path");
    let mut args = vec![
        "--data-dir",
        d,
        "--shards",
        "2",
        "--kafka-addr",
        "127.0.0.1:0",
        "--log-retention-check-interval-ms",
        "200",
    ];
    args.extend_from_slice(extra);
    ServeProcess::start(&data.with_extension(format!("{tag}.stderr")), &args)
}

/// Polls `f` until it returns `Some`, or fails with the broker's log after `LIMIT`.
fn eventually<T>(what: &str, b: &ServeProcess, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: timed out\n{}", b.log());
        std::thread::sleep(Duration::from_millis(300));
    }
}

const KEYS: usize = 50;
const ROUNDS: usize = 20;
const DELETED: usize = 10;
const FILLER: usize = 300;

/// kcat's input: ROUNDS values of each key, tombstones (empty value with -Z) for the first
/// DELETED keys, then FILLER records of unique keys so every key's last write is sealed.
fn input() -> String {
    let mut lines = Vec::new();
    for round in 0..ROUNDS {
        for k in 0..KEYS {
            lines.push(format!("k{k}:v{round}-{k}-{}", "x".repeat(30)));
        }
    }
    for k in 0..DELETED {
        lines.push(format!("k{k}:"));
    }
    for f in 0..FILLER {
        lines.push(format!("f{f}:filler-{f}-{}", "y".repeat(40)));
    }
    lines.join("\n") + "\n"
}

/// What a compacted read returns, as kcat's "%o %k %s" lines: each key's last value at the
/// offset of its line (one partition, an idempotent producer: offsets are line numbers);
/// deleted keys are gone with their tombstones (delete.retention.ms=0).
fn expected() -> Vec<String> {
    let mut out = Vec::new();
    let last_round = (ROUNDS - 1) * KEYS;
    for k in DELETED..KEYS {
        out.push(format!(
            "{} k{k} v{}-{k}-{}",
            last_round + k,
            ROUNDS - 1,
            "x".repeat(30)
        ));
    }
    let filler_start = ROUNDS * KEYS + DELETED;
    for f in 0..FILLER {
        out.push(format!(
            "{} f{f} filler-{f}-{}",
            filler_start + f,
            "y".repeat(40)
        ));
    }
    out
}

fn read_all(b: &ServeProcess, topic: &str) -> Vec<String> {
    kcat_consume(&b.addr, topic, "%o %k %s\n", LIMIT)
        .lines()
        .map(str::to_string)
        .collect()
}

fn segment_files(data: &Path, topic: &str) -> usize {
    std::fs::read_dir(data.join("logs").join(format!("{topic}-0")))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn a_compacted_topic_keeps_the_latest_value_per_key_at_its_offset_for_kcat() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "compact", &[]);
    let topic = "compacted";
    py(
        &broker,
        &[
            "create",
            topic,
            "1",
            "cleanup.policy=compact,segment.bytes=8192,min.cleanable.dirty.ratio=0.01,delete.retention.ms=0",
        ],
    );
    run(
        Command::new("kcat").args([
            "-b",
            &broker.addr,
            "-P",
            "-t",
            topic,
            "-K:",
            "-Z",
            "-X",
            "enable.idempotence=true",
            // Batches of 10 records, so 8 KiB segments roll (a batch is never split).
            "-X",
            "batch.num.messages=10",
        ]),
        input().as_bytes(),
        LIMIT,
    );
    let expected = expected();
    let total_lines = ROUNDS * KEYS + DELETED + FILLER;
    let got = eventually("compaction leaves one value per key", &broker, || {
        let got = read_all(&broker, topic);
        (got.len() == expected.len()).then_some(got)
    });
    assert_eq!(got, expected);
    assert!(
        broker.log().contains("compacted"),
        "the broker logs its passes"
    );
    // Fewer files too: cleaned segments are merged (a full log is ~70 KiB in 8 KiB segments).
    let files = segment_files(&data, topic);
    assert!(
        files <= 5,
        "{files} segment files for {total_lines} records"
    );

    // Restart and the next offset, and tombstones against the broker's clock, are checked
    // in-process: engine/tests/compaction.rs.
    broker.stop();
}

/// The same with compression, produced by confluent-kafka (librdkafka 2.16) with lz4, zstd, gzip
/// and snappy: the broker decompresses batches, keeps each key's latest record and re-compresses
/// them with the codec; kcat reads them back.
#[test]
fn compressed_batches_are_compacted_and_stay_compressed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "compressed", &[]);
    let expected = expected();
    for (codec, id) in [("lz4", 3), ("zstd", 4), ("gzip", 1), ("snappy", 2)] {
        let topic = format!("compacted-{codec}");
        py(
            &broker,
            &[
                "create",
                &topic,
                "1",
                "cleanup.policy=compact,segment.bytes=2048,min.cleanable.dirty.ratio=0.01,delete.retention.ms=0",
            ],
        );
        let mut c = Command::new("python3");
        c.arg(script())
            .args(["produce", &broker.addr, &topic, codec]);
        broker.run_client(&mut c, input().as_bytes(), LIMIT);
        let got = eventually("compaction of compressed batches", &broker, || {
            let got = read_all(&broker, &topic);
            (got.len() == expected.len()).then_some(got)
        });
        assert_eq!(got, expected, "{codec}");
        let batches = disk_batches(&data, &topic, 0);
        assert!(!batches.is_empty(), "{codec}");
        assert!(
            batches.iter().all(|&(c, _, _)| c == id),
            "{codec}: every batch on disk is still {codec}: {batches:?}"
        );
        assert!(
            batches.iter().any(|&(_, count, last)| count < last + 1),
            "{codec}: some batches were rebuilt with fewer records: {batches:?}"
        );
    }
    broker.stop();
}

/// Committed offsets of two groups: "early" commits once, before "busy" commits 300 times to the
/// same partition of `__consumer_offsets` (4 KiB segments), so compaction removes almost every
/// commit record and must keep early's and busy's last ones.
#[test]
fn committed_offsets_survive_compaction_of_consumer_offsets_and_restarts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let extra = ["--offsets-topic-segment-bytes", "4096"];
    let broker = start(&data, "offsets", &extra);
    let topic = "events";
    py(&broker, &["create", topic, "2", ""]);
    py(&broker, &["commit", "early", topic, "2", "7", "7"]);
    py(&broker, &["commit", "busy", topic, "2", "1", "300"]);
    let committed = |b: &ServeProcess, group: &str| {
        let mut c = Command::new("python3");
        c.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/groups.py"))
            .args(["committed", "confluent", &b.addr, group, topic, "2"]);
        b.run_client(&mut c, b"", LIMIT)
    };
    // Every commit record of busy is in __consumer_offsets until compaction removes them.
    let records = |b: &ServeProcess| -> usize {
        (0..8)
            .map(|p| {
                run(
                    Command::new("kcat").args([
                        "-b",
                        &b.addr,
                        "-C",
                        "-t",
                        "__consumer_offsets",
                        "-p",
                        &p.to_string(),
                        "-o",
                        "beginning",
                        "-e",
                        "-q",
                        "-f",
                        "%o\n",
                    ]),
                    b"",
                    LIMIT,
                )
                .lines()
                .count()
            })
            .sum()
    };
    eventually("__consumer_offsets is compacted", &broker, || {
        (broker.log().contains("compacted") && records(&broker) < 100).then_some(())
    });
    let check = |b: &ServeProcess, when: &str| {
        assert_eq!(committed(b, "early"), "0 7\n1 7\n", "early, {when}");
        assert_eq!(committed(b, "busy"), "0 300\n1 300\n", "busy, {when}");
    };
    check(&broker, "after compaction");
    broker.stop();
    let broker = start(&data, "offsets2", &extra);
    check(&broker, "after compaction and a SIGTERM restart");
    py(&broker, &["commit", "busy", topic, "2", "301", "400"]);
    broker.kill9();
    let broker = start(&data, "offsets3", &extra);
    assert_eq!(committed(&broker, "busy"), "0 400\n1 400\n");
    assert_eq!(committed(&broker, "early"), "0 7\n1 7\n");
    broker.stop();
}

#[test]
fn consumer_offsets_is_internal_to_clients() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = start(&data, "internal", &[]);
    let topic = "t";
    py(&broker, &["create", topic, "1", ""]);
    // A commit creates __consumer_offsets.
    py(&broker, &["commit", "g", topic, "1", "0", "0"]);
    let out = py(&broker, &["internal"]);
    assert!(out.contains("is_internal True"), "{out}");
    assert!(out.contains("produce TOPIC_EXCEPTION"), "{out}");
    assert!(
        out.contains("delete TopicAuthorizationFailedError"),
        "{out}"
    );
    // Its record no longer names cleanup.policy (AlterConfigs replaced the overrides), yet it
    // is compacted and described as such.
    assert!(out.contains("cleanup.policy compact"), "{out}");
    broker.stop();
}
