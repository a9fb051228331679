//! What the flusher has handed to the kernel and not yet published: groups of writes, the file
//! regions being written right now, and the one fdatasync.
//!
//! Owns the flusher's central rules as assertions, not prose: two writes to one page are never in
//! flight together ([`WriteRegions::begin`]), groups leave in the order they entered, the byte
//! count never underflows, at most one sync is in flight. Must not plan writes or publish: the
//! flusher does both and records here what it started.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use futures::channel::oneshot;
use glommio::io::DmaBuffer;

use crate::error::Result;

use super::Pending;

/// The result of work running in a task of its own, set when it finishes.
pub(super) type Outcome = Rc<RefCell<Option<Result<()>>>>;

/// A group of batches copied into DMA buffers and handed to the kernel.
pub(super) struct WrittenGroup {
    pub(super) batches: Vec<Pending>,
    /// Bytes of record data in the group (without the carried page or padding).
    pub(super) data_bytes: u64,
    pub(super) segment_base: u64,
    /// File position of the group's first batch.
    pub(super) start: u64,
    pub(super) buffers: Vec<(u64, Rc<DmaBuffer>)>,
    /// Set by the group's write task when every write has completed.
    pub(super) outcome: Outcome,
    /// Completes when the write of the group's last page is done; the next group, which rewrites
    /// that page with more data behind it, waits for it before writing its own first buffer.
    pub(super) last_page_written: Option<oneshot::Receiver<()>>,
}

/// An fdatasync in the kernel, and the log end offset it will make durable.
pub(super) struct SyncInFlight {
    pub(super) target: u64,
    pub(super) outcome: Outcome,
}

/// Groups whose writes are in the kernel, oldest first (they are published in this order), and
/// the sync in flight.
#[derive(Default)]
pub(super) struct InFlight {
    groups: VecDeque<WrittenGroup>,
    /// Record bytes of `groups` together.
    bytes: u64,
    sync: Option<SyncInFlight>,
    /// The file regions the group tasks are writing at this moment.
    regions: Rc<RefCell<WriteRegions>>,
}

impl InFlight {
    /// Nothing written or synced is outstanding (a roll or a close may start).
    pub(super) fn is_idle(&self) -> bool {
        self.groups.is_empty() && self.sync.is_none()
    }

    pub(super) fn has_groups(&self) -> bool {
        !self.groups.is_empty()
    }

    pub(super) fn is_syncing(&self) -> bool {
        self.sync.is_some()
    }

    /// Record bytes handed to the kernel and not yet published.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The shared record of regions being written, for a group's write task.
    pub(super) fn regions(&self) -> Rc<RefCell<WriteRegions>> {
        self.regions.clone()
    }

    /// Asserts that nothing is in the kernel: a roll changes the file writes go to.
    pub(super) fn assert_idle(&self) {
        assert!(
            self.is_idle(),
            "{} groups and {} sync in flight at a roll or close",
            self.groups.len(),
            usize::from(self.sync.is_some())
        );
        assert_eq!(
            self.bytes, 0,
            "no group in flight, yet {} bytes",
            self.bytes
        );
        let regions = self.regions.borrow();
        assert!(
            regions.is_empty(),
            "no group in flight, yet writes at {:?}",
            regions.by_start
        );
    }

    /// The receiver that completes when the newest group's last page is written (taken once: only
    /// the group after it waits for it).
    pub(super) fn take_last_page_written(&mut self) -> Option<oneshot::Receiver<()>> {
        self.groups
            .back_mut()
            .and_then(|g| g.last_page_written.take())
    }

    pub(super) fn push_group(&mut self, group: WrittenGroup) {
        if let Some(last) = self.groups.back() {
            let last_end = last.start + last.data_bytes;
            assert_eq!(
                (group.segment_base, group.start),
                (last.segment_base, last_end),
                "a group starts where the one before it ended, in the same segment"
            );
        }
        self.bytes += group.data_bytes;
        self.groups.push_back(group);
    }

    /// The oldest group, if all its writes have completed; an error if one of them failed.
    pub(super) fn pop_completed(&mut self) -> Result<Option<WrittenGroup>> {
        let Some(front) = self.groups.front() else {
            return Ok(None);
        };
        let Some(outcome) = front.outcome.borrow_mut().take() else {
            return Ok(None);
        };
        outcome?;
        let Some(group) = self.groups.pop_front() else {
            return Ok(None);
        };
        let Some(rest) = self.bytes.checked_sub(group.data_bytes) else {
            panic!(
                "in-flight byte count underflows: {} counted, a group of {} published",
                self.bytes, group.data_bytes
            );
        };
        self.bytes = rest;
        Ok(Some(group))
    }

    pub(super) fn start_sync(&mut self, sync: SyncInFlight) {
        assert!(
            self.sync.is_none(),
            "at most one sync in flight (target {})",
            sync.target
        );
        self.sync = Some(sync);
    }

    /// The target of the sync in flight if it has completed; an error if it failed.
    pub(super) fn take_completed_sync(&mut self) -> Result<Option<u64>> {
        let Some(sync) = &self.sync else {
            return Ok(None);
        };
        let Some(outcome) = sync.outcome.borrow_mut().take() else {
            return Ok(None);
        };
        outcome?;
        let target = sync.target;
        self.sync = None;
        Ok(Some(target))
    }
}

/// The byte regions of the active segment that are being written at this moment, by start. A
/// write registers its region before it is handed to the kernel and removes it when it returns.
#[derive(Debug, Default)]
pub(super) struct WriteRegions {
    by_start: BTreeMap<u64, u64>,
}

impl WriteRegions {
    /// Registers the write of `[start, end)`. Panics if it overlaps a write in flight: two
    /// O_DIRECT writes to one page at once may land in either order, and the older one would
    /// then erase the newer one's data on disk.
    pub(super) fn begin(&mut self, start: u64, end: u64) {
        assert!(start < end, "empty write region [{start}, {end})");
        if let Some((&other_start, &other_end)) = self.by_start.range(..end).next_back() {
            assert!(
                other_end <= start,
                "two writes to one page in flight together: [{other_start}, {other_end}) and \
                 [{start}, {end})"
            );
        }
        self.by_start.insert(start, end);
    }

    /// The write that started at `start` has returned.
    pub(super) fn end(&mut self, start: u64) {
        let removed = self.by_start.remove(&start);
        assert!(removed.is_some(), "no write in flight at {start}");
    }

    pub(super) fn is_empty(&self) -> bool {
        self.by_start.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::WriteRegions;

    #[test]
    fn disjoint_regions_may_be_in_flight_together_and_a_region_is_free_again_once_ended() {
        let mut regions = WriteRegions::default();
        regions.begin(0, 4096);
        regions.begin(4096, 8192);
        regions.begin(16384, 20480);
        regions.end(4096);
        regions.begin(4096, 12288);
        regions.end(0);
        regions.end(4096);
        regions.end(16384);
        assert!(regions.is_empty());
    }

    #[test]
    #[should_panic(expected = "two writes to one page in flight together")]
    fn a_write_over_a_page_in_flight_is_refused() {
        let mut regions = WriteRegions::default();
        regions.begin(4096, 12288);
        regions.begin(8192, 16384);
    }

    #[test]
    #[should_panic(expected = "two writes to one page in flight together")]
    fn a_write_ending_inside_a_region_in_flight_is_refused() {
        let mut regions = WriteRegions::default();
        regions.begin(8192, 12288);
        regions.begin(0, 8193);
    }
}
