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

use crate::batch::{self, BatchHeader, BatchSpan};
use crate::config::{Clock, LogConfig};
use crate::error::{LogError, Result};
use crate::segment::{self, read_batches, Segment};
use crate::tail::{LogBytes, TailCache};

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
        self.chunks.iter().flat_map(|c| c.iter().copied()).collect()
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
    unsynced_records: u64,
    oldest_unsynced_ms: Option<i64>,
    written_waiters: Vec<Waiter>,
    durable_waiters: Vec<Waiter>,
    tail: TailCache,
    failed: Option<String>,
    closing: bool,
    closed: bool,
}

struct Shared {
    state: RefCell<State>,
    wake: Notify,
    dir: PathBuf,
    config: LogConfig,
    clock: Clock,
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
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| LogError::io("creating log directory", &dir, e))?;
        segment::probe_device(&dir).await?;
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
            segment::sync_dir(&dir).await?;
        }
        let preallocate = if config.preallocate {
            config.segment_bytes
        } else {
            0
        };
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
            segment_first_append_ms: (active.size > 0).then(|| clock.now_ms()),
        };
        let log_end = active.next_offset;
        let state = State {
            segments,
            cursor,
            pending: VecDeque::new(),
            log_end,
            durable: log_end,
            carry,
            unsynced_records: 0,
            oldest_unsynced_ms: None,
            written_waiters: Vec::new(),
            durable_waiters: Vec::new(),
            tail: TailCache::new(config.tail_cache_bytes),
            failed: None,
            closing: false,
            closed: false,
        };
        let shared = Rc::new(Shared {
            state: RefCell::new(state),
            wake: Notify::default(),
            dir,
            config,
            clock,
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
        let spans = batch::validate_record_set(&records, self.shared.config.max_message_bytes)?;
        let now = self.shared.clock.now_ms();
        let config = &self.shared.config;
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
            let too_old = cursor
                .segment_first_append_ms
                .is_some_and(|first| now - first >= config.segment_ms as i64);
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
        self.shared.wake.notify();
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
    pub async fn read(&self, offset: u64, max_bytes: usize) -> Result<LogRead> {
        let (file, path, position, position_offset, segment_len, log_start, log_end) = {
            let state = self.shared.state.borrow();
            let log_start = state.segments.keys().next().copied().unwrap_or(0);
            let log_end = state.log_end;
            if offset < log_start || offset > log_end {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start,
                    log_end,
                });
            }
            let empty = |chunks, batches| LogRead {
                chunks,
                batches,
                log_start_offset: log_start,
                log_end_offset: log_end,
            };
            if offset == log_end {
                return Ok(empty(Vec::new(), Vec::new()));
            }
            if let Some((chunks, batches)) = state.tail.read(offset, max_bytes) {
                return Ok(empty(chunks, batches));
            }
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
                u64::from(entry.position),
                segment.base_offset + u64::from(entry.relative_offset),
                segment.size,
                log_start,
                log_end,
            )
        };
        let (bytes, batches) = read_batches(
            &file,
            &path,
            position,
            position_offset,
            segment_len,
            offset,
            max_bytes,
        )
        .await?;
        Ok(LogRead {
            chunks: bytes.into_iter().map(LogBytes::Disk).collect(),
            batches,
            log_start_offset: log_start,
            log_end_offset: log_end,
        })
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
            let bytes = read.to_vec();
            for header in &read.batches {
                let len = header.total_len().unwrap_or(0);
                if header.max_timestamp >= timestamp {
                    let found = batch::find_record_at_or_after(&bytes[at..at + len], timestamp)
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
    /// log exceeds retention.bytes; the log start offset moves to the first segment kept.
    pub fn apply_retention(&self) -> Result<RetentionOutcome> {
        let config = &self.shared.config;
        let now = self.shared.clock.now_ms();
        let mut state = self.shared.state.borrow_mut();
        let mut total: u64 = state.segments.values().map(|s| s.size).sum();
        let mut deleted = Vec::new();
        while state.segments.len() > 1 {
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
}

/// What the flusher does next.
enum Step {
    Roll,
    Write(Vec<Pending>),
    Sync,
    Close,
    Idle(Option<Duration>),
}

fn next_step(shared: &Shared) -> Step {
    let mut state = shared.state.borrow_mut();
    let config = &shared.config;
    if let Some(front) = state.pending.front() {
        if front.starts_segment {
            return Step::Roll;
        }
        let mut group = Vec::new();
        let mut bytes = 0usize;
        let budget = config.write_bytes_max.saturating_mul(4);
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
    if state.durable < state.log_end {
        let now = shared.clock.now_ms();
        let waited_on = state
            .durable_waiters
            .iter()
            .any(|w| w.offset < state.log_end);
        let by_count = config
            .flush_messages
            .is_some_and(|n| state.unsynced_records >= n);
        let deadline = config
            .flush_ms
            .zip(state.oldest_unsynced_ms)
            .map(|(ms, t)| t + ms as i64);
        if waited_on || by_count || state.closing || deadline.is_some_and(|d| now >= d) {
            return Step::Sync;
        }
        return Step::Idle(deadline.map(|d| Duration::from_millis((d - now).max(1) as u64)));
    }
    if state.closing {
        return Step::Close;
    }
    Step::Idle(None)
}

/// The one task that writes and syncs this partition: writes never overlap, and a sync covers
/// every write completed before it.
async fn flusher(shared: Rc<Shared>) {
    loop {
        let step = next_step(&shared);
        let outcome = match step {
            Step::Roll => roll(&shared).await,
            Step::Write(group) => write_group(&shared, group).await,
            Step::Sync => sync(&shared).await,
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

/// Copies a group of batches (behind the carried partial page) into page-aligned DMA buffers,
/// writes them all at once, and publishes the result.
async fn write_group(shared: &Shared, group: Vec<Pending>) -> Result<()> {
    let config = &shared.config;
    let (file, path, segment_base, start) = {
        let state = shared.state.borrow();
        let active = state
            .segments
            .values()
            .next_back()
            .ok_or(LogError::Closed)?;
        (
            active.file.clone(),
            active.path.clone(),
            active.base_offset,
            active.size,
        )
    };
    let alignment = file.alignment();
    let carry = std::mem::take(&mut shared.state.borrow_mut().carry);
    let region_start = start - carry.len() as u64;
    let data_bytes: u64 = group.iter().map(|p| p.bytes.len() as u64).sum();
    let end = start + data_bytes;
    let region_end = end.div_ceil(alignment) * alignment;

    // Cut the region into non-overlapping aligned buffers.
    let cut = (config.write_bytes_max as u64 / alignment).max(1) * alignment;
    let mut buffers: Vec<(u64, DmaBuffer)> = Vec::new();
    let mut at = region_start;
    while at < region_end {
        let len = cut.min(region_end - at);
        buffers.push((at, file.alloc_dma_buffer(len as usize)));
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
    }
    let buffers: Vec<(u64, Rc<DmaBuffer>)> = buffers
        .into_iter()
        .map(|(at, b)| (at, Rc::new(b)))
        .collect();
    let writes = buffers.iter().map(|(at, buffer)| {
        let file = file.clone();
        let buffer = buffer.clone();
        let at = *at;
        async move { (file.write_rc_at(buffer.clone(), at).await, buffer.len()) }
    });
    for (result, expected) in join_all(writes).await {
        let written = result.map_err(|e| LogError::io("writing segment", &path, e))?;
        if written != expected {
            return Err(LogError::io(
                "writing segment",
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {written} of {expected}"),
                ),
            ));
        }
    }

    // Publish: index, LEO, tail cache, waiters.
    let now = shared.clock.now_ms();
    let mut state = shared.state.borrow_mut();
    let state = &mut *state;
    let last_page = end - end % alignment;
    if let Some((buffer_start, last)) = buffers.last() {
        let from = (last_page - buffer_start) as usize;
        let to = (end - buffer_start) as usize;
        state.carry = last.as_bytes()[from..to].to_vec();
    }
    let active = state
        .segments
        .values_mut()
        .next_back()
        .ok_or(LogError::Closed)?;
    let mut position = start;
    for pending in &group {
        let mut header = pending.header;
        header.base_offset = pending.base_offset as i64;
        header.partition_leader_epoch = pending.leader_epoch;
        let len = pending.bytes.len();
        active.on_written(&header, position, len, config.index_interval_bytes);
        state.tail.insert_batch(segment_base, position, len, header);
        state.unsynced_records += header.records_count as u64;
        position += len as u64;
    }
    for (at, buffer) in buffers {
        state.tail.insert(segment_base, at, buffer);
    }
    state.tail.evict();
    state.log_end = active.next_offset;
    state.oldest_unsynced_ms.get_or_insert(now);
    wake_reached(&mut state.written_waiters, state.log_end);
    Ok(())
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

async fn sync(shared: &Shared) -> Result<()> {
    let (file, path, target) = {
        let state = shared.state.borrow();
        let active = state
            .segments
            .values()
            .next_back()
            .ok_or(LogError::Closed)?;
        (active.file.clone(), active.path.clone(), state.log_end)
    };
    file.fdatasync()
        .await
        .map_err(|e| LogError::io("syncing segment", &path, e))?;
    let mut state = shared.state.borrow_mut();
    mark_durable(&mut state, target);
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
    let (mut active, target) = {
        let mut state = shared.state.borrow_mut();
        let base = *state.segments.keys().next_back().ok_or(LogError::Closed)?;
        let active = state.segments.remove(&base).ok_or(LogError::Closed)?;
        (active, state.log_end)
    };
    // The sealed segment goes back into the map whatever happens, so readers still find it.
    let sealed = active.seal().await;
    let base = active.base_offset;
    shared.state.borrow_mut().segments.insert(base, active);
    sealed?;
    mark_durable(&mut shared.state.borrow_mut(), target);
    let preallocate = if shared.config.preallocate {
        shared.config.segment_bytes
    } else {
        0
    };
    let segment = Segment::create(&shared.dir, new_base, preallocate).await?;
    let mut state = shared.state.borrow_mut();
    state.segments.insert(new_base, segment);
    state.carry.clear();
    Ok(())
}

async fn close_active(shared: &Shared) -> Result<()> {
    let (mut active, target) = {
        let mut state = shared.state.borrow_mut();
        let base = *state.segments.keys().next_back().ok_or(LogError::Closed)?;
        let active = state.segments.remove(&base).ok_or(LogError::Closed)?;
        (active, state.log_end)
    };
    let sealed = active.seal().await;
    let file = active.file.clone();
    {
        let mut state = shared.state.borrow_mut();
        state.segments.insert(active.base_offset, active);
        mark_durable(&mut state, target);
    }
    sealed?;
    drop(file);
    segment::write_file_durably(&shared.dir, CLEAN_SHUTDOWN_MARKER, b"clean\n").await
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
