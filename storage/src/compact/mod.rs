//! Log compaction (`cleanup.policy=compact`): Kafka's log cleaner for one partition log.
//!
//! Owns choosing what to clean, rewriting sealed segments into `.cleaned` files and swapping them
//! in crash-safely, and finishing or undoing an interrupted swap when the log opens. Must not
//! touch the active segment, take locks or run off the log's shard: it is a task on the owning
//! shard, it yields after every 1 MiB chunk and every ~1 MiB decompressed (to every other ready
//! task, not only when glommio's preemption timer says so) so produce and fetch go on, and the log's invariants (offsets only
//! grow, sealed files end at their last batch, indexes match) hold for what it writes.
//!
//! Semantics (Kafka's, with the differences noted):
//! - Only **sealed** segments are cleaned, and only those whose newest record is at least
//!   `min.compaction.lag.ms` old (the cleanable range stops at the first younger one).
//! - A pass runs when the **dirty** share of the cleanable range (bytes not yet compacted) is at
//!   least `min.cleanable.dirty.ratio`, when a tombstone kept by the last pass has become
//!   removable, or when a dirty segment's newest record is `max.compaction.lag.ms` old (Kafka
//!   looks at the first dirty batch's timestamp, so it may clean a little sooner); a compacted
//!   log's active segment rolls after at most max.compaction.lag.ms (Kafka's maxSegmentMs).
//! - The first dirty offset is saved in [`CHECKPOINT_FILE`] in the partition directory (Kafka's
//!   cleaner-offset-checkpoint; temporary file, fdatasync, rename, directory fsync) after each
//!   swapped group, with the producers' last batches and when kept tombstones come due, and read
//!   on open: a restart does not make the whole log dirty again. A missing, damaged or
//!   out-of-range checkpoint makes the whole log dirty once (safe, only slower).
//! - An offset map (key → highest offset) is built over the dirty segments (at most
//!   [`MAP_BYTES_MAX`] of keys: the pass then ends where the map filled). Every segment from the
//!   log start to that end is rewritten keeping a record only if no higher offset of its key is
//!   in the map. Offsets never change: removed records leave gaps, and a batch keeps its base
//!   offset and lastOffsetDelta (so a producer's last sequence survives). Records without a key
//!   are removed (Kafka's cleaner counts them invalid).
//! - **Tombstones** (null values) are removed once their timestamp is `delete.retention.ms` old
//!   (Kafka since KIP-534 counts from the first cleaning; here from the record's timestamp).
//! - **Compressed batches** are handled as Kafka's cleaner does: decompressed (`codec`, at most
//!   [`DECOMPRESSED_BATCH_MAX`] bytes), their keys enter the map, and a batch that loses records
//!   is rebuilt with the kept records re-compressed with the same codec (its default level): same
//!   base offset, lastOffsetDelta, producer id/epoch/base sequence and base timestamp, record
//!   bytes (offset and timestamp deltas) unchanged, max timestamp recomputed over the kept
//!   records (the log append time for LOG_APPEND_TIME batches), CRC32C recomputed. A batch that
//!   loses every record disappears. The same rebuild applies to uncompressed batches.
//! - Kept whole, never filtered: control batches, the last batch of each producer id (so
//!   idempotence state survives, as Kafka's "retain the last batch" rule), and a batch whose
//!   records cannot be read (damaged compression, or expanding past the bound: a warning is
//!   logged, and the log is then `opaque`: no tombstone is removed any more, so an older value
//!   hidden in such a batch can never resurface).
//! - Appends to a compacted log refuse records without a key, inside compressed batches too
//!   (`log::refuse_keyless` decompresses them, as Kafka's LogValidator does).
//! - Consecutive segments are **merged** into one cleaned segment while what is written so far
//!   plus the next segment's size before cleaning fits segment.bytes (Kafka groups by sizes
//!   before cleaning only, so its merges take a second pass), so a log of small cleaned segments
//!   shrinks in files too.
//!
//! Crash safety, one group of segments `b1..bn` (next segment at `end`):
//! 1. write `b1.log.cleaned` (O_DIRECT, fdatasync), `b1.index.cleaned` and
//!    `b1.timeindex.cleaned` (temporary file, fdatasync, rename), fsync the directory;
//! 2. commit: write the marker `b1.swap` holding `end` (temporary file, fdatasync, rename,
//!    directory fsync);
//! 3. delete the segments with bases in `(b1, end)`, rename the `.cleaned` files over `b1`'s
//!    (indexes first, the log last), fsync the directory, delete the marker, fsync again;
//! 4. swap the segment in memory (readers holding an old file keep reading it).
//!
//! On open ([`recover`]), a marker means step 3 is redone (every step is idempotent); `.cleaned`
//! files without a marker are removed. A kill -9 at any point leaves either the old segments or
//! the new one, never both and never neither.

mod checkpoint;
mod files;
mod rules;
mod swap;

pub(crate) use checkpoint::load_checkpoint;
use checkpoint::save_checkpoint;
use files::{BatchReader, CleanedWriter};
use rules::{plain_records, Kept, Rules};
pub(crate) use swap::recover;
use swap::{cleaned_name, finish_swap, remove_cleaned};

use std::collections::HashMap;

use crate::durable;
use crate::error::{LogError, Result};
use crate::index::SegmentIndex;
use crate::log::{PartitionLog, SealedSegment};
use crate::segment::{file_name, Segment};
use wire::batch::{self, BatchHeader};

/// Bytes read from a segment at a time.
const READ_CHUNK_BYTES: usize = 1 << 20;
/// Bytes written to a cleaned file at a time.
const WRITE_CHUNK_BYTES: usize = 1 << 20;
/// Key bytes the offset map of one pass may hold (Kafka's log.cleaner.dedupe.buffer.size is
/// 128 MiB shared by its cleaner threads).
pub const MAP_BYTES_MAX: usize = 64 << 20;
/// Bytes the records of one compressed batch may expand to when the cleaner reads them (a
/// producer's batch.size is ~1 MiB before compression; a bomb is kept whole, unread).
pub const DECOMPRESSED_BATCH_MAX: usize = 64 << 20;
const CLEANED_SUFFIX: &str = ".cleaned";
/// The cleaner's durable progress in a partition directory (Kafka's cleaner-offset-checkpoint,
/// per log dir there).
pub const CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
const SWAP_EXTENSION: &str = "swap";

/// Compaction's progress in one log, kept by the log (`Shared::cleaner`).
#[derive(Debug, Default)]
pub(crate) struct CleanerState {
    /// A pass is rewriting segments (retention leaves the log alone meanwhile).
    pub running: bool,
    /// Everything below this offset has been through a pass.
    pub first_dirty: u64,
    /// When the oldest tombstone the last pass kept becomes removable.
    pub tombstone_due: Option<i64>,
    /// A batch whose records could not be read (damaged compression, or expanding past
    /// [`DECOMPRESSED_BATCH_MAX`]) was kept whole: tombstones are then kept (see the header).
    pub opaque: bool,
    /// Producer id → base offset of its last batch seen in the cleaned range.
    pub producer_last: HashMap<i64, u64>,
}

/// What one compaction pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionOutcome {
    /// Sealed segments rewritten, and how many replaced them.
    pub segments_before: usize,
    pub segments_after: usize,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub records_removed: u64,
    /// Everything below this offset is now compacted.
    pub cleaned_to: u64,
}

/// Resets `running` however the pass ends (error or the task dropped at shutdown).
struct Running<'a>(&'a PartitionLog);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.shared().cleaner.borrow_mut().running = false;
    }
}

impl PartitionLog {
    /// Runs one compaction pass if the log's cleanup.policy includes `compact` and something is
    /// due (see the module header); `None` if nothing was done.
    pub async fn compact(&self) -> Result<Option<CompactionOutcome>> {
        let config = self.config();
        if !config.cleanup_compact || self.shared().cleaner.borrow().running {
            return Ok(None);
        }
        let now = self.shared().clock.now_ms();
        let sealed = self.sealed_segments();
        // The cleanable range: sealed segments up to the first one younger than the lag.
        let lag = config.min_compaction_lag_ms as i64;
        let cleanable: Vec<SealedSegment> = sealed
            .into_iter()
            .take_while(|s| lag == 0 || s.max_timestamp <= now.saturating_sub(lag))
            .collect();
        if cleanable.is_empty() {
            return Ok(None);
        }
        let (first_dirty, tombstone_due) = {
            let c = self.shared().cleaner.borrow();
            (c.first_dirty, c.tombstone_due)
        };
        let total: u64 = cleanable.iter().map(|s| s.size).sum();
        let dirty: u64 = cleanable
            .iter()
            .filter(|s| s.next_base > first_dirty)
            .map(|s| s.size)
            .sum();
        let ratio_due = dirty > 0
            && u128::from(dirty) * 1_000_000
                >= u128::from(config.min_cleanable_dirty_ratio_ppm) * u128::from(total);
        let tombstones_due = tombstone_due.is_some_and(|due| now >= due);
        // max.compaction.lag.ms: a dirty segment this old is cleaned whatever the ratio.
        let max_lag = config.max_compaction_lag_ms.min(i64::MAX as u64) as i64;
        let lag_due = cleanable.iter().any(|s| {
            s.next_base > first_dirty
                && s.max_timestamp >= 0
                && s.max_timestamp <= now.saturating_sub(max_lag)
        });
        if !ratio_due && !tombstones_due && !lag_due {
            return Ok(None);
        }
        self.shared().cleaner.borrow_mut().running = true;
        let _running = Running(self);
        self.run_pass(cleanable, first_dirty, now).await
    }

    async fn run_pass(
        &self,
        cleanable: Vec<SealedSegment>,
        first_dirty: u64,
        now: i64,
    ) -> Result<Option<CompactionOutcome>> {
        let config = self.config();
        // 1. The offset map over the dirty segments, as far as it fits.
        let mut map: HashMap<Vec<u8>, u64> = HashMap::new();
        let mut map_bytes = 0usize;
        let mut end = first_dirty.max(cleanable[0].base_offset);
        for seg in cleanable.iter().filter(|s| s.next_base > first_dirty) {
            let mut reader = BatchReader::new(seg);
            let mut decompressed = 0usize;
            while let Some((buf, batches)) = reader.next_chunk().await? {
                for (at, len, header) in batches {
                    if header.is_control() {
                        continue;
                    }
                    if header.producer_id >= 0 {
                        self.shared()
                            .cleaner
                            .borrow_mut()
                            .producer_last
                            .insert(header.producer_id, header.base_offset as u64);
                    }
                    let plain = plain_records(&buf[at..at + len], &header);
                    let records = plain
                        .as_deref()
                        .and_then(|p| batch::records_in(p, header.records_count));
                    let Some(records) = records else {
                        self.shared().cleaner.borrow_mut().opaque = true;
                        continue;
                    };
                    for record in records {
                        if let Some(key) = record.key {
                            let offset = header.base_offset as u64 + record.offset_delta as u64;
                            match map.get_mut(key) {
                                Some(latest) => *latest = (*latest).max(offset),
                                None => {
                                    map_bytes += key.len() + 32;
                                    map.insert(key.to_vec(), offset);
                                }
                            }
                        }
                    }
                    // Decompressing is CPU work a 1 MiB chunk does not bound: yield per MiB
                    // decompressed too.
                    if header.compression() != 0 {
                        decompressed += plain.as_deref().map_or(0, <[u8]>::len);
                        if decompressed >= READ_CHUNK_BYTES {
                            decompressed = 0;
                            futures_lite::future::yield_now().await;
                        }
                    }
                }
                futures_lite::future::yield_now().await;
            }
            end = seg.next_base;
            if map_bytes >= MAP_BYTES_MAX {
                break;
            }
        }
        // 2. Rewrite every segment below `end`, merged in groups.
        let range: Vec<&SealedSegment> = cleanable.iter().filter(|s| s.next_base <= end).collect();
        let mut outcome = CompactionOutcome {
            segments_before: range.len(),
            cleaned_to: end,
            ..CompactionOutcome::default()
        };
        let keep_tombstones = self.shared().cleaner.borrow().opaque;
        let horizon = now.saturating_sub(config.delete_retention_ms as i64);
        let mut tombstone_due: Option<i64> = None;
        let producer_last = self.shared().cleaner.borrow().producer_last.clone();
        let rules = Rules {
            map: &map,
            producer_last: &producer_last,
            keep_tombstones,
            horizon,
            delete_retention_ms: config.delete_retention_ms as i64,
        };
        let mut rest: &[&SealedSegment] = &range;
        while !rest.is_empty() {
            let (taken, bytes_before, bytes_after, removed, due) =
                self.clean_group(rest, &rules).await?;
            // Everything below the group's end has now been cleaned with this pass's map.
            let group_end = rest[taken - 1].next_base;
            rest = &rest[taken..];
            if !rest.is_empty() {
                self.advance_first_dirty(group_end, None).await?;
            }
            outcome.segments_after += 1;
            outcome.bytes_before += bytes_before;
            outcome.bytes_after += bytes_after;
            outcome.records_removed += removed;
            tombstone_due = match (tombstone_due, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        self.advance_first_dirty(end, Some(tombstone_due)).await?;
        Ok(Some(outcome))
    }

    /// Moves the first dirty offset up to `to` (and sets when kept tombstones come due, at the
    /// end of a pass), in memory and in [`CHECKPOINT_FILE`].
    async fn advance_first_dirty(&self, to: u64, tombstone_due: Option<Option<i64>>) -> Result<()> {
        let snapshot = {
            let mut cleaner = self.shared().cleaner.borrow_mut();
            cleaner.first_dirty = cleaner.first_dirty.max(to);
            if let Some(due) = tombstone_due {
                cleaner.tombstone_due = due;
            }
            CleanerState {
                running: true,
                first_dirty: cleaner.first_dirty,
                tombstone_due: cleaner.tombstone_due,
                opaque: cleaner.opaque,
                producer_last: cleaner.producer_last.clone(),
            }
        };
        save_checkpoint(self.dir(), &snapshot).await
    }

    /// Rewrites the first segments of `range` into one and swaps it in: as many as fit in
    /// segment.bytes counting each next segment at its size before cleaning (so the output never
    /// exceeds it), within a segment's u32 relative offsets. Returns how many segments it took,
    /// bytes before and after, records removed, and when the oldest kept tombstone becomes
    /// removable.
    async fn clean_group(
        &self,
        range: &[&SealedSegment],
        rules: &Rules<'_>,
    ) -> Result<(usize, u64, u64, u64, Option<i64>)> {
        let config = self.config();
        let dir = self.dir().to_path_buf();
        let base = range[0].base_offset;
        let log_path = dir.join(cleaned_name(base, "log"));
        let mut writer = CleanedWriter::create(&log_path).await?;
        let mut index = SegmentIndex::default();
        let mut max_timestamp = -1i64;
        let mut last_batch = None;
        let mut removed = 0u64;
        let mut due: Option<i64> = None;
        let mut taken = 0;
        let mut compressed_in = 0usize;
        for seg in range {
            let fits = writer.len() + seg.size <= config.segment_bytes
                && seg.next_base - base <= u64::from(u32::MAX);
            if taken > 0 && !fits {
                break;
            }
            taken += 1;
            let mut reader = BatchReader::new(seg);
            while let Some((buf, batches)) = reader.next_chunk().await? {
                for (at, len, header) in batches {
                    let bytes = &buf[at..at + len];
                    let (kept, dropped, tombstone_due) = rules.filter(bytes, &header)?;
                    // Decompressing and re-compressing: yield per 128 KiB of compressed input
                    // too (about 1 MiB of records), not only per chunk read.
                    if header.compression() != 0 {
                        compressed_in += len;
                        if compressed_in >= READ_CHUNK_BYTES / 8 {
                            compressed_in = 0;
                            futures_lite::future::yield_now().await;
                        }
                    }
                    removed += dropped;
                    if let Some(t) = tombstone_due {
                        due = Some(due.map_or(t, |d: i64| d.min(t)));
                    }
                    let kept: &[u8] = match &kept {
                        Kept::All => bytes,
                        Kept::Nothing => continue,
                        Kept::Some(rebuilt) => rebuilt,
                    };
                    let position = writer.len();
                    let kept_max =
                        BatchHeader::parse(kept).map_or(header.max_timestamp, |h| h.max_timestamp);
                    max_timestamp = max_timestamp.max(kept_max);
                    index.on_append(
                        (header.base_offset as u64 - base) as u32,
                        position as u32,
                        kept.len() as u32,
                        max_timestamp,
                        config.index_interval_bytes,
                    );
                    last_batch = Some(header.base_offset as u64);
                    writer.put(kept);
                }
                writer.drain(false).await?;
                futures_lite::future::yield_now().await;
            }
        }
        let group = &range[..taken];
        let end = group[taken - 1].next_base;
        let bytes_before: u64 = group.iter().map(|s| s.size).sum();
        if let Some(last) = last_batch {
            index.seal(max_timestamp, (last - base) as u32);
        }
        let bytes_after = writer.len();
        writer.finish().await?;
        let index_name = cleaned_name(base, "index");
        durable::write_file_durably(&dir, &index_name, &index.encode_offsets()).await?;
        let times_name = cleaned_name(base, "timeindex");
        durable::write_file_durably(&dir, &times_name, &index.encode_times()).await?;
        // Only compaction removes sealed segments while it runs (retention waits for it), but
        // the log may be closing.
        if self.is_closing() || !group.iter().all(|s| self.has_segment(s.base_offset)) {
            remove_cleaned(&dir, base)?;
            return Err(LogError::Closed);
        }
        // The commit point: the marker's rename. From its write on, a failure leaves the files in
        // a state only recovery may judge (marker there or not, segments half renamed), while
        // memory still holds the old segments: the log goes offline and the next open finishes
        // the swap (marker present) or removes the `.cleaned` files (marker absent).
        let committed = async {
            durable::write_file_durably(
                &dir,
                &file_name(base, SWAP_EXTENSION),
                end.to_string().as_bytes(),
            )
            .await?;
            finish_swap(&dir, base, end).await?;
            Segment::open_sealed(&dir, base, end, config.index_interval_bytes).await
        };
        let segment = match committed.await {
            Ok(segment) => segment,
            Err(error) => {
                self.go_offline(&error);
                return Err(error);
            }
        };
        let bases: Vec<u64> = group.iter().map(|s| s.base_offset).collect();
        self.replace_segments(&bases, end, segment);
        Ok((taken, bytes_before, bytes_after, removed, due))
    }
}
