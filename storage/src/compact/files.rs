//! Compaction's file I/O: reading a sealed segment's verified batches a chunk at a time, and
//! writing a `.cleaned` segment through aligned O_DIRECT writes.
//!
//! Owns chunking, verification of what is read (as cold reads do) and the cleaned file's
//! durability (truncate to its data, fdatasync). Must not decide what is kept or swap files in.

use std::path::{Path, PathBuf};

use glommio::io::{DmaFile, OpenOptions, ReadResult};
use wire::batch::{self, BatchHeader, Scanned, HEADER_LEN};

use crate::error::{LogError, Result};
use crate::failpoint;
use crate::log::SealedSegment;
use crate::segment;

use super::{READ_CHUNK_BYTES, WRITE_CHUNK_BYTES};

/// Reads the verified batches of a sealed segment a chunk at a time.
pub(super) struct BatchReader<'a> {
    seg: &'a SealedSegment,
    position: u64,
    expected: u64,
}

pub(super) type Chunk = (ReadResult, Vec<(usize, usize, BatchHeader)>);

impl<'a> BatchReader<'a> {
    pub(super) fn new(seg: &'a SealedSegment) -> Self {
        BatchReader {
            seg,
            position: 0,
            expected: seg.base_offset,
        }
    }

    /// The next chunk and the whole batches in it (position in the chunk, length, header);
    /// `None` at the end of the segment. Damage is an error, never skipped.
    pub(super) async fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut want = READ_CHUNK_BYTES;
        loop {
            if self.position >= self.seg.size {
                return Ok(None);
            }
            let len = want.min((self.seg.size - self.position) as usize);
            let buf = self
                .seg
                .file
                .read_at(self.position, len)
                .await
                .map_err(|e| LogError::io("reading for compaction", &self.seg.path, e))?;
            let mut at = 0usize;
            let mut batches = Vec::new();
            while at < buf.len() {
                match batch::scan_batch(&buf[at..], Some(self.expected)) {
                    Scanned::Batch(header, batch_len) => {
                        batches.push((at, batch_len, header));
                        self.expected = header.last_offset() as u64 + 1;
                        at += batch_len;
                    }
                    Scanned::Incomplete => break,
                    Scanned::Invalid(reason) => return Err(self.corrupt(at, reason)),
                }
            }
            if !batches.is_empty() {
                self.position += at as u64;
                return Ok(Some((buf, batches)));
            }
            let needed = BatchHeader::parse(&buf[at..])
                .and_then(|h| h.total_len())
                .unwrap_or(HEADER_LEN);
            if needed <= buf.len() || self.position + needed as u64 > self.seg.size {
                return Err(self.corrupt(0, "the segment ends inside a batch".into()));
            }
            want = needed;
        }
    }

    pub(super) fn corrupt(&self, at: usize, reason: String) -> LogError {
        LogError::CorruptSegment {
            path: self.seg.path.clone(),
            position: self.position + at as u64,
            reason,
        }
    }
}

/// Writes a `.cleaned` segment file sequentially through aligned O_DIRECT writes.
pub(super) struct CleanedWriter {
    file: DmaFile,
    path: PathBuf,
    staged: Vec<u8>,
    written: u64,
}

impl CleanedWriter {
    pub(super) async fn create(path: &Path) -> Result<CleanedWriter> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(|e| LogError::io("creating cleaned segment", path, e))?;
        Ok(CleanedWriter {
            file,
            path: path.to_path_buf(),
            staged: Vec::new(),
            written: 0,
        })
    }

    pub(super) fn len(&self) -> u64 {
        self.written + self.staged.len() as u64
    }

    pub(super) fn put(&mut self, bytes: &[u8]) {
        self.staged.extend_from_slice(bytes);
    }

    /// Writes the staged bytes: whole aligned blocks once a chunk is staged, or everything
    /// (zero-padded to the block) when `all`.
    pub(super) async fn drain(&mut self, all: bool) -> Result<()> {
        let align = segment::write_alignment(&self.file) as usize;
        if !all && self.staged.len() < WRITE_CHUNK_BYTES {
            return Ok(());
        }
        let n = if all {
            self.staged.len().div_ceil(align) * align
        } else {
            self.staged.len() / align * align
        };
        if n == 0 {
            return Ok(());
        }
        let mut buf = self.file.alloc_dma_buffer(n);
        let data = n.min(self.staged.len());
        buf.as_bytes_mut()[..data].copy_from_slice(&self.staged[..data]);
        buf.as_bytes_mut()[data..].fill(0);
        failpoint::check(failpoint::COMPACT_WRITE, &self.path)
            .map_err(|e| LogError::io("writing cleaned segment", &self.path, e))?;
        let wrote = self
            .file
            .write_at(buf, self.written)
            .await
            .map_err(|e| LogError::io("writing cleaned segment", &self.path, e))?;
        if wrote != n {
            return Err(LogError::io(
                "writing cleaned segment",
                &self.path,
                std::io::Error::new(
                    std::io::ErrorKind::WriteZero,
                    format!("short write: {wrote} of {n} bytes"),
                ),
            ));
        }
        self.written += data as u64;
        self.staged.drain(..data);
        Ok(())
    }

    /// Writes the rest, cuts the padding and makes the file durable.
    pub(super) async fn finish(mut self) -> Result<()> {
        let len = self.len();
        self.drain(true).await?;
        let io = |op| {
            let path = self.path.clone();
            move |e| LogError::io(op, path, e)
        };
        self.file
            .truncate(len)
            .await
            .map_err(io("truncating cleaned segment"))?;
        failpoint::check(failpoint::COMPACT_SYNC, &self.path)
            .map_err(|e| LogError::io("syncing cleaned segment", &self.path, e))?;
        self.file
            .fdatasync()
            .await
            .map_err(io("syncing cleaned segment"))?;
        self.file
            .close()
            .await
            .map_err(io("closing cleaned segment"))
    }
}
