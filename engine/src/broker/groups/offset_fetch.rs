//! OffsetFetch: a group's committed offsets (v8+: of several groups), from its coordinator
//! shard's memory.
//!
//! Owns the OffsetFetch answer. Must not: read the log (the memory map is the durable state).

use crate::broker::dispatch::{ready, Call, Dispatched};
use std::collections::BTreeMap;
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::FutureExt;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::offsets::Committed;
use crate::broker::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

use super::s;

/// (topic, [(partition, committed)]) of one group; `topics` None = every committed offset.
type Fetched = Vec<(String, Vec<(i32, Option<Committed>)>)>;

async fn fetch_group(
    b: &Rc<Broker>,
    group: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, i16> {
    let g = group.clone();
    b.on_group(&group, move |c| {
        async move {
            let map = c.groups.map.borrow();
            let offsets = map.get(&g).map(|grp| &grp.offsets);
            match topics {
                Some(topics) => topics
                    .into_iter()
                    .map(|(t, ps)| {
                        let found = ps
                            .into_iter()
                            .map(|p| {
                                let c = offsets.and_then(|o| o.get(&(t.clone(), p)).cloned());
                                (p, c)
                            })
                            .collect();
                        (t, found)
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<(i32, Option<Committed>)>> =
                        BTreeMap::new();
                    for ((t, p), c) in offsets.into_iter().flatten() {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push((*p, Some(c.clone())));
                    }
                    for v in by_topic.values_mut() {
                        v.sort_by_key(|(p, _)| *p);
                    }
                    by_topic.into_iter().collect()
                }
            }
        }
        .boxed_local()
    })
    .await
    .ok_or(ec::COORDINATOR_NOT_AVAILABLE)
}

/// OffsetFetch's topics from `fetched`, built by `topic` and `partition` (v8+ and older
/// versions have distinct types of the same shape). `partition` gets (partition, committed
/// offset, leader epoch, metadata); nothing committed is (-1, -1, "").
fn fetched_topics<T, P>(
    fetched: Fetched,
    topic: impl Fn(TopicName, Vec<P>) -> T,
    partition: impl Fn(i32, i64, i32, StrBytes) -> P,
) -> Vec<T> {
    fetched
        .into_iter()
        .map(|(t, ps)| {
            let ps = ps
                .into_iter()
                .map(|(p, c)| match c {
                    Some(c) => partition(p, c.offset, c.leader_epoch, s(c.metadata)),
                    None => partition(p, -1, -1, s("")),
                })
                .collect();
            topic(TopicName(s(t)), ps)
        })
        .collect()
}

fn dispatch_offset_fetch(
    b: Rc<Broker>,
    h: RequestHeader,
    body: OffsetFetchRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let response = if h.api_version >= 8 {
            let mut groups = Vec::with_capacity(body.groups.len());
            for g in body.groups {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                groups.push(
                    match fetch_group(&b, g.group_id.to_string(), topics).await {
                        Err(code) => out.with_error_code(code),
                        Ok(fetched) => out.with_topics(fetched_topics(
                            fetched,
                            |name, ps| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(name)
                                    .with_partitions(ps)
                            },
                            |p, o, e, m| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(e)
                                    .with_metadata(Some(m))
                            },
                        )),
                    },
                );
            }
            OffsetFetchResponse::default().with_groups(groups)
        } else {
            let topics = body.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            match fetch_group(&b, body.group_id.to_string(), topics).await {
                Err(code) => OffsetFetchResponse::default().with_error_code(code),
                Ok(fetched) => OffsetFetchResponse::default().with_topics(fetched_topics(
                    fetched,
                    |name, ps| {
                        OffsetFetchResponseTopic::default()
                            .with_name(name)
                            .with_partitions(ps)
                    },
                    |p, o, e, m| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_committed_leader_epoch(e)
                            .with_metadata(Some(m))
                    },
                )),
            }
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<OffsetFetchRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: OffsetFetchRequest) -> Dispatched {
        ready(dispatch_offset_fetch(self.broker, self.header, body))
    }
}
