//! JoinGroup: a member joins (or rejoins) a group on its coordinator shard and waits for the join
//! phase to end; the leader gets every member's metadata. JoinGroup v8's reason (KIP-800) is
//! logged; v9's skip_assignment (KIP-814) is always false. The member's client host comes from the
//! connection's context.
//!
//! Owns the JoinGroup request and answer. Must not: change group state except through
//! `state::Group` on the coordinator shard.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::state::{JoinParams, JoinResult};
use crate::broker::Broker;
use crate::shard::{Completion, ConnContext};
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::s;

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4().hyphenated())
}

fn dispatch_join(
    b: Rc<Broker>,
    h: RequestHeader,
    body: JoinGroupRequest,
    conn: &ConnContext,
) -> Result<Completion, ProtocolError> {
    // Kept per member and shown by DescribeGroups.
    let client_host = conn.client_host.clone();
    Ok(async move {
        let group = body.group_id.to_string();
        let client_id = h.client_id.clone().unwrap_or_default();
        if let Some(reason) = body.reason.as_ref().filter(|r| !r.is_empty()) {
            tracing::info!(%group, member = %body.member_id, %reason, "JoinGroup");
        }
        let params = JoinParams {
            member_id: body.member_id.to_string(),
            instance_id: body.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: client_id.clone(),
            client_host: client_host.to_string(),
            session_timeout_ms: body.session_timeout_ms,
            rebalance_timeout_ms: if h.api_version >= 1 {
                body.rebalance_timeout_ms
            } else {
                body.session_timeout_ms
            },
            protocol_type: body.protocol_type.to_string(),
            initial_rebalance_delay_ms: b.cfg.group_initial_rebalance_delay_ms,
            protocols: body
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_known_member_id: h.api_version >= 4,
        };
        let member_id = params.member_id.clone();
        let g = group.clone();
        let result = b
            .on_group(&group, move |c| {
                async move {
                    let now = c.cfg.clock.now_instant();
                    let rx = c.groups.with(&g, |grp| {
                        grp.join(params, || new_member_id(&client_id), now)
                    });
                    rx.await
                        .unwrap_or_else(|_| JoinResult::error(ec::UNKNOWN_SERVER_ERROR, ""))
                }
                .boxed_local()
            })
            .await
            .unwrap_or_else(|| JoinResult::error(ec::COORDINATOR_NOT_AVAILABLE, &member_id));
        let response = JoinGroupResponse::default()
            .with_error_code(result.error)
            .with_generation_id(result.generation)
            .with_protocol_type(result.protocol_type.map(s))
            .with_protocol_name(if h.api_version >= 7 {
                result.protocol.map(s)
            } else {
                Some(s(result.protocol.unwrap_or_default()))
            })
            .with_leader(s(result.leader))
            .with_member_id(s(result.member_id))
            .with_members(
                result
                    .members
                    .into_iter()
                    .map(|(id, instance, meta)| {
                        JoinGroupResponseMember::default()
                            .with_member_id(s(id))
                            .with_group_instance_id(instance.map(s))
                            .with_metadata(meta)
                    })
                    .collect(),
            );
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<JoinGroupRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: JoinGroupRequest) -> Dispatched {
        ready(dispatch_join(self.broker, self.header, body, &self.conn))
    }
}
