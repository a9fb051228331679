//! ListOffsets: earliest (-2: the log start offset), latest (-1: the log end offset), or the
//! first offset whose timestamp is at or after a given time (on the owning shard's log).
//!
//! Owns that mapping. Must not read another shard's log except through a `Mesh` job (one per
//! owning shard, by `fan_out`).

use super::dispatch::{ready, Call, Dispatched};
use crate::broker::log_error::KafkaCode;
use std::rc::Rc;
use wire::protocol::apis::Handle;

use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::fan_out::{FanOut, FanOutError, ShardJob};
use super::Broker;
use crate::shard::Completion;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

/// (error code, timestamp, offset) of one partition, computed on its owner.
async fn lookup(b: Rc<Broker>, name: String, partition: i32, timestamp: i64) -> (i16, i64, i64) {
    let Some(p) = b.partition(&name, partition) else {
        return (ec::NOT_LEADER_OR_FOLLOWER, -1, -1);
    };
    let log = p.log();
    match timestamp {
        // What a consumer can read up to (read_uncommitted): the high watermark.
        LATEST => (ec::NONE, -1, p.high_watermark() as i64),
        EARLIEST => (ec::NONE, -1, log.log_start_offset() as i64),
        ts if ts >= 0 => match log.offset_for_timestamp(ts).await {
            Ok(Some((offset, found))) => (ec::NONE, found, offset as i64),
            Ok(None) => (ec::NONE, -1, -1),
            Err(e) => {
                tracing::warn!(topic = %name, partition, "ListOffsets: {e}");
                (e.kafka_code(), -1, -1)
            }
        },
        // -3 (max timestamp) and the tiered-storage specials are not offered by our versions.
        _ => (ec::INVALID_REQUEST, -1, -1),
    }
}

/// ListOffsets' work on the owning shards: (name, partition, timestamp) → (error code, timestamp,
/// offset), each partition's lookup concurrent.
#[derive(Clone, Copy)]
struct Lookup;

type Answer = (i16, i64, i64);

impl ShardJob<Broker> for Lookup {
    type Item = (String, i32, i64);
    type Reply = Answer;
    type Out = Answer;

    fn on_owner(
        self,
        owner: &Rc<Broker>,
        items: Vec<(String, i32, i64)>,
    ) -> LocalBoxFuture<'static, Vec<Answer>> {
        let lookups = items
            .into_iter()
            .map(|(name, partition, ts)| lookup(owner.clone(), name, partition, ts));
        futures::future::join_all(lookups).boxed_local()
    }

    fn received(reply: Answer) -> Answer {
        reply
    }

    fn failed(_error: &FanOutError) -> Answer {
        (ec::NOT_LEADER_OR_FOLLOWER, -1, -1)
    }
}

fn dispatch(
    b: Rc<Broker>,
    h: RequestHeader,
    body: ListOffsetsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut fan = FanOut::<Broker, Lookup>::new(b.shard_count());
        for t in &body.topics {
            let name = t.name.0.to_string();
            let meta = b.topic(&name).await.ok().flatten();
            for p in &t.partitions {
                match meta.as_ref().and_then(|m| b.owner(m, p.partition_index)) {
                    None => fan.answered((ec::UNKNOWN_TOPIC_OR_PARTITION, -1, -1)),
                    Some(owner) => fan.send(owner, (name.clone(), p.partition_index, p.timestamp)),
                }
            }
        }
        let mut answers = fan
            .submit(&b.mesh, &b, Lookup)
            .await
            .collect()
            .await
            .into_iter();
        let mut topics = Vec::with_capacity(body.topics.len());
        for t in body.topics {
            let mut partitions = Vec::with_capacity(t.partitions.len());
            for p in t.partitions {
                let (code, timestamp, offset) =
                    answers.next().unwrap_or((ec::UNKNOWN_SERVER_ERROR, -1, -1));
                partitions.push(
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_timestamp(timestamp)
                        .with_offset(offset)
                        .with_leader_epoch(if h.api_version >= 4 { 0 } else { -1 }),
                );
            }
            topics.push(
                ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
        }
        encode_response(&h, &ListOffsetsResponse::default().with_topics(topics)).map(Some)
    }
    .boxed_local())
}

impl Handle<ListOffsetsRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: ListOffsetsRequest) -> Dispatched {
        ready(dispatch(self.broker, self.header, body))
    }
}
