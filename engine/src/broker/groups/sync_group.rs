//! SyncGroup: the leader hands out assignments; every member waits for its own.
//!
//! Owns the SyncGroup request and answer. Must not: change group state except through
//! `state::Group` on the coordinator shard.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::state::SyncResult;
use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::s;

fn dispatch_sync(
    b: Rc<Broker>,
    h: RequestHeader,
    body: SyncGroupRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let g = group.clone();
        let result = b
            .on_group(&group, move |c| {
                async move {
                    let member = body.member_id.to_string();
                    let instance = body.group_instance_id.as_ref().map(|i| i.to_string());
                    let assignments = body
                        .assignments
                        .into_iter()
                        .map(|a| (a.member_id.to_string(), a.assignment))
                        .collect();
                    let rx = c.groups.with_existing(&g, |grp| {
                        grp.sync(
                            &member,
                            instance.as_deref(),
                            body.generation_id,
                            assignments,
                        )
                    });
                    match rx {
                        Some(rx) => rx
                            .await
                            .unwrap_or_else(|_| SyncResult::error(ec::UNKNOWN_SERVER_ERROR)),
                        None => SyncResult::error(ec::UNKNOWN_MEMBER_ID),
                    }
                }
                .boxed_local()
            })
            .await
            .unwrap_or_else(|| SyncResult::error(ec::COORDINATOR_NOT_AVAILABLE));
        let response = SyncGroupResponse::default()
            .with_error_code(result.error)
            .with_protocol_type(result.protocol_type.map(s))
            .with_protocol_name(result.protocol.map(s))
            .with_assignment(result.assignment);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<SyncGroupRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: SyncGroupRequest) -> Dispatched {
        ready(dispatch_sync(self.broker, self.header, body))
    }
}
