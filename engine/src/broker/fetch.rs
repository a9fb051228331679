//! Fetch, with the long poll: answer when at least `min.bytes` are ready or `max.wait.ms` has
//! passed; `max.bytes` and per-partition limits bound the answer (the first partition with data
//! is returned even if its first batch is larger, as Kafka does). Fetch sessions are declined
//! (session id 0: every fetch is a full fetch), which KIP-227 allows.
//!
//! Record bytes of partitions on this shard go into the response as the log's own buffers (no
//! copy); partitions on another shard are read there (one job per shard, by `fan_out`) and
//! copied once into `Bytes` (a `LogBytes` is shard-local). Long-poll waits run on the owners (`PartitionLog::wait` on the written
//! watermark).
//! Must not: hold log buffers across shards, or wait past the deadline.

use super::dispatch::{ready, Call, Dispatched};
use crate::broker::log_error::KafkaCode;
use std::rc::Rc;
use std::time::{Duration, Instant};
use wire::protocol::apis::Handle;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use kafka_protocol::messages::FetchRequest;

use super::fan_out::{FanOut, FanOutError, ShardJob};
use super::{Broker, TopicPartition};
use storage::error::LogError;
use storage::log::Watermark;
use wire::error_code as ec;
use wire::protocol::fetch::{encode, FetchResponsePartition, FetchResponseTopic};
use wire::protocol::header::RequestHeader;
use wire::protocol::ProtocolError;

/// A piece of a Fetch response: encoded bytes or the log's own buffers.
type Part = wire::protocol::Part<storage::LogBytes>;
use crate::shard::Completion;

/// Longest long poll we honour.
const WAIT_MS_MAX: u64 = 30_000;

struct Want {
    topic: usize,
    /// Topic name and partition, as the log map's key (no lookup builds one).
    key: TopicPartition,
    offset: i64,
    max_bytes: usize,
    owner: Option<usize>,
}

#[derive(Debug, Clone, Copy)]
struct Marks {
    code: i16,
    high_watermark: i64,
    log_start_offset: i64,
}

impl Marks {
    fn error(code: i16) -> Marks {
        Marks {
            code,
            high_watermark: -1,
            log_start_offset: -1,
        }
    }
}

struct Got {
    marks: Marks,
    records: Vec<Part>,
    bytes: usize,
}

/// Reads one partition on its owner; the records stay as the log's buffers.
async fn read_local(
    b: &Broker,
    key: &TopicPartition,
    offset: i64,
    max_bytes: usize,
) -> (Marks, Vec<storage::LogBytes>) {
    let Some(p) = b.partition(&key.0, key.1) else {
        return (Marks::error(ec::NOT_LEADER_OR_FOLLOWER), Vec::new());
    };
    let log = p.log();
    let marks = |code| Marks {
        code,
        high_watermark: p.high_watermark() as i64,
        log_start_offset: log.log_start_offset() as i64,
    };
    if offset < 0 {
        return (marks(wire::error_code::OFFSET_OUT_OF_RANGE), Vec::new());
    }
    match log.read(offset as u64, max_bytes).await {
        // One replica: the read's own log end is the high watermark it saw (with replication the
        // read will be capped at `Partition::high_watermark`).
        Ok(read) => (
            Marks {
                code: ec::NONE,
                high_watermark: read.log_end_offset as i64,
                log_start_offset: read.log_start_offset as i64,
            },
            read.chunks,
        ),
        Err(e @ LogError::OffsetOutOfRange { .. }) => (marks(e.kafka_code()), Vec::new()),
        Err(e) => {
            tracing::warn!(topic = %key.0, partition = key.1, "fetch: {e}");
            (marks(e.kafka_code()), Vec::new())
        }
    }
}

impl Got {
    fn error(code: i16) -> Got {
        Got {
            marks: Marks::error(code),
            records: Vec::new(),
            bytes: 0,
        }
    }
}

/// Fetch's reads on the owning shards, each partition's read concurrent.
#[derive(Clone, Copy)]
struct Read;

impl ShardJob<Broker> for Read {
    /// (partition, fetch offset, bytes at most)
    type Item = (TopicPartition, i64, usize);
    type Reply = (Marks, Bytes);
    type Out = Got;

    fn on_owner(
        self,
        owner: &Rc<Broker>,
        items: Vec<Self::Item>,
    ) -> LocalBoxFuture<'static, Vec<(Marks, Bytes)>> {
        let owner = owner.clone();
        async move {
            let reads = items
                .iter()
                .map(|(key, offset, max_bytes)| read_local(&owner, key, *offset, *max_bytes));
            futures::future::join_all(reads)
                .await
                .into_iter()
                .map(|(marks, chunks)| {
                    // The one copy of a cross-shard fetch: LogBytes cannot leave its shard.
                    let mut copy = Vec::with_capacity(chunks.iter().map(|c| c.len()).sum());
                    for c in &chunks {
                        copy.extend_from_slice(c);
                    }
                    (marks, Bytes::from(copy))
                })
                .collect()
        }
        .boxed_local()
    }

    fn received((marks, bytes): (Marks, Bytes)) -> Got {
        Got {
            marks,
            bytes: bytes.len(),
            records: vec![Part::Bytes(bytes)],
        }
    }

    /// This shard's partitions: the log's own buffers go into the response, uncopied.
    fn on_this_shard(
        self,
        this: &Rc<Broker>,
        items: Vec<Self::Item>,
    ) -> LocalBoxFuture<'static, Vec<Got>> {
        let this = this.clone();
        async move {
            let reads = items
                .iter()
                .map(|(key, offset, max_bytes)| read_local(&this, key, *offset, *max_bytes));
            futures::future::join_all(reads)
                .await
                .into_iter()
                .map(|(marks, chunks)| Got {
                    marks,
                    bytes: chunks.iter().map(|c| c.len()).sum(),
                    records: chunks.into_iter().map(Part::External).collect(),
                })
                .collect()
        }
        .boxed_local()
    }

    fn failed(_error: &FanOutError) -> Got {
        Got::error(ec::NOT_LEADER_OR_FOLLOWER)
    }
}

/// Reads every wanted partition, one job per owning shard; answers in `wants`' order.
async fn read_all(b: &Rc<Broker>, wants: &[Want]) -> Vec<Got> {
    let mut fan = FanOut::<Broker, Read>::new(b.shard_count());
    for w in wants {
        match w.owner {
            None => fan.answered(Got::error(ec::UNKNOWN_TOPIC_OR_PARTITION)),
            Some(owner) => fan.send(owner, (w.key.clone(), w.offset, w.max_bytes)),
        }
    }
    fan.submit(&b.mesh, b, Read).await.collect().await
}

/// Waits until any partition grows past what was seen, or the deadline.
async fn wait_for_data(b: &Rc<Broker>, wants: &[Want], got: &[Got], deadline: Instant) {
    let remaining = deadline.saturating_duration_since(Instant::now());
    let mut waits: Vec<LocalBoxFuture<'static, ()>> = Vec::new();
    for (w, g) in wants.iter().zip(got) {
        let (Some(owner), ec::NONE) = (w.owner, g.marks.code) else {
            continue;
        };
        let seen = g.marks.high_watermark.max(w.offset).max(0) as u64;
        let key = w.key.clone();
        let work = move |o: &Rc<Broker>| {
            let log = o.log(&key.0, key.1);
            async move {
                if let Some(log) = log {
                    let wait = log.wait(seen, Watermark::Written).boxed_local();
                    let _ = futures::future::select(
                        wait,
                        glommio::timer::sleep(remaining).boxed_local(),
                    )
                    .await;
                }
            }
            .boxed_local()
        };
        // `Mesh::submit` runs the wait in place when the owner is this shard.
        if let Ok(fut) = b.mesh.submit(b, owner, work).await {
            waits.push(
                async move {
                    let _ = fut.await;
                }
                .boxed_local(),
            );
        }
    }
    let timer = glommio::timer::sleep(remaining).boxed_local();
    if waits.is_empty() {
        timer.await;
        return;
    }
    let _ = futures::future::select(futures::future::select_all(waits), timer).await;
}

fn dispatch(
    b: Rc<Broker>,
    h: RequestHeader,
    body: FetchRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        if h.api_version >= 7 && body.session_id != 0 {
            let frame = encode(&h, ec::FETCH_SESSION_ID_NOT_FOUND, 0, Vec::new());
            return Ok(Some(frame));
        }
        let max_bytes = body.max_bytes.max(0) as usize;
        let min_bytes = body.min_bytes.max(0) as usize;
        let wait = Duration::from_millis((body.max_wait_ms.max(0) as u64).min(WAIT_MS_MAX));
        let deadline = Instant::now() + wait;
        let mut names = Vec::with_capacity(body.topics.len());
        let mut wants = Vec::new();
        for (ti, t) in body.topics.iter().enumerate() {
            let name = t.topic.0.to_string();
            let meta = b.topic(&name).await.ok().flatten();
            for p in &t.partitions {
                wants.push(Want {
                    topic: ti,
                    key: (name.clone(), p.partition),
                    offset: p.fetch_offset,
                    max_bytes: (p.partition_max_bytes.max(0) as usize).min(max_bytes),
                    owner: meta.as_ref().and_then(|m| b.owner(m, p.partition)),
                });
            }
            names.push(name);
        }
        let mut got = read_all(&b, &wants).await;
        loop {
            let total: usize = got.iter().map(|g| g.bytes).sum();
            let failed = got.iter().any(|g| g.marks.code != ec::NONE);
            if total >= min_bytes || failed || Instant::now() >= deadline {
                break;
            }
            wait_for_data(&b, &wants, &got, deadline).await;
            got = read_all(&b, &wants).await;
        }
        let mut topics: Vec<FetchResponseTopic<storage::LogBytes>> = names
            .into_iter()
            .map(|name| FetchResponseTopic {
                name,
                partitions: Vec::new(),
            })
            .collect();
        let mut budget_used = 0usize;
        for (w, g) in wants.into_iter().zip(got) {
            let mut records = g.records;
            if g.bytes > 0 {
                if budget_used > 0 && budget_used + g.bytes > max_bytes {
                    records = Vec::new(); // over max.bytes: the client asks again
                } else {
                    budget_used += g.bytes;
                }
            }
            topics[w.topic].partitions.push(FetchResponsePartition {
                index: w.key.1,
                error_code: g.marks.code,
                high_watermark: g.marks.high_watermark,
                last_stable_offset: g.marks.high_watermark,
                log_start_offset: g.marks.log_start_offset,
                records,
            });
        }
        Ok(Some(encode(&h, ec::NONE, 0, topics)))
    }
    .boxed_local())
}

impl Handle<FetchRequest> for Call {
    type Output = Dispatched;
    fn handle(self, body: FetchRequest) -> Dispatched {
        ready(dispatch(self.broker, self.header, body))
    }
}
