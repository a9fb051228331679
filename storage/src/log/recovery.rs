//! Recovery: what a partition log finds on disk when it opens, and the clean-shutdown marker that
//! lets the next open trust the active segment's indexes.
//!
//! Owns the open sequence (absolute path, device probe, finishing an interrupted compaction swap,
//! removing stray temporary files, listing segments, consuming the marker, opening sealed segments
//! and recovering the active one) and writing the marker at a clean close. Must not write record
//! data or move watermarks of a running log: it builds the starting `State` and the flusher takes
//! it from there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Clock, LogConfig};
use crate::durable;
use crate::error::{LogError, Result};
use crate::segment::Segment;
use crate::tail::TailCache;

use super::{Cursor, PendingQueue, State};

/// Present only between a clean close and the next open.
const CLEAN_SHUTDOWN_MARKER: &str = ".clean_shutdown";

/// Recovers the log in `dir` (created if missing): returns its absolute path and the state a
/// running log starts from (nothing queued or in flight; both watermarks at the recovered end).
pub(super) async fn recover(
    dir: &Path,
    config: &LogConfig,
    clock: &Clock,
) -> Result<(PathBuf, State)> {
    // Absolute: glommio's `Directory::open` fails on a relative path with EBADF (seen with
    // `weir serve --data-dir ./data`).
    let dir =
        std::path::absolute(dir).map_err(|e| LogError::io("resolving log directory", dir, e))?;
    std::fs::create_dir_all(&dir).map_err(|e| LogError::io("creating log directory", &dir, e))?;
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
        std::fs::remove_file(&marker).map_err(|e| LogError::io("removing marker", &marker, e))?;
        durable::sync_dir(&dir).await?;
    }
    let interval = config.index_interval_bytes;
    let mut segments = BTreeMap::new();
    let carry;
    match bases.split_last() {
        None => {
            segments.insert(0, Segment::create(&dir, 0).await?);
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
            let (segment, tail_page) = Segment::open_active(&dir, active, clean, interval).await?;
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
        pending: PendingQueue::default(),
        log_end,
        durable: log_end,
        carry,
        prepared_end: active_size,
        buffer_pool: Vec::new(),
        write_stats: Default::default(),
        unsynced_records: 0,
        oldest_unsynced_ms: None,
        written_waiters: Vec::new(),
        durable_waiters: Vec::new(),
        tail: TailCache::new(config.tail_cache_bytes),
        readahead: None,
        failed: None,
        disk_full: None,
        closing: false,
        closed: false,
    };
    Ok((dir, state))
}

/// Marks a clean shutdown (temporary file, fdatasync, rename, directory fsync): the next open
/// trusts the active segment's index files and scans only past their last point.
pub(super) async fn write_clean_shutdown_marker(dir: &Path) -> Result<()> {
    durable::write_file_durably(dir, CLEAN_SHUTDOWN_MARKER, b"clean\n").await
}

/// When a file was created (statx birth time), in ms since the epoch.
fn created_ms(path: &Path) -> Option<i64> {
    let created = std::fs::metadata(path).ok()?.created().ok()?;
    let since_epoch = created.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since_epoch.as_millis() as i64)
}
