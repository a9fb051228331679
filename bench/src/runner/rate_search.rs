//! runner::rate_search — the maximum sustainable rate (producerRate = 0): a closed-loop probe,
//! then rates at falling shares of its maximum until one is sustainable by OMB's rule (achieved,
//! no failures, no queueing in the producer, consumers keeping up).
//!
//! Owns the search's steps and the sustainability rule. Must not run the measured phase nor
//! assemble results (callers measure at [`Search::rate`]).

use std::time::Duration;

use crate::report::{Percentiles, RateStep};
use crate::workload::Plan;

use super::consumers::Consumers;
use super::phase::{run_phase, Bound, Phase};
use super::{merge_publish, Payload, RunError, RunOptions, Target};

/// A rate is sustainable when at least this share of it was achieved …
pub const SUSTAINED_SHARE: f64 = 0.95;
/// … and the publish delay's p99 stayed under this (ms) …
pub const MAX_DELAY_P99_MS: f64 = 100.0;
/// … and the consumers (if any) were at most this far behind (seconds of the offered rate) …
pub const MAX_BACKLOG_S: f64 = 1.0;
/// … and their backlog grew by at most this share of the offered rate per second (they read
/// at least 95 % of what was produced; OMB lowers the rate whenever the backlog exceeds 1,000).
pub const MAX_BACKLOG_GROWTH_SHARE: f64 = 0.05;
/// Rates tried by the search, as shares of the closed-loop maximum, in order.
pub const SEARCH_STEPS: [f64; 6] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5];

/// What the search found.
#[derive(Debug, Clone)]
pub struct Search {
    /// Every rate tried, in order (the closed-loop probe first, offered 0).
    pub steps: Vec<RateStep>,
    /// The first sustainable rate, else half the probe's maximum (`None` when that is under
    /// 1 record/s).
    pub rate: Option<f64>,
    /// Set when no rate tried was sustainable.
    pub warnings: Vec<String>,
}

/// Searches the maximum sustainable rate of `plan` against `target`; each trial lasts a quarter
/// of the plan's test duration (1 s to 20 s).
pub fn search(
    plan: &Plan,
    target: &Target,
    payload: &Payload,
    opts: &RunOptions,
) -> Result<Search, RunError> {
    let value_size = payload.value_size;
    let mut warnings = Vec::new();
    let mut rate_search = Vec::new();
    let mut rate = None;
    let trial = (plan.test / 4).clamp(Duration::from_secs(1), Duration::from_secs(20));
    let probe = run_phase(
        plan,
        target,
        payload,
        None,
        Bound::Time(trial),
        opts,
        "search max",
        None,
    )?;
    let max = merge_publish(&probe.reports, value_size).msg_per_s;
    rate_search.push(step(0.0, &probe, value_size, None, None));
    for share in SEARCH_STEPS {
        let offered = max * share;
        if offered < 1.0 {
            break;
        }
        let label = format!("search {offered:.0}/s");
        // The workload's consumers read during each trial: their backlog counts.
        let consumers = if plan.consumers_per_subscription > 0 {
            Some(Consumers::start(plan, target)?)
        } else {
            None
        };
        let p = run_phase(
            plan,
            target,
            payload,
            Some(offered),
            Bound::Time(trial),
            opts,
            &label,
            consumers.as_ref(),
        );
        let backlog = consumers.map(|c| {
            let behind = p.as_ref().map_or(0, |p| c.backlog(p));
            c.stop();
            behind
        });
        let p = p?;
        let growth = backlog.and(backlog_growth(&p.backlog));
        let s = step(offered, &p, value_size, backlog, growth);
        let ok = s.sustainable;
        rate_search.push(s);
        if ok {
            rate = Some(offered);
            break;
        }
    }
    if rate.is_none() {
        let fallback = max * SEARCH_STEPS[SEARCH_STEPS.len() - 1];
        warnings.push(format!(
            "no rate tried was sustainable (achieved ≥ {SUSTAINED_SHARE} of offered with publish delay p99 ≤ {MAX_DELAY_P99_MS} ms); measured at {fallback:.0}/s"
        ));
        rate = (fallback >= 1.0).then_some(fallback);
    }
    Ok(Search {
        steps: rate_search,
        rate,
        warnings,
    })
}

/// The warning when the measured phase did not sustain the rate the search chose (the maximum
/// is lower over the full test duration).
pub(super) fn unsustained(
    rate: f64,
    measured: &Phase,
    value_size: usize,
    backlog: Option<u64>,
    achieved_msg_per_s: f64,
) -> Option<String> {
    let growth = backlog.and(backlog_growth(&measured.backlog));
    if step(rate, measured, value_size, backlog, growth).sustainable {
        return None;
    }
    let behind = backlog.map_or(String::new(), |b| format!(", consumer backlog {b}"));
    Some(format!(
        "the measured phase did not sustain the searched rate {rate:.0}/s (achieved {achieved_msg_per_s:.0}/s, publish delay p99 {:.2} ms{behind}): the maximum is lower over the full test duration",
        Percentiles::of(&measured.histograms.delay).p99
    ))
}

fn step(
    offered: f64,
    p: &Phase,
    value_size: usize,
    consumer_backlog: Option<u64>,
    consumer_backlog_growth_per_s: Option<f64>,
) -> RateStep {
    let mut s = RateStep {
        offered,
        achieved_msg_per_s: merge_publish(&p.reports, value_size).msg_per_s,
        publish_delay_p99_ms: Percentiles::of(&p.histograms.delay).p99,
        publish_latency_p99_ms: Percentiles::of(&p.histograms.latency).p99,
        consumer_backlog,
        consumer_backlog_growth_per_s,
        sustainable: false,
    };
    let failed: u64 = p.reports.iter().map(|r| r.records_failed).sum();
    s.sustainable = sustainable(&s, failed);
    s
}

/// The search's rule for one trial (OMB's): the offered rate was achieved without failures,
/// records did not queue up in the producer, and the consumers kept up — they were not far
/// behind at the end, and not falling further behind during the trial.
pub(super) fn sustainable(s: &RateStep, failed: u64) -> bool {
    s.offered > 0.0
        && failed == 0
        && s.achieved_msg_per_s >= SUSTAINED_SHARE * s.offered
        && s.publish_delay_p99_ms <= MAX_DELAY_P99_MS
        && s.consumer_backlog
            .is_none_or(|b| b as f64 <= MAX_BACKLOG_S * s.offered)
        && s.consumer_backlog_growth_per_s
            .is_none_or(|g| g <= MAX_BACKLOG_GROWTH_SHARE * s.offered)
}

/// How fast the consumers fell behind: the least-squares slope (records/s) of the backlog
/// samples (seconds, records); `None` with fewer than two samples or under a second between
/// the first and the last (a backlog that merely jitters has a slope near 0).
pub(super) fn backlog_growth(samples: &[(f64, u64)]) -> Option<f64> {
    let (first, last) = (samples.first()?.0, samples.last()?.0);
    if samples.len() < 2 || last - first < 1.0 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_b = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut cov, mut var) = (0.0, 0.0);
    for &(t, b) in samples {
        cov += (t - mean_t) * (b as f64 - mean_b);
        var += (t - mean_t) * (t - mean_t);
    }
    (var > 0.0).then(|| cov / var)
}
