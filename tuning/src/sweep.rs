//! sweep — runs a plan's points against a cluster through the bench runner (as a library: warm-up,
//! the rate search for max-throughput points, then k measured windows at one rate) and appends
//! each finished point to the results file; `resume` skips the points the file already holds.
//!
//! Owns point order, skipping, measuring the machine's limits once per start (before any broker
//! runs, on the results' filesystem), the stop flag (checked between repetitions: an interrupted point
//! is not written), topic lifetimes (created per point, deleted after) and local broker
//! restarts per variant. Must not print (an [`Observer`] shows progress) nor speak Kafka's admin
//! protocol itself ([`Topics`] does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bench::limits::{self, Limits, LimitsConfig};
use bench::runner::{self, Payload, RunError, RunOptions, Target};

use crate::local::{self, LocalBroker};
use crate::machine::Machine;
use crate::plan::SweepPlan;
use crate::point::Point;
use crate::results::{Header, Line, PointRecord, Repetition, Results, Summary, TargetInfo, Writer};
use crate::TuneError;

/// Creates and deletes the topics of a point (the caller's admin client).
pub trait Topics {
    fn create(&self, bootstrap: &str, names: &[String], partitions: u32) -> Result<(), String>;
    /// Best effort: a cluster that cannot delete keeps them.
    fn delete(&self, bootstrap: &str, names: &[String]) -> Result<(), String>;
}

/// Watches the sweep (a progress bar, a log).
pub trait Observer {
    /// Before the first point: points in the plan, points to run, at most how long (s).
    fn begin(&self, total: usize, to_run: usize, estimate_s: f64);
    /// A point starts; `seconds` is at most how long it takes.
    fn point_started(&self, point: &Point, seconds: f64);
    /// A point was written.
    fn point_done(&self, record: &PointRecord);
    /// The machine's limits are being measured, for about `seconds`.
    fn measuring_limits(&self, _seconds: f64) {}
    /// The machine's limits, measured.
    fn limits(&self, _limits: &Limits) {}
}

/// Where the points run.
#[derive(Debug, Clone)]
pub enum Cluster {
    /// An existing Kafka-compatible cluster.
    Bootstrap(String),
    /// A `weir serve` the sweep starts (per broker variant) from this executable.
    Local { weir_exe: PathBuf },
}

/// What a sweep did.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepOutcome {
    /// Points run and written now.
    pub ran: usize,
    /// Points the file already held.
    pub skipped: usize,
    /// Of `ran`: points that ended in an error (written with it).
    pub failed: usize,
    /// The stop flag ended the sweep early.
    pub stopped: bool,
}

/// How a sweep runs, beyond its plan and cluster.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepOptions {
    /// Continue `out`: the points it holds are skipped.
    pub resume: bool,
    /// Each pass of the limits measured before the first point (disk write, disk read,
    /// loopback TCP; [`bench::limits`]); `None`: not measured.
    pub limits_pass: Option<Duration>,
}

/// Runs `plan` against `cluster`, appending to `out`.
pub fn sweep(
    plan: &SweepPlan,
    cluster: &Cluster,
    out: &Path,
    options: &SweepOptions,
    topics: &dyn Topics,
    observer: &dyn Observer,
    stop: &AtomicBool,
) -> Result<SweepOutcome, TuneError> {
    let local = matches!(cluster, Cluster::Local { .. });
    if !local && plan.broker.iter().any(|b| !b.settings.is_empty()) {
        return Err(TuneError::Plan(
            "the plan sets broker settings: they need --local (the sweep starts the broker)".into(),
        ));
    }
    let estimate_s = plan.check_budget(local)?;
    let points = plan.points().map_err(TuneError::Plan)?;
    let resume = options.resume;
    let done: BTreeSet<String> = if resume && out.exists() {
        let previous = Results::read(out)?;
        if let Some(h) = previous.headers.first() {
            if h.plan != *plan {
                return Err(TuneError::Results(format!(
                    "{} holds a sweep of another plan ({:?}): resume it with that plan",
                    out.display(),
                    h.plan.name
                )));
            }
        }
        previous.points.into_iter().map(|p| p.id).collect()
    } else {
        BTreeSet::new()
    };
    let mut writer = Writer::open(out, resume)?;
    let bootstrap_text = match cluster {
        Cluster::Bootstrap(b) => b.clone(),
        Cluster::Local { .. } => "local".into(),
    };
    // Once per start, before any broker runs: what the figures are read against.
    let limits = options.limits_pass.map(|pass| {
        observer.measuring_limits(3.0 * pass.as_secs_f64());
        let measured = limits::measure(&LimitsConfig {
            pass,
            ..LimitsConfig::new(results_dir(out))
        });
        observer.limits(&measured);
        measured
    });
    writer.append(&Line::Sweep(Header {
        format: crate::results::FORMAT.into(),
        version: crate::results::VERSION,
        started_unix_ms: unix_ms(),
        weir_version: env!("CARGO_PKG_VERSION").into(),
        plan: plan.clone(),
        machine: Machine::this(),
        target: TargetInfo {
            kind: if local { "local" } else { "bootstrap" }.into(),
            bootstrap: bootstrap_text,
            broker_settings: broker_settings(plan),
        },
        limits,
    }))?;
    let todo: Vec<&Point> = points.iter().filter(|p| !done.contains(&p.id())).collect();
    let mut outcome = SweepOutcome {
        ran: 0,
        skipped: points.len() - todo.len(),
        failed: 0,
        stopped: false,
    };
    let todo_estimate: f64 = todo
        .iter()
        .map(|p| plan.point_seconds(p.mode.is_max_throughput()))
        .sum();
    observer.begin(points.len(), todo.len(), todo_estimate.min(estimate_s));
    let session = unix_ms() / 1000;
    for variant in plan.broker_names() {
        let mine: Vec<&&Point> = todo.iter().filter(|p| p.broker == variant).collect();
        if mine.is_empty() {
            continue;
        }
        let mut broker = match cluster {
            Cluster::Local { weir_exe } => {
                let settings = plan
                    .broker
                    .iter()
                    .find(|b| b.name == variant)
                    .map(|b| b.settings.clone())
                    .unwrap_or_default();
                Some(LocalBroker::start(weir_exe, &settings, &broker_dir(out))?)
            }
            Cluster::Bootstrap(_) => None,
        };
        for point in mine {
            if stop.load(Ordering::SeqCst) {
                outcome.stopped = true;
                return Ok(outcome);
            }
            let (bootstrap, pid) = match (&broker, cluster) {
                (Some(b), _) => (b.addr.clone(), Some(b.pid)),
                (None, Cluster::Bootstrap(addr)) => (addr.clone(), local_listener(addr)),
                (None, Cluster::Local { .. }) => {
                    return Err(TuneError::Broker("no local broker running".into()))
                }
            };
            observer.point_started(point, plan.point_seconds(point.mode.is_max_throughput()));
            let index = points.iter().position(|p| p == *point).unwrap_or(0);
            let names: Vec<String> = (0..plan.workload.topics)
                .map(|t| format!("weir-tune-{session}-{index}-{t}"))
                .collect();
            let Some(record) = run_point(plan, point, &bootstrap, pid, names, topics, stop)? else {
                outcome.stopped = true;
                return Ok(outcome);
            };
            if let Some(b) = broker.as_mut() {
                if !b.running() {
                    return Err(TuneError::Broker(format!(
                        "the local broker exited during point {}: {}",
                        point.id(),
                        b.log_tail()
                    )));
                }
            }
            outcome.ran += 1;
            if record.error.is_some() {
                outcome.failed += 1;
            }
            writer.append(&Line::Point(record.clone()))?;
            observer.point_done(&record);
        }
        drop(broker.take());
    }
    Ok(outcome)
}

/// One point: topics, warm-up, search (max throughput), repetitions, topics deleted. `None`
/// when the stop flag interrupted it; a failure is a record with its error.
fn run_point(
    plan: &SweepPlan,
    point: &Point,
    bootstrap: &str,
    broker_pid: Option<u32>,
    names: Vec<String>,
    topics: &dyn Topics,
    stop: &AtomicBool,
) -> Result<Option<PointRecord>, TuneError> {
    let mut record = PointRecord {
        id: point.id(),
        point: point.clone(),
        offered_msg_per_s: point.offered_msg_per_s(),
        repetitions: Vec::new(),
        summary: None,
        error: None,
    };
    let bench_plan = point
        .bench_plan(plan, &plan.name)
        .map_err(TuneError::Plan)?;
    if let Err(e) = topics.create(bootstrap, &names, point.partitions) {
        record.error = Some(format!("creating the topics: {e}"));
        return Ok(Some(record));
    }
    let target = Target {
        name: point.broker.clone(),
        bootstrap: bootstrap.into(),
        topic_names: names.clone(),
    };
    let measured = measure(plan, &bench_plan, &target, broker_pid, &mut record, stop);
    let _ = topics.delete(bootstrap, &names);
    match measured {
        Ok(true) => {
            record.summary = Summary::of(&record.repetitions);
            Ok(Some(record))
        }
        Ok(false) => Ok(None),
        Err(e) => {
            record.error = Some(e.to_string());
            record.summary = Summary::of(&record.repetitions);
            Ok(Some(record))
        }
    }
}

/// The phases of one point into `record`; `Ok(false)` when stopped.
fn measure(
    plan: &SweepPlan,
    bench_plan: &bench::workload::Plan,
    target: &Target,
    broker_pid: Option<u32>,
    record: &mut PointRecord,
    stop: &AtomicBool,
) -> Result<bool, RunError> {
    let mut opts = RunOptions {
        broker_pid,
        check_ceiling: plan.timing.ceiling,
        progress: false,
        kind: "run".into(),
        known_ceiling: None,
    };
    let payload = Payload::of(bench_plan, target)?;
    runner::warm_up(bench_plan, target, &payload, &opts)?;
    let mut search = None;
    let mut rate = record.offered_msg_per_s;
    if record.point.mode.is_max_throughput() {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let s = runner::rate_search::search(bench_plan, target, &payload, &opts)?;
        rate = s.rate;
        record.offered_msg_per_s = rate;
        search = Some(s);
    }
    for _ in 0..plan.timing.repetitions {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let before = broker_pid.and_then(local::write_bytes);
        let outcome = runner::measure_at(bench_plan, target, &payload, rate, search.take(), &opts)?;
        let after = broker_pid.and_then(local::write_bytes);
        // The sink ran once: later repetitions reuse its figures.
        if let Some(c) = &outcome.result.ceiling {
            opts.known_ceiling = Some((c.msg_per_s, c.mb_per_s));
        }
        record.repetitions.push(Repetition {
            result: outcome.result,
            broker_write_bytes: before.zip(after).map(|(b, a)| a.saturating_sub(b)),
        });
    }
    Ok(true)
}

/// The directory holding the results file (and a `--local` broker's data): the limits'
/// disk.
fn results_dir(out: &Path) -> PathBuf {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Where a `--local` broker keeps its data: next to the results, `RESULTS.broker`.
pub fn broker_dir(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".broker");
    PathBuf::from(name)
}

/// The pid listening on a loopback bootstrap address, if any.
fn local_listener(bootstrap: &str) -> Option<u32> {
    let addr = bench::broker_cpu::is_local(bootstrap)?;
    bench::broker_cpu::find_listener(addr.port()).filter(|&p| p != std::process::id())
}

/// Each variant's settings as text, for the header.
fn broker_settings(plan: &SweepPlan) -> BTreeMap<String, BTreeMap<String, String>> {
    plan.broker_names()
        .into_iter()
        .map(|name| {
            let settings = plan
                .broker
                .iter()
                .find(|b| b.name == name)
                .map(|b| {
                    b.settings
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect()
                })
                .unwrap_or_default();
            (name, settings)
        })
        .collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
