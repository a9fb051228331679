//! ListGroups: asks every shard for the groups it coordinates.
//!
//! Owns the ListGroups answer. Must not: read another shard's groups except through a `Mesh` job.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{ListGroupsRequest, ListGroupsResponse};

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::s;

/// (group, protocol type, state) of every group this shard coordinates.
fn list_local(b: &Broker) -> Vec<(String, String, &'static str)> {
    b.groups
        .map
        .borrow()
        .iter()
        .map(|(name, g)| {
            (
                name.clone(),
                g.protocol_type.clone().unwrap_or_default(),
                g.state.name(),
            )
        })
        .collect()
}

fn dispatch_list_groups(
    b: Rc<Broker>,
    h: RequestHeader,
    body: ListGroupsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let states: Vec<String> = body
            .states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let mut groups = Vec::new();
        let mut code = ec::NONE;
        for shard in 0..b.shard_count() {
            match b
                .mesh
                .call(&b, shard, |o: &Rc<Broker>| {
                    let listed = list_local(o);
                    async move { listed }.boxed_local()
                })
                .await
            {
                Ok(listed) => groups.extend(listed),
                Err(_) => code = ec::COORDINATOR_NOT_AVAILABLE,
            }
        }
        groups.sort();
        let groups = groups
            .into_iter()
            .filter(|(_, _, state)| {
                states.is_empty() || states.contains(&state.to_ascii_lowercase())
            })
            .map(|(name, protocol_type, state)| {
                ListedGroup::default()
                    .with_group_id(kafka_protocol::messages::GroupId(s(name)))
                    .with_protocol_type(s(protocol_type))
                    .with_group_state(s(state))
            })
            .collect();
        let response = ListGroupsResponse::default()
            .with_error_code(code)
            .with_groups(groups);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<ListGroupsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: ListGroupsRequest) -> Dispatched {
        ready(dispatch_list_groups(self.broker, self.header, body))
    }
}
