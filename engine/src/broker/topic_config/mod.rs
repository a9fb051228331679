//! Topic names and topic configs: Kafka's validity rules for names, Kafka's config names (per-topic
//! overrides of the broker defaults) mapped onto `LogConfig`, the broker-level names of those
//! defaults (`log.retention.ms` for `retention.ms`, ...), and the meaning of AlterConfigs (replace
//! every override) and IncrementalAlterConfigs (SET / DELETE / APPEND / SUBTRACT).
//!
//! Owns which config names are known, how each value is parsed, and which values weir refuses
//! because it cannot honour them yet (compression.type other than producer). Must not store anything or know about requests.

use std::collections::BTreeMap;

use storage::config::LogConfig;

mod alter;
#[cfg(test)]
mod tests;

pub use alter::*;

/// A topic name Kafka's rule refuses (the message is the CreateTopics error message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicNameError {
    #[error("topic name {0:?} is illegal")]
    Illegal(String),
    #[error("topic name is longer than {TOPIC_NAME_BYTES_MAX} characters")]
    TooLong,
    #[error("topic name {name:?} contains {found:?}: only ASCII alphanumerics, '.', '_' and '-' are legal")]
    IllegalCharacter { name: String, found: char },
}

/// A topic config weir refuses: a name it does not know, or a value it cannot parse or honour.
/// The message names the config and its value (it reaches clients as CreateTopics' and
/// AlterConfigs' error messages, and `weir serve`'s config errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown topic config {0:?}")]
    Unknown(String),
    /// The value does not parse or is out of range; `why` completes "name=value ...".
    #[error("{name}={value:?} {why}")]
    Invalid {
        name: String,
        value: String,
        why: &'static str,
    },
    #[error("segment.bytes={0} is below Kafka's minimum of 14")]
    SegmentBytesBelowMinimum(u64),
    #[error("cleanup.policy={value:?}: {policy:?} is not \"delete\" or \"compact\"")]
    CleanupPolicy { value: String, policy: String },
    /// A valid Kafka value weir cannot honour yet.
    #[error("{name}={value:?}: {supported}")]
    Unsupported {
        name: String,
        value: String,
        supported: &'static str,
    },
}

fn invalid(name: &str, value: &str, why: &'static str) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        why,
    }
}

/// Kafka's limit on topic name length.
const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Kafka's internal topics (`Topic.isInternal`): Metadata marks them internal, clients may not
/// produce to them (INVALID_TOPIC_EXCEPTION) or delete them.
pub fn is_internal(name: &str) -> bool {
    matches!(name, "__consumer_offsets" | "__transaction_state")
}

/// The overrides in force for topic `name`. `__consumer_offsets` is compacted whatever its
/// record says: one created before weir compacted it recorded `cleanup.policy=delete`, and both
/// the log and DescribeConfigs must tell the truth about it.
pub fn effective_overrides<'a>(
    name: &str,
    configs: &'a BTreeMap<String, String>,
) -> std::borrow::Cow<'a, BTreeMap<String, String>> {
    if name != "__consumer_offsets"
        || configs.get("cleanup.policy").map(|v| v.trim()) == Some("compact")
    {
        return std::borrow::Cow::Borrowed(configs);
    }
    let mut forced = configs.clone();
    forced.insert("cleanup.policy".into(), "compact".into());
    std::borrow::Cow::Owned(forced)
}

/// Kafka's topic name rule: 1–249 of `[a-zA-Z0-9._-]`, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(TopicNameError::Illegal(name.to_string()));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(TopicNameError::TooLong);
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(TopicNameError::IllegalCharacter {
            name: name.to_string(),
            found,
        });
    }
    Ok(())
}

fn parse_u64(name: &str, v: &str) -> Result<u64, ConfigError> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| invalid(name, v, "is not a non-negative integer"))
}

/// `-1` (Kafka's "no limit") → `None`.
fn parse_limit(name: &str, v: &str) -> Result<Option<u64>, ConfigError> {
    match v.trim() {
        "-1" => Ok(None),
        other => parse_u64(name, other).map(Some),
    }
}

/// Applies one config to `log`; errors name the config and say why.
fn apply(log: &mut LogConfig, name: &str, value: &str) -> Result<(), ConfigError> {
    match name {
        "retention.ms" => log.retention_ms = parse_limit(name, value)?,
        "retention.bytes" => log.retention_bytes = parse_limit(name, value)?,
        "segment.bytes" => {
            let v = parse_u64(name, value)?;
            if v < 14 {
                return Err(ConfigError::SegmentBytesBelowMinimum(v));
            }
            log.segment_bytes = v;
        }
        "segment.ms" => log.segment_ms = parse_u64(name, value)?.max(1),
        "max.message.bytes" => log.max_message_bytes = parse_u64(name, value)? as usize,
        "flush.messages" => {
            log.flush_messages = match parse_u64(name, value)? {
                v if v >= i64::MAX as u64 => None,
                v => Some(v.max(1)),
            }
        }
        "flush.ms" => {
            log.flush_ms = match parse_u64(name, value)? {
                v if v >= i64::MAX as u64 => None,
                v => Some(v),
            }
        }
        "index.interval.bytes" => log.index_interval_bytes = parse_u64(name, value)?.max(1),
        "preallocate" => {
            log.preallocate = match value.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(invalid(name, value, "is not true or false")),
            }
        }
        // Accepted and recorded; enforced by later work (replication).
        "min.insync.replicas" => {
            if parse_u64(name, value)? < 1 {
                return Err(invalid(name, value, "must be at least 1"));
            }
        }
        "cleanup.policy" => {
            let (mut delete, mut compact) = (false, false);
            for policy in value.split(',').map(str::trim) {
                match policy {
                    "delete" => delete = true,
                    "compact" => compact = true,
                    other => {
                        return Err(ConfigError::CleanupPolicy {
                            value: value.to_string(),
                            policy: other.to_string(),
                        })
                    }
                }
            }
            log.cleanup_delete = delete;
            log.cleanup_compact = compact;
        }
        "delete.retention.ms" => log.delete_retention_ms = parse_u64(name, value)?,
        "min.compaction.lag.ms" => log.min_compaction_lag_ms = parse_u64(name, value)?,
        "max.compaction.lag.ms" => {
            let lag = parse_u64(name, value)?;
            if lag < 1 || lag > i64::MAX as u64 {
                return Err(invalid(name, value, "must be at least 1"));
            }
            log.max_compaction_lag_ms = lag;
        }
        "min.cleanable.dirty.ratio" => {
            let ratio = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| invalid(name, value, "is not a number between 0 and 1"))?;
            log.min_cleanable_dirty_ratio_ppm = (ratio * 1_000_000.0).round() as u32;
        }
        "compression.type" => {
            if value.trim() != "producer" {
                return Err(ConfigError::Unsupported {
                    name: name.to_string(),
                    value: value.to_string(),
                    supported: "only \"producer\" (batches kept as produced) is supported so far",
                });
            }
        }
        "unclean.leader.election.enable" => {
            if !matches!(value.trim(), "true" | "false") {
                return Err(invalid(name, value, "is not true or false"));
            }
        }
        other => return Err(ConfigError::Unknown(other.to_string())),
    }
    Ok(())
}

/// Every topic config weir knows, with Kafka's broker-level name for its default.
pub const TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("max.message.bytes", "message.max.bytes"),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
    ),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("preallocate", "log.preallocate"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.ms", "log.roll.ms"),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
    ),
];

/// Whether `name` is a topic config weir knows.
pub fn is_known(name: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|(n, _)| *n == name)
}

/// The topic config whose broker-wide default Kafka's broker config `broker_name` sets.
pub fn topic_name_of_broker_config(broker_name: &str) -> Option<&'static str> {
    TOPIC_CONFIGS
        .iter()
        .find(|(_, b)| *b == broker_name)
        .map(|(t, _)| *t)
}

/// Kafka's broker config that sets the broker-wide default of topic config `topic_name`.
pub fn broker_name_of_topic_config(topic_name: &str) -> Option<&'static str> {
    TOPIC_CONFIGS
        .iter()
        .find(|(t, _)| *t == topic_name)
        .map(|(_, b)| *b)
}

/// List-typed configs (the only ones APPEND and SUBTRACT apply to).
pub fn is_list(name: &str) -> bool {
    name == "cleanup.policy"
}

/// The broker's defaults for topic configs: the engine's `LogConfig` defaults (Kafka's own) with
/// the broker's settings over them, by topic-config name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicDefaults {
    /// Settings that are not topic configs (write sizes, tail cache) and Kafka's defaults.
    pub base: LogConfig,
    /// Broker-level settings by topic-config name (`retention.ms` for `log.retention.ms`).
    pub broker: BTreeMap<String, String>,
}

impl TopicDefaults {
    /// Checks every broker-level setting (a name weir knows, a value it can honour).
    pub fn new(base: LogConfig, broker: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut log = base.clone();
        for (name, value) in &broker {
            apply(&mut log, name, value)?;
        }
        Ok(TopicDefaults { base, broker })
    }
}

/// The log config of a topic: the broker defaults with the topic's overrides applied.
pub fn log_config(
    defaults: &TopicDefaults,
    configs: &BTreeMap<String, String>,
) -> Result<LogConfig, ConfigError> {
    let mut log = defaults.base.clone();
    for (name, value) in defaults.broker.iter().chain(configs) {
        apply(&mut log, name, value)?;
    }
    Ok(log)
}

/// Where a described config's value comes from (Kafka's ConfigSource, by meaning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A topic override (DYNAMIC_TOPIC_CONFIG).
    Topic,
    /// The broker's config file or flags (STATIC_BROKER_CONFIG).
    Broker,
    /// Kafka's default (DEFAULT_CONFIG).
    Default,
}

/// Every topic config with its effective value and where that value comes from.
pub fn describe(
    defaults: &TopicDefaults,
    configs: &BTreeMap<String, String>,
) -> Vec<(&'static str, String, Source)> {
    let log = log_config(defaults, configs)
        .or_else(|_| log_config(defaults, &BTreeMap::new()))
        .unwrap_or_else(|_| defaults.base.clone());
    let limit = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
    let never = |v: Option<u64>| v.map_or(i64::MAX.to_string(), |v| v.to_string());
    let fixed = |name: &str, default: &str| {
        configs
            .get(name)
            .or_else(|| defaults.broker.get(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| default.to_string())
    };
    TOPIC_CONFIGS
        .iter()
        .map(|(name, _)| {
            let value = match *name {
                "cleanup.policy" => fixed(name, "delete"),
                "compression.type" => fixed(name, "producer"),
                "delete.retention.ms" => log.delete_retention_ms.to_string(),
                "min.cleanable.dirty.ratio" => {
                    (f64::from(log.min_cleanable_dirty_ratio_ppm) / 1_000_000.0).to_string()
                }
                "min.compaction.lag.ms" => log.min_compaction_lag_ms.to_string(),
                "max.compaction.lag.ms" => log.max_compaction_lag_ms.to_string(),
                "flush.messages" => never(log.flush_messages),
                "flush.ms" => never(log.flush_ms),
                "index.interval.bytes" => log.index_interval_bytes.to_string(),
                "max.message.bytes" => log.max_message_bytes.to_string(),
                "min.insync.replicas" => fixed(name, "1"),
                "preallocate" => log.preallocate.to_string(),
                "retention.bytes" => limit(log.retention_bytes),
                "retention.ms" => limit(log.retention_ms),
                "segment.bytes" => log.segment_bytes.to_string(),
                "segment.ms" => log.segment_ms.to_string(),
                _ => fixed(name, "false"),
            };
            let source = if configs.contains_key(*name) {
                Source::Topic
            } else if defaults.broker.contains_key(*name) {
                Source::Broker
            } else {
                Source::Default
            };
            (*name, value, source)
        })
        .collect()
}
