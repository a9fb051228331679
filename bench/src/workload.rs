//! workload — OpenMessaging-Benchmark-style workload files (YAML or TOML, OMB's camelCase names)
//! and their translation into a [`Plan`] the runner executes.
//!
//! ```yaml
//! name: 1-topic-1kb-lz4
//! topics: 1
//! partitionsPerTopic: 1
//! messageSize: 1024
//! payload: json_log            # or randomBytesRatio: 0.5, or payloadFile: path
//! keyDistributor: NO_KEY       # ROUND_ROBIN, RANDOM_NANO
//! producersPerTopic: 1
//! consumerPerSubscription: 0
//! producerRate: 0              # records/s over all producers; 0 = search the maximum
//! warmupDurationMinutes: 1     # or warmupDurationSeconds
//! testDurationMinutes: 5       # or testDurationSeconds
//! producerConfig: { acks: 1, linger.ms: 5, batch.size: 65536, compression.type: lz4 }
//! ```
//!
//! Owns parsing, validation (unknown fields and unknown Kafka config names are errors, never
//! ignored) and the mapping of Kafka's producer config names onto [`ProducerConfig`]. Must not
//! run anything or touch the network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::payload::PayloadSpec;
use kclient::batch::Compression;
use kclient::producer::ProducerConfig;

/// Keys cycled through by ROUND_ROBIN and drawn from by RANDOM_NANO (OMB keeps a list of
/// 10,000 keys too).
pub const KEY_COUNT: u64 = 10_000;

/// Errors of reading a workload.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Parse { path: PathBuf, reason: String },
    #[error("workload {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// A workload file, with OMB's field names.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    pub name: String,
    pub topics: u32,
    pub partitions_per_topic: u32,
    /// Value bytes per record (ignored with a payload file: the file's size).
    #[serde(default = "default_message_size")]
    pub message_size: usize,
    /// "json_log" (default) or "random" (with randomBytesRatio) or "file" (with payloadFile).
    #[serde(default)]
    pub payload: Option<String>,
    /// OMB: fraction of each value that is random bytes (the rest zeros).
    #[serde(default)]
    pub random_bytes_ratio: Option<f64>,
    /// OMB: a file whose contents are every record's value (relative to the workload file).
    #[serde(default)]
    pub payload_file: Option<PathBuf>,
    /// OMB: accepted, values always come from a pool of 16 MiB of distinct values
    /// (`bench::payload::POOL_BYTES`).
    #[serde(default)]
    pub use_randomized_payloads: Option<bool>,
    #[serde(default)]
    pub randomized_payload_pool_size: Option<u64>,
    #[serde(default)]
    pub key_distributor: KeyDistributor,
    #[serde(default = "one")]
    pub producers_per_topic: usize,
    /// OMB: subscriptions per topic (consumer groups); only 0 or 1 here.
    #[serde(default)]
    pub subscriptions_per_topic: u32,
    #[serde(default)]
    pub consumer_per_subscription: usize,
    /// OMB: must be 0 (backlog drain tests are not supported).
    #[serde(default)]
    pub consumer_backlog_size_gb: f64,
    /// Records/s over all producers of all topics; 0: find the maximum sustainable rate.
    #[serde(default)]
    pub producer_rate: f64,
    #[serde(default)]
    pub warmup_duration_minutes: Option<f64>,
    #[serde(default)]
    pub warmup_duration_seconds: Option<f64>,
    #[serde(default)]
    pub test_duration_minutes: Option<f64>,
    #[serde(default)]
    pub test_duration_seconds: Option<f64>,
    /// weir: glommio executors (threads) per topic for its producers (default: one per
    /// producer, at most the machine's cores).
    #[serde(default)]
    pub executors_per_topic: Option<usize>,
    /// Kafka producer configs by Kafka's names.
    #[serde(default)]
    pub producer_config: BTreeMap<String, serde_json::Value>,
    /// Kafka consumer configs by Kafka's names.
    #[serde(default)]
    pub consumer_config: BTreeMap<String, serde_json::Value>,
}

fn default_message_size() -> usize {
    1024
}

fn one() -> usize {
    1
}

/// How records are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KeyDistributor {
    /// Null keys: sticky partitioning (KIP-480).
    #[default]
    NoKey,
    /// Keys cycled through a list of [`KEY_COUNT`] (murmur2 partitioning).
    RoundRobin,
    /// A key drawn uniformly at random from the same [`KEY_COUNT`] for each record (OMB picks
    /// a key of its list by `System.nanoTime()`); each producer's generator is seeded from the
    /// clock, so runs differ.
    RandomNano,
}

impl KeyDistributor {
    pub fn name(self) -> &'static str {
        match self {
            KeyDistributor::NoKey => "NO_KEY",
            KeyDistributor::RoundRobin => "ROUND_ROBIN",
            KeyDistributor::RandomNano => "RANDOM_NANO",
        }
    }

    fn keys(self) -> Option<u64> {
        match self {
            KeyDistributor::NoKey => None,
            KeyDistributor::RoundRobin | KeyDistributor::RandomNano => Some(KEY_COUNT),
        }
    }
}

/// Producer configs this generator honours (Kafka's names).
pub const PRODUCER_CONFIGS: &[&str] = &[
    "acks",
    "linger.ms",
    "batch.size",
    "compression.type",
    "compression.level",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "max.in.flight.requests.per.connection",
    "buffer.memory",
    "request.timeout.ms",
    "client.id",
];

/// Consumer configs accepted (kept for the consumers; see `Plan::consumer_config`).
pub const CONSUMER_CONFIGS: &[&str] = &[
    "fetch.min.bytes",
    "fetch.max.wait.ms",
    "max.partition.fetch.bytes",
    "fetch.max.bytes",
    "auto.offset.reset",
    "enable.auto.commit",
    "group.id",
];

/// What the runner executes: a producer template and the shape of the run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    /// Number of topics (the cli names and creates them).
    pub topics: u32,
    pub partitions_per_topic: u32,
    pub payload: PayloadSpec,
    pub message_size: usize,
    pub key_distributor: KeyDistributor,
    pub consumers_per_subscription: usize,
    /// Records/s over everything; 0: search the maximum sustainable rate (with a test
    /// duration) or run closed-loop (with a record count).
    pub producer_rate: f64,
    pub warmup: Duration,
    pub test: Duration,
    /// Bound the measured phase by a record count instead of `test` (plain `weir bench produce`).
    pub records: Option<u64>,
    /// Everything per producer; `bootstrap` and `topic` are filled per target and topic,
    /// `connections` is producers per topic.
    pub producer: ProducerConfig,
    pub consumer_config: BTreeMap<String, String>,
}

impl Workload {
    /// Reads a workload file: `.toml` as TOML, anything else as YAML.
    pub fn load(path: &Path) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|source| WorkloadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let parse = |reason: String| WorkloadError::Parse {
            path: path.to_path_buf(),
            reason,
        };
        let mut w: Workload = if path.extension().is_some_and(|e| e == "toml") {
            toml::from_str(&text).map_err(|e| parse(e.to_string()))?
        } else {
            serde_yaml::from_str(&text).map_err(|e| parse(e.to_string()))?
        };
        if let (Some(file), Some(dir)) = (&w.payload_file, path.parent()) {
            if file.is_relative() {
                w.payload_file = Some(dir.join(file));
            }
        }
        Ok(w)
    }

    fn invalid(&self, reason: impl Into<String>) -> WorkloadError {
        WorkloadError::Invalid {
            name: self.name.clone(),
            reason: reason.into(),
        }
    }

    fn duration(
        &self,
        what: &str,
        minutes: Option<f64>,
        seconds: Option<f64>,
    ) -> Result<Duration, WorkloadError> {
        let s = match (minutes, seconds) {
            (Some(_), Some(_)) => {
                return Err(self.invalid(format!(
                    "give {what}DurationMinutes or {what}DurationSeconds, not both"
                )))
            }
            (Some(m), None) => m * 60.0,
            (None, Some(s)) => s,
            (None, None) => 0.0,
        };
        Duration::try_from_secs_f64(s)
            .map_err(|_| self.invalid(format!("{what} duration {s} s is not a duration")))
    }

    /// Validates and translates into a plan.
    pub fn plan(&self) -> Result<Plan, WorkloadError> {
        if self.topics == 0 || self.partitions_per_topic == 0 || self.producers_per_topic == 0 {
            return Err(
                self.invalid("topics, partitionsPerTopic and producersPerTopic must be at least 1")
            );
        }
        if self.consumer_backlog_size_gb != 0.0 {
            return Err(self.invalid("consumerBacklogSizeGB is not supported (must be 0)"));
        }
        if self.subscriptions_per_topic > 1 {
            return Err(self.invalid("subscriptionsPerTopic above 1 is not supported"));
        }
        if !(self.producer_rate >= 0.0 && self.producer_rate.is_finite()) {
            return Err(self.invalid("producerRate must be 0 or a positive number"));
        }
        let warmup = self.duration(
            "warmup",
            self.warmup_duration_minutes,
            self.warmup_duration_seconds,
        )?;
        let test = self.duration(
            "test",
            self.test_duration_minutes,
            self.test_duration_seconds,
        )?;
        if test.is_zero() {
            return Err(self.invalid("testDurationMinutes or testDurationSeconds is required"));
        }
        let payload = match (
            self.payload.as_deref(),
            &self.payload_file,
            self.random_bytes_ratio,
        ) {
            (None | Some("file"), Some(path), None) => PayloadSpec::File { path: path.clone() },
            (None | Some("random"), None, Some(ratio)) => PayloadSpec::Random { ratio },
            (None | Some("json_log"), None, None) => PayloadSpec::JsonLog,
            (Some(other), None, None) => {
                return Err(self.invalid(format!(
                    "payload {other:?}: use json_log, random (with randomBytesRatio) or file (with payloadFile)"
                )))
            }
            _ => {
                return Err(
                    self.invalid("payload, payloadFile and randomBytesRatio contradict each other")
                )
            }
        };
        let mut producer = ProducerConfig::new("", "");
        producer.connections = self.producers_per_topic;
        producer.executors = self
            .executors_per_topic
            .unwrap_or_else(|| self.producers_per_topic.min(cores()));
        producer.record_size = self.message_size;
        producer.keys = self.key_distributor.keys();
        producer.random_keys = self.key_distributor == KeyDistributor::RandomNano;
        for (name, value) in &self.producer_config {
            apply_producer_config(&mut producer, name, &config_text(value))
                .map_err(|reason| self.invalid(format!("producerConfig {name}: {reason}")))?;
        }
        let mut consumer_config = BTreeMap::new();
        for (name, value) in &self.consumer_config {
            if !CONSUMER_CONFIGS.contains(&name.as_str()) {
                return Err(self.invalid(format!(
                    "consumerConfig {name}: unknown (known: {})",
                    CONSUMER_CONFIGS.join(", ")
                )));
            }
            consumer_config.insert(name.clone(), config_text(value));
        }
        Ok(Plan {
            name: self.name.clone(),
            topics: self.topics,
            partitions_per_topic: self.partitions_per_topic,
            payload,
            message_size: self.message_size,
            key_distributor: self.key_distributor,
            consumers_per_subscription: self.consumer_per_subscription,
            producer_rate: self.producer_rate,
            warmup,
            test,
            records: None,
            producer,
            consumer_config,
        })
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A config value as Kafka's clients take it: text (numbers and booleans as written).
fn config_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why one producerConfig entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerConfigError {
    #[error("{0:?} is not a valid number")]
    NotANumber(String),
    #[error("{0:?}: use 0, 1 or all")]
    Acks(String),
    /// The codec name was refused (`wire::codec` says why).
    #[error("{0}")]
    Compression(String),
    #[error("unknown or unsupported (supported: {})", PRODUCER_CONFIGS.join(", "))]
    Unknown,
}

/// Sets one producer config by its Kafka name.
pub fn apply_producer_config(
    p: &mut ProducerConfig,
    name: &str,
    value: &str,
) -> Result<(), ProducerConfigError> {
    fn num<T: std::str::FromStr>(v: &str) -> Result<T, ProducerConfigError> {
        v.trim()
            .parse()
            .map_err(|_| ProducerConfigError::NotANumber(v.to_string()))
    }
    match name {
        "acks" => {
            p.acks = match value.trim() {
                "all" | "-1" => -1,
                "0" => 0,
                "1" => 1,
                other => return Err(ProducerConfigError::Acks(other.to_string())),
            }
        }
        "linger.ms" => p.linger = Duration::from_millis(num(value)?),
        "batch.size" => p.batch_size = num(value)?,
        "compression.type" => {
            p.compression = value
                .parse::<Compression>()
                .map_err(ProducerConfigError::Compression)?
        }
        "compression.level"
        | "compression.gzip.level"
        | "compression.lz4.level"
        | "compression.zstd.level" => p.compression_level = Some(num(value)?),
        "max.in.flight.requests.per.connection" => p.max_in_flight = num(value)?,
        "buffer.memory" => p.buffer_memory = num(value)?,
        "request.timeout.ms" => p.request_timeout_ms = num(value)?,
        "client.id" => p.client_id = value.to_string(),
        _ => return Err(ProducerConfigError::Unknown),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn an_omb_yaml_workload_becomes_a_plan_with_kafka_configs() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "w.yaml",
            "name: t\ntopics: 2\npartitionsPerTopic: 3\nmessageSize: 512\nrandomBytesRatio: 0.5\n\
             keyDistributor: ROUND_ROBIN\nproducersPerTopic: 2\nproducerRate: 5000\n\
             warmupDurationSeconds: 1\ntestDurationMinutes: 0.5\n\
             producerConfig:\n  acks: all\n  linger.ms: 2\n  batch.size: 65536\n  compression.type: zstd\n  compression.zstd.level: 5\n",
        );
        let plan = Workload::load(&p).unwrap().plan().unwrap();
        assert_eq!(plan.topics, 2);
        assert_eq!(plan.partitions_per_topic, 3);
        assert_eq!(plan.payload, PayloadSpec::Random { ratio: 0.5 });
        assert_eq!(plan.producer.keys, Some(KEY_COUNT));
        assert_eq!(plan.producer.connections, 2);
        assert_eq!(plan.producer.acks, -1);
        assert_eq!(plan.producer.linger, Duration::from_millis(2));
        assert_eq!(plan.producer.batch_size, 65536);
        assert_eq!(plan.producer.compression, Compression::Zstd);
        assert_eq!(plan.producer.compression_level, Some(5));
        assert_eq!(plan.producer.record_size, 512);
        assert_eq!(plan.warmup, Duration::from_secs(1));
        assert_eq!(plan.test, Duration::from_secs(30));
        assert_eq!(plan.producer_rate, 5000.0);
    }

    #[test]
    fn toml_workloads_parse_the_same_way() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "w.toml",
            "name = \"t\"\ntopics = 1\npartitionsPerTopic = 1\ntestDurationSeconds = 2\n\
             [producerConfig]\nacks = 1\n\"compression.type\" = \"lz4\"\n",
        );
        let plan = Workload::load(&p).unwrap().plan().unwrap();
        assert_eq!(plan.producer.acks, 1);
        assert_eq!(plan.producer.compression, Compression::Lz4);
        assert_eq!(plan.payload, PayloadSpec::JsonLog);
        assert_eq!(plan.key_distributor, KeyDistributor::NoKey);
    }

    #[test]
    fn mistakes_are_errors_naming_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let base = "name: t\ntopics: 1\npartitionsPerTopic: 1\ntestDurationSeconds: 1\n";
        let cases = [
            ("partitonsPerTopic: 2\n", "partitonsPerTopic"),
            ("producerConfig:\n  lingr.ms: 5\n", "lingr.ms"),
            ("producerConfig:\n  acks: 2\n", "acks"),
            ("testDurationMinutes: 1\n", "not both"),
            ("payload: csv\n", "csv"),
            ("keyDistributor: SOMETIMES\n", "SOMETIMES"),
        ];
        for (extra, needle) in cases {
            let p = write(dir.path(), "w.yaml", &format!("{base}{extra}"));
            let err = Workload::load(&p)
                .and_then(|w| w.plan())
                .expect_err(extra)
                .to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
        let p = write(
            dir.path(),
            "w.yaml",
            "name: t\ntopics: 1\npartitionsPerTopic: 1\n",
        );
        assert!(Workload::load(&p).unwrap().plan().is_err());
    }

    #[test]
    fn a_payload_file_is_relative_to_the_workload() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "w.yaml",
            "name: t\ntopics: 1\npartitionsPerTopic: 1\ntestDurationSeconds: 1\npayloadFile: data/p.bin\n",
        );
        let plan = Workload::load(&p).unwrap().plan().unwrap();
        assert_eq!(
            plan.payload,
            PayloadSpec::File {
                path: dir.path().join("data/p.bin")
            }
        );
    }

    #[test]
    fn the_shipped_workloads_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("workloads");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let w = Workload::load(&path).unwrap_or_else(|e| panic!("{e}"));
            w.plan()
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        assert!(n >= 3, "{n} workloads in {}", dir.display());
    }
}
