//! The settings of `weir serve`: built-in defaults (the broker's from `BrokerConfig::new`), then
//! the TOML config file (`--config FILE`), then the flags (a flag overrides the file). A flag is
//! set through the same `Settings::set` as its file key, so both accept and refuse the same values.
//!
//! The file's keys are Kafka's broker config names where Kafka has one (`num.partitions`,
//! `log.retention.ms`, `message.max.bytes`, ...) and weir's own dotted names otherwise (`data.dir`,
//! `kafka.addr`, `coord.servers`, ...). TOML dotted keys nest, so `log.retention.ms = 1` and a
//! `[log]` table with `retention.ms = 1` are the same key. Unknown keys and bad values are errors
//! naming the key (no silent typos); broker-level topic defaults weir cannot honour
//! (`compression.type = "gzip"`) are refused here exactly as a topic config would be
//! (`engine::broker::topic_config`). docs/weir.example.toml lists every key.
//!
//! Owns: the key scheme and value types. Must not: implement broker behaviour or decide which
//! topic config values are valid (it asks `topic_config`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use engine::broker::topic_config::{self, TopicDefaults};
use engine::broker::BrokerConfig;
use serde::de::DeserializeOwned;
use storage::LogConfig;

use crate::serve_io::IoPropertiesFile;

/// Everything `weir serve` is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `data.dir`: partition logs in `DIR/logs`, the embedded coordinator in `DIR/coord`.
    pub data_dir: Option<PathBuf>,
    /// `kafka.addr`: where every shard listens (SO_REUSEPORT); port 0 picks a free port.
    pub kafka_addr: SocketAddr,
    /// `advertised.addr`: HOST:PORT clients are told to connect to.
    pub advertised_addr: Option<String>,
    /// `node.id`.
    pub node_id: i32,
    /// `broker.rack`: the rack (on EC2, the availability zone) Metadata and DescribeCluster report.
    pub rack: Option<String>,
    /// `io.properties.file`: the io-properties file that sizes the partition logs' writes
    /// (`crate::serve_io`).
    pub io_properties: IoPropertiesFile,
    /// `shards`: number of shards (default: one per core in `cores`, or per online core).
    pub shards: Option<usize>,
    /// `cores`: cores for the shards.
    pub cores: Option<Vec<usize>>,
    /// `coord.servers`: use these coordinator servers instead of an embedded one.
    pub coord_servers: Option<Vec<String>>,
    /// `coord.core`: core of the embedded coordinator.
    pub coord_core: Option<usize>,
    pub coord_zk_addr: Option<String>,
    /// `num.partitions`.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `socket.request.max.bytes`.
    pub socket_request_max_bytes: usize,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: u64,
    /// `producer.id.expiration.ms`.
    pub producer_id_expiration_ms: u64,
    /// `offsets.retention.minutes`: committed offsets of an empty group expire after this.
    pub offsets_retention_minutes: u64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: u64,
    /// `group.initial.rebalance.delay.ms`: an empty group's first join waits this for more.
    pub group_initial_rebalance_delay_ms: u64,
    /// `offsets.topic.segment.bytes`: segment.bytes of `__consumer_offsets` when created.
    pub offsets_topic_segment_bytes: u64,
    /// `io.memory.bytes`: glommio io_memory per shard.
    pub io_memory_bytes: usize,
    /// `shard.connections.max`: client connections each shard serves at once.
    pub shard_connections_max: usize,
    /// Broker-level defaults of topic configs, by topic-config name (`retention.ms` for the key
    /// `log.retention.ms`), as written.
    pub topic_defaults: BTreeMap<String, String>,
}

impl Default for Settings {
    /// The broker's own defaults (`BrokerConfig::new`, the one place they are written) plus the
    /// process-level ones only the CLI has (addresses, cores, io memory).
    fn default() -> Self {
        let broker = BrokerConfig::new(PathBuf::new(), Vec::new());
        Settings {
            data_dir: None,
            kafka_addr: SocketAddr::from(([0, 0, 0, 0], 9092)),
            advertised_addr: None,
            node_id: broker.node_id,
            rack: broker.rack.clone(),
            io_properties: IoPropertiesFile::Default,
            shards: None,
            cores: None,
            coord_servers: None,
            coord_core: None,
            coord_zk_addr: None,
            num_partitions: broker.num_partitions,
            auto_create_topics: broker.auto_create_topics,
            socket_request_max_bytes: wire::protocol::frame::REQUEST_BYTES_MAX_DEFAULT,
            retention_check_interval_ms: broker.retention_check_interval_ms,
            producer_id_expiration_ms: broker.producer_id_expiration_ms,
            offsets_retention_minutes: broker.offsets_retention_minutes,
            offsets_retention_check_interval_ms: broker.offsets_retention_check_interval_ms,
            group_initial_rebalance_delay_ms: broker.group_initial_rebalance_delay_ms,
            offsets_topic_segment_bytes: broker.offsets_topic_segment_bytes,
            io_memory_bytes: 1 << 20,
            shard_connections_max: engine::shard::CONNECTIONS_MAX_DEFAULT,
            topic_defaults: BTreeMap::new(),
        }
    }
}

/// Flattens nested tables into dotted keys.
fn flatten(prefix: &str, table: toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (key, value) in table {
        let key = if prefix.is_empty() {
            key
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(t) => flatten(&key, t, out),
            v => out.push((key, v)),
        }
    }
}

/// A value of type `T` (serde), or an error naming the key and the value.
fn typed<T: DeserializeOwned>(key: &str, value: &toml::Value, what: &str) -> anyhow::Result<T> {
    value
        .clone()
        .try_into::<T>()
        .map_err(|_| anyhow!("{key} = {value}: expected {what}"))
}

/// A topic config value as text: numbers (min.cleanable.dirty.ratio is a fraction), booleans,
/// strings, and lists (joined by commas).
fn config_text(key: &str, value: &toml::Value) -> anyhow::Result<String> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(|v| config_text(key, v))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(|v| v.join(",")),
        other => bail!("{key} = {other}: expected a string, a number or a boolean"),
    }
}

fn check_addr(key: &str, s: &str) -> anyhow::Result<()> {
    let ok = s
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !ok {
        bail!("{key} = {s:?}: expected HOST:PORT");
    }
    Ok(())
}

/// Longest `broker.rack` (Kafka sends it as a STRING, at most 32767 bytes; a rack name is short).
const RACK_BYTES_MAX: usize = 255;

fn check_rack(key: &str, rack: &str) -> anyhow::Result<()> {
    if rack.is_empty() || rack.len() > RACK_BYTES_MAX {
        bail!("{key} = {rack:?}: expected 1 to {RACK_BYTES_MAX} bytes");
    }
    if rack.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("{key} = {rack:?}: no spaces or control characters in a rack name");
    }
    Ok(())
}

impl Settings {
    /// The defaults with the file's settings over them.
    pub fn from_toml(text: &str) -> anyhow::Result<Settings> {
        let table: toml::Table = toml::from_str(text).context("not valid TOML")?;
        let mut entries = Vec::new();
        flatten("", table, &mut entries);
        let mut s = Settings::default();
        for (key, value) in &entries {
            s.set(key, value)?;
        }
        s.check()?;
        Ok(s)
    }

    /// Sets one key, from the file or from a flag (the one validation of every value).
    pub fn set(&mut self, key: &str, v: &toml::Value) -> anyhow::Result<()> {
        const POSITIVE: &str = "a positive integer";
        let positive = |x: u64| -> anyhow::Result<u64> {
            if x == 0 {
                bail!("{key} = {v}: expected {POSITIVE}");
            }
            Ok(x)
        };
        match key {
            "data.dir" => self.data_dir = Some(typed(key, v, "a path")?),
            "kafka.addr" => {
                let addr: String = typed(key, v, "an address HOST:PORT")?;
                self.kafka_addr = addr
                    .parse()
                    .map_err(|_| anyhow!("{key} = {v}: expected an IP address and port"))?;
            }
            "advertised.addr" => {
                let addr: String = typed(key, v, "HOST:PORT")?;
                check_addr(key, &addr)?;
                self.advertised_addr = Some(addr);
            }
            "node.id" => self.node_id = typed(key, v, "an integer node id")?,
            "broker.rack" => {
                let rack: String = typed(key, v, "a rack name")?;
                check_rack(key, &rack)?;
                self.rack = Some(rack);
            }
            "io.properties.file" => {
                let path: String = typed(key, v, "a path, or \"none\"")?;
                self.io_properties = IoPropertiesFile::parse(&path)?;
            }
            "shards" => {
                self.shards = Some(positive(typed(key, v, POSITIVE)?)? as usize);
            }
            "cores" => self.cores = Some(typed(key, v, "a list of core numbers")?),
            "coord.servers" => {
                let servers: Vec<String> = typed(key, v, "a list of HOST:PORT strings")?;
                for s in &servers {
                    check_addr(key, s)?;
                }
                if servers.is_empty() {
                    bail!("{key} is empty");
                }
                self.coord_servers = Some(servers);
            }
            "coord.core" => self.coord_core = Some(typed(key, v, "a core number")?),
            "coord.zk.addr" => {
                let addr: String = typed(key, v, "a HOST:PORT string")?;
                check_addr(key, &addr)?;
                self.coord_zk_addr = Some(addr);
            }
            "num.partitions" => {
                let n: i32 = typed(key, v, POSITIVE)?;
                if n < 1 {
                    bail!("{key} = {v}: expected {POSITIVE}");
                }
                self.num_partitions = n;
            }
            "auto.create.topics.enable" => {
                self.auto_create_topics = typed(key, v, "true or false")?;
            }
            "socket.request.max.bytes" => {
                self.socket_request_max_bytes = positive(typed(key, v, POSITIVE)?)? as usize;
            }
            "log.retention.check.interval.ms" => {
                self.retention_check_interval_ms = positive(typed(key, v, POSITIVE)?)?;
            }
            "producer.id.expiration.ms" => {
                self.producer_id_expiration_ms = positive(typed(key, v, POSITIVE)?)?;
            }
            "offsets.retention.minutes" => {
                self.offsets_retention_minutes = positive(typed(key, v, POSITIVE)?)?;
            }
            "group.initial.rebalance.delay.ms" => {
                let ms: u64 = typed(key, v, "milliseconds, 0 or more")?;
                // Kafka's upper bound for a group's rebalance timeout (max.poll.interval.ms).
                if ms > 300_000 {
                    bail!("{key} = {v}: expected at most 300000");
                }
                self.group_initial_rebalance_delay_ms = ms;
            }
            "offsets.retention.check.interval.ms" => {
                self.offsets_retention_check_interval_ms = positive(typed(key, v, POSITIVE)?)?;
            }
            "offsets.topic.segment.bytes" => {
                self.offsets_topic_segment_bytes = typed(key, v, POSITIVE)?;
                if self.offsets_topic_segment_bytes < 14 {
                    bail!("{key} = {v}: below Kafka's minimum of 14");
                }
            }
            "io.memory.bytes" => {
                self.io_memory_bytes = positive(typed(key, v, POSITIVE)?)? as usize;
            }
            "shard.connections.max" => {
                self.shard_connections_max = positive(typed(key, v, POSITIVE)?)? as usize;
            }
            other => {
                let Some(topic_name) = topic_config::topic_name_of_broker_config(other) else {
                    let hint = topic_config::broker_name_of_topic_config(other)
                        .map(|b| format!(" (the broker-wide default of {other} is {b})"))
                        .unwrap_or_default();
                    bail!("unknown key {other:?}{hint}");
                };
                self.topic_defaults
                    .insert(topic_name.to_string(), config_text(key, v)?);
            }
        }
        Ok(())
    }

    /// Checks the broker-level topic defaults, each by itself so the error names its key.
    pub fn check(&self) -> anyhow::Result<()> {
        for (name, value) in &self.topic_defaults {
            let one = BTreeMap::from([(name.clone(), value.clone())]);
            if let Err(e) = TopicDefaults::new(LogConfig::default(), one) {
                let key = topic_config::broker_name_of_topic_config(name).unwrap_or(name);
                bail!("{key} = {value:?}: {e}");
            }
        }
        Ok(())
    }

    /// The broker-level topic defaults as the engine takes them, over `base` (the log settings
    /// that are not topic configs, such as the io-properties' write limits).
    pub fn topic_defaults(&self, base: LogConfig) -> anyhow::Result<TopicDefaults> {
        TopicDefaults::new(base, self.topic_defaults.clone()).map_err(|e| anyhow!("{e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_sets_every_kind_of_key() {
        let s = Settings::from_toml(include_str!("../../docs/weir.example.toml"))
            .expect("docs/weir.example.toml");
        assert_eq!(s.data_dir, Some(PathBuf::from("/var/lib/weir")));
        assert_eq!(s.kafka_addr, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(s.num_partitions, 3);
        assert_eq!(s.retention_check_interval_ms, 300_000);
        assert_eq!(s.producer_id_expiration_ms, 86_400_000);
        let z = Settings::from_toml("coord.zk.addr = \"127.0.0.1:2181\"").expect("parses");
        assert_eq!(z.coord_zk_addr.as_deref(), Some("127.0.0.1:2181"));
        assert!(Settings::from_toml("coord.zk.addr = \"nope\"").is_err());
        assert!(Settings::from_toml("coord.zk.addr = 2181").is_err());
        let e = Settings::from_toml("producer.id.expiration.ms = 60000").expect("parses");
        assert_eq!(e.producer_id_expiration_ms, 60_000);
        assert!(Settings::from_toml("producer.id.expiration.ms = 0").is_err());
        assert_eq!(s.offsets_retention_minutes, 10_080);
        assert_eq!(s.offsets_retention_check_interval_ms, 600_000);
        assert_eq!(s.group_initial_rebalance_delay_ms, 1_000);
        let g = Settings::from_toml("group.initial.rebalance.delay.ms = 0").expect("parses");
        assert_eq!(g.group_initial_rebalance_delay_ms, 0);
        assert!(Settings::from_toml("group.initial.rebalance.delay.ms = -1").is_err());
        assert!(Settings::from_toml("group.initial.rebalance.delay.ms = 300001").is_err());
        assert_eq!(s.topic_defaults["retention.ms"], "604800000");
        assert_eq!(s.topic_defaults["segment.bytes"], "1073741824");
        assert_eq!(s.topic_defaults["cleanup.policy"], "delete");
        assert_eq!(s.topic_defaults["compression.type"], "producer");
        assert_eq!(s.topic_defaults["min.insync.replicas"], "1");
        let d = s.topic_defaults(LogConfig::default()).unwrap();
        assert_eq!(d.broker.len(), s.topic_defaults.len());
    }

    #[test]
    fn dotted_keys_and_tables_are_the_same_key() {
        let a = Settings::from_toml("log.retention.ms = 1000\nnum.partitions = 4\n").unwrap();
        let b = Settings::from_toml("[log]\nretention.ms = 1000\n[num]\npartitions = 4\n").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.topic_defaults["retention.ms"], "1000");
        let c = Settings::from_toml("\"log.retention.ms\" = -1\n").unwrap();
        assert_eq!(c.topic_defaults["retention.ms"], "-1");
        let d = Settings::from_toml("log.cleanup.policy = [\"delete\"]\n").unwrap();
        assert_eq!(d.topic_defaults["cleanup.policy"], "delete");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_them() {
        for (text, names) in [
            ("log.retention.msx = 1", &["log.retention.msx"][..]),
            (
                "retention.ms = 1",
                &["retention.ms", "log.retention.ms"][..],
            ),
            (
                "num.partitions = \"three\"",
                &["num.partitions", "three"][..],
            ),
            ("num.partitions = 0", &["num.partitions"][..]),
            ("shards = -1", &["shards"][..]),
            ("kafka.addr = \"nowhere\"", &["kafka.addr", "nowhere"][..]),
            ("advertised.addr = \"host\"", &["advertised.addr"][..]),
            ("coord.servers = []", &["coord.servers"][..]),
            ("broker.rack = \"\"", &["broker.rack"][..]),
            ("broker.rack = 1", &["broker.rack"][..]),
            ("broker.rack = \"a\\tb\"", &["broker.rack"][..]),
            ("io.properties.file = \"\"", &["io.properties.file"][..]),
            ("io.properties.file = true", &["io.properties.file"][..]),
            (
                "auto.create.topics.enable = \"yes\"",
                &["auto.create.topics.enable"][..],
            ),
            (
                "log.segment.bytes = \"big\"",
                &["log.segment.bytes", "big"][..],
            ),
            (
                "log.cleanup.policy = \"compacted\"",
                &["log.cleanup.policy", "compacted"][..],
            ),
            (
                "compression.type = \"gzip\"",
                &["compression.type", "gzip"][..],
            ),
            ("min.insync.replicas = 0", &["min.insync.replicas"][..]),
            ("message.max.bytes = 1.5", &["message.max.bytes"][..]),
            (
                "log.retention.check.interval.ms = 0",
                &["log.retention.check.interval.ms"][..],
            ),
            (
                "offsets.retention.minutes = 0",
                &["offsets.retention.minutes"][..],
            ),
            (
                "offsets.retention.minutes = \"1d\"",
                &["offsets.retention.minutes"][..],
            ),
        ] {
            let err = match Settings::from_toml(text) {
                Ok(s) => panic!("{text:?} was accepted: {s:?}"),
                Err(e) => format!("{e:#}"),
            };
            for name in names {
                assert!(
                    err.contains(name),
                    "{text:?}: {err:?} does not name {name:?}"
                );
            }
        }
        assert!(Settings::from_toml("not toml [").is_err());
    }
}
