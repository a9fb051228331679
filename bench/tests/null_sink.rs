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

/// linger.ms at a low offered rate, checked by the structure of what was sent rather than by how
/// fast this machine is (the exact closing rule, on a controlled clock, is checked in
/// kafka-client's producer_mock.rs). batch.size (1 MiB) is out of reach of 400 records of 100
/// bytes, so with one partition a batch closes only when its linger.ms has passed or at the final
/// flush, and a new batch opens only after the previous one closed:
/// - every batch but the last lived at least linger.ms, so a run of E seconds made at most
///   E / linger + 1 batches, however slowly the machine ran it;
/// - with two batches or more the first one lingered, so its first record waited at least
///   linger.ms from send to acknowledgement (a lower bound: load can only lengthen it);
/// - with linger.ms=0 the same offered load makes more batches than a 100 ms linger could have in
///   the time that run took (records go as they come, not every 100 ms).
///
/// Time enters only as lower bounds and as the run's own elapsed time. Two things a stalled
/// machine could still upset are named where they are asserted.
#[test]
fn linger_holds_batches_at_a_low_rate_and_zero_linger_does_not() {
    use kclient::producer::{self, ProducerConfig};
    use std::time::Duration;
    const RECORDS: u64 = 400;
    const LINGER_MS: u64 = 100;
    let sink = NullSink::start(NullSinkConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        partitions: 1,
    })
    .unwrap();
    let run = |linger_ms: u64| {
        producer::run(ProducerConfig {
            records: RECORDS,
            rate: Some(500.0), // one record every 2 ms: 0.8 s
            record_size: 100,
            acks: 1,
            linger: Duration::from_millis(linger_ms),
            batch_size: 1 << 20,
            ..ProducerConfig::new(&sink.addr().to_string(), "linger")
        })
        .unwrap()
    };
    // At most this many batches can a run of `elapsed_s` make when each lives LINGER_MS.
    let most_batches_lingering =
        |elapsed_s: f64| (elapsed_s * 1000.0 / LINGER_MS as f64) as u64 + 1;

    let lingering = run(LINGER_MS);
    assert_eq!(lingering.records_acked, RECORDS, "{}", lingering.summary());
    assert_eq!(lingering.publish_latency.count, RECORDS);
    assert_eq!(
        lingering.publish_delay.as_ref().map(|d| d.count),
        Some(RECORDS)
    );
    assert!(
        lingering.batches <= most_batches_lingering(lingering.elapsed_s),
        "{} batches in {:.3} s: some closed before linger.ms",
        lingering.batches,
        lingering.elapsed_s
    );
    // Only one batch would take a stall of the whole generator from before the first batch's
    // linger expired until the last record was due (0.7 s): not something to expect; and a
    // linger that never expires (only the final flush closing the batch) would show here.
    assert!(lingering.batches >= 2, "{}", lingering.summary());
    let l = &lingering.publish_latency;
    assert!(
        l.max_ms >= LINGER_MS as f64,
        "the first record of the first batch waits linger.ms: {l:?}"
    );

    let eager = run(0);
    assert_eq!(eager.records_acked, RECORDS, "{}", eager.summary());
    // This one assumes the generator runs at least once per 100 ms on average (records are due
    // every 2 ms), as any machine able to run the suite does.
    assert!(
        eager.batches > most_batches_lingering(eager.elapsed_s),
        "linger.ms=0 held records: {} batches in {:.3} s",
        eager.batches,
        eager.elapsed_s
    );
    assert_eq!(
        sink.partition_end("linger", 0),
        2 * RECORDS as i64,
        "every record of both runs reached the sink"
    );
    sink.stop();
}
