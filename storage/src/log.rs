//! The partition log: offset assignment, group-committed O_DIRECT writes, the two watermarks,
//! reads, retention, rolling, recovery on open and a clean close.
//!
//! Owns one partition's data on one shard. It is `!Send` on purpose: it lives on the shard that
//! owns the partition, and other shards reach it by message passing. Must not know about Kafka
//! requests or connections; it takes record sets and returns offsets, bytes and typed errors.
//!
//! The write path, step by step (docs/ARCHITECTURE.md repeats it):
//! 1. [`PartitionLog::append`] validates the record set, assigns offsets, and queues each batch
//!    with the request's buffer (`Bytes`, not copied). It decides here whether the batch starts a
//!    new segment (segment.bytes, segment.ms).
//! 2. The flusher task takes everything queued (group commit) up to the next roll point, and copies
//!    it once into page-aligned DMA buffers, behind the carried partial last page, stamping base
//!    offset and leader epoch into the copy. Buffers are cut at page boundaries every
//!    `write_bytes_max`, so they never overlap and are all written at once.
//! 3. When the writes complete, the log end offset (LEO) advances, the batches are indexed, and the
//!    buffers join the tail cache; waiters on the written watermark wake.
//! 4. If anyone waits on durability, or flush.messages / flush.ms says so, the flusher calls
//!    fdatasync on the active segment; when it returns the durable offset advances and waiters
//!    wake. Every write issued before the sync is covered; appends that arrive meanwhile form the
//!    next group.
//! 5. At a roll point the active segment is sealed (fdatasync, truncate to its length, write the
//!    `.index` and `.timeindex` files through fsync + rename + directory fsync) and a new segment
//!    is created and preallocated (fdatasync of the file and of the directory).
//! 6. On close: all queued data is written, synced, the active segment is sealed, and the
//!    clean-shutdown marker is written (fsync + rename + directory fsync).
//!
//! Compaction (`engine::compact`) rewrites sealed segments only, and swaps its result in through
//! `replace_segments`; reads therefore accept gaps between batches (never offsets going back).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::future::{join_all, select};
use glommio::io::DmaBuffer;
use glommio::Task;

use crate::config::{Clock, LogConfig};
use crate::durable;
use crate::error::{LogError, Result};
use crate::readahead::ReadAhead;
use crate::segment::{self, read_batches, Segment};
use crate::tail::{LogBytes, TailCache};
use wire::batch::{self, BatchHeader, BatchSpan};

const CLEAN_SHUTDOWN_MARKER: &str = ".clean_shutdown";
/// Bytes of header the broker stamps: base offset (8), batch length (4), leader epoch (4).
const STAMPED_PREFIX: usize = 16;

/// Which watermark a caller waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watermark {
    /// The data is written to the file (acks=1 semantics on this broker).
    Written,
    /// The data is written and covered by an fdatasync (acks=all waits for this by default).
    Durable,
}

/// Where an appended record set landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: u64,
    pub last_offset: u64,
    pub max_timestamp: i64,
    pub records: u64,
    pub bytes: usize,
}

/// The result of a read: whole batches as zero-copy slices, and their headers.
#[derive(Debug)]
pub struct LogRead {
    pub chunks: Vec<LogBytes>,
    /// Headers of the returned batches, in order (base offsets as stored).
    pub batches: Vec<BatchHeader>,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
}

impl LogRead {
    /// Total bytes returned.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Offset after the last returned batch.
    pub fn next_offset(&self) -> Option<u64> {
        self.batches.last().map(|h| h.last_offset() as u64 + 1)
    }

    /// The returned bytes copied into one vector (tests and the control plane; fetch sends the
    /// chunks as they are).
    pub fn to_vec(&self) -> Vec<u8> {
        self.copy_range(0..self.len())
    }

    /// Bytes `range` of the returned data, copied out of the chunks they span.
    pub fn copy_range(&self, range: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(range.len());
        let mut chunk_start = 0usize;
        for chunk in &self.chunks {
            let chunk_end = chunk_start + chunk.len();
            let from = range.start.max(chunk_start);
            let to = range.end.min(chunk_end);
            if from < to {
                out.extend_from_slice(&chunk[from - chunk_start..to - chunk_start]);
            }
            chunk_start = chunk_end;
        }
        out
    }
}

/// What retention removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub deleted_segments: Vec<u64>,
    pub log_start_offset: u64,
}

struct Pending {
    bytes: Bytes,
    header: BatchHeader,
    base_offset: u64,
    leader_epoch: i32,
    starts_segment: bool,
}

/// Where the next append goes: state of assignment, ahead of what is written.
struct Cursor {
    next_offset: u64,
    segment_base: u64,
    segment_bytes: u64,
    segment_first_append_ms: Option<i64>,
}

struct Waiter {
    offset: u64,
    done: oneshot::Sender<Result<(), String>>,
}

struct State {
    segments: BTreeMap<u64, Segment>,
    cursor: Cursor,
    pending: VecDeque<Pending>,
    log_end: u64,
    durable: u64,
    carry: Vec<u8>,
    /// File position after the last group handed to the kernel (ahead of what is published).
    prepared_end: u64,
    /// Full-size write buffers back from the tail cache, for reuse.
    buffer_pool: Vec<DmaBuffer>,
    unsynced_records: u64,
    oldest_unsynced_ms: Option<i64>,
    written_waiters: Vec<Waiter>,
    durable_waiters: Vec<Waiter>,
    tail: TailCache,
    /// The read-ahead stream of the last sequential cold reader.
    readahead: Option<ReadAhead>,
    failed: Option<String>,
    closing: bool,
    closed: bool,
}

pub(crate) struct Shared {
    state: RefCell<State>,
    wake: Rc<Notify>,
    dir: PathBuf,
    /// Replaced whole by `PartitionLog::set_config`; readers take the `Rc` and never hold the
    /// borrow.
    config: RefCell<Rc<LogConfig>>,
    pub(crate) clock: Clock,
    /// Compaction's progress (`engine::compact`); only that module reads or writes it.
    pub(crate) cleaner: RefCell<crate::compact::CleanerState>,
}

impl Shared {
    fn wake_handle(&self) -> Rc<Notify> {
        self.wake.clone()
    }

    /// The current config (a topic's config can change while the log is open).
    fn config(&self) -> Rc<LogConfig> {
        self.config.borrow().clone()
    }
}

/// One partition's log on this shard. Cheap to clone (an `Rc`).
#[derive(Clone)]
pub struct PartitionLog {
    shared: Rc<Shared>,
    flusher: Rc<RefCell<Option<Task<()>>>>,
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering the newest segment if the last shutdown
    /// was not clean. Must run on a glommio executor.
    pub async fn open(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clock: Clock,
    ) -> Result<PartitionLog> {
        // Absolute: glommio's `Directory::open` fails on a relative path with EBADF (seen with
        // `weir serve --data-dir ./data`).
        let dir = std::path::absolute(dir.as_ref())
            .map_err(|e| LogError::io("resolving log directory", dir.as_ref(), e))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io("creating log directory", &dir, e))?;
        durable::probe_device(&dir).await?;
        // A compaction swap interrupted by a crash is finished (or its leftovers removed) before
        // the segments are listed.
        crate::compact::recover(&dir).await?;
        let mut bases = Vec::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| LogError::io("listing", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| LogError::io("listing", &dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            } else if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|b| b.parse::<u64>().ok())
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let marker = dir.join(CLEAN_SHUTDOWN_MARKER);
        let clean = marker.exists();
        if clean {
            std::fs::remove_file(&marker)
                .map_err(|e| LogError::io("removing marker", &marker, e))?;
            durable::sync_dir(&dir).await?;
        }
        let preallocate = config.preallocate_bytes();
        let interval = config.index_interval_bytes;
        let mut segments = BTreeMap::new();
        let carry;
        match bases.split_last() {
            None => {
                segments.insert(0, Segment::create(&dir, 0, preallocate).await?);
                carry = Vec::new();
            }
            Some((&active, sealed)) => {
                for (i, &base) in sealed.iter().enumerate() {
                    let next_base = bases[i + 1];
                    segments.insert(
                        base,
                        Segment::open_sealed(&dir, base, next_base, interval).await?,
                    );
                }
                let (segment, tail_page) =
                    Segment::open_active(&dir, active, clean, interval, preallocate).await?;
                segments.insert(active, segment);
                carry = tail_page;
            }
        }
        let active = segments.values().next_back().ok_or(LogError::Closed)?;
        let cursor = Cursor {
            next_offset: active.next_offset,
            segment_base: active.base_offset,
            segment_bytes: active.size,
            // segment.ms keeps counting across a restart: from the segment file's creation.
            segment_first_append_ms: (active.size > 0)
                .then(|| created_ms(&active.path).unwrap_or_else(|| clock.now_ms())),
        };
        let log_end = active.next_offset;
        let active_size = active.size;
        let state = State {
            segments,
            cursor,
            pending: VecDeque::new(),
            log_end,
            durable: log_end,
            carry,
            prepared_end: active_size,
            buffer_pool: Vec::new(),
            unsynced_records: 0,
            oldest_unsynced_ms: None,
            written_waiters: Vec::new(),
            durable_waiters: Vec::new(),
            tail: TailCache::new(config.tail_cache_bytes),
            readahead: None,
            failed: None,
            closing: false,
            closed: false,
        };
        // The cleaner resumes where its last pass ended (compact.rs, cleaner-offset-checkpoint).
        let cleaner = crate::compact::load_checkpoint(&dir, log_end);
        let shared = Rc::new(Shared {
            state: RefCell::new(state),
            wake: Rc::default(),
            dir,
            config: RefCell::new(Rc::new(config)),
            clock,
            cleaner: RefCell::new(cleaner),
        });
        let flusher = glommio::spawn_local(flusher(shared.clone()));
        Ok(PartitionLog {
            shared,
            flusher: Rc::new(RefCell::new(Some(flusher))),
        })
    }

    /// Validates a producer's record set and queues it for writing. Offsets are assigned now; the
    /// data becomes readable when the written watermark passes it (see [`Self::wait`]). Nothing is
    /// queued if any batch is invalid.
    pub fn append(&self, records: Bytes, leader_epoch: i32) -> Result<AppendInfo> {
        let config = self.shared.config();
        let spans = batch::validate_record_set(&records, config.max_message_bytes)?;
        if config.cleanup_compact {
            refuse_keyless(&records, &spans)?;
        }
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.state.borrow_mut();
        if let Some(reason) = &state.failed {
            return Err(LogError::Offline(reason.clone()));
        }
        if state.closing {
            return Err(LogError::Closed);
        }
        let first_offset = state.cursor.next_offset;
        let mut info = AppendInfo {
            first_offset,
            last_offset: first_offset,
            max_timestamp: -1,
            records: 0,
            bytes: records.len(),
        };
        for BatchSpan {
            header,
            position,
            len,
        } in spans
        {
            let cursor = &mut state.cursor;
            let base_offset = cursor.next_offset;
            let relative_end = base_offset + header.last_offset_delta as u64 - cursor.segment_base;
            // Kafka's maxSegmentMs: a compacted log also rolls at max.compaction.lag.ms, so its
            // data becomes cleanable in time.
            let segment_ms = if config.cleanup_compact {
                config.segment_ms.min(config.max_compaction_lag_ms)
            } else {
                config.segment_ms
            };
            let too_old = cursor
                .segment_first_append_ms
                .is_some_and(|first| now - first >= segment_ms as i64);
            let starts_segment = cursor.segment_bytes > 0
                && (cursor.segment_bytes + len as u64 > config.segment_bytes
                    || too_old
                    || relative_end > u64::from(u32::MAX));
            if starts_segment {
                cursor.segment_base = base_offset;
                cursor.segment_bytes = 0;
                cursor.segment_first_append_ms = None;
            }
            cursor.segment_bytes += len as u64;
            cursor.segment_first_append_ms.get_or_insert(now);
            cursor.next_offset = base_offset + header.last_offset_delta as u64 + 1;
            info.last_offset = cursor.next_offset - 1;
            info.max_timestamp = info.max_timestamp.max(header.max_timestamp);
            info.records += header.records_count as u64;
            state.pending.push_back(Pending {
                bytes: records.slice(position..position + len),
                header,
                base_offset,
                leader_epoch,
                starts_segment,
            });
        }
        drop(state);
        self.shared.wake.notify();
        Ok(info)
    }

    /// Waits until the `watermark` has passed `offset` (i.e. everything below `offset + 1` is
    /// written, or durable).
    pub async fn wait(&self, offset: u64, watermark: Watermark) -> Result<()> {
        let receiver = {
            let mut state = self.shared.state.borrow_mut();
            let reached = match watermark {
                Watermark::Written => state.log_end,
                Watermark::Durable => state.durable,
            };
            if reached > offset {
                return Ok(());
            }
            if let Some(reason) = &state.failed {
                return Err(LogError::Offline(reason.clone()));
            }
            if state.closed {
                return Err(LogError::Closed);
            }
            let (done, receiver) = oneshot::channel();
            let waiter = Waiter { offset, done };
            match watermark {
                Watermark::Written => state.written_waiters.push(waiter),
                Watermark::Durable => state.durable_waiters.push(waiter),
            }
            receiver
        };
        // A durable waiter may need a sync the flusher would not otherwise start; written
        // waiters are served by writes that the append already woke the flusher for.
        if watermark == Watermark::Durable {
            self.shared.wake.notify();
        }
        match receiver.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(LogError::Offline(reason)),
            Err(_) => Err(LogError::Closed),
        }
    }

    /// Appends and waits for the watermark to cover the whole record set.
    pub async fn append_and_wait(
        &self,
        records: Bytes,
        leader_epoch: i32,
        watermark: Watermark,
    ) -> Result<AppendInfo> {
        let info = self.append(records, leader_epoch)?;
        self.wait(info.last_offset, watermark).await?;
        Ok(info)
    }

    pub fn log_start_offset(&self) -> u64 {
        let state = self.shared.state.borrow();
        state.segments.keys().next().copied().unwrap_or(0)
    }

    /// The log end offset: everything below it is written and readable.
    pub fn log_end_offset(&self) -> u64 {
        self.shared.state.borrow().log_end
    }

    /// Everything below this offset is covered by an fdatasync.
    pub fn durable_offset(&self) -> u64 {
        self.shared.state.borrow().durable
    }

    /// The offset the next append will get.
    pub fn next_offset(&self) -> u64 {
        self.shared.state.borrow().cursor.next_offset
    }

    /// Number of segments (sealed and active).
    pub fn segment_count(&self) -> usize {
        self.shared.state.borrow().segments.len()
    }

    /// Bytes written across all segments.
    pub fn size_bytes(&self) -> u64 {
        self.shared
            .state
            .borrow()
            .segments
            .values()
            .map(|s| s.size)
            .sum()
    }

    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes` (the first
    /// batch is returned whole even if larger, as Kafka does). Recent data comes from memory;
    /// older data from disk, verified, without copying after the read.
    ///
    /// After compaction a segment may have no batch at or after `offset` (the rest of it was
    /// cleaned away); the read then goes on in the next segment, so the first batch returned may
    /// start beyond `offset`, as in Kafka.
    pub async fn read(&self, mut offset: u64, max_bytes: usize) -> Result<LogRead> {
        loop {
            let read = self.read_from_segment(offset, max_bytes).await?;
            if !read.is_empty() || offset >= read.log_end_offset {
                return Ok(read);
            }
            let next = {
                let state = self.shared.state.borrow();
                state
                    .segments
                    .range(offset + 1..)
                    .next()
                    .map(|(&base, _)| base)
            };
            match next {
                Some(base) if base > offset && base <= read.log_end_offset => offset = base,
                _ => return Ok(read),
            }
        }
    }

    /// [`Self::read`] within the segment holding `offset`: empty if that segment has nothing at
    /// or after it.
    async fn read_from_segment(&self, offset: u64, max_bytes: usize) -> Result<LogRead> {
        let (
            file,
            path,
            segment_base,
            position,
            position_offset,
            segment_len,
            log_start,
            log_end,
            stream,
        ) = {
            let mut state = self.shared.state.borrow_mut();
            let log_start = state.segments.keys().next().copied().unwrap_or(0);
            let log_end = state.log_end;
            if offset < log_start || offset > log_end {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start,
                    log_end,
                });
            }
            let result = |chunks, batches| LogRead {
                chunks,
                batches,
                log_start_offset: log_start,
                log_end_offset: log_end,
            };
            if offset == log_end {
                return Ok(result(Vec::new(), Vec::new()));
            }
            if let Some((chunks, batches)) = state.tail.read(offset, max_bytes) {
                return Ok(result(chunks, batches));
            }
            let stream = state
                .readahead
                .take()
                .filter(|s| s.offset == offset && s.has_data());
            let Some((_, segment)) = state.segments.range(..=offset).next_back() else {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start,
                    log_end,
                });
            };
            let entry = segment.index.floor((offset - segment.base_offset) as u32);
            (
                segment.file.clone(),
                segment.path.clone(),
                segment.base_offset,
                u64::from(entry.position),
                segment.base_offset + u64::from(entry.relative_offset),
                segment.size,
                log_start,
                log_end,
                stream,
            )
        };
        let result = |chunks, batches| LogRead {
            chunks,
            batches,
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        // A sequential reader continues where its read-ahead stream stands.
        if let Some(mut stream) = stream {
            let (chunks, batches) = stream.next(max_bytes).await?;
            if !batches.is_empty() {
                if stream.has_data() {
                    self.shared.state.borrow_mut().readahead = Some(stream);
                }
                return Ok(result(chunks, batches));
            }
        }
        let (bytes, batches, end) = read_batches(
            &file,
            &path,
            position,
            position_offset,
            segment_len,
            offset,
            max_bytes,
        )
        .await?;
        if let Some(next) = batches.last().map(|h| h.last_offset() as u64 + 1) {
            if end < segment_len {
                let stream = ReadAhead::start(segment_base, next, end, segment_len, file, path);
                self.shared.state.borrow_mut().readahead = Some(stream);
            }
        }
        Ok(result(
            bytes.into_iter().map(LogBytes::Disk).collect(),
            batches,
        ))
    }

    /// The base offset of the newest segment. Everything below it is in sealed segments, so it
    /// is durable (a roll syncs the old segment before the new one exists); what sits beside the
    /// log and must match a durable prefix of it (the producer-state snapshot) is cut here.
    pub fn active_segment_base(&self) -> u64 {
        let state = self.shared.state.borrow();
        state.segments.keys().next_back().copied().unwrap_or(0)
    }

    /// Calls `f` with the header of every batch from the one holding `from` (clamped to the log
    /// start) to the log end, in order, base offsets as stored. Reads go through [`Self::read`]
    /// (tail cache, or verified cold reads with read-ahead) `chunk_bytes` at a time; no record
    /// bytes are copied. Returns the offset after the last batch visited (the log end it saw).
    pub async fn for_each_batch_header(
        &self,
        from: u64,
        chunk_bytes: usize,
        mut f: impl FnMut(&BatchHeader),
    ) -> Result<u64> {
        let mut offset = from.max(self.log_start_offset());
        while offset < self.log_end_offset() {
            let read = self.read(offset, chunk_bytes).await?;
            for header in &read.batches {
                f(header);
            }
            match read.next_offset() {
                Some(next) if next > offset => offset = next,
                _ => break,
            }
        }
        Ok(offset)
    }

    /// ListOffsets by timestamp: the first offset whose record timestamp is ≥ `timestamp`, with
    /// that timestamp; `None` if no record is that new. Exact for uncompressed batches; for a
    /// compressed batch it answers with the batch's first offset and max timestamp.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        let start = {
            let state = self.shared.state.borrow();
            let Some(segment) = state
                .segments
                .values()
                .find(|s| s.max_timestamp >= timestamp)
            else {
                return Ok(None);
            };
            let entry = segment.index.scan_start_for_timestamp(timestamp);
            segment.base_offset + u64::from(entry.relative_offset)
        };
        let mut offset = start;
        while offset < self.log_end_offset() {
            let read = self.read(offset, 1 << 20).await?;
            let mut at = 0usize;
            for header in &read.batches {
                let len = header.total_len().unwrap_or(0);
                if header.max_timestamp >= timestamp {
                    // Only the one batch is copied, to walk its records.
                    let bytes = read.copy_range(at..at + len);
                    let found = batch::find_record_at_or_after(&bytes, timestamp)
                        .unwrap_or((header.base_offset as u64, header.max_timestamp));
                    return Ok(Some(found));
                }
                at += len;
            }
            match read.next_offset() {
                Some(next) => offset = next,
                None => break,
            }
        }
        Ok(None)
    }

    /// Deletes whole sealed segments past retention.ms (by their newest timestamp) or while the
    /// log exceeds retention.bytes; the log start offset moves to the first segment kept. Only
    /// with cleanup.policy `delete` (alone or with `compact`).
    pub fn apply_retention(&self) -> Result<RetentionOutcome> {
        let config = self.shared.config();
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.state.borrow_mut();
        let mut total: u64 = state.segments.values().map(|s| s.size).sum();
        let mut deleted = Vec::new();
        // cleanup.policy=compact alone keeps everything compaction leaves; and a compaction in
        // progress owns the segments it rewrites until it has swapped them.
        let deleting = config.cleanup_delete && !self.shared.cleaner.borrow().running;
        while deleting && state.segments.len() > 1 {
            let Some(oldest) = state.segments.values().next() else {
                break;
            };
            let expired = config.retention_ms.is_some_and(|ms| {
                oldest.max_timestamp >= 0 && oldest.max_timestamp < now - ms as i64
            });
            let oversize = config
                .retention_bytes
                .is_some_and(|limit| total - oldest.size >= limit);
            if !expired && !oversize {
                break;
            }
            oldest.remove_files()?;
            total -= oldest.size;
            let base = oldest.base_offset;
            state.segments.remove(&base);
            deleted.push(base);
        }
        let log_start_offset = state.segments.keys().next().copied().unwrap_or(0);
        state.tail.drop_segments_below(log_start_offset);
        if state
            .readahead
            .as_ref()
            .is_some_and(|s| s.segment_base < log_start_offset)
        {
            state.readahead = None;
        }
        Ok(RetentionOutcome {
            deleted_segments: deleted,
            log_start_offset,
        })
    }

    /// Writes everything queued, syncs, seals the active segment and marks a clean shutdown.
    pub async fn close(&self) -> Result<()> {
        {
            let mut state = self.shared.state.borrow_mut();
            state.closing = true;
        }
        self.shared.wake.notify();
        let task = self.flusher.borrow_mut().take();
        if let Some(task) = task {
            task.await;
        }
        let state = self.shared.state.borrow();
        match &state.failed {
            Some(reason) => Err(LogError::Offline(reason.clone())),
            None => Ok(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// The sealed segments (every one but the newest), oldest first: what compaction may rewrite.
    pub(crate) fn sealed_segments(&self) -> Vec<SealedSegment> {
        let state = self.shared.state.borrow();
        let bases: Vec<u64> = state.segments.keys().copied().collect();
        state
            .segments
            .values()
            .zip(bases.iter().skip(1))
            .map(|(s, &next_base)| SealedSegment {
                base_offset: s.base_offset,
                next_base,
                size: s.size,
                max_timestamp: s.max_timestamp,
                file: s.file.clone(),
                path: s.path.clone(),
            })
            .collect()
    }

    /// Whether the log is closing or closed (compaction then stops before it swaps anything).
    pub(crate) fn is_closing(&self) -> bool {
        let state = self.shared.state.borrow();
        state.closing || state.closed || state.failed.is_some()
    }

    /// Whether a segment starts at `base` (sealed or active).
    pub(crate) fn has_segment(&self, base: u64) -> bool {
        self.shared.state.borrow().segments.contains_key(&base)
    }

    /// Replaces the sealed segments `old` (consecutive bases below `end`, the first being `new`'s
    /// base) by `new`, the compacted copy whose files already took their place on disk. Recent data of
    /// those segments in the tail cache and a read-ahead stream over them are dropped, so reads
    /// go to the new file; readers already holding an old file keep reading it.
    pub(crate) fn replace_segments(&self, old: &[u64], end: u64, new: Segment) {
        let mut state = self.shared.state.borrow_mut();
        for base in old {
            state.segments.remove(base);
        }
        state.tail.drop_segments_in(new.base_offset, end);
        if state
            .readahead
            .as_ref()
            .is_some_and(|s| s.segment_base >= new.base_offset && s.segment_base < end)
        {
            state.readahead = None;
        }
        state.segments.insert(new.base_offset, new);
    }

    /// The config the log runs with now.
    pub fn config(&self) -> LogConfig {
        LogConfig::clone(&self.shared.config())
    }

    /// Changes the config of the open log (a topic's configs were altered). Each setting takes
    /// effect where the log next consults it: segment.bytes and segment.ms at the next append's
    /// roll decision (the active segment keeps its preallocation; a smaller segment.bytes rolls
    /// at the next append), preallocate when the next segment is created, max.message.bytes at
    /// the next append, index.interval.bytes at the next index point, retention at the next
    /// `apply_retention`, flush.messages / flush.ms at once (the flusher is woken to re-plan).
    /// `write_bytes_max` and `tail_cache_bytes` are not topic configs: they stay as opened.
    pub fn set_config(&self, config: LogConfig) {
        let current = self.shared.config();
        let config = LogConfig {
            write_bytes_max: current.write_bytes_max,
            tail_cache_bytes: current.tail_cache_bytes,
            ..config
        };
        *self.shared.config.borrow_mut() = Rc::new(config);
        self.shared.wake.notify();
    }
}

/// Kafka's rule for compacted topics: every record needs a key ("Compacted topic cannot accept
/// message without key", INVALID_RECORD). Compressed batches are decompressed to check (as
/// Kafka's LogValidator does for compacted topics), bounded by `compact::DECOMPRESSED_BATCH_MAX`;
/// records that cannot be decompressed are CORRUPT_MESSAGE.
fn refuse_keyless(records: &[u8], spans: &[BatchSpan]) -> Result<()> {
    for span in spans {
        let batch = &records[span.position..span.position + span.len];
        let header = &span.header;
        let plain = match wire::codec::Codec::from_id(header.compression()) {
            Ok(wire::codec::Codec::None) => std::borrow::Cow::Borrowed(&batch[batch::HEADER_LEN..]),
            Ok(codec) => wire::codec::decompress(
                codec,
                &batch[batch::HEADER_LEN..],
                crate::compact::DECOMPRESSED_BATCH_MAX,
            )
            .map(std::borrow::Cow::Owned)
            .map_err(|e| LogError::CorruptMessage {
                position: span.position,
                reason: e.to_string(),
            })?,
            Err(e) => {
                return Err(LogError::CorruptMessage {
                    position: span.position,
                    reason: e.to_string(),
                })
            }
        };
        let Some(views) = batch::records_in(&plain, header.records_count) else {
            return Err(LogError::CorruptMessage {
                position: span.position,
                reason: "the records do not decode".into(),
            });
        };
        if views.iter().any(|r| r.key.is_none()) {
            return Err(LogError::InvalidRecord {
                position: span.position,
                reason: "a compacted topic cannot accept a record without a key".into(),
            });
        }
    }
    Ok(())
}

/// A sealed segment as compaction sees it: its offsets, size, newest timestamp and file.
pub(crate) struct SealedSegment {
    pub base_offset: u64,
    /// The next segment's base: every offset of this segment is below it.
    pub next_base: u64,
    pub size: u64,
    pub max_timestamp: i64,
    pub file: Rc<glommio::io::DmaFile>,
    pub path: PathBuf,
}

/// When a file was created (statx birth time), in ms since the epoch.
fn created_ms(path: &Path) -> Option<i64> {
    let created = std::fs::metadata(path).ok()?.created().ok()?;
    let since_epoch = created.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since_epoch.as_millis() as i64)
}

/// What the flusher does next.
enum Step {
    Roll,
    Write(Vec<Pending>),
    Sync,
    Close,
    Idle(Option<Duration>),
}

/// Bytes of groups written at once, in units of `write_bytes_max`: enough to keep the disk busy
/// while the next group is copied.
const IN_FLIGHT_WRITES_MAX: usize = 16;
/// Largest group, in units of `write_bytes_max`.
const GROUP_WRITES_MAX: usize = 4;
/// Spare full-size write buffers kept for reuse (first-touch page faults cost more than the copy).
const BUFFER_POOL_MAX: usize = 16;

fn next_step(shared: &Shared, in_flight: &InFlight) -> Step {
    let mut state = shared.state.borrow_mut();
    let config = shared.config();
    if let Some(front) = state.pending.front() {
        if front.starts_segment {
            if in_flight.is_idle() {
                return Step::Roll;
            }
        } else if in_flight.bytes < config.write_bytes_max.saturating_mul(IN_FLIGHT_WRITES_MAX) {
            let mut group = Vec::new();
            let mut bytes = 0usize;
            let budget = config.write_bytes_max.saturating_mul(GROUP_WRITES_MAX);
            while let Some(next) = state.pending.front() {
                if next.starts_segment || (!group.is_empty() && bytes + next.bytes.len() > budget) {
                    break;
                }
                bytes += next.bytes.len();
                if let Some(next) = state.pending.pop_front() {
                    group.push(next);
                }
            }
            return Step::Write(group);
        }
    }
    let mut deadline = None;
    if state.durable < state.log_end && in_flight.sync.is_none() {
        let now = shared.clock.now_ms();
        let waited_on = state
            .durable_waiters
            .iter()
            .any(|w| w.offset < state.log_end);
        let by_count = config
            .flush_messages
            .is_some_and(|n| state.unsynced_records >= n);
        let due = config
            .flush_ms
            .zip(state.oldest_unsynced_ms)
            .map(|(ms, t)| t + ms as i64);
        let closing = state.closing && state.pending.is_empty() && in_flight.groups.is_empty();
        if waited_on || by_count || closing || due.is_some_and(|d| now >= d) {
            return Step::Sync;
        }
        deadline = due.map(|d| Duration::from_millis((d - now).max(1) as u64));
    }
    if state.closing
        && state.pending.is_empty()
        && in_flight.is_idle()
        && state.durable == state.log_end
    {
        return Step::Close;
    }
    Step::Idle(deadline)
}

/// Groups whose writes are in the kernel, oldest first. They are published in this order.
#[derive(Default)]
struct InFlight {
    groups: VecDeque<WrittenGroup>,
    bytes: usize,
    sync: Option<SyncInFlight>,
}

/// An fdatasync in the kernel, and the log end offset it will make durable.
struct SyncInFlight {
    target: u64,
    outcome: Rc<RefCell<Option<Result<()>>>>,
}

impl InFlight {
    fn is_idle(&self) -> bool {
        self.groups.is_empty() && self.sync.is_none()
    }
}

/// A group of batches copied into DMA buffers and handed to the kernel.
struct WrittenGroup {
    batches: Vec<Pending>,
    segment_base: u64,
    /// File position of the group's first batch.
    start: u64,
    buffers: Vec<(u64, Rc<DmaBuffer>)>,
    /// Set by the group's write task when every write has completed.
    outcome: Rc<RefCell<Option<Result<()>>>>,
    /// Completes when the write of the group's last page is done; the next group, which rewrites
    /// that page with more data behind it, waits for it before writing its own first buffer.
    last_page_written: Option<oneshot::Receiver<()>>,
}

/// The one task that writes and syncs this partition. Groups are copied and submitted while
/// earlier groups are still being written (never two writes to one page at once), and published
/// strictly in order; a sync covers every write published before it.
async fn flusher(shared: Rc<Shared>) {
    let mut in_flight = InFlight::default();
    loop {
        if let Err(error) = publish_completed(&shared, &mut in_flight) {
            tracing::error!(dir = %shared.dir.display(), %error, "partition log is going offline");
            fail(&shared, error.to_string());
            return;
        }
        let step = next_step(&shared, &in_flight);
        let outcome = match step {
            Step::Roll => roll(&shared).await,
            Step::Write(group) => submit_group(&shared, group, &mut in_flight),
            Step::Sync => start_sync(&shared, &mut in_flight),
            Step::Close => {
                let result = close_active(&shared).await;
                if let Err(e) = result {
                    fail(&shared, e.to_string());
                }
                let mut state = shared.state.borrow_mut();
                state.closed = true;
                wake_all(&mut state.written_waiters, Err("log closed".into()));
                wake_all(&mut state.durable_waiters, Err("log closed".into()));
                return;
            }
            Step::Idle(timeout) => {
                match timeout {
                    Some(timeout) => {
                        let notified = std::pin::pin!(shared.wake.notified());
                        let timer = std::pin::pin!(glommio::timer::sleep(timeout));
                        let _ = select(notified, timer).await;
                    }
                    None => shared.wake.notified().await,
                }
                Ok(())
            }
        };
        if let Err(error) = outcome {
            tracing::error!(dir = %shared.dir.display(), %error, "partition log is going offline");
            fail(&shared, error.to_string());
            return;
        }
    }
}

fn fail(shared: &Shared, reason: String) {
    let mut state = shared.state.borrow_mut();
    state.failed.get_or_insert(reason.clone());
    state.pending.clear();
    wake_all(&mut state.written_waiters, Err(reason.clone()));
    wake_all(&mut state.durable_waiters, Err(reason));
}

fn wake_all(waiters: &mut Vec<Waiter>, result: Result<(), String>) {
    for waiter in waiters.drain(..) {
        let _ = waiter.done.send(result.clone());
    }
}

fn wake_reached(waiters: &mut Vec<Waiter>, reached: u64) {
    let mut i = 0;
    while i < waiters.len() {
        if waiters[i].offset < reached {
            let waiter = waiters.swap_remove(i);
            let _ = waiter.done.send(Ok(()));
        } else {
            i += 1;
        }
    }
}

/// Copies a group of batches (behind the carried partial page) into page-aligned DMA buffers and
/// hands them to the kernel, all at once; a task reports when every write has completed.
fn submit_group(shared: &Shared, group: Vec<Pending>, in_flight: &mut InFlight) -> Result<()> {
    let config = shared.config();
    let mut state = shared.state.borrow_mut();
    let state = &mut *state;
    let active = state
        .segments
        .values()
        .next_back()
        .ok_or(LogError::Closed)?;
    let (file, path, segment_base) = (active.file.clone(), active.path.clone(), active.base_offset);
    let alignment = segment::write_alignment(&file);
    let start = state.prepared_end;
    let carry = std::mem::take(&mut state.carry);
    let region_start = start - carry.len() as u64;
    let data_bytes: u64 = group.iter().map(|p| p.bytes.len() as u64).sum();
    let end = start + data_bytes;
    let region_end = end.div_ceil(alignment) * alignment;

    // Cut the region into non-overlapping aligned buffers; full-size ones come from the pool.
    let cut = buffer_cut(&config, alignment);
    let mut buffers: Vec<(u64, DmaBuffer)> = Vec::new();
    let mut at = region_start;
    while at < region_end {
        let len = cut.min(region_end - at);
        let pooled = if len == cut {
            state.buffer_pool.pop()
        } else {
            None
        };
        buffers.push((
            at,
            pooled.unwrap_or_else(|| file.alloc_dma_buffer(len as usize)),
        ));
        at += len;
    }
    let mut put =
        |position: u64, bytes: &[u8]| scatter(&mut buffers, cut, region_start, position, bytes);
    put(region_start, &carry);
    let mut position = start;
    for pending in &group {
        let mut prefix = [0u8; STAMPED_PREFIX];
        prefix.copy_from_slice(&pending.bytes[..STAMPED_PREFIX]);
        batch::stamp(&mut prefix, pending.base_offset, pending.leader_epoch);
        put(position, &prefix);
        put(
            position + STAMPED_PREFIX as u64,
            &pending.bytes[STAMPED_PREFIX..],
        );
        position += pending.bytes.len() as u64;
    }
    if let Some((buffer_start, last)) = buffers.last_mut() {
        let from = (end - *buffer_start) as usize;
        last.as_bytes_mut()[from..].fill(0);
        let last_page = (end - end % alignment - *buffer_start) as usize;
        state.carry = last.as_bytes()[last_page..from].to_vec();
    }
    state.prepared_end = end;

    let buffers: Vec<(u64, Rc<DmaBuffer>)> = buffers
        .into_iter()
        .map(|(at, b)| (at, Rc::new(b)))
        .collect();
    // The previous group's last page is this group's first page unless that group ended on a page
    // boundary; then there is nothing to wait for.
    let previous = in_flight
        .groups
        .back_mut()
        .and_then(|g| g.last_page_written.take());
    let gate = if carry.is_empty() { None } else { previous };
    let (last_done, last_page_written) = oneshot::channel();
    let writes: Vec<(u64, Rc<DmaBuffer>)> = buffers.clone();
    let outcome = spawn_reported(shared, async move {
        let count = writes.len();
        let mut gate = gate;
        let mut last_done = Some(last_done);
        let mut futures = Vec::with_capacity(count);
        for (i, (at, buffer)) in writes.into_iter().enumerate() {
            let file = file.clone();
            let gate = if i == 0 { gate.take() } else { None };
            let last_done = if i + 1 == count {
                last_done.take()
            } else {
                None
            };
            futures.push(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                let expected = buffer.len();
                let result = file.write_rc_at(buffer, at).await;
                if let Some(done) = last_done {
                    let _ = done.send(());
                }
                (result, expected)
            });
        }
        let mut result = Ok(());
        for (written, expected) in join_all(futures).await {
            let checked = match written {
                Ok(n) if n == expected => Ok(()),
                Ok(n) => Err(std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {n} of {expected} bytes"),
                )),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = checked {
                result = Err(LogError::io("writing segment", &path, e));
            }
        }
        result
    });
    in_flight.bytes += data_bytes as usize;
    in_flight.groups.push_back(WrittenGroup {
        batches: group,
        segment_base,
        start,
        buffers,
        outcome,
        last_page_written: Some(last_page_written),
    });
    Ok(())
}

/// Runs `work` in a task of its own; its result lands in the returned cell, and the flusher is
/// woken to look at it.
fn spawn_reported(
    shared: &Shared,
    work: impl Future<Output = Result<()>> + 'static,
) -> Rc<RefCell<Option<Result<()>>>> {
    let outcome = Rc::new(RefCell::new(None));
    let cell = outcome.clone();
    let wake = shared.wake_handle();
    glommio::spawn_local(async move {
        let result = work.await;
        *cell.borrow_mut() = Some(result);
        wake.notify();
    })
    .detach();
    outcome
}

/// Publishes, in order, every group at the front whose writes have all completed: index, log end
/// offset, tail cache, waiters. A failed write fails the log.
fn publish_completed(shared: &Shared, in_flight: &mut InFlight) -> Result<()> {
    if let Some(sync) = &in_flight.sync {
        let outcome = sync.outcome.borrow_mut().take();
        if let Some(outcome) = outcome {
            outcome?;
            let target = sync.target;
            in_flight.sync = None;
            mark_durable(&mut shared.state.borrow_mut(), target);
        }
    }
    while let Some(front) = in_flight.groups.front() {
        let Some(outcome) = front.outcome.borrow_mut().take() else {
            break;
        };
        outcome?;
        let Some(group) = in_flight.groups.pop_front() else {
            break;
        };
        let data_bytes: usize = group.batches.iter().map(|p| p.bytes.len()).sum();
        in_flight.bytes -= data_bytes;
        publish(shared, group)?;
    }
    Ok(())
}

fn publish(shared: &Shared, group: WrittenGroup) -> Result<()> {
    let config = shared.config();
    let now = shared.clock.now_ms();
    let mut state = shared.state.borrow_mut();
    let state = &mut *state;
    let active = state
        .segments
        .values_mut()
        .next_back()
        .ok_or(LogError::Closed)?;
    let mut position = group.start;
    for pending in &group.batches {
        let mut header = pending.header;
        header.base_offset = pending.base_offset as i64;
        header.partition_leader_epoch = pending.leader_epoch;
        let len = pending.bytes.len();
        active.on_written(&header, position, len, config.index_interval_bytes);
        state
            .tail
            .insert_batch(group.segment_base, position, len, header);
        state.unsynced_records += header.records_count as u64;
        position += len as u64;
    }
    for (at, buffer) in group.buffers {
        state.tail.insert(group.segment_base, at, buffer);
    }
    let cut = buffer_cut(&config, segment::write_alignment(&active.file));
    for evicted in state.tail.evict() {
        if state.buffer_pool.len() < BUFFER_POOL_MAX {
            if let Ok(buffer) = Rc::try_unwrap(evicted) {
                if buffer.len() as u64 == cut {
                    state.buffer_pool.push(buffer);
                }
            }
        }
    }
    state.log_end = active.next_offset;
    state.oldest_unsynced_ms.get_or_insert(now);
    wake_reached(&mut state.written_waiters, state.log_end);
    Ok(())
}

/// The size of a full write buffer: `write_bytes_max` rounded down to the write alignment (one
/// aligned unit at least). Only buffers of this size go back to the pool.
fn buffer_cut(config: &LogConfig, alignment: u64) -> u64 {
    (config.write_bytes_max as u64 / alignment).max(1) * alignment
}

/// Copies `bytes` to file position `position` across the buffers of a write region.
fn scatter(
    buffers: &mut [(u64, DmaBuffer)],
    cut: u64,
    region_start: u64,
    mut position: u64,
    mut bytes: &[u8],
) {
    while !bytes.is_empty() {
        let index = ((position - region_start) / cut) as usize;
        let (buffer_start, buffer) = &mut buffers[index];
        let from = (position - *buffer_start) as usize;
        let n = bytes.len().min(buffer.len() - from);
        buffer.as_bytes_mut()[from..from + n].copy_from_slice(&bytes[..n]);
        bytes = &bytes[n..];
        position += n as u64;
    }
}

/// Starts an fdatasync of the active segment in a task of its own, so writes go on meanwhile; it
/// will cover everything published before it was issued.
fn start_sync(shared: &Shared, in_flight: &mut InFlight) -> Result<()> {
    let (file, path, target) = {
        let state = shared.state.borrow();
        let active = state
            .segments
            .values()
            .next_back()
            .ok_or(LogError::Closed)?;
        (active.file.clone(), active.path.clone(), state.log_end)
    };
    let outcome = spawn_reported(shared, async move {
        file.fdatasync()
            .await
            .map_err(|e| LogError::io("syncing segment", &path, e))
    });
    in_flight.sync = Some(SyncInFlight { target, outcome });
    Ok(())
}

fn mark_durable(state: &mut State, target: u64) {
    if target > state.durable {
        state.durable = target;
    }
    if state.durable == state.log_end {
        state.unsynced_records = 0;
        state.oldest_unsynced_ms = None;
    }
    wake_reached(&mut state.durable_waiters, state.durable);
}

/// Seals the active segment and starts a new one at the next queued batch's offset.
async fn roll(shared: &Shared) -> Result<()> {
    let new_base = {
        let mut state = shared.state.borrow_mut();
        let Some(front) = state.pending.front_mut() else {
            return Ok(());
        };
        front.starts_segment = false;
        front.base_offset
    };
    seal_active(shared).await?;
    let preallocate = shared.config().preallocate_bytes();
    let segment = Segment::create(&shared.dir, new_base, preallocate).await?;
    let mut state = shared.state.borrow_mut();
    state.segments.insert(new_base, segment);
    state.carry.clear();
    state.prepared_end = 0;
    Ok(())
}

async fn close_active(shared: &Shared) -> Result<()> {
    seal_active(shared).await?;
    durable::write_file_durably(&shared.dir, CLEAN_SHUTDOWN_MARKER, b"clean\n").await
}

/// Seals the active segment (see `Segment::seal`) and moves the durable watermark to its end.
/// The segment goes back into the map whatever happens, so readers still find it.
async fn seal_active(shared: &Shared) -> Result<()> {
    let (mut active, target) = {
        let mut state = shared.state.borrow_mut();
        let base = *state.segments.keys().next_back().ok_or(LogError::Closed)?;
        let active = state.segments.remove(&base).ok_or(LogError::Closed)?;
        (active, state.log_end)
    };
    let sealed = active.seal().await;
    let mut state = shared.state.borrow_mut();
    state.segments.insert(active.base_offset, active);
    sealed?;
    mark_durable(&mut state, target);
    Ok(())
}

/// A wake-up flag for the single flusher task.
#[derive(Default)]
struct Notify {
    flagged: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    fn notify(&self) {
        self.flagged.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }
}

struct Notified<'a> {
    notify: &'a Notify,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.flagged.replace(false) {
            Poll::Ready(())
        } else {
            *self.notify.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
