//! CreateTopics: creates each named topic (or validates only), answering per topic.
//!
//! Owns the CreateTopics request and answer. Must not: create a topic except through
//! `Broker::create_topic` (which opens its logs on every owner before answering).

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::collections::HashSet;
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::CreateError;

fn dispatch_create(
    b: Rc<Broker>,
    h: RequestHeader,
    body: CreateTopicsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut seen = HashSet::new();
        let mut results = Vec::with_capacity(body.topics.len());
        for t in body.topics {
            let name = t.name.0.to_string();
            let mut result = CreatableTopicResult::default().with_name(t.name.clone());
            let outcome = if !seen.insert(name.clone()) {
                Err(CreateError(
                    ec::INVALID_REQUEST,
                    format!("topic {name:?} is listed twice"),
                ))
            } else if !t.assignments.is_empty() {
                Err(CreateError(
                    ec::INVALID_REQUEST,
                    "manual replica assignment is not supported yet".into(),
                ))
            } else {
                let configs = t
                    .configs
                    .iter()
                    .filter_map(|c| {
                        c.value
                            .as_ref()
                            .map(|v| (c.name.to_string(), v.to_string()))
                    })
                    .collect();
                b.create_topic(
                    &name,
                    t.num_partitions,
                    t.replication_factor,
                    configs,
                    body.validate_only,
                )
                .await
            };
            match outcome {
                Ok(topic) => {
                    if h.api_version >= 7 {
                        result = result.with_topic_id(topic.uuid());
                    }
                    if h.api_version >= 5 {
                        result = result
                            .with_num_partitions(topic.partitions.len() as i32)
                            .with_replication_factor(1)
                            .with_configs(Some(Vec::new()));
                    }
                }
                Err(CreateError(code, message)) => {
                    tracing::info!(topic = %name, code, "CreateTopics refused: {message}");
                    result = result
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_string(message)));
                }
            }
            results.push(result);
        }
        let response = CreateTopicsResponse::default().with_topics(results);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<CreateTopicsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: CreateTopicsRequest) -> Dispatched {
        ready(dispatch_create(self.broker, self.header, body))
    }
}
