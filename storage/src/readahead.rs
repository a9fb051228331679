//! Read-ahead for a sequential cold reader: the windows after the last cold read of a partition
//! are read from disk before they are asked for, several at once.
//!
//! O_DIRECT bypasses the page cache, so the kernel's read-ahead that Kafka relies on does not
//! exist here; a consumer catching up from disk would otherwise wait for one read at a time. Owns
//! the windows in flight and how batches are cut from them (a batch may span two windows: it is
//! then returned as two slices, never copied). Must not serve anything it has not verified
//! (offset continuity and CRC32C, as every cold read).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::rc::Rc;

use glommio::io::{DmaFile, ReadResult};
use glommio::Task;

use crate::error::{LogError, Result};
use crate::tail::LogBytes;
use wire::batch::{BatchHeader, HEADER_LEN};

/// Bytes per read-ahead window.
const WINDOW_BYTES: u64 = 1 << 20;
/// Windows kept in flight ahead of the reader.
const WINDOWS_AHEAD: usize = 4;
/// Bytes of the header the CRC does not cover (it starts at the attributes).
const CRC_SKIPPED: usize = 21;

struct Window {
    start: u64,
    pending: Option<Task<Result<ReadResult>>>,
    data: Option<ReadResult>,
}

/// A sequential stream over one segment, positioned at a batch boundary.
pub(crate) struct ReadAhead {
    pub segment_base: u64,
    /// Base offset of the batch at `position`.
    pub offset: u64,
    position: u64,
    /// Segment bytes that may be read (its published size when the stream was made).
    limit: u64,
    next_window: u64,
    windows: VecDeque<Window>,
    file: Rc<DmaFile>,
    path: PathBuf,
}

impl ReadAhead {
    /// Starts reading ahead from `position`, where the batch with base offset `offset` begins.
    pub fn start(
        segment_base: u64,
        offset: u64,
        position: u64,
        limit: u64,
        file: Rc<DmaFile>,
        path: PathBuf,
    ) -> Self {
        let mut stream = ReadAhead {
            segment_base,
            offset,
            position,
            limit,
            next_window: position,
            windows: VecDeque::new(),
            file,
            path,
        };
        stream.issue();
        stream
    }

    /// True while there is data left in the stream's segment range.
    pub fn has_data(&self) -> bool {
        self.position < self.limit
    }

    fn issue(&mut self) {
        let alignment = self.file.alignment();
        while self.windows.len() < WINDOWS_AHEAD && self.next_window < self.limit {
            let start = self.next_window;
            // Windows after the first start and end on aligned boundaries.
            let end = ((start + WINDOW_BYTES) / alignment * alignment).clamp(start + 1, self.limit);
            let file = self.file.clone();
            let path = self.path.clone();
            let len = (end - start) as usize;
            let pending = glommio::spawn_local(async move {
                file.read_at(start, len)
                    .await
                    .map_err(|e| LogError::io("reading ahead", path, e))
            });
            self.windows.push_back(Window {
                start,
                pending: Some(pending),
                data: None,
            });
            self.next_window = end;
        }
    }

    /// Slices covering `[position, position + len)`, waiting for windows as needed.
    async fn slices(&mut self, position: u64, len: usize) -> Result<Vec<ReadResult>> {
        let mut out = Vec::new();
        let end = position + len as u64;
        let mut at = position;
        let mut index = 0;
        while at < end {
            if index == self.windows.len() {
                self.issue();
                if index == self.windows.len() {
                    return Err(self.corrupt(at, "a batch runs past the end of the segment"));
                }
            }
            let window = &mut self.windows[index];
            if let Some(pending) = window.pending.take() {
                window.data = Some(pending.await?);
            }
            let data = window.data.as_ref().ok_or(LogError::Closed)?;
            let window_end = window.start + data.len() as u64;
            if window_end > at {
                let from = (at - window.start) as usize;
                let to = (end.min(window_end) - window.start) as usize;
                let slice = ReadResult::slice(data, from, to - from).ok_or_else(|| {
                    LogError::Offline("read-ahead window shorter than issued".into())
                })?;
                out.push(slice);
                at = end.min(window_end);
            }
            index += 1;
        }
        Ok(out)
    }

    fn corrupt(&self, position: u64, reason: &str) -> LogError {
        LogError::CorruptSegment {
            path: self.path.clone(),
            position,
            reason: reason.into(),
        }
    }

    /// Serves whole batches from the stream, up to `max_bytes` (the first batch always whole),
    /// verifying each one.
    pub async fn next(&mut self, max_bytes: usize) -> Result<(Vec<LogBytes>, Vec<BatchHeader>)> {
        let mut chunks = Vec::new();
        let mut headers = Vec::new();
        let mut taken = 0usize;
        while self.position < self.limit {
            let header_bytes: Vec<u8> = self
                .slices(
                    self.position,
                    HEADER_LEN.min((self.limit - self.position) as usize),
                )
                .await?
                .iter()
                .flat_map(|s| s.iter().copied())
                .collect();
            let header = BatchHeader::parse(&header_bytes)
                .ok_or_else(|| self.corrupt(self.position, "truncated batch header"))?;
            if header.magic != 2
                || header.base_offset < self.offset as i64
                || header.last_offset_delta < 0
            {
                return Err(self.corrupt(self.position, "batch header does not continue the log"));
            }
            let len = header
                .total_len()
                .ok_or_else(|| self.corrupt(self.position, "impossible batch length"))?;
            if !headers.is_empty() && taken + len > max_bytes {
                break;
            }
            let pieces = self.slices(self.position, len).await?;
            let mut skip = CRC_SKIPPED;
            let mut crc = 0u32;
            for piece in &pieces {
                let from = skip.min(piece.len());
                crc = crc32c::crc32c_append(crc, &piece[from..]);
                skip -= from;
            }
            if crc != header.crc {
                return Err(self.corrupt(self.position, "CRC32C mismatch"));
            }
            chunks.extend(pieces.into_iter().map(LogBytes::Disk));
            headers.push(header);
            taken += len;
            self.position += len as u64;
            self.offset = header.last_offset() as u64 + 1;
            while let Some(front) = self.windows.front() {
                let consumed = front
                    .data
                    .as_ref()
                    .is_some_and(|d| front.start + d.len() as u64 <= self.position);
                if !consumed {
                    break;
                }
                self.windows.pop_front();
            }
            self.issue();
        }
        Ok((chunks, headers))
    }
}
