//! CreatePartitions: grows each named topic to the partition count given.
//!
//! Owns the CreatePartitions request and answer. Must not: grow a topic except through the
//! shared growth in `topics`.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::CreateError;

fn dispatch_create_partitions(
    b: Rc<Broker>,
    h: RequestHeader,
    body: CreatePartitionsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut results = Vec::with_capacity(body.topics.len());
        for t in body.topics {
            let name = t.name.0.to_string();
            let outcome = if t.assignments.is_some() {
                Err(CreateError(
                    ec::INVALID_REQUEST,
                    "manual replica assignment is not supported yet".into(),
                ))
            } else {
                b.grow_topic(&name, t.count, body.validate_only).await
            };
            let mut result = CreatePartitionsTopicResult::default().with_name(t.name);
            if let Err(CreateError(code, message)) = outcome {
                tracing::info!(topic = %name, code, "CreatePartitions refused: {message}");
                result = result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message)));
            }
            results.push(result);
        }
        encode_response(
            &h,
            &CreatePartitionsResponse::default().with_results(results),
        )
        .map(Some)
    }
    .boxed_local())
}

impl Handle<CreatePartitionsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: CreatePartitionsRequest) -> Dispatched {
        ready(dispatch_create_partitions(self.broker, self.header, body))
    }
}
