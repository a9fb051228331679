//! A scriptable mock Kafka cluster for the bench client's tests: `nodes` listeners on 127.0.0.1,
//! one per broker, each answering Metadata (every node, partition p led by node p % nodes),
//! InitProducerId and Produce. It records every Produce request it receives (which node, when,
//! and each batch's partition, record count and producer fields), can be told to stop answering
//! Produce (a stalled broker), to answer the next partitions with given error codes, or to cut a
//! connection after appending (a lost acknowledgement); it deduplicates idempotent batches the way
//! a broker does so retries can be checked. It keeps what it appended (base offsets stamped) and
//! answers ListOffsets and Fetch v4 from it, recording which node was asked for which partition.
//! Plain std threads: it must be simple enough to trust.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use futures::io::AllowStdIo;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceResponse, ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use wire::batch::BatchHeader;
use wire::protocol::frame::{read_frame, REQUEST_BYTES_MAX_DEFAULT};
use wire::protocol::header::parse_request;
use wire::protocol::{decode_body, encode_response};

/// One batch as the mock received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchSeen {
    pub partition: i32,
    pub records: u32,
    pub producer_id: i64,
    pub base_sequence: i32,
    /// The batch's bytes (as sent, possibly compressed).
    pub bytes: Vec<u8>,
}

/// One Produce request as the mock received it.
#[derive(Debug, Clone)]
pub struct ProduceSeen {
    pub node: usize,
    pub at: Instant,
    pub batches: Vec<BatchSeen>,
}

/// (first sequence, record count) of an appended idempotent batch.
type Appended = (i32, u32);

#[derive(Default)]
pub struct State {
    pub produces: Mutex<Vec<ProduceSeen>>,
    /// While false, Produce requests are read and recorded but never answered.
    pub answering: AtomicBool,
    /// Error codes for the next partition responses, in order (instead of success).
    pub fail_next: Mutex<Vec<i16>>,
    /// Cut the connection instead of answering the next N Produce requests (appending them).
    pub cut_next: AtomicU64,
    pub metadata_requests: AtomicU64,
    /// Records appended per partition (duplicates of idempotent batches not counted).
    pub appended: Mutex<HashMap<i32, u64>>,
    /// (producer id, partition) → (first sequence, record count) of batches appended.
    sequences: Mutex<HashMap<(i64, i32), Vec<Appended>>>,
    next_producer_id: AtomicI64,
    /// partition → appended batches (base offset stamped), in order.
    log: Mutex<HashMap<i32, Vec<Vec<u8>>>>,
    /// (node, partition) of every partition a Fetch asked for.
    pub fetched: Mutex<Vec<(usize, i32)>>,
    partitions: u32,
    addrs: Vec<SocketAddr>,
}

pub struct MockBroker {
    pub addrs: Vec<SocketAddr>,
    pub state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MockBroker {
    pub fn start(nodes: usize, partitions: u32) -> MockBroker {
        let listeners: Vec<TcpListener> = (0..nodes)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let state = Arc::new(State {
            answering: AtomicBool::new(true),
            next_producer_id: AtomicI64::new(1000),
            partitions,
            addrs: addrs.clone(),
            ..State::default()
        });
        for (node, l) in listeners.into_iter().enumerate() {
            let state = state.clone();
            std::thread::spawn(move || {
                for s in l.incoming() {
                    let Ok(s) = s else { continue };
                    let state = state.clone();
                    std::thread::spawn(move || serve(node, s, &state));
                }
            });
        }
        MockBroker { addrs, state }
    }

    pub fn bootstrap(&self) -> String {
        self.addrs[0].to_string()
    }

    pub fn produces(&self) -> Vec<ProduceSeen> {
        lock(&self.state.produces).clone()
    }

    pub fn fail_next(&self, codes: &[i16]) {
        lock(&self.state.fail_next).extend_from_slice(codes);
    }

    pub fn appended(&self) -> HashMap<i32, u64> {
        lock(&self.state.appended).clone()
    }
}

fn serve(node: usize, stream: TcpStream, state: &State) {
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = AllowStdIo::new(stream);
    while let Ok(Some(frame)) =
        futures::executor::block_on(read_frame(&mut reader, REQUEST_BYTES_MAX_DEFAULT))
    {
        let Ok(request) = parse_request(frame) else {
            return;
        };
        let h = request.header;
        let response = match h.api_key {
            ApiKey::Metadata => {
                state.metadata_requests.fetch_add(1, Ordering::SeqCst);
                let decoded: Result<MetadataRequest, _> =
                    decode_body("Metadata", h.api_version, request.body);
                let Ok(r) = decoded else {
                    return;
                };
                encode_response::<_, bytes::Bytes>(&h, &metadata(state, r))
            }
            ApiKey::InitProducerId => {
                let id = state.next_producer_id.fetch_add(1, Ordering::SeqCst);
                encode_response(
                    &h,
                    &InitProducerIdResponse::default()
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(0),
                )
            }
            ApiKey::ListOffsets => {
                let decoded: Result<ListOffsetsRequest, _> =
                    decode_body("ListOffsets", h.api_version, request.body);
                let Ok(r) = decoded else { return };
                encode_response(&h, &list_offsets(state, r))
            }
            ApiKey::Fetch => {
                let decoded: Result<FetchRequest, _> =
                    decode_body("Fetch", h.api_version, request.body);
                let Ok(r) = decoded else { return };
                encode_response(&h, &fetch(node, state, r))
            }
            ApiKey::Produce => {
                let Ok(r) = wire::protocol::produce::parse(request.body, h.api_version) else {
                    return;
                };
                let (acks, response) = produce(node, state, r);
                if state
                    .cut_next
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let _ = writer.shutdown(Shutdown::Both);
                    return;
                }
                if acks == 0 || !state.answering.load(Ordering::SeqCst) {
                    continue;
                }
                encode_response(&h, &response)
            }
            _ => return,
        };
        let Ok(bytes) = response else { return };
        if writer.write_all(&bytes.to_vec()).is_err() {
            return;
        }
    }
}

fn metadata(state: &State, request: MetadataRequest) -> MetadataResponse {
    let names: Vec<String> = request
        .topics
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| t.name.map(|n| n.0.to_string()))
        .collect();
    let nodes = state.addrs.len() as i32;
    let topics = names
        .into_iter()
        .map(|name| {
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name))))
                .with_partitions(
                    (0..state.partitions as i32)
                        .map(|i| {
                            let leader = BrokerId(i % nodes);
                            MetadataResponsePartition::default()
                                .with_partition_index(i)
                                .with_leader_id(leader)
                                .with_replica_nodes(vec![leader])
                                .with_isr_nodes(vec![leader])
                        })
                        .collect(),
                )
        })
        .collect();
    let brokers = state
        .addrs
        .iter()
        .enumerate()
        .map(|(i, a)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(i as i32))
                .with_host(StrBytes::from_string(a.ip().to_string()))
                .with_port(i32::from(a.port()))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_controller_id(BrokerId(0))
        .with_topics(topics)
}

fn produce(
    node: usize,
    state: &State,
    request: wire::protocol::produce::ProduceRequest,
) -> (i16, ProduceResponse) {
    let mut seen = ProduceSeen {
        node,
        at: Instant::now(),
        batches: Vec::new(),
    };
    let mut responses = Vec::new();
    for topic in request.topics {
        let mut partitions = Vec::new();
        for p in topic.partitions {
            let records: Bytes = p.records.unwrap_or_default();
            let h = BatchHeader::parse(&records);
            let (count, pid, seq) = h.as_ref().map_or((0, -1, -1), |h| {
                (
                    h.records_count.max(0) as u32,
                    h.producer_id,
                    h.base_sequence,
                )
            });
            seen.batches.push(BatchSeen {
                partition: p.index,
                records: count,
                producer_id: pid,
                base_sequence: seq,
                bytes: records.to_vec(),
            });
            let injected = {
                let mut f = lock(&state.fail_next);
                (!f.is_empty()).then(|| f.remove(0))
            };
            let mut code = injected.unwrap_or(0);
            if code == 0 {
                // Idempotence as a broker keeps it: a batch already appended is a duplicate.
                let duplicate = pid >= 0 && {
                    let mut seqs = lock(&state.sequences);
                    let list = seqs.entry((pid, p.index)).or_default();
                    let dup = list.contains(&(seq, count));
                    if !dup {
                        list.push((seq, count));
                    }
                    dup
                };
                if !duplicate {
                    let mut appended = lock(&state.appended);
                    let next = appended.entry(p.index).or_insert(0);
                    let mut batch = records.to_vec();
                    if batch.len() >= 8 {
                        batch[..8].copy_from_slice(&(*next as i64).to_be_bytes());
                    }
                    lock(&state.log).entry(p.index).or_default().push(batch);
                    *next += u64::from(count);
                } else {
                    code = 46; // DUPLICATE_SEQUENCE_NUMBER: already stored
                }
            }
            partitions.push(
                PartitionProduceResponse::default()
                    .with_index(p.index)
                    .with_error_code(if code == 46 { 0 } else { code })
                    .with_base_offset(0),
            );
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_string(topic.name)))
                .with_partition_responses(partitions),
        );
    }
    lock(&state.produces).push(seen);
    (
        request.acks,
        ProduceResponse::default().with_responses(responses),
    )
}

fn list_offsets(state: &State, request: ListOffsetsRequest) -> ListOffsetsResponse {
    let appended = lock(&state.appended);
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let end = appended.get(&p.partition_index).copied().unwrap_or(0) as i64;
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(if p.timestamp == -2 { 0 } else { end })
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn fetch(node: usize, state: &State, request: FetchRequest) -> FetchResponse {
    let mut empty = true;
    let mut responses = Vec::new();
    for t in request.topics {
        let mut partitions = Vec::new();
        for p in &t.partitions {
            lock(&state.fetched).push((node, p.partition));
            let log = lock(&state.log);
            let mut out = Vec::new();
            for b in log.get(&p.partition).into_iter().flatten() {
                let h = BatchHeader::parse(b);
                let next = h.map_or(0, |h| h.base_offset + i64::from(h.last_offset_delta) + 1);
                if next <= p.fetch_offset {
                    continue;
                }
                if !out.is_empty() && out.len() + b.len() > p.partition_max_bytes as usize {
                    break;
                }
                out.extend_from_slice(b);
            }
            empty &= out.is_empty();
            let end = lock(&state.appended)
                .get(&p.partition)
                .copied()
                .unwrap_or(0) as i64;
            partitions.push(
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_high_watermark(end)
                    .with_last_stable_offset(end)
                    .with_records(Some(Bytes::from(out))),
            );
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(t.topic)
                .with_partitions(partitions),
        );
    }
    if empty {
        // As a broker holds an empty fetch for fetch.max.wait.ms (shortened: this is a mock).
        std::thread::sleep(std::time::Duration::from_millis(
            request.max_wait_ms.clamp(0, 20) as u64,
        ));
    }
    FetchResponse::default().with_responses(responses)
}
