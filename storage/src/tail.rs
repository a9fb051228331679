//! The tail cache: the DMA buffers of the most recent writes, kept so reads of recent data need no
//! disk I/O and no copy (readers get reference-counted slices of the very buffers that were
//! written).
//!
//! Owns which written bytes stay in memory and the map from offsets to them, and the memory all
//! the caches of one shard may hold together (a consumer that lags behind the producer is still
//! served from memory while its partition's cache, and the shard's budget, reach back that far).
//! Must not write, and must never hand out bytes that were not written: the log inserts a chunk
//! only after its write completed.

use std::cell::Cell;
use std::collections::VecDeque;
use std::ops::{Deref, Range};
use std::rc::Rc;

use glommio::io::{DmaBuffer, ReadResult};

use wire::batch::BatchHeader;

/// Bytes of a read: either a slice of a cached write buffer or of a DMA read buffer.
pub enum LogBytes {
    Memory {
        buffer: Rc<DmaBuffer>,
        range: Range<usize>,
    },
    Disk(ReadResult),
}

impl Deref for LogBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            LogBytes::Memory { buffer, range } => &buffer.as_bytes()[range.clone()],
            LogBytes::Disk(read) => read,
        }
    }
}

impl std::fmt::Debug for LogBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            LogBytes::Memory { .. } => "memory",
            LogBytes::Disk(_) => "disk",
        };
        write!(f, "LogBytes({kind}, {} bytes)", self.len())
    }
}

/// A written buffer: it holds segment bytes `[file_start, file_start + buffer.len())`.
struct Chunk {
    segment_base: u64,
    file_start: u64,
    buffer: Rc<DmaBuffer>,
}

/// A batch whose bytes are in the cached chunks.
#[derive(Debug, Clone, Copy)]
struct CachedBatch {
    segment_base: u64,
    position: u64,
    len: usize,
    header: BatchHeader,
}

/// Default of the shard-wide budget: all tail caches of one shard together.
pub const SHARD_TAIL_BYTES_DEFAULT: usize = 512 << 20;
/// Under shard-wide pressure a partition still keeps this much (or its own limit, if lower).
const PARTITION_FLOOR_BYTES: usize = 4 << 20;

thread_local! {
    // A shard is one thread, so thread-locals are the shard's own: no sharing, no locks.
    static SHARD_BYTES: Cell<usize> = const { Cell::new(0) };
    static SHARD_LIMIT: Cell<usize> = const { Cell::new(SHARD_TAIL_BYTES_DEFAULT) };
}

/// Sets the budget of all tail caches of the calling thread's (shard's) logs.
pub fn set_shard_tail_bytes(bytes: usize) {
    SHARD_LIMIT.with(|l| l.set(bytes));
}

/// Bytes the calling thread's tail caches hold now.
pub fn shard_tail_bytes() -> usize {
    SHARD_BYTES.with(Cell::get)
}

fn shard_over_budget() -> bool {
    SHARD_BYTES.with(Cell::get) > SHARD_LIMIT.with(Cell::get)
}

fn shard_account(added: usize, removed: usize) {
    SHARD_BYTES.with(|b| b.set(subtract_counted(b.get() + added, removed, "shard tail")));
}

/// `counted - removed` for a byte count that must cover what is removed (only bytes once added
/// are removed); a wrap in release would silently disable eviction.
fn subtract_counted(counted: usize, removed: usize, what: &str) -> usize {
    let Some(rest) = counted.checked_sub(removed) else {
        panic!("{what} byte count underflows: {counted} counted, {removed} removed");
    };
    rest
}

pub(crate) struct TailCache {
    chunks: VecDeque<Chunk>,
    batches: VecDeque<CachedBatch>,
    bytes: usize,
    limit_bytes: usize,
}

impl TailCache {
    pub fn new(limit_bytes: usize) -> Self {
        TailCache {
            chunks: VecDeque::new(),
            batches: VecDeque::new(),
            bytes: 0,
            limit_bytes,
        }
    }

    /// Adds a completed write and the batches it finished, then evicts the oldest chunks.
    ///
    /// Chunks arrive in file order (a chunk may start on the last page of the one before it, which
    /// it rewrote with more data): reads take each byte from the newest chunk holding it.
    pub fn insert(&mut self, segment_base: u64, file_start: u64, buffer: Rc<DmaBuffer>) {
        if let Some(last) = self.chunks.back() {
            assert!(
                (segment_base, file_start) >= (last.segment_base, last.file_start),
                "tail chunk ({segment_base}, {file_start}) inserted after ({}, {})",
                last.segment_base,
                last.file_start
            );
        }
        self.bytes += buffer.len();
        shard_account(buffer.len(), 0);
        self.chunks.push_back(Chunk {
            segment_base,
            file_start,
            buffer,
        });
    }

    pub fn insert_batch(
        &mut self,
        segment_base: u64,
        position: u64,
        len: usize,
        header: BatchHeader,
    ) {
        if let Some(last) = self.batches.back() {
            assert!(
                (segment_base, position) > (last.segment_base, last.position),
                "tail batch ({segment_base}, {position}) inserted after ({}, {})",
                last.segment_base,
                last.position
            );
        }
        self.batches.push_back(CachedBatch {
            segment_base,
            position,
            len,
            header,
        });
    }

    /// Drops the oldest chunks beyond this partition's limit, or beyond its floor while the shard
    /// is over budget, and every batch no longer wholly cached. Returns the evicted buffers, so
    /// the writer can reuse those no reader still holds.
    pub fn evict(&mut self) -> Vec<Rc<DmaBuffer>> {
        let floor = PARTITION_FLOOR_BYTES.min(self.limit_bytes);
        let mut evicted = Vec::new();
        while self.chunks.len() > 1
            && (self.bytes > self.limit_bytes || (self.bytes > floor && shard_over_budget()))
        {
            if let Some(old) = self.chunks.pop_front() {
                self.bytes = subtract_counted(self.bytes, old.buffer.len(), "tail cache");
                shard_account(0, old.buffer.len());
                evicted.push(old.buffer);
            }
        }
        self.drop_uncovered_batches();
        evicted
    }

    /// Forgets everything of segments below `segment_base` (deleted by retention).
    pub fn drop_segments_below(&mut self, segment_base: u64) {
        while self
            .chunks
            .front()
            .is_some_and(|c| c.segment_base < segment_base)
        {
            if let Some(old) = self.chunks.pop_front() {
                self.bytes = subtract_counted(self.bytes, old.buffer.len(), "tail cache");
                shard_account(0, old.buffer.len());
            }
        }
        self.drop_uncovered_batches();
    }

    /// Forgets everything of segments with bases in `from..to` (rewritten by compaction).
    pub fn drop_segments_in(&mut self, from: u64, to: u64) {
        let inside = |base: u64| base >= from && base < to;
        let mut kept = VecDeque::with_capacity(self.chunks.len());
        for chunk in self.chunks.drain(..) {
            if inside(chunk.segment_base) {
                self.bytes = subtract_counted(self.bytes, chunk.buffer.len(), "tail cache");
                shard_account(0, chunk.buffer.len());
            } else {
                kept.push_back(chunk);
            }
        }
        self.chunks = kept;
        self.batches.retain(|b| !inside(b.segment_base));
        self.drop_uncovered_batches();
    }

    fn drop_uncovered_batches(&mut self) {
        let Some(front) = self.chunks.front() else {
            self.batches.clear();
            return;
        };
        let covered_from = (front.segment_base, front.file_start);
        while self
            .batches
            .front()
            .is_some_and(|b| (b.segment_base, b.position) < covered_from)
        {
            self.batches.pop_front();
        }
    }

    /// Serves a read from memory if the batch holding `offset` is cached: whole batches of one
    /// segment, up to `max_bytes` (the first batch always whole).
    pub fn read(&self, offset: u64, max_bytes: usize) -> Option<(Vec<LogBytes>, Vec<BatchHeader>)> {
        let first_cached = self.batches.front()?;
        if (first_cached.header.base_offset as u64) > offset {
            return None;
        }
        let at = self
            .batches
            .partition_point(|b| (b.header.last_offset() as u64) < offset);
        let first = self.batches.get(at)?;
        let mut headers = Vec::new();
        let mut end = first.position;
        for batch in self.batches.range(at..) {
            if batch.segment_base != first.segment_base
                || (!headers.is_empty() && (end - first.position) as usize + batch.len > max_bytes)
            {
                break;
            }
            headers.push(batch.header);
            end = batch.position + batch.len as u64;
        }
        let slices = self.slices(first.segment_base, first.position..end)?;
        Some((slices, headers))
    }

    /// Slices of cached chunks covering segment bytes `range`, oldest first.
    fn slices(&self, segment_base: u64, range: Range<u64>) -> Option<Vec<LogBytes>> {
        let mut out = Vec::new();
        let mut position = range.start;
        while position < range.end {
            // The newest chunk starting at or before `position` holds it (chunks of one segment
            // overlap only in a carried partial page, whose bytes are the same in both).
            let at = self
                .chunks
                .partition_point(|c| (c.segment_base, c.file_start) <= (segment_base, position));
            let chunk = self.chunks.get(at.checked_sub(1)?)?;
            // A chunk's bytes are valid only up to where the next write took over: past that
            // lies page padding, rewritten by the next chunk.
            let taken_over_at = self
                .chunks
                .get(at)
                .filter(|next| next.segment_base == segment_base)
                .map_or(u64::MAX, |next| next.file_start);
            let chunk_end = (chunk.file_start + chunk.buffer.len() as u64).min(taken_over_at);
            if chunk.segment_base != segment_base || chunk_end <= position {
                return None;
            }
            let end = range.end.min(chunk_end);
            let from = (position - chunk.file_start) as usize;
            let to = (end - chunk.file_start) as usize;
            out.push(LogBytes::Memory {
                buffer: chunk.buffer.clone(),
                range: from..to,
            });
            position = end;
        }
        Some(out)
    }
}

impl Drop for TailCache {
    fn drop(&mut self) {
        shard_account(0, self.bytes);
    }
}
