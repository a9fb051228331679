//! runner — executes a [`Plan`] against one target and assembles its [`BenchResult`]: the
//! warm-up phase (figures discarded), the maximum-rate search when the rate is 0, the measured
//! phase (with the broker's CPU read before and after; with consumers, each topic is read from
//! its end while it is produced and the values carry their send time, so the result has
//! end-to-end latency), and then the honesty check — the same
//! load against an in-process null sink, whose rate is the generator's ceiling.
//!
//! A phase runs one producer (`client::producer`, `producersPerTopic` connections) per topic, all
//! at once, sharing one [`Live`] (progress line, stop flag for timed phases, merged histograms).
//! Each phase opens fresh connections (OMB keeps its producers across warm-up and test; a fresh
//! start only costs the measured phase a Metadata round trip).
//!
//! Owns phase sequencing, the search, and merging per-topic reports. Must not create topics (the
//! caller does, with whatever admin client fits the target) and must not read argv.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::broker_cpu;
use crate::client::consumer::{
    self, ConsumeReport, ConsumerConfig, ConsumerError, Progress, StartAt,
};
use crate::client::producer::{self, ProduceReport, ProducerConfig, ProducerError};
use crate::null_sink::{NullSink, NullSinkConfig, SinkError};
use crate::payload::{PayloadError, PayloadPool, PayloadSpec};
use crate::progress::{latency_histogram, Live, ProgressLine, RunHistograms};
use crate::report::{
    BenchResult, BrokerCpu, Ceiling, Percentiles, Publish, RateStep, RunConfig, CEILING_FACTOR,
    FORMAT, VERSION,
};
use crate::workload::Plan;

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
/// Longest ceiling run (the null sink answers fast; more adds nothing).
pub const CEILING_MAX: Duration = Duration::from_secs(10);

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
enum Bound {
    Records(u64),
    Time(Duration),
}

struct Phase {
    reports: Vec<ProduceReport>,
    histograms: RunHistograms,
    intervals: Intervals,
    /// With consumers: (seconds into the phase, records acknowledged but not yet read), once a
    /// second and when the producers have finished.
    backlog: Vec<(f64, u64)>,
}

/// Runs `plan` against `target`.
pub fn run(plan: &Plan, target: &Target, opts: &RunOptions) -> Result<Outcome, RunError> {
    if target.topic_names.len() != plan.topics as usize {
        return Err(RunError::Other(format!(
            "{} topic names for {} topics",
            target.topic_names.len(),
            plan.topics
        )));
    }
    let pool = PayloadPool::generate(&plan.payload, plan.message_size, 0x5eed)?;
    let value_size = pool.value_size();
    let values = Arc::new(pool.values);
    let mut warnings = Vec::new();

    if !plan.warmup.is_zero() {
        run_phase(
            plan,
            target,
            &values,
            value_size,
            rate_of(plan.producer_rate),
            Bound::Time(plan.warmup),
            opts,
            "warmup",
            None,
        )?;
    }

    let mut rate_search = Vec::new();
    let mut rate = rate_of(plan.producer_rate);
    if rate.is_none() && plan.records.is_none() {
        let trial = (plan.test / 4).clamp(Duration::from_secs(1), Duration::from_secs(20));
        let probe = run_phase(
            plan,
            target,
            &values,
            value_size,
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
                &values,
                value_size,
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
    }

    // The measured phase, with the broker's CPU around it.
    let broker = find_broker(&target.bootstrap, opts.broker_pid, &mut warnings);
    let cpu_before = broker
        .as_ref()
        .and_then(|(pid, _)| broker_cpu::cpu_times(*pid));
    let started_unix_ms = unix_ms();
    let bound = match plan.records {
        Some(n) => Bound::Records(n),
        None => Bound::Time(plan.test),
    };
    let consumers = if plan.consumers_per_subscription > 0 {
        Some(Consumers::start(plan, target)?)
    } else {
        None
    };
    let mut stamped;
    let measured_plan = if consumers.is_some() {
        // Each value carries its send time for the consumers' end-to-end latency.
        stamped = plan.clone();
        stamped.producer.stamp_send_time = true;
        &stamped
    } else {
        plan
    };
    let mut measured = run_phase(
        measured_plan,
        target,
        &values,
        value_size,
        rate,
        bound,
        opts,
        "test",
        consumers.as_ref(),
    );
    let mut backlog = None;
    let consumed = match (consumers, &mut measured) {
        (Some(c), Ok(m)) => {
            backlog = Some(c.backlog(m));
            let acked = m.reports.iter().map(|r| r.records_acked).sum();
            let (reports, e2e, drained) = c.finish(acked)?;
            // What was read while the run drained counts in the last interval.
            if let Some(Cut {
                e2e: Some(last), ..
            }) = m.intervals.cuts.last_mut()
            {
                let _ = last.add(&drained);
            }
            Some((reports, e2e))
        }
        (Some(c), Err(_)) => {
            c.stop();
            None
        }
        (None, _) => None,
    };
    let measured = measured?;
    let cpu_after = broker
        .as_ref()
        .and_then(|(pid, _)| broker_cpu::cpu_times(*pid));
    let publish = merge_publish(&measured.reports, value_size);
    let e2e_latency_ms = consumed.map(|(reports, e2e)| {
        let read: u64 = reports.iter().map(|r| r.records).sum();
        if read != publish.records {
            warnings.push(format!(
                "the consumers read {read} records of the {} acknowledged",
                publish.records
            ));
        }
        Percentiles::of(&e2e)
    });
    if !rate_search.is_empty() {
        let growth = backlog.and(backlog_growth(&measured.backlog));
        if let Some(r) =
            rate.filter(|&r| !step(r, &measured, value_size, backlog, growth).sustainable)
        {
            let behind = backlog.map_or(String::new(), |b| format!(", consumer backlog {b}"));
            warnings.push(format!(
                "the measured phase did not sustain the searched rate {r:.0}/s (achieved {:.0}/s, publish delay p99 {:.2} ms{behind}): the maximum is lower over the full test duration",
                publish.msg_per_s,
                Percentiles::of(&measured.histograms.delay).p99
            ));
        }
    }

    // The ceiling after the measured phase, so the measured phase starts when the command does
    // (tests time faults against it) and the target is idle while the sink runs.
    let ceiling_figures = if !opts.check_ceiling {
        None
    } else if let Some(known) = opts.known_ceiling {
        Some(known)
    } else {
        let sink = NullSink::start(NullSinkConfig {
            listen: "127.0.0.1:0"
                .parse()
                .map_err(|e| RunError::Other(format!("{e}")))?,
            partitions: plan.partitions_per_topic,
        })?;
        let sink_target = Target {
            name: "null-sink".into(),
            bootstrap: sink.addr().to_string(),
            topic_names: target.topic_names.clone(),
        };
        let bound = match plan.records {
            Some(n) => Bound::Records(n),
            None => Bound::Time(plan.test.min(CEILING_MAX)),
        };
        let phase = run_phase(
            plan,
            &sink_target,
            &values,
            value_size,
            None,
            bound,
            opts,
            "ceiling",
            None,
        );
        sink.stop();
        let p = merge_publish(&phase?.reports, value_size);
        Some((p.msg_per_s, p.mb_per_s))
    };

    let broker_cpu = match (broker, cpu_before, cpu_after) {
        (Some((pid, found_by)), Some(a), Some(b)) => {
            let user_s = b.user_s - a.user_s;
            let system_s = b.system_s - a.system_s;
            let cpu_s = user_s + system_s;
            let gb = publish.records as f64 * value_size as f64 / 1e9;
            Some(BrokerCpu {
                pid,
                found_by,
                user_s,
                system_s,
                cpu_s,
                cpu_s_per_gb: if gb > 0.0 { cpu_s / gb } else { 0.0 },
                cores_busy: if publish.elapsed_s > 0.0 {
                    cpu_s / publish.elapsed_s
                } else {
                    0.0
                },
            })
        }
        (Some((pid, _)), _, _) => {
            warnings.push(format!(
                "could not read /proc/{pid}/stat: no broker CPU figures"
            ));
            None
        }
        _ => None,
    };

    let ceiling = ceiling_figures.map(|(msg_per_s, mb_per_s)| {
        let ratio = if publish.msg_per_s > 0.0 {
            msg_per_s / publish.msg_per_s
        } else {
            f64::INFINITY
        };
        Ceiling {
            msg_per_s,
            mb_per_s,
            ratio: if ratio.is_finite() { ratio } else { 0.0 },
            sufficient: ratio.is_finite() && ratio >= CEILING_FACTOR,
        }
    });

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
    Ok(Outcome {
        result,
        histograms: measured.histograms,
        intervals: measured.intervals,
    })
}

fn rate_of(r: f64) -> Option<f64> {
    (r > 0.0).then_some(r)
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
fn sustainable(s: &RateStep, failed: u64) -> bool {
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
fn backlog_growth(samples: &[(f64, u64)]) -> Option<f64> {
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

fn payload_name(p: &PayloadSpec) -> String {
    match p {
        PayloadSpec::JsonLog => "json_log".into(),
        PayloadSpec::Random { ratio } => format!("random(ratio={ratio})"),
        PayloadSpec::File { path } => format!("file({})", path.display()),
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The broker process: given, or found listening on the bootstrap port of a local address.
fn find_broker(
    bootstrap: &str,
    given: Option<u32>,
    warnings: &mut Vec<String>,
) -> Option<(u32, String)> {
    if let Some(pid) = given {
        return Some((pid, "--broker-pid".into()));
    }
    let addr = broker_cpu::is_local(bootstrap)?;
    match broker_cpu::find_listener(addr.port()) {
        Some(pid) if pid == std::process::id() => {
            warnings.push(
                "the target listens in this very process: its CPU is not separable from the generator's"
                    .into(),
            );
            None
        }
        Some(pid) => Some((pid, format!("listening on port {}", addr.port()))),
        None => {
            warnings.push(format!(
                "no process visible listening on port {} (another user's?): no broker CPU figures; give --broker-pid",
                addr.port()
            ));
            None
        }
    }
}

/// One phase: a producer per topic, all at once.
/// The consumers of a measured phase: one consumer group of `consumerPerSubscription` clients
/// per topic, positioned at the end of the topic before the producers start.
struct Consumers {
    running: Vec<(Arc<Progress>, ConsumerThread)>,
}

type ConsumerThread = std::thread::JoinHandle<Result<ConsumeReport, ConsumerError>>;

/// What the consumers of a measured phase report: each one's report, the whole run's
/// end-to-end latency, and the part of it recorded after the last interval cut.
type Consumed = (Vec<ConsumeReport>, Histogram<u64>, Histogram<u64>);

/// The consumers stop this long after the last record they read, once the producers are done.
const CONSUMER_IDLE: Duration = Duration::from_secs(2);

impl Consumers {
    fn start(plan: &Plan, target: &Target) -> Result<Consumers, RunError> {
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
    fn backlog(&self, phase: &Phase) -> u64 {
        let acked: u64 = phase.reports.iter().map(|r| r.records_acked).sum();
        acked.saturating_sub(self.read())
    }

    fn read(&self) -> u64 {
        self.running
            .iter()
            .map(|(p, _)| p.records.load(Ordering::SeqCst))
            .sum()
    }

    /// The end-to-end latencies the consumers recorded since the previous cut, merged.
    fn cut_e2e(&self) -> Histogram<u64> {
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
    fn finish(self, acked: u64) -> Result<Consumed, RunError> {
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

    fn stop(self) {
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

#[allow(clippy::too_many_arguments)]
fn run_phase(
    plan: &Plan,
    target: &Target,
    values: &Arc<Vec<Vec<u8>>>,
    value_size: usize,
    rate: Option<f64>,
    bound: Bound,
    opts: &RunOptions,
    label: &str,
    consumers: Option<&Consumers>,
) -> Result<Phase, RunError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::batch::Compression;
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
        // ~4000/s for 1.5 s.
        assert!((4_000..=7_000).contains(&acked), "{acked}");
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
        assert!(max > 1_000.0, "{search:?}");
        for (s, share) in search[1..].iter().zip(SEARCH_STEPS) {
            assert!((s.offered - max * share).abs() < 1.0, "{search:?}");
        }
        let chosen = search.iter().find(|s| s.sustainable);
        match chosen {
            Some(s) => {
                assert_eq!(r.config.producer_rate, s.offered);
                assert!(
                    !r.warnings.iter().any(|w| w.starts_with("no rate tried")),
                    "{:?}",
                    r.warnings
                );
            }
            None => assert!(
                r.warnings[0].starts_with("no rate tried"),
                "{:?}",
                r.warnings
            ),
        }
        // Measured at the chosen rate, with publish delay reported.
        assert!(r.publish_delay_ms.is_some());
        let offered = r.config.producer_rate;
        assert!(
            r.publish.msg_per_s > offered * 0.8 && r.publish.msg_per_s < offered * 1.1,
            "{} vs {offered}",
            r.publish.msg_per_s
        );
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
}
