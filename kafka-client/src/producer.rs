//! producer — the load-generating Kafka producer behind `weir bench produce` and the producing
//! half of `weir bench e2e`: Kafka's producer semantics and names (batch.size, linger.ms,
//! buffer.memory + max.block.ms, max.in.flight.requests.per.connection, acks, compression.type and
//! level, retries + retry.backoff.ms, delivery.timeout.ms, request.timeout.ms, enable.idempotence,
//! the default partitioner) on glommio executors, with HDR histograms of publish latency and
//! publish delay merged across clients.
//!
//! One client is one producer (OpenMessaging Benchmark's model): its own accumulator
//! (`accumulator`), its own sticky partitioner, one connection per partition leader (Metadata says
//! which broker leads each partition; several brokers are several connections), up to
//! max.in.flight Produce requests outstanding on each. Publish latency of a record is send (the
//! moment it entered the accumulator) → acknowledgement (the response arriving; with acks=0, the
//! request written), in microseconds, as the Java producer's callback sees it. With a rate each
//! record has an intended send time, and publish delay is intended → actual send (what coordinated
//! omission hides); time blocked on a full buffer.memory is part of it. Without a rate the
//! generator is closed-loop: it offers records as fast as buffer.memory lets it.
//!
//! Failures as Kafka's producer handles them: a retriable error (NOT_LEADER_OR_FOLLOWER,
//! LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, REQUEST_TIMED_OUT, a cut connection, a
//! request unanswered for request.timeout.ms …) requeues the batch after retry.backoff.ms and asks
//! Metadata again; a batch not acknowledged within delivery.timeout.ms of its creation fails
//! (counted as expired); a record that waits more than max.block.ms for buffer.memory fails
//! (counted as blocked). With enable.idempotence the client takes a producer id
//! (InitProducerId), numbers each partition's batches (base sequence in the batch header), resends
//! a failed batch with its original sequence before any later batch of its partition, and counts
//! DUPLICATE_SEQUENCE_NUMBER as acknowledged, so retries never duplicate a record. A numbered
//! batch that fails for good (expired, out of retries) leaves a gap in its partition's sequence:
//! once nothing is in flight the client bumps its epoch locally (KIP-360, as Kafka's client does
//! for an idempotent producer), restarts every partition's sequence at 0 and renumbers the
//! batches waiting for a retry (one whose earlier attempt was stored after all is then stored
//! twice: as with Kafka, idempotence holds within an epoch).
//!
//! Owns the client side of Produce, Metadata and InitProducerId. Must not read argv (the cli does)
//! and must not depend on the broker's internals: only the wire protocol, so it measures any
//! Kafka-compatible broker. Not done: transactions.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::wire::protocol::frame::{read_frame, REQUEST_BYTES_MAX_DEFAULT};
use bytes::{Buf, Bytes};
use futures::channel::mpsc;
use futures::{AsyncWriteExt, StreamExt};
use hdrhistogram::Histogram;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProduceRequest, ProduceResponse,
    TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use serde::{Deserialize, Serialize};

use crate::accumulator::{Accumulator, AccumulatorConfig, Append, OpenBatch};
use crate::batch::{BatchBuilder, BatchError, Compression, ProducerFields};
use crate::clock;
use crate::conn::{self, WireError};
use crate::metadata::{self, TopicMeta};
use crate::partitioner::Partitioner;
use crate::payloads;

const PRODUCE_VERSION: i16 = 7;
const INIT_PRODUCER_ID_VERSION: i16 = 1;

/// Kafka error codes the producer acts on.
pub mod code {
    pub use ::wire::error_code::*;
    /// Not a Kafka code: a batch that stayed unacknowledged past delivery.timeout.ms (the Java
    /// client's TimeoutException).
    pub const DELIVERY_TIMEOUT: i16 = -1001;
    /// Not a Kafka code: a record that waited past max.block.ms for buffer.memory.
    pub const BUFFER_EXHAUSTED: i16 = -1002;

    /// Whether Kafka's producer retries a batch that failed with `code`.
    pub fn retriable(code: i16) -> bool {
        matches!(
            code,
            CORRUPT_MESSAGE
                | UNKNOWN_TOPIC_OR_PARTITION
                | LEADER_NOT_AVAILABLE
                | NOT_LEADER_OR_FOLLOWER
                | REQUEST_TIMED_OUT
                | NETWORK_EXCEPTION
                | NOT_ENOUGH_REPLICAS
                | NOT_ENOUGH_REPLICAS_AFTER_APPEND
                | KAFKA_STORAGE_ERROR
                | UNKNOWN_LEADER_EPOCH
        )
    }

    /// Whether `code` means the client's Metadata is stale (ask again before retrying).
    pub fn stale_metadata(code: i16) -> bool {
        matches!(
            code,
            UNKNOWN_TOPIC_OR_PARTITION
                | LEADER_NOT_AVAILABLE
                | NOT_LEADER_OR_FOLLOWER
                | NETWORK_EXCEPTION
                | UNKNOWN_LEADER_EPOCH
        )
    }
}

/// Errors of a producer run (a failed record is counted in the report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// Connections, framing and Metadata (shared with the consumer).
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("bad producer configuration: {0}")]
    Config(String),
    #[error("glommio executor: {0}")]
    Executor(String),
    #[error("InitProducerId: {0}")]
    InitProducerId(String),
}

impl ProducerError {
    fn protocol(what: String) -> ProducerError {
        ProducerError::Wire(WireError::Protocol(what))
    }
}

/// A producer run, with Kafka's names where Kafka has them.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// bootstrap.servers (one host:port; the others are learnt from Metadata).
    pub bootstrap: String,
    pub topic: String,
    /// Records to send in all.
    pub records: u64,
    /// Offered rate in records/s over all clients; `None`: as fast as buffer.memory allows
    /// (closed loop). With a rate, each record has an intended send time and the lag behind it is
    /// the publish delay (what coordinated omission hides).
    pub rate: Option<f64>,
    /// Value bytes of each record.
    pub record_size: usize,
    /// Keys: `None` null keys (sticky partitioning), `Some(n)`: `key-{k}` for k < n (murmur2),
    /// cycled record after record or, with `random_keys`, drawn at random.
    pub keys: Option<u64>,
    /// Each record's key is drawn uniformly from the `keys` (OMB's RANDOM_NANO) instead of
    /// cycling through them (ROUND_ROBIN).
    pub random_keys: bool,
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
    /// buffer.memory, per client (each client is one producer).
    pub buffer_memory: usize,
    /// max.block.ms: how long a record may wait for buffer.memory before it fails.
    pub max_block: Duration,
    /// request.timeout.ms: sent as the Produce timeout; a request unanswered this long closes
    /// its connection and its batches are retried.
    pub request_timeout_ms: i32,
    /// delivery.timeout.ms: a batch unacknowledged this long after its creation fails.
    pub delivery_timeout: Duration,
    /// retries: resends of one batch at most.
    pub retries: u32,
    /// retry.backoff.ms
    pub retry_backoff: Duration,
    /// enable.idempotence (requires acks=all and max.in.flight ≤ 5, as in Kafka).
    pub idempotence: bool,
    /// Write the send time (µs since the Unix epoch, [`clock::epoch_us`], big-endian) into the
    /// first 8 bytes of each value, for end-to-end latency (`weir bench e2e`).
    pub stamp_send_time: bool,
    /// Clients (producers) in all, spread over `executors`.
    pub connections: usize,
    /// glommio executors (threads), one group of clients each.
    pub executors: usize,
    pub client_id: String,
    /// Record values to cycle through (`None`: [`payloads::FALLBACK_POOL_BYTES`] of distinct JSON-like
    /// values of record_size bytes), e.g. from a workload's payload generator. A pool should hold
    /// more bytes than any batch, or codecs find repeats real data would not have.
    pub payloads: Option<Arc<Vec<Vec<u8>>>>,
    /// Who watches the run live (a progress line, a timed run's stop), if anyone.
    pub live: Option<Arc<dyn LiveHook>>,
}

/// Live observation of a run, for a progress display or a timed run: each client gets its own
/// [`LiveClient`] (so recording needs no lock), and the merged histograms come at the end.
pub trait LiveHook: Send + Sync {
    /// The recorder of one client (called on the client's executor).
    fn client(self: Arc<Self>) -> Box<dyn LiveClient>;
    /// The run's merged histograms, once every client is done.
    fn finish(&self, histograms: &ProduceHistograms);
}

impl std::fmt::Debug for dyn LiveHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LiveHook")
    }
}

/// One client's live recorder.
pub trait LiveClient {
    /// Called on every turn of the client's loop; `true` asks it to stop offering records (the
    /// records already offered are still sent and acknowledged).
    fn tick(&mut self) -> bool;
    /// A record was acknowledged `latency_us` after it was sent.
    fn acked(&mut self, latency_us: u64);
    /// One record handed to the accumulator `delay_us` behind its intended send time (rated
    /// runs only).
    fn delayed(&mut self, _delay_us: u64) {}
}

impl ProducerConfig {
    /// Kafka's producer defaults for everything but the target (enable.idempotence off: Kafka
    /// turns it on by default only with acks=all).
    pub fn new(bootstrap: &str, topic: &str) -> ProducerConfig {
        ProducerConfig {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            records: 1_000_000,
            rate: None,
            record_size: 1024,
            keys: None,
            random_keys: false,
            acks: -1,
            linger: Duration::from_millis(5),
            batch_size: 16_384,
            compression: Compression::None,
            compression_level: None,
            max_in_flight: 5,
            buffer_memory: 32 << 20,
            max_block: Duration::from_millis(60_000),
            request_timeout_ms: 30_000,
            delivery_timeout: Duration::from_millis(120_000),
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            idempotence: false,
            stamp_send_time: false,
            connections: 1,
            executors: 1,
            client_id: "weir-bench".to_string(),
            payloads: None,
            live: None,
        }
    }

    pub(crate) fn check(&self) -> Result<(), ProducerError> {
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
        if self.request_timeout_ms <= 0 {
            return bad("request.timeout.ms must be positive");
        }
        // Kafka's ProducerConfig refuses the same.
        if self.delivery_timeout < self.linger + self.request_timeout() {
            return bad("delivery.timeout.ms must be at least linger.ms + request.timeout.ms");
        }
        if self.idempotence {
            if self.acks != -1 {
                return bad("enable.idempotence requires acks=all");
            }
            if self.max_in_flight > 5 {
                return bad(
                    "enable.idempotence requires max.in.flight.requests.per.connection ≤ 5",
                );
            }
            if self.retries == 0 {
                return bad("enable.idempotence requires retries > 0");
            }
        }
        if self.stamp_send_time && self.record_size < 8 {
            return bad("a send-time stamp needs records of at least 8 bytes");
        }
        Ok(())
    }

    fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(0) as u64)
    }
}

/// Latency percentiles in milliseconds, from one merged HDR histogram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p75_ms: f64,
    /// p90 (issue #7's list); absent in results written before it was added.
    #[serde(default)]
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p99_9_ms: f64,
    pub p99_99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// The summary of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: ms(h.value_at_quantile(0.50)),
            p75_ms: ms(h.value_at_quantile(0.75)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p99_9_ms: ms(h.value_at_quantile(0.999)),
            p99_99_ms: ms(h.value_at_quantile(0.9999)),
            max_ms: ms(h.max()),
        }
    }

    /// One line: p50 … max.
    pub fn line(&self) -> String {
        format!(
            "p50 {:.2} ms  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  p99.99 {:.2}  max {:.2}  (mean {:.2}, {} samples)",
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.p99_9_ms,
            self.p99_99_ms,
            self.max_ms,
            self.mean_ms,
            self.count
        )
    }
}

/// The raw histograms (µs) of a run, to merge across runs or clients: percentiles are never
/// averaged. Not serialised (the report's [`Latency`] summaries are).
#[derive(Debug, Clone, PartialEq)]
pub struct ProduceHistograms {
    /// Send → ack.
    pub latency: Histogram<u64>,
    /// Intended → actual send (recorded only with a rate).
    pub delay: Histogram<u64>,
}

/// The result of one run (the JSON `weir bench produce --json` writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProduceReport {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: u32,
    /// Producer clients.
    pub connections: usize,
    /// Brokers leading the topic's partitions when the run started.
    #[serde(default)]
    pub brokers: usize,
    pub acks: i16,
    #[serde(default)]
    pub idempotence: bool,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub compression: Compression,
    pub record_size: usize,
    pub records_acked: u64,
    /// Every record that failed, whatever the reason (the three counts below are among them).
    pub records_failed: u64,
    /// Failed: unacknowledged past delivery.timeout.ms.
    #[serde(default)]
    pub records_expired: u64,
    /// Failed: waited past max.block.ms for buffer.memory.
    #[serde(default)]
    pub records_blocked: u64,
    /// Batches resent after a retriable error.
    #[serde(default)]
    pub retries: u64,
    /// Epoch bumps (idempotence) after a batch that had a sequence failed.
    #[serde(default)]
    pub epoch_bumps: u64,
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
    /// First error code seen (Kafka's, or [`code::DELIVERY_TIMEOUT`] / [`code::BUFFER_EXHAUSTED`]).
    pub first_error: Option<i16>,
    /// The raw histograms, in process only (see [`ProduceHistograms`]).
    #[serde(skip)]
    pub histograms: Option<ProduceHistograms>,
}

impl ProduceReport {
    /// The text summary.
    pub fn summary(&self) -> String {
        let l = &self.publish_latency;
        let delay = self.publish_delay.as_ref().map_or(String::new(), |d| {
            format!(
                "delay     {}  (behind {:.0} records/s offered)\n",
                d.line(),
                self.rate.unwrap_or(0.0)
            )
        });
        let errors = if self.records_failed > 0 || self.retries > 0 {
            format!(
                "errors    {} failed ({} past delivery.timeout.ms, {} past max.block.ms), {} batch retries, {} epoch bumps, first error {:?}\n",
                self.records_failed, self.records_expired, self.records_blocked, self.retries, self.epoch_bumps, self.first_error
            )
        } else {
            String::new()
        };
        let text = format!(
            "produce {topic} ({partitions} partitions, {brokers} brokers) via {bootstrap}: {acked} records acked, {failed} failed in {elapsed:.2} s\n\
             rate      {rps:.0} records/s  {vmb:.1} MB/s values  {wmb:.1} MB/s on the wire  ({codec}, ratio {ratio:.2}, {rpb:.1} records/batch, {requests} requests)\n\
             latency   {line}\n",
            topic = self.topic,
            partitions = self.partitions,
            brokers = self.brokers,
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
            line = l.line(),
        );
        text + &delay + &errors
    }
}

/// What one client measured.
struct ClientResult {
    latency: Histogram<u64>,
    delay: Histogram<u64>,
    acked: u64,
    failed: u64,
    expired: u64,
    blocked: u64,
    retries: u64,
    epoch_bumps: u64,
    batches: u64,
    requests: u64,
    uncompressed: u64,
    wire: u64,
    first_error: Option<i16>,
}

impl ClientResult {
    fn new() -> ClientResult {
        ClientResult {
            latency: new_histogram(),
            delay: new_histogram(),
            acked: 0,
            failed: 0,
            expired: 0,
            blocked: 0,
            retries: 0,
            epoch_bumps: 0,
            batches: 0,
            requests: 0,
            uncompressed: 0,
            wire: 0,
            first_error: None,
        }
    }

    /// Adds another client's counts and histograms to these.
    fn merge(&mut self, r: ClientResult) -> Result<(), ProducerError> {
        let merging = |e| ProducerError::protocol(format!("merging histograms: {e}"));
        self.latency.add(&r.latency).map_err(merging)?;
        self.delay.add(&r.delay).map_err(merging)?;
        self.acked += r.acked;
        self.failed += r.failed;
        self.expired += r.expired;
        self.blocked += r.blocked;
        self.retries += r.retries;
        self.epoch_bumps += r.epoch_bumps;
        self.batches += r.batches;
        self.requests += r.requests;
        self.uncompressed += r.uncompressed;
        self.wire += r.wire;
        self.first_error = self.first_error.or(r.first_error);
        Ok(())
    }

    fn fail(&mut self, records: u64, code: i16) {
        self.failed += records;
        match code {
            code::DELIVERY_TIMEOUT => self.expired += records,
            code::BUFFER_EXHAUSTED => self.blocked += records,
            _ => {}
        }
        self.first_error = self.first_error.or(Some(code));
    }
}

/// A histogram of microseconds: 1 µs .. 1 h at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Constant, valid bounds (not input).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Which key each record of one producer carries (as a number `k`; the key is `key-{k}`).
struct KeyPicker {
    count: Option<u64>,
    /// Where this producer starts in the cycle, so that producers do not move in lockstep.
    offset: u64,
    random: Option<crate::rng::XorShift>,
}

impl KeyPicker {
    /// Cycles through `count` keys, or with a `seed` draws them uniformly (xorshift64 seeded
    /// through splitmix64, so neighbouring seeds draw unrelated sequences).
    fn new(count: Option<u64>, seed: Option<u64>, producer: usize) -> KeyPicker {
        KeyPicker {
            count,
            offset: producer as u64 * 7919,
            random: seed.map(|s| crate::rng::XorShift::new(splitmix64(s))),
        }
    }

    fn next(&mut self, record: u64) -> Option<u64> {
        let n = self.count?;
        Some(match &mut self.random {
            Some(rng) => rng.next() % n,
            None => (record + self.offset) % n,
        })
    }
}

/// The seed of one producer's key draws: the clock's nanoseconds (OMB's RANDOM_NANO draws by
/// `System.nanoTime()`), the process and the producer's index, so runs, processes and the
/// producers of a run (and of each topic) draw different sequences.
fn key_seed(producer: usize) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 32) ^ splitmix64(producer as u64 + 1)
}

/// splitmix64's output function: spreads a seed's bits over the whole word.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs the producer to completion and reports.
pub fn run(mut config: ProducerConfig) -> Result<ProduceReport, ProducerError> {
    // The fallback pool is made once, before the clock starts: 16 MiB of values take a while,
    // and a rated run's schedule must not begin behind.
    if config.payloads.is_none() {
        config.payloads = Some(Arc::new(payloads::fallback(config.record_size)));
    }
    run_from(config, Instant::now())
}

/// As [`run`], with publish delays measured from `start` (the e2e runner starts producers and
/// consumers together).
pub(crate) fn run_from(
    config: ProducerConfig,
    start: Instant,
) -> Result<ProduceReport, ProducerError> {
    config.check()?;
    let meta = metadata::initial_metadata(
        &config.bootstrap,
        &config.topic,
        &config.client_id,
        config.request_timeout(),
    )?;
    let partitions = meta.partitions();
    let brokers = meta
        .leaders
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
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
        let meta = meta.clone();
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name(&format!("bench-produce-{e}"))
            .spawn(move || async move {
                // Shared, not copied: a pool is 16 MiB.
                let payloads = match &config.payloads {
                    Some(p) => p.clone(),
                    None => Arc::new(payloads::fallback(config.record_size)),
                };
                let tasks = mine.into_iter().map(|(index, records)| {
                    let config = config.clone();
                    let payloads = payloads.clone();
                    let meta = meta.clone();
                    glommio::spawn_local(async move {
                        Client::new(&config, meta, index, records, start)
                            .run(&payloads)
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
    let mut total = ClientResult::new();
    for r in results {
        total.merge(r)?;
    }
    let histograms = ProduceHistograms {
        latency: total.latency,
        delay: total.delay,
    };
    if let Some(live) = &config.live {
        live.finish(&histograms);
    }
    let per_s = |n: f64| if elapsed > 0.0 { n / elapsed } else { 0.0 };
    Ok(ProduceReport {
        bootstrap: config.bootstrap.clone(),
        topic: config.topic.clone(),
        partitions,
        connections: config.connections,
        brokers,
        acks: config.acks,
        idempotence: config.idempotence,
        linger_ms: config.linger.as_millis() as u64,
        batch_size: config.batch_size,
        compression: config.compression,
        record_size: config.record_size,
        records_acked: total.acked,
        records_failed: total.failed,
        records_expired: total.expired,
        records_blocked: total.blocked,
        retries: total.retries,
        epoch_bumps: total.epoch_bumps,
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
            (total.acked + total.failed - total.blocked) as f64 / total.batches as f64
        } else {
            0.0
        },
        rate: config.rate,
        publish_latency: Latency::of(&histograms.latency),
        publish_delay: config.rate.map(|_| Latency::of(&histograms.delay)),
        first_error: total.first_error,
        histograms: Some(histograms),
    })
}

/// A closed batch: waiting for a request, in flight, or waiting to be retried.
struct Batch {
    partition: u32,
    /// Order of closing (retries go back to their place in it).
    id: u64,
    created_us: u64,
    sent_us: Vec<u64>,
    reserved: usize,
    /// Built once, with its sequence, so a retry resends exactly the same batch.
    bytes: Option<Bytes>,
    builder: Option<BatchBuilder>,
    attempts: u32,
    /// Not to be resent before this (retry.backoff.ms).
    retry_at_us: u64,
}

impl Batch {
    fn records(&self) -> u64 {
        self.sent_us.len() as u64
    }
}

/// Per-partition sender state.
#[derive(Default)]
struct Part {
    /// Closed batches in order of `id`.
    queue: VecDeque<Batch>,
    /// Batches of this partition in flight.
    in_flight: usize,
    /// Next base sequence (idempotence).
    next_sequence: i32,
    /// A batch of this partition is being retried: with idempotence, send one at a time until it
    /// is acknowledged, so sequences reach the broker in order.
    retrying: bool,
}

struct InFlight {
    correlation_id: i32,
    sent_us: u64,
    batches: Vec<Batch>,
}

/// One connection to a partition leader: a reader and a writer task, so the client never blocks
/// on a slow socket.
struct Conn {
    generation: u64,
    frames: mpsc::UnboundedSender<(i32, Bytes)>,
    in_flight: VecDeque<InFlight>,
    tasks: [glommio::task::JoinHandle<()>; 2],
}

enum Event {
    Frame {
        node: i32,
        generation: u64,
        frame: Bytes,
    },
    Written {
        node: i32,
        generation: u64,
        correlation_id: i32,
    },
    Closed {
        node: i32,
        generation: u64,
    },
    Metadata(Result<TopicMeta, WireError>),
}

/// One producer client.
struct Client<'a> {
    config: &'a ProducerConfig,
    index: usize,
    records: u64,
    start: Instant,
    meta: TopicMeta,
    acc: Accumulator,
    partitioner: Partitioner,
    parts: Vec<Part>,
    conns: HashMap<i32, Conn>,
    /// node → no reconnect before (µs).
    backoff_until: HashMap<i32, u64>,
    events_tx: mpsc::UnboundedSender<Event>,
    events: mpsc::UnboundedReceiver<Event>,
    generation: u64,
    correlation_id: i32,
    next_batch_id: u64,
    producer: Option<(i64, i16)>,
    /// A batch numbered under the current epoch failed: its partition's sequence has a gap.
    epoch_bump_wanted: bool,
    metadata_wanted: bool,
    metadata_pending: bool,
    metadata_not_before_us: u64,
    /// Rotates which partition a request starts with (Kafka's drainIndex), for fairness.
    drain_index: usize,
    live: Option<Box<dyn LiveClient>>,
    result: ClientResult,
}

impl<'a> Client<'a> {
    fn new(
        config: &'a ProducerConfig,
        meta: TopicMeta,
        index: usize,
        records: u64,
        start: Instant,
    ) -> Client<'a> {
        let partitions = meta.partitions();
        let (events_tx, events) = mpsc::unbounded();
        Client {
            config,
            index,
            records,
            start,
            acc: Accumulator::new(
                partitions,
                AccumulatorConfig {
                    batch_size: config.batch_size,
                    linger_us: config.linger.as_micros() as u64,
                    buffer_memory: config.buffer_memory,
                },
            ),
            partitioner: Partitioner::new(partitions, 0x9e37_79b9_7f4a_7c15 ^ index as u64),
            parts: (0..partitions).map(|_| Part::default()).collect(),
            meta,
            conns: HashMap::new(),
            backoff_until: HashMap::new(),
            events_tx,
            events,
            generation: 0,
            correlation_id: 0,
            next_batch_id: 0,
            producer: None,
            epoch_bump_wanted: false,
            metadata_wanted: false,
            metadata_pending: false,
            metadata_not_before_us: 0,
            drain_index: 0,
            live: config.live.as_ref().map(|l| l.clone().client()),
            result: ClientResult::new(),
        }
    }

    fn now(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn us(d: Duration) -> u64 {
        d.as_micros() as u64
    }

    async fn run(mut self, payloads: &[Vec<u8>]) -> Result<ClientResult, ProducerError> {
        if self.records == 0 {
            return Ok(self.result);
        }
        if self.config.idempotence {
            self.producer = Some(self.init_producer_id().await?);
        }
        let config = self.config;
        let interval_us = config.rate.map(|r| config.connections as f64 * 1e6 / r);
        let intended_us = |k: u64| interval_us.map(|i| (k as f64 * i) as u64);
        let epoch0 = epoch_ms_at(self.start);
        let max_block_us = Self::us(config.max_block);
        let delivery_us = Self::us(config.delivery_timeout);
        let request_timeout_us = Self::us(config.request_timeout());
        let mut next_record = 0u64;
        // When the generator began trying to send the current record (max.block.ms runs from
        // there), and when it finished the previous one.
        let mut attempt_since: Option<u64> = None;
        let mut last_done_us = 0u64;
        let mut key_buf = String::new();
        let mut keys = KeyPicker::new(
            config.keys,
            config.random_keys.then(|| key_seed(self.index)),
            self.index,
        );
        let mut value_buf = Vec::with_capacity(config.record_size);
        let mut stopped = false;
        loop {
            stopped = stopped || self.live.as_mut().is_some_and(|l| l.tick());
            // 1. Whatever has arrived.
            while let Ok(event) = self.events.try_recv() {
                self.on_event(event)?;
            }
            let now = self.now();
            // 2. Requests unanswered for request.timeout.ms: the connection is given up.
            let timed_out: Vec<i32> = self
                .conns
                .iter()
                .filter(|(_, c)| {
                    c.in_flight
                        .front()
                        .is_some_and(|f| now >= f.sent_us + request_timeout_us)
                })
                .map(|(n, _)| *n)
                .collect();
            for node in timed_out {
                self.connection_failed(node, code::REQUEST_TIMED_OUT, now);
            }
            // 3. Offer records: those due, while buffer.memory lets, one batch's worth per turn.
            let mut offered = 0usize;
            let mut block_deadline = None;
            while next_record < self.records && !stopped && offered < config.batch_size {
                let intended = intended_us(next_record);
                let now = self.now();
                if intended.is_some_and(|t| t > now) {
                    break;
                }
                let since = *attempt_since
                    .get_or_insert_with(|| intended.map_or(now, |t| t.max(last_done_us)));
                if !self.acc.has_room() {
                    if now >= since + max_block_us {
                        self.result.fail(1, code::BUFFER_EXHAUSTED);
                        next_record += 1;
                        attempt_since = None;
                        last_done_us = now;
                        continue;
                    }
                    block_deadline = Some(since + max_block_us);
                    break;
                }
                let key = keys.next(next_record).map(|k| {
                    key_buf.clear();
                    use std::fmt::Write as _;
                    let _ = write!(key_buf, "key-{k}");
                    key_buf.as_bytes()
                });
                let mut value = &payloads[(next_record % payloads.len() as u64) as usize][..];
                if config.stamp_send_time {
                    value_buf.clear();
                    value_buf.extend_from_slice(value);
                    value_buf[..8].copy_from_slice(&clock::epoch_us().to_be_bytes());
                    value = &value_buf;
                }
                let partition = self.partitioner.partition(key);
                let ts = epoch0 + (now / 1000) as i64;
                match self.acc.append(now, partition, ts, key, value) {
                    Append::Rolled => {
                        self.partitioner.on_new_batch(partition);
                        continue; // the sticky partition may have moved
                    }
                    Append::NoRoom => continue, // has_room said yes: cannot happen, re-check
                    Append::Appended { closed } => {
                        if closed {
                            self.partitioner.on_new_batch(partition);
                        }
                        if let Some(t) = intended {
                            let delay = now.saturating_sub(t);
                            let _ = self.result.delay.record(delay);
                            if let Some(l) = &mut self.live {
                                l.delayed(delay);
                            }
                        }
                        offered += BatchBuilder::record_size(key, Some(value), &[]);
                        next_record += 1;
                        attempt_since = None;
                        last_done_us = now;
                    }
                }
            }
            // 4. Linger: batches whose time has come, or all once nothing more will come.
            let now = self.now();
            let done_offering = next_record >= self.records || stopped;
            for p in self.acc.expire_linger(now, done_offering) {
                self.partitioner.on_new_batch(p);
            }
            for b in self.acc.take_ready() {
                self.enqueue(b);
            }
            // 5. delivery.timeout.ms: batches not acknowledged in time fail.
            let cutoff = now.saturating_sub(delivery_us);
            if now >= delivery_us {
                for b in self.acc.take_open_older_than(cutoff) {
                    self.result
                        .fail(b.sent_us.len() as u64, code::DELIVERY_TIMEOUT);
                    self.acc.release(b.reserved);
                }
                for p in 0..self.parts.len() {
                    while let Some(i) = self.parts[p]
                        .queue
                        .iter()
                        .position(|b| b.created_us < cutoff)
                    {
                        if let Some(b) = self.parts[p].queue.remove(i) {
                            self.result.fail(b.records(), code::DELIVERY_TIMEOUT);
                            self.acc.release(b.reserved);
                        }
                    }
                }
            }
            // 6. Metadata, when a failure made it stale.
            if self.metadata_wanted && !self.metadata_pending && now >= self.metadata_not_before_us
            {
                self.refresh_metadata();
            }
            // 7. Send what may be sent.
            let sent = self.send(now).await?;
            // 8. Done?
            let idle = self.acc.is_empty()
                && self.parts.iter().all(|p| p.queue.is_empty())
                && self.conns.values().all(|c| c.in_flight.is_empty());
            if done_offering && idle {
                break;
            }
            // 9. Wait for an event or the next deadline when there is nothing to do now.
            // One reading of the clock for the decision and the deadlines below: a record that
            // fell due in between would otherwise be neither offered nor waited for.
            let now = self.now();
            let can_offer = !done_offering
                && self.acc.has_room()
                && intended_us(next_record).is_none_or(|t| t <= now);
            if sent || can_offer {
                glommio::executor().yield_now().await;
                continue;
            }
            // Only future moments: whatever was due has been done this turn, and what is due but
            // cannot be done (a retry behind its partition's in-flight batch, a backoff already
            // over) waits for an event, not a busy loop.
            let mut deadline = now + 100_000;
            let mut at = |t: Option<u64>| {
                if let Some(t) = t.filter(|&t| t > now) {
                    deadline = deadline.min(t);
                }
            };
            at(self.acc.next_linger_deadline());
            at(block_deadline);
            if !done_offering && self.acc.has_room() {
                at(intended_us(next_record));
            }
            for c in self.conns.values() {
                at(c.in_flight.front().map(|f| f.sent_us + request_timeout_us));
            }
            for p in &self.parts {
                at(p.queue.front().map(|b| b.retry_at_us));
                at(p.queue.iter().map(|b| b.created_us + delivery_us).min());
            }
            if self.metadata_wanted && !self.metadata_pending {
                at(Some(self.metadata_not_before_us));
            }
            self.backoff_until.retain(|_, t| *t > now);
            for t in self.backoff_until.values() {
                at(Some(*t));
            }
            let wait = Duration::from_micros(deadline.saturating_sub(self.now()));
            if wait.is_zero() {
                glommio::executor().yield_now().await;
                continue;
            }
            let sleep = Box::pin(glommio::timer::sleep(wait));
            if let futures::future::Either::Left((Some(event), _)) =
                futures::future::select(self.events.next(), sleep).await
            {
                self.on_event(event)?;
            }
        }
        for (_, c) in self.conns.drain() {
            for t in &c.tasks {
                t.cancel();
            }
        }
        Ok(self.result)
    }

    /// A closed batch joins its partition's queue.
    fn enqueue(&mut self, b: OpenBatch) {
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.parts[b.partition as usize].queue.push_back(Batch {
            partition: b.partition,
            id,
            created_us: b.created_us,
            sent_us: b.sent_us,
            reserved: b.reserved,
            bytes: None,
            builder: Some(b.builder),
            attempts: 0,
            retry_at_us: 0,
        });
    }

    /// Retries `b` after retry.backoff.ms, or fails it (out of retries or past
    /// delivery.timeout.ms).
    fn retry_or_fail(&mut self, b: Batch, error: i16, now: u64) {
        let part = &mut self.parts[b.partition as usize];
        if code::stale_metadata(error) {
            self.metadata_wanted = true;
        }
        let expired = now >= b.created_us + Self::us(self.config.delivery_timeout);
        if b.attempts >= self.config.retries || expired {
            self.sequence_lost(&b);
            self.result.fail(
                b.records(),
                if expired {
                    code::DELIVERY_TIMEOUT
                } else {
                    error
                },
            );
            self.acc.release(b.reserved);
            return;
        }
        let mut b = b;
        b.attempts += 1;
        b.retry_at_us = now + Self::us(self.config.retry_backoff);
        self.result.retries += 1;
        if self.config.idempotence {
            part.retrying = true;
        }
        let at = part
            .queue
            .iter()
            .position(|q| q.id > b.id)
            .unwrap_or(part.queue.len());
        part.queue.insert(at, b);
    }

    fn on_event(&mut self, event: Event) -> Result<(), ProducerError> {
        let now = self.now();
        match event {
            Event::Frame {
                node,
                generation,
                frame,
            } => {
                if self.conns.get(&node).map(|c| c.generation) == Some(generation) {
                    self.on_response(node, frame, now)?;
                }
            }
            Event::Written {
                node,
                generation,
                correlation_id,
            } => {
                if self.config.acks != 0
                    || self.conns.get(&node).map(|c| c.generation) != Some(generation)
                {
                    return Ok(());
                }
                // acks=0: acknowledged once written.
                let Some(conn) = self.conns.get_mut(&node) else {
                    return Ok(());
                };
                let Some(pos) = conn
                    .in_flight
                    .iter()
                    .position(|f| f.correlation_id == correlation_id)
                else {
                    return Ok(());
                };
                if let Some(f) = conn.in_flight.remove(pos) {
                    for b in f.batches {
                        self.acked(b, now);
                    }
                }
            }
            Event::Closed { node, generation } => {
                if self.conns.get(&node).map(|c| c.generation) == Some(generation) {
                    self.connection_failed(node, code::NETWORK_EXCEPTION, now);
                }
            }
            Event::Metadata(result) => {
                self.metadata_pending = false;
                match result {
                    Ok(meta) if meta.partitions() == self.meta.partitions() => {
                        self.meta = meta;
                        self.metadata_wanted = false;
                    }
                    _ => {
                        self.metadata_not_before_us = now + Self::us(self.config.retry_backoff);
                    }
                }
            }
        }
        Ok(())
    }

    fn acked(&mut self, b: Batch, now: u64) {
        let part = &mut self.parts[b.partition as usize];
        part.in_flight = part.in_flight.saturating_sub(1);
        if b.attempts > 0 || part.queue.front().is_none_or(|q| q.attempts == 0) {
            part.retrying = false;
        }
        for t in &b.sent_us {
            let latency = now.saturating_sub(*t).max(1);
            let _ = self.result.latency.record(latency);
            if let Some(l) = &mut self.live {
                l.acked(latency);
            }
        }
        self.result.acked += b.records();
        self.acc.release(b.reserved);
    }

    /// Gives up a connection: its requests' batches are retried (or fail).
    fn connection_failed(&mut self, node: i32, error: i16, now: u64) {
        let Some(conn) = self.conns.remove(&node) else {
            return;
        };
        for t in &conn.tasks {
            t.cancel();
        }
        self.backoff_until
            .insert(node, now + Self::us(self.config.retry_backoff));
        self.metadata_wanted = true;
        for f in conn.in_flight {
            for b in f.batches {
                let part = &mut self.parts[b.partition as usize];
                part.in_flight = part.in_flight.saturating_sub(1);
                self.retry_or_fail(b, error, now);
            }
        }
    }

    fn on_response(&mut self, node: i32, frame: Bytes, now: u64) -> Result<(), ProducerError> {
        let (correlation_id, mut body) =
            conn::response_body(ApiKey::Produce, PRODUCE_VERSION, frame)?;
        let Some(conn) = self.conns.get_mut(&node) else {
            return Ok(());
        };
        let request = conn
            .in_flight
            .pop_front()
            .ok_or_else(|| ProducerError::protocol("a response nobody asked for".into()))?;
        if request.correlation_id != correlation_id {
            return Err(ProducerError::protocol(format!(
                "response {correlation_id} where {} was next",
                request.correlation_id
            )));
        }
        let response = ProduceResponse::decode(&mut body, PRODUCE_VERSION)
            .map_err(|e| ProducerError::protocol(format!("Produce response: {e:#}")))?;
        if body.has_remaining() {
            return Err(ProducerError::protocol(
                "trailing bytes in a Produce response".into(),
            ));
        }
        for b in request.batches {
            let error = response
                .responses
                .iter()
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.index == b.partition as i32)
                .map_or(code::NETWORK_EXCEPTION, |p| p.error_code);
            let idempotent_retry = self.config.idempotence
                && error == code::OUT_OF_ORDER_SEQUENCE_NUMBER
                && self.parts[b.partition as usize].retrying;
            if error == 0 || (self.config.idempotence && error == code::DUPLICATE_SEQUENCE_NUMBER) {
                self.acked(b, now);
            } else if code::retriable(error) || idempotent_retry {
                let part = &mut self.parts[b.partition as usize];
                part.in_flight = part.in_flight.saturating_sub(1);
                self.retry_or_fail(b, error, now);
            } else {
                let part = &mut self.parts[b.partition as usize];
                part.in_flight = part.in_flight.saturating_sub(1);
                self.sequence_lost(&b);
                self.result.fail(b.records(), error);
                self.acc.release(b.reserved);
            }
        }
        Ok(())
    }

    /// Asks Metadata again in the background.
    fn refresh_metadata(&mut self) {
        self.metadata_pending = true;
        let tx = self.events_tx.clone();
        let bootstrap = self.config.bootstrap.clone();
        let topic = self.config.topic.clone();
        let client_id = self.config.client_id.clone();
        let timeout = self.config.request_timeout();
        glommio::spawn_local(async move {
            let ask = async {
                let addr = conn::resolve(&bootstrap)?;
                let mut s = glommio::net::TcpStream::connect_timeout(addr, timeout)
                    .await
                    .map_err(|e| WireError::Io {
                        what: format!("connecting {addr}"),
                        source: e.into(),
                    })?;
                metadata::topic_metadata(&mut s, &topic, 1, &client_id).await
            };
            let sleep = glommio::timer::sleep(timeout);
            let result = match futures::future::select(Box::pin(ask), Box::pin(sleep)).await {
                futures::future::Either::Left((r, _)) => r,
                futures::future::Either::Right(_) => {
                    Err(WireError::Metadata("Metadata timed out".to_string()))
                }
            };
            let _ = tx.unbounded_send(Event::Metadata(result));
        })
        .detach();
    }

    async fn init_producer_id(&self) -> Result<(i64, i16), ProducerError> {
        let addr = conn::resolve(&self.config.bootstrap)?;
        let mut s = glommio::net::TcpStream::connect_timeout(addr, self.config.request_timeout())
            .await
            .map_err(|e| {
                ProducerError::Wire(WireError::Io {
                    what: format!("connecting {addr}"),
                    source: e.into(),
                })
            })?;
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1);
        let response: InitProducerIdResponse = conn::exchange(
            &mut s,
            ApiKey::InitProducerId,
            INIT_PRODUCER_ID_VERSION,
            1,
            &self.config.client_id,
            &request,
        )
        .await?;
        if response.error_code != 0 {
            return Err(ProducerError::InitProducerId(format!(
                "error code {}",
                response.error_code
            )));
        }
        Ok((response.producer_id.0, response.producer_epoch))
    }

    /// A connection to `node` at `addr`, its reader and writer tasks started.
    async fn connect(&mut self, node: i32, addr: SocketAddr) -> Result<(), WireError> {
        let stream = glommio::net::TcpStream::connect_timeout(addr, self.config.request_timeout())
            .await
            .map_err(|e| WireError::Io {
                what: format!("connecting {addr}"),
                source: e.into(),
            })?;
        stream.set_nodelay(true).map_err(|e| WireError::Io {
            what: "TCP_NODELAY".into(),
            source: e.into(),
        })?;
        self.generation += 1;
        let generation = self.generation;
        let (mut reader, mut writer) = futures::AsyncReadExt::split(stream);
        let tx = self.events_tx.clone();
        let reader_task = glommio::spawn_local(async move {
            loop {
                match read_frame(&mut reader, REQUEST_BYTES_MAX_DEFAULT).await {
                    Ok(Some(frame)) => {
                        let event = Event::Frame {
                            node,
                            generation,
                            frame,
                        };
                        if tx.unbounded_send(event).is_err() {
                            return;
                        }
                    }
                    // Closed, or unreadable: the client gives the connection up either way.
                    _ => {
                        let _ = tx.unbounded_send(Event::Closed { node, generation });
                        return;
                    }
                }
            }
        })
        .detach();
        let (frames, mut to_write) = mpsc::unbounded::<(i32, Bytes)>();
        let tx = self.events_tx.clone();
        let writer_task = glommio::spawn_local(async move {
            while let Some((correlation_id, frame)) = to_write.next().await {
                if writer.write_all(&frame).await.is_err() {
                    let _ = tx.unbounded_send(Event::Closed { node, generation });
                    return;
                }
                let _ = tx.unbounded_send(Event::Written {
                    node,
                    generation,
                    correlation_id,
                });
            }
        })
        .detach();
        self.conns.insert(
            node,
            Conn {
                generation,
                frames,
                in_flight: VecDeque::new(),
                tasks: [reader_task, writer_task],
            },
        );
        Ok(())
    }

    /// A batch is given up: if it had a sequence, the broker will refuse every later batch of
    /// its partition (OUT_OF_ORDER_SEQUENCE_NUMBER) until the producer bumps its epoch.
    fn sequence_lost(&mut self, b: &Batch) {
        if self.producer.is_some() && b.bytes.is_some() {
            self.epoch_bump_wanted = true;
        }
    }

    /// KIP-360's epoch bump of an idempotent producer, done locally as Kafka's client does: once
    /// nothing is in flight, the epoch goes up by one (a new producer id when it is exhausted),
    /// every partition's sequence restarts at 0, and the batches numbered under the old epoch
    /// and waiting for a retry are renumbered in order. The broker takes a higher epoch starting
    /// at sequence 0 as a fresh start.
    async fn bump_epoch(&mut self) -> Result<(), ProducerError> {
        self.epoch_bump_wanted = false;
        let Some((id, epoch)) = self.producer else {
            return Ok(());
        };
        let (id, epoch) = if epoch < i16::MAX {
            (id, epoch + 1)
        } else {
            self.init_producer_id().await?
        };
        self.producer = Some((id, epoch));
        for part in &mut self.parts {
            part.next_sequence = 0;
            part.retrying = false;
            for b in part.queue.iter_mut() {
                let Some(bytes) = &b.bytes else {
                    continue;
                };
                let mut renumbered = bytes.to_vec();
                ::wire::batch::set_producer(&mut renumbered, id, epoch, part.next_sequence);
                part.next_sequence = part.next_sequence.wrapping_add(b.records() as i32) & i32::MAX;
                b.bytes = Some(Bytes::from(renumbered));
            }
        }
        self.result.epoch_bumps += 1;
        Ok(())
    }

    /// Sends Produce requests while a leader's connection has room: one batch per partition per
    /// request. Returns whether anything was sent.
    async fn send(&mut self, now: u64) -> Result<bool, ProducerError> {
        if self.epoch_bump_wanted {
            if self.parts.iter().any(|p| p.in_flight > 0) {
                return Ok(false);
            }
            self.bump_epoch().await?;
        }
        let partitions = self.parts.len();
        // Leader node → partitions with a batch that may go now, in drain order.
        let mut by_node: Vec<(i32, SocketAddr, Vec<u32>)> = Vec::new();
        for i in 0..partitions {
            let p = (self.drain_index + i) % partitions;
            let part = &self.parts[p];
            let Some(front) = part.queue.front() else {
                continue;
            };
            if front.retry_at_us > now || (part.retrying && part.in_flight > 0) {
                continue;
            }
            let Some((node, addr)) = self.meta.leader_addr(p as u32) else {
                self.metadata_wanted = true;
                continue;
            };
            match by_node.iter_mut().find(|(n, _, _)| *n == node) {
                Some((_, _, ps)) => ps.push(p as u32),
                None => by_node.push((node, addr, vec![p as u32])),
            }
        }
        self.drain_index = (self.drain_index + 1) % partitions.max(1);
        let mut sent = false;
        for (node, addr, ps) in by_node {
            if !self.conns.contains_key(&node) {
                if self.backoff_until.get(&node).is_some_and(|&t| t > now) {
                    continue;
                }
                if self.connect(node, addr).await.is_err() {
                    self.backoff_until
                        .insert(node, now + Self::us(self.config.retry_backoff));
                    self.metadata_wanted = true;
                    continue;
                }
            }
            let in_flight = self.conns.get(&node).map_or(0, |c| c.in_flight.len());
            if in_flight >= self.config.max_in_flight {
                continue;
            }
            let mut batches = Vec::with_capacity(ps.len());
            for p in ps {
                let part = &mut self.parts[p as usize];
                if part.retrying && part.in_flight > 0 {
                    continue;
                }
                let Some(mut b) = part.queue.pop_front() else {
                    continue;
                };
                if b.bytes.is_none() {
                    let fields = match self.producer {
                        Some((id, epoch)) => {
                            let base_sequence = part.next_sequence;
                            part.next_sequence =
                                part.next_sequence.wrapping_add(b.records() as i32) & i32::MAX;
                            ProducerFields {
                                producer_id: id,
                                producer_epoch: epoch,
                                base_sequence,
                            }
                        }
                        None => ProducerFields::NONE,
                    };
                    let Some(builder) = b.builder.take() else {
                        continue;
                    };
                    let bytes = builder.build(
                        self.config.compression,
                        self.config.compression_level,
                        fields,
                    )?;
                    self.result.uncompressed += builder.size() as u64;
                    self.result.wire += bytes.len() as u64;
                    self.result.batches += 1;
                    b.bytes = Some(Bytes::from(bytes));
                }
                part.in_flight += 1;
                batches.push(b);
            }
            if batches.is_empty() {
                continue;
            }
            let partition_data = batches
                .iter()
                .map(|b| {
                    PartitionProduceData::default()
                        .with_index(b.partition as i32)
                        .with_records(b.bytes.clone())
                })
                .collect();
            let request = ProduceRequest::default()
                .with_acks(self.config.acks)
                .with_timeout_ms(self.config.request_timeout_ms)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(self.config.topic.clone())))
                    .with_partition_data(partition_data)]);
            self.correlation_id = self.correlation_id.wrapping_add(1);
            let frame = conn::request_frame(
                ApiKey::Produce,
                PRODUCE_VERSION,
                self.correlation_id,
                &self.config.client_id,
                &request,
            )?;
            self.result.requests += 1;
            sent = true;
            let Some(conn) = self.conns.get_mut(&node) else {
                continue;
            };
            conn.in_flight.push_back(InFlight {
                correlation_id: self.correlation_id,
                sent_us: now,
                batches,
            });
            if conn
                .frames
                .unbounded_send((self.correlation_id, frame))
                .is_err()
            {
                self.connection_failed(node, code::NETWORK_EXCEPTION, now);
            }
        }
        Ok(sent)
    }
}

/// Wall-clock milliseconds at `start` (record timestamps are CreateTime, epoch ms).
fn epoch_ms_at(start: Instant) -> i64 {
    (clock::epoch_us() / 1000) as i64 - start.elapsed().as_millis() as i64
}

/// `n` split into `parts` near-equal parts.
fn split(n: u64, parts: u64) -> Vec<u64> {
    (0..parts)
        .map(|i| n / parts + u64::from(i < n % parts))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ROUND_ROBIN cycles through the keys; RANDOM_NANO draws them: no cycle, every key used
    /// about equally, and the partitions (murmur2 of `key-{k}`) visited in no fixed order.
    #[test]
    fn random_keys_are_drawn_not_cycled() {
        const N: u64 = 1_000;
        const RECORDS: u64 = 200_000;
        let mut cycled = KeyPicker::new(Some(N), None, 0);
        let seq: Vec<u64> = (0..RECORDS).map(|r| cycled.next(r).unwrap()).collect();
        assert!(seq.windows(2).all(|w| w[1] == (w[0] + 1) % N));

        // A fixed seed: the statistics below are of one known sequence, not flaky.
        let mut drawn = KeyPicker::new(Some(N), Some(1), 0);
        let seq: Vec<u64> = (0..RECORDS).map(|r| drawn.next(r).unwrap()).collect();
        let successors = seq.windows(2).filter(|w| w[1] == (w[0] + 1) % N).count();
        assert!(
            successors < 1_000,
            "{successors} of {RECORDS} keys follow their predecessor"
        );
        let mut per_key = vec![0u64; N as usize];
        for k in &seq {
            per_key[*k as usize] += 1;
        }
        // 200 expected per key; a uniform draw stays well inside 100..300 for all 1,000.
        let (lo, hi) = (per_key.iter().min().unwrap(), per_key.iter().max().unwrap());
        assert!(*lo > 100 && *hi < 300, "per-key counts {lo}..{hi}");
        // Partition sequence of the first 64 records: cycling repeats it every N records,
        // drawing does not.
        let part =
            |k: u64| crate::partitioner::partition_for_key(format!("key-{k}").as_bytes(), 16);
        let first: Vec<u32> = seq[..64].iter().map(|k| part(*k)).collect();
        let later: Vec<u32> = seq[N as usize..N as usize + 64]
            .iter()
            .map(|k| part(*k))
            .collect();
        assert_ne!(first, later);
        // … and spread records over the partitions about evenly (as far as 1,000 keys'
        // murmur2 hashes fall evenly on 16 partitions).
        let mut per_partition = [0u64; 16];
        for k in &seq {
            per_partition[part(*k) as usize] += 1;
        }
        let even = RECORDS / 16;
        assert!(
            per_partition
                .iter()
                .all(|&n| n > even * 6 / 10 && n < even * 14 / 10),
            "records per partition {per_partition:?}"
        );
        // Producers (and runs) draw different sequences; a null-key config draws nothing.
        assert_ne!(key_seed(0), key_seed(1));
        let mut other = KeyPicker::new(Some(N), Some(2), 0);
        assert_ne!(
            (0..64).map(|r| other.next(r)).collect::<Vec<_>>(),
            seq[..64].iter().map(|k| Some(*k)).collect::<Vec<_>>()
        );
        assert_eq!(KeyPicker::new(None, Some(1), 0).next(0), None);
    }

    #[test]
    fn records_split_evenly_and_completely() {
        assert_eq!(split(10, 3), vec![4, 3, 3]);
        assert_eq!(split(2, 4), vec![1, 1, 0, 0]);
        assert_eq!(split(0, 1), vec![0]);
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let report = ProduceReport {
            bootstrap: "h:1".into(),
            topic: "t".into(),
            partitions: 3,
            connections: 2,
            brokers: 1,
            acks: 1,
            idempotence: false,
            linger_ms: 5,
            batch_size: 65536,
            compression: Compression::Lz4,
            record_size: 1024,
            records_acked: 10,
            records_failed: 0,
            records_expired: 0,
            records_blocked: 0,
            retries: 0,
            epoch_bumps: 0,
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
            histograms: None,
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
        // Idempotence as Kafka enforces it: acks=all, at most 5 in flight.
        let mut c = ProducerConfig::new("h:1", "t");
        c.idempotence = true;
        assert!(c.check().is_ok());
        c.acks = 1;
        assert!(c.check().is_err());
        c.acks = -1;
        c.max_in_flight = 6;
        assert!(c.check().is_err());
        // delivery.timeout.ms ≥ linger.ms + request.timeout.ms.
        let mut c = ProducerConfig::new("h:1", "t");
        c.delivery_timeout = Duration::from_millis(1000);
        assert!(c.check().is_err());
        c.request_timeout_ms = 500;
        assert!(c.check().is_ok());
    }
}
