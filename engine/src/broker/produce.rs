//! Produce (acks 0, 1, all).
//!
//! Dispatch stage (in request order on the connection): the request was parsed by hand
//! (`protocol::produce`, through `protocol::request::decode_request`), each partition's record
//! set stays a slice of the request frame, and
//! each owning shard gets one job holding its partitions; the job's synchronous part appends
//! (validation + offset assignment), so pipelined produces keep their order. Completion stage:
//! acks=1 waits for the written watermark, acks=all (-1) for the durable one (fdatasync), bounded
//! by the request's timeout (REQUEST_TIMED_OUT); acks=0 sends no response. An idempotent batch is
//! judged by its `Partition` (`broker::partition`; the rules in `broker::idempotence`) in that synchronous part:
//! appended, answered with its original offsets, or refused; after a roll the table's snapshot is
//! written in a task of its own.
//! Must not: copy record bytes (the log copies them once, into its DMA buffer), or acknowledge
//! anything before its watermark passed it.

use super::dispatch::{Call, Dispatched};
use crate::broker::log_error::KafkaCode;
use std::rc::Rc;
use std::time::Duration;
use wire::protocol::apis::Handle;

use bytes::Bytes;
use futures::future::{Either, LocalBoxFuture};
use futures::FutureExt;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use super::fan_out::{FanOut, FanOutError, ShardJob};
use super::partition::Appended;
use super::Broker;
use crate::shard::Completion;
use storage::log::Watermark;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::produce::{self, ProduceRequest};
use wire::protocol::{encode_response, ProtocolError};

/// One partition's record set for its owner.
struct AppendWork {
    topic: String,
    partition: i32,
    records: Bytes,
}

/// Produce's work on the owning shards: append now, answer when the watermark `acks` asks for
/// passes (or the timeout).
#[derive(Clone, Copy)]
struct Append {
    acks: i16,
    timeout: Duration,
}

impl ShardJob<Broker> for Append {
    type Item = AppendWork;
    type Reply = Outcome;
    type Out = Outcome;

    fn on_owner(
        self,
        owner: &Rc<Broker>,
        items: Vec<AppendWork>,
    ) -> LocalBoxFuture<'static, Vec<Outcome>> {
        append_on_owner(owner, items, self.acks, self.timeout)
    }

    fn received(reply: Outcome) -> Outcome {
        reply
    }

    fn failed(_error: &FanOutError) -> Outcome {
        Outcome::error(ec::NOT_LEADER_OR_FOLLOWER)
    }
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    code: i16,
    base_offset: i64,
    log_start_offset: i64,
}

impl Outcome {
    fn error(code: i16) -> Outcome {
        Outcome {
            code,
            base_offset: -1,
            log_start_offset: -1,
        }
    }
}

/// On the owning shard: appends now (synchronously, in job order), then waits for the watermark.
/// One outcome per item, in the items' order.
fn append_on_owner(
    b: &Rc<Broker>,
    work: Vec<AppendWork>,
    acks: i16,
    timeout: Duration,
) -> LocalBoxFuture<'static, Vec<Outcome>> {
    let count = work.len();
    // (item index, outcome): those known now, then those that waited.
    let mut done = Vec::with_capacity(count);
    let mut waits = Vec::new();
    for (slot, w) in work.into_iter().enumerate() {
        let key = (w.topic, w.partition);
        let Some(p) = b.partition(&key.0, key.1) else {
            done.push((slot, Outcome::error(ec::NOT_LEADER_OR_FOLLOWER)));
            continue;
        };
        // Idempotent producers: one batch per partition per request (as Kafka requires); a retry
        // of a batch already appended gets its original offsets, a gap is refused.
        let appended = p.append(w.records);
        let log = p.log().clone();
        match appended {
            Ok(Appended {
                first_offset,
                last_offset,
            }) => {
                let outcome = Outcome {
                    code: ec::NONE,
                    base_offset: first_offset as i64,
                    log_start_offset: log.log_start_offset() as i64,
                };
                let watermark = match acks {
                    0 => {
                        done.push((slot, outcome));
                        continue;
                    }
                    1 => Watermark::Written,
                    _ => Watermark::Durable,
                };
                waits.push(async move {
                    let wait = log.wait(last_offset, watermark).boxed_local();
                    let timer = glommio::timer::sleep(timeout).boxed_local();
                    match futures::future::select(wait, timer).await {
                        Either::Left((Ok(()), _)) => (slot, outcome),
                        Either::Left((Err(e), _)) => {
                            tracing::warn!(topic = %key.0, partition = key.1, "produce: {e}");
                            (slot, Outcome::error(e.kafka_code()))
                        }
                        Either::Right(_) => (slot, Outcome::error(ec::REQUEST_TIMED_OUT)),
                    }
                });
            }
            Err(e) => {
                tracing::debug!(topic = %key.0, partition = key.1, "produce refused: {e}");
                done.push((slot, Outcome::error(e.kafka_code())));
            }
        }
    }
    async move {
        done.extend(futures::future::join_all(waits).await);
        // Each item answered exactly once: refused at once, or after its wait.
        let mut outcomes: Vec<Option<Outcome>> = vec![None; count];
        for (slot, outcome) in done {
            assert!(
                outcomes[slot].replace(outcome).is_none(),
                "slot {slot} answered twice"
            );
        }
        outcomes
            .into_iter()
            .enumerate()
            .map(|(slot, o)| o.unwrap_or_else(|| panic!("slot {slot} of {count} never answered")))
            .collect()
    }
    .boxed_local()
}

async fn dispatch(
    b: Rc<Broker>,
    h: RequestHeader,
    p: ProduceRequest,
) -> Result<Completion, ProtocolError> {
    let acks = p.acks;
    let timeout = Duration::from_millis(p.timeout_ms.max(1) as u64);
    // The response's layout; the fan-out holds one slot per (topic, partition) in that order.
    let mut layout: Vec<(String, Vec<i32>)> = Vec::with_capacity(p.topics.len());
    let mut fan = FanOut::<Broker, Append>::new(b.shard_count());
    for topic in p.topics {
        let meta = match b.topic(&topic.name).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(topic = %topic.name, "produce: {e}");
                None
            }
        };
        let mut indexes = Vec::with_capacity(topic.partitions.len());
        for part in topic.partitions {
            indexes.push(part.index);
            let owner = meta.as_ref().and_then(|m| b.owner(m, part.index));
            let refused = match (owner, part.records) {
                _ if !matches!(acks, -1..=1) => ec::INVALID_REQUIRED_ACKS,
                // Kafka's ReplicaManager: "Cannot append to internal topic".
                _ if super::topic_config::is_internal(&topic.name) => ec::INVALID_TOPIC_EXCEPTION,
                (None, _) => ec::UNKNOWN_TOPIC_OR_PARTITION,
                (Some(_), None) => ec::CORRUPT_MESSAGE,
                (Some(shard), Some(records)) => {
                    fan.send(
                        shard,
                        AppendWork {
                            topic: topic.name.clone(),
                            partition: part.index,
                            records,
                        },
                    );
                    continue;
                }
            };
            fan.answered(Outcome::error(refused));
        }
        layout.push((topic.name, indexes));
    }
    // The owners append now, in this connection's request order.
    let pending = fan.submit(&b.mesh, &b, Append { acks, timeout }).await;
    Ok(async move {
        let outcomes = pending.collect().await;
        if acks == 0 {
            return Ok(None);
        }
        let mut slot = 0;
        let responses = layout
            .into_iter()
            .map(|(name, indexes)| {
                let partitions = indexes
                    .into_iter()
                    .map(|index| {
                        let o = outcomes[slot];
                        slot += 1;
                        PartitionProduceResponse::default()
                            .with_index(index)
                            .with_error_code(o.code)
                            .with_base_offset(o.base_offset)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(if h.api_version >= 5 {
                                o.log_start_offset
                            } else {
                                -1
                            })
                    })
                    .collect();
                TopicProduceResponse::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partition_responses(partitions)
            })
            .collect();
        let response = ProduceResponse::default().with_responses(responses);
        if h.api_version < 3 {
            return produce::encode_legacy_response(&h, &response).map(Some);
        }
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

impl Handle<ProduceRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: ProduceRequest) -> Dispatched {
        dispatch(self.broker, self.header, body).boxed_local()
    }
}
