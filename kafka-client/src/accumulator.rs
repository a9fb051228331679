//! accumulator — the producer's record accumulator: one open batch per partition, closed when
//! full (batch.size) or when linger.ms has passed since its first record, and the buffer.memory
//! accounting of everything not yet acknowledged.
//!
//! Pure and clock-free: every method that depends on time takes `now_us` (microseconds on the
//! caller's clock), so tests drive it with a controlled clock and assert exactly when a batch
//! becomes ready. Owns batching only. Must not do I/O, know about brokers or requests, or move the
//! sticky partitioner (it returns the partitions whose batch it closed; the caller tells the
//! partitioner, as Kafka's `onNewBatch` does).

use std::collections::VecDeque;

use crate::batch::BatchBuilder;

/// The accumulator's settings, in Kafka's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccumulatorConfig {
    /// batch.size: uncompressed bytes at which a batch is full.
    pub batch_size: usize,
    /// linger.ms, in microseconds.
    pub linger_us: u64,
    /// buffer.memory: bytes of records offered but not yet released (acknowledged or failed).
    pub buffer_memory: usize,
}

/// A batch being filled, or closed and waiting to be sent.
#[derive(Debug)]
pub struct OpenBatch {
    pub partition: u32,
    pub builder: BatchBuilder,
    /// When its first record was appended (µs on the caller's clock).
    pub created_us: u64,
    /// Each record's send time (µs on the caller's clock): publish latency starts there.
    pub sent_us: Vec<u64>,
    /// buffer.memory this batch holds, released once with [`Accumulator::release`].
    pub reserved: usize,
}

/// What [`Accumulator::append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Append {
    /// The record is in the partition's open batch; `closed` says the batch became full with it
    /// and is now ready (tell the partitioner).
    Appended { closed: bool },
    /// The record does not fit the partition's open batch: that batch was closed (it is ready;
    /// tell the partitioner) and nothing was appended. Pick the partition again and retry.
    Rolled,
    /// buffer.memory is used up: nothing was appended.
    NoRoom,
}

/// Open batches per partition, closed batches in the order they closed.
#[derive(Debug)]
pub struct Accumulator {
    config: AccumulatorConfig,
    open: Vec<Option<OpenBatch>>,
    ready: VecDeque<OpenBatch>,
    buffered: usize,
}

impl Accumulator {
    pub fn new(partitions: u32, config: AccumulatorConfig) -> Accumulator {
        Accumulator {
            config,
            open: (0..partitions).map(|_| None).collect(),
            ready: VecDeque::new(),
            buffered: 0,
        }
    }

    pub fn config(&self) -> &AccumulatorConfig {
        &self.config
    }

    /// Bytes held (offered, not yet released).
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Whether another record may be offered (buffer.memory not used up).
    pub fn has_room(&self) -> bool {
        self.buffered < self.config.buffer_memory
    }

    /// Appends one record to `partition`'s open batch at `now_us`; `timestamp_ms` is its
    /// CreateTime. A batch is full once its exact size reaches batch.size; a record that would
    /// take it past batch.size rolls it instead; a record larger than batch.size gets a batch of
    /// its own, as in Kafka. buffer.memory is charged an upper bound of the record's size.
    pub fn append(
        &mut self,
        now_us: u64,
        partition: u32,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Append {
        if !self.has_room() {
            return Append::NoRoom;
        }
        let cost = BatchBuilder::record_size(key, Some(value), &[]);
        let batch_size = self.config.batch_size;
        let o = self.open[partition as usize].get_or_insert_with(|| OpenBatch {
            partition,
            builder: BatchBuilder::with_capacity(timestamp_ms, batch_size),
            created_us: now_us,
            sent_us: Vec::new(),
            reserved: 0,
        });
        if !o
            .builder
            .try_append(batch_size, timestamp_ms, key, Some(value), &[])
        {
            self.close(partition);
            return Append::Rolled;
        }
        o.sent_us.push(now_us);
        o.reserved += cost;
        self.buffered += cost;
        let full = o.builder.size() >= batch_size;
        if full {
            self.close(partition);
        }
        Append::Appended { closed: full }
    }

    /// Closes `partition`'s open batch, if any: it joins the ready queue.
    pub fn close(&mut self, partition: u32) -> bool {
        match self.open[partition as usize].take() {
            Some(o) => {
                self.ready.push_back(o);
                true
            }
            None => false,
        }
    }

    /// Closes every open batch whose linger has expired at `now_us` (all of them when `flush`);
    /// returns the partitions closed.
    pub fn expire_linger(&mut self, now_us: u64, flush: bool) -> Vec<u32> {
        let linger = self.config.linger_us;
        let due: Vec<u32> = self
            .open
            .iter()
            .flatten()
            .filter(|o| flush || now_us >= o.created_us.saturating_add(linger))
            .map(|o| o.partition)
            .collect();
        for &p in &due {
            self.close(p);
        }
        due
    }

    /// The earliest moment an open batch's linger expires.
    pub fn next_linger_deadline(&self) -> Option<u64> {
        self.open
            .iter()
            .flatten()
            .map(|o| o.created_us.saturating_add(self.config.linger_us))
            .min()
    }

    /// Takes the closed batches, oldest first.
    pub fn take_ready(&mut self) -> Vec<OpenBatch> {
        self.ready.drain(..).collect()
    }

    /// Removes open (not yet closed) batches created before `cutoff_us` (delivery.timeout.ms
    /// expiry of batches that never closed); the caller releases their memory.
    pub fn take_open_older_than(&mut self, cutoff_us: u64) -> Vec<OpenBatch> {
        let mut out = Vec::new();
        for slot in &mut self.open {
            if slot.as_ref().is_some_and(|o| o.created_us < cutoff_us) {
                out.extend(slot.take());
            }
        }
        out
    }

    /// Whether nothing is open or ready.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.open.iter().all(Option::is_none)
    }

    /// Gives back buffer.memory a batch held (acknowledged, failed or expired).
    pub fn release(&mut self, bytes: usize) {
        self.buffered = self.buffered.saturating_sub(bytes);
    }
}
