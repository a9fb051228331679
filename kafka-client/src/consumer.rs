//! consumer — the load-measuring Kafka consumer behind `weir bench consume` and the consuming
//! half of `weir bench e2e`: Fetch-based, on glommio executors, partitions assigned explicitly (no
//! group), starting at the earliest or latest offset (ListOffsets), with Kafka's fetch.min.bytes,
//! fetch.max.wait.ms, max.partition.fetch.bytes and fetch.max.bytes.
//!
//! One client is one consumer: it takes partitions p with p % consumers == its index and keeps
//! one connection per partition leader, each with one Fetch outstanding (as the Java consumer).
//! Batches of every codec are decoded (`batch::decode_batch`); records before the fetch offset (a
//! batch the broker returned whole) are skipped; a partial batch at the end of a response is
//! fetched again. It counts records, value bytes and batch bytes, and, with `e2e`, reads each
//! value's first 8 bytes as the producer's send time ([`clock::epoch_us`]) and records end-to-end
//! latency (consume time − send time) in an HDR histogram.
//!
//! Owns the client side of Fetch and ListOffsets. Must not read argv, join groups or commit
//! offsets, and must not depend on the broker's internals (wire protocol only).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::wire::batch::BatchHeader;
use hdrhistogram::Histogram;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use serde::{Deserialize, Serialize};

use crate::batch::{decode_batch, BatchError};
use crate::clock;
use crate::conn::{self, WireError};
use crate::metadata::{self, TopicMeta};
use crate::producer::{new_histogram, Latency};

const FETCH_VERSION: i16 = 4;
const LIST_OFFSETS_VERSION: i16 = 1;
use ::wire::error_code::OFFSET_OUT_OF_RANGE;

/// Errors of a consumer run.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("bad consumer configuration: {0}")]
    Config(String),
    #[error("{0}")]
    Broker(String),
    #[error("glommio executor: {0}")]
    Executor(String),
}

/// Where a partition is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartAt {
    Earliest,
    Latest,
}

/// A start position that is neither `earliest` nor `latest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?}: use earliest or latest")]
pub struct UnknownStartAt(pub String);

impl std::str::FromStr for StartAt {
    type Err = UnknownStartAt;
    fn from_str(s: &str) -> Result<StartAt, UnknownStartAt> {
        match s {
            "earliest" => Ok(StartAt::Earliest),
            "latest" => Ok(StartAt::Latest),
            other => Err(UnknownStartAt(other.to_string())),
        }
    }
}

/// A consumer run, with Kafka's names where Kafka has them.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// bootstrap.servers (one host:port).
    pub bootstrap: String,
    pub topic: String,
    /// Partitions to read (`None`: all of the topic's).
    pub partitions: Option<Vec<u32>>,
    /// auto.offset.reset, as where to start.
    pub start: StartAt,
    /// Stop once this many records were read in all (`None`: at `duration` or when idle).
    pub records: Option<u64>,
    /// Stop after this long in any case.
    pub duration: Duration,
    /// Stop once no record arrived for this long after the first one.
    pub idle: Option<Duration>,
    /// fetch.min.bytes
    pub fetch_min_bytes: i32,
    /// fetch.max.wait.ms
    pub fetch_max_wait: Duration,
    /// max.partition.fetch.bytes
    pub max_partition_fetch_bytes: i32,
    /// fetch.max.bytes
    pub fetch_max_bytes: i32,
    /// Read the producer's send time from each value's first 8 bytes (end-to-end latency).
    pub e2e: bool,
    /// Consumer clients in all, spread over `executors`.
    pub consumers: usize,
    pub executors: usize,
    pub request_timeout: Duration,
    pub client_id: String,
}

impl ConsumerConfig {
    /// Kafka's consumer defaults for everything but the target.
    pub fn new(bootstrap: &str, topic: &str) -> ConsumerConfig {
        ConsumerConfig {
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
            partitions: None,
            start: StartAt::Earliest,
            records: None,
            duration: Duration::from_secs(60),
            idle: None,
            fetch_min_bytes: 1,
            fetch_max_wait: Duration::from_millis(500),
            max_partition_fetch_bytes: 1 << 20,
            fetch_max_bytes: 50 << 20,
            e2e: false,
            consumers: 1,
            executors: 1,
            request_timeout: Duration::from_secs(30),
            client_id: "weir-bench".to_string(),
        }
    }

    fn check(&self) -> Result<(), ConsumerError> {
        let bad = |s: &str| Err(ConsumerError::Config(s.to_string()));
        if self.consumers == 0 || self.executors == 0 {
            return bad("consumers and executors must be at least 1");
        }
        if self.fetch_min_bytes < 0
            || self.max_partition_fetch_bytes <= 0
            || self.fetch_max_bytes <= 0
        {
            return bad("fetch sizes must be positive");
        }
        if self.records.is_none() && self.idle.is_none() && self.duration.is_zero() {
            return bad("give records, an idle time or a duration to stop at");
        }
        Ok(())
    }
}

/// The raw histogram (µs) of end-to-end latency, to merge across runs (not serialised).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsumeHistograms {
    pub e2e: Histogram<u64>,
}

/// The result of one consumer run (the JSON `weir bench consume --json` writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumeReport {
    pub bootstrap: String,
    pub topic: String,
    pub partitions: u32,
    pub consumers: usize,
    pub start: StartAt,
    pub records: u64,
    /// Record value bytes read.
    pub value_bytes: u64,
    /// Batch bytes received (as on the wire, compressed).
    pub batch_bytes: u64,
    pub batches: u64,
    pub fetches: u64,
    /// Partition errors answered to Fetch (each retried).
    pub fetch_errors: u64,
    /// Records per partition.
    pub per_partition: BTreeMap<u32, u64>,
    /// Batches per codec name.
    pub codecs: BTreeMap<String, u64>,
    /// Start (offsets found) → last record read, seconds (the rates' denominator).
    pub elapsed_s: f64,
    pub records_per_s: f64,
    pub value_mb_per_s: f64,
    pub wire_mb_per_s: f64,
    /// Send (stamped by the producer) → consumed, per record; only with `e2e`.
    pub e2e_latency: Option<Latency>,
    #[serde(skip)]
    pub histograms: Option<ConsumeHistograms>,
}

impl ConsumeReport {
    pub fn summary(&self) -> String {
        let e2e = self
            .e2e_latency
            .as_ref()
            .map_or(String::new(), |l| format!("e2e       {}\n", l.line()));
        format!(
            "consume {} ({} partitions, {} consumers, from {:?}) via {}: {} records in {:.2} s ({} fetches, {} batches, {} fetch errors)\n\
             rate      {:.0} records/s  {:.1} MB/s values  {:.1} MB/s on the wire\n{}",
            self.topic,
            self.partitions,
            self.consumers,
            self.start,
            self.bootstrap,
            self.records,
            self.elapsed_s,
            self.fetches,
            self.batches,
            self.fetch_errors,
            self.records_per_s,
            self.value_mb_per_s,
            self.wire_mb_per_s,
            e2e
        )
    }
}

/// Counts shared by the fetch tasks of one client.
struct Counts {
    records: u64,
    value_bytes: u64,
    batch_bytes: u64,
    batches: u64,
    fetches: u64,
    fetch_errors: u64,
    per_partition: BTreeMap<u32, u64>,
    codecs: BTreeMap<String, u64>,
    e2e: Histogram<u64>,
    first_us: Option<u64>,
    last_us: u64,
}

impl Counts {
    fn new() -> Counts {
        Counts {
            records: 0,
            value_bytes: 0,
            batch_bytes: 0,
            batches: 0,
            fetches: 0,
            fetch_errors: 0,
            per_partition: BTreeMap::new(),
            codecs: BTreeMap::new(),
            e2e: new_histogram(),
            first_us: None,
            last_us: 0,
        }
    }

    fn merge(&mut self, o: Counts) -> Result<(), ConsumerError> {
        self.records += o.records;
        self.value_bytes += o.value_bytes;
        self.batch_bytes += o.batch_bytes;
        self.batches += o.batches;
        self.fetches += o.fetches;
        self.fetch_errors += o.fetch_errors;
        for (p, n) in o.per_partition {
            *self.per_partition.entry(p).or_insert(0) += n;
        }
        for (c, n) in o.codecs {
            *self.codecs.entry(c).or_insert(0) += n;
        }
        self.e2e
            .add(&o.e2e)
            .map_err(|e| ConsumerError::Broker(format!("merging histograms: {e}")))?;
        self.first_us = match (self.first_us, o.first_us) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_us = self.last_us.max(o.last_us);
        Ok(())
    }
}

/// What the whole run shares across executors: records read in all (for the stop), and how many
/// clients have found their start offsets (the e2e runner starts producing after that).
#[derive(Default)]
pub struct Progress {
    pub records: AtomicU64,
    pub positioned: AtomicUsize,
    /// Set to ask every client to stop (the e2e runner, when its producers failed).
    pub stop: std::sync::atomic::AtomicBool,
    /// Keep `e2e_interval` (the runner sets it; other users pay nothing for it).
    pub e2e_intervals: bool,
    /// With `e2e` and `e2e_intervals`: the end-to-end latencies recorded since the last
    /// [`Progress::cut_e2e`] (the runner cuts them once a second into the HDR log's
    /// intervals); created on first use.
    pub e2e_interval: std::sync::Mutex<Option<Histogram<u64>>>,
}

impl Progress {
    /// The end-to-end latencies recorded since the previous cut (or the start), which start
    /// afresh; `None` when none were recorded.
    pub fn cut_e2e(&self) -> Option<Histogram<u64>> {
        self.e2e_interval
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn record_e2e(&self, samples: &[u64]) {
        if samples.is_empty() {
            return;
        }
        let mut slot = self.e2e_interval.lock().unwrap_or_else(|e| e.into_inner());
        let h = slot.get_or_insert_with(new_histogram);
        for &us in samples {
            let _ = h.record(us);
        }
    }
}

/// Runs the consumer to completion and reports.
pub fn run(config: ConsumerConfig) -> Result<ConsumeReport, ConsumerError> {
    run_with(config, Arc::new(Progress::default()))
}

/// As [`run`], sharing `progress` with the caller (a runner that watches the records read, stops
/// the consumers, or cuts end-to-end latency intervals).
pub fn run_with(
    config: ConsumerConfig,
    progress: Arc<Progress>,
) -> Result<ConsumeReport, ConsumerError> {
    config.check()?;
    let meta = metadata::initial_metadata(
        &config.bootstrap,
        &config.topic,
        &config.client_id,
        config.request_timeout,
    )?;
    let partitions: Vec<u32> = match &config.partitions {
        Some(list) => {
            if let Some(p) = list.iter().find(|&&p| p >= meta.partitions()) {
                return Err(ConsumerError::Config(format!(
                    "partition {p} of a topic with {}",
                    meta.partitions()
                )));
            }
            list.clone()
        }
        None => (0..meta.partitions()).collect(),
    };
    let start = Instant::now();
    let per_exec = split(config.consumers, config.executors);
    let mut threads = Vec::new();
    let mut index = 0;
    for (e, n) in per_exec.into_iter().enumerate() {
        let clients: Vec<Vec<u32>> = (index..index + n)
            .map(|i| {
                partitions
                    .iter()
                    .copied()
                    .filter(|p| *p as usize % config.consumers == i)
                    .collect()
            })
            .collect();
        index += n;
        let (config, meta, progress) = (config.clone(), meta.clone(), progress.clone());
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name(&format!("bench-consume-{e}"))
            .spawn(move || async move {
                let tasks: Vec<_> = clients
                    .into_iter()
                    .map(|mine| {
                        let (config, meta, progress) =
                            (config.clone(), meta.clone(), progress.clone());
                        glommio::spawn_local(async move {
                            client(&config, &meta, mine, &progress, start).await
                        })
                    })
                    .collect();
                futures::future::join_all(tasks).await
            })
            .map_err(|e| ConsumerError::Executor(e.to_string()))?;
        threads.push(handle);
    }
    let mut total = Counts::new();
    for t in threads {
        for r in t
            .join()
            .map_err(|e| ConsumerError::Executor(e.to_string()))?
        {
            total.merge(r?)?;
        }
    }
    let elapsed = total.last_us as f64 / 1e6;
    let per_s = |n: f64| if elapsed > 0.0 { n / elapsed } else { 0.0 };
    Ok(ConsumeReport {
        bootstrap: config.bootstrap.clone(),
        topic: config.topic.clone(),
        partitions: partitions.len() as u32,
        consumers: config.consumers,
        start: config.start,
        records: total.records,
        value_bytes: total.value_bytes,
        batch_bytes: total.batch_bytes,
        batches: total.batches,
        fetches: total.fetches,
        fetch_errors: total.fetch_errors,
        per_partition: total.per_partition,
        codecs: total.codecs,
        elapsed_s: elapsed,
        records_per_s: per_s(total.records as f64),
        value_mb_per_s: per_s(total.value_bytes as f64) / 1e6,
        wire_mb_per_s: per_s(total.batch_bytes as f64) / 1e6,
        e2e_latency: config.e2e.then(|| Latency::of(&total.e2e)),
        histograms: Some(ConsumeHistograms { e2e: total.e2e }),
    })
}

fn split(n: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| n / parts + usize::from(i < n % parts))
        .collect()
}

/// One consumer client: one fetch loop per leader of its partitions.
async fn client(
    config: &ConsumerConfig,
    meta: &TopicMeta,
    partitions: Vec<u32>,
    progress: &Progress,
    start: Instant,
) -> Result<Counts, ConsumerError> {
    let mut by_leader: HashMap<i32, (SocketAddr, Vec<u32>)> = HashMap::new();
    for p in partitions {
        let (node, addr) = meta
            .leader_addr(p)
            .ok_or_else(|| ConsumerError::Broker(format!("partition {p} has no leader")))?;
        by_leader
            .entry(node)
            .or_insert((addr, Vec::new()))
            .1
            .push(p);
    }
    let counts = Rc::new(RefCell::new(Counts::new()));
    let mut streams = Vec::new();
    for (addr, ps) in by_leader.into_values() {
        let mut s = glommio::net::TcpStream::connect_timeout(addr, config.request_timeout)
            .await
            .map_err(|e| {
                ConsumerError::Wire(WireError::Io {
                    what: format!("connecting {addr}"),
                    source: e.into(),
                })
            })?;
        let _ = s.set_nodelay(true);
        let mut offsets = Vec::new();
        for &p in &ps {
            offsets.push((p, list_offset(config, &mut s, p, config.start).await?));
        }
        streams.push((s, offsets));
    }
    progress.positioned.fetch_add(1, Ordering::SeqCst);
    let loops = streams.into_iter().map(|(s, offsets)| {
        let counts = counts.clone();
        fetch_loop(config, s, offsets, counts, progress, start)
    });
    for r in futures::future::join_all(loops).await {
        r?;
    }
    let counts = Rc::try_unwrap(counts)
        .map_err(|_| ConsumerError::Broker("fetch loops still running".into()))?;
    Ok(counts.into_inner())
}

/// The earliest (-2) or latest (-1) offset of `partition`.
async fn list_offset(
    config: &ConsumerConfig,
    s: &mut glommio::net::TcpStream,
    partition: u32,
    at: StartAt,
) -> Result<i64, ConsumerError> {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(config.topic.clone())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition as i32)
                .with_timestamp(match at {
                    StartAt::Earliest => -2,
                    StartAt::Latest => -1,
                })])]);
    let response: ListOffsetsResponse = conn::exchange(
        s,
        ApiKey::ListOffsets,
        LIST_OFFSETS_VERSION,
        1,
        &config.client_id,
        &request,
    )
    .await?;
    let p = response
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .find(|p| p.partition_index == partition as i32)
        .ok_or_else(|| ConsumerError::Broker(format!("no offset for partition {partition}")))?;
    if p.error_code != 0 {
        return Err(ConsumerError::Broker(format!(
            "ListOffsets partition {partition}: error code {}",
            p.error_code
        )));
    }
    Ok(p.offset)
}

fn done(config: &ConsumerConfig, progress: &Progress, counts: &Counts, start: Instant) -> bool {
    let now = start.elapsed();
    if progress.stop.load(Ordering::SeqCst) || now >= config.duration {
        return true;
    }
    if config
        .records
        .is_some_and(|n| progress.records.load(Ordering::SeqCst) >= n)
    {
        return true;
    }
    match (config.idle, counts.first_us) {
        (Some(idle), Some(_)) => now.as_micros() as u64 >= counts.last_us + idle.as_micros() as u64,
        _ => false,
    }
}

async fn fetch_loop(
    config: &ConsumerConfig,
    mut s: glommio::net::TcpStream,
    mut offsets: Vec<(u32, i64)>,
    counts: Rc<RefCell<Counts>>,
    progress: &Progress,
    start: Instant,
) -> Result<(), ConsumerError> {
    let mut correlation = 1i32;
    loop {
        if done(config, progress, &counts.borrow(), start) {
            return Ok(());
        }
        correlation = correlation.wrapping_add(1);
        let topics = vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(config.topic.clone())))
            .with_partitions(
                offsets
                    .iter()
                    .map(|&(p, offset)| {
                        FetchPartition::default()
                            .with_partition(p as i32)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(config.max_partition_fetch_bytes)
                    })
                    .collect(),
            )];
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(config.fetch_max_wait.as_millis() as i32)
            .with_min_bytes(config.fetch_min_bytes)
            .with_max_bytes(config.fetch_max_bytes)
            .with_topics(topics);
        let response: FetchResponse = conn::exchange(
            &mut s,
            ApiKey::Fetch,
            FETCH_VERSION,
            correlation,
            &config.client_id,
            &request,
        )
        .await?;
        let (errors, out_of_range) = {
            let mut c = counts.borrow_mut();
            absorb(config, &response, &mut offsets, &mut c, progress, start)?
        };
        for p in out_of_range {
            let offset = list_offset(config, &mut s, p, StartAt::Earliest).await?;
            if let Some(slot) = offsets.iter_mut().find(|(q, _)| *q == p) {
                slot.1 = offset;
            }
        }
        if errors {
            glommio::timer::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Counts one Fetch response's records and moves the fetch offsets past them; returns whether a
/// partition answered an error, and the partitions whose offset is out of range.
fn absorb(
    config: &ConsumerConfig,
    response: &FetchResponse,
    offsets: &mut [(u32, i64)],
    c: &mut Counts,
    progress: &Progress,
    start: Instant,
) -> Result<(bool, Vec<u32>), ConsumerError> {
    let now_epoch_us = clock::epoch_us();
    let now_us = start.elapsed().as_micros() as u64;
    c.fetches += 1;
    let mut errors = false;
    let mut out_of_range = Vec::new();
    // This response's end-to-end samples, handed to `progress` under one lock at the end.
    let mut e2e = Vec::new();
    for part in response.responses.iter().flat_map(|t| &t.partitions) {
        let Some(slot) = offsets
            .iter_mut()
            .find(|(p, _)| *p as i32 == part.partition_index)
        else {
            continue;
        };
        if part.error_code != 0 {
            c.fetch_errors += 1;
            errors = true;
            if part.error_code == OFFSET_OUT_OF_RANGE {
                out_of_range.push(slot.0);
            }
            continue;
        }
        let Some(records) = &part.records else {
            continue;
        };
        let mut rest = &records[..];
        let mut read = 0u64;
        while let Some(h) = BatchHeader::parse(rest) {
            let Some(len) = h.total_len().filter(|&l| l <= rest.len()) else {
                break; // a partial batch at the end: fetched again from its offset
            };
            let batch = &rest[..len];
            rest = &rest[len..];
            let next = h.base_offset + i64::from(h.last_offset_delta) + 1;
            if next <= slot.1 {
                continue; // wholly before the fetch offset
            }
            let codec =
                crate::batch::Compression::from_id(h.compression()).map_err(BatchError::from)?;
            *c.codecs.entry(codec.name().to_string()).or_insert(0) += 1;
            c.batches += 1;
            c.batch_bytes += len as u64;
            for r in decode_batch(batch)? {
                if h.base_offset + i64::from(r.offset_delta) < slot.1 {
                    continue;
                }
                read += 1;
                let value = r.value.as_deref().unwrap_or(&[]);
                c.value_bytes += value.len() as u64;
                if config.e2e {
                    if let Some(stamp) = value.get(..8) {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(stamp);
                        let sent = u64::from_be_bytes(b);
                        let us = now_epoch_us.saturating_sub(sent).max(1);
                        if c.e2e.record(us).is_ok() && progress.e2e_intervals {
                            e2e.push(us);
                        }
                    }
                }
            }
            slot.1 = next;
        }
        if read > 0 {
            c.records += read;
            *c.per_partition.entry(slot.0).or_insert(0) += read;
            c.first_us.get_or_insert(now_us);
            c.last_us = now_us;
            progress.records.fetch_add(read, Ordering::SeqCst);
        }
    }
    progress.record_e2e(&e2e);
    Ok((errors, out_of_range))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_round_trips_through_json_without_its_histograms() {
        let mut h = new_histogram();
        h.record(1500).unwrap();
        let report = ConsumeReport {
            bootstrap: "h:1".into(),
            topic: "t".into(),
            partitions: 2,
            consumers: 1,
            start: StartAt::Latest,
            records: 1,
            value_bytes: 10,
            batch_bytes: 80,
            batches: 1,
            fetches: 3,
            fetch_errors: 0,
            per_partition: BTreeMap::from([(1, 1)]),
            codecs: BTreeMap::from([("lz4".to_string(), 1)]),
            elapsed_s: 0.5,
            records_per_s: 2.0,
            value_mb_per_s: 0.0,
            wire_mb_per_s: 0.0,
            e2e_latency: Some(Latency::of(&h)),
            histograms: Some(ConsumeHistograms { e2e: h }),
        };
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"start\":\"latest\""), "{json}");
        let back: ConsumeReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back.histograms, None);
        assert_eq!(
            back,
            ConsumeReport {
                histograms: None,
                ..report.clone()
            }
        );
        assert!(report.summary().contains("e2e"));
        assert_eq!(report.e2e_latency.unwrap().p50_ms, 1.5);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut c = ConsumerConfig::new("h:1", "t");
        assert!(c.check().is_ok());
        c.consumers = 0;
        assert!(c.check().is_err());
        let mut c = ConsumerConfig::new("h:1", "t");
        c.max_partition_fetch_bytes = 0;
        assert!(c.check().is_err());
        assert_eq!("latest".parse::<StartAt>(), Ok(StartAt::Latest));
        assert!("middle".parse::<StartAt>().is_err());
    }
}
