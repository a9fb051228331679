//! The read side of the partition log: whole batches from the tail cache, a sequential reader's
//! read-ahead stream, or a verified cold read; batch-header walks and ListOffsets by timestamp.
//!
//! Owns choosing where a read is served from and the result type. Must not write or change
//! watermarks; it reads `State` under a short borrow and never holds it across an await.

use crate::error::{LogError, Result};
use crate::readahead::ReadAhead;
use crate::segment::read_batches;
use crate::tail::LogBytes;
use wire::batch::{self, BatchHeader};

use super::PartitionLog;

/// The result of a read: whole batches as zero-copy slices, and their headers.
#[derive(Debug)]
pub struct LogRead {
    pub chunks: Vec<LogBytes>,
    /// Headers of the returned batches, in order (base offsets as stored).
    pub batches: Vec<BatchHeader>,
    pub log_start_offset: u64,
    pub log_end_offset: u64,
}

impl LogRead {
    /// Total bytes returned.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Offset after the last returned batch.
    pub fn next_offset(&self) -> Option<u64> {
        self.batches.last().map(|h| h.last_offset() as u64 + 1)
    }

    /// The returned bytes copied into one vector (tests and the control plane; fetch sends the
    /// chunks as they are).
    pub fn to_vec(&self) -> Vec<u8> {
        self.copy_range(0..self.len())
    }

    /// Bytes `range` of the returned data, copied out of the chunks they span.
    pub fn copy_range(&self, range: std::ops::Range<usize>) -> Vec<u8> {
        let mut out = Vec::with_capacity(range.len());
        let mut chunk_start = 0usize;
        for chunk in &self.chunks {
            let chunk_end = chunk_start + chunk.len();
            let from = range.start.max(chunk_start);
            let to = range.end.min(chunk_end);
            if from < to {
                out.extend_from_slice(&chunk[from - chunk_start..to - chunk_start]);
            }
            chunk_start = chunk_end;
        }
        out
    }
}

impl PartitionLog {
    /// Reads whole batches starting with the one that holds `offset`, up to `max_bytes` (the first
    /// batch is returned whole even if larger, as Kafka does). Recent data comes from memory;
    /// older data from disk, verified, without copying after the read.
    ///
    /// After compaction a segment may have no batch at or after `offset` (the rest of it was
    /// cleaned away); the read then goes on in the next segment, so the first batch returned may
    /// start beyond `offset`, as in Kafka.
    pub async fn read(&self, mut offset: u64, max_bytes: usize) -> Result<LogRead> {
        loop {
            let read = self.read_from_segment(offset, max_bytes).await?;
            if !read.is_empty() || offset >= read.log_end_offset {
                return Ok(read);
            }
            let next = {
                let state = self.shared.state.borrow();
                state
                    .segments
                    .range(offset + 1..)
                    .next()
                    .map(|(&base, _)| base)
            };
            match next {
                Some(base) if base > offset && base <= read.log_end_offset => offset = base,
                _ => return Ok(read),
            }
        }
    }

    /// [`Self::read`] within the segment holding `offset`: empty if that segment has nothing at
    /// or after it.
    async fn read_from_segment(&self, offset: u64, max_bytes: usize) -> Result<LogRead> {
        let (
            file,
            path,
            segment_base,
            position,
            position_offset,
            segment_len,
            log_start,
            log_end,
            stream,
        ) = {
            let mut state = self.shared.state.borrow_mut();
            let log_start = state.segments.keys().next().copied().unwrap_or(0);
            let log_end = state.log_end;
            if offset < log_start || offset > log_end {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start,
                    log_end,
                });
            }
            let result = |chunks, batches| LogRead {
                chunks,
                batches,
                log_start_offset: log_start,
                log_end_offset: log_end,
            };
            if offset == log_end {
                return Ok(result(Vec::new(), Vec::new()));
            }
            if let Some((chunks, batches)) = state.tail.read(offset, max_bytes) {
                return Ok(result(chunks, batches));
            }
            let stream = state
                .readahead
                .take()
                .filter(|s| s.offset == offset && s.has_data());
            let Some((_, segment)) = state.segments.range(..=offset).next_back() else {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start,
                    log_end,
                });
            };
            let entry = segment.index.floor((offset - segment.base_offset) as u32);
            (
                segment.file.clone(),
                segment.path.clone(),
                segment.base_offset,
                u64::from(entry.position),
                segment.base_offset + u64::from(entry.relative_offset),
                segment.size,
                log_start,
                log_end,
                stream,
            )
        };
        let result = |chunks, batches| LogRead {
            chunks,
            batches,
            log_start_offset: log_start,
            log_end_offset: log_end,
        };
        // A sequential reader continues where its read-ahead stream stands.
        if let Some(mut stream) = stream {
            let (chunks, batches) = stream.next(max_bytes).await?;
            if !batches.is_empty() {
                if stream.has_data() {
                    self.shared.state.borrow_mut().readahead = Some(stream);
                }
                return Ok(result(chunks, batches));
            }
        }
        let (bytes, batches, end) = read_batches(
            &file,
            &path,
            position,
            position_offset,
            segment_len,
            offset,
            max_bytes,
        )
        .await?;
        if let Some(next) = batches.last().map(|h| h.last_offset() as u64 + 1) {
            if end < segment_len {
                let stream = ReadAhead::start(segment_base, next, end, segment_len, file, path);
                self.shared.state.borrow_mut().readahead = Some(stream);
            }
        }
        Ok(result(
            bytes.into_iter().map(LogBytes::Disk).collect(),
            batches,
        ))
    }

    /// Calls `f` with the header of every batch from the one holding `from` (clamped to the log
    /// start) to the log end, in order, base offsets as stored. Reads go through [`Self::read`]
    /// (tail cache, or verified cold reads with read-ahead) `chunk_bytes` at a time; no record
    /// bytes are copied. Returns the offset after the last batch visited (the log end it saw).
    pub async fn for_each_batch_header(
        &self,
        from: u64,
        chunk_bytes: usize,
        mut f: impl FnMut(&BatchHeader),
    ) -> Result<u64> {
        let mut offset = from.max(self.log_start_offset());
        while offset < self.log_end_offset() {
            let read = self.read(offset, chunk_bytes).await?;
            for header in &read.batches {
                f(header);
            }
            match read.next_offset() {
                Some(next) if next > offset => offset = next,
                _ => break,
            }
        }
        Ok(offset)
    }

    /// ListOffsets by timestamp: the first offset whose record timestamp is ≥ `timestamp`, with
    /// that timestamp; `None` if no record is that new. Exact for uncompressed batches; for a
    /// compressed batch it answers with the batch's first offset and max timestamp.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(u64, i64)>> {
        let start = {
            let state = self.shared.state.borrow();
            let Some(segment) = state
                .segments
                .values()
                .find(|s| s.max_timestamp >= timestamp)
            else {
                return Ok(None);
            };
            let entry = segment.index.scan_start_for_timestamp(timestamp);
            segment.base_offset + u64::from(entry.relative_offset)
        };
        let mut offset = start;
        while offset < self.log_end_offset() {
            let read = self.read(offset, 1 << 20).await?;
            let mut at = 0usize;
            for header in &read.batches {
                let len = header.total_len().unwrap_or(0);
                if header.max_timestamp >= timestamp {
                    // Only the one batch is copied, to walk its records.
                    let bytes = read.copy_range(at..at + len);
                    let found = batch::find_record_at_or_after(&bytes, timestamp)
                        .unwrap_or((header.base_offset as u64, header.max_timestamp));
                    return Ok(Some(found));
                }
                at += len;
            }
            match read.next_offset() {
                Some(next) => offset = next,
                None => break,
            }
        }
        Ok(None)
    }
}
