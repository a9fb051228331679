//! The flusher: the one task per partition that writes, syncs and rolls — group commit, writes in
//! flight, fdatasyncs and seals, publishing groups in order and moving both watermarks.
//!
//! Owns the write plan (which queued batches form the next group, its page-aligned DMA buffers
//! and the carried partial last page), the writes and the sync in flight, publication (index, log
//! end offset, tail cache) and taking the log offline on any write or sync failure. Must not
//! assign offsets or validate record sets (`append` did), serve reads, or acknowledge anything it
//! has not published: a waiter wakes only once the watermark it waits on is past its offset.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{join_all, select};
use glommio::io::{DmaBuffer, DmaFile};
use std::path::PathBuf;

use crate::config::LogConfig;
use crate::error::{LogError, Result};
use crate::failpoint;
use crate::segment::{self, Segment};
use wire::batch;

use super::in_flight::{InFlight, Outcome, SyncInFlight, WrittenGroup};
use super::notify::{wake_all, wake_reached, WaitFailure};
use super::{recovery, Pending, Shared, State};

/// Bytes of header the broker stamps: base offset (8), batch length (4), leader epoch (4).
const STAMPED_PREFIX: usize = 16;

/// What the flusher does next.
enum Step {
    Roll,
    /// Reserve disk blocks up to this file length before the next write (see `segment::reserve`).
    Reserve(u64),
    Write(Vec<Pending>),
    Sync,
    Close,
    Idle(Option<Duration>),
}

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
        } else if in_flight.bytes() < config.in_flight_bytes_max() {
            // Bytes of groups in the kernel are bounded (`in_flight_writes_max` writes of
            // `write_bytes_max`: enough to keep the disk busy while the next group is copied),
            // and so is each group (`write_group_bytes`).
            // Writes go only into reserved blocks (rounded up to whole pages, as written).
            let (reserved_end, alignment) = match state.segments.values().next_back() {
                Some(active) => (active.reserved_end, segment::write_alignment(&active.file)),
                None => (0, 1),
            };
            let prepared_end = state.prepared_end;
            // Where a write of `bytes` more would end, in whole pages.
            let write_end =
                |bytes: usize| (prepared_end + bytes as u64).div_ceil(alignment) * alignment;
            let fits = |bytes: usize| write_end(bytes) <= reserved_end;
            if !fits(front.bytes.len()) {
                return Step::Reserve(config.reserve_target(write_end(front.bytes.len())));
            }
            let mut group = Vec::new();
            let mut bytes = 0usize;
            let budget = config.write_group_bytes();
            while let Some(next) = state.pending.front() {
                if next.starts_segment
                    || (!group.is_empty()
                        && (bytes + next.bytes.len() > budget || !fits(bytes + next.bytes.len())))
                {
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
    if state.durable < state.log_end && !in_flight.is_syncing() {
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
        let closing = state.closing && state.pending.is_empty() && !in_flight.has_groups();
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

/// The one task that writes and syncs this partition. Groups are copied and submitted while
/// earlier groups are still being written (never two writes to one page at once), and published
/// strictly in order; a sync covers every write published before it.
pub(super) async fn run(shared: Rc<Shared>) {
    let mut in_flight = InFlight::default();
    loop {
        // Taken offline from outside (a compaction swap failed after its commit point).
        if shared.state.borrow().failed.is_some() {
            return;
        }
        if let Err(error) = publish_completed(&shared, &mut in_flight) {
            tracing::error!(dir = %shared.dir.display(), %error, "partition log is going offline");
            fail(&shared, error.to_string());
            return;
        }
        let step = next_step(&shared, &in_flight);
        let outcome = match step {
            Step::Roll => {
                in_flight.assert_idle();
                roll(&shared).await
            }
            Step::Reserve(end) => reserve(&shared, end).await,
            Step::Write(group) => submit_group(&shared, group, &mut in_flight),
            Step::Sync => start_sync(&shared, &mut in_flight),
            Step::Close => {
                in_flight.assert_idle();
                let result = close_active(&shared).await;
                if let Err(e) = result {
                    fail(&shared, e.to_string());
                }
                let mut state = shared.state.borrow_mut();
                state.closed = true;
                wake_all(&mut state.written_waiters, WaitFailure::Closed);
                wake_all(&mut state.durable_waiters, WaitFailure::Closed);
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

/// The active segment's base offset, file and path: what the flusher's I/O goes to.
fn active_file(state: &State) -> Result<(u64, Rc<DmaFile>, PathBuf)> {
    let active = state
        .segments
        .values()
        .next_back()
        .ok_or(LogError::Closed)?;
    Ok((active.base_offset, active.file.clone(), active.path.clone()))
}

/// How long the flusher waits before asking again for space the disk refused.
const RESERVE_RETRY: Duration = Duration::from_millis(200);

/// Reserves space for the next writes. A full disk is not a failure of the log: appends are
/// refused meanwhile (`LogError::DiskFull`), what is queued waits, and the reservation is retried
/// until space returns — except at close, where the unwritten (never acknowledged) tail is
/// dropped so the close can finish.
async fn reserve(shared: &Shared, end: u64) -> Result<()> {
    // The segment stays in the map (readers use it meanwhile); only the flusher rolls it.
    let (base, file, path) = active_file(&shared.state.borrow())?;
    let reserved = segment::reserve(&file, &path, end).await;
    let full = {
        let mut state = shared.state.borrow_mut();
        match reserved {
            Ok(()) => {
                if let Some(active) = state.segments.get_mut(&base) {
                    active.reserved_end = active.reserved_end.max(end);
                }
                if let Some(reason) = state.disk_full.take() {
                    tracing::info!(dir = %shared.dir.display(), %reason, "disk space is back: the log takes appends again");
                }
                return Ok(());
            }
            Err(e) if e.is_storage_full() && state.closing => {
                return Err(LogError::DiskFull {
                    dir: shared.dir.clone(),
                    reason: format!("{e}; the unwritten tail was dropped at close"),
                });
            }
            Err(e) if e.is_storage_full() => {
                if state.disk_full.is_none() {
                    tracing::warn!(dir = %shared.dir.display(), error = %e, "disk full: refusing appends to this log until space is freed");
                }
                state.disk_full = Some(e.to_string());
                true
            }
            Err(e) => return Err(e),
        }
    };
    if full {
        glommio::timer::sleep(RESERVE_RETRY).await;
    }
    Ok(())
}

/// Takes the log offline: nothing queued will be written, every waiter fails, appends are
/// refused, and the flusher stops at its next step (nothing more is published, so nothing more
/// is acknowledged). Only a reopen, whose recovery decides what is on disk, brings it back.
pub(super) fn fail(shared: &Shared, reason: String) {
    let mut state = shared.state.borrow_mut();
    state.failed.get_or_insert(reason.clone());
    state.pending.clear();
    wake_all(
        &mut state.written_waiters,
        WaitFailure::Offline(reason.clone()),
    );
    wake_all(&mut state.durable_waiters, WaitFailure::Offline(reason));
    drop(state);
    shared.wake.notify();
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
    // The carry is the written part of the page `start` falls in: less than a page, from its start.
    assert!(
        (carry.len() as u64) < alignment && (start - carry.len() as u64).is_multiple_of(alignment),
        "carry of {} bytes before position {start} (pages of {alignment})",
        carry.len()
    );
    let region_start = start - carry.len() as u64;
    let data_bytes: u64 = group.iter().map(|p| p.bytes.len() as u64).sum();
    assert!(data_bytes > 0, "an empty group");
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
        let buffer = pooled.unwrap_or_else(|| file.alloc_dma_buffer(len as usize));
        // Buffers of one group never overlap: each covers exactly [at, at + len).
        assert_eq!(buffer.len() as u64, len, "a write buffer of the wrong size");
        buffers.push((at, buffer));
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
    let previous = in_flight.take_last_page_written();
    let gate = if carry.is_empty() { None } else { previous };
    let (last_done, last_page_written) = oneshot::channel();
    let writes: Vec<(u64, Rc<DmaBuffer>)> = buffers.clone();
    let regions = in_flight.regions();
    let outcome = spawn_reported(shared, async move {
        let count = writes.len();
        let mut gate = gate;
        let mut last_done = Some(last_done);
        let mut futures = Vec::with_capacity(count);
        for (i, (at, buffer)) in writes.into_iter().enumerate() {
            let file = file.clone();
            let path = path.clone();
            let regions = regions.clone();
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
                regions.borrow_mut().begin(at, at + expected as u64);
                let result = match failpoint::check(failpoint::LOG_WRITE, &path) {
                    Ok(()) => file.write_rc_at(buffer, at).await.map_err(Into::into),
                    Err(injected) => Err(injected),
                };
                regions.borrow_mut().end(at);
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
                Err(e) => Err(e),
            };
            if let Err(e) = checked {
                result = Err(LogError::io("writing segment", &path, e));
            }
        }
        result
    });
    in_flight.push_group(WrittenGroup {
        batches: group,
        data_bytes,
        segment_base,
        start,
        buffers,
        outcome,
        last_page_written: Some(last_page_written),
    });
    let stats = &mut state.write_stats;
    stats.groups += 1;
    stats.group_bytes_peak = stats.group_bytes_peak.max(data_bytes);
    stats.in_flight_bytes_peak = stats.in_flight_bytes_peak.max(in_flight.bytes());
    Ok(())
}

/// Runs `work` in a task of its own; its result lands in the returned cell, and the flusher is
/// woken to look at it.
fn spawn_reported(shared: &Shared, work: impl Future<Output = Result<()>> + 'static) -> Outcome {
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
    if let Some(target) = in_flight.take_completed_sync()? {
        mark_durable(&mut shared.state.borrow_mut(), target);
    }
    while let Some(group) = in_flight.pop_completed()? {
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
    // Groups are published in order, each where the one before it ended: file positions and
    // offsets both contiguous, in the segment they were written to.
    assert_eq!(
        (group.segment_base, group.start),
        (active.base_offset, active.size),
        "a group is published where the active segment ends"
    );
    let mut position = group.start;
    let mut next_offset = state.log_end;
    for pending in &group.batches {
        assert_eq!(
            pending.base_offset, next_offset,
            "published offsets are contiguous"
        );
        next_offset = pending.next_offset();
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
    assert_eq!(
        active.next_offset, next_offset,
        "the segment ends after the group"
    );
    state.log_end = next_offset;
    assert!(
        state.durable <= state.log_end,
        "durable offset above the log end"
    );
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
    let ((_, file, path), target) = {
        let state = shared.state.borrow();
        (active_file(&state)?, state.log_end)
    };
    let outcome = spawn_reported(shared, async move {
        failpoint::check(failpoint::LOG_SYNC, &path)
            .map_err(|e| LogError::io("syncing segment", &path, e))?;
        file.fdatasync()
            .await
            .map_err(|e| LogError::io("syncing segment", &path, e))
    });
    in_flight.start_sync(SyncInFlight { target, outcome });
    Ok(())
}

fn mark_durable(state: &mut State, target: u64) {
    // A sync covers what was published when it was issued; the log end never moves back.
    assert!(
        target <= state.log_end,
        "a sync made offset {target} durable, past the log end {}",
        state.log_end
    );
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
        let new_base = front.base_offset;
        // Nothing is in flight at a roll, so everything before the new segment is published.
        assert_eq!(
            new_base, state.log_end,
            "a new segment starts at the log end"
        );
        new_base
    };
    seal_active(shared).await?;
    let segment = Segment::create(&shared.dir, new_base).await?;
    let mut state = shared.state.borrow_mut();
    state.segments.insert(new_base, segment);
    state.carry.clear();
    state.prepared_end = 0;
    Ok(())
}

async fn close_active(shared: &Shared) -> Result<()> {
    seal_active(shared).await?;
    recovery::write_clean_shutdown_marker(&shared.dir).await
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
