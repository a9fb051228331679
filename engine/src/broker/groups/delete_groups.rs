//! DeleteGroups: Kafka's rules (only an Empty group with no members can be deleted); its
//! committed offsets and metadata get tombstones before the answer.
//!
//! Owns the DeleteGroups answer. Must not: forget a group before its tombstones are durable.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::persist::delete_offsets;
use super::state;

/// DeleteGroups of one group, on its coordinator shard (Kafka's rules: only an Empty group with
/// no members can be deleted; its committed offsets get tombstones).
async fn delete_group(c: Rc<Broker>, group: String) -> i16 {
    let keys = c.groups.with_existing(&group, |g| {
        if g.state != state::State::Empty || !g.members.is_empty() {
            Err(ec::NON_EMPTY_GROUP)
        } else {
            // The tombstone below supersedes any metadata record not written yet.
            g.meta_dirty = false;
            Ok(g.offsets
                .iter()
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect::<Vec<_>>())
        }
    });
    let keys = match keys {
        None => return ec::GROUP_ID_NOT_FOUND,
        Some(Err(code)) => return code,
        Some(Ok(keys)) => keys,
    };
    match delete_offsets(&c, &group, keys, true).await {
        Ok(()) => {
            tracing::info!(%group, "group deleted");
            ec::NONE
        }
        Err(code) => {
            tracing::warn!(%group, code, "deleting a group failed");
            code
        }
    }
}

fn dispatch_delete_groups(
    b: Rc<Broker>,
    h: RequestHeader,
    body: DeleteGroupsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut results = Vec::with_capacity(body.groups_names.len());
        for g in body.groups_names {
            let name = g.to_string();
            let code = if name.is_empty() {
                ec::INVALID_GROUP_ID
            } else {
                let n = name.clone();
                b.on_group(&name, move |c| delete_group(c, n).boxed_local())
                    .await
                    .unwrap_or(ec::COORDINATOR_NOT_AVAILABLE)
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(g)
                    .with_error_code(code),
            );
        }
        encode_response(&h, &DeleteGroupsResponse::default().with_results(results)).map(Some)
    }
    .boxed_local())
}

impl Handle<DeleteGroupsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: DeleteGroupsRequest) -> Dispatched {
        ready(dispatch_delete_groups(self.broker, self.header, body))
    }
}
