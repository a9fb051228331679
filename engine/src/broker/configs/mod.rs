//! The config APIs: DescribeConfigs (topics and this broker), AlterConfigs and
//! IncrementalAlterConfigs (topics).
//!
//! Owns their meaning on this broker: a topic's overrides are changed by compare-and-set on its
//! record in the coordinator, then every shard updates its cached record and gives each open log
//! of the topic its new `LogConfig` (`PartitionLog::set_config`), before the request is answered.
//! BROKER resources are described (the static config: file and flags) but not altered: weir has
//! no dynamic broker configs yet, so altering one is answered with INVALID_REQUEST.
//! Must not: parse config values (`topic_config` does), or touch another shard's logs except
//! through `Mesh` jobs.
//!
//! Layout: one file per API (`describe_configs`, `alter_configs`, `incremental_alter_configs`);
//! this file holds what they share (the compare-and-set of a topic's overrides and its broadcast,
//! refusals, config sources).

mod alter_configs;
mod describe_configs;
mod incremental_alter_configs;

use std::collections::BTreeMap;
use std::rc::Rc;

use kafka_protocol::protocol::StrBytes;

use super::store::{self, TopicMeta};
use super::topic_config::{AlterError, Source};
use super::{Broker, BrokerError, EveryShardError};
use wire::error_code as ec;

/// Kafka's ConfigResource types.
const RESOURCE_TOPIC: i8 = 2;

const RESOURCE_BROKER: i8 = 4;

/// Kafka's ConfigSource values.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;

const SOURCE_STATIC_BROKER: i8 = 4;

const SOURCE_DEFAULT: i8 = 5;

fn source_code(s: Source) -> i8 {
    match s {
        Source::Topic => SOURCE_DYNAMIC_TOPIC,
        Source::Broker => SOURCE_STATIC_BROKER,
        Source::Default => SOURCE_DEFAULT,
    }
}

/// Why one resource was not altered: a Kafka code and a message.
struct Refusal(i16, String);

impl From<AlterError> for Refusal {
    fn from(e: AlterError) -> Refusal {
        match e {
            AlterError::Request(m) => Refusal(ec::INVALID_REQUEST, m),
            AlterError::Config(m) => Refusal(ec::INVALID_CONFIG, m),
        }
    }
}

fn unknown_topic(name: &str) -> Refusal {
    Refusal(ec::UNKNOWN_TOPIC_OR_PARTITION, format!("no topic {name:?}"))
}

fn coord_error(e: store::StoreError) -> Refusal {
    Refusal(ec::REQUEST_TIMED_OUT, e.to_string())
}

impl Broker {
    /// Changes a topic's config overrides with `change` (which validates): recorded in the
    /// coordinator, then applied on every shard. `validate_only` checks and changes nothing.
    async fn alter_topic_configs(
        self: &Rc<Self>,
        name: &str,
        validate_only: bool,
        change: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, AlterError>,
    ) -> Result<(), Refusal> {
        if validate_only {
            let topic = store::get_topic(&self.coord, name)
                .await
                .map_err(coord_error)?
                .ok_or_else(|| unknown_topic(name))?;
            change(&topic.configs)?;
            return Ok(());
        }
        let (topic, zxid) = store::alter_topic_configs(&self.coord, name, &change)
            .await
            .map_err(coord_error)?
            .ok_or_else(|| unknown_topic(name))??;
        tracing::info!(topic = name, configs = ?topic.configs, "topic configs altered");
        self.reconfigure_topic(topic, zxid)
            .await
            .map_err(|e| Refusal(ec::UNKNOWN_SERVER_ERROR, e.to_string()))
    }

    /// Installs a topic record with changed configs on every shard and reconfigures the logs
    /// each shard has open (and opens any it owns that are not open yet); a shard that already
    /// installed a later record (larger zxid) keeps it.
    async fn reconfigure_topic(
        self: &Rc<Self>,
        topic: TopicMeta,
        zxid: u64,
    ) -> Result<(), EveryShardError> {
        self.on_every_shard(move |b| {
            let topic = topic.clone();
            async move {
                let (topic, newer) = b.adopt(topic, zxid);
                if newer {
                    let config = b
                        .log_config_of(&topic)
                        .map_err(|source| BrokerError::Config {
                            topic: topic.name.clone(),
                            source,
                        })?;
                    for ((t, _), p) in b.partitions() {
                        if t == topic.name {
                            p.log().set_config(config.clone());
                        }
                    }
                }
                Ok(b.open_owned_logs(&topic).await?)
            }
        })
        .await
    }
}

/// The answer for a resource type that cannot be altered, or `None` for TOPIC.
fn unalterable(resource_type: i8) -> Option<Refusal> {
    match resource_type {
        RESOURCE_TOPIC => None,
        RESOURCE_BROKER => Some(Refusal(
            ec::INVALID_REQUEST,
            "weir has no dynamic broker configs: set broker configs in the config file \
             (weir serve --config) or with flags, and restart"
                .into(),
        )),
        other => Some(Refusal(
            ec::INVALID_REQUEST,
            format!("resource type {other} is not supported"),
        )),
    }
}

/// A refused resource's error code and message for its response entry, logged once here.
fn refused(
    api: &str,
    resource: &str,
    outcome: Result<(), Refusal>,
) -> Option<(i16, Option<StrBytes>)> {
    let Refusal(code, message) = outcome.err()?;
    tracing::info!(resource, code, "{api} refused: {message}");
    Some((code, Some(StrBytes::from_string(message))))
}

fn text(s: &Option<StrBytes>) -> Option<String> {
    s.as_ref().map(|v| v.to_string())
}
