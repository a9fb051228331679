//! Admin APIs: DeleteTopics and DescribeCluster (the config APIs are in `configs`).
//!
//! Owns their meaning on this broker. Must not: delete a topic's files before its record is gone
//! from the coordinator (a restart would otherwise reopen a half-deleted topic), or touch another
//! shard's logs except through `Mesh` jobs.

use super::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, DeleteTopicsRequest, DeleteTopicsResponse, DescribeClusterRequest,
    DescribeClusterResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::{store, Broker};
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

impl Broker {
    /// Forgets a deleted topic on every shard: drops it from the cache, closes the logs each
    /// owner holds and removes their directories.
    async fn uninstall_topic(self: &Rc<Self>, name: &str) -> Result<(), String> {
        let name = name.to_string();
        self.on_every_shard(move |b| {
            let name = name.clone();
            async move {
                b.topics.borrow_mut().remove(&name);
                b.record_zxids.borrow_mut().remove(&name);
                b.producers.borrow_mut().retain(|(t, _), _| *t != name);
                let logs: Vec<_> = {
                    let mut logs = b.logs.borrow_mut();
                    let keys: Vec<_> = logs.keys().filter(|(t, _)| *t == name).cloned().collect();
                    keys.into_iter().filter_map(|k| logs.remove(&k)).collect()
                };
                for log in logs {
                    if let Err(e) = log.close().await {
                        tracing::warn!(topic = %name, "closing a deleted topic's log: {e}");
                    }
                    // A control-plane path: a blocking removal is acceptable here.
                    if let Err(e) = std::fs::remove_dir_all(log.dir()) {
                        return Err(format!("removing {}: {e}", log.dir().display()));
                    }
                }
                Ok(())
            }
        })
        .await
    }
}

pub(super) fn dispatch_delete(
    b: Rc<Broker>,
    h: RequestHeader,
    body: DeleteTopicsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let names: Vec<String> = body
            .topic_names
            .iter()
            .map(|n| n.0.to_string())
            .chain(
                body.topics
                    .iter()
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())),
            )
            .collect();
        let mut responses = Vec::with_capacity(names.len());
        for name in names {
            // Internal topics hold the broker's own state. Kafka's broker deletes them for an
            // authorized admin (only its tools refuse); weir answers as a Kafka whose ACLs protect
            // them (TOPIC_AUTHORIZATION_FAILED).
            if super::topic_config::is_internal(&name) {
                responses.push(
                    DeletableTopicResult::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name))))
                        .with_error_code(ec::TOPIC_AUTHORIZATION_FAILED)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "internal topics cannot be deleted",
                        ))),
                );
                continue;
            }
            let code = match store::delete_topic(&b.coord, &name).await {
                Ok(true) => match b.uninstall_topic(&name).await {
                    Ok(()) => {
                        tracing::info!(topic = %name, "topic deleted");
                        ec::NONE
                    }
                    Err(e) => {
                        tracing::warn!(topic = %name, "deleting: {e}");
                        ec::UNKNOWN_SERVER_ERROR
                    }
                },
                Ok(false) => ec::UNKNOWN_TOPIC_OR_PARTITION,
                Err(e) => {
                    tracing::warn!(topic = %name, "deleting: {e}");
                    ec::REQUEST_TIMED_OUT
                }
            };
            responses.push(
                DeletableTopicResult::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name))))
                    .with_error_code(code),
            );
        }
        encode_response(
            &h,
            &DeleteTopicsResponse::default().with_responses(responses),
        )
        .map(Some)
    }
    .boxed_local())
}

pub(super) fn dispatch_describe_cluster(
    b: Rc<Broker>,
    h: RequestHeader,
    _body: DescribeClusterRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let node = BrokerId(b.cfg.node_id);
        let response = DescribeClusterResponse::default()
            .with_cluster_id(StrBytes::from_string(b.cluster_id.clone()))
            .with_controller_id(node)
            .with_brokers(vec![DescribeClusterBroker::default()
                .with_broker_id(node)
                .with_host(StrBytes::from_string(b.cfg.advertised_host.clone()))
                .with_port(i32::from(b.cfg.advertised_port))]);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<DeleteTopicsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: DeleteTopicsRequest) -> Dispatched {
        ready(dispatch_delete(self.broker, self.header, body))
    }
}

impl Handle<DescribeClusterRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: DescribeClusterRequest) -> Dispatched {
        ready(dispatch_describe_cluster(self.broker, self.header, body))
    }
}
