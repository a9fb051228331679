//! DeleteTopics: deletes each named topic (its record first, then its logs on every shard).
//!
//! Owns the DeleteTopics request and answer. Must not: delete files itself (`admin`'s deletion
//! does, in the safe order).

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::broker::{store, Broker};
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

fn dispatch_delete(
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
            if crate::broker::topic_config::is_internal(&name) {
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

impl Handle<DeleteTopicsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: DeleteTopicsRequest) -> Dispatched {
        ready(dispatch_delete(self.broker, self.header, body))
    }
}
