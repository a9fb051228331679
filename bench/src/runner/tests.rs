//! Tests of the runner: the sustainability rule and runs against an in-process null sink.

use std::time::Duration;

use super::rate_search::{backlog_growth, sustainable};
use super::*;
use crate::client::batch::Compression;
use crate::client::producer::ProducerConfig;
use crate::null_sink::{NullSink, NullSinkConfig};
use crate::payload::PayloadSpec;
use crate::report::RateStep;
use crate::workload::KeyDistributor;

/// A trial whose consumers fell more than a second of the offered rate behind is not
/// sustainable, however well the broker acknowledged; without consumers the backlog does
/// not count.
#[test]
fn a_rate_the_consumers_cannot_keep_up_with_is_not_sustainable() {
    let trial = |backlog: Option<u64>| RateStep {
        offered: 10_000.0,
        achieved_msg_per_s: 9_990.0,
        publish_delay_p99_ms: 3.0,
        publish_latency_p99_ms: 4.0,
        consumer_backlog: backlog,
        consumer_backlog_growth_per_s: None,
        sustainable: false,
    };
    assert!(sustainable(&trial(None), 0));
    assert!(sustainable(&trial(Some(0)), 0));
    assert!(
        sustainable(&trial(Some(10_000)), 0),
        "one second behind is allowed"
    );
    assert!(!sustainable(&trial(Some(10_001)), 0));
    assert!(!sustainable(&trial(Some(250_000)), 0));
    // The other rules still hold.
    assert!(!sustainable(&trial(Some(0)), 1), "a failed record");
    let mut slow = trial(Some(0));
    slow.achieved_msg_per_s = 9_000.0;
    assert!(!sustainable(&slow, 0), "under 95 % achieved");
    let mut late = trial(None);
    late.publish_delay_p99_ms = 150.0;
    assert!(!sustainable(&late, 0), "publish delay p99 over 100 ms");
}

/// Consumers that read 10 % less than is produced fall behind by 1,000 records a second:
/// within a short trial the backlog stays under a second of the rate, but it grows, and a
/// growing backlog is not sustainable; a backlog that jitters around a level is.
#[test]
fn a_growing_consumer_backlog_is_not_sustainable() {
    let offered = 10_000.0;
    // Sampled once a second over a 4 s trial and at its end.
    let falling_behind: Vec<(f64, u64)> = [1.0, 2.0, 3.0, 4.0, 4.05]
        .iter()
        .map(|&t| (t, 300 + (t * 1_000.0) as u64))
        .collect();
    let steady = [
        (1.0, 900),
        (2.0, 250),
        (3.0, 1_400),
        (4.0, 600),
        (4.05, 800),
    ];
    let grow = backlog_growth(&falling_behind).unwrap();
    assert!((grow - 1_000.0).abs() < 1.0, "{grow}");
    let jitter = backlog_growth(&steady).unwrap();
    assert!(jitter.abs() < 100.0, "{jitter}");
    // Too little to judge a trend.
    assert_eq!(backlog_growth(&[]), None);
    assert_eq!(backlog_growth(&[(1.0, 5)]), None);
    assert_eq!(backlog_growth(&[(1.0, 5), (1.5, 900)]), None);

    let trial = |samples: &[(f64, u64)]| RateStep {
        offered,
        achieved_msg_per_s: 9_990.0,
        publish_delay_p99_ms: 3.0,
        publish_latency_p99_ms: 4.0,
        consumer_backlog: samples.last().map(|s| s.1),
        consumer_backlog_growth_per_s: backlog_growth(samples),
        sustainable: false,
    };
    let behind = trial(&falling_behind);
    assert!(
        behind.consumer_backlog.unwrap() as f64 <= MAX_BACKLOG_S * offered,
        "under a second behind at the end: only the growth tells"
    );
    assert!(!sustainable(&behind, 0), "{behind:?}");
    assert!(sustainable(&trial(&steady), 0));
    assert!(sustainable(&trial(&[(1.0, 5)]), 0), "no trend: not judged");
    // 5 % of the rate is allowed (what a 95 % achieved rate allows the producer).
    let at_limit: Vec<(f64, u64)> = [1.0, 2.0, 3.0]
        .iter()
        .map(|&t| (t, (t * 499.0) as u64))
        .collect();
    assert!(sustainable(&trial(&at_limit), 0));
}

/// A null sink with `partitions` per topic, and topics "a" and "b" on it.
fn sink_target(partitions: u32) -> (NullSink, Target) {
    let sink = NullSink::start(NullSinkConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        partitions,
    })
    .unwrap();
    let target = Target {
        name: "sink".into(),
        bootstrap: sink.addr().to_string(),
        topic_names: vec!["a".into(), "b".into()],
    };
    (sink, target)
}

fn plan(records: Option<u64>, rate: f64, test: Duration) -> Plan {
    let mut producer = ProducerConfig::new("", "");
    producer.acks = 1;
    producer.batch_size = 16 << 10;
    producer.linger = Duration::from_millis(2);
    producer.compression = Compression::Lz4;
    Plan {
        name: "unit".into(),
        topics: 2,
        partitions_per_topic: 3,
        payload: PayloadSpec::JsonLog,
        message_size: 400,
        key_distributor: KeyDistributor::NoKey,
        consumers_per_subscription: 0,
        producer_rate: rate,
        warmup: Duration::ZERO,
        test,
        records,
        producer,
        consumer_config: Default::default(),
    }
}

#[test]
fn a_timed_run_against_a_null_sink_reports_every_acked_record_once() {
    let (sink, target) = sink_target(3);
    let opts = RunOptions {
        check_ceiling: true,
        kind: "run".into(),
        ..RunOptions::default()
    };
    let out = run(
        &plan(None, 4000.0, Duration::from_millis(1500)),
        &target,
        &opts,
    )
    .unwrap();
    let r = &out.result;
    // Everything the sink acknowledged (ceiling ran against its own sink) was counted.
    let acked = sink
        .counters()
        .records
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(r.publish.records, acked);
    assert_eq!(r.publish_latency_ms.count, acked);
    // Paced at 4000/s for at least the 1.5 s asked (how many of those records a loaded machine
    // got out is not this test's business; never more than the rate allows).
    assert!(r.publish.elapsed_s >= 1.5, "{:?}", r.publish);
    assert!(
        acked > 0 && acked as f64 <= 4000.0 * r.publish.elapsed_s + 2.0,
        "{acked} in {} s",
        r.publish.elapsed_s
    );
    assert!(r.publish.compression_ratio > 1.5, "{:?}", r.publish);
    let delay = r.publish_delay_ms.as_ref().unwrap();
    assert_eq!(delay.count, acked);
    let ceiling = r.ceiling.as_ref().unwrap();
    assert!(ceiling.msg_per_s > r.publish.msg_per_s, "{ceiling:?}");
    assert_eq!(r.config.topics, vec!["a", "b"]);
    assert_eq!(r.config.partitions_per_topic, 3);
    sink.stop();
}

#[test]
fn a_record_bound_closed_loop_run_sends_exactly_that_many() {
    let (sink, target) = sink_target(1);
    let opts = RunOptions {
        kind: "produce".into(),
        ..RunOptions::default()
    };
    let out = run(&plan(Some(5_001), 0.0, Duration::ZERO), &target, &opts).unwrap();
    assert_eq!(out.result.publish.records, 5_001);
    assert!(out.result.publish_delay_ms.is_none());
    assert!(out.result.rate_search.is_empty());
    assert!(out.result.ceiling.is_none());
    sink.stop();
}

/// producerRate 0: the search probes the closed-loop maximum, tries falling shares of it in order
/// and the measured phase runs at the first sustainable one (or the fallback, with a warning).
/// How fast this machine is decides which share is chosen and whether the measured phase, on
/// later seconds than the search, sustained it: the test checks the runner's rules, not the
/// machine's speed — sustained by the search's own rule, or the result says it was not.
#[test]
fn rate_zero_searches_a_sustainable_rate_and_measures_at_it() {
    let (sink, target) = sink_target(3);
    let opts = RunOptions {
        kind: "run".into(),
        ..RunOptions::default()
    };
    let out = run(&plan(None, 0.0, Duration::from_secs(2)), &target, &opts).unwrap();
    let r = &out.result;
    let search = &r.rate_search;
    assert!(search.len() >= 2, "{search:?}");
    assert_eq!(search[0].offered, 0.0, "the closed-loop probe comes first");
    let max = search[0].achieved_msg_per_s;
    assert!(max >= 1.0, "the probe acknowledged records: {search:?}");
    for (s, share) in search[1..].iter().zip(SEARCH_STEPS) {
        assert!((s.offered - max * share).abs() < 1.0, "{search:?}");
    }
    // The search stops at the first sustainable rate.
    let first_sustainable = search.iter().position(|s| s.sustainable);
    if let Some(i) = first_sustainable {
        assert_eq!(i, search.len() - 1, "{search:?}");
    }
    match first_sustainable {
        Some(i) => {
            assert_eq!(r.config.producer_rate, search[i].offered);
            assert!(
                !r.warnings.iter().any(|w| w.starts_with("no rate tried")),
                "{:?}",
                r.warnings
            );
        }
        None => {
            assert!(
                r.warnings[0].starts_with("no rate tried"),
                "{:?}",
                r.warnings
            );
            let fallback = max * SEARCH_STEPS[SEARCH_STEPS.len() - 1];
            assert!((r.config.producer_rate - fallback).abs() < 1e-6);
        }
    }
    // Measured at the chosen rate: every record has an intended send time (publish delay), and
    // a paced producer never offers records before they are due, so it cannot exceed the rate.
    let offered = r.config.producer_rate;
    let delay = r
        .publish_delay_ms
        .as_ref()
        .expect("a rated run reports publish delay");
    assert_eq!(delay.count, r.publish.records);
    assert!(
        r.publish.msg_per_s < offered * 1.1,
        "{} vs {offered}",
        r.publish.msg_per_s
    );
    // Sustained by the search's own rule, or a warning says the measured phase was not.
    let warned = r.warnings.iter().any(|w| {
        w.starts_with(&format!(
            "the measured phase did not sustain the searched rate {offered:.0}/s"
        ))
    });
    if !warned {
        assert_eq!(r.publish.failed, 0);
        assert!(
            r.publish.msg_per_s >= SUSTAINED_SHARE * offered,
            "{} vs {offered} without a warning: {:?}",
            r.publish.msg_per_s,
            r.warnings
        );
        assert!(delay.p99 <= MAX_DELAY_P99_MS, "{delay:?}: {:?}", r.warnings);
    }
    sink.stop();
}

#[test]
fn an_offered_rate_far_above_capacity_finishes_and_shows_as_publish_delay() {
    // Behind schedule with buffer.memory full, the producer once spun without reading
    // responses (a zero-length timer never yielded): this run never finished.
    let sink = NullSink::start(NullSinkConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        partitions: 1,
    })
    .unwrap();
    let target = Target {
        name: "sink".into(),
        bootstrap: sink.addr().to_string(),
        topic_names: vec!["a".into()],
    };
    let mut p = plan(Some(30_000), 50_000_000.0, Duration::ZERO);
    p.topics = 1;
    p.producer.buffer_memory = 64 << 10;
    let opts = RunOptions {
        kind: "produce".into(),
        ..RunOptions::default()
    };
    let out = run(&p, &target, &opts).unwrap();
    assert_eq!(out.result.publish.records, 30_000);
    let delay = out.result.publish_delay_ms.unwrap();
    assert!(delay.max > 1.0, "{delay:?}");
    sink.stop();
}
