//! The idempotent producer's rules through the in-process broker, with exact answers (the
//! semantics behind `cli/tests/idempotence.rs`, whose real clients through a lossy proxy stay as
//! the conformance layer): InitProducerId hands out distinct ids and refuses transactional ids; on
//! partitions of both shards a retried batch is answered with its original offsets and appended
//! once, a gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH, a newer
//! one must start at sequence 0, a negative sequence is INVALID_RECORD; a retry is still
//! recognised after a restart; a producer silent for producer.id.expiration.ms by the broker's
//! (manual) clock is forgotten and may start at any sequence.
//!
//! Must not: test a client's retry logic (the cli tests do, with real clients).

mod harness;

use std::time::Duration;

use bytes::Bytes;
use harness::{create_topic, eventually, list_offset, produce, read_all, record, text, Harness};
use kafka_protocol::messages::{InitProducerIdRequest, TransactionalId};
use kclient::conn::BlockingConn;
use wire::batch::{encode_batch, set_producer};
use wire::error_code as ec;

/// InitProducerId v4 without a transactional id → (error, producer id, epoch).
fn init_producer_id(conn: &mut BlockingConn, transactional_id: Option<&str>) -> (i16, i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(transactional_id.map(|t| TransactionalId(text(t))))
        .with_transaction_timeout_ms(60_000);
    let resp = conn.call_blocking(&req, 4).expect("InitProducerId");
    (resp.error_code, resp.producer_id.0, resp.producer_epoch)
}

/// A batch of `count` records from producer `id`/`epoch` starting at `sequence`, stamped `at`.
fn idempotent_batch(id: i64, epoch: i16, sequence: i32, count: usize, at: i64) -> Bytes {
    let records: Vec<_> = (0..count)
        .map(|i| {
            let n = i64::from(sequence) + i as i64;
            record(&format!("k{n}"), Some(&format!("v{n}")), at)
        })
        .collect();
    let mut bytes = encode_batch(&records);
    set_producer(&mut bytes, id, epoch, sequence);
    Bytes::from(bytes)
}

/// Produce acks=-1 → (error, base offset).
fn send(conn: &mut BlockingConn, topic: &str, partition: i32, batch: Bytes) -> (i16, i64) {
    let answer = produce(conn, topic, partition, -1, batch);
    (answer.error_code, answer.base_offset)
}

#[test]
fn init_producer_id_hands_out_distinct_ids_and_refuses_transactions() {
    let h = Harness::start();
    let mut a = h.conn();
    let mut b = h.conn();
    let (code_a, id_a, epoch_a) = init_producer_id(&mut a, None);
    let (code_b, id_b, epoch_b) = init_producer_id(&mut b, None);
    assert_eq!(
        (code_a, code_b, epoch_a, epoch_b),
        (ec::NONE, ec::NONE, 0, 0)
    );
    assert!(id_a >= 0 && id_b >= 0 && id_a != id_b, "{id_a} {id_b}");
    let (code, _, _) = init_producer_id(&mut a, Some("tx-1"));
    assert_eq!(code, ec::COORDINATOR_NOT_AVAILABLE);
}

#[test]
fn sequence_rules_on_partitions_of_both_shards() {
    let h = Harness::start();
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "safe", 2, &[]), ec::NONE);
    let (_, id, _) = init_producer_id(&mut c, None);
    let at = h.clock.get();
    for p in [0, 1] {
        let first = idempotent_batch(id, 0, 0, 5, at);
        assert_eq!(
            send(&mut c, "safe", p, first.clone()),
            (ec::NONE, 0),
            "p{p}"
        );
        assert_eq!(
            send(&mut c, "safe", p, idempotent_batch(id, 0, 5, 3, at)),
            (ec::NONE, 5)
        );
        // A retry of either of the last batches: its first offset again, nothing appended.
        assert_eq!(
            send(&mut c, "safe", p, first),
            (ec::NONE, 0),
            "p{p}: a retry"
        );
        assert_eq!(
            send(&mut c, "safe", p, idempotent_batch(id, 0, 5, 3, at)),
            (ec::NONE, 5)
        );
        assert_eq!(
            list_offset(&mut c, "safe", p, -1).offset,
            8,
            "p{p}: appended once"
        );
        // A gap, and a batch overlapping the last one without matching it.
        let gap = send(&mut c, "safe", p, idempotent_batch(id, 0, 10, 1, at));
        assert_eq!(gap.0, ec::OUT_OF_ORDER_SEQUENCE_NUMBER, "p{p}");
        let overlap = send(&mut c, "safe", p, idempotent_batch(id, 0, 6, 3, at));
        assert_eq!(overlap.0, ec::OUT_OF_ORDER_SEQUENCE_NUMBER, "p{p}");
        // A newer epoch must start at 0; then the old epoch is fenced.
        let bumped = send(&mut c, "safe", p, idempotent_batch(id, 1, 8, 1, at));
        assert_eq!(bumped.0, ec::OUT_OF_ORDER_SEQUENCE_NUMBER, "p{p}");
        assert_eq!(
            send(&mut c, "safe", p, idempotent_batch(id, 1, 0, 2, at)),
            (ec::NONE, 8)
        );
        let old = send(&mut c, "safe", p, idempotent_batch(id, 0, 8, 1, at));
        assert_eq!(old.0, ec::INVALID_PRODUCER_EPOCH, "p{p}");
        let negative = send(&mut c, "safe", p, idempotent_batch(id, 1, -5, 1, at));
        assert_eq!(negative.0, ec::INVALID_RECORD, "p{p}");
        let values: Vec<String> = read_all(&mut c, "safe", p, 0)
            .into_iter()
            .filter_map(|r| r.value)
            .collect();
        let expected: Vec<String> = (0..8).chain(0..2).map(|n| format!("v{n}")).collect();
        assert_eq!(
            values, expected,
            "p{p}: every refused batch left the log alone"
        );
    }
}

#[test]
fn a_retry_is_still_recognised_after_a_restart() {
    let mut h = Harness::start();
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "safe", 2, &[]), ec::NONE);
    let (_, id, _) = init_producer_id(&mut c, None);
    let at = h.clock.get();
    for p in [0, 1] {
        for (sequence, offset) in [(0, 0), (4, 4)] {
            let batch = idempotent_batch(id, 0, sequence, 4, at);
            assert_eq!(send(&mut c, "safe", p, batch), (ec::NONE, offset));
        }
    }
    h.restart();
    let mut c = h.conn();
    for p in [0, 1] {
        let retry = idempotent_batch(id, 0, 4, 4, at);
        assert_eq!(send(&mut c, "safe", p, retry), (ec::NONE, 4), "p{p}");
        let gap = send(&mut c, "safe", p, idempotent_batch(id, 0, 9, 1, at));
        assert_eq!(gap.0, ec::OUT_OF_ORDER_SEQUENCE_NUMBER, "p{p}");
        assert_eq!(
            send(&mut c, "safe", p, idempotent_batch(id, 0, 8, 1, at)),
            (ec::NONE, 8)
        );
    }
}

/// producer.id.expiration.ms = 60 s by the broker's clock (checked every 100 ms): a gap is
/// refused while the producer is remembered, and accepted (KIP-360) once the clock is past
/// expiration after its last batch's timestamp.
#[test]
fn a_producer_is_forgotten_after_producer_id_expiration_by_the_brokers_clock() {
    let h = Harness::start_with(|cfg| cfg.producer_id_expiration_ms = 60_000);
    let mut c = h.conn();
    assert_eq!(create_topic(&mut c, "safe", 1, &[]), ec::NONE);
    let (_, id, _) = init_producer_id(&mut c, None);
    let at = h.clock.get();
    assert_eq!(
        send(&mut c, "safe", 0, idempotent_batch(id, 0, 0, 3, at)),
        (ec::NONE, 0)
    );
    h.clock.advance(59_000);
    std::thread::sleep(Duration::from_millis(500)); // five expiry checks
    let gap = send(&mut c, "safe", 0, idempotent_batch(id, 0, 100, 1, at));
    assert_eq!(gap.0, ec::OUT_OF_ORDER_SEQUENCE_NUMBER, "still remembered");
    h.clock.advance(2_000);
    let offset = eventually(
        "the producer expires",
        Duration::from_secs(10),
        || match send(&mut c, "safe", 0, idempotent_batch(id, 0, 100, 1, at)) {
            (ec::NONE, offset) => Some(offset),
            (code, _) => {
                assert_eq!(code, ec::OUT_OF_ORDER_SEQUENCE_NUMBER);
                None
            }
        },
    );
    assert_eq!(offset, 3);
}
