//! Durable Raft state in a data directory: a write-ahead log and the latest snapshot.
//!
//! Owns: the on-disk format, fsync ordering, torn-tail repair and restart recovery.
//! Must not: interpret entries or the state machine; it stores what `PersistBatch`es say.
//!
//! Layout of `DIR`:
//! - `snap`: `[u32 crc32c][protobuf Snapshot]`, replaced atomically (write `snap.tmp`, fsync,
//!   rename, fsync DIR).
//! - `wal`: records `[u32 len][u32 crc32c(kind+payload)][u8 kind][payload]`; kind 1 = protobuf
//!   Entry, kind 2 = protobuf HardState. An entry record at index i truncates entries >= i.
//!   A torn or corrupt tail (crash mid-append) is cut off on open: it was never fsynced, so
//!   nothing acknowledged is lost.
//!
//! Write path of `persist`, to each fsync:
//! 1. If a batch carries a snapshot: write and fsync `snap.tmp`, rename to `snap`, fsync DIR,
//!    then rewrite the WAL with what remains after the snapshot (`wal.tmp`, fsync, rename,
//!    fsync DIR).
//! 2. Otherwise append entry and hard-state records to `wal`.
//! 3. One `fdatasync(wal)` for all batches (group commit), before the caller sends messages.
//!
//! What production would do differently: this uses blocking std::fs calls on the executor's
//! thread (the coordinator's core does nothing else while it syncs); a DMA file with io_uring
//! fsync would let the core keep serving reads during the sync.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::prelude::{Entry, HardState, Snapshot};

use crate::store::{LogState, PersistBatch};

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const RECORD_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Disk errors carry the operation and the path.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is corrupt at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> DiskError + 'a {
    move |source| DiskError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The data directory of one node.
pub struct Disk {
    dir: PathBuf,
    wal_path: PathBuf,
    wal: File,
    /// Mirror of what is durable (used to rewrite the WAL after a snapshot).
    mirror: LogState,
    buf: Vec<u8>,
}

impl Disk {
    /// Opens `dir`, recovering its state, or initialises it with `fresh()` if it is empty.
    pub fn open(
        dir: &Path,
        fresh: impl FnOnce() -> LogState,
    ) -> Result<(Disk, LogState), DiskError> {
        std::fs::create_dir_all(dir).map_err(io("create_dir_all", dir))?;
        let wal_path = dir.join("wal");
        let snap_path = dir.join("snap");
        let is_new = !wal_path.exists() && !snap_path.exists();
        let mut state = LogState::default();
        if is_new {
            state = fresh();
            write_snapshot(dir, &state.snapshot)?;
        } else if snap_path.exists() {
            state = LogState::from_snapshot(read_snapshot(&snap_path)?);
        }
        if !is_new && wal_path.exists() {
            replay_wal(&wal_path, &mut state)?;
        }
        let mut disk = Disk {
            dir: dir.to_path_buf(),
            wal: File::create(dir.join("wal.tmp")).map_err(io("create", dir))?,
            wal_path,
            mirror: state.clone(),
            buf: Vec::new(),
        };
        disk.rewrite_wal()?;
        Ok((disk, state))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes `batches` durable (see the module docs for the order of writes and syncs).
    pub fn persist(&mut self, batches: &[PersistBatch]) -> Result<(), DiskError> {
        let mut appended = false;
        for b in batches {
            self.mirror.apply(b);
            if let Some(s) = b.installed.as_ref().or(b.compacted.as_ref()) {
                if !self.buf.is_empty() {
                    self.flush_buf()?;
                }
                write_snapshot(&self.dir, s)?;
                self.rewrite_wal()?;
                appended = false;
                continue;
            }
            for e in &b.entries {
                push_record(
                    &mut self.buf,
                    KIND_ENTRY,
                    &e.write_to_bytes().unwrap_or_default(),
                );
            }
            if let Some(hs) = &b.hard_state {
                push_record(
                    &mut self.buf,
                    KIND_HARD_STATE,
                    &hs.write_to_bytes().unwrap_or_default(),
                );
            }
            appended |= !self.buf.is_empty();
        }
        if appended {
            self.flush_buf()?;
            self.wal
                .sync_data()
                .map_err(io("fdatasync", &self.wal_path))?;
        }
        Ok(())
    }

    fn flush_buf(&mut self) -> Result<(), DiskError> {
        self.wal
            .write_all(&self.buf)
            .map_err(io("write", &self.wal_path))?;
        self.buf.clear();
        Ok(())
    }

    /// Writes the mirror's hard state and entries to a new WAL and swaps it in.
    fn rewrite_wal(&mut self) -> Result<(), DiskError> {
        let tmp = self.dir.join("wal.tmp");
        let mut buf = Vec::new();
        push_record(
            &mut buf,
            KIND_HARD_STATE,
            &self.mirror.hard_state.write_to_bytes().unwrap_or_default(),
        );
        for e in &self.mirror.entries {
            push_record(
                &mut buf,
                KIND_ENTRY,
                &e.write_to_bytes().unwrap_or_default(),
            );
        }
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(&buf).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
        std::fs::rename(&tmp, &self.wal_path).map_err(io("rename", &tmp))?;
        sync_dir(&self.dir)?;
        self.wal = OpenOptions::new()
            .append(true)
            .open(&self.wal_path)
            .map_err(io("open", &self.wal_path))?;
        Ok(())
    }
}

fn push_record(buf: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = (payload.len() + 1) as u32;
    let mut crc = crc32c::crc32c(&[kind]);
    crc = crc32c::crc32c_append(crc, payload);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc.to_le_bytes());
    buf.push(kind);
    buf.extend_from_slice(payload);
}

fn sync_dir(dir: &Path) -> Result<(), DiskError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync dir", dir))
}

fn write_snapshot(dir: &Path, s: &Snapshot) -> Result<(), DiskError> {
    let tmp = dir.join("snap.tmp");
    let body = s.write_to_bytes().map_err(|e| DiskError::Corrupt {
        path: tmp.clone(),
        offset: 0,
        reason: format!("encoding snapshot: {e}"),
    })?;
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(&crc32c::crc32c(&body).to_le_bytes())
        .and_then(|_| f.write_all(&body))
        .map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("fsync", &tmp))?;
    let dst = dir.join("snap");
    std::fs::rename(&tmp, &dst).map_err(io("rename", &tmp))?;
    sync_dir(dir)
}

fn read_snapshot(path: &Path) -> Result<Snapshot, DiskError> {
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(io("read", path))?;
    let corrupt = |reason: &str| DiskError::Corrupt {
        path: path.to_path_buf(),
        offset: 0,
        reason: reason.to_string(),
    };
    if raw.len() < 4 {
        return Err(corrupt("shorter than its checksum"));
    }
    let crc = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    if crc32c::crc32c(&raw[4..]) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    Snapshot::parse_from_bytes(&raw[4..]).map_err(|e| corrupt(&e.to_string()))
}

/// Replays the WAL into `state`, cutting off a torn tail.
fn replay_wal(path: &Path, state: &mut LogState) -> Result<(), DiskError> {
    let mut raw = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut raw))
        .map_err(io("read", path))?;
    let mut off = 0usize;
    while off + 9 <= raw.len() {
        let len = u32::from_le_bytes([raw[off], raw[off + 1], raw[off + 2], raw[off + 3]]) as usize;
        let crc = u32::from_le_bytes([raw[off + 4], raw[off + 5], raw[off + 6], raw[off + 7]]);
        if len == 0 || len > RECORD_BYTES_MAX || off + 8 + len > raw.len() {
            break; // torn tail
        }
        let body = &raw[off + 8..off + 8 + len];
        if crc32c::crc32c(body) != crc {
            break; // torn tail
        }
        let corrupt = |reason: String| DiskError::Corrupt {
            path: path.to_path_buf(),
            offset: off as u64,
            reason,
        };
        match body[0] {
            KIND_ENTRY => {
                let e = Entry::parse_from_bytes(&body[1..]).map_err(|e| corrupt(e.to_string()))?;
                if e.index > state.snapshot_index() {
                    if e.index > state.last() + 1 {
                        return Err(corrupt(format!(
                            "entry {} after last index {}",
                            e.index,
                            state.last()
                        )));
                    }
                    state.apply(&PersistBatch {
                        entries: vec![e],
                        ..Default::default()
                    });
                }
            }
            KIND_HARD_STATE => {
                let hs =
                    HardState::parse_from_bytes(&body[1..]).map_err(|e| corrupt(e.to_string()))?;
                state.hard_state = hs;
            }
            k => return Err(corrupt(format!("unknown record kind {k}"))),
        }
        off += 8 + len;
    }
    // Commit can never point past the log we have (the tail holding it may have been torn).
    let last = state.last();
    if state.hard_state.commit > last {
        state.hard_state.commit = last;
    }
    if state.hard_state.commit < state.snapshot_index() {
        state.hard_state.commit = state.snapshot_index();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ent(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec().into(),
            ..Default::default()
        }
    }

    #[test]
    fn recovers_entries_hard_state_snapshot_and_cuts_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = || {
            let mut s = LogState::default();
            s.snapshot.data = b"tree".to_vec().into();
            s
        };
        {
            let (mut d, s) = Disk::open(dir.path(), fresh).unwrap();
            assert_eq!(s.snapshot.data.as_ref(), b"tree");
            let hs = HardState {
                term: 2,
                vote: 1,
                commit: 3,
                ..Default::default()
            };
            d.persist(&[PersistBatch {
                entries: (1..=5).map(|i| ent(i, 2, b"x")).collect(),
                hard_state: Some(hs),
                ..Default::default()
            }])
            .unwrap();
            // A conflicting suffix replaces 4..5.
            d.persist(&[PersistBatch {
                entries: vec![ent(4, 3, b"y")],
                ..Default::default()
            }])
            .unwrap();
        }
        // Simulate a torn append.
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("wal"))
            .unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (mut d, s) = Disk::open(dir.path(), || panic!("not fresh")).unwrap();
        assert_eq!(s.last(), 4);
        assert_eq!(s.entries[3].data.as_ref(), b"y");
        assert_eq!(
            (s.hard_state.term, s.hard_state.vote, s.hard_state.commit),
            (2, 1, 3)
        );
        // Snapshot + compaction survive a restart.
        let mut snap = Snapshot {
            data: b"tree@3".to_vec().into(),
            ..Default::default()
        };
        snap.mut_metadata().index = 3;
        snap.mut_metadata().term = 2;
        d.persist(&[PersistBatch {
            compacted: Some(snap),
            compact_to: 3,
            ..Default::default()
        }])
        .unwrap();
        drop(d);
        let (_, s) = Disk::open(dir.path(), || panic!("not fresh")).unwrap();
        assert_eq!(s.snapshot_index(), 3);
        assert_eq!(s.snapshot.data.as_ref(), b"tree@3");
        assert_eq!((s.first(), s.last()), (4, 4));
    }

    #[test]
    fn corrupt_snapshot_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        drop(Disk::open(dir.path(), || LogState::bootstrap(&[1], b"t".to_vec())).unwrap());
        std::fs::write(dir.path().join("snap"), b"garbage!").unwrap();
        assert!(matches!(
            Disk::open(dir.path(), || panic!("not fresh")),
            Err(DiskError::Corrupt { .. })
        ));
    }
}
