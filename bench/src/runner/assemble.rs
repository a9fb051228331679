//! runner::assemble — turns what the phases measured into the result document ([`BenchResult`])
//! and the run's [`Outcome`] (merged histograms, per-second intervals).
//!
//! Owns the mapping from plan and measurements to the document's fields. Must not measure.

use crate::payload::PayloadSpec;
use crate::report::{BenchResult, Ceiling, Percentiles, RateStep, RunConfig, FORMAT, VERSION};
use crate::workload::Plan;

use super::measured::Measured;
use super::{Outcome, RunOptions, Target};

/// The run's outcome: `rate` is the offered rate of the measured phase (`None`: closed loop),
/// `rate_search` the search's steps (empty without one), `warnings` in the reader's order.
#[allow(clippy::too_many_arguments)]
pub(super) fn outcome(
    plan: &Plan,
    target: &Target,
    opts: &RunOptions,
    value_size: usize,
    rate: Option<f64>,
    rate_search: Vec<RateStep>,
    measured: Measured,
    ceiling: Option<Ceiling>,
    warnings: Vec<String>,
) -> Outcome {
    let Measured {
        phase: measured,
        publish,
        e2e_latency_ms,
        broker_cpu,
        started_unix_ms,
        ..
    } = measured;
    let producer = &plan.producer;
    let mut result = BenchResult {
        format: FORMAT.into(),
        version: VERSION,
        kind: opts.kind.clone(),
        weir_version: env!("CARGO_PKG_VERSION").into(),
        started_unix_ms,
        target_name: target.name.clone(),
        bootstrap: target.bootstrap.clone(),
        config: RunConfig {
            workload: plan.name.clone(),
            topics: target.topic_names.clone(),
            partitions_per_topic: measured
                .reports
                .first()
                .map_or(plan.partitions_per_topic, |r| r.partitions),
            message_size: value_size,
            payload: payload_name(&plan.payload),
            key_distributor: match producer.keys {
                None => "NO_KEY".into(),
                Some(_) if plan.records.is_none() => plan.key_distributor.name().into(),
                Some(n) if producer.random_keys => format!("RANDOM_KEYS({n})"),
                Some(n) => format!("KEYS({n})"),
            },
            producers_per_topic: producer.connections,
            consumers_per_subscription: plan.consumers_per_subscription,
            producer_rate: rate.unwrap_or(0.0),
            warmup_s: plan.warmup.as_secs_f64(),
            test_s: if plan.records.is_some() {
                0.0
            } else {
                plan.test.as_secs_f64()
            },
            records: plan.records,
            acks: producer.acks,
            idempotence: producer.idempotence,
            linger_ms: producer.linger.as_millis() as u64,
            batch_size: producer.batch_size,
            compression: producer.compression,
            compression_level: producer.compression_level,
            max_in_flight: producer.max_in_flight,
            buffer_memory: producer.buffer_memory,
        },
        publish,
        publish_latency_ms: Percentiles::of(&measured.histograms.latency),
        publish_delay_ms: rate.map(|_| Percentiles::of(&measured.histograms.delay)),
        e2e_latency_ms,
        broker_cpu,
        ceiling,
        cross_check: None,
        rate_search,
        warnings,
    };
    result.judge();
    Outcome {
        result,
        histograms: measured.histograms,
        intervals: measured.intervals,
    }
}

fn payload_name(p: &PayloadSpec) -> String {
    match p {
        PayloadSpec::JsonLog => "json_log".into(),
        PayloadSpec::Random { ratio } => format!("random(ratio={ratio})"),
        PayloadSpec::File { path } => format!("file({})", path.display()),
    }
}
