//! Topic names and topic configs: Kafka's validity rules for names, and Kafka's config names
//! (per-topic overrides of the broker defaults) mapped onto `LogConfig`.
//!
//! Owns which config names are known and how each value is parsed. Must not store anything.

use std::collections::BTreeMap;

use crate::config::LogConfig;

/// Kafka's limit on topic name length.
const TOPIC_NAME_BYTES_MAX: usize = 249;

/// Kafka's topic name rule: 1–249 of `[a-zA-Z0-9._-]`, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(format!("topic name {name:?} is illegal"));
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "topic name is longer than {TOPIC_NAME_BYTES_MAX} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}: only ASCII alphanumerics, '.', '_' and '-' are legal"
        ));
    }
    Ok(())
}

fn parse_u64(name: &str, v: &str) -> Result<u64, String> {
    v.trim()
        .parse::<u64>()
        .map_err(|_| format!("{name}={v:?} is not a non-negative integer"))
}

/// `-1` (Kafka's "no limit") → `None`.
fn parse_limit(name: &str, v: &str) -> Result<Option<u64>, String> {
    match v.trim() {
        "-1" => Ok(None),
        other => parse_u64(name, other).map(Some),
    }
}

/// Applies one config to `log`; errors name the config and say why.
fn apply(log: &mut LogConfig, name: &str, value: &str) -> Result<(), String> {
    match name {
        "retention.ms" => log.retention_ms = parse_limit(name, value)?,
        "retention.bytes" => log.retention_bytes = parse_limit(name, value)?,
        "segment.bytes" => {
            let v = parse_u64(name, value)?;
            if v < 14 {
                return Err(format!("segment.bytes={v} is below Kafka's minimum of 14"));
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
                _ => return Err(format!("preallocate={value:?} is not true or false")),
            }
        }
        // Accepted and recorded; enforced by later work (replication, compaction, recompression).
        "min.insync.replicas" => {
            parse_u64(name, value)?;
        }
        "cleanup.policy" => {
            if value.trim() != "delete" {
                return Err(format!(
                    "cleanup.policy={value:?}: only \"delete\" is supported so far"
                ));
            }
        }
        "compression.type" => {
            if value.trim() != "producer" {
                return Err(format!(
                    "compression.type={value:?}: only \"producer\" (batches kept as produced) is supported so far"
                ));
            }
        }
        "unclean.leader.election.enable" => {}
        other => return Err(format!("unknown topic config {other:?}")),
    }
    Ok(())
}

/// The log config of a topic: the broker defaults with the topic's overrides applied.
pub fn log_config(
    defaults: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Result<LogConfig, String> {
    let mut log = defaults.clone();
    for (name, value) in configs {
        apply(&mut log, name, value)?;
    }
    Ok(log)
}

/// Every topic config with its effective value and whether the topic overrides it.
pub fn describe(
    defaults: &LogConfig,
    configs: &BTreeMap<String, String>,
) -> Vec<(&'static str, String, bool)> {
    let log = log_config(defaults, configs).unwrap_or_else(|_| defaults.clone());
    let limit = |v: Option<u64>| v.map_or("-1".to_string(), |v| v.to_string());
    let never = |v: Option<u64>| v.map_or(i64::MAX.to_string(), |v| v.to_string());
    let fixed = |name: &str, default: &str| {
        configs
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let entries = [
        ("cleanup.policy", fixed("cleanup.policy", "delete")),
        ("compression.type", fixed("compression.type", "producer")),
        ("flush.messages", never(log.flush_messages)),
        ("flush.ms", never(log.flush_ms)),
        ("index.interval.bytes", log.index_interval_bytes.to_string()),
        ("max.message.bytes", log.max_message_bytes.to_string()),
        ("min.insync.replicas", fixed("min.insync.replicas", "1")),
        ("preallocate", log.preallocate.to_string()),
        ("retention.bytes", limit(log.retention_bytes)),
        ("retention.ms", limit(log.retention_ms)),
        ("segment.bytes", log.segment_bytes.to_string()),
        ("segment.ms", log.segment_ms.to_string()),
        (
            "unclean.leader.election.enable",
            fixed("unclean.leader.election.enable", "false"),
        ),
    ];
    entries
        .into_iter()
        .map(|(name, value)| (name, value, configs.contains_key(name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_configs_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        for bad in ["", ".", "..", "a/b", "späti", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "-1".to_string());
        c.insert("segment.bytes".to_string(), "1048576".to_string());
        let log = log_config(&LogConfig::default(), &c).unwrap();
        assert_eq!(log.retention_ms, None);
        assert_eq!(log.segment_bytes, 1 << 20);
        c.insert("no.such.config".to_string(), "1".to_string());
        assert!(log_config(&LogConfig::default(), &c).is_err());
    }
}
