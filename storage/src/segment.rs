//! One segment of a partition log: its `.log` file (O_DIRECT through glommio), its indexes, and
//! the scans that recovery and index rebuilds need.
//!
//! Owns file naming, space reservation, sealing (sync, truncate, index files), recovery of a torn tail
//! and verified reads of whole batches. Must not decide when to roll, flush or delete: the log does.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{DmaFile, OpenOptions, ReadResult};

use crate::durable::{sync_dir, write_file_durably};
use crate::error::{LogError, Result};
use crate::failpoint;
use crate::index::{IndexError, SegmentIndex};
use wire::batch::{scan_batch, BatchHeader, Scanned, HEADER_LEN};

/// Bytes read per call while scanning a segment.
const SCAN_CHUNK_BYTES: usize = 1 << 20;

pub(crate) fn file_name(base_offset: u64, extension: &str) -> String {
    format!("{base_offset:020}.{extension}")
}

/// The unit of O_DIRECT writes: the device's logical block size, but at least the file system's
/// 4 KiB block. ext4 serialises direct writes that are not aligned to its block size (each waits
/// for every other direct write in flight on the inode), which would undo writing many buffers
/// at once.
pub(crate) fn write_alignment(file: &DmaFile) -> u64 {
    file.alignment().max(4096)
}

/// A batch found by a scan: header (base offset as stored), file position and length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ScannedBatch {
    pub header: BatchHeader,
    pub position: u64,
    pub len: usize,
}

/// How a scan of a segment ended.
#[derive(Debug)]
pub(crate) struct ScanEnd {
    /// Byte position just past the last valid batch.
    pub valid_len: u64,
    /// Offset after the last valid batch.
    pub next_offset: u64,
    /// Why the scan stopped before `file_len`, if it did.
    pub stopped: Option<String>,
}

pub(crate) struct Segment {
    pub base_offset: u64,
    /// Offset after the last written batch.
    pub next_offset: u64,
    /// Logical bytes written (the file may be longer: preallocation and page padding).
    pub size: u64,
    /// Largest batch max timestamp written, -1 while empty.
    pub max_timestamp: i64,
    /// Base offset of the last written batch.
    pub last_batch_offset: Option<u64>,
    pub index: SegmentIndex,
    pub file: Rc<DmaFile>,
    pub path: PathBuf,
    /// File length with blocks reserved for it (`reserve`); writes stay below it.
    pub reserved_end: u64,
    dir: PathBuf,
}

fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(glommio::GlommioError<()>) -> LogError + 'a {
    move |e| LogError::io(op, path, e)
}

/// Reserves disk blocks for a segment file up to `end` (the file's length grows to it; recovery
/// and sealing cut everything past the last batch), so writes below it cannot fail for lack of
/// space; the caller records the new `Segment::reserved_end`.
pub async fn reserve(file: &DmaFile, path: &Path, end: u64) -> Result<()> {
    failpoint::check(failpoint::SEGMENT_RESERVE, path)
        .map_err(|e| LogError::io("reserving space for", path, e))?;
    file.pre_allocate(end, false)
        .await
        .map_err(io_err("reserving space for", path))
}

impl Segment {
    /// Creates an empty segment file (space is reserved later, ahead of the writes: see
    /// [`reserve`]). A file this call created is removed again if the call fails, so a
    /// retry (or the next topic's directory on a full disk) is not blocked by a leftover.
    pub async fn create(dir: &Path, base_offset: u64) -> Result<Segment> {
        let path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(io_err("creating segment", &path))?;
        let synced = async {
            failpoint::check(failpoint::SEGMENT_CREATE_SYNC, &path)
                .map_err(|e| LogError::io("syncing new segment", &path, e))?;
            file.fdatasync()
                .await
                .map_err(io_err("syncing new segment", &path))?;
            sync_dir(dir).await
        }
        .await;
        if let Err(e) = synced {
            let _ = file.close().await;
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(Self::from_parts(dir, base_offset, file, path))
    }

    async fn open_file(dir: &Path, base_offset: u64) -> Result<(DmaFile, PathBuf, u64)> {
        let path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(&path)
            .await
            .map_err(io_err("opening segment", &path))?;
        let len = file
            .file_size()
            .await
            .map_err(io_err("sizing segment", &path))?;
        Ok((file, path, len))
    }

    fn from_parts(dir: &Path, base_offset: u64, file: DmaFile, path: PathBuf) -> Segment {
        Segment {
            base_offset,
            next_offset: base_offset,
            size: 0,
            max_timestamp: -1,
            last_batch_offset: None,
            index: SegmentIndex::default(),
            file: Rc::new(file),
            path,
            reserved_end: 0,
            dir: dir.to_path_buf(),
        }
    }

    /// Opens a sealed segment (every segment but the newest). Its file ends exactly at its last
    /// batch. The index files are used if they check out; otherwise the index is rebuilt by a
    /// verifying scan, and any damage that scan finds is reported, never truncated away.
    pub async fn open_sealed(
        dir: &Path,
        base_offset: u64,
        next_base: u64,
        interval: u64,
    ) -> Result<Segment> {
        let (file, path, len) = Self::open_file(dir, base_offset).await?;
        let mut segment = Self::from_parts(dir, base_offset, file, path);
        segment.size = len;
        segment.reserved_end = len;
        segment.next_offset = next_base;
        match segment.load_index(len, next_base - base_offset) {
            Ok(index) => {
                segment.max_timestamp = index.max_timestamp().unwrap_or(-1);
                segment.index = index;
            }
            Err(reason) => {
                tracing::warn!(segment = %segment.path.display(), %reason, "rebuilding index");
                let end = segment.rebuild(len, interval).await?;
                if let Some(stopped) = end.stopped {
                    return Err(LogError::CorruptSegment {
                        path: segment.path.clone(),
                        position: end.valid_len,
                        reason: stopped,
                    });
                }
                if let Some(last) = segment.last_batch_offset {
                    segment
                        .index
                        .seal(segment.max_timestamp, (last - base_offset) as u32);
                }
                segment.write_index_files().await?;
            }
        }
        Ok(segment)
    }

    /// Opens the newest segment. After a clean shutdown its file ends at its last batch and its
    /// index files are current; otherwise (or if they do not check out) the whole segment is
    /// scanned, and everything from the first torn or corrupt batch on is cut off.
    ///
    /// Returns the segment and the bytes of its partial last page, which the next write must
    /// carry because O_DIRECT writes whole pages.
    pub async fn open_active(
        dir: &Path,
        base_offset: u64,
        clean: bool,
        interval: u64,
    ) -> Result<(Segment, Vec<u8>)> {
        let (file, path, len) = Self::open_file(dir, base_offset).await?;
        let mut segment = Self::from_parts(dir, base_offset, file, path);
        let mut recovered = false;
        if clean {
            if let Ok(index) = segment.load_index(len, u64::from(u32::MAX)) {
                segment.max_timestamp = index.max_timestamp().unwrap_or(-1);
                let last = index.offset_entries().last().copied();
                segment.index = index;
                let (from_position, from_offset) = last.map_or((0, base_offset), |e| {
                    (
                        u64::from(e.position),
                        base_offset + u64::from(e.relative_offset),
                    )
                });
                let end = segment
                    .scan(from_position, from_offset, len, |_| {})
                    .await?;
                recovered = end.stopped.is_none() && end.valid_len == len;
                segment.size = end.valid_len;
                segment.next_offset = end.next_offset;
            }
        }
        if !recovered {
            let end = segment.rebuild(len, interval).await?;
            if let Some(reason) = &end.stopped {
                tracing::warn!(
                    segment = %segment.path.display(),
                    valid_len = end.valid_len,
                    file_len = len,
                    %reason,
                    "truncating the log tail after an unclean shutdown"
                );
            }
        }
        // Cut anything past the last valid batch; the flusher reserves again before writing.
        segment
            .file
            .truncate(segment.size)
            .await
            .map_err(io_err("truncating", &segment.path))?;
        segment.reserved_end = segment.size;
        failpoint::check(failpoint::SEGMENT_OPEN_SYNC, &segment.path)
            .map_err(|e| LogError::io("syncing", &segment.path, e))?;
        segment
            .file
            .fdatasync()
            .await
            .map_err(io_err("syncing", &segment.path))?;
        let page_start = segment.size - segment.size % write_alignment(&segment.file);
        let carry = if page_start < segment.size {
            let tail = segment
                .file
                .read_at(page_start, (segment.size - page_start) as usize)
                .await
                .map_err(io_err("reading tail page", &segment.path))?;
            tail.to_vec()
        } else {
            Vec::new()
        };
        Ok((segment, carry))
    }

    /// Scans the segment from the start and rebuilds the in-memory index and end state.
    async fn rebuild(&mut self, file_len: u64, interval: u64) -> Result<ScanEnd> {
        let base = self.base_offset;
        let mut index = SegmentIndex::default();
        let mut max_timestamp = -1i64;
        let mut last_batch = None;
        let end = self
            .scan(0, base, file_len, |b| {
                max_timestamp = max_timestamp.max(b.header.max_timestamp);
                last_batch = Some(b.header.base_offset as u64);
                index.on_append(
                    (b.header.base_offset as u64 - base) as u32,
                    b.position as u32,
                    b.len as u32,
                    max_timestamp,
                    interval,
                );
            })
            .await?;
        self.index = index;
        self.max_timestamp = max_timestamp;
        self.last_batch_offset = last_batch;
        self.size = end.valid_len;
        self.next_offset = end.next_offset;
        Ok(end)
    }

    /// Walks CRC-checked batches from `position` (holding `offset`) up to `file_len`, calling
    /// `on_batch` for each; stops at the first invalid or incomplete one.
    pub async fn scan(
        &self,
        mut position: u64,
        mut offset: u64,
        file_len: u64,
        mut on_batch: impl FnMut(ScannedBatch),
    ) -> Result<ScanEnd> {
        let mut want = SCAN_CHUNK_BYTES;
        while position < file_len {
            let len = want.min((file_len - position) as usize);
            let buf = self
                .file
                .read_at(position, len)
                .await
                .map_err(io_err("scanning", &self.path))?;
            let mut at = 0usize;
            let mut need_more = None;
            while at < buf.len() {
                match scan_batch(&buf[at..], Some(offset)) {
                    Scanned::Batch(header, batch_len) => {
                        on_batch(ScannedBatch {
                            header,
                            position: position + at as u64,
                            len: batch_len,
                        });
                        offset = header.last_offset() as u64 + 1;
                        at += batch_len;
                    }
                    Scanned::Incomplete => {
                        need_more = Some(
                            BatchHeader::parse(&buf[at..])
                                .and_then(|h| h.total_len())
                                .unwrap_or(HEADER_LEN),
                        );
                        break;
                    }
                    Scanned::Invalid(reason) => {
                        return Ok(ScanEnd {
                            valid_len: position + at as u64,
                            next_offset: offset,
                            stopped: Some(reason),
                        })
                    }
                }
            }
            position += at as u64;
            match need_more {
                Some(needed) if position + needed as u64 <= file_len => {
                    want = needed.max(SCAN_CHUNK_BYTES)
                }
                Some(_) => {
                    return Ok(ScanEnd {
                        valid_len: position,
                        next_offset: offset,
                        stopped: Some("the file ends inside a batch".into()),
                    })
                }
                None => want = SCAN_CHUNK_BYTES,
            }
        }
        Ok(ScanEnd {
            valid_len: position,
            next_offset: offset,
            stopped: None,
        })
    }

    fn load_index(&self, segment_len: u64, relative_end: u64) -> Result<SegmentIndex, IndexError> {
        let offsets = read_small_file(&self.dir.join(file_name(self.base_offset, "index")))?;
        let times = read_small_file(&self.dir.join(file_name(self.base_offset, "timeindex")))?;
        if segment_len > 0 && offsets.is_empty() {
            return Err(IndexError::Empty);
        }
        SegmentIndex::decode(&offsets, &times, segment_len, relative_end)
    }

    /// Records a batch just written at `position`.
    ///
    /// Batches are recorded back to back, offsets growing, and both the position and the offset
    /// relative to the segment's base fit the index's u32 fields (the log rolls before either
    /// would not): asserted, because a wrapped index entry would send reads to the wrong bytes.
    pub fn on_written(&mut self, header: &BatchHeader, position: u64, len: usize, interval: u64) {
        assert_eq!(
            position, self.size,
            "a batch is recorded where the segment ends"
        );
        let base = header.base_offset as u64;
        assert!(
            base >= self.next_offset,
            "batch at offset {base} recorded below the segment's next offset {}",
            self.next_offset
        );
        assert!(
            position + len as u64 <= u64::from(u32::MAX),
            "bytes {position}+{len} do not fit segment {}'s u32 index positions",
            self.base_offset
        );
        let Ok(relative) = u32::try_from(base - self.base_offset) else {
            panic!(
                "offset {base} does not fit segment {}'s u32 relative offsets",
                self.base_offset
            );
        };
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        self.index.on_append(
            relative,
            position as u32,
            len as u32,
            self.max_timestamp,
            interval,
        );
        self.last_batch_offset = Some(base);
        self.next_offset = header.last_offset() as u64 + 1;
        self.size = position + len as u64;
    }

    /// Makes the segment durable and final: fdatasync, cut the preallocated tail, write the index
    /// files. After this the file ends at its last batch.
    pub async fn seal(&mut self) -> Result<()> {
        if let Some(last) = self.last_batch_offset {
            self.index
                .seal(self.max_timestamp, (last - self.base_offset) as u32);
        }
        failpoint::check(failpoint::SEGMENT_SEAL_SYNC, &self.path)
            .map_err(|e| LogError::io("syncing", &self.path, e))?;
        self.file
            .fdatasync()
            .await
            .map_err(io_err("syncing", &self.path))?;
        self.file
            .truncate(self.size)
            .await
            .map_err(io_err("truncating", &self.path))?;
        self.reserved_end = self.size;
        failpoint::check(failpoint::SEGMENT_SEAL_TRUNCATE_SYNC, &self.path)
            .map_err(|e| LogError::io("syncing", &self.path, e))?;
        self.file
            .fdatasync()
            .await
            .map_err(io_err("syncing", &self.path))?;
        self.write_index_files().await
    }

    async fn write_index_files(&self) -> Result<()> {
        let offsets = self.index.encode_offsets();
        let times = self.index.encode_times();
        write_file_durably(&self.dir, &file_name(self.base_offset, "index"), &offsets).await?;
        write_file_durably(&self.dir, &file_name(self.base_offset, "timeindex"), &times).await
    }

    /// Unlinks the segment's files. Readers holding the file keep reading it until they drop it.
    pub fn remove_files(&self) -> Result<()> {
        for extension in ["log", "index", "timeindex"] {
            let path = self.dir.join(file_name(self.base_offset, extension));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("deleting segment", path, e)),
            }
        }
        Ok(())
    }
}

/// Reads whole batches for `offset` from disk, verifying each (offset continuity and CRC32C):
/// corruption in data already on disk is reported with its position, never skipped.
///
/// Starts at `position`, where the batch holding `position_offset` begins, and returns slices of
/// the DMA read buffer (no copy) covering the batch that holds `offset` and those after it, up to
/// `max_bytes` (the first batch always whole) and never past `segment_len`; and the file position
/// just after the returned batches.
pub(crate) async fn read_batches(
    file: &DmaFile,
    path: &Path,
    mut position: u64,
    mut position_offset: u64,
    segment_len: u64,
    offset: u64,
    max_bytes: usize,
) -> Result<(Option<ReadResult>, Vec<BatchHeader>, u64)> {
    let window = max_bytes.clamp(64 << 10, 8 << 20);
    let mut want = window;
    loop {
        if position >= segment_len {
            return Ok((None, Vec::new(), position));
        }
        let len = want.min((segment_len - position) as usize);
        let buf = file
            .read_at(position, len)
            .await
            .map_err(io_err("reading", path))?;
        let mut at = 0usize;
        let mut first = None;
        let mut headers = Vec::new();
        let mut taken = 0usize;
        while at < buf.len() {
            match scan_batch(&buf[at..], Some(position_offset)) {
                Scanned::Batch(header, batch_len) => {
                    position_offset = header.last_offset() as u64 + 1;
                    if (header.last_offset() as u64) < offset {
                        at += batch_len;
                        continue;
                    }
                    if first.is_some() && taken + batch_len > max_bytes {
                        break;
                    }
                    first.get_or_insert(at);
                    headers.push(header);
                    taken += batch_len;
                    at += batch_len;
                }
                Scanned::Incomplete => break,
                Scanned::Invalid(reason) => {
                    return Err(LogError::CorruptSegment {
                        path: path.to_path_buf(),
                        position: position + at as u64,
                        reason,
                    })
                }
            }
        }
        if let Some(start) = first {
            let end = position + (start + taken) as u64;
            return Ok((ReadResult::slice(&buf, start, taken), headers, end));
        }
        // Nothing whole yet: the wanted batch starts at `at`; read again from there, big enough.
        let needed = BatchHeader::parse(&buf[at..])
            .and_then(|h| h.total_len())
            .unwrap_or(HEADER_LEN);
        if at == 0 && needed <= buf.len() {
            return Err(LogError::CorruptSegment {
                path: path.to_path_buf(),
                position,
                reason: "batch cannot be parsed".into(),
            });
        }
        position += at as u64;
        want = needed.max(window);
    }
}

fn read_small_file(path: &Path) -> Result<Vec<u8>, IndexError> {
    std::fs::read(path).map_err(|source| IndexError::Unreadable {
        path: path.to_path_buf(),
        source,
    })
}
