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

use super::dispatch::{ready, Call, Dispatched};
use std::collections::BTreeMap;
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::store::{self, TopicMeta};
use super::topic_config::{self, AlterError, AlterOp, Source};
use super::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

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
            .map_err(|m| Refusal(ec::UNKNOWN_SERVER_ERROR, m))
    }

    /// Installs a topic record with changed configs on every shard and reconfigures the logs
    /// each shard has open (and opens any it owns that are not open yet); a shard that already
    /// installed a later record (larger zxid) keeps it.
    async fn reconfigure_topic(self: &Rc<Self>, topic: TopicMeta, zxid: u64) -> Result<(), String> {
        self.on_every_shard(move |b| {
            let topic = topic.clone();
            async move {
                let (topic, newer) = b.adopt(topic, zxid);
                if newer {
                    let config = b
                        .log_config_of(&topic)
                        .map_err(|e| format!("topic {}: {e}", topic.name))?;
                    let logs: Vec<_> = b
                        .logs
                        .borrow()
                        .iter()
                        .filter(|((t, _), _)| *t == topic.name)
                        .map(|(_, log)| log.clone())
                        .collect();
                    for log in logs {
                        log.set_config(config.clone());
                    }
                }
                b.open_owned_logs(&topic).await.map_err(|e| e.to_string())
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

pub(super) fn dispatch_alter(
    b: Rc<Broker>,
    h: RequestHeader,
    body: AlterConfigsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut responses = Vec::with_capacity(body.resources.len());
        for r in body.resources {
            let name = r.resource_name.to_string();
            let outcome = match unalterable(r.resource_type) {
                Some(refusal) => Err(refusal),
                None => {
                    let configs: Vec<(String, Option<String>)> = r
                        .configs
                        .iter()
                        .map(|c| (c.name.to_string(), text(&c.value)))
                        .collect();
                    let defaults = b.cfg.topic_defaults.clone();
                    b.alter_topic_configs(&name, body.validate_only, move |_| {
                        topic_config::replace(&defaults, &configs)
                    })
                    .await
                }
            };
            let mut result = alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name);
            if let Some((code, message)) = refused("AlterConfigs", &name, outcome) {
                result = result.with_error_code(code).with_error_message(message);
            }
            responses.push(result);
        }
        encode_response(
            &h,
            &AlterConfigsResponse::default().with_responses(responses),
        )
        .map(Some)
    }
    .boxed_local())
}

pub(super) fn dispatch_incremental_alter(
    b: Rc<Broker>,
    h: RequestHeader,
    body: IncrementalAlterConfigsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut responses = Vec::with_capacity(body.resources.len());
        for r in body.resources {
            let name = r.resource_name.to_string();
            let ops: Result<Vec<_>, Refusal> = r
                .configs
                .iter()
                .map(|c| {
                    let op = AlterOp::from_code(c.config_operation).ok_or_else(|| {
                        Refusal(
                            ec::INVALID_REQUEST,
                            format!(
                                "unknown operation {} on config {:?}",
                                c.config_operation,
                                c.name.as_str()
                            ),
                        )
                    })?;
                    Ok((c.name.to_string(), op, text(&c.value)))
                })
                .collect();
            let outcome = match (unalterable(r.resource_type), ops) {
                (Some(refusal), _) | (None, Err(refusal)) => Err(refusal),
                (None, Ok(ops)) => {
                    let defaults = b.cfg.topic_defaults.clone();
                    b.alter_topic_configs(&name, body.validate_only, move |current| {
                        topic_config::alter_incremental(&defaults, current, &ops)
                    })
                    .await
                }
            };
            let mut result =
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name);
            if let Some((code, message)) = refused("IncrementalAlterConfigs", &name, outcome) {
                result = result.with_error_code(code).with_error_message(message);
            }
            responses.push(result);
        }
        encode_response(
            &h,
            &IncrementalAlterConfigsResponse::default().with_responses(responses),
        )
        .map(Some)
    }
    .boxed_local())
}

fn entry(name: &str, value: String, source: i8) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(name.to_string()))
        .with_value(Some(StrBytes::from_string(value)))
        .with_config_source(source)
}

/// The broker's static config as DescribeConfigs reports it: its own settings, then the
/// broker-level default of every topic config (Kafka's broker names).
fn broker_configs(b: &Broker) -> Vec<(String, String, i8)> {
    let c = &b.cfg;
    let mut out = vec![
        (
            "broker.id".to_string(),
            c.node_id.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        (
            "num.partitions".into(),
            c.num_partitions.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        (
            "auto.create.topics.enable".into(),
            c.auto_create_topics.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        (
            "log.retention.check.interval.ms".into(),
            c.retention_check_interval_ms.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        (
            "offsets.retention.minutes".into(),
            c.offsets_retention_minutes.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        (
            "offsets.retention.check.interval.ms".into(),
            c.offsets_retention_check_interval_ms.to_string(),
            SOURCE_STATIC_BROKER,
        ),
        (
            "offsets.topic.segment.bytes".into(),
            c.offsets_topic_segment_bytes.to_string(),
            SOURCE_STATIC_BROKER,
        ),
    ];
    for (topic_name, value, source) in topic_config::describe(&c.topic_defaults, &BTreeMap::new()) {
        if let Some(broker_name) = topic_config::broker_name_of_topic_config(topic_name) {
            out.push((broker_name.to_string(), value, source_code(source)));
        }
    }
    out
}

pub(super) fn dispatch_describe(
    b: Rc<Broker>,
    h: RequestHeader,
    body: DescribeConfigsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut results = Vec::with_capacity(body.resources.len());
        for r in body.resources {
            let wanted = |name: &str| match &r.configuration_keys {
                None => true,
                Some(keys) => keys.iter().any(|k| k.as_str() == name),
            };
            let name = r.resource_name.to_string();
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            match r.resource_type {
                RESOURCE_TOPIC => match b.topic(&name).await {
                    Ok(Some(topic)) => {
                        let overrides =
                            topic_config::effective_overrides(&topic.name, &topic.configs);
                        let configs = topic_config::describe(&b.cfg.topic_defaults, &overrides)
                            .into_iter()
                            .filter(|(n, _, _)| wanted(n))
                            .map(|(n, v, source)| entry(n, v, source_code(source)))
                            .collect();
                        result = result.with_configs(configs);
                    }
                    Ok(None) => result = result.with_error_code(ec::UNKNOWN_TOPIC_OR_PARTITION),
                    Err(e) => {
                        tracing::warn!(topic = %name, "DescribeConfigs: {e}");
                        result = result.with_error_code(ec::REQUEST_TIMED_OUT);
                    }
                },
                RESOURCE_BROKER => {
                    let configs = broker_configs(&b)
                        .into_iter()
                        .filter(|(n, _, _)| wanted(n))
                        .map(|(n, v, source)| entry(&n, v, source))
                        .collect();
                    result = result.with_configs(configs);
                }
                other => {
                    result = result
                        .with_error_code(ec::INVALID_REQUEST)
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "resource type {other} is not supported"
                        ))));
                }
            }
            results.push(result);
        }
        encode_response(
            &h,
            &DescribeConfigsResponse::default().with_results(results),
        )
        .map(Some)
    }
    .boxed_local())
}

impl Handle<DescribeConfigsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: DescribeConfigsRequest) -> Dispatched {
        ready(dispatch_describe(self.broker, self.header, body))
    }
}

impl Handle<AlterConfigsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: AlterConfigsRequest) -> Dispatched {
        ready(dispatch_alter(self.broker, self.header, body))
    }
}

impl Handle<IncrementalAlterConfigsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: IncrementalAlterConfigsRequest) -> Dispatched {
        ready(dispatch_incremental_alter(self.broker, self.header, body))
    }
}
