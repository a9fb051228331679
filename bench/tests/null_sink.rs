//! The null sink against a real client: Debian's kcat (librdkafka) produces keyed records with
//! the murmur2 partitioner and lz4; the sink must acknowledge every record, and each partition's
//! count must be what `kclient::partitioner` computes for those keys (a cross-check of our
//! murmur2 against librdkafka's `murmur2_random`).

use std::io::Write;
use std::process::{Command, Stdio};

use bench::null_sink::{NullSink, NullSinkConfig};
use kclient::partitioner::partition_for_key;

#[test]
fn kcat_produces_to_the_null_sink_and_every_record_is_acknowledged_where_murmur2_puts_it() {
    let partitions = 5u32;
    let sink = NullSink::start(NullSinkConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        partitions,
    })
    .unwrap();
    let n = 2_000usize;
    let mut input = String::new();
    let mut expected = vec![0i64; partitions as usize];
    for i in 0..n {
        let key = format!("key-{i}");
        expected[partition_for_key(key.as_bytes(), partitions) as usize] += 1;
        input.push_str(&format!("{key}\tvalue-{i}-{}\n", "x".repeat(i % 50)));
    }
    let mut child = Command::new("kcat")
        .args([
            "-P",
            "-b",
            &sink.addr().to_string(),
            "-t",
            "sinktopic",
            "-K",
            "\t",
        ])
        .args(["-X", "topic.partitioner=murmur2_random", "-z", "lz4"])
        .args(["-X", "linger.ms=5", "-X", "acks=1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kcat must be installed (scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = sink.counters();
    assert_eq!(
        c.records.load(std::sync::atomic::Ordering::Relaxed),
        n as u64
    );
    let got: Vec<i64> = (0..partitions as i32)
        .map(|p| sink.partition_end("sinktopic", p))
        .collect();
    assert_eq!(
        got, expected,
        "per-partition counts (librdkafka murmur2 vs ours)"
    );
    sink.stop();
}

/// batch.size is honoured: no batch exceeds it, and at full speed batches fill up to it (records of
/// 521 framed bytes after a 61-byte header in 16 KiB batches: at most 31 per batch).
#[test]
fn the_producer_fills_batches_up_to_batch_size_against_the_sink() {
    use kclient::producer::{self, ProducerConfig};
    let sink = NullSink::start(NullSinkConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        partitions: 1,
    })
    .unwrap();
    let report = producer::run(ProducerConfig {
        records: 30_000,
        record_size: 512,
        acks: 1,
        batch_size: 16_384,
        // Small, so 30,000 records cycle it many times: accounting that drifts (charging an
        // estimate, releasing the actual size) would stop the producer for good (it once did).
        buffer_memory: 65_536,
        connections: 2,
        ..ProducerConfig::new(&sink.addr().to_string(), "fill")
    })
    .unwrap();
    assert_eq!(report.records_acked, 30_000);
    assert_eq!(sink.partition_end("fill", 0), 30_000);
    let c = sink.counters();
    assert_eq!(
        c.batches.load(std::sync::atomic::Ordering::Relaxed),
        report.batches
    );
    let per_batch = report.mean_records_per_batch;
    assert!(
        (25.0..=31.0).contains(&per_batch),
        "{per_batch} records per batch"
    );
    assert_eq!(report.publish_latency.count, 30_000);
    sink.stop();
}

/// linger.ms at a low offered rate: a batch waits for linger.ms after its first record, so the
/// median record waits about half of it and the first of each batch all of it; with linger.ms=0
/// records go at once. Real time with wide margins (the exact rule, on a controlled clock, is
/// checked in producer_mock.rs).
#[test]
fn linger_holds_batches_at_a_low_rate_and_zero_linger_does_not() {
    use kclient::producer::{self, ProducerConfig};
    use std::time::Duration;
    let sink = NullSink::start(NullSinkConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        partitions: 1,
    })
    .unwrap();
    let run = |linger_ms: u64| {
        producer::run(ProducerConfig {
            records: 200,
            rate: Some(500.0), // one record every 2 ms: 0.4 s
            record_size: 100,
            acks: 1,
            linger: Duration::from_millis(linger_ms),
            ..ProducerConfig::new(&sink.addr().to_string(), "linger")
        })
        .unwrap()
    };
    let lingering = run(100);
    assert_eq!(lingering.records_acked, 200);
    let l = &lingering.publish_latency;
    assert!(
        l.max_ms >= 95.0,
        "the first record of a batch waits linger.ms: {l:?}"
    );
    assert!(l.p50_ms >= 30.0 && l.p50_ms <= 90.0, "{l:?}");
    assert!(lingering.mean_records_per_batch >= 20.0, "{lingering:?}");
    let delay = lingering.publish_delay.as_ref().unwrap();
    assert!(
        delay.p99_ms < 50.0,
        "an idle generator keeps to its schedule: {delay:?}"
    );
    let eager = run(0);
    assert!(
        eager.publish_latency.p50_ms < 20.0,
        "{:?}",
        eager.publish_latency
    );
    assert!(eager.mean_records_per_batch < 5.0, "{eager:?}");
    sink.stop();
}
