//! null_sink — a trivial Kafka server that acknowledges produce requests without storing anything:
//! the ceiling of a load generator (issue #7's honesty check: the generator must reach at least
//! twice against the sink what it measures against a broker, or the run says so).
//!
//! Answers ApiVersions, Metadata (one broker: itself; every requested topic with
//! [`NullSinkConfig::partitions`] partitions), InitProducerId (fresh ids, for idempotent clients)
//! and Produce (acks≠0: success, base offsets increasing per partition by each batch's record
//! count, read from the batch headers without a CRC check; acks=0: no response). Plain std threads,
//! one per connection: it must stay cheaper than any broker, not be one.
//!
//! Owns only this answering loop and its counters. Must not store records, validate them beyond
//! walking batch headers (the broker's rules are `wire::batch`'s), or answer an API it did not
//! advertise: anything else closes the connection.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use futures::io::AllowStdIo;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, MetadataRequest, MetadataResponse, ProduceResponse,
    ProducerId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use wire::batch::BatchHeader;
use wire::error_code::{CORRUPT_MESSAGE, UNKNOWN_TOPIC_OR_PARTITION, UNSUPPORTED_VERSION};
use wire::protocol::frame::{read_frame, REQUEST_BYTES_MAX_DEFAULT};
use wire::protocol::header::{parse_request, RequestHeader};
use wire::protocol::{decode_body, encode_response, ProtocolError, ResponseFrame};

/// (API, lowest, highest version) the sink answers.
const APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 9),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::InitProducerId, 0, 4),
    // Advertised, never answered (a Fetch closes the connection): librdkafka enables record
    // batches v2 only when the broker lists Fetch v4+ beside Produce v3+ (its MSGVER2 feature),
    // and falls back to the v0 message format otherwise.
    (ApiKey::Fetch, 4, 12),
];
const NODE_ID: i32 = 0;

/// Errors of starting the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("null sink: {op}: {source}")]
    Io {
        op: &'static str,
        source: std::io::Error,
    },
}

/// Where the sink listens and what it reports.
#[derive(Debug, Clone)]
pub struct NullSinkConfig {
    /// Address to bind (port 0: any free port).
    pub listen: SocketAddr,
    /// Partitions of every topic.
    pub partitions: u32,
}

/// What the sink has acknowledged so far.
#[derive(Debug, Default)]
pub struct SinkCounters {
    pub requests: AtomicU64,
    pub batches: AtomicU64,
    pub records: AtomicU64,
    pub bytes: AtomicU64,
}

struct Shared {
    config: NullSinkConfig,
    addr: SocketAddr,
    stopping: AtomicBool,
    counters: SinkCounters,
    /// Next offset of each (topic, partition).
    offsets: Mutex<HashMap<(String, i32), i64>>,
    topics: Mutex<Vec<String>>,
    next_producer_id: AtomicI64,
    connections: Mutex<Vec<TcpStream>>,
}

/// A running null sink; [`NullSink::stop`] (or drop) closes it and its connections.
pub struct NullSink {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl NullSink {
    pub fn start(config: NullSinkConfig) -> Result<NullSink, SinkError> {
        let listener = TcpListener::bind(config.listen)
            .map_err(|source| SinkError::Io { op: "bind", source })?;
        let addr = listener.local_addr().map_err(|source| SinkError::Io {
            op: "local_addr",
            source,
        })?;
        let shared = Arc::new(Shared {
            config,
            addr,
            stopping: AtomicBool::new(false),
            counters: SinkCounters::default(),
            offsets: Mutex::new(HashMap::new()),
            topics: Mutex::new(Vec::new()),
            next_producer_id: AtomicI64::new(1000),
            connections: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new()
            .name("null-sink-accept".into())
            .spawn(move || accept_loop(listener, s))
            .map_err(|source| SinkError::Io {
                op: "spawn",
                source,
            })?;
        Ok(NullSink {
            shared,
            accept: Some(accept),
        })
    }

    /// The bound address (what clients bootstrap from).
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    pub fn counters(&self) -> &SinkCounters {
        &self.shared.counters
    }

    /// Next offset the sink would give `topic`/`partition` (records acknowledged there so far).
    pub fn partition_end(&self, topic: &str, partition: i32) -> i64 {
        lock(&self.shared.offsets)
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or(0)
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop with one last connection.
        let _ = TcpStream::connect(self.shared.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for c in lock(&self.shared.connections).drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for NullSink {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.shutdown();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let _ = stream.set_nodelay(true);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.connections).push(clone);
        }
        let s = shared.clone();
        let _ = std::thread::Builder::new()
            .name("null-sink-conn".into())
            .spawn(move || {
                // Any error ends this connection only.
                let _ = serve(stream, &s);
            });
    }
}

/// Why the sink ended one connection.
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error("{api:?} v{version} is not answered")]
    NotAnswered { api: ApiKey, version: i16 },
    #[error("writing a response: {0}")]
    Write(#[from] std::io::Error),
}

fn serve(stream: TcpStream, shared: &Shared) -> Result<(), ConnectionError> {
    let mut stream = AllowStdIo::new(stream);
    loop {
        let next = futures::executor::block_on(read_frame(&mut stream, REQUEST_BYTES_MAX_DEFAULT));
        let Some(frame) = next? else {
            return Ok(()); // closed
        };
        let request = parse_request(frame)?;
        shared.counters.requests.fetch_add(1, Ordering::Relaxed);
        let Some(response) = answer(shared, &request.header, request.body)? else {
            continue; // acks=0
        };
        stream.get_mut().write_all(&response)?;
    }
}

fn answer(
    shared: &Shared,
    h: &RequestHeader,
    body: Bytes,
) -> Result<Option<Vec<u8>>, ConnectionError> {
    let supported = APIS
        .iter()
        .find(|(k, _, _)| *k == h.api_key)
        .filter(|(_, min, max)| (*min..=*max).contains(&h.api_version));
    let encoded: Result<ResponseFrame, _> = match h.api_key {
        ApiKey::ApiVersions => {
            let keys = APIS
                .iter()
                .map(|(k, min, max)| {
                    ApiVersion::default()
                        .with_api_key(*k as i16)
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect();
            // Defaults leave every tagged field out (see wire::protocol::api_versions).
            let response = ApiVersionsResponse::default().with_api_keys(keys);
            if supported.is_some() {
                encode_response(h, &response)
            } else {
                let v0 = RequestHeader {
                    api_version: 0,
                    ..h.clone()
                };
                encode_response(&v0, &response.with_error_code(UNSUPPORTED_VERSION))
            }
        }
        _ if supported.is_none() => {
            return Err(ConnectionError::NotAnswered {
                api: h.api_key,
                version: h.api_version,
            })
        }
        ApiKey::Metadata => {
            let request: MetadataRequest = decode_body("Metadata", h.api_version, body)?;
            encode_response(h, &metadata(shared, h.api_version, request))
        }
        ApiKey::InitProducerId => {
            let id = shared.next_producer_id.fetch_add(1, Ordering::Relaxed);
            let response = InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0);
            encode_response(h, &response)
        }
        ApiKey::Produce => {
            let request = wire::protocol::produce::parse(body, h.api_version)?;
            let response = produce(shared, h.api_version, request);
            match response {
                None => return Ok(None),
                Some(r) => encode_response(h, &r),
            }
        }
        other => {
            return Err(ConnectionError::NotAnswered {
                api: other,
                version: h.api_version,
            })
        }
    };
    Ok(Some(encoded?.to_vec()))
}

fn metadata(shared: &Shared, version: i16, request: MetadataRequest) -> MetadataResponse {
    let mut known = lock(&shared.topics);
    let names: Vec<String> = match request.topics {
        Some(list) if !(list.is_empty() && version == 0) => list
            .into_iter()
            .filter_map(|t| t.name.map(|n| n.0.to_string()))
            .collect(),
        _ => known.clone(),
    };
    for n in &names {
        if !known.contains(n) {
            known.push(n.clone());
        }
    }
    drop(known);
    let node = BrokerId(NODE_ID);
    let topics = names
        .into_iter()
        .map(|name| {
            MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name))))
                .with_partitions(
                    (0..shared.config.partitions as i32)
                        .map(|i| {
                            MetadataResponsePartition::default()
                                .with_partition_index(i)
                                .with_leader_id(node)
                                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                                .with_replica_nodes(vec![node])
                                .with_isr_nodes(vec![node])
                        })
                        .collect(),
                )
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(node)
            .with_host(StrBytes::from_string(shared.addr.ip().to_string()))
            .with_port(i32::from(shared.addr.port()))])
        .with_cluster_id((version >= 2).then(|| StrBytes::from_static_str("null-sink")))
        .with_controller_id(if version >= 1 { node } else { BrokerId(-1) })
        .with_topics(topics)
}

/// Counts the records of a record set from its batch headers (no CRC check: the sink is a
/// ceiling, not a validator). `None` if the headers do not chain.
fn count_records(mut records: &[u8]) -> Option<(u64, u64)> {
    let (mut batches, mut count) = (0u64, 0u64);
    while !records.is_empty() {
        let h = BatchHeader::parse(records)?;
        let len = h.total_len().filter(|&l| l <= records.len())?;
        count += u64::try_from(h.last_offset_delta).ok()? + 1;
        batches += 1;
        records = &records[len..];
    }
    Some((batches, count))
}

fn produce(
    shared: &Shared,
    version: i16,
    request: wire::protocol::produce::ProduceRequest,
) -> Option<ProduceResponse> {
    let c = &shared.counters;
    let mut responses = Vec::with_capacity(request.topics.len());
    for topic in request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let mut response = PartitionProduceResponse::default()
                .with_index(p.index)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(if version >= 5 { 0 } else { -1 });
            let records = p.records.unwrap_or_default();
            if p.index < 0 || p.index as u32 >= shared.config.partitions {
                response = response
                    .with_error_code(UNKNOWN_TOPIC_OR_PARTITION)
                    .with_base_offset(-1);
            } else if let Some((batches, n)) = count_records(&records) {
                let base = {
                    let mut offsets = lock(&shared.offsets);
                    let next = offsets.entry((topic.name.clone(), p.index)).or_insert(0);
                    let base = *next;
                    *next += n as i64;
                    base
                };
                c.batches.fetch_add(batches, Ordering::Relaxed);
                c.records.fetch_add(n, Ordering::Relaxed);
                c.bytes.fetch_add(records.len() as u64, Ordering::Relaxed);
                response = response.with_base_offset(base);
            } else {
                response = response
                    .with_error_code(CORRUPT_MESSAGE)
                    .with_base_offset(-1);
            }
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_string(topic.name)))
                .with_partition_responses(partitions),
        );
    }
    (request.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
