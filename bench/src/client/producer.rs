//! producer — the load-generating Kafka producer behind `weir bench produce`: Kafka's batching
//! semantics (batch.size, linger.ms, buffer.memory, max.in.flight.requests.per.connection, acks,
//! compression.type and level, the default partitioner) over pipelined connections, each on a
//! glommio executor, with HDR histograms of publish latency merged across connections.
//!
//! One connection is one producer client (OpenMessaging Benchmark's model): its own accumulator
//! (one open batch per partition), its own sticky partitioner, and up to max.in.flight Produce
//! requests outstanding. Publish latency of a record is send (the moment it entered the
//! accumulator) → acknowledgement (the response arriving; with acks=0, the request written), in
//! microseconds, as the Java producer's callback would see it. The generator is closed-loop: it
//! offers records as fast as buffer.memory lets it, so this measures the maximum rate.
//!
//! Owns the client side of Produce and Metadata. Must not read argv (the cli does) and must not
//! depend on the broker's internals: only the wire protocol, so it measures any Kafka-compatible
//! broker. Not yet (issue #7): retries, delivery.timeout.ms, idempotence, max.block.ms, several
//! brokers (every partition's leader must be one broker), publish delay / rate limiting.

use std::collections::VecDeque;
use std::net::{TcpStream as StdTcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use engine::protocol::frame::{read_frame, REQUEST_BYTES_MAX_DEFAULT};
use futures::channel::mpsc;
use futures::io::AllowStdIo;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use hdrhistogram::Histogram;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde::{Deserialize, Serialize};

use super::batch::{BatchBuilder, BatchError, Compression, ProducerFields};
use super::partitioner::Partitioner;
use crate::progress::{Live, LiveRecorder, RunHistograms};

const PRODUCE_VERSION: i16 = 7;
const METADATA_VERSION: i16 = 4;

/// Errors of a producer run.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("metadata: {0}")]
    Metadata(String),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("bad producer configuration: {0}")]
    Config(String),
    #[error("glommio executor: {0}")]
    Executor(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProducerError {
    let what = what.into();
    move |source| ProducerError::Io { what, source }
}

/// A producer run, with Kafka's names where Kafka has them.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// bootstrap.servers (one host:port).
    pub bootstrap: String,
    pub topic: String,
    /// Records to send in all.
    pub records: u64,
    /// Offered rate in records/s over all connections; `None`: as fast as buffer.memory allows
    /// (closed loop). With a rate, each record has an intended send time and the lag behind it is
    /// the publish delay (what coordinated omission hides).
    pub rate: Option<f64>,
    /// Value bytes of each record.
    pub record_size: usize,
    /// Keys: `None` null keys (sticky partitioning), `Some(n)`: `key-{i % n}` (murmur2).
    pub keys: Option<u64>,
    /// acks: 0, 1 or -1 (all).
    pub acks: i16,
    /// linger.ms
    pub linger: Duration,
    /// batch.size (uncompressed bytes of one batch).
    pub batch_size: usize,
    /// compression.type and compression.<codec>.level (`None`: Kafka's default).
    pub compression: Compression,
    pub compression_level: Option<i32>,
    /// max.in.flight.requests.per.connection
    pub max_in_flight: usize,
    /// buffer.memory, per connection (each connection is one producer client).
    pub buffer_memory: usize,
    /// request.timeout.ms, sent to the broker as the Produce timeout.
    pub request_timeout_ms: i32,
    /// Connections (producer clients) in all, spread over `executors`.
    pub connections: usize,
    /// glommio executors (threads), one connection group each.
    pub executors: usize,
    pub client_id: String,
    /// Record values to cycle through (`None`: 64 JSON-like values of record_size bytes). Hook
    /// for `bench::payload` (workloads).
    pub payloads: Option<Arc<Vec<Vec<u8>>>>,
    /// Live counters, stop flag and final histograms (`bench::progress`), if anyone watches.
    pub live: Option<Arc<Live>>,
}

impl ProducerConfig {
    /// Kafka's producer defaults for everything but the target.
    pub fn new(bootstrap: &str, topic: &str) -> ProducerConfig {
        ProducerConfig {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            records: 1_000_000,
            rate: None,
            record_size: 1024,
            keys: None,
            acks: -1,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            compression: Compression::None,
            compression_level: None,
            max_in_flight: 5,
            buffer_memory: 32 << 20,
            request_timeout_ms: 30_000,
            connections: 1,
            executors: 1,
            client_id: "weir-bench".to_string(),
            payloads: None,
            live: None,
        }
    }

    fn check(&self) -> Result<(), ProducerError> {
        let bad = |s: &str| Err(ProducerError::Config(s.to_string()));
        if ![0, 1, -1].contains(&self.acks) {
            return bad("acks must be 0, 1 or all (-1)");
        }
        if self.connections == 0 || self.executors == 0 || self.max_in_flight == 0 {
            return bad("connections, executors and max.in.flight must be at least 1");
        }
        if self.batch_size == 0 || self.buffer_memory < self.batch_size {
            return bad("batch.size must be at least 1 and buffer.memory at least batch.size");
        }
        if self.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
            return bad("rate must be a positive number of records/s");
        }
        if self.keys == Some(0) {
            return bad("keys must be at least 1");
        }
        Ok(())
    }
}

/// Latency percentiles in milliseconds, from one merged HDR histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p75_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub p99_99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p75_ms: ms(h.value_at_quantile(0.75)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p99_9_ms: ms(h.value_at_quantile(0.999)),
            p99_99_ms: ms(h.value_at_quantile(0.9999)),
            max_ms: ms(h.max()),
        }
    }
}

/// The result of one run (the JSON `weir bench produce --json` writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProduceReport {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: u32,
    pub connections: usize,
    pub acks: i16,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub compression: Compression,
    pub record_size: usize,
    pub records_acked: u64,
    pub records_failed: u64,
    pub batches: u64,
    pub requests: u64,
    pub elapsed_s: f64,
    pub records_per_s: f64,
    /// Record value bytes per second (what the user asked to move), in MB/s (10^6).
    pub value_mb_per_s: f64,
    /// Batch bytes on the wire (compressed) per second, in MB/s.
    pub wire_mb_per_s: f64,
    /// Uncompressed batch bytes / batch bytes sent.
    pub compression_ratio: f64,
    pub mean_records_per_batch: f64,
    /// Offered rate (records/s), `None` for a closed-loop run.
    pub rate: Option<f64>,
    /// Send → ack, per record.
    pub publish_latency: Latency,
    /// Intended send time → actual send, per record; only with a rate.
    pub publish_delay: Option<Latency>,
    /// First error code seen from the broker, if any.
    pub first_error: Option<i16>,
}

impl ProduceReport {
    /// The text summary.
    pub fn summary(&self) -> String {
        let l = &self.publish_latency;
        let delay = self.publish_delay.as_ref().map_or(String::new(), |d| {
            format!(
                "delay     p50 {:.2} ms  p99 {:.2}  p99.9 {:.2}  max {:.2}  (publish delay behind {:.0} records/s offered)\n",
                d.p50_ms,
                d.p99_ms,
                d.p99_9_ms,
                d.max_ms,
                self.rate.unwrap_or(0.0)
            )
        });
        let text = format!(
            "produce {topic} ({partitions} partitions) via {bootstrap}: {acked} records acked, {failed} failed in {elapsed:.2} s\n\
             rate      {rps:.0} records/s  {vmb:.1} MB/s values  {wmb:.1} MB/s on the wire  ({codec}, ratio {ratio:.2}, {rpb:.1} records/batch, {requests} requests)\n\
             latency   p50 {p50:.2} ms  p75 {p75:.2}  p95 {p95:.2}  p99 {p99:.2}  p99.9 {p999:.2}  p99.99 {p9999:.2}  max {max:.2}  (mean {mean:.2})\n",
            topic = self.topic,
            partitions = self.partitions,
            bootstrap = self.bootstrap,
            acked = self.records_acked,
            failed = self.records_failed,
            elapsed = self.elapsed_s,
            rps = self.records_per_s,
            vmb = self.value_mb_per_s,
            wmb = self.wire_mb_per_s,
            codec = self.compression,
            ratio = self.compression_ratio,
            rpb = self.mean_records_per_batch,
            requests = self.requests,
            p50 = l.p50_ms,
            p75 = l.p75_ms,
            p95 = l.p95_ms,
            p99 = l.p99_ms,
            p999 = l.p99_9_ms,
            p9999 = l.p99_99_ms,
            max = l.max_ms,
            mean = l.mean_ms,
        );
        text + &delay
    }
}

/// What one connection measured.
struct ConnResult {
    latency: Histogram<u64>,
    delay: Histogram<u64>,
    acked: u64,
    failed: u64,
    batches: u64,
    requests: u64,
    uncompressed: u64,
    wire: u64,
    first_error: Option<i16>,
    live: Option<LiveRecorder>,
}

impl ConnResult {
    fn new() -> ConnResult {
        ConnResult {
            latency: new_histogram(),
            delay: new_histogram(),
            acked: 0,
            failed: 0,
            batches: 0,
            requests: 0,
            uncompressed: 0,
            wire: 0,
            first_error: None,
            live: None,
        }
    }

    /// Adds another connection's counts and histograms to these.
    fn merge(&mut self, r: ConnResult) -> Result<(), ProducerError> {
        let merging = |e| ProducerError::Protocol(format!("merging histograms: {e}"));
        self.latency.add(&r.latency).map_err(merging)?;
        self.delay.add(&r.delay).map_err(merging)?;
        self.acked += r.acked;
        self.failed += r.failed;
        self.batches += r.batches;
        self.requests += r.requests;
        self.uncompressed += r.uncompressed;
        self.wire += r.wire;
        self.first_error = self.first_error.or(r.first_error);
        Ok(())
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 1 h at 3 significant digits: constant, valid bounds (not input).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Runs the producer to completion and reports.
pub fn run(config: ProducerConfig) -> Result<ProduceReport, ProducerError> {
    config.check()?;
    let (leader, partitions) = metadata(&config)?;
    let start = Instant::now();
    let mut threads = Vec::new();
    let per_exec = split(config.connections as u64, config.executors as u64);
    let per_conn = split(config.records, config.connections as u64);
    let mut conn_index = 0usize;
    for (e, conns) in per_exec.into_iter().enumerate() {
        let mine: Vec<(usize, u64)> = (0..conns as usize)
            .map(|i| (conn_index + i, per_conn[conn_index + i]))
            .collect();
        conn_index += conns as usize;
        let config = config.clone();
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name(&format!("bench-produce-{e}"))
            .spawn(move || async move {
                let payloads = match &config.payloads {
                    Some(p) => Rc::new(p.as_ref().clone()),
                    None => Rc::new(payloads(config.record_size)),
                };
                let tasks = mine.into_iter().map(|(index, records)| {
                    let config = config.clone();
                    let payloads = payloads.clone();
                    glommio::spawn_local(async move {
                        connection(
                            &config, leader, partitions, index, records, &payloads, start,
                        )
                        .await
                    })
                });
                let tasks: Vec<_> = tasks.collect();
                futures::future::join_all(tasks).await
            })
            .map_err(|e| ProducerError::Executor(e.to_string()))?;
        threads.push(handle);
    }
    let mut results = Vec::new();
    for t in threads {
        let out = t
            .join()
            .map_err(|e| ProducerError::Executor(e.to_string()))?;
        for r in out {
            results.push(r?);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut total = ConnResult::new();
    for r in results {
        total.merge(r)?;
    }
    if let Some(live) = &config.live {
        live.finish(RunHistograms {
            latency: total.latency.clone(),
            delay: total.delay.clone(),
        });
    }
    let per_s = |n: f64| if elapsed > 0.0 { n / elapsed } else { 0.0 };
    Ok(ProduceReport {
        bootstrap: config.bootstrap.clone(),
        topic: config.topic.clone(),
        partitions,
        connections: config.connections,
        acks: config.acks,
        linger_ms: config.linger.as_millis() as u64,
        batch_size: config.batch_size,
        compression: config.compression,
        record_size: config.record_size,
        records_acked: total.acked,
        records_failed: total.failed,
        batches: total.batches,
        requests: total.requests,
        elapsed_s: elapsed,
        records_per_s: per_s(total.acked as f64),
        value_mb_per_s: per_s((total.acked * config.record_size as u64) as f64) / 1e6,
        wire_mb_per_s: per_s(total.wire as f64) / 1e6,
        compression_ratio: if total.wire > 0 {
            total.uncompressed as f64 / total.wire as f64
        } else {
            0.0
        },
        mean_records_per_batch: if total.batches > 0 {
            (total.acked + total.failed) as f64 / total.batches as f64
        } else {
            0.0
        },
        rate: config.rate,
        publish_latency: Latency::of(&total.latency),
        publish_delay: config.rate.map(|_| Latency::of(&total.delay)),
        first_error: total.first_error,
    })
}

/// `n` split into `parts` near-equal parts.
fn split(n: u64, parts: u64) -> Vec<u64> {
    (0..parts)
        .map(|i| n / parts + u64::from(i < n % parts))
        .collect()
}

/// JSON-like record values (compressible as real events are), 64 of them to cycle through.
fn payloads(size: usize) -> Vec<Vec<u8>> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    (0..64)
        .map(|i| {
            let mut v = Vec::with_capacity(size + 64);
            while v.len() < size {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                v.extend_from_slice(
                    format!(
                        "{{\"id\":{},\"user\":\"u{}\",\"score\":{},\"kind\":\"event-{}\"}},",
                        seed % 1_000_000,
                        seed % 5_000,
                        (seed >> 20) % 100_000,
                        i % 7
                    )
                    .as_bytes(),
                );
            }
            v.truncate(size);
            v
        })
        .collect()
}

fn request_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &impl Encodable,
) -> Result<Bytes, ProducerError> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut out = BytesMut::with_capacity(256);
    out.extend_from_slice(&[0; 4]);
    header
        .encode(&mut out, api.request_header_version(version))
        .map_err(|e| ProducerError::Protocol(format!("{api:?} request header: {e:#}")))?;
    body.encode(&mut out, version)
        .map_err(|e| ProducerError::Protocol(format!("{api:?} v{version} request: {e:#}")))?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

/// Splits a response frame into its correlation id and body.
fn response_body(api: ApiKey, version: i16, frame: Bytes) -> Result<(i32, Bytes), ProducerError> {
    let mut frame = frame;
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .map_err(|e| ProducerError::Protocol(format!("{api:?} response header: {e:#}")))?;
    Ok((header.correlation_id, frame))
}

/// Metadata of the topic, by blocking I/O before the run: the leader (one broker) and the
/// partition count.
fn metadata(config: &ProducerConfig) -> Result<(std::net::SocketAddr, u32), ProducerError> {
    use std::io::Write;
    let addr = config
        .bootstrap
        .to_socket_addrs()
        .map_err(io(format!("resolving {}", config.bootstrap)))?
        .next()
        .ok_or_else(|| {
            ProducerError::Metadata(format!("{} resolves to nothing", config.bootstrap))
        })?;
    let mut stream = StdTcpStream::connect(addr).map_err(io(format!("connecting {addr}")))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io("socket timeout"))?;
    // Auto-created topics may report LEADER_NOT_AVAILABLE at first: ask a few times.
    for attempt in 0..20 {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(config.topic.clone())),
            ))]))
            .with_allow_auto_topic_creation(true);
        let frame = request_frame(
            ApiKey::Metadata,
            METADATA_VERSION,
            attempt,
            &config.client_id,
            &request,
        )?;
        stream.write_all(&frame).map_err(io("sending Metadata"))?;
        let body = futures::executor::block_on(read_frame(
            &mut AllowStdIo::new(&mut stream),
            REQUEST_BYTES_MAX_DEFAULT,
        ))
        .map_err(|e| ProducerError::Protocol(format!("reading Metadata: {e}")))?
        .ok_or_else(|| ProducerError::Protocol("connection closed before Metadata".into()))?;
        let (_, mut body) = response_body(ApiKey::Metadata, METADATA_VERSION, body)?;
        let response = MetadataResponse::decode(&mut body, METADATA_VERSION)
            .map_err(|e| ProducerError::Metadata(format!("decoding: {e:#}")))?;
        let topic = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(config.topic.as_str()))
            .ok_or_else(|| {
                ProducerError::Metadata(format!("no topic {} in the answer", config.topic))
            })?;
        if topic.error_code != 0 || topic.partitions.is_empty() {
            if attempt < 19 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            return Err(ProducerError::Metadata(format!(
                "topic {}: error code {}",
                config.topic, topic.error_code
            )));
        }
        let leaders: std::collections::BTreeSet<i32> =
            topic.partitions.iter().map(|p| p.leader_id.0).collect();
        if leaders.len() != 1 {
            return Err(ProducerError::Metadata(format!(
                "partitions led by {} brokers: several brokers are not supported yet",
                leaders.len()
            )));
        }
        let leader_id = *leaders.iter().next().unwrap_or(&-1);
        let broker = response
            .brokers
            .iter()
            .find(|b| b.node_id.0 == leader_id)
            .ok_or_else(|| ProducerError::Metadata(format!("leader {leader_id} not in brokers")))?;
        let port = u16::try_from(broker.port)
            .map_err(|_| ProducerError::Metadata(format!("port {}", broker.port)))?;
        let leader = (broker.host.as_str(), port)
            .to_socket_addrs()
            .map_err(io(format!("resolving leader {}", broker.host.as_str())))?
            .next()
            .ok_or_else(|| ProducerError::Metadata("leader resolves to nothing".into()))?;
        return Ok((leader, topic.partitions.len() as u32));
    }
    Err(ProducerError::Metadata("unreachable".into()))
}

/// A batch being filled for one partition.
struct Open {
    builder: BatchBuilder,
    created: Instant,
    /// Each record's send time, µs since the run started.
    sent_us: Vec<u64>,
    /// buffer.memory this batch holds: the sum of the estimates charged when its records were
    /// offered (released exactly, so the accounting cannot drift).
    reserved: usize,
}

/// A closed batch waiting for a request.
struct Ready {
    partition: u32,
    open: Open,
}

/// Closes `partition`'s open batch: it joins the ready queue and the partitioner moves on.
fn close(
    open: &mut [Option<Open>],
    ready: &mut VecDeque<Ready>,
    partitioner: &mut Partitioner,
    partition: u32,
) {
    if let Some(o) = open[partition as usize].take() {
        ready.push_back(Ready { partition, open: o });
        partitioner.on_new_batch(partition);
    }
}

/// A request on the wire.
struct InFlight {
    correlation_id: i32,
    /// (partition, send times, accumulator bytes to release).
    batches: Vec<(u32, Vec<u64>, usize)>,
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    config: &ProducerConfig,
    leader: std::net::SocketAddr,
    partitions: u32,
    index: usize,
    records: u64,
    payloads: &[Vec<u8>],
    start: Instant,
) -> Result<ConnResult, ProducerError> {
    let stream = glommio::net::TcpStream::connect(leader)
        .await
        .map_err(|e| ProducerError::Io {
            what: format!("connecting {leader}"),
            source: e.into(),
        })?;
    stream.set_nodelay(true).map_err(|e| ProducerError::Io {
        what: "TCP_NODELAY".into(),
        source: e.into(),
    })?;
    let (mut reader, mut writer) = stream.split();
    let (tx, mut rx) = mpsc::unbounded::<Result<Bytes, String>>();
    let _reader_task = glommio::spawn_local(async move {
        loop {
            let frame = match read_frame(&mut reader, REQUEST_BYTES_MAX_DEFAULT).await {
                Ok(Some(frame)) => Ok(frame),
                Ok(None) => Err("connection closed".to_string()),
                Err(e) => Err(format!("reading a response: {e}")),
            };
            let failed = frame.is_err();
            if tx.unbounded_send(frame).is_err() || failed {
                return;
            }
        }
    })
    .detach();

    let mut result = ConnResult::new();
    result.live = config.live.as_ref().map(|l| l.recorder());
    let mut partitioner = Partitioner::new(partitions, 0x9e37_79b9_7f4a_7c15 ^ index as u64);
    let mut open: Vec<Option<Open>> = (0..partitions).map(|_| None).collect();
    let mut ready: VecDeque<Ready> = VecDeque::new();
    let mut in_flight: VecDeque<InFlight> = VecDeque::new();
    let mut buffered = 0usize;
    let mut next_record = 0u64;
    let mut correlation_id = 0i32;
    let now_us = |start: Instant| start.elapsed().as_micros() as u64;
    let record_cost =
        |value: &[u8], key: Option<&[u8]>| BatchBuilder::record_size(key, Some(value), &[]);
    let mut key_buf = String::new();
    let epoch0 = epoch_ms_at(start);
    // Intended send time of this connection's k-th record, µs since start.
    let interval_us = config.rate.map(|r| config.connections as f64 * 1e6 / r);
    let intended_us = |k: u64| interval_us.map(|i| (k as f64 * i) as u64);
    // Whether the k-th record's intended time has come (always, in a closed loop).
    let due = |k: u64| match intended_us(k) {
        Some(t) => t <= now_us(start),
        None => true,
    };

    let mut stopped = false;
    loop {
        stopped = stopped || result.live.as_mut().is_some_and(LiveRecorder::tick);
        // 1. Responses that have arrived.
        while let Ok(frame) = rx.try_recv() {
            let frame = frame.map_err(ProducerError::Protocol)?;
            on_response(frame, &mut in_flight, &mut result, &mut buffered, start)?;
        }
        // 2. Offer records while buffer.memory allows, at most one batch's worth per turn.
        let mut offered = 0usize;
        while next_record < records
            && !stopped
            && buffered < config.buffer_memory
            && offered < config.batch_size
            && due(next_record)
        {
            let value = &payloads[(next_record % payloads.len() as u64) as usize];
            let key = config.keys.map(|n| {
                key_buf.clear();
                use std::fmt::Write as _;
                let _ = write!(key_buf, "key-{}", (next_record + index as u64 * 7919) % n);
                key_buf.as_bytes()
            });
            let partition = partitioner.partition(key);
            let cost = record_cost(value, key);
            // Close the partition's batch if this record would overflow it (Kafka: a record larger
            // than batch.size still gets a batch of its own).
            let full = open[partition as usize]
                .as_ref()
                .is_some_and(|o| o.builder.size() + cost > config.batch_size);
            if full {
                close(&mut open, &mut ready, &mut partitioner, partition);
                continue; // the sticky partition may have moved
            }
            let t = now_us(start);
            let ts = epoch0 + (t / 1000) as i64;
            let o = open[partition as usize].get_or_insert_with(|| Open {
                builder: BatchBuilder::with_capacity(ts, config.batch_size),
                created: Instant::now(),
                sent_us: Vec::new(),
                reserved: 0,
            });
            if let Some(intended) = intended_us(next_record) {
                let _ = result.delay.record(t.saturating_sub(intended));
            }
            o.builder.append(ts, key, Some(value), &[]);
            o.sent_us.push(t);
            o.reserved += cost;
            buffered += cost;
            offered += cost;
            next_record += 1;
        }
        // 3. Batches whose linger expired, or all of them once nothing more will come.
        let done_offering = next_record >= records || stopped;
        let mut next_deadline: Option<Instant> = None;
        for p in 0..partitions {
            let Some(created) = open[p as usize].as_ref().map(|o| o.created) else {
                continue;
            };
            if done_offering || created.elapsed() >= config.linger {
                close(&mut open, &mut ready, &mut partitioner, p);
            } else {
                let d = created + config.linger;
                next_deadline = Some(next_deadline.map_or(d, |n| n.min(d)));
            }
        }
        if let Some(t) = intended_us(next_record).filter(|_| !done_offering) {
            let d = start + Duration::from_micros(t);
            next_deadline = Some(next_deadline.map_or(d, |n| n.min(d)));
        }
        // 4. Send one request with at most one ready batch per partition.
        if !ready.is_empty() && in_flight.len() < config.max_in_flight {
            let mut taken: Vec<Ready> = Vec::new();
            let mut rest = VecDeque::new();
            while let Some(r) = ready.pop_front() {
                if taken.iter().any(|t| t.partition == r.partition) {
                    rest.push_back(r);
                } else {
                    taken.push(r);
                }
            }
            ready = rest;
            let mut partition_data = Vec::with_capacity(taken.len());
            let mut batches = Vec::with_capacity(taken.len());
            for r in taken {
                let bytes = r.open.builder.build(
                    config.compression,
                    config.compression_level,
                    ProducerFields::NONE,
                )?;
                result.uncompressed += r.open.builder.size() as u64;
                result.wire += bytes.len() as u64;
                result.batches += 1;
                let release = r.open.reserved;
                partition_data.push(
                    PartitionProduceData::default()
                        .with_index(r.partition as i32)
                        .with_records(Some(Bytes::from(bytes))),
                );
                batches.push((r.partition, r.open.sent_us, release));
            }
            let request = ProduceRequest::default()
                .with_acks(config.acks)
                .with_timeout_ms(config.request_timeout_ms)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(config.topic.clone())))
                    .with_partition_data(partition_data)]);
            correlation_id = correlation_id.wrapping_add(1);
            let frame = request_frame(
                ApiKey::Produce,
                PRODUCE_VERSION,
                correlation_id,
                &config.client_id,
                &request,
            )?;
            writer
                .write_all(&frame)
                .await
                .map_err(io("sending Produce"))?;
            result.requests += 1;
            if config.acks == 0 {
                // No response: acknowledged once written.
                let now = now_us(start);
                for (_, sent, release) in batches {
                    for t in sent {
                        let _ = result.latency.record(now.saturating_sub(t).max(1));
                        if let Some(l) = &mut result.live {
                            l.acked(now.saturating_sub(t));
                        }
                        result.acked += 1;
                    }
                    buffered = buffered.saturating_sub(release);
                }
            } else {
                in_flight.push_back(InFlight {
                    correlation_id,
                    batches,
                });
            }
            glommio::executor().yield_now().await;
            continue;
        }
        // 5. Done?
        let nothing_open = open.iter().all(Option::is_none);
        if done_offering && nothing_open && ready.is_empty() && in_flight.is_empty() {
            break;
        }
        // 6. Wait for a response or the next linger deadline when blocked; else offer more.
        let blocked = in_flight.len() >= config.max_in_flight
            || done_offering
            || buffered >= config.buffer_memory;
        if blocked || offered == 0 {
            // At least 50 µs: a zero timer completes without yielding, and behind the rate's
            // schedule with buffer.memory full (the next record's intended time already past)
            // this loop then spun forever without letting the reader task take a response.
            let wait = next_deadline
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_millis(100))
                .max(Duration::from_micros(50));
            if in_flight.is_empty() {
                glommio::timer::sleep(wait).await;
            } else {
                let sleep = Box::pin(glommio::timer::sleep(wait));
                match futures::future::select(rx.next(), sleep).await {
                    futures::future::Either::Left((Some(frame), _)) => {
                        let frame = frame.map_err(ProducerError::Protocol)?;
                        on_response(frame, &mut in_flight, &mut result, &mut buffered, start)?;
                    }
                    futures::future::Either::Left((None, _)) => {
                        return Err(ProducerError::Protocol("connection closed".into()));
                    }
                    futures::future::Either::Right(_) => {}
                }
            }
        } else {
            glommio::executor().yield_now().await;
        }
    }
    let _ = writer.close().await;
    Ok(result)
}

/// Wall-clock milliseconds at `start` (record timestamps are CreateTime, epoch ms).
fn epoch_ms_at(start: Instant) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    now - start.elapsed().as_millis() as i64
}

fn on_response(
    frame: Bytes,
    in_flight: &mut VecDeque<InFlight>,
    result: &mut ConnResult,
    buffered: &mut usize,
    start: Instant,
) -> Result<(), ProducerError> {
    let now = start.elapsed().as_micros() as u64;
    let (correlation_id, mut body) = response_body(ApiKey::Produce, PRODUCE_VERSION, frame)?;
    let request = in_flight
        .pop_front()
        .ok_or_else(|| ProducerError::Protocol("a response nobody asked for".into()))?;
    if request.correlation_id != correlation_id {
        return Err(ProducerError::Protocol(format!(
            "response {correlation_id} where {} was next",
            request.correlation_id
        )));
    }
    let response = ProduceResponse::decode(&mut body, PRODUCE_VERSION)
        .map_err(|e| ProducerError::Protocol(format!("Produce response: {e:#}")))?;
    if body.has_remaining() {
        return Err(ProducerError::Protocol(
            "trailing bytes in a Produce response".into(),
        ));
    }
    for (partition, sent, release) in request.batches {
        let code = response
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.index == partition as i32)
            .map_or(-1, |p| p.error_code);
        if code == 0 {
            for t in &sent {
                let _ = result.latency.record(now.saturating_sub(*t).max(1));
                if let Some(l) = &mut result.live {
                    l.acked(now.saturating_sub(*t));
                }
            }
            result.acked += sent.len() as u64;
        } else {
            result.failed += sent.len() as u64;
            result.first_error = result.first_error.or(Some(code));
        }
        *buffered = buffered.saturating_sub(release);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_evenly_and_completely() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(split(0, 1), vec![0]);
    }

    #[test]
    fn payloads_have_the_record_size_and_compress_like_text() {
        let p = payloads(1024);
        assert!(p.iter().all(|v| v.len() == 1024));
        let mut b = BatchBuilder::new(0);
        for v in &p {
            b.append(0, None, Some(v), &[]);
        }
        let lz4 = b
            .build(Compression::Lz4, None, ProducerFields::NONE)
            .unwrap();
        assert!(
            b.size() > lz4.len() * 3 / 2,
            "{} vs {}",
            b.size(),
            lz4.len()
        );
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let report = ProduceReport {
            bootstrap: "h:1".into(),
            topic: "t".into(),
            partitions: 3,
            connections: 2,
            acks: 1,
            linger_ms: 5,
            batch_size: 65536,
            compression: Compression::Lz4,
            record_size: 1024,
            records_acked: 10,
            records_failed: 0,
            batches: 2,
            requests: 2,
            elapsed_s: 0.5,
            records_per_s: 20.0,
            value_mb_per_s: 0.02,
            wire_mb_per_s: 0.01,
            compression_ratio: 2.0,
            mean_records_per_batch: 5.0,
            rate: Some(1000.0),
            publish_latency: Latency::of(&new_histogram()),
            publish_delay: Some(Latency::of(&new_histogram())),
            first_error: None,
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"compression\":\"lz4\""), "{json}");
        let back: ProduceReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
        assert!(report.summary().contains("p99.9"));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut c = ProducerConfig::new("h:1", "t");
        c.acks = 2;
        assert!(c.check().is_err());
        let mut c = ProducerConfig::new("h:1", "t");
        c.buffer_memory = 10;
        assert!(c.check().is_err());
        assert!(ProducerConfig::new("h:1", "t").check().is_ok());
    }
}
