//! The partition log's API: offset assignment, the two watermarks, retention, configuration, a
//! clean close, and the hooks compaction swaps segments through.
//!
//! Owns one partition's data on one shard. It is `!Send` on purpose: it lives on the shard that
//! owns the partition, and other shards reach it by message passing. Must not know about Kafka
//! requests or connections; it takes record sets and returns offsets, bytes and typed errors. Must
//! not write segment files itself: the flusher task does (`flusher`), and `recovery` builds the
//! state a log starts from.
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
//!    buffers join the tail cache; waiters on the written watermark wake (`notify`).
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
//! Reads (tail cache, read-ahead, verified cold reads) are in `read`. Compaction
//! (`crate::compact`) rewrites sealed segments only, and swaps its result in through
//! `replace_segments`; reads therefore accept gaps between batches (never offsets going back).

mod flusher;
mod in_flight;
mod notify;
mod pending;
mod read;
mod recovery;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use futures::channel::oneshot;
use glommio::io::DmaBuffer;
use glommio::Task;

use crate::config::{Clock, LogConfig};
use crate::error::{LogError, Result};
use crate::readahead::ReadAhead;
use crate::segment::Segment;
use crate::tail::TailCache;
use notify::{Notify, Waiter};
use pending::{Pending, PendingQueue};
use wire::batch::BatchError;
use wire::batch::{self, BatchSpan};

pub use read::LogRead;

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

/// What retention removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetentionOutcome {
    pub deleted_segments: Vec<u64>,
    pub log_start_offset: u64,
}

/// What the flusher has done since the log was opened: how many groups it submitted, the largest,
/// and the most bytes it had in the kernel at once (bounded by `LogConfig::in_flight_bytes_max`
/// plus one group: a group is submitted while less than that is in flight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    pub groups: u64,
    pub group_bytes_peak: u64,
    pub in_flight_bytes_peak: u64,
}

/// The largest segment file: index entries hold positions as u32. A segment.bytes above it rolls
/// here (Kafka's segment.bytes is an int, so never reaches it).
const SEGMENT_POSITION_MAX: u64 = u32::MAX as u64;

/// Where the next append goes: state of assignment, ahead of what is written.
struct Cursor {
    next_offset: u64,
    segment_base: u64,
    segment_bytes: u64,
    segment_first_append_ms: Option<i64>,
}

struct State {
    segments: BTreeMap<u64, Segment>,
    cursor: Cursor,
    pending: PendingQueue,
    log_end: u64,
    durable: u64,
    carry: Vec<u8>,
    /// File position after the last group handed to the kernel (ahead of what is published).
    prepared_end: u64,
    /// Full-size write buffers back from the tail cache, for reuse.
    buffer_pool: Vec<DmaBuffer>,
    write_stats: WriteStats,
    unsynced_records: u64,
    oldest_unsynced_ms: Option<i64>,
    written_waiters: Vec<Waiter>,
    durable_waiters: Vec<Waiter>,
    tail: TailCache,
    /// The read-ahead stream of the last sequential cold reader.
    readahead: Option<ReadAhead>,
    failed: Option<String>,
    /// Set while the active segment's next reservation is refused for lack of space: appends are
    /// refused (`LogError::DiskFull`), what was queued waits, the flusher retries.
    disk_full: Option<String>,
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
    /// Compaction's progress (`crate::compact`); only that module reads or writes it.
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
    /// was not clean (see `recovery`). Must run on a glommio executor.
    pub async fn open(
        dir: impl AsRef<Path>,
        config: LogConfig,
        clock: Clock,
    ) -> Result<PartitionLog> {
        let (dir, state) = recovery::recover(dir.as_ref(), &config, &clock).await?;
        // The cleaner resumes where its last pass ended (compact/checkpoint.rs).
        let cleaner = crate::compact::load_checkpoint(&dir, state.log_end);
        let shared = Rc::new(Shared {
            state: RefCell::new(state),
            wake: Rc::default(),
            dir,
            config: RefCell::new(Rc::new(config)),
            clock,
            cleaner: RefCell::new(cleaner),
        });
        let flusher = glommio::spawn_local(flusher::run(shared.clone()));
        Ok(PartitionLog {
            shared,
            flusher: Rc::new(RefCell::new(Some(flusher))),
        })
    }

    /// Validates a producer's record set and queues it for writing. Offsets are assigned now; the
    /// data becomes readable when the written watermark passes it (see [`Self::wait`]). Nothing is
    /// queued if any batch is invalid, or if the queue of data not yet written would pass
    /// `pending_bytes_max` ([`LogError::PendingFull`], retriable: the disk is behind).
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
        if let Some(reason) = &state.disk_full {
            return Err(LogError::DiskFull {
                dir: self.shared.dir.clone(),
                reason: reason.clone(),
            });
        }
        state
            .pending
            .admit(records.len(), config.pending_bytes_max)?;
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
                && (cursor.segment_bytes + len as u64
                    > config.segment_bytes.min(SEGMENT_POSITION_MAX)
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
            Ok(Err(failure)) => Err(failure.into()),
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

    /// The flusher's groups and writes in flight so far (see [`WriteStats`]).
    pub fn write_stats(&self) -> WriteStats {
        self.shared.state.borrow().write_stats
    }

    /// Bytes appended but not yet handed to the disk (bounded by `pending_bytes_max`).
    pub fn pending_bytes(&self) -> u64 {
        self.shared.state.borrow().pending.bytes()
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

    /// The base offset of the newest segment. Everything below it is in sealed segments, so it
    /// is durable (a roll syncs the old segment before the new one exists); what sits beside the
    /// log and must match a durable prefix of it (the producer-state snapshot) is cut here.
    pub fn active_segment_base(&self) -> u64 {
        let state = self.shared.state.borrow();
        state.segments.keys().next_back().copied().unwrap_or(0)
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

    /// Takes the log offline (see `flusher::fail`): for a failure after which the files on disk
    /// and the segments in memory may disagree, such as a compaction swap that failed after its
    /// commit point. The next open finishes or undoes what was interrupted.
    pub(crate) fn go_offline(&self, error: &LogError) {
        tracing::error!(dir = %self.shared.dir.display(), %error, "partition log is going offline");
        flusher::fail(&self.shared, error.to_string());
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
    /// `write_bytes_max`, `in_flight_writes_max`, `write_group_bytes_max`, `tail_cache_bytes` and
    /// `pending_bytes_max` are not topic configs: they stay as opened.
    pub fn set_config(&self, config: LogConfig) {
        let current = self.shared.config();
        let config = LogConfig {
            write_bytes_max: current.write_bytes_max,
            in_flight_writes_max: current.in_flight_writes_max,
            write_group_bytes_max: current.write_group_bytes_max,
            tail_cache_bytes: current.tail_cache_bytes,
            pending_bytes_max: current.pending_bytes_max,
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
            .map_err(|e| {
                LogError::from(BatchError::CorruptMessage {
                    position: span.position,
                    reason: e.to_string(),
                })
            })?,
            Err(e) => {
                return Err(LogError::from(BatchError::CorruptMessage {
                    position: span.position,
                    reason: e.to_string(),
                }))
            }
        };
        let Some(views) = batch::records_in(&plain, header.records_count) else {
            return Err(LogError::from(BatchError::CorruptMessage {
                position: span.position,
                reason: "the records do not decode".into(),
            }));
        };
        if views.iter().any(|r| r.key.is_none()) {
            return Err(LogError::from(BatchError::InvalidRecord {
                position: span.position,
                reason: "a compacted topic cannot accept a record without a key".into(),
            }));
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
