//! AlterConfigs: replaces a topic's overrides with the ones given (Kafka's non-incremental
//! semantics); BROKER resources are refused (no dynamic broker configs yet).
//!
//! Owns the AlterConfigs request's reading. Must not: write the topic record except through the
//! shared compare-and-set in `configs`.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::{alter_configs_response, AlterConfigsRequest, AlterConfigsResponse};

use crate::broker::topic_config;
use crate::broker::Broker;
use crate::shard::Completion;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::{refused, text, unalterable};

fn dispatch_alter(
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

impl Handle<AlterConfigsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: AlterConfigsRequest) -> Dispatched {
        ready(dispatch_alter(self.broker, self.header, body))
    }
}
