//! The pending queue: batches whose offsets are assigned but which are not yet handed to the
//! flusher's writes, with the byte count that bounds it.
//!
//! Owns the queue's order (offsets only grow along it), its byte count and its bound
//! (`LogConfig::pending_bytes_max`). Must not write, copy record bytes or decide group
//! boundaries: `append` pushes, the flusher pops.

use std::collections::VecDeque;

use bytes::Bytes;
use wire::batch::BatchHeader;

use crate::error::{LogError, Result};

/// One batch waiting to be written: a slice of the producer's request, and what to stamp in it.
pub(super) struct Pending {
    pub(super) bytes: Bytes,
    pub(super) header: BatchHeader,
    pub(super) base_offset: u64,
    pub(super) leader_epoch: i32,
    pub(super) starts_segment: bool,
}

impl Pending {
    /// The offset after this batch.
    pub(super) fn next_offset(&self) -> u64 {
        self.base_offset + self.header.last_offset_delta as u64 + 1
    }
}

/// Batches in offset order, not yet written, and their total size in bytes.
#[derive(Default)]
pub(super) struct PendingQueue {
    batches: VecDeque<Pending>,
    bytes: u64,
}

impl PendingQueue {
    /// Refuses a record set of `len` bytes when the queue already holds data and would pass
    /// `bytes_max` with it. An empty queue takes any record set, so the bound delays a producer
    /// but never refuses one record set forever (its size is bounded by the request size).
    pub(super) fn admit(&self, len: usize, bytes_max: u64) -> Result<()> {
        let (len, queued) = (len as u64, self.bytes());
        if queued > 0 && queued.saturating_add(len) > bytes_max {
            return Err(LogError::PendingFull {
                pending_bytes: queued,
                record_set_bytes: len,
                pending_bytes_max: bytes_max,
            });
        }
        Ok(())
    }

    pub(super) fn push_back(&mut self, pending: Pending) {
        if let Some(last) = self.batches.back() {
            assert_eq!(
                pending.base_offset,
                last.next_offset(),
                "queued offsets are contiguous: {} queued after a batch ending at {}",
                pending.base_offset,
                last.next_offset()
            );
        }
        self.bytes += pending.bytes.len() as u64;
        self.batches.push_back(pending);
    }

    pub(super) fn pop_front(&mut self) -> Option<Pending> {
        let pending = self.batches.pop_front()?;
        let len = pending.bytes.len() as u64;
        let Some(rest) = self.bytes.checked_sub(len) else {
            panic!(
                "pending byte count underflows: {} bytes counted, a {len}-byte batch taken",
                self.bytes
            );
        };
        self.bytes = rest;
        assert!(
            !self.batches.is_empty() || self.bytes == 0,
            "an empty pending queue counts {} bytes",
            self.bytes
        );
        Some(pending)
    }

    pub(super) fn front(&self) -> Option<&Pending> {
        self.batches.front()
    }

    pub(super) fn front_mut(&mut self) -> Option<&mut Pending> {
        self.batches.front_mut()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Bytes queued.
    pub(super) fn bytes(&self) -> u64 {
        debug_assert_eq!(
            self.bytes,
            self.batches
                .iter()
                .map(|p| p.bytes.len() as u64)
                .sum::<u64>(),
            "the pending byte count matches the queue"
        );
        self.bytes
    }

    /// Drops everything queued (the log went offline: none of it will be written).
    pub(super) fn clear(&mut self) {
        self.batches.clear();
        self.bytes = 0;
    }
}
