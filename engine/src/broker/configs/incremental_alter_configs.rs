//! IncrementalAlterConfigs: sets, deletes, appends to or subtracts from a topic's overrides one
//! by one; BROKER resources are refused (no dynamic broker configs yet).
//!
//! Owns the IncrementalAlterConfigs request's reading. Must not: write the topic record except
//! through the shared compare-and-set in `configs`.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::{
    incremental_alter_configs_response, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use crate::broker::topic_config::{self, AlterOp};
use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::{refused, text, unalterable, Refusal};

fn dispatch_incremental_alter(
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

impl Handle<IncrementalAlterConfigsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: IncrementalAlterConfigsRequest) -> Dispatched {
        ready(dispatch_incremental_alter(self.broker, self.header, body))
    }
}
