//! The bench producer's semantics against a mock cluster (`support::MockBroker`) and, for
//! linger.ms / batch.size, against the accumulator driven by a controlled clock: when batches
//! close, what each Produce request carries, leaders on two brokers, retries with a Metadata
//! refresh, idempotent retries after lost acknowledgements (each record stored once; without
//! idempotence the same faults duplicate), delivery.timeout.ms / max.block.ms against a broker
//! that stops answering, the live hook; and the consumer fetching each partition from its leader
//! on two brokers.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kclient::accumulator::{Accumulator, AccumulatorConfig, Append};
use kclient::batch::BatchBuilder;
use kclient::producer::{self, code, ProducerConfig};
use support::MockBroker;

const VALUE: [u8; 100] = [7; 100];

fn record_cost() -> usize {
    BatchBuilder::record_size(None, Some(&VALUE), &[])
}

/// The exact size of a batch of `n` records of `value` (timestamps all 0).
fn batch_of(n: usize, value: &[u8]) -> usize {
    let mut b = BatchBuilder::new(0);
    for _ in 0..n {
        b.append(0, None, Some(value), &[]);
    }
    b.size()
}

#[test]
fn a_batch_closes_when_full_before_linger_or_when_linger_expires_not_before() {
    // Room for exactly 4 records; linger 5 ms.
    let mut acc = Accumulator::new(
        2,
        AccumulatorConfig {
            batch_size: batch_of(4, &VALUE),
            linger_us: 5_000,
            buffer_memory: 1 << 20,
        },
    );
    // Full: the 4th record closes partition 0's batch at t = 30 µs, long before linger.
    for (i, t) in [0u64, 10, 20].into_iter().enumerate() {
        assert_eq!(
            acc.append(t, 0, 0, None, &VALUE),
            Append::Appended { closed: false },
            "record {i}"
        );
    }
    assert!(acc.take_ready().is_empty());
    assert_eq!(
        acc.append(30, 0, 0, None, &VALUE),
        Append::Appended { closed: true }
    );
    let ready = acc.take_ready();
    assert_eq!(ready.len(), 1);
    assert_eq!((ready[0].partition, ready[0].builder.records()), (0, 4));
    assert_eq!(ready[0].sent_us, vec![0, 10, 20, 30]);

    // Linger: partition 1's batch opened at t = 1000 µs closes at 6000 µs exactly, not before.
    acc.append(1_000, 1, 0, None, &VALUE);
    acc.append(3_000, 1, 0, None, &VALUE);
    assert_eq!(acc.next_linger_deadline(), Some(6_000));
    assert!(acc.expire_linger(5_999, false).is_empty());
    assert!(acc.take_ready().is_empty());
    assert_eq!(acc.expire_linger(6_000, false), vec![1]);
    let ready = acc.take_ready();
    assert_eq!((ready[0].partition, ready[0].builder.records()), (1, 2));
    assert!(acc.is_empty());

    // A record that does not fit closes the open batch and is not appended (the caller re-picks
    // the partition, as the sticky partitioner moves on a new batch).
    let mut acc = Accumulator::new(
        1,
        AccumulatorConfig {
            batch_size: batch_of(3, &VALUE) - 1,
            linger_us: 5_000,
            buffer_memory: 1 << 20,
        },
    );
    acc.append(0, 0, 0, None, &VALUE);
    acc.append(1, 0, 0, None, &VALUE);
    assert_eq!(acc.append(2, 0, 0, None, &VALUE), Append::Rolled);
    assert_eq!(acc.take_ready()[0].builder.records(), 2);

    // buffer.memory: no room once used up, room again once released.
    let mut acc = Accumulator::new(
        1,
        AccumulatorConfig {
            batch_size: 10 * record_cost(),
            linger_us: 5_000,
            buffer_memory: 2 * record_cost(),
        },
    );
    acc.append(0, 0, 0, None, &VALUE);
    acc.append(0, 0, 0, None, &VALUE);
    assert_eq!(acc.append(0, 0, 0, None, &VALUE), Append::NoRoom);
    acc.expire_linger(0, true);
    let b = acc.take_ready().pop().unwrap();
    acc.release(b.reserved);
    assert!(acc.has_room());
    assert_eq!(acc.buffered(), 0);
}

fn config(mock: &MockBroker, records: u64) -> ProducerConfig {
    ProducerConfig {
        records,
        record_size: 100,
        acks: 1,
        linger: Duration::from_millis(2),
        request_timeout_ms: 5_000,
        delivery_timeout: Duration::from_secs(20),
        ..ProducerConfig::new(&mock.bootstrap(), "t")
    }
}

#[test]
fn each_request_carries_full_batches_of_batch_size_over_a_real_socket() {
    let mock = MockBroker::start(1, 1);
    let per_batch = 7u64;
    let mut c = config(&mock, 100);
    // A batch of 7 records is full; a long linger so only fullness (and the final flush) closes.
    // Slack for timestamp deltas of a few bytes, far less than an 8th record.
    c.batch_size = batch_of(per_batch as usize, &[0u8; 100]) + 20;
    c.linger = Duration::from_secs(10);
    let report = producer::run(c).unwrap();
    assert_eq!(report.records_acked, 100, "{report:?}");
    let sizes: Vec<u32> = mock
        .produces()
        .iter()
        .flat_map(|p| p.batches.iter().map(|b| b.records))
        .collect();
    let mut want = vec![7u32; 14];
    want.push(2);
    assert_eq!(sizes, want);
    assert_eq!(report.batches, 15);
}

#[test]
fn partitions_are_sent_to_their_leaders_on_two_brokers() {
    let mock = MockBroker::start(2, 4);
    let mut c = config(&mock, 2_000);
    c.keys = Some(64);
    c.connections = 2;
    let report = producer::run(c).unwrap();
    assert_eq!(report.records_acked, 2_000, "{report:?}");
    assert_eq!(report.brokers, 2);
    let mut by_node: BTreeMap<usize, std::collections::BTreeSet<i32>> = BTreeMap::new();
    for p in mock.produces() {
        for b in &p.batches {
            by_node.entry(p.node).or_default().insert(b.partition);
        }
    }
    assert_eq!(by_node[&0].iter().copied().collect::<Vec<_>>(), vec![0, 2]);
    assert_eq!(by_node[&1].iter().copied().collect::<Vec<_>>(), vec![1, 3]);
    assert_eq!(mock.appended().values().sum::<u64>(), 2_000);
}

#[test]
fn retriable_errors_are_retried_after_a_metadata_refresh_others_fail() {
    let mock = MockBroker::start(1, 1);
    mock.fail_next(&[code::NOT_LEADER_OR_FOLLOWER, code::REQUEST_TIMED_OUT]);
    let mut c = config(&mock, 500);
    c.retry_backoff = Duration::from_millis(20);
    let report = producer::run(c).unwrap();
    assert_eq!(report.records_acked, 500, "{report:?}");
    assert_eq!(report.records_failed, 0);
    assert_eq!(report.retries, 2);
    assert_eq!(mock.appended()[&0], 500);
    // The first Metadata is the run's; NOT_LEADER_OR_FOLLOWER asked again.
    assert!(mock.state.metadata_requests.load(Ordering::SeqCst) >= 2);

    // retries=0: the same error fails the batch, counted.
    let mock = MockBroker::start(1, 1);
    mock.fail_next(&[code::NOT_LEADER_OR_FOLLOWER]);
    let mut c = config(&mock, 500);
    c.retries = 0;
    let report = producer::run(c).unwrap();
    assert!(report.records_failed > 0, "{report:?}");
    assert_eq!(report.records_acked + report.records_failed, 500);
    assert_eq!(report.first_error, Some(code::NOT_LEADER_OR_FOLLOWER));
    assert_eq!(mock.appended()[&0], report.records_acked);
}

#[test]
fn idempotent_retries_after_lost_acknowledgements_store_each_record_once() {
    // The mock appends a batch, then cuts the connection instead of answering: the client must
    // resend. With idempotence the resends carry the same producer id and sequences and the mock
    // (as a broker does) stores them once; without, the same faults store duplicates.
    let run = |idempotence: bool| {
        let mock = MockBroker::start(1, 2);
        mock.state.cut_next.store(3, Ordering::SeqCst);
        let mut c = config(&mock, 3_000);
        c.acks = -1;
        c.idempotence = idempotence;
        c.keys = Some(16);
        c.retry_backoff = Duration::from_millis(10);
        let report = producer::run(c).unwrap();
        assert_eq!(report.records_acked, 3_000, "{report:?}");
        assert!(report.retries >= 3, "{report:?}");
        (mock.appended().values().sum::<u64>(), mock.produces())
    };
    let (stored, produces) = run(true);
    assert_eq!(stored, 3_000);
    // Sequences per partition: contiguous from 0, each batch starting where the last ended.
    let mut next: BTreeMap<i32, i32> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for b in produces.iter().flat_map(|p| &p.batches) {
        assert!(b.producer_id >= 1000, "{b:?}");
        if !seen.insert((b.partition, b.base_sequence)) {
            continue; // a resend
        }
        let n = next.entry(b.partition).or_insert(0);
        assert_eq!(b.base_sequence, *n, "partition {}", b.partition);
        *n += b.records as i32;
    }
    assert_eq!(next.values().map(|&n| n as u64).sum::<u64>(), 3_000);
    let (stored, _) = run(false);
    assert!(
        stored > 3_000,
        "the faults must duplicate without idempotence"
    );
}

#[test]
fn a_broker_that_stops_answering_fails_records_by_delivery_timeout_and_max_block() {
    let mock = MockBroker::start(1, 1);
    mock.state.answering.store(false, Ordering::SeqCst);
    let record = BatchBuilder::record_size(None, Some(&[0u8; 100]), &[]);
    let c = ProducerConfig {
        rate: Some(2_000.0),
        batch_size: 10 * record,
        buffer_memory: 50 * record,
        max_block: Duration::from_millis(100),
        request_timeout_ms: 200,
        delivery_timeout: Duration::from_millis(400),
        retry_backoff: Duration::from_millis(20),
        ..config(&mock, 100)
    };
    let report = producer::run(c).unwrap();
    assert_eq!(report.records_acked, 0, "{report:?}");
    assert_eq!(report.records_failed, 100, "{report:?}");
    assert!(report.records_expired > 0, "{report:?}");
    assert!(report.records_blocked > 0, "{report:?}");
    assert_eq!(
        report.records_expired + report.records_blocked,
        report.records_failed
    );
    // request.timeout.ms gave up connections and the batches were resent before they expired.
    assert!(report.retries > 0, "{report:?}");
}

/// A live hook that asks the clients to stop once 500 records were acknowledged.
#[derive(Default)]
struct StopAt500 {
    acked: std::sync::Arc<std::sync::atomic::AtomicU64>,
    finished: std::sync::Mutex<Option<u64>>,
}

struct StopAt500Client(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl producer::LiveClient for StopAt500Client {
    fn tick(&mut self) -> bool {
        self.0.load(Ordering::SeqCst) >= 500
    }
    fn acked(&mut self, latency_us: u64) {
        assert!(latency_us > 0);
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl producer::LiveHook for StopAt500 {
    fn client(self: std::sync::Arc<Self>) -> Box<dyn producer::LiveClient> {
        Box::new(StopAt500Client(self.acked.clone()))
    }
    fn finish(&self, h: &producer::ProduceHistograms) {
        *self.finished.lock().unwrap() = Some(h.latency.len());
    }
}

#[test]
fn a_live_hook_sees_every_acknowledgement_and_can_stop_the_run() {
    let mock = MockBroker::start(1, 2);
    let hook = std::sync::Arc::new(StopAt500::default());
    let c = ProducerConfig {
        rate: Some(5_000.0),
        connections: 2,
        live: Some(hook.clone()),
        ..config(&mock, 1_000_000)
    };
    let report = producer::run(c).unwrap();
    let acked = hook.acked.load(Ordering::SeqCst);
    assert!((500..1_000_000).contains(&acked), "{acked}");
    assert_eq!(report.records_acked, acked);
    assert_eq!(*hook.finished.lock().unwrap(), Some(acked));
    assert_eq!(mock.appended().values().sum::<u64>(), acked);
}

#[test]
fn the_consumer_reads_each_partition_from_its_leader_on_two_brokers() {
    use kclient::consumer::{self, ConsumerConfig};
    let mock = MockBroker::start(2, 4);
    let mut c = config(&mock, 3_000);
    c.keys = Some(100);
    c.compression = kclient::batch::Compression::Zstd;
    assert_eq!(producer::run(c).unwrap().records_acked, 3_000);
    let report = consumer::run(ConsumerConfig {
        records: Some(3_000),
        consumers: 2,
        // Small fetches: many requests per partition.
        max_partition_fetch_bytes: 2_000,
        duration: Duration::from_secs(30),
        ..ConsumerConfig::new(&mock.bootstrap(), "t")
    })
    .unwrap();
    assert_eq!(report.records, 3_000, "{report:?}");
    assert_eq!(report.value_bytes, 3_000 * 100);
    let appended: BTreeMap<u32, u64> = mock
        .appended()
        .into_iter()
        .map(|(p, n)| (p as u32, n))
        .collect();
    assert_eq!(report.per_partition, appended);
    assert_eq!(report.codecs.keys().collect::<Vec<_>>(), vec!["zstd"]);
    // Each partition was fetched from its leader only: p % 2.
    let fetched = mock.state.fetched.lock().unwrap().clone();
    assert!(fetched.iter().any(|&(n, _)| n == 1), "{fetched:?}");
    assert!(
        fetched.iter().all(|&(n, p)| n == p as usize % 2),
        "{fetched:?}"
    );
}
