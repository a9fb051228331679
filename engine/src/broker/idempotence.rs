//! The idempotent producer: InitProducerId hands out producer ids (blocks of ids reserved in the
//! coordinator, so ids are unique across shards, brokers and restarts), and each partition keeps,
//! per producer id, the epoch and the last five batches' sequence ranges so a retried batch is
//! answered with its original offsets instead of being appended twice, and a gap is refused.
//!
//! Owns the sequence rules (Kafka's: same epoch → the next batch must start at last sequence + 1,
//! wrapping after i32::MAX; a higher epoch restarts; a lower one is fenced). Must not: append or
//! wait (the Produce handler does both), or run anywhere but the partition's owning shard.
//!
//! What production would do differently (later issue): the table is rebuilt from the log (or a
//! snapshot) at open; here it starts empty after a restart, so a retry that crosses a broker
//! restart is not recognised as a duplicate. Transactions are not supported.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use futures::FutureExt;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use super::{store, Broker};
use crate::batch::BatchHeader;
use crate::protocol::error_code as ec;
use crate::protocol::header::RequestHeader;
use crate::protocol::{encode_response, ProtocolError};
use crate::shard::Completion;

/// Batches remembered per producer (Kafka's max.in.flight limit for idempotence).
const RECENT_BATCHES_MAX: usize = 5;

#[derive(Debug, Clone, Copy)]
struct Seen {
    first_seq: i32,
    last_seq: i32,
    first_offset: u64,
    last_offset: u64,
}

#[derive(Debug, Default)]
struct Producer {
    epoch: i16,
    recent: VecDeque<Seen>,
}

/// What to do with an idempotent batch.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Check {
    /// Not seen: append it.
    Append,
    /// Already appended: answer with these offsets (after waiting for their watermark).
    Duplicate { first_offset: u64, last_offset: u64 },
    /// Refuse with this Kafka code.
    Refuse(i16),
}

fn last_seq(h: &BatchHeader) -> i32 {
    ((i64::from(h.base_sequence) + i64::from(h.last_offset_delta)) % (i64::from(i32::MAX) + 1))
        as i32
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// One partition's producers.
#[derive(Debug, Default)]
pub(super) struct ProducerTable {
    producers: HashMap<i64, Producer>,
}

impl ProducerTable {
    /// Kafka's rules (`ProducerStateManager` / `LogValidator`, 2.5 and later):
    /// - a negative base sequence from an idempotent producer is INVALID_RECORD;
    /// - an unknown producer (never seen, expired, or its batches removed by retention) may start
    ///   at any sequence (KIP-360: the broker no longer answers UNKNOWN_PRODUCER_ID);
    /// - an epoch older than the producer's is INVALID_PRODUCER_EPOCH (Kafka answers it since 2.7,
    ///   instead of PRODUCER_FENCED, whatever the Produce version);
    /// - a newer epoch must start at sequence 0, else OUT_OF_ORDER_SEQUENCE_NUMBER;
    /// - same epoch: one of the last five batches again (same first and last sequence) is a
    ///   duplicate; otherwise it must start at last sequence + 1 (wrapping after i32::MAX), else
    ///   OUT_OF_ORDER_SEQUENCE_NUMBER.
    pub(super) fn check(&self, h: &BatchHeader) -> Check {
        if h.base_sequence < 0 {
            return Check::Refuse(ec::INVALID_RECORD);
        }
        let Some(p) = self.producers.get(&h.producer_id) else {
            return Check::Append;
        };
        if h.producer_epoch < p.epoch {
            return Check::Refuse(ec::INVALID_PRODUCER_EPOCH);
        }
        if h.producer_epoch > p.epoch {
            return if h.base_sequence == 0 {
                Check::Append
            } else {
                Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
            };
        }
        let last = last_seq(h);
        if let Some(s) = p
            .recent
            .iter()
            .find(|s| s.first_seq == h.base_sequence && s.last_seq == last)
        {
            return Check::Duplicate {
                first_offset: s.first_offset,
                last_offset: s.last_offset,
            };
        }
        match p.recent.back() {
            Some(prev) if h.base_sequence != next_seq(prev.last_seq) => {
                Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
            }
            _ => Check::Append,
        }
    }

    pub(super) fn record(&mut self, h: &BatchHeader, first_offset: u64, last_offset: u64) {
        let p = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != p.epoch {
            p.epoch = h.producer_epoch;
            p.recent.clear();
        }
        p.recent.push_back(Seen {
            first_seq: h.base_sequence,
            last_seq: last_seq(h),
            first_offset,
            last_offset,
        });
        while p.recent.len() > RECENT_BATCHES_MAX {
            p.recent.pop_front();
        }
    }
}

impl Broker {
    /// A fresh producer id: from this shard's block, reserving a new block when it runs out.
    async fn next_producer_id(self: &Rc<Self>) -> Result<i64, store::StoreError> {
        {
            let mut ids = self.producer_ids.borrow_mut();
            if ids.start < ids.end {
                let id = ids.start;
                ids.start += 1;
                return Ok(id);
            }
        }
        let block = store::reserve_producer_ids(&self.coord).await?;
        let mut ids = self.producer_ids.borrow_mut();
        *ids = block;
        let id = ids.start;
        ids.start += 1;
        Ok(id)
    }
}

pub(super) fn dispatch_init(
    b: Rc<Broker>,
    h: RequestHeader,
    body: InitProducerIdRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let response = if body.transactional_id.is_some() {
            // Transactions need a transaction coordinator (a later issue).
            InitProducerIdResponse::default().with_error_code(ec::COORDINATOR_NOT_AVAILABLE)
        } else {
            // Kafka's rule without a transactional id: always a new producer id at epoch 0, also
            // when the producer asks to bump the epoch of the id it has (KIP-360's epoch bump
            // after UNKNOWN_PRODUCER_ID or a sequence error): its sequences restart at 0 on every
            // partition, and the old id's state expires.
            match b.next_producer_id().await {
                Ok(id) => InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(id))
                    .with_producer_epoch(0),
                Err(e) => {
                    tracing::warn!("InitProducerId: {e}");
                    InitProducerIdResponse::default().with_error_code(ec::COORDINATOR_NOT_AVAILABLE)
                }
            }
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, records: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: records - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: records,
        }
    }

    #[test]
    fn retries_are_duplicates_gaps_are_refused_and_old_epochs_fenced() {
        let mut t = ProducerTable::default();
        let a = header(7, 0, 0, 3);
        assert_eq!(t.check(&a), Check::Append);
        t.record(&a, 10, 12);
        assert_eq!(
            t.check(&a),
            Check::Duplicate {
                first_offset: 10,
                last_offset: 12
            }
        );
        let gap = header(7, 0, 5, 1);
        assert_eq!(
            t.check(&gap),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let next = header(7, 0, 3, 2);
        assert_eq!(t.check(&next), Check::Append);
        t.record(&next, 13, 14);
        // A new epoch must start at 0.
        assert_eq!(
            t.check(&header(7, 1, 5, 1)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        let bumped = header(7, 1, 0, 1);
        assert_eq!(t.check(&bumped), Check::Append);
        t.record(&bumped, 15, 15);
        assert_eq!(t.check(&a), Check::Refuse(ec::INVALID_PRODUCER_EPOCH));
        // Sequences wrap after i32::MAX.
        let mut t = ProducerTable::default();
        let top = header(9, 0, i32::MAX - 1, 2);
        t.record(&top, 0, 1);
        assert_eq!(t.check(&header(9, 0, 0, 1)), Check::Append);
    }

    #[test]
    fn kafka_sequence_rules_for_unknown_producers_old_batches_and_bad_sequences() {
        let mut t = ProducerTable::default();
        // An unknown producer may start anywhere (expired, or removed by retention: KIP-360).
        let late = header(3, 2, 1000, 2);
        assert_eq!(t.check(&late), Check::Append);
        t.record(&late, 0, 1);
        // A negative sequence is an invalid record.
        assert_eq!(
            t.check(&header(3, 2, -1, 1)),
            Check::Refuse(ec::INVALID_RECORD)
        );
        // Same first sequence but a different length is not a duplicate: out of order.
        assert_eq!(
            t.check(&header(3, 2, 1000, 1)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        // Six batches: the first falls out of the window and is then out of order, not a
        // duplicate; the last five are duplicates with their offsets.
        let mut offset = 2;
        let mut seq = 1002;
        for _ in 0..6 {
            let h = header(3, 2, seq, 3);
            assert_eq!(t.check(&h), Check::Append);
            t.record(&h, offset, offset + 2);
            offset += 3;
            seq += 3;
        }
        assert_eq!(
            t.check(&header(3, 2, 1002, 3)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
        assert_eq!(
            t.check(&header(3, 2, 1005, 3)),
            Check::Duplicate {
                first_offset: 5,
                last_offset: 7
            }
        );
        // An older epoch is fenced even with the right sequence.
        assert_eq!(
            t.check(&header(3, 1, seq, 1)),
            Check::Refuse(ec::INVALID_PRODUCER_EPOCH)
        );
        // Wrap: a batch that crosses i32::MAX ends at a small sequence; the next starts after it.
        let mut t = ProducerTable::default();
        let across = header(4, 0, i32::MAX - 1, 4);
        t.record(&across, 0, 3);
        assert_eq!(
            t.check(&header(4, 0, i32::MAX - 1, 4)),
            Check::Duplicate {
                first_offset: 0,
                last_offset: 3
            }
        );
        assert_eq!(t.check(&header(4, 0, 2, 1)), Check::Append);
        assert_eq!(
            t.check(&header(4, 0, 3, 1)),
            Check::Refuse(ec::OUT_OF_ORDER_SEQUENCE_NUMBER)
        );
    }
}
