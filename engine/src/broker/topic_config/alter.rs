//! The meaning of AlterConfigs (replace every override) and IncrementalAlterConfigs (SET /
//! DELETE / APPEND / SUBTRACT) on a topic's overrides, as pure functions.
//!
//! Owns those semantics. Must not store anything or know about requests.

use std::collections::BTreeMap;

use super::*;

/// IncrementalAlterConfigs' operations (Kafka's `AlterConfigOp.OpType` codes 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    pub fn from_code(code: i8) -> Option<AlterOp> {
        match code {
            0 => Some(AlterOp::Set),
            1 => Some(AlterOp::Delete),
            2 => Some(AlterOp::Append),
            3 => Some(AlterOp::Subtract),
            _ => None,
        }
    }
}

/// Why an alteration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterError {
    /// The request itself is wrong (a config named twice, an unknown operation): INVALID_REQUEST.
    Request(String),
    /// A config name or value is refused: INVALID_CONFIG.
    Config(String),
}

fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), AlterError> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(AlterError::Request(format!(
                "config {name:?} is named more than once"
            )));
        }
    }
    Ok(())
}

fn known(name: &str) -> Result<(), AlterError> {
    if is_known(name) {
        Ok(())
    } else {
        Err(AlterError::Config(format!("unknown topic config {name:?}")))
    }
}

/// AlterConfigs: the topic's overrides become exactly `configs` (a null value is left out);
/// every name must be known and the result valid.
pub fn replace(
    defaults: &TopicDefaults,
    configs: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, AlterError> {
    duplicates(configs.iter().map(|(n, _)| n.as_str()))?;
    let mut out = BTreeMap::new();
    for (name, value) in configs {
        known(name)?;
        if let Some(value) = value {
            out.insert(name.clone(), value.clone());
        }
    }
    log_config(defaults, &out).map_err(|e| AlterError::Config(e.to_string()))?;
    Ok(out)
}

/// IncrementalAlterConfigs: applies each operation to the topic's `current` overrides. APPEND and
/// SUBTRACT work on the effective list (override, else default) and only on list configs.
pub fn alter_incremental(
    defaults: &TopicDefaults,
    current: &BTreeMap<String, String>,
    ops: &[(String, AlterOp, Option<String>)],
) -> Result<BTreeMap<String, String>, AlterError> {
    duplicates(ops.iter().map(|(n, _, _)| n.as_str()))?;
    let effective: BTreeMap<&str, String> = describe(defaults, current)
        .into_iter()
        .map(|(n, v, _)| (n, v))
        .collect();
    let mut out = current.clone();
    for (name, op, value) in ops {
        known(name)?;
        let needs_value = || {
            value
                .clone()
                .ok_or_else(|| AlterError::Config(format!("{op:?} of {name:?} needs a value")))
        };
        match op {
            AlterOp::Set => {
                out.insert(name.clone(), needs_value()?);
            }
            AlterOp::Delete => {
                out.remove(name);
            }
            AlterOp::Append | AlterOp::Subtract => {
                if !is_list(name) {
                    return Err(AlterError::Config(format!(
                        "{op:?} is only allowed for list configs, and {name:?} is not one"
                    )));
                }
                let split = |s: &str| -> Vec<String> {
                    s.split(',')
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .collect()
                };
                let base = out
                    .get(name)
                    .cloned()
                    .or_else(|| effective.get(name.as_str()).cloned())
                    .unwrap_or_default();
                let mut list = split(&base);
                let items = split(&needs_value()?);
                if *op == AlterOp::Append {
                    for item in items {
                        if !list.contains(&item) {
                            list.push(item);
                        }
                    }
                } else {
                    list.retain(|v| !items.contains(v));
                }
                out.insert(name.clone(), list.join(","));
            }
        }
    }
    log_config(defaults, &out).map_err(|e| AlterError::Config(e.to_string()))?;
    Ok(out)
}
