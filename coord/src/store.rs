//! The Raft log as state: hard state, the latest snapshot and the entries after it.
//!
//! Owns: `LogState` (implements raft-rs `Storage`; the node's in-memory copy of what is durable)
//! and `PersistBatch` (what one `Node::ready` asks the driver to make durable, applied with the
//! same `LogState::apply` on disk replay, in the simulator's disk, and in memory).
//! Must not: do I/O (see `disk`), or interpret entry payloads.

use raft::prelude::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, StorageError};

/// Index and term of the bootstrap snapshot.
pub const BOOTSTRAP_INDEX: u64 = 1;

/// Everything the driver must make durable, in this order, before sending the batch's messages.
#[derive(Debug, Default, Clone)]
pub struct PersistBatch {
    /// A snapshot received from the leader: replaces the whole log.
    pub installed: Option<Snapshot>,
    /// Entries to append; the first one truncates any existing entry at or after its index.
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// A snapshot this node took of its own state...
    pub compacted: Option<Snapshot>,
    /// ...after which entries up to this index (at most the snapshot's) are dropped. Keeping
    /// some entries behind the snapshot lets slightly lagging followers catch up from the log
    /// instead of being sent a whole snapshot.
    pub compact_to: u64,
}

impl PersistBatch {
    pub fn is_empty(&self) -> bool {
        self.installed.is_none()
            && self.entries.is_empty()
            && self.hard_state.is_none()
            && self.compacted.is_none()
    }
}

/// Hard state + snapshot + entries after the snapshot.
#[derive(Debug, Clone, Default)]
pub struct LogState {
    pub hard_state: HardState,
    pub snapshot: Snapshot,
    /// Entries `offset_index + 1 ..= last`; may start before the snapshot's index.
    pub entries: Vec<Entry>,
    /// Index and term just before the first entry (the log's compaction point).
    pub offset_index: u64,
    pub offset_term: u64,
    /// Set when raft asked for a snapshot this state cannot serve (none yet, or one whose
    /// membership lacks the receiver, which raft-rs would refuse): the node then takes one.
    pub snapshot_requested: std::cell::Cell<bool>,
}

impl LogState {
    /// A brand-new member of a bootstrapping cluster: conf state `voters`, state machine `data`.
    ///
    /// The initial state is a snapshot at index 1, term 1 (as TiKV does with its initial log
    /// index): a node that joins later with an empty log is then necessarily sent a snapshot,
    /// which carries the membership and the tree, instead of a log that starts mid-history.
    pub fn bootstrap(voters: &[u64], data: Vec<u8>) -> Self {
        let mut s = LogState::default();
        let cs = ConfState::from((voters.iter().copied(), std::iter::empty()));
        let meta = s.snapshot.mut_metadata();
        meta.set_conf_state(cs);
        meta.index = BOOTSTRAP_INDEX;
        meta.term = BOOTSTRAP_INDEX;
        s.snapshot.data = data.into();
        s.hard_state.term = BOOTSTRAP_INDEX;
        s.hard_state.commit = BOOTSTRAP_INDEX;
        s.offset_index = BOOTSTRAP_INDEX;
        s.offset_term = BOOTSTRAP_INDEX;
        s
    }

    /// The state right after loading `snapshot` (no entries yet).
    pub fn from_snapshot(snapshot: Snapshot) -> Self {
        let meta = snapshot.get_metadata();
        LogState {
            offset_index: meta.index,
            offset_term: meta.term,
            snapshot,
            ..Default::default()
        }
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }

    pub fn first(&self) -> u64 {
        self.offset_index + 1
    }

    pub fn last(&self) -> u64 {
        self.entries
            .last()
            .map(|e| e.index)
            .unwrap_or(self.offset_index)
    }

    /// Applies a batch (the single definition of what a batch means, used everywhere).
    pub fn apply(&mut self, b: &PersistBatch) {
        if let Some(s) = &b.installed {
            self.snapshot = s.clone();
            self.entries.clear();
            let meta = s.get_metadata();
            self.offset_index = meta.index;
            self.offset_term = meta.term;
            if self.hard_state.commit < meta.index {
                self.hard_state.commit = meta.index;
            }
            if self.hard_state.term < meta.term {
                self.hard_state.term = meta.term;
            }
        }
        if let Some(first) = b.entries.first() {
            let first = first.index;
            let keep = first.saturating_sub(self.first()) as usize;
            self.entries.truncate(keep.min(self.entries.len()));
            self.entries.extend(b.entries.iter().cloned());
        }
        if let Some(hs) = &b.hard_state {
            self.hard_state = hs.clone();
        }
        if let Some(s) = &b.compacted {
            let idx = s.get_metadata().index;
            if idx > self.snapshot_index() {
                self.snapshot = s.clone();
            }
            let to = b.compact_to.min(idx).min(self.last());
            if to > self.offset_index {
                let drop = (to - self.offset_index) as usize;
                if let Some(e) = self.entries.get(drop - 1) {
                    self.offset_term = e.term;
                    self.offset_index = to;
                    self.entries.drain(..drop);
                }
            }
        }
    }
}

impl raft::Storage for LogState {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.snapshot.get_metadata().get_conf_state().clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let lo = (low - self.first()) as usize;
        let hi = ((high - self.first()) as usize).min(self.entries.len());
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut size = 0u64;
        let mut out = Vec::with_capacity(hi - lo);
        for e in &self.entries[lo..hi] {
            size += (e.data.len() + e.context.len() + 16) as u64;
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e.clone());
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.offset_index {
            return Ok(self.offset_term);
        }
        if idx < self.offset_index {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if idx > self.last() {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        self.entries
            .get((idx - self.first()) as usize)
            .map(|e| e.term)
            .ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last())
    }

    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let cs = self.snapshot.get_metadata().get_conf_state();
        let member = cs.voters.contains(&to) || cs.learners.contains(&to);
        if self.snapshot_index() < request_index || self.snapshot_index() == 0 || !member {
            self.snapshot_requested.set(true);
            return Err(raft::Error::Store(
                StorageError::SnapshotTemporarilyUnavailable,
            ));
        }
        Ok(self.snapshot.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(index: u64, term: u64) -> Entry {
        Entry {
            index,
            term,
            ..Default::default()
        }
    }

    #[test]
    fn apply_truncates_conflicts_and_compacts() {
        let mut s = LogState::default();
        s.apply(&PersistBatch {
            entries: (1..=5).map(|i| ent(i, 1)).collect(),
            ..Default::default()
        });
        assert_eq!(s.last(), 5);
        s.apply(&PersistBatch {
            entries: vec![ent(4, 2)],
            ..Default::default()
        });
        assert_eq!(s.last(), 4);
        assert_eq!(raft::Storage::term(&s, 4).unwrap(), 2);
        let mut snap = Snapshot::default();
        snap.mut_metadata().index = 3;
        snap.mut_metadata().term = 1;
        s.apply(&PersistBatch {
            compacted: Some(snap),
            compact_to: 3,
            ..Default::default()
        });
        assert_eq!((s.first(), s.last()), (4, 4));
        assert!(raft::Storage::term(&s, 2).is_err());
        assert_eq!(raft::Storage::term(&s, 3).unwrap(), 1);
    }
}
