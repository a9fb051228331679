//! Per-partition log configuration (Kafka's topic config names) and the clock the log reads.
//!
//! Owns defaults and units. Must not parse files or flags: the CLI maps Kafka's names onto this.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How one partition log stores, rolls, flushes and retires data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`: roll to a new segment before one would grow past this.
    pub segment_bytes: u64,
    /// `segment.ms`: roll a non-empty segment this long after its first append.
    pub segment_ms: u64,
    /// `max.message.bytes`: the largest record batch accepted.
    pub max_message_bytes: usize,
    /// `retention.ms`: delete sealed segments whose newest record is older; `None` keeps forever.
    pub retention_ms: Option<u64>,
    /// `retention.bytes`: delete the oldest sealed segments while the log is larger; `None` = no limit.
    pub retention_bytes: Option<u64>,
    /// `flush.messages`: fdatasync after this many unsynced records even if nobody waits.
    pub flush_messages: Option<u64>,
    /// `flush.ms`: fdatasync unsynced data at most this long after it was written.
    pub flush_ms: Option<u64>,
    /// `index.interval.bytes`: bytes between sparse index points.
    pub index_interval_bytes: u64,
    /// `preallocate`: reserve the whole `segment.bytes` at the active segment's first write.
    /// Off (Kafka's default, and weir's): reserve ahead of the writes in growing steps
    /// (`reserve_target`), so disk use grows with data, not with partitions. Either way every
    /// write lands in blocks reserved before it was submitted: a full disk shows as a refused
    /// reservation (the log stops taking appends until space returns), never as a failed write.
    pub preallocate: bool,
    /// Largest single DMA write; a bigger backlog is written as several writes in flight at once.
    pub write_bytes_max: usize,
    /// Writes of `write_bytes_max` the flusher keeps in the kernel at once: it submits the next
    /// group only while fewer than `in_flight_writes_max × write_bytes_max` bytes are in flight.
    /// Not a topic config; `weir serve` takes it from an io-properties file
    /// (`suggested.writes_in_flight`). Within [`IN_FLIGHT_WRITES_RANGE`]; default 16.
    pub in_flight_writes_max: usize,
    /// Largest write group (queued batches copied and submitted together, then published
    /// together); `None`: 4 × `write_bytes_max`. A single batch larger than this is still one
    /// group. Not a topic config; `weir serve` takes it from an io-properties file
    /// (`suggested.write_group_bytes`). Within [`WRITE_GROUP_BYTES_RANGE`].
    pub write_group_bytes_max: Option<usize>,
    /// `cleanup.policy` contains `delete`: retention.ms / retention.bytes delete old segments.
    pub cleanup_delete: bool,
    /// `cleanup.policy` contains `compact`: sealed segments are compacted (`crate::compact`).
    pub cleanup_compact: bool,
    /// `delete.retention.ms`: how long compaction keeps a tombstone (null value) after its
    /// timestamp, so consumers reading from behind see the deletion.
    pub delete_retention_ms: u64,
    /// `min.cleanable.dirty.ratio`, in millionths (0.5 = 500_000): compaction runs when at least
    /// this share of the cleanable log has not been compacted yet.
    pub min_cleanable_dirty_ratio_ppm: u32,
    /// `min.compaction.lag.ms`: a segment is compacted only once its newest record is this old.
    pub min_compaction_lag_ms: u64,
    /// `max.compaction.lag.ms`: a dirty segment whose newest record is this old is compacted
    /// whatever the dirty ratio, and (as Kafka's maxSegmentMs) a compacted log's active segment
    /// rolls after at most this long. Kafka's default is Long.MAX_VALUE (never).
    pub max_compaction_lag_ms: u64,
    /// Recently written bytes kept in memory (per partition) so tail reads need no disk I/O; all
    /// partitions of a shard together are also bounded (`tail::set_shard_tail_bytes`).
    pub tail_cache_bytes: usize,
    /// Bytes of appended record sets not yet handed to the disk (the log's pending queue) beyond
    /// which appends are refused with `LogError::PendingFull`, a retriable error: the disk is
    /// behind, and queueing more only grows memory. Not a topic config (stays as the log was
    /// opened with). Default 256 MiB: a quarter of a second of a 1 GB/s disk, far above what the
    /// flusher keeps in flight (`in_flight_writes_max` × `write_bytes_max`, 16 MiB by default),
    /// so only a producer outrunning the disk meets it.
    pub pending_bytes_max: u64,
}

/// Writes in flight a log accepts (`LogConfig::in_flight_writes_max`): at least one, and no more
/// than an NVMe queue is worth per partition.
pub const IN_FLIGHT_WRITES_RANGE: std::ops::RangeInclusive<usize> = 1..=256;
/// Write-group sizes a log accepts (`LogConfig::write_group_bytes_max`): a page to 64 MiB.
pub const WRITE_GROUP_BYTES_RANGE: std::ops::RangeInclusive<usize> = 4096..=(64 << 20);
/// Today's write group, in units of `write_bytes_max`, when none is configured.
const GROUP_WRITES_DEFAULT: usize = 4;

/// Largest reservation ahead of the active segment's writes (`preallocate` off).
pub const RESERVE_STEP_BYTES: u64 = 16 << 20;
/// Smallest reservation, and the unit reservations are rounded to.
pub const RESERVE_MIN_BYTES: u64 = 64 << 10;

impl LogConfig {
    /// Bytes the flusher may have in the kernel before it waits: `in_flight_writes_max` writes of
    /// `write_bytes_max` (an out-of-range count is clamped into [`IN_FLIGHT_WRITES_RANGE`]).
    pub fn in_flight_bytes_max(&self) -> u64 {
        let writes = self.in_flight_writes_max.clamp(
            *IN_FLIGHT_WRITES_RANGE.start(),
            *IN_FLIGHT_WRITES_RANGE.end(),
        );
        (self.write_bytes_max as u64).saturating_mul(writes as u64)
    }

    /// The largest write group in bytes: `write_group_bytes_max` (clamped into
    /// [`WRITE_GROUP_BYTES_RANGE`]), or 4 × `write_bytes_max`.
    pub fn write_group_bytes(&self) -> usize {
        match self.write_group_bytes_max {
            Some(bytes) => bytes.clamp(
                *WRITE_GROUP_BYTES_RANGE.start(),
                *WRITE_GROUP_BYTES_RANGE.end(),
            ),
            None => self.write_bytes_max.saturating_mul(GROUP_WRITES_DEFAULT),
        }
    }

    /// The file length to reserve so that a write ending at `write_end` lands in reserved blocks:
    /// the whole segment with `preallocate`; else as much again as the segment holds, between
    /// `RESERVE_MIN_BYTES` and `RESERVE_STEP_BYTES` — so a partition with little data reserves
    /// little (1,000 partitions with one record each: ~64 MiB), a busy one few times per segment.
    pub fn reserve_target(&self, write_end: u64) -> u64 {
        let segment_end = self.segment_bytes.max(write_end);
        if self.preallocate {
            return segment_end;
        }
        let ahead = write_end.clamp(RESERVE_MIN_BYTES, RESERVE_STEP_BYTES);
        let target = (write_end + ahead).div_ceil(RESERVE_MIN_BYTES) * RESERVE_MIN_BYTES;
        target.min(segment_end)
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            max_message_bytes: 1_048_588,
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            flush_messages: None,
            flush_ms: None,
            index_interval_bytes: 4096,
            preallocate: false,
            write_bytes_max: 1 << 20,
            in_flight_writes_max: 16,
            write_group_bytes_max: None,
            tail_cache_bytes: 128 << 20,
            pending_bytes_max: 256 << 20,
            cleanup_delete: true,
            cleanup_compact: false,
            delete_retention_ms: 86_400_000,
            min_cleanable_dirty_ratio_ppm: 500_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX as u64,
        }
    }
}

/// Wall-clock milliseconds for segment.ms, retention.ms and flush.ms; tests drive a manual one.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Manual(ManualClock),
}

impl Clock {
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            Clock::Manual(now) => now.get(),
        }
    }

    /// The monotonic reading deadlines are measured on (group sessions and rebalances). A manual
    /// clock's moves by hand move it too, so a test can pass a session timeout without waiting.
    pub fn now_instant(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(now) => now.instant(),
        }
    }
}

/// A clock a test moves by hand: wall-clock milliseconds shared by every clone, on any thread
/// (a broker's shards each read it on their own thread).
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<ManualInner>);

#[derive(Debug)]
struct ManualInner {
    now_ms: AtomicI64,
    /// The wall reading at creation and the real instant it stands for: `instant()` is that
    /// instant plus how far the clock was moved since.
    start_ms: i64,
    start: Instant,
}

impl Default for ManualInner {
    fn default() -> Self {
        ManualInner {
            now_ms: AtomicI64::new(0),
            start_ms: 0,
            start: Instant::now(),
        }
    }
}

impl ManualClock {
    pub fn new(now_ms: i64) -> Self {
        ManualClock(Arc::new(ManualInner {
            now_ms: AtomicI64::new(now_ms),
            start_ms: now_ms,
            start: Instant::now(),
        }))
    }

    /// The monotonic instant this clock stands at (never before its creation: a clock set back
    /// below its start reads as its start).
    pub fn instant(&self) -> Instant {
        let moved_ms = self.get().saturating_sub(self.0.start_ms).max(0) as u64;
        self.0.start + std::time::Duration::from_millis(moved_ms)
    }

    pub fn get(&self) -> i64 {
        self.0.now_ms.load(Ordering::SeqCst)
    }

    pub fn set(&self, now_ms: i64) {
        self.0.now_ms.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the clock forward by `ms` (a clock never goes back).
    pub fn advance(&self, ms: i64) {
        assert!(ms >= 0, "a manual clock moves forward only ({ms} ms)");
        self.0.now_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_its_monotonic_reading_with_its_wall_reading() {
        let clock = ManualClock::new(1_000_000);
        let start = clock.instant();
        clock.advance(31_000);
        assert_eq!(clock.instant() - start, std::time::Duration::from_secs(31));
        // Set back below its start: never before its creation instant.
        clock.set(0);
        assert_eq!(clock.instant(), start);
        assert_eq!(Clock::Manual(clock.clone()).now_instant(), start);
    }

    #[test]
    fn reservations_grow_with_the_segment_within_their_bounds() {
        let config = LogConfig {
            segment_bytes: 1 << 30,
            preallocate: false,
            ..LogConfig::default()
        };
        assert_eq!(config.reserve_target(4096), 128 << 10);
        assert_eq!(config.reserve_target(1 << 20), 2 << 20);
        assert_eq!(config.reserve_target(100 << 20), 116 << 20);
        for end in [1u64, 4096, 70_000, 1 << 20, 300 << 20, (1 << 30) - 1] {
            let target = config.reserve_target(end);
            assert!(target >= end && target <= 1 << 30, "{end} -> {target}");
            assert!(target - end <= RESERVE_STEP_BYTES + RESERVE_MIN_BYTES);
        }
        // Never past the segment (plus the one batch that may overshoot it).
        let small = LogConfig {
            segment_bytes: 8192,
            ..config.clone()
        };
        assert_eq!(small.reserve_target(4096), 8192);
        assert_eq!(small.reserve_target(12_288), 12_288);
        let whole = LogConfig {
            preallocate: true,
            ..config
        };
        assert_eq!(whole.reserve_target(4096), 1 << 30);
    }
}
