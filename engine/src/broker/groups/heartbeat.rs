//! Heartbeat: keeps a member's session alive and tells it when a rebalance started.
//!
//! Owns the Heartbeat answer. Must not: change group state except through `state::Group` on the
//! coordinator shard.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

fn dispatch_heartbeat(
    b: Rc<Broker>,
    h: RequestHeader,
    body: HeartbeatRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let g = group.clone();
        let code = b
            .on_group(&group, move |c| {
                async move {
                    let member = body.member_id.to_string();
                    let instance = body.group_instance_id.as_ref().map(|i| i.to_string());
                    c.groups
                        .with_existing(&g, |grp| {
                            grp.heartbeat(
                                &member,
                                instance.as_deref(),
                                body.generation_id,
                                c.cfg.clock.now_instant(),
                            )
                        })
                        .unwrap_or(ec::UNKNOWN_MEMBER_ID)
                }
                .boxed_local()
            })
            .await
            .unwrap_or(ec::COORDINATOR_NOT_AVAILABLE);
        encode_response(&h, &HeartbeatResponse::default().with_error_code(code)).map(Some)
    }
    .boxed_local())
}

impl Handle<HeartbeatRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: HeartbeatRequest) -> Dispatched {
        ready(dispatch_heartbeat(self.broker, self.header, body))
    }
}
