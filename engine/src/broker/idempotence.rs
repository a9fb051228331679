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
    pub(super) fn check(&self, h: &BatchHeader) -> Check {
        let Some(p) = self.producers.get(&h.producer_id) else {
            return Check::Append;
        };
        if h.producer_epoch < p.epoch {
            return Check::Refuse(ec::INVALID_PRODUCER_EPOCH);
        }
        if h.producer_epoch > p.epoch {
            return Check::Append;
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
        } else if body.producer_id.0 >= 0 && body.producer_epoch >= 0 {
            // KIP-360: an idempotent producer bumps its own epoch after a fatal sequence error.
            match body.producer_epoch.checked_add(1) {
                Some(epoch) => InitProducerIdResponse::default()
                    .with_producer_id(body.producer_id)
                    .with_producer_epoch(epoch),
                None => match b.next_producer_id().await {
                    Ok(id) => InitProducerIdResponse::default()
                        .with_producer_id(ProducerId(id))
                        .with_producer_epoch(0),
                    Err(e) => {
                        tracing::warn!("InitProducerId: {e}");
                        InitProducerIdResponse::default()
                            .with_error_code(ec::COORDINATOR_NOT_AVAILABLE)
                    }
                },
            }
        } else {
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
}
