//! point — one point of a sweep (a combination of producer settings, a broker variant and a
//! mode), its stable id (what `--resume` matches), and the bench plan that measures it.
//!
//! Owns the expansion of a plan's axes and the translation into `bench::workload::Plan` (Kafka's
//! config names through `bench::workload::apply_producer_config`). Must not run anything.

use std::time::Duration;

use bench::payload::PayloadSpec;
use bench::workload::{apply_producer_config, KeyDistributor, Plan};
use kclient::producer::ProducerConfig;
use serde::{Deserialize, Serialize};

use crate::plan::SweepPlan;

/// What a point measures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// The runner's rate search, then the repetitions at the rate it found.
    MaxThroughput,
    /// The repetitions at this offered load (MB/s of values, over all producers).
    FixedLoad { offered_mbps: f64 },
}

impl Mode {
    pub fn is_max_throughput(&self) -> bool {
        matches!(self, Mode::MaxThroughput)
    }

    /// "max" or "load=20MB/s".
    pub fn label(&self) -> String {
        match self {
            Mode::MaxThroughput => "max".into(),
            Mode::FixedLoad { offered_mbps } => format!("load={offered_mbps}MB/s"),
        }
    }
}

/// A compression codec and its optional level, as a plan writes it ("zstd:9").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub name: String,
    pub level: Option<i32>,
}

impl Codec {
    pub fn parse(text: &str) -> Result<Codec, String> {
        let (name, level) = match text.split_once(':') {
            Some((n, l)) => {
                let level = l
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| format!("{text:?}: the level after ':' must be a number"))?;
                (n.trim(), Some(level))
            }
            None => (text.trim(), None),
        };
        if !["none", "gzip", "snappy", "lz4", "zstd"].contains(&name) {
            return Err(format!(
                "{text:?}: use none, gzip, snappy, lz4 or zstd (zstd:LEVEL)"
            ));
        }
        if name == "none" && level.is_some() {
            return Err(format!("{text:?}: none has no level"));
        }
        Ok(Codec {
            name: name.into(),
            level,
        })
    }
}

/// One point: every setting it runs with. (No `deny_unknown_fields`: serde does not support it
/// with the flattened mode.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub linger_ms: u64,
    pub batch_size: usize,
    /// Codec name ("none", "lz4", ...).
    pub compression: String,
    pub compression_level: Option<i32>,
    /// "0", "1" or "all".
    pub acks: String,
    pub message_size: usize,
    pub partitions: u32,
    pub producers: usize,
    pub key_distribution: String,
    pub max_in_flight: usize,
    pub idempotence: bool,
    /// The broker variant's name ("default" without variants).
    pub broker: String,
    #[serde(flatten)]
    pub mode: Mode,
}

impl Point {
    /// Stable and unique within a plan: every setting, by name.
    pub fn id(&self) -> String {
        format!(
            "linger.ms={} batch.size={} compression={} acks={} size={} partitions={} producers={} keys={} in.flight={} idempotence={} broker={} {}",
            self.linger_ms,
            self.batch_size,
            self.codec_label(),
            self.acks,
            self.message_size,
            self.partitions,
            self.producers,
            self.key_distribution,
            self.max_in_flight,
            self.idempotence,
            self.broker,
            self.mode.label()
        )
    }

    /// Every setting but the mode: what two modes of one configuration share.
    pub fn settings_id(&self) -> String {
        let id = self.id();
        match id.rsplit_once(' ') {
            Some((settings, _mode)) => settings.to_string(),
            None => id,
        }
    }

    /// "zstd:3" or "lz4".
    pub fn codec_label(&self) -> String {
        match self.compression_level {
            Some(l) => format!("{}:{l}", self.compression),
            None => self.compression.clone(),
        }
    }

    /// The producer settings alone (no mode, no broker): what recommendations name.
    pub fn settings_label(&self) -> String {
        format!(
            "linger.ms={} batch.size={} compression={} acks={}",
            self.linger_ms,
            self.batch_size,
            self.codec_label(),
            self.acks
        )
    }

    /// The offered rate in records/s of a fixed-load point.
    pub fn offered_msg_per_s(&self) -> Option<f64> {
        match self.mode {
            Mode::MaxThroughput => None,
            Mode::FixedLoad { offered_mbps } => {
                Some(offered_mbps * 1e6 / self.message_size.max(1) as f64)
            }
        }
    }

    /// The bench plan measuring this point (`producer_rate` 0 for the search, else the load).
    pub fn bench_plan(&self, sweep: &SweepPlan, name: &str) -> Result<Plan, String> {
        let keys = match self.key_distribution.as_str() {
            "NO_KEY" => KeyDistributor::NoKey,
            "ROUND_ROBIN" => KeyDistributor::RoundRobin,
            "RANDOM_NANO" => KeyDistributor::RandomNano,
            other => {
                return Err(format!(
                    "key distribution {other:?}: use NO_KEY, ROUND_ROBIN or RANDOM_NANO"
                ))
            }
        };
        if self.idempotence && self.acks != "all" {
            return Err("idempotence needs acks = all (as in Kafka)".into());
        }
        if self.idempotence && self.max_in_flight > 5 {
            return Err("idempotence needs max_in_flight ≤ 5 (as in Kafka)".into());
        }
        if self.message_size == 0 || self.message_size > 10 << 20 {
            return Err(format!("message size {} (1 to 10 MiB)", self.message_size));
        }
        if self.partitions == 0 || self.producers == 0 || self.max_in_flight == 0 {
            return Err("partitions, producers and max_in_flight must be at least 1".into());
        }
        let mut producer = ProducerConfig::new("", "");
        producer.connections = self.producers;
        producer.executors = self.producers.min(cores());
        producer.record_size = self.message_size;
        producer.keys = match keys {
            KeyDistributor::NoKey => None,
            _ => Some(bench::workload::KEY_COUNT),
        };
        producer.random_keys = keys == KeyDistributor::RandomNano;
        producer.idempotence = self.idempotence;
        producer.buffer_memory = sweep.workload.buffer_memory;
        let mut set = |key: &str, value: String| {
            apply_producer_config(&mut producer, key, &value).map_err(|e| format!("{key}: {e}"))
        };
        set("acks", self.acks.clone())?;
        set("linger.ms", self.linger_ms.to_string())?;
        set("batch.size", self.batch_size.to_string())?;
        set("compression.type", self.compression.clone())?;
        if let Some(level) = self.compression_level {
            set("compression.level", level.to_string())?;
        }
        set(
            "max.in.flight.requests.per.connection",
            self.max_in_flight.to_string(),
        )?;
        let seconds = |s: f64| Duration::try_from_secs_f64(s).map_err(|e| e.to_string());
        Ok(Plan {
            name: name.into(),
            topics: sweep.workload.topics,
            partitions_per_topic: self.partitions,
            payload: payload_spec(&sweep.workload.payload)?,
            message_size: self.message_size,
            key_distributor: keys,
            consumers_per_subscription: sweep.workload.consumers,
            producer_rate: self.offered_msg_per_s().unwrap_or(0.0),
            warmup: seconds(sweep.timing.warmup_s)?,
            test: seconds(sweep.timing.measure_s)?,
            records: None,
            producer,
            consumer_config: Default::default(),
        })
    }
}

/// "json_log" or "random:R".
pub fn payload_spec(text: &str) -> Result<PayloadSpec, String> {
    match text.split_once(':') {
        None if text == "json_log" => Ok(PayloadSpec::JsonLog),
        Some(("random", r)) => match r.parse::<f64>() {
            Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(PayloadSpec::Random { ratio }),
            _ => Err(format!("{text:?}: the ratio after random: must be 0 to 1")),
        },
        _ => Err(format!("{text:?}: use json_log or random:RATIO")),
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Every combination of the plan's axes, broker variant outermost and mode innermost.
pub fn expand(plan: &SweepPlan) -> Result<Vec<Point>, String> {
    let a = &plan.axes;
    let mut modes = Vec::new();
    if plan.modes.max_throughput {
        modes.push(Mode::MaxThroughput);
    }
    for &offered_mbps in &plan.modes.fixed_load_mbps {
        modes.push(Mode::FixedLoad { offered_mbps });
    }
    let codecs = a
        .compression
        .iter()
        .map(|c| Codec::parse(c))
        .collect::<Result<Vec<_>, _>>()?;
    let brokers = plan.broker_names();
    // Odometer over the axes, the last one turning fastest.
    let dims = [
        brokers.len(),
        a.partitions.len(),
        a.message_size.len(),
        a.producers.len(),
        a.key_distribution.len(),
        a.max_in_flight.len(),
        a.idempotence.len(),
        a.acks.len(),
        codecs.len(),
        a.batch_size.len(),
        a.linger_ms.len(),
        modes.len(),
    ];
    let total = dims.iter().fold(1usize, |n, &k| n.saturating_mul(k));
    if total > crate::plan::MAX_POINTS {
        return Err(format!(
            "{total} points: more than {}",
            crate::plan::MAX_POINTS
        ));
    }
    let mut points = Vec::with_capacity(total);
    for n in 0..total {
        let mut digit = [0usize; 12];
        let mut rest = n;
        for (d, &k) in digit.iter_mut().zip(&dims).rev() {
            *d = rest % k;
            rest /= k;
        }
        let [b, part, size, prod, keys, flight, idem, acks, codec, batch, linger, mode] = digit;
        points.push(Point {
            linger_ms: a.linger_ms[linger],
            batch_size: a.batch_size[batch],
            compression: codecs[codec].name.clone(),
            compression_level: codecs[codec].level,
            acks: a.acks[acks].clone(),
            message_size: a.message_size[size],
            partitions: a.partitions[part],
            producers: a.producers[prod],
            key_distribution: a.key_distribution[keys].clone(),
            max_in_flight: a.max_in_flight[flight],
            idempotence: a.idempotence[idem],
            broker: brokers[b].clone(),
            mode: modes[mode],
        });
    }
    Ok(points)
}
