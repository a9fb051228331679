//! The in-process broker harness: the middle test boundary (issue #13). Starts, inside the test
//! process, the embedded single-node coordinator, then two shards running `engine::broker` on a
//! port-0 loopback address over a temporary data directory, with a manual clock; a test talks
//! Kafka to it with `kclient`'s `BlockingConn` and checks the answers field by field. Helpers
//! build the few requests most tests need (create a topic, produce a batch, fetch records, list
//! offsets). Dropping the harness stops the shards and the coordinator and fails the test if the
//! shutdown reported an error.
//!
//! Owns: starting, restarting and stopping one broker per test, the request helpers. Must not:
//! hold broker semantics of its own (a test asserts them) or reach into the broker's state (only
//! Kafka requests, like a client).
//!
//! Limits: memlock is 8 MiB on the test machines and each executor registers its io_memory, so
//! the broker's two shards take 1 MiB each (the coordinator 1 MiB) and one harness runs at a
//! time per test process (`ONE_AT_A_TIME`).
#![allow(dead_code)]

pub mod groups;

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::broker::{self, BrokerConfig};
use engine::shard::{self, ShardSet, ShardsConfig};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, ListOffsetsRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kclient::conn::BlockingConn;
use storage::{Clock, ManualClock};
use wire::batch::{encode_batch, Record};

/// Shards of every harness broker (two, so requests cross shards).
pub const SHARDS: usize = 2;
/// glommio io_memory per shard.
pub const IO_MEMORY_BYTES: usize = 1 << 20;
/// Where every manual clock starts (2023-11-14, a plausible wall clock in ms).
pub const START_MS: i64 = 1_700_000_000_000;
/// Read and write timeout of every harness connection.
const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// One harness broker per test process at a time (see the module's limits).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running broker for one test; stopped (and its shutdown checked) on drop.
pub struct Harness {
    /// The bootstrap address (also what Metadata advertises).
    pub addr: SocketAddr,
    /// The broker's wall clock: move it with `clock.advance(ms)`.
    pub clock: ManualClock,
    /// The config the shards were started with (kept for `restart`).
    pub cfg: BrokerConfig,
    shards: Option<ShardSet>,
    coord: Option<coord::server::Embedded>,
    dir: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

impl Harness {
    /// A broker with the harness defaults: a manual clock at `START_MS`, retention and
    /// compaction checked every 100 ms, auto-creation on, one partition per new topic.
    pub fn start() -> Harness {
        Harness::start_with(|_| {})
    }

    /// As `start`, with `tweak` applied to the config before the shards start.
    pub fn start_with(tweak: impl FnOnce(&mut BrokerConfig)) -> Harness {
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().expect("a temporary data directory");
        let mut ccfg = coord::server::ServerConfig::new(
            1,
            dir.path().join("coord"),
            "127.0.0.1:0".to_string(),
        );
        ccfg.core = None;
        let coord = coord::server::start_embedded_with(ccfg).expect("the embedded coordinator");
        let clock = ManualClock::new(START_MS);
        let mut cfg = BrokerConfig::new(dir.path().join("logs"), vec![coord.addr.to_string()]);
        cfg.clock = Clock::Manual(clock.clone());
        cfg.retention_check_interval_ms = 100;
        // The clock stands still unless a test moves it: a first join must not wait on it.
        cfg.group_initial_rebalance_delay_ms = 0;
        tweak(&mut cfg);
        let (shards, cfg) = start_shards(cfg);
        Harness {
            addr: shards.addr,
            clock,
            cfg,
            shards: Some(shards),
            coord: Some(coord),
            dir,
            _turn: turn,
        }
    }

    /// The data directory (logs in `logs/`, the coordinator in `coord/`).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A new connection to the broker (any shard may accept it).
    pub fn conn(&self) -> BlockingConn {
        BlockingConn::connect(&self.addr.to_string(), IO_TIMEOUT, "harness")
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.addr))
    }

    /// Stops the shards cleanly (every log closed) and starts them again on the same data
    /// directory and coordinator, on a new port; connections made before are closed.
    pub fn restart(&mut self) {
        let shards = self.shards.take().expect("the shards run");
        let errors = shards.stop();
        assert!(errors.is_empty(), "unclean shutdown: {}", errors.join("; "));
        let (shards, cfg) = start_shards(self.cfg.clone());
        self.addr = shards.addr;
        self.cfg = cfg;
        self.shards = Some(shards);
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let errors = self.shards.take().map(ShardSet::stop).unwrap_or_default();
        if let Some(coord) = self.coord.take() {
            coord.stop();
        }
        if !std::thread::panicking() {
            assert!(errors.is_empty(), "unclean shutdown: {}", errors.join("; "));
        }
    }
}

/// Starts `SHARDS` shards on a fresh loopback port, advertising it.
fn start_shards(mut cfg: BrokerConfig) -> (ShardSet, BrokerConfig) {
    let reserved =
        shard::reserve_port(SocketAddr::from(([127, 0, 0, 1], 0))).expect("a loopback port");
    cfg.advertised_host = "127.0.0.1".into();
    cfg.advertised_port = reserved.addr.port();
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = shard::start(
        ShardsConfig {
            cores: (0..SHARDS).map(|i| i % online).collect(),
            io_memory_bytes: IO_MEMORY_BYTES,
            kafka_addr: reserved.addr,
            request_bytes_max: 100 << 20,
            channel_jobs_max: 1024,
            connections_max: engine::shard::CONNECTIONS_MAX_DEFAULT,
        },
        broker::builder(cfg.clone()),
    )
    .expect("starting the shards");
    drop(reserved);
    (shards, cfg)
}

/// Polls `ok` every 20 ms until it returns `Some`, for at most `limit`; panics naming `what`.
pub fn eventually<T>(what: &str, limit: Duration, mut ok: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = ok() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

pub fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// CreateTopics v5 of one topic with `configs`; returns the topic's error code.
pub fn create_topic(
    conn: &mut BlockingConn,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> i16 {
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(text(k))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            )]);
    let resp = conn.call_blocking(&req, 5).expect("CreateTopics");
    assert_eq!(resp.topics.len(), 1);
    resp.topics[0].error_code
}

/// A record with `key` and `value` (None: a tombstone) at `timestamp`.
pub fn record(key: &str, value: Option<&str>, timestamp: i64) -> Record {
    Record {
        timestamp,
        key: Some(key.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
        headers: Vec::new(),
    }
}

/// An uncompressed v2 batch of `records`, without a producer id.
pub fn batch(records: &[Record]) -> Bytes {
    Bytes::from(encode_batch(records))
}

/// Produce v9 of `records` (one or more batches) to one partition with `acks`; returns the
/// partition's answer.
pub fn produce(
    conn: &mut BlockingConn,
    topic: &str,
    partition: i32,
    acks: i16,
    records: Bytes,
) -> PartitionProduceResponse {
    let req = ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name(topic))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])]);
    let mut resp = conn.call_blocking(&req, 9).expect("Produce");
    assert_eq!(resp.responses.len(), 1, "{resp:?}");
    let mut topic_resp = resp.responses.remove(0);
    assert_eq!(topic_resp.partition_responses.len(), 1, "{topic_resp:?}");
    topic_resp.partition_responses.remove(0)
}

/// Fetch v12 of one partition from `offset` (no waiting; up to 1 MiB); the partition's answer.
pub fn fetch(conn: &mut BlockingConn, topic: &str, partition: i32, offset: i64) -> PartitionData {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)])]);
    let mut resp = conn.call_blocking(&req, 12).expect("Fetch");
    assert_eq!(resp.error_code, 0, "{resp:?}");
    assert_eq!(resp.responses.len(), 1, "{resp:?}");
    let mut topic_resp = resp.responses.remove(0);
    assert_eq!(topic_resp.partitions.len(), 1, "{topic_resp:?}");
    topic_resp.partitions.remove(0)
}

/// One fetched record: its offset, key and value (None: a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub offset: i64,
    pub key: Option<String>,
    pub value: Option<String>,
}

/// Every record of a Fetch answer's record set (uncompressed batches, or compressed ones
/// decompressed with `wire::codec`), in offset order.
pub fn records_of(data: &PartitionData) -> Vec<Fetched> {
    let mut out = Vec::new();
    let mut rest: &[u8] = data.records.as_deref().unwrap_or(&[]);
    while let Some(header) = wire::batch::BatchHeader::parse(rest) {
        let Some(len) = header.total_len().filter(|l| *l <= rest.len()) else {
            break; // a partial batch at the end of the fetch
        };
        let (batch, next) = rest.split_at(len);
        rest = next;
        let body = &batch[wire::batch::HEADER_LEN..];
        let decompressed;
        let body = match header.compression() {
            0 => body,
            codec => {
                let codec = wire::codec::Codec::from_id(codec).expect("a known codec");
                decompressed = wire::codec::decompress(codec, body, 64 << 20)
                    .expect("a valid compressed batch");
                &decompressed[..]
            }
        };
        let views = wire::batch::records_in(body, header.records_count).expect("records parse");
        for v in views {
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            out.push(Fetched {
                offset: header.base_offset + v.offset_delta,
                key: text(v.key),
                value: text(v.value),
            });
        }
    }
    out
}

/// Every record of a partition from `offset` on, fetching until the high watermark.
pub fn read_all(conn: &mut BlockingConn, topic: &str, partition: i32, offset: i64) -> Vec<Fetched> {
    let mut out: Vec<Fetched> = Vec::new();
    let mut next = offset;
    loop {
        let data = fetch(conn, topic, partition, next);
        assert_eq!(data.error_code, 0, "{data:?}");
        let got = records_of(&data);
        match got.last() {
            Some(last) => next = last.offset + 1,
            None => return out,
        }
        out.extend(got);
        if next >= data.high_watermark {
            return out;
        }
    }
}

/// ListOffsets v6 of one partition at `timestamp` (-1 latest, -2 earliest).
pub fn list_offset(
    conn: &mut BlockingConn,
    topic: &str,
    partition: i32,
    timestamp: i64,
) -> ListOffsetsPartitionResponse {
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_timestamp(timestamp)])]);
    let mut resp = conn.call_blocking(&req, 6).expect("ListOffsets");
    let mut topic_resp = resp.topics.remove(0);
    topic_resp.partitions.remove(0)
}
