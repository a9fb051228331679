//! DescribeConfigs: a topic's configs (each with its source: the topic's override or the broker's
//! default) and this broker's static config (file and flags).
//!
//! Owns the DescribeConfigs answer. Must not: change any config.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::collections::BTreeMap;
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::topic_config;
use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::{source_code, RESOURCE_BROKER, RESOURCE_TOPIC, SOURCE_STATIC_BROKER};

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

fn dispatch_describe(
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
