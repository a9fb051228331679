//! OffsetDelete: deletes a group's committed offsets of topics its members do not subscribe to
//! (Kafka's GROUP_SUBSCRIBED_TO_TOPIC otherwise), with tombstones before the answer.
//!
//! Owns the OffsetDelete rules. Must not: forget offsets before their tombstones are durable.

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::collections::HashMap;
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse, TopicName,
};
use kafka_protocol::protocol::Decodable;

use super::state::Group;
use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::persist::delete_offsets;
use super::s;

/// The topics a consumer group's members subscribe to (from their ConsumerProtocolSubscription
/// metadata of the chosen protocol); None if they cannot be known, which Kafka treats as
/// subscribed to everything.
fn subscribed_topics(g: &Group) -> Option<std::collections::HashSet<String>> {
    if g.protocol_type.as_deref() != Some("consumer") {
        return None;
    }
    g.protocol.as_ref()?; // none chosen yet: unknown, even with no members
    let mut topics = std::collections::HashSet::new();
    for m in g.members.values() {
        let mut md = g.protocol_metadata(m)?.clone();
        if md.len() < 2 {
            return None;
        }
        let version = bytes::Buf::get_i16(&mut md);
        if version < 0 {
            return None;
        }
        let sub = ConsumerProtocolSubscription::decode(&mut md, version.min(3)).ok()?;
        topics.extend(sub.topics.into_iter().map(|t| t.to_string()));
    }
    Some(topics)
}

/// OffsetDelete on the coordinator shard: per (topic, partitions) the partitions' codes, or the
/// group's error.
async fn offset_delete(
    c: Rc<Broker>,
    group: String,
    requested: Vec<(String, Vec<i32>)>,
) -> Result<Vec<(String, Vec<(i32, i16)>)>, i16> {
    let checked = c.groups.with_existing(&group, |g| {
        if g.members.is_empty() {
            return Ok((std::collections::HashSet::new(), g.offsets.clone()));
        }
        if g.protocol_type.as_deref() != Some("consumer") {
            return Err(ec::NON_EMPTY_GROUP);
        }
        // Unknown subscriptions: every requested topic counts as subscribed.
        let subscribed = subscribed_topics(g)
            .unwrap_or_else(|| requested.iter().map(|(t, _)| t.clone()).collect());
        Ok((subscribed, g.offsets.clone()))
    });
    let (subscribed, committed) = match checked {
        None => return Err(ec::GROUP_ID_NOT_FOUND),
        Some(r) => r?,
    };
    let mut keys = Vec::new();
    let mut out = Vec::with_capacity(requested.len());
    for (t, ps) in requested {
        let is_subscribed = subscribed.contains(&t);
        let codes = ps
            .into_iter()
            .map(|p| {
                if is_subscribed {
                    (p, ec::GROUP_SUBSCRIBED_TO_TOPIC)
                } else {
                    if let Some(c) = committed.get(&(t.clone(), p)) {
                        keys.push(((t.clone(), p), c.clone()));
                    }
                    (p, ec::NONE)
                }
            })
            .collect();
        out.push((t, codes));
    }
    let n = keys.len();
    delete_offsets(&c, &group, keys, false).await?;
    if n > 0 {
        tracing::info!(%group, offsets = n, "committed offsets deleted");
    }
    Ok(out)
}

fn dispatch_offset_delete(
    b: Rc<Broker>,
    h: RequestHeader,
    body: OffsetDeleteRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        // Partitions of topics that do not exist are refused here (Kafka's
        // UNKNOWN_TOPIC_OR_PARTITION), before the group is asked.
        let mut refused: HashMap<(String, i32), i16> = HashMap::new();
        let mut requested: Vec<(String, Vec<i32>)> = Vec::with_capacity(body.topics.len());
        for t in &body.topics {
            let name = t.name.to_string();
            let known = match b.topic(&name).await {
                Ok(Some(meta)) => Ok(meta.partitions.len()),
                Ok(None) => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                Err(_) => Err(ec::COORDINATOR_NOT_AVAILABLE),
            };
            let mut ps = Vec::new();
            for p in t.partitions.iter().map(|p| p.partition_index) {
                match known {
                    Ok(n) if usize::try_from(p).is_ok_and(|p| p < n) => ps.push(p),
                    Ok(_) => {
                        refused.insert((name.clone(), p), ec::UNKNOWN_TOPIC_OR_PARTITION);
                    }
                    Err(code) => {
                        refused.insert((name.clone(), p), code);
                    }
                }
            }
            requested.push((name, ps));
        }
        let g = group.clone();
        let result = if group.is_empty() {
            Err(ec::INVALID_GROUP_ID)
        } else {
            b.on_group(&group, move |c| {
                offset_delete(c, g, requested).boxed_local()
            })
            .await
            .unwrap_or(Err(ec::COORDINATOR_NOT_AVAILABLE))
        };
        // Every requested partition answered, in the request's order.
        let result = result.map(|answered| {
            let mut codes: HashMap<(String, i32), i16> = answered
                .into_iter()
                .flat_map(|(t, ps)| ps.into_iter().map(move |(p, c)| ((t.clone(), p), c)))
                .collect();
            codes.extend(refused);
            body.topics
                .iter()
                .map(|t| {
                    let name = t.name.to_string();
                    let ps = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let code = codes
                                .get(&(name.clone(), p.partition_index))
                                .copied()
                                .unwrap_or(ec::UNKNOWN_SERVER_ERROR);
                            (p.partition_index, code)
                        })
                        .collect::<Vec<_>>();
                    (name, ps)
                })
                .collect::<Vec<_>>()
        });
        let response = match result {
            Err(code) => OffsetDeleteResponse::default().with_error_code(code),
            Ok(topics) => OffsetDeleteResponse::default().with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, code)| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<OffsetDeleteRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: OffsetDeleteRequest) -> Dispatched {
        ready(dispatch_offset_delete(self.broker, self.header, body))
    }
}
