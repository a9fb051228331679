//! runner::phase — one phase of a run: a producer per topic, all at once, sharing one [`Live`]
//! (progress line, stop flag for timed phases, merged histograms), its histograms cut into
//! intervals of about a second, and (with consumers) the backlog sampled once a second.
//!
//! Owns running producers for one bound (a record count or a duration). Must not decide rates,
//! judge what it measured, or start consumers (the caller passes them in).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::producer::{self, ProduceReport, ProducerConfig};
use crate::progress::{Live, ProgressLine, RunHistograms};
use crate::workload::Plan;

use super::consumers::Consumers;
use super::{unix_ms, Cut, Intervals, Payload, RunError, RunOptions, Target};

/// How often the measured phase's histograms are cut into an HDR-log interval.
const LOG_INTERVAL: Duration = Duration::from_secs(1);

/// Cuts a phase's live histograms into [`Intervals`].
struct Cutter {
    started: Instant,
    last: Instant,
    done: Intervals,
}

impl Cutter {
    fn new() -> Cutter {
        let now = Instant::now();
        Cutter {
            started: now,
            last: now,
            done: Intervals {
                started_unix_ms: unix_ms(),
                cuts: Vec::new(),
            },
        }
    }

    fn due(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= LOG_INTERVAL
    }

    fn cut(&mut self, live: &Live, consumers: Option<&Consumers>, now: Instant) {
        self.done.cuts.push(Cut {
            start_s: self.last.duration_since(self.started).as_secs_f64(),
            length_s: now.duration_since(self.last).as_secs_f64(),
            histograms: live.cut_interval(),
            e2e: consumers.map(Consumers::cut_e2e),
        });
        self.last = now;
    }
}

/// How a phase ends.
#[derive(Debug, Clone, Copy)]
pub(super) enum Bound {
    Records(u64),
    Time(Duration),
}

pub(super) struct Phase {
    pub(super) reports: Vec<ProduceReport>,
    pub(super) histograms: RunHistograms,
    pub(super) intervals: Intervals,
    /// With consumers: (seconds into the phase, records acknowledged but not yet read), once a
    /// second and when the producers have finished.
    pub(super) backlog: Vec<(f64, u64)>,
}

/// One phase: a producer per topic, all at once, labelled `label` on the progress line.
#[allow(clippy::too_many_arguments)]
pub(super) fn run_phase(
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    rate: Option<f64>,
    bound: Bound,
    opts: &RunOptions,
    label: &str,
    consumers: Option<&Consumers>,
) -> Result<Phase, RunError> {
    let (values, value_size) = (&payload.values, payload.value_size);
    let live = Live::new();
    let mut intervals = Cutter::new();
    let mut backlog = Vec::new();
    let topics = target.topic_names.len().max(1);
    let line = ProgressLine::start(
        live.clone(),
        &format!("{} {label}", target.name),
        value_size,
        opts.progress,
    );
    let mut threads = Vec::new();
    for (i, topic) in target.topic_names.iter().enumerate() {
        let config = ProducerConfig {
            bootstrap: target.bootstrap.clone(),
            topic: topic.clone(),
            records: match bound {
                Bound::Records(n) => n / topics as u64 + u64::from((i as u64) < n % topics as u64),
                Bound::Time(_) => u64::MAX,
            },
            rate: rate.map(|r| r / topics as f64),
            record_size: value_size,
            payloads: Some(values.clone()),
            live: Some(live.clone() as Arc<dyn crate::client::producer::LiveHook>),
            ..plan.producer.clone()
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("bench-topic-{i}"))
                .spawn(move || producer::run(config))
                .map_err(|e| RunError::Other(format!("starting a producer thread: {e}")))?,
        );
    }
    let until = match bound {
        Bound::Time(d) => Some(Instant::now() + d),
        Bound::Records(_) => None,
    };
    loop {
        let now = Instant::now();
        if until.is_some_and(|u| now >= u) || threads.iter().all(|t| t.is_finished()) {
            break;
        }
        if intervals.due(now) {
            intervals.cut(&live, consumers, now);
            if let Some(c) = consumers {
                let t = now.duration_since(intervals.started).as_secs_f64();
                backlog.push((t, live.acked().saturating_sub(c.read())));
            }
        }
        let wake = until.map_or(now + Duration::from_millis(20), |u| {
            u.min(now + Duration::from_millis(20))
        });
        std::thread::sleep(wake.saturating_duration_since(now));
    }
    live.stop();
    let mut reports = Vec::new();
    let mut first_error = None;
    for t in threads {
        match t.join() {
            Ok(Ok(r)) => reports.push(r),
            Ok(Err(e)) => {
                live.stop();
                first_error.get_or_insert(RunError::Producer(e));
            }
            Err(_) => {
                first_error.get_or_insert(RunError::Other("a producer thread panicked".into()));
            }
        }
    }
    drop(line);
    if let Some(e) = first_error {
        return Err(e);
    }
    // What the producers merged after the last cut (the records in flight at the end).
    let now = Instant::now();
    intervals.cut(&live, consumers, now);
    if let Some(c) = consumers {
        let acked: u64 = reports.iter().map(|r| r.records_acked).sum();
        let t = now.duration_since(intervals.started).as_secs_f64();
        backlog.push((t, acked.saturating_sub(c.read())));
    }
    let histograms = live.take_histograms().unwrap_or_else(RunHistograms::empty);
    Ok(Phase {
        reports,
        histograms,
        intervals: intervals.done,
        backlog,
    })
}
