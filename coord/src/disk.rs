//! Durable Raft state in a data directory: a write-ahead log and the latest snapshot.
//!
//! Owns: the on-disk format, fsync ordering, torn-tail repair and restart recovery.
//! Must not: interpret entries or the state machine; it stores what `PersistBatch`es say.
//!
//! Layout of `DIR`:
//! - `FORMAT`: the format version of everything below (`weir-coord-format N`), written durably
//!   when the directory is initialised. A directory of another version — or one from before the
//!   file existed, which is version 1 — is refused at open with both versions named: the entries
//!   and snapshots hold the state machine's commands and tree in bincode, which has no optional
//!   fields, so reading another version would fail or, worse, misread.
//! - `snap`: `[u32 crc32c][protobuf Snapshot]`, replaced atomically (write `snap.tmp`, fsync,
//!   rename, fsync DIR).
//! - `wal-NNNNNNNNNNNNNNNNNNNN`: WAL segments, replayed in order. Records
//!   `[u32 len][u32 crc32c(kind+payload)][u8 kind][payload]`; kind 1 = protobuf Entry, kind 2 =
//!   protobuf HardState. An entry record at index i truncates entries >= i. Each segment starts
//!   with the hard state. A torn or corrupt tail (crash mid-append) ends a segment's replay: it
//!   was never fsynced, so nothing acknowledged is lost.
//!
//! Write path of `persist`, to each fsync:
//! 1. Append entry and hard-state records of all batches to the current segment; one
//!    `fdatasync` for the whole call (group commit), before the caller sends messages.
//! 2. A snapshot received from the leader: sync what is buffered, write and fsync `snap.tmp`,
//!    rename it to `snap`, fsync DIR, start a new segment (fsync, fsync DIR), delete every older
//!    segment (fsync DIR) — all before the call returns, since raft acknowledges it.
//! 3. A local snapshot (compaction): sync what is buffered and switch appends to a new segment
//!    at once; a helper thread writes `snap` as in 2 and only then deletes the old segments at or
//!    below the compaction point (a prefix of them) and pre-creates the next segment. Nothing is
//!    rewritten, and the Raft core does not wait for the snapshot file.
//!
//! What production would do differently: this uses blocking std::fs calls on the executor's
//! thread (the coordinator's core does nothing else while it syncs); a DMA file with io_uring
//! fsync would let the core keep serving reads during the sync.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use protobuf::Message as _;
use raft::prelude::{Entry, HardState, Snapshot};

use crate::store::{LogState, PersistBatch};

/// Version 2: ZooKeeper ACLs, container/TTL flags and session passwords in the tree and commands.
pub const FORMAT_VERSION: u32 = 2;
const FORMAT_FILE: &str = "FORMAT";

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
    #[error("coordinator data dir {dir} has format version {found}, this weir reads version {expected}; there is no migration: start the node on an empty directory (a replica re-joins from the others) or use the weir that wrote it")]
    Format {
        dir: PathBuf,
        found: u32,
        expected: u32,
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
    /// WAL segments, oldest first: (sequence, path, highest entry index written to it).
    segments: Vec<(u64, PathBuf, u64)>,
    /// The newest segment and the offset where the next record goes.
    wal: File,
    wal_off: u64,
    prealloc_bytes: usize,
    hard_state: HardState,
    buf: Vec<u8>,
    /// Background work of the last local snapshot: writing `snap` durably and pre-creating the
    /// next segment. Old segments are deleted only once it finished.
    bg: Option<std::thread::JoinHandle<Result<BgDone, DiskError>>>,
    /// An empty, already durable segment file to switch to at the next local snapshot.
    spare: Option<(u64, PathBuf, File)>,
}

struct BgDone {
    spare: Option<(u64, PathBuf, File)>,
}

impl Drop for Disk {
    fn drop(&mut self) {
        if let Some(h) = self.bg.take() {
            let _ = h.join();
        }
    }
}

fn segment_name(seq: u64) -> String {
    format!("wal-{seq:020}")
}

impl Disk {
    /// Opens `dir`, recovering its state, or initialises it with `fresh()` if it is empty.
    pub fn open(
        dir: &Path,
        fresh: impl FnOnce() -> LogState,
    ) -> Result<(Disk, LogState), DiskError> {
        std::fs::create_dir_all(dir).map_err(io("create_dir_all", dir))?;
        let snap_path = dir.join("snap");
        let mut segments: Vec<(u64, PathBuf, u64)> = Vec::new();
        for ent in std::fs::read_dir(dir).map_err(io("read_dir", dir))? {
            let ent = ent.map_err(io("read_dir", dir))?;
            let name = ent.file_name().to_string_lossy().into_owned();
            if let Some(seq) = name.strip_prefix("wal-").and_then(|n| n.parse().ok()) {
                segments.push((seq, ent.path(), 0));
            }
        }
        segments.sort();
        let is_new = segments.is_empty() && !snap_path.exists();
        let mut state = LogState::default();
        if is_new {
            write_format(dir)?;
            state = fresh();
            write_snapshot(dir, &state.snapshot)?;
        } else {
            check_format(dir)?;
            if snap_path.exists() {
                state = LogState::from_snapshot(read_snapshot(&snap_path)?);
            }
        }
        for seg in segments.iter_mut() {
            seg.2 = replay_wal(&seg.1, &mut state)?;
        }
        // Commit can never point past the log we have (the tail holding it may have been torn).
        let last = state.last();
        if state.hard_state.commit > last {
            state.hard_state.commit = last;
        }
        if state.hard_state.commit < state.snapshot_index() {
            state.hard_state.commit = state.snapshot_index();
        }
        let placeholder = dir.join("wal.placeholder");
        let mut disk = Disk {
            dir: dir.to_path_buf(),
            segments,
            wal: File::create(&placeholder).map_err(io("create", &placeholder))?,
            wal_off: 0,
            prealloc_bytes: SEGMENT_PREALLOC_BYTES,
            hard_state: state.hard_state.clone(),
            buf: Vec::new(),
            bg: None,
            spare: None,
        };
        let _ = std::fs::remove_file(&placeholder);
        disk.roll()?;
        Ok((disk, state))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of zeros pre-written into each new segment (see `SEGMENT_PREALLOC_BYTES`).
    pub fn set_segment_prealloc_bytes(&mut self, bytes: usize) {
        self.prealloc_bytes = bytes;
    }

    fn current_path(&self) -> PathBuf {
        self.segments
            .last()
            .map(|s| s.1.clone())
            .unwrap_or_else(|| self.dir.join("wal"))
    }

    /// Whether the previous local snapshot is still being written: a new one would wait for it
    /// on the Raft core, so the driver holds the next one back until this is false.
    pub fn snapshot_writer_busy(&self) -> bool {
        self.bg.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Makes `batches` durable (see the module docs for the order of writes and syncs).
    pub fn persist(&mut self, batches: &[PersistBatch]) -> Result<(), DiskError> {
        self.reap(false)?;
        for b in batches {
            if let Some(s) = &b.installed {
                // The log is replaced: after the snapshot is durable, every old segment goes.
                self.reap(true)?;
                self.sync()?;
                write_snapshot(&self.dir, s)?;
                let meta = s.get_metadata();
                if self.hard_state.commit < meta.index {
                    self.hard_state.commit = meta.index;
                }
                if self.hard_state.term < meta.term {
                    self.hard_state.term = meta.term;
                }
                self.roll()?;
                self.drop_segments(u64::MAX)?;
            }
            let mut max = 0;
            for e in &b.entries {
                max = max.max(e.index);
                push_record(
                    &mut self.buf,
                    KIND_ENTRY,
                    &e.write_to_bytes().unwrap_or_default(),
                );
            }
            if let Some(seg) = self.segments.last_mut() {
                seg.2 = seg.2.max(max);
            }
            if let Some(hs) = &b.hard_state {
                self.hard_state = hs.clone();
                push_record(
                    &mut self.buf,
                    KIND_HARD_STATE,
                    &hs.write_to_bytes().unwrap_or_default(),
                );
            }
            if let Some(s) = &b.compacted {
                // Off the Raft core: the snapshot file is written and synced by a helper thread
                // while appends go on in a fresh segment; old segments go once it is durable.
                self.reap(true)?;
                self.sync()?;
                self.switch_segment()?;
                let (dir, snap) = (self.dir.clone(), s.clone());
                let obsolete = self.take_obsolete(b.compact_to.min(s.get_metadata().index));
                let next_seq = self.segments.last().map(|s| s.0 + 1).unwrap_or(1);
                let prealloc = self.prealloc_bytes;
                let spawned = std::thread::Builder::new()
                    .name("weir-coord-snap".into())
                    .spawn(move || {
                        write_snapshot(&dir, &snap)?;
                        // Only once the snapshot is durable. No directory fsync: a segment
                        // that reappears after a crash holds only entries the snapshot covers,
                        // which replay skips.
                        for p in obsolete {
                            std::fs::remove_file(&p).map_err(io("remove", &p))?;
                        }
                        let spare = precreate_segment(&dir, next_seq, prealloc).ok();
                        Ok(BgDone { spare })
                    });
                match spawned {
                    Ok(h) => self.bg = Some(h),
                    Err(e) => {
                        return Err(DiskError::Io {
                            op: "spawn snapshot writer",
                            path: self.dir.clone(),
                            source: e,
                        })
                    }
                }
            }
        }
        self.sync()
    }

    /// Collects the result of the background snapshot writer (waiting for it if `wait`).
    fn reap(&mut self, wait: bool) -> Result<(), DiskError> {
        let done = match &self.bg {
            Some(h) => wait || h.is_finished(),
            None => false,
        };
        if !done {
            return Ok(());
        }
        let Some(h) = self.bg.take() else {
            return Ok(());
        };
        let r = h.join().map_err(|_| DiskError::Corrupt {
            path: self.dir.clone(),
            offset: 0,
            reason: "snapshot writer panicked".into(),
        })??;
        self.spare = r.spare;
        Ok(())
    }

    /// Removes from the segment list (and returns) the oldest segments holding no entry above
    /// `upto`, never the current one. Only a prefix goes: a later segment may hold the record
    /// that truncates an earlier one's tail.
    fn take_obsolete(&mut self, upto: u64) -> Vec<PathBuf> {
        let n = self.segments.len();
        let k = self
            .segments
            .iter()
            .take(n.saturating_sub(1))
            .take_while(|s| s.2 <= upto)
            .count();
        self.segments.drain(..k).map(|s| s.1).collect()
    }

    /// Moves appends to the spare segment (or a new one) starting with the hard state.
    fn switch_segment(&mut self) -> Result<(), DiskError> {
        let next_seq = self.segments.last().map(|s| s.0 + 1).unwrap_or(1);
        match self.spare.take() {
            Some((seq, path, f)) if seq == next_seq => {
                self.segments.push((seq, path, 0));
                self.wal = f;
                self.wal_off = 0;
                push_record(
                    &mut self.buf,
                    KIND_HARD_STATE,
                    &self.hard_state.write_to_bytes().unwrap_or_default(),
                );
                Ok(())
            }
            _ => self.roll(),
        }
    }

    /// Writes buffered records and fdatasyncs the current segment.
    fn sync(&mut self) -> Result<(), DiskError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let path = self.current_path();
        self.wal
            .write_all_at(&self.buf, self.wal_off)
            .map_err(io("write", &path))?;
        self.wal_off += self.buf.len() as u64;
        self.buf.clear();
        self.wal.sync_data().map_err(io("fdatasync", &path))
    }

    /// Starts a new segment beginning with the current hard state.
    fn roll(&mut self) -> Result<(), DiskError> {
        let seq = self.segments.last().map(|s| s.0 + 1).unwrap_or(1);
        let path = self.dir.join(segment_name(seq));
        let mut buf = Vec::new();
        push_record(
            &mut buf,
            KIND_HARD_STATE,
            &self.hard_state.write_to_bytes().unwrap_or_default(),
        );
        let mut f = create_empty(&path)?;
        f.write_all(&buf).map_err(io("write", &path))?;
        f.sync_all().map_err(io("fsync", &path))?;
        sync_dir(&self.dir)?;
        self.segments.push((seq, path, 0));
        self.wal = f;
        self.wal_off = buf.len() as u64;
        Ok(())
    }

    /// Deletes the segments `take_obsolete(upto)` selects, durably.
    fn drop_segments(&mut self, upto: u64) -> Result<(), DiskError> {
        let obsolete = self.take_obsolete(upto);
        for p in &obsolete {
            std::fs::remove_file(p).map_err(io("remove", p))?;
        }
        if !obsolete.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

/// Bytes of zeros pre-written into a pre-created segment. Appends into written blocks make
/// `fdatasync` skip the journal (no size/extent change), but writing the zeros costs disk
/// bandwidth: measured on this project's VM it made tail latency worse (every snapshot wrote
/// 16 MiB of zeros per node), so it is off by default.
const SEGMENT_PREALLOC_BYTES: usize = 0;

/// Creates a zero-filled segment file and makes it and its directory entry durable.
fn precreate_segment(
    dir: &Path,
    seq: u64,
    bytes: usize,
) -> Result<(u64, PathBuf, File), DiskError> {
    let path = dir.join(segment_name(seq));
    let mut f = create_empty(&path)?;
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..bytes / zeros.len() {
        f.write_all(&zeros).map_err(io("write", &path))?;
    }
    f.sync_all().map_err(io("fsync", &path))?;
    sync_dir(dir)?;
    Ok((seq, path, f))
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

fn write_format(dir: &Path) -> Result<(), DiskError> {
    let tmp = dir.join("FORMAT.tmp");
    let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(format!("weir-coord-format {FORMAT_VERSION}\n").as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(io("write", &tmp))?;
    let dst = dir.join(FORMAT_FILE);
    std::fs::rename(&tmp, &dst).map_err(io("rename", &tmp))?;
    sync_dir(dir)
}

/// Refuses a directory written in another format (no `FORMAT` file: version 1).
fn check_format(dir: &Path) -> Result<(), DiskError> {
    let path = dir.join(FORMAT_FILE);
    let found = match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .strip_prefix("weir-coord-format ")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| DiskError::Corrupt {
                path: path.clone(),
                offset: 0,
                reason: format!("not a format line: {:?}", text.trim()),
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
        Err(e) => return Err(io("read", &path)(e)),
    };
    if found != FORMAT_VERSION {
        return Err(DiskError::Format {
            dir: dir.to_path_buf(),
            found,
            expected: FORMAT_VERSION,
        });
    }
    Ok(())
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

/// Replays one WAL segment into `state`, stopping at a torn tail. Returns the highest entry
/// index the segment holds.
fn replay_wal(path: &Path, state: &mut LogState) -> Result<u64, DiskError> {
    let mut max = 0;
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
                max = max.max(e.index);
                if e.index <= state.snapshot_index() {
                    // Covered by the snapshot, but it still truncates what followed it in the
                    // log: every entry held so far is above the snapshot, hence above this one.
                    state.entries.clear();
                } else {
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
    Ok(max)
}

/// Creates `path` for writing, empty (truncating an old file of that name).
fn create_empty(path: &Path) -> Result<File, DiskError> {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .map_err(io("create", path))
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
    fn a_data_dir_of_another_format_is_refused_naming_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        drop(Disk::open(dir.path(), LogState::default).unwrap());
        let format = dir.path().join(FORMAT_FILE);
        assert_eq!(
            std::fs::read_to_string(&format).unwrap(),
            format!("weir-coord-format {FORMAT_VERSION}\n")
        );
        drop(Disk::open(dir.path(), || panic!("not fresh")).unwrap());

        let open_err = |dir: &Path| match Disk::open(dir, || panic!("not fresh")) {
            Ok(_) => panic!("opened a directory of another format"),
            Err(e) => e,
        };
        // A directory from before the FORMAT file: version 1.
        std::fs::remove_file(&format).unwrap();
        let e = open_err(dir.path());
        assert!(
            matches!(
                e,
                DiskError::Format {
                    found: 1,
                    expected: FORMAT_VERSION,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("format version 1"), "{e}");
        std::fs::write(&format, "weir-coord-format 99\n").unwrap();
        assert!(matches!(
            open_err(dir.path()),
            DiskError::Format { found: 99, .. }
        ));
        std::fs::write(&format, "something else").unwrap();
        assert!(matches!(open_err(dir.path()), DiskError::Corrupt { .. }));
        std::fs::write(&format, format!("weir-coord-format {FORMAT_VERSION}\n")).unwrap();
        assert!(Disk::open(dir.path(), || panic!("not fresh")).is_ok());
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
        // Simulate a torn append to the newest segment.
        let mut segs: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("wal-"))
            .collect();
        segs.sort();
        let mut f = OpenOptions::new()
            .append(true)
            .open(segs.last().unwrap())
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

    /// Model check: after any sequence of batches, reopening the directory yields the same log
    /// (entries after the snapshot, hard state, snapshot) as applying the batches in memory.
    #[test]
    fn recovery_matches_the_in_memory_model_over_random_histories() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..100 {
            let dir = tempfile::tempdir().unwrap();
            let (mut d, mut model) = Disk::open(dir.path(), || {
                LogState::bootstrap(&[1, 2, 3], b"t0".to_vec())
            })
            .unwrap();
            d.set_segment_prealloc_bytes(if round % 10 == 0 { 1024 * 1024 } else { 0 });
            let mut term = 1;
            for step in 0..60 {
                let mut b = PersistBatch::default();
                match next(10) {
                    0 => {
                        // A snapshot from the leader replaces everything.
                        let idx = model.last() + 1 + next(5);
                        term += 1;
                        let mut s = Snapshot {
                            data: format!("inst{round}-{step}").into_bytes().into(),
                            ..Default::default()
                        };
                        s.mut_metadata().index = idx;
                        s.mut_metadata().term = term;
                        b.installed = Some(s);
                    }
                    1 | 2 if model.last() > model.snapshot_index() => {
                        let idx = model.snapshot_index()
                            + 1
                            + next(model.last() - model.snapshot_index());
                        let mut s = Snapshot {
                            data: format!("snap{round}-{step}").into_bytes().into(),
                            ..Default::default()
                        };
                        s.mut_metadata().index = idx;
                        s.mut_metadata().term = raft::Storage::term(&model, idx).unwrap();
                        b.compacted = Some(s);
                        b.compact_to = idx.saturating_sub(next(4));
                    }
                    _ => {
                        // Append, sometimes overwriting a suffix with a new term.
                        let mut first = model.last() + 1;
                        // (Raft only ever overwrites entries above the snapshot.)
                        let si = model.snapshot_index();
                        if next(4) == 0 && model.last() > si {
                            first = si + 1 + next(model.last() - si);
                            term += 1;
                        }
                        b.entries = (first..first + 1 + next(6))
                            .map(|i| ent(i, term, format!("e{i}").as_bytes()))
                            .collect();
                        b.hard_state = Some(HardState {
                            term,
                            vote: 1 + next(3),
                            commit: model.snapshot_index(),
                            ..Default::default()
                        });
                    }
                }
                model.apply(&b);
                d.persist(&[b]).unwrap();
                if next(5) == 0 {
                    drop(d);
                    let (d2, got) = Disk::open(dir.path(), || panic!("not fresh")).unwrap();
                    d = d2;
                    d.set_segment_prealloc_bytes(if round % 10 == 0 { 1024 * 1024 } else { 0 });
                    let after = |s: &LogState| -> Vec<(u64, u64, Vec<u8>)> {
                        s.entries
                            .iter()
                            .filter(|e| e.index > s.snapshot_index())
                            .map(|e| (e.index, e.term, e.data.to_vec()))
                            .collect()
                    };
                    assert_eq!(after(&got), after(&model), "round {round} step {step}");
                    assert_eq!(got.snapshot, model.snapshot, "round {round} step {step}");
                    assert_eq!(
                        (got.hard_state.term, got.hard_state.vote),
                        (model.hard_state.term, model.hard_state.vote)
                    );
                }
            }
        }
    }
}
