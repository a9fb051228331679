//! OffsetCommit: checks membership and generation, appends one batch to the group's partition
//! and answers once it is durable; only then does OffsetFetch see the offsets.
//!
//! Owns the commit rules. Must not: update the in-memory offsets before the write is durable.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::offsets::Committed;
use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::persist::append_durable;
use super::{offsets, state, METADATA_MAX};

/// Commits on the coordinator shard: checks membership, writes the batch, waits until durable,
/// then updates the map. Returns one code per (topic, partition) in request order.
async fn commit(
    c: Rc<Broker>,
    group: String,
    member: String,
    instance: Option<String>,
    generation: i32,
    requested: Vec<(String, i32, Committed)>,
) -> Vec<i16> {
    let n = requested.len();
    let all = |code: i16| vec![code; n];
    let code = c.groups.with(&group, |g| {
        if generation < 0 && member.is_empty() {
            if g.members.is_empty() {
                ec::NONE
            } else {
                ec::UNKNOWN_MEMBER_ID
            }
        } else if g.state == state::State::CompletingRebalance
            && g.members.contains_key(&member)
            && g.generation == generation
        {
            ec::REBALANCE_IN_PROGRESS
        } else {
            g.check_member(&member, instance.as_deref(), generation)
        }
    });
    if code != ec::NONE {
        tracing::info!(%group, %member, generation, code, "OffsetCommit refused");
        return all(code);
    }
    let codes: Vec<i16> = requested
        .iter()
        .map(|(_, _, c)| {
            if c.metadata.len() > METADATA_MAX {
                ec::OFFSET_METADATA_TOO_LARGE
            } else {
                ec::NONE
            }
        })
        .collect();
    let accepted: Vec<(String, i32, Committed)> = requested
        .into_iter()
        .zip(&codes)
        .filter(|(_, code)| **code == ec::NONE)
        .map(|(r, _)| r)
        .collect();
    if accepted.is_empty() {
        return codes;
    }
    let now = c.cfg.clock.now_ms();
    let batch = offsets::commit_batch(&group, &accepted, now);
    let keys: Vec<(String, i32)> = accepted.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let appended = |at| c.groups.with(&group, |g| g.commit_appended(&keys, at));
    let at = match append_durable(&c, &group, batch, appended).await {
        Ok(at) => at,
        Err(code) => {
            tracing::warn!(%group, code, "writing an offset commit failed");
            return all(code);
        }
    };
    c.groups.with(&group, |g| {
        for (t, p, committed) in accepted {
            g.commit_durable((t, p), committed, at);
        }
    });
    codes
}

fn dispatch_offset_commit(
    b: Rc<Broker>,
    h: RequestHeader,
    body: OffsetCommitRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let now = b.cfg.clock.now_ms();
        let requested: Vec<(String, i32, Committed)> = body
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        t.name.to_string(),
                        p.partition_index,
                        Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p
                                .committed_metadata
                                .as_ref()
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                            commit_timestamp: now,
                        },
                    )
                })
            })
            .collect();
        let n = requested.len();
        let (g, member, instance, generation) = (
            group.clone(),
            body.member_id.to_string(),
            body.group_instance_id.as_ref().map(|i| i.to_string()),
            body.generation_id_or_member_epoch,
        );
        let codes = b
            .on_group(&group, move |c| {
                commit(c, g, member, instance, generation, requested).boxed_local()
            })
            .await
            .unwrap_or_else(|| vec![ec::COORDINATOR_NOT_AVAILABLE; n]);
        let mut codes = codes.into_iter();
        let topics = body
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(codes.next().unwrap_or(ec::UNKNOWN_SERVER_ERROR))
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        encode_response(&h, &OffsetCommitResponse::default().with_topics(topics)).map(Some)
    }
    .boxed_local())
}

impl Handle<OffsetCommitRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: OffsetCommitRequest) -> Dispatched {
        ready(dispatch_offset_commit(self.broker, self.header, body))
    }
}
