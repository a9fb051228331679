//! plan — a sweep plan (TOML, docs/TUNING.md): the axes swept (linger.ms, batch.size,
//! compression, acks, and optionally message size, partitions, producers, key distribution,
//! max.in.flight, idempotence, broker variants), the modes (maximum sustainable throughput,
//! latency at fixed offered loads), the timing of each point, and the time budget.
//!
//! Owns parsing, validation (every value is checked before anything runs) and the time estimate.
//! Must not run anything; the points themselves are `point`'s.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::point::{Codec, Point};
use crate::TuneError;

/// Longest plan file read (a plan is a few dozen lines).
const MAX_PLAN_BYTES: u64 = 1 << 20;
/// Most points one plan may expand to.
pub const MAX_POINTS: usize = 10_000;
/// Seconds a point costs beyond its phases (topic creation and deletion, connections).
pub const POINT_OVERHEAD_S: f64 = 2.0;
/// Seconds a broker (re)start costs with `--local`.
pub const BROKER_START_S: f64 = 5.0;

/// A sweep plan as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepPlan {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The sweep is refused before it starts when its estimate exceeds this.
    pub budget_minutes: f64,
    pub timing: Timing,
    pub modes: Modes,
    pub axes: Axes,
    /// Fixed workload settings (not swept).
    #[serde(default)]
    pub workload: WorkloadSettings,
    /// Broker variants, each a table of weir.toml keys (docs/weir.example.toml); `--local` only.
    /// None: one variant, the broker's defaults.
    #[serde(default)]
    pub broker: Vec<BrokerVariant>,
}

/// How long each point runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Warm-up before each point's first repetition (figures discarded).
    pub warmup_s: f64,
    /// Each repetition's measured window.
    pub measure_s: f64,
    /// Measured windows per point (median and spread kept).
    pub repetitions: u32,
    /// Run the generator's null-sink ceiling once per point (default true).
    #[serde(default = "yes")]
    pub ceiling: bool,
}

fn yes() -> bool {
    true
}

/// Which measurements each setting combination gets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modes {
    /// The maximum sustainable rate (the bench runner's rate search), then the repetitions at it.
    #[serde(default)]
    pub max_throughput: bool,
    /// Latency at these offered loads (MB/s of record values, over all producers).
    #[serde(default)]
    pub fixed_load_mbps: Vec<f64>,
}

/// The swept settings: every combination is a point (times each mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axes {
    pub linger_ms: Vec<u64>,
    pub batch_size: Vec<usize>,
    /// compression.type, with an optional level: "none", "gzip", "snappy", "lz4", "zstd",
    /// "zstd:9".
    pub compression: Vec<String>,
    /// "0", "1" or "all".
    pub acks: Vec<String>,
    #[serde(default = "default_message_size")]
    pub message_size: Vec<usize>,
    #[serde(default = "default_partitions")]
    pub partitions: Vec<u32>,
    /// Producers (connections) per topic.
    #[serde(default = "default_producers")]
    pub producers: Vec<usize>,
    /// "NO_KEY", "ROUND_ROBIN" or "RANDOM_NANO" (OMB's key distributors).
    #[serde(default = "default_keys")]
    pub key_distribution: Vec<String>,
    /// max.in.flight.requests.per.connection
    #[serde(default = "default_in_flight")]
    pub max_in_flight: Vec<usize>,
    /// enable.idempotence (needs acks=all; points with other acks are refused).
    #[serde(default = "default_idempotence")]
    pub idempotence: Vec<bool>,
}

fn default_message_size() -> Vec<usize> {
    vec![1024]
}
fn default_partitions() -> Vec<u32> {
    vec![6]
}
fn default_producers() -> Vec<usize> {
    vec![1]
}
fn default_keys() -> Vec<String> {
    vec!["NO_KEY".into()]
}
fn default_in_flight() -> Vec<usize> {
    vec![5]
}
fn default_idempotence() -> Vec<bool> {
    vec![false]
}

/// Settings every point shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSettings {
    /// Topics written at once.
    #[serde(default = "one")]
    pub topics: u32,
    /// "json_log" (compresses like application logs) or "random:R" (R of each value random).
    #[serde(default = "default_payload")]
    pub payload: String,
    /// buffer.memory per producer.
    #[serde(default = "default_buffer_memory")]
    pub buffer_memory: usize,
    /// Consumers per topic reading while the producers write (0: none); with them each point
    /// also records end-to-end latency, and the search counts their backlog.
    #[serde(default)]
    pub consumers: usize,
}

impl Default for WorkloadSettings {
    fn default() -> Self {
        WorkloadSettings {
            topics: one(),
            payload: default_payload(),
            buffer_memory: default_buffer_memory(),
            consumers: 0,
        }
    }
}

fn one() -> u32 {
    1
}
fn default_payload() -> String {
    "json_log".into()
}
fn default_buffer_memory() -> usize {
    32 << 20
}

/// One broker configuration (`--local` restarts the broker for each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerVariant {
    pub name: String,
    /// weir.toml keys and values (data.dir and kafka.addr are the sweep's).
    #[serde(default)]
    pub settings: BTreeMap<String, toml::Value>,
}

impl SweepPlan {
    /// Reads and validates a plan file.
    pub fn load(path: &Path) -> Result<SweepPlan, TuneError> {
        let io = |source| TuneError::Io {
            path: path.display().to_string(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_PLAN_BYTES {
            return Err(TuneError::Plan(format!(
                "{}: {len} bytes, more than a plan may have ({MAX_PLAN_BYTES})",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        SweepPlan::parse(&text).map_err(|e| TuneError::Plan(format!("{}: {e}", path.display())))
    }

    /// Parses and validates a plan's text.
    pub fn parse(text: &str) -> Result<SweepPlan, String> {
        let plan: SweepPlan = toml::from_str(text).map_err(|e| e.to_string())?;
        plan.validate()?;
        Ok(plan)
    }

    fn validate(&self) -> Result<(), String> {
        let t = &self.timing;
        if !(t.warmup_s >= 0.0 && t.warmup_s <= 3600.0) {
            return Err("timing.warmup_s must be 0 to 3600".into());
        }
        if !(t.measure_s >= 0.2 && t.measure_s <= 3600.0) {
            return Err("timing.measure_s must be 0.2 to 3600".into());
        }
        if !(1..=50).contains(&t.repetitions) {
            return Err("timing.repetitions must be 1 to 50".into());
        }
        if !(self.budget_minutes > 0.0 && self.budget_minutes.is_finite()) {
            return Err("budget_minutes must be positive".into());
        }
        if !self.modes.max_throughput && self.modes.fixed_load_mbps.is_empty() {
            return Err("modes: set max_throughput = true or give fixed_load_mbps".into());
        }
        for &l in &self.modes.fixed_load_mbps {
            if !(l > 0.0 && l <= 100_000.0) {
                return Err(format!(
                    "modes.fixed_load_mbps: {l} is not a load (0 < MB/s ≤ 100000)"
                ));
            }
        }
        let a = &self.axes;
        let lists = [
            ("linger_ms", a.linger_ms.len()),
            ("batch_size", a.batch_size.len()),
            ("compression", a.compression.len()),
            ("acks", a.acks.len()),
            ("message_size", a.message_size.len()),
            ("partitions", a.partitions.len()),
            ("producers", a.producers.len()),
            ("key_distribution", a.key_distribution.len()),
            ("max_in_flight", a.max_in_flight.len()),
            ("idempotence", a.idempotence.len()),
        ];
        for (name, len) in lists {
            if len == 0 {
                return Err(format!("axes.{name} is empty: give at least one value"));
            }
        }
        for c in &a.compression {
            Codec::parse(c).map_err(|e| format!("axes.compression: {e}"))?;
        }
        let w = &self.workload;
        if !(1..=64).contains(&w.topics) {
            return Err("workload.topics must be 1 to 64".into());
        }
        if w.consumers > 64 {
            return Err("workload.consumers must be 0 to 64".into());
        }
        crate::point::payload_spec(&w.payload).map_err(|e| format!("workload.payload: {e}"))?;
        let mut names = std::collections::BTreeSet::new();
        for b in &self.broker {
            if b.name.is_empty() || !names.insert(b.name.as_str()) {
                return Err(format!(
                    "broker variant {:?}: names must be set and differ",
                    b.name
                ));
            }
            for key in ["data.dir", "kafka.addr"] {
                if b.settings.contains_key(key) {
                    return Err(format!("broker {:?}: {key} is the sweep's to set", b.name));
                }
            }
        }
        let count = self.point_count();
        if count > MAX_POINTS {
            return Err(format!("{count} points: more than {MAX_POINTS}"));
        }
        // Every point must make a valid bench plan (acks, levels, idempotence rules).
        for p in self.points()? {
            p.bench_plan(self, "check")
                .map_err(|e| format!("point {}: {e}", p.id()))?;
        }
        Ok(())
    }

    /// Points of the plan, before expansion (no allocation): for the size check.
    fn point_count(&self) -> usize {
        let a = &self.axes;
        [
            a.linger_ms.len(),
            a.batch_size.len(),
            a.compression.len(),
            a.acks.len(),
            a.message_size.len(),
            a.partitions.len(),
            a.producers.len(),
            a.key_distribution.len(),
            a.max_in_flight.len(),
            a.idempotence.len(),
            self.broker.len().max(1),
            self.modes.fixed_load_mbps.len() + usize::from(self.modes.max_throughput),
        ]
        .iter()
        .fold(1usize, |n, &k| n.saturating_mul(k))
    }

    /// Every point, broker variant outermost (one broker start each), the mode innermost.
    pub fn points(&self) -> Result<Vec<Point>, String> {
        crate::point::expand(self)
    }

    /// The broker variant names in sweep order ("default" when the plan names none).
    pub fn broker_names(&self) -> Vec<String> {
        if self.broker.is_empty() {
            vec!["default".into()]
        } else {
            self.broker.iter().map(|b| b.name.clone()).collect()
        }
    }

    /// At most how long one point of `mode` takes, in seconds.
    pub fn point_seconds(&self, max_throughput: bool) -> f64 {
        let t = &self.timing;
        let ceiling = if t.ceiling {
            t.measure_s.min(bench::runner::CEILING_MAX.as_secs_f64())
        } else {
            0.0
        };
        // The runner's search: a closed-loop probe and up to every share, each a quarter of
        // the measured window (1 s to 20 s).
        let search = if max_throughput {
            let trial = (t.measure_s / 4.0).clamp(1.0, 20.0);
            trial * (1 + bench::runner::SEARCH_STEPS.len()) as f64
        } else {
            0.0
        };
        POINT_OVERHEAD_S + t.warmup_s + search + t.repetitions as f64 * t.measure_s + ceiling
    }

    /// At most how long the whole sweep takes, in seconds (`--local` adds broker starts).
    pub fn estimate_seconds(&self, local: bool) -> Result<f64, String> {
        let points = self.points()?;
        let mut s: f64 = points
            .iter()
            .map(|p| self.point_seconds(p.mode.is_max_throughput()))
            .sum();
        if local {
            s += BROKER_START_S * self.broker_names().len() as f64;
        }
        Ok(s)
    }

    /// Refuses a plan whose estimate exceeds its budget, before anything runs.
    pub fn check_budget(&self, local: bool) -> Result<f64, TuneError> {
        let estimate = self.estimate_seconds(local).map_err(TuneError::Plan)?;
        let points = self.points().map_err(TuneError::Plan)?.len();
        if estimate > self.budget_minutes * 60.0 {
            return Err(TuneError::Plan(format!(
                "plan {:?}: {points} points would take up to {:.1} min, over its budget_minutes = {} \
                 (fewer values per axis, fewer repetitions or a shorter timing.measure_s)",
                self.name,
                estimate / 60.0,
                self.budget_minutes
            )));
        }
        Ok(estimate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const TINY: &str = r#"
name = "tiny"
budget_minutes = 10
[timing]
warmup_s = 0
measure_s = 1
repetitions = 2
[modes]
max_throughput = true
fixed_load_mbps = [1, 2]
[axes]
linger_ms = [0, 5]
batch_size = [16384, 65536]
compression = ["none", "zstd:3"]
acks = ["1", "all"]
"#;

    #[test]
    fn a_plan_expands_to_every_combination_times_each_mode() {
        let plan = SweepPlan::parse(TINY).unwrap();
        let points = plan.points().unwrap();
        assert_eq!(points.len(), 2 * 2 * 2 * 2 * 3);
        let ids: std::collections::BTreeSet<String> = points.iter().map(|p| p.id()).collect();
        assert_eq!(ids.len(), points.len(), "ids are unique");
        assert_eq!(plan.point_count(), points.len());
    }

    #[test]
    fn a_plan_over_its_budget_is_refused_with_the_estimate() {
        let mut plan = SweepPlan::parse(TINY).unwrap();
        // 16 max-throughput points: 2 + 0 + 7×1 + 2×1 + 1 = 12 s; 32 fixed-load: 2 + 2 + 1 = 5 s.
        let estimate = plan.estimate_seconds(false).unwrap();
        assert!(
            (estimate - (16.0 * 12.0 + 32.0 * 5.0)).abs() < 1e-9,
            "{estimate}"
        );
        assert!(plan.check_budget(false).is_ok());
        plan.budget_minutes = 5.0;
        let e = plan.check_budget(false).unwrap_err().to_string();
        assert!(e.contains("48 points") && e.contains("5.9 min"), "{e}");
    }

    #[test]
    fn a_point_becomes_the_bench_plan_it_names() {
        let text =
            format!("{TINY}[workload]\ntopics = 2\nconsumers = 1\npayload = \"random:0.5\"\n");
        let plan = SweepPlan::parse(&text).unwrap();
        let points = plan.points().unwrap();
        let p = points
            .iter()
            .find(|p| p.compression == "zstd" && p.acks == "all" && !p.mode.is_max_throughput())
            .unwrap();
        let b = p.bench_plan(&plan, "x").unwrap();
        assert_eq!((b.topics, b.consumers_per_subscription), (2, 1));
        assert_eq!(
            b.payload,
            bench::payload::PayloadSpec::Random { ratio: 0.5 }
        );
        assert_eq!(b.producer.acks, -1);
        assert_eq!(b.producer.compression_level, Some(3));
        assert_eq!(b.producer.batch_size, p.batch_size);
        assert_eq!(b.producer.linger.as_millis() as u64, p.linger_ms);
        // 1 MB/s of 1024-byte values.
        assert_eq!(b.producer_rate, 1e6 / 1024.0);
        assert_eq!(b.test, std::time::Duration::from_secs(1));
    }

    #[test]
    fn bad_values_are_named() {
        let bad = |from: &str, to: &str| SweepPlan::parse(&TINY.replace(from, to)).unwrap_err();
        assert!(bad("\"zstd:3\"", "\"zstd:x\"").contains("zstd:x"));
        assert!(bad("\"none\"", "\"brotli\"").contains("brotli"));
        assert!(bad("acks = [\"1\", \"all\"]", "acks = [\"2\"]").contains("acks"));
        assert!(bad("linger_ms = [0, 5]", "linger_ms = []").contains("axes.linger_ms is empty"));
        assert!(bad("repetitions = 2", "repetitions = 0").contains("repetitions"));
        assert!(bad("name = \"tiny\"", "name = \"tiny\"\ncolour = 1").contains("colour"));
        let idem = format!("{TINY}idempotence = [true]\n");
        let e = SweepPlan::parse(&idem).unwrap_err();
        assert!(e.contains("idempotence") && e.contains("acks"), "{e}");
    }
}
