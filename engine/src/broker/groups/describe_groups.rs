//! DescribeGroups: each group as its coordinator shard knows it (members, their client ids and
//! hosts, metadata and assignments).
//!
//! Owns the DescribeGroups answer. Must not: read another shard's groups except through a `Mesh`
//! job.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::s;

/// One group as DescribeGroups shows it (on its coordinator shard).
fn describe_local(b: &Broker, group: &str) -> DescribedGroup {
    let out = DescribedGroup::default().with_group_id(kafka_protocol::messages::GroupId(s(group)));
    let map = b.groups.map.borrow();
    let Some(g) = map.get(group) else {
        return out.with_group_state(s("Dead"));
    };
    let members = g
        .members
        .iter()
        .map(|(id, m)| {
            let metadata = g.protocol_metadata(m).cloned().unwrap_or_default();
            DescribedGroupMember::default()
                .with_member_id(s(id.clone()))
                .with_group_instance_id(m.instance_id.clone().map(s))
                .with_client_id(s(m.client_id.clone()))
                .with_client_host(s(m.client_host.clone()))
                .with_member_metadata(metadata)
                .with_member_assignment(m.assignment.clone())
        })
        .collect();
    out.with_group_state(s(g.state.name()))
        .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()))
        .with_protocol_data(s(g.protocol.clone().unwrap_or_default()))
        .with_members(members)
}

fn dispatch_describe_groups(
    b: Rc<Broker>,
    h: RequestHeader,
    body: DescribeGroupsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut groups = Vec::with_capacity(body.groups.len());
        for g in body.groups {
            let name = g.to_string();
            let n = name.clone();
            let described = b
                .on_group(&name, move |c| {
                    let d = describe_local(&c, &n);
                    async move { d }.boxed_local()
                })
                .await
                .unwrap_or_else(|| {
                    DescribedGroup::default()
                        .with_group_id(g)
                        .with_error_code(ec::COORDINATOR_NOT_AVAILABLE)
                });
            groups.push(described);
        }
        encode_response(&h, &DescribeGroupsResponse::default().with_groups(groups)).map(Some)
    }
    .boxed_local())
}

impl Handle<DescribeGroupsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: DescribeGroupsRequest) -> Dispatched {
        ready(dispatch_describe_groups(self.broker, self.header, body))
    }
}
