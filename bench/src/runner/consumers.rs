//! runner::consumers — the consumers of a measured phase (or of a search trial): one consumer
//! group of `consumerPerSubscription` clients per topic, positioned at the end of the topic
//! before the producers start, reading while they produce; their backlog and end-to-end
//! latency.
//!
//! Owns starting, sampling and stopping those consumers. Must not produce or judge a rate.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::client::consumer::{
    self, ConsumeReport, ConsumerConfig, ConsumerError, Progress, StartAt,
};
use crate::workload::Plan;

use super::phase::Phase;
use super::{merge_histograms, RunError, Target};

/// The consumers of a measured phase: one consumer group of `consumerPerSubscription` clients
/// per topic, positioned at the end of the topic before the producers start.
pub(super) struct Consumers {
    running: Vec<(Arc<Progress>, ConsumerThread)>,
}

type ConsumerThread = std::thread::JoinHandle<Result<ConsumeReport, ConsumerError>>;

/// What the consumers of a measured phase report: each one's report, the whole run's
/// end-to-end latency, and the part of it recorded after the last interval cut.
pub(super) type Consumed = (Vec<ConsumeReport>, Histogram<u64>, Histogram<u64>);

/// The consumers stop this long after the last record they read, once the producers are done.
const CONSUMER_IDLE: Duration = Duration::from_secs(2);

impl Consumers {
    pub(super) fn start(plan: &Plan, target: &Target) -> Result<Consumers, RunError> {
        let mut consumers = Consumers {
            running: Vec::new(),
        };
        for topic in &target.topic_names {
            let mut config = ConsumerConfig {
                start: StartAt::Latest,
                records: None,
                idle: None,
                duration: Duration::MAX,
                e2e: true,
                consumers: plan.consumers_per_subscription,
                ..ConsumerConfig::new(&target.bootstrap, topic)
            };
            if let Err(e) = apply_consumer_config(&mut config, &plan.consumer_config) {
                consumers.stop();
                return Err(RunError::Other(e));
            }
            let progress = Arc::new(Progress {
                e2e_intervals: true,
                ..Progress::default()
            });
            let shared = progress.clone();
            match std::thread::Builder::new()
                .name("bench-run-consumers".into())
                .spawn(move || consumer::run_with(config, shared))
            {
                Ok(handle) => consumers.running.push((progress, handle)),
                Err(e) => {
                    consumers.stop();
                    return Err(RunError::Other(format!("starting the consumers: {e}")));
                }
            }
        }
        // Produce only once every consumer knows where the topic ends, or records are missed.
        let deadline = Instant::now() + Duration::from_secs(60);
        let want = plan.consumers_per_subscription;
        while !consumers
            .running
            .iter()
            .all(|(p, _)| p.positioned.load(Ordering::SeqCst) >= want)
        {
            if Instant::now() > deadline || consumers.running.iter().any(|(_, h)| h.is_finished()) {
                return Err(consumers.failed("the consumers did not start"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(consumers)
    }

    /// Records of `phase` acknowledged but not yet read (right after its producers finished).
    pub(super) fn backlog(&self, phase: &Phase) -> u64 {
        let acked: u64 = phase.reports.iter().map(|r| r.records_acked).sum();
        acked.saturating_sub(self.read())
    }

    pub(super) fn read(&self) -> u64 {
        self.running
            .iter()
            .map(|(p, _)| p.records.load(Ordering::SeqCst))
            .sum()
    }

    /// The end-to-end latencies the consumers recorded since the previous cut, merged.
    pub(super) fn cut_e2e(&self) -> Histogram<u64> {
        let cuts: Vec<Histogram<u64>> = self
            .running
            .iter()
            .filter_map(|(p, _)| p.cut_e2e())
            .collect();
        merge_histograms(&cuts.iter().collect::<Vec<_>>())
    }

    /// Waits until the consumers have read `acked` records (or read nothing new for
    /// [`CONSUMER_IDLE`]), stops them, and merges their end-to-end latencies: the whole run's,
    /// and those recorded since the last [`Consumers::cut_e2e`].
    pub(super) fn finish(self, acked: u64) -> Result<Consumed, RunError> {
        let (mut seen, mut since) = (self.read(), Instant::now());
        while seen < acked && since.elapsed() < CONSUMER_IDLE {
            std::thread::sleep(Duration::from_millis(10));
            let now = self.read();
            if now != seen {
                (seen, since) = (now, Instant::now());
            }
        }
        let progresses: Vec<Arc<Progress>> = self.running.iter().map(|(p, _)| p.clone()).collect();
        let mut reports = Vec::new();
        for (progress, handle) in self.running {
            progress.stop.store(true, Ordering::SeqCst);
            match handle.join() {
                Ok(Ok(r)) => reports.push(r),
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(RunError::Other("a consumer thread panicked".into())),
            }
        }
        let histograms: Vec<&Histogram<u64>> = reports
            .iter()
            .filter_map(|r| r.histograms.as_ref().map(|h| &h.e2e))
            .collect();
        let e2e = merge_histograms(&histograms);
        let rest: Vec<Histogram<u64>> = progresses.iter().filter_map(|p| p.cut_e2e()).collect();
        let drained = merge_histograms(&rest.iter().collect::<Vec<_>>());
        Ok((reports, e2e, drained))
    }

    pub(super) fn stop(self) {
        for (progress, handle) in self.running {
            progress.stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
    }

    /// Stops them and returns the first consumer error, or `what`.
    fn failed(self, what: &str) -> RunError {
        let mut first = None;
        for (progress, handle) in self.running {
            progress.stop.store(true, Ordering::SeqCst);
            if let Ok(Err(e)) = handle.join() {
                first.get_or_insert(RunError::Consumer(e));
            }
        }
        first.unwrap_or_else(|| RunError::Other(what.into()))
    }
}

/// The workload's consumer settings with Kafka's names; group settings are accepted and
/// ignored (the consumers are assigned every partition, as OMB's are one subscription).
fn apply_consumer_config(
    config: &mut ConsumerConfig,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("consumer config {name} = {v:?} is not a number"))
    }
    for (name, value) in settings {
        match name.as_str() {
            "fetch.min.bytes" => config.fetch_min_bytes = num(name, value)?,
            "fetch.max.wait.ms" => config.fetch_max_wait = Duration::from_millis(num(name, value)?),
            "max.partition.fetch.bytes" => config.max_partition_fetch_bytes = num(name, value)?,
            "fetch.max.bytes" => config.fetch_max_bytes = num(name, value)?,
            _ => {}
        }
    }
    Ok(())
}
