//! report — the versioned result document of every `weir bench produce|run|compare` run
//! ([`BenchResult`], JSON via serde; the schema is docs/bench-result.schema.json, described field
//! by field in docs/bench-results.md), its one-screen text summary, and the HDR histogram log.
//!
//! Percentiles always come from HDR histograms merged across every client of the run (never
//! averaged percentiles). Owns the document's shape, its version, and turning histograms and
//! counters into figures. Must not measure anything, and must not change a field's meaning without
//! bumping [`VERSION`] (adding an optional field is a minor change, still version 1).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use kclient::batch::Compression;

/// `format` of every result document.
pub const FORMAT: &str = "weir-bench-result";
/// Version of the document's shape.
pub const VERSION: u32 = 1;
/// A generator ceiling below this multiple of the measured rate means the generator may have
/// been the bottleneck (issue #7's honesty rule).
pub const CEILING_FACTOR: f64 = 2.0;

/// Errors of writing results.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("HDR log: {0}")]
    Hdr(String),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The result of one benchmark run against one target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchResult {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for documents this code writes.
    pub version: u32,
    /// Which command produced it: "produce" or "run" (a workload; also each target of "compare").
    pub kind: String,
    /// `weir`'s version that ran the benchmark.
    pub weir_version: String,
    /// Wall-clock start of the measured phase, milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
    /// Name of the target ("target" unless `compare` named it).
    pub target_name: String,
    /// bootstrap.servers of the target.
    pub bootstrap: String,
    pub config: RunConfig,
    pub publish: Publish,
    /// Send → acknowledgement, per record.
    pub publish_latency_ms: Percentiles,
    /// Intended → actual send time, per record; present when a rate was offered.
    pub publish_delay_ms: Option<Percentiles>,
    /// Producer timestamp → consumer receipt, per record; present when consumers ran.
    pub e2e_latency_ms: Option<Percentiles>,
    /// CPU the broker process spent during the measured phase; present when it runs locally.
    pub broker_cpu: Option<BrokerCpu>,
    /// The generator's own ceiling against an in-process null sink; present unless disabled.
    pub ceiling: Option<Ceiling>,
    /// The same configuration run by librdkafka; present with `--cross-check-librdkafka`.
    pub cross_check: Option<CrossCheck>,
    /// The maximum-rate search (producerRate = 0): every rate tried, in order.
    pub rate_search: Vec<RateStep>,
    /// Anything the reader must know before trusting the figures.
    pub warnings: Vec<String>,
}

/// What was run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Workload name (file's `name`), or "produce" for plain flags.
    pub workload: String,
    /// Topics written (each with `partitions_per_topic`).
    pub topics: Vec<String>,
    pub partitions_per_topic: u32,
    /// Value bytes of each record.
    pub message_size: usize,
    /// "json_log", "random(ratio=R)" or "file(PATH)".
    pub payload: String,
    /// NO_KEY, ROUND_ROBIN, RANDOM_NANO or KEYS(n).
    pub key_distributor: String,
    pub producers_per_topic: usize,
    pub consumers_per_subscription: usize,
    /// Offered rate in records/s over all producers; 0: as fast as possible / searched.
    pub producer_rate: f64,
    pub warmup_s: f64,
    pub test_s: f64,
    /// Records per measured phase, when the run was bounded by a count instead of a duration.
    pub records: Option<u64>,
    /// acks (-1 = all).
    pub acks: i16,
    /// enable.idempotence
    pub idempotence: bool,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub compression: Compression,
    pub compression_level: Option<i32>,
    pub max_in_flight: usize,
    pub buffer_memory: usize,
}

/// Publish figures of the measured phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Publish {
    pub records: u64,
    /// Records that failed: an error code from the broker, or (below) expired or blocked.
    pub failed: u64,
    /// Of `failed`: past delivery.timeout.ms.
    pub expired: u64,
    /// Of `failed`: blocked on a full buffer.memory past max.block.ms.
    pub blocked: u64,
    /// Batches resent after a retriable error.
    pub retries: u64,
    /// Idempotent producer epoch bumps after a numbered batch failed (KIP-360).
    #[serde(default)]
    pub epoch_bumps: u64,
    /// First Kafka error code a broker answered, if any.
    pub first_error: Option<i16>,
    pub elapsed_s: f64,
    /// Acknowledged records per second.
    pub msg_per_s: f64,
    /// Acknowledged value bytes per second, MB/s (10^6).
    pub mb_per_s: f64,
    /// Batch bytes sent per second (compressed, as on the wire), MB/s.
    pub wire_mb_per_s: f64,
    /// Uncompressed batch bytes / batch bytes sent (1.0 uncompressed).
    pub compression_ratio: f64,
    pub batches: u64,
    pub requests: u64,
    pub records_per_batch: f64,
}

/// Percentiles of one merged HDR histogram, in milliseconds (µs resolution).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percentiles {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub p99_99: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |us: u64| us as f64 / 1000.0;
        if h.is_empty() {
            return Percentiles {
                count: 0,
                mean: 0.0,
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p99_9: 0.0,
                p99_99: 0.0,
                max: 0.0,
            };
        }
        Percentiles {
            count: h.len(),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            p99_99: ms(h.value_at_quantile(0.9999)),
            max: ms(h.max()),
        }
    }
}

/// The broker's CPU during the measured phase (/proc/PID/stat utime + stime).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerCpu {
    pub pid: u32,
    /// How the process was found: "--broker-pid" or "listening on PORT".
    pub found_by: String,
    pub user_s: f64,
    pub system_s: f64,
    /// user_s + system_s.
    pub cpu_s: f64,
    /// cpu_s per 10^9 value bytes acknowledged.
    pub cpu_s_per_gb: f64,
    /// cpu_s / elapsed_s: cores kept busy on average.
    pub cores_busy: f64,
}

/// The generator against an in-process null sink, same configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ceiling {
    pub msg_per_s: f64,
    pub mb_per_s: f64,
    /// Ceiling msg/s / measured msg/s.
    pub ratio: f64,
    /// ratio ≥ [`CEILING_FACTOR`]: the generator was not the bottleneck.
    pub sufficient: bool,
}

/// A second producer implementation on the same broker and configuration, both closed loop
/// (as fast as they go) for the same record count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossCheck {
    /// e.g. "librdkafka 2.16.0 (confluent-kafka 2.16.1)".
    pub tool: String,
    pub records: u64,
    pub elapsed_s: f64,
    /// The tool's rate.
    pub msg_per_s: f64,
    pub mb_per_s: f64,
    /// Our generator's closed-loop rate on the same records (the measured phase's rate when it
    /// was closed loop already, else a run of its own).
    pub ours_msg_per_s: f64,
    pub ours_mb_per_s: f64,
    /// msg_per_s / ours_msg_per_s.
    pub ratio: f64,
}

/// One step of the maximum-rate search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateStep {
    /// Offered records/s (0: closed loop, the upper bound probe).
    pub offered: f64,
    pub achieved_msg_per_s: f64,
    pub publish_delay_p99_ms: f64,
    pub publish_latency_p99_ms: f64,
    /// Records acknowledged but not yet read by the workload's consumers when the trial's
    /// producers had finished (`None`: the workload has no consumers).
    #[serde(default)]
    pub consumer_backlog: Option<u64>,
    /// Records/s by which that backlog grew over the trial (least-squares slope of the backlog
    /// sampled once a second and at the end; `None`: no consumers, or under a second sampled).
    #[serde(default)]
    pub consumer_backlog_growth_per_s: Option<f64>,
    pub sustainable: bool,
}

impl BenchResult {
    /// Checks the ceiling and the run's own failures, adding warnings (idempotent).
    pub fn judge(&mut self) {
        let mut warnings = Vec::new();
        if let Some(c) = &self.ceiling {
            if !c.sufficient {
                warnings.push(format!(
                    "GENERATOR-BOUND: the generator's ceiling ({:.0} msg/s against a null sink) is only {:.2}x the measured rate, below {CEILING_FACTOR}x: the figures may measure the generator, not the target",
                    c.msg_per_s, c.ratio
                ));
            }
        }
        if self.publish.failed > 0 {
            warnings.push(format!(
                "{} records failed (first error code {:?})",
                self.publish.failed, self.publish.first_error
            ));
        }
        for w in warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
    }

    /// The one-screen text summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let c = &self.config;
        let p = &self.publish;
        let _ = writeln!(
            s,
            "== {} '{}' against {} ({}) ==",
            self.kind, c.workload, self.target_name, self.bootstrap
        );
        let _ = writeln!(
            s,
            "config    {} topic(s) x {} partitions, {} B {} values, keys {}, {} producer(s)/topic, acks={}, linger.ms={}, batch.size={}, {}{}",
            c.topics.len(),
            c.partitions_per_topic,
            c.message_size,
            c.payload,
            c.key_distributor,
            c.producers_per_topic,
            if c.acks == -1 { "all".to_string() } else { c.acks.to_string() },
            c.linger_ms,
            c.batch_size,
            c.compression,
            c.compression_level.map_or(String::new(), |l| format!(" level {l}")),
        );
        let _ = writeln!(
            s,
            "publish   {:.0} msg/s  {:.1} MB/s values  {:.1} MB/s wire  ratio {:.2}  ({} records, {} failed, {:.2} s, {:.1} records/batch)",
            p.msg_per_s,
            p.mb_per_s,
            p.wire_mb_per_s,
            p.compression_ratio,
            p.records,
            p.failed,
            p.elapsed_s,
            p.records_per_batch
        );
        let _ = writeln!(
            s,
            "           {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}   (ms)",
            "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
        );
        let row = |s: &mut String, name: &str, l: &Percentiles| {
            let _ = writeln!(
                s,
                "{name:<10} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.p50, l.p90, l.p99, l.p99_9, l.p99_99, l.max, l.mean
            );
        };
        row(&mut s, "latency", &self.publish_latency_ms);
        if let Some(d) = &self.publish_delay_ms {
            row(&mut s, "delay", d);
        }
        if let Some(e) = &self.e2e_latency_ms {
            row(&mut s, "e2e", e);
        }
        if let Some(cpu) = &self.broker_cpu {
            let _ = writeln!(
                s,
                "broker    pid {} ({}): {:.2} CPU-s ({:.2} user, {:.2} sys), {:.2} cores busy, {:.2} CPU-s per GB",
                cpu.pid, cpu.found_by, cpu.cpu_s, cpu.user_s, cpu.system_s, cpu.cores_busy, cpu.cpu_s_per_gb
            );
        }
        if let Some(c) = &self.ceiling {
            let _ = writeln!(
                s,
                "ceiling   {:.0} msg/s  {:.1} MB/s against the null sink = {:.2}x the measured rate ({})",
                c.msg_per_s,
                c.mb_per_s,
                c.ratio,
                if c.sufficient { "ok" } else { "TOO LOW" }
            );
        }
        if let Some(x) = &self.cross_check {
            let _ = writeln!(
                s,
                "crosscheck {}: {:.0} msg/s {:.1} MB/s; weir bench {:.0} msg/s {:.1} MB/s (closed loop, {} records each): {:.2}x",
                x.tool, x.msg_per_s, x.mb_per_s, x.ours_msg_per_s, x.ours_mb_per_s, x.records, x.ratio
            );
        }
        for step in &self.rate_search {
            let _ = writeln!(
                s,
                "search    offered {:>10} -> {:>10.0} msg/s, delay p99 {:>8.2} ms, latency p99 {:>8.2} ms{}{}: {}",
                if step.offered == 0.0 { "max".to_string() } else { format!("{:.0}", step.offered) },
                step.achieved_msg_per_s,
                step.publish_delay_p99_ms,
                step.publish_latency_p99_ms,
                step.consumer_backlog.map_or(String::new(), |b| format!(", consumer backlog {b}")),
                step.consumer_backlog_growth_per_s.map_or(String::new(), |g| format!(" (growing {g:.0}/s)")),
                if step.sustainable { "sustainable" } else { "not sustainable" }
            );
        }
        for w in &self.warnings {
            let _ = writeln!(s, "WARNING   {w}");
        }
        s
    }

    /// Writes the document as pretty JSON.
    pub fn write_json(&self, path: &Path) -> Result<(), ReportError> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").map_err(|source| ReportError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

/// A side-by-side table of several targets' results (`weir bench compare`).
pub fn compare_table(results: &[BenchResult]) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:<22}", "");
    for r in results {
        let _ = write!(s, "{:>18}", truncate(&r.target_name, 17));
    }
    s.push('\n');
    type Cell = fn(&BenchResult) -> String;
    let rows: [(&str, Cell); 12] = [
        ("msg/s", |r| format!("{:.0}", r.publish.msg_per_s)),
        ("MB/s (values)", |r| format!("{:.1}", r.publish.mb_per_s)),
        ("failed", |r| r.publish.failed.to_string()),
        ("latency p50 ms", |r| {
            format!("{:.2}", r.publish_latency_ms.p50)
        }),
        ("latency p99 ms", |r| {
            format!("{:.2}", r.publish_latency_ms.p99)
        }),
        ("latency p99.9 ms", |r| {
            format!("{:.2}", r.publish_latency_ms.p99_9)
        }),
        ("latency max ms", |r| {
            format!("{:.2}", r.publish_latency_ms.max)
        }),
        ("delay p99 ms", |r| {
            r.publish_delay_ms
                .as_ref()
                .map_or("-".into(), |d| format!("{:.2}", d.p99))
        }),
        ("e2e p99 ms", |r| {
            r.e2e_latency_ms
                .as_ref()
                .map_or("-".into(), |d| format!("{:.2}", d.p99))
        }),
        ("broker CPU-s/GB", |r| {
            r.broker_cpu
                .as_ref()
                .map_or("-".into(), |c| format!("{:.2}", c.cpu_s_per_gb))
        }),
        ("ceiling ratio", |r| {
            r.ceiling
                .as_ref()
                .map_or("-".into(), |c| format!("{:.2}x", c.ratio))
        }),
        ("warnings", |r| r.warnings.len().to_string()),
    ];
    for (name, cell) in rows {
        let _ = write!(s, "{name:<22}");
        for r in results {
            let _ = write!(s, "{:>18}", cell(r));
        }
        s.push('\n');
    }
    s
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// One interval of an HDR log: seconds from the log's start, and a histogram per tag.
pub struct LogInterval<'a> {
    pub start_s: f64,
    pub length_s: f64,
    pub histograms: Vec<(&'a str, &'a Histogram<u64>)>,
}

/// Writes an HDR histogram interval log (the format HdrHistogram's `HistogramLogProcessor` and
/// HdrHistogram plotters read): one line per (interval, tag), values in microseconds.
pub fn write_hdr_log(
    path: &Path,
    start_unix_ms: u64,
    intervals: &[LogInterval<'_>],
) -> Result<(), ReportError> {
    let io_err = |source| ReportError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    {
        let mut serializer = V2DeflateSerializer::new();
        let start = std::time::UNIX_EPOCH + std::time::Duration::from_millis(start_unix_ms);
        let mut writer = IntervalLogWriterBuilder::new()
            .with_base_time(start)
            .with_start_time(start)
            .with_max_value_divisor(1000.0)
            .add_comment("weir bench: latencies in microseconds (max column in ms)")
            .begin_log_with(&mut out, &mut serializer)
            .map_err(io_err)?;
        for interval in intervals {
            for (tag, h) in &interval.histograms {
                let tag =
                    Tag::new(tag).ok_or_else(|| ReportError::Hdr(format!("bad tag {tag:?}")))?;
                writer
                    .write_histogram(
                        h,
                        std::time::Duration::from_secs_f64(interval.start_s.max(0.0)),
                        std::time::Duration::from_secs_f64(interval.length_s.max(0.0)),
                        Some(tag),
                    )
                    .map_err(|e| ReportError::Hdr(format!("{e:?}")))?;
            }
        }
    }
    let mut f = std::fs::File::create(path).map_err(io_err)?;
    f.write_all(&out).map_err(io_err)?;
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::progress::latency_histogram;

    pub(crate) fn sample() -> BenchResult {
        let mut h = latency_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        BenchResult {
            format: FORMAT.into(),
            version: VERSION,
            kind: "produce".into(),
            weir_version: "0.1.0".into(),
            started_unix_ms: 1_700_000_000_000,
            target_name: "target".into(),
            bootstrap: "127.0.0.1:9092".into(),
            config: RunConfig {
                workload: "produce".into(),
                topics: vec!["t".into()],
                partitions_per_topic: 3,
                message_size: 1024,
                payload: "json_log".into(),
                key_distributor: "NO_KEY".into(),
                producers_per_topic: 1,
                consumers_per_subscription: 0,
                producer_rate: 0.0,
                warmup_s: 0.0,
                test_s: 0.0,
                records: Some(10_000),
                acks: 1,
                idempotence: false,
                linger_ms: 5,
                batch_size: 65536,
                compression: Compression::Lz4,
                compression_level: None,
                max_in_flight: 5,
                buffer_memory: 32 << 20,
            },
            publish: Publish {
                records: 10_000,
                failed: 0,
                expired: 0,
                blocked: 0,
                retries: 0,
                epoch_bumps: 0,
                first_error: None,
                elapsed_s: 1.0,
                msg_per_s: 10_000.0,
                mb_per_s: 10.24,
                wire_mb_per_s: 4.0,
                compression_ratio: 2.5,
                batches: 160,
                requests: 160,
                records_per_batch: 62.5,
            },
            publish_latency_ms: Percentiles::of(&h),
            publish_delay_ms: None,
            e2e_latency_ms: None,
            broker_cpu: None,
            ceiling: Some(Ceiling {
                msg_per_s: 15_000.0,
                mb_per_s: 15.36,
                ratio: 1.5,
                sufficient: false,
            }),
            cross_check: None,
            rate_search: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let r = sample();
        let l = &r.publish_latency_ms;
        assert_eq!(l.count, 10_000);
        assert!((l.p50 - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p90 - 90.0).abs() < 0.1, "{l:?}");
        assert!((l.p99 - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max - 100.0).abs() < 0.1, "{l:?}");
        assert_eq!(Percentiles::of(&latency_histogram()).count, 0);
    }

    #[test]
    fn a_low_ceiling_is_said_loudly_once() {
        let mut r = sample();
        r.judge();
        r.judge();
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(r.warnings[0].starts_with("GENERATOR-BOUND"));
        let text = r.summary();
        assert!(text.contains("TOO LOW"), "{text}");
        assert!(text.contains("WARNING   GENERATOR-BOUND"), "{text}");
        assert!(text.lines().count() < 25, "{text}");
    }

    #[test]
    fn the_document_round_trips_and_refuses_unknown_fields() {
        let r = sample();
        let json = serde_json::to_string(&r).unwrap();
        let back: BenchResult = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<BenchResult>(v).is_err());
    }

    #[test]
    fn the_hdr_log_reads_back_with_its_tags_and_counts() {
        use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
        use hdrhistogram::serialization::Deserializer;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.hlog");
        let mut h = latency_histogram();
        for v in [100u64, 200, 300, 5_000] {
            h.record(v).unwrap();
        }
        let interval = LogInterval {
            start_s: 0.0,
            length_s: 2.0,
            histograms: vec![("publish_latency", &h)],
        };
        write_hdr_log(&path, 1_700_000_000_000, &[interval]).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let mut found = 0;
        for entry in IntervalLogIterator::new(&bytes) {
            if let Ok(LogEntry::Interval(i)) = entry {
                assert_eq!(i.tag().map(|t| t.as_str()), Some("publish_latency"));
                let decoded = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    i.encoded_histogram(),
                )
                .unwrap();
                let back: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut std::io::Cursor::new(decoded))
                    .unwrap();
                assert_eq!(back.len(), 4);
                assert_eq!(back.max(), h.max());
                found += 1;
            }
        }
        assert_eq!(found, 1);
    }
}
