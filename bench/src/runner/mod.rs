//! runner — executes a [`Plan`] against one target and assembles its [`BenchResult`]: the
//! warm-up phase (figures discarded), the maximum-rate search when the rate is 0
//! ([`rate_search`]), the measured phase ([`measured`]: the broker's CPU read before and after;
//! with consumers, each topic is read from its end while it is produced and the values carry
//! their send time, so the result has end-to-end latency), and then the honesty check
//! ([`ceiling`]: the same load against an in-process null sink, whose rate is the generator's
//! ceiling), assembled by [`assemble`].
//!
//! A phase runs one producer (`client::producer`, `producersPerTopic` connections) per topic, all
//! at once, sharing one [`Live`](crate::progress::Live) (progress line, stop flag for timed
//! phases, merged histograms). Each phase opens fresh connections (OMB keeps its producers across
//! warm-up and test; a fresh start only costs the measured phase a Metadata round trip).
//!
//! Besides [`run`], the pieces are a library for sweeps (`tuning`): [`Payload::of`],
//! [`warm_up`], [`rate_search::search`] and [`measure_at`] (a measured phase at a fixed rate,
//! assembled into an [`Outcome`]).
//!
//! Owns phase sequencing and merging per-topic reports. Must not create topics (the caller does,
//! with whatever admin client fits the target) and must not read argv.

mod assemble;
pub mod ceiling;
mod consumers;
mod measured;
mod phase;
pub mod rate_search;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use hdrhistogram::Histogram;

use crate::client::consumer::ConsumerError;
use crate::client::producer::{ProduceReport, ProducerError};
use crate::null_sink::SinkError;
use crate::payload::{PayloadError, PayloadPool};
use crate::progress::{latency_histogram, RunHistograms};
use crate::report::{BenchResult, Publish};
use crate::workload::Plan;

pub use ceiling::CEILING_MAX;
pub use rate_search::{
    Search, MAX_BACKLOG_GROWTH_SHARE, MAX_BACKLOG_S, MAX_DELAY_P99_MS, SEARCH_STEPS,
    SUSTAINED_SHARE,
};

use phase::{run_phase, Bound};

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("producer: {0}")]
    Producer(#[from] ProducerError),
    #[error("payload: {0}")]
    Payload(#[from] PayloadError),
    #[error("ceiling: {0}")]
    Sink(#[from] SinkError),
    #[error("consumer: {0}")]
    Consumer(#[from] ConsumerError),
    #[error("{0}")]
    Other(String),
}

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct Target {
    /// Shown in summaries and `compare` tables.
    pub name: String,
    pub bootstrap: String,
    /// Topic names (as many as the plan's `topics`), already created or auto-created.
    pub topic_names: Vec<String>,
}

/// Options of the machinery around the measurement.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The broker's pid (else: the process listening on the bootstrap port, if local).
    pub broker_pid: Option<u32>,
    /// Run the null-sink ceiling check first.
    pub check_ceiling: bool,
    /// Draw the live progress line.
    pub progress: bool,
    /// "produce" or "run".
    pub kind: String,
    /// A ceiling (msg/s, MB/s) already measured for this plan (`compare` measures it once for
    /// all targets); with `check_ceiling`, used instead of running the sink again.
    pub known_ceiling: Option<(f64, f64)>,
}

/// A run's result, its merged histograms and the measured phase's one-second intervals (for
/// the HDR log).
pub struct Outcome {
    pub result: BenchResult,
    pub histograms: RunHistograms,
    pub intervals: Intervals,
}

/// The measured phase cut into intervals of about a second.
#[derive(Debug, Clone)]
pub struct Intervals {
    /// When the phase started (the log's base time).
    pub started_unix_ms: u64,
    pub cuts: Vec<Cut>,
}

/// One interval of the measured phase.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Start and length in seconds, from `Intervals::started_unix_ms`.
    pub start_s: f64,
    pub length_s: f64,
    /// Publish latency and delay acknowledged meanwhile.
    pub histograms: RunHistograms,
    /// End-to-end latency of the records consumed meanwhile (`None` without consumers); the
    /// last interval also holds what the consumers read while the run drained.
    pub e2e: Option<Histogram<u64>>,
}

/// The values every phase of a run sends (generated once per run).
#[derive(Debug, Clone)]
pub struct Payload {
    values: Arc<Vec<Vec<u8>>>,
    value_size: usize,
}

impl Payload {
    /// The plan's payload pool, after checking `target` names one topic per plan topic.
    pub fn of(plan: &Plan, target: &Target) -> Result<Payload, RunError> {
        if target.topic_names.len() != plan.topics as usize {
            return Err(RunError::Other(format!(
                "{} topic names for {} topics",
                target.topic_names.len(),
                plan.topics
            )));
        }
        let pool = PayloadPool::generate(&plan.payload, plan.message_size, 0x5eed)?;
        Ok(Payload {
            value_size: pool.value_size(),
            values: Arc::new(pool.values),
        })
    }

    /// Bytes of each value.
    pub fn value_size(&self) -> usize {
        self.value_size
    }
}

/// Runs `plan` against `target`.
pub fn run(plan: &Plan, target: &Target, opts: &RunOptions) -> Result<Outcome, RunError> {
    let payload = Payload::of(plan, target)?;
    warm_up(plan, target, &payload, opts)?;
    let mut rate = rate_of(plan.producer_rate);
    let mut search = None;
    if rate.is_none() && plan.records.is_none() {
        let s = rate_search::search(plan, target, &payload, opts)?;
        rate = s.rate;
        search = Some(s);
    }
    measure_at(plan, target, &payload, rate, search, opts)
}

/// The warm-up phase at the plan's rate for its warm-up duration (nothing when that is 0); its
/// figures are discarded.
pub fn warm_up(
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    opts: &RunOptions,
) -> Result<(), RunError> {
    if !plan.warmup.is_zero() {
        run_phase(
            plan,
            target,
            payload,
            rate_of(plan.producer_rate),
            Bound::Time(plan.warmup),
            opts,
            "warmup",
            None,
        )?;
    }
    Ok(())
}

/// The measured phase at `rate` (`None`: closed loop; bounded by the plan's records, else its
/// test duration), then the ceiling check when `opts` asks for it, assembled into an
/// [`Outcome`]. `search` is the search that chose `rate`, if one did: its steps and warnings go
/// into the result, with a warning when the measured phase did not sustain its rate.
pub fn measure_at(
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    rate: Option<f64>,
    search: Option<Search>,
    opts: &RunOptions,
) -> Result<Outcome, RunError> {
    let (steps, mut warnings) = search.map_or((Vec::new(), Vec::new()), |s| (s.steps, s.warnings));
    let mut m = measured::measure(plan, target, payload, rate, opts)?;
    warnings.append(&mut m.warnings);
    if !steps.is_empty() {
        let unsustained = rate.and_then(|r| {
            rate_search::unsustained(
                r,
                &m.phase,
                payload.value_size,
                m.backlog,
                m.publish.msg_per_s,
            )
        });
        warnings.extend(unsustained);
    }
    // The ceiling after the measured phase, so the measured phase starts when the command does
    // (tests time faults against it) and the target is idle while the sink runs.
    let figures = ceiling::figures(plan, target, payload, opts)?;
    warnings.extend(m.cpu_warning.take());
    let verdict = figures.map(|f| ceiling::verdict(f, &m.publish));
    Ok(assemble::outcome(
        plan,
        target,
        opts,
        payload.value_size,
        rate,
        steps,
        m,
        verdict,
        warnings,
    ))
}

fn rate_of(r: f64) -> Option<f64> {
    (r > 0.0).then_some(r)
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The publish figures of several producers that ran at once (one per topic).
pub fn merge_publish(reports: &[ProduceReport], value_size: usize) -> Publish {
    let records: u64 = reports.iter().map(|r| r.records_acked).sum();
    let failed: u64 = reports.iter().map(|r| r.records_failed).sum();
    let elapsed = reports.iter().map(|r| r.elapsed_s).fold(0.0, f64::max);
    let wire: f64 = reports
        .iter()
        .map(|r| r.wire_mb_per_s * r.elapsed_s * 1e6)
        .sum();
    let uncompressed: f64 = reports
        .iter()
        .map(|r| r.wire_mb_per_s * r.elapsed_s * 1e6 * r.compression_ratio)
        .sum();
    let batches: u64 = reports.iter().map(|r| r.batches).sum();
    let per_s = |n: f64| if elapsed > 0.0 { n / elapsed } else { 0.0 };
    Publish {
        records,
        failed,
        expired: reports.iter().map(|r| r.records_expired).sum(),
        blocked: reports.iter().map(|r| r.records_blocked).sum(),
        retries: reports.iter().map(|r| r.retries).sum(),
        epoch_bumps: reports.iter().map(|r| r.epoch_bumps).sum(),
        first_error: reports.iter().find_map(|r| r.first_error),
        elapsed_s: elapsed,
        msg_per_s: per_s(records as f64),
        mb_per_s: per_s(records as f64 * value_size as f64) / 1e6,
        wire_mb_per_s: per_s(wire) / 1e6,
        compression_ratio: if wire > 0.0 { uncompressed / wire } else { 0.0 },
        batches,
        requests: reports.iter().map(|r| r.requests).sum(),
        records_per_batch: if batches > 0 {
            (records + failed) as f64 / batches as f64
        } else {
            0.0
        },
    }
}

/// Merges histograms of several runs (e.g. per target) — never averages percentiles.
pub fn merge_histograms(all: &[&Histogram<u64>]) -> Histogram<u64> {
    let mut h = latency_histogram();
    for x in all {
        let _ = h.add(*x);
    }
    h
}
