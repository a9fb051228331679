//! LeaveGroup: members leave (v3+: several at once, static members by instance id); a group
//! left empty has its metadata record written before the answer (see `persist`).
//!
//! Owns the LeaveGroup request and answer. Must not: change group state except through
//! `state::Group` on the coordinator shard.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::persist::write_emptied_group;
use super::s;

fn dispatch_leave(
    b: Rc<Broker>,
    h: RequestHeader,
    body: LeaveGroupRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let members: Vec<(String, Option<String>)> = if h.api_version >= 3 {
            body.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(body.member_id.to_string(), None)]
        };
        let g = group.clone();
        let asked = members.clone();
        let codes = b
            .on_group(&group, move |c| {
                async move {
                    let now = c.cfg.clock.now_instant();
                    let codes = asked
                        .into_iter()
                        .map(|(member, instance)| {
                            c.groups
                                .with_existing(&g, |grp| {
                                    let id = match &instance {
                                        Some(i) => match grp.member_of_instance(i) {
                                            Some(id) if member.is_empty() || id == member => id,
                                            Some(_) => return ec::FENCED_INSTANCE_ID,
                                            None => return ec::UNKNOWN_MEMBER_ID,
                                        },
                                        None => member.clone(),
                                    };
                                    if grp.remove_member(&id, now) {
                                        tracing::info!(group = %g, member = %id, "member left");
                                        ec::NONE
                                    } else {
                                        ec::UNKNOWN_MEMBER_ID
                                    }
                                })
                                .unwrap_or(ec::UNKNOWN_MEMBER_ID)
                        })
                        .collect::<Vec<i16>>();
                    write_emptied_group(&c, &g).await;
                    codes
                }
                .boxed_local()
            })
            .await;
        let response = match codes {
            None => LeaveGroupResponse::default().with_error_code(ec::COORDINATOR_NOT_AVAILABLE),
            Some(codes) if h.api_version >= 3 => LeaveGroupResponse::default().with_members(
                members
                    .into_iter()
                    .zip(codes)
                    .map(|((m, i), code)| {
                        MemberResponse::default()
                            .with_member_id(s(m))
                            .with_group_instance_id(i.map(s))
                            .with_error_code(code)
                    })
                    .collect(),
            ),
            Some(codes) => LeaveGroupResponse::default()
                .with_error_code(codes.first().copied().unwrap_or(ec::NONE)),
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<LeaveGroupRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: LeaveGroupRequest) -> Dispatched {
        ready(dispatch_leave(self.broker, self.header, body))
    }
}
