//! The sparse offset and time indexes of one segment, in memory and in Kafka's file formats.
//!
//! Owns lookups (offset → file position, timestamp → offset) and the encoding of `.index` (8-byte
//! entries: relative offset u32, position u32) and `.timeindex` (12-byte entries: timestamp i64,
//! relative offset u32). Must not do I/O: the segment reads and writes the bytes.

/// One index point: a batch that starts `position` bytes into the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Base offset of the batch minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of the batch in the segment file.
    pub position: u32,
}

/// One time-index point: every batch up to and including the one at `relative_offset` has a
/// max timestamp of at most `timestamp` (Kafka's "max timestamp so far").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

/// Why a segment's index files were not used; the segment's index is then rebuilt by a verifying
/// scan (a warning names the reason).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("index file size is not a whole number of entries")]
    PartialEntry,
    #[error("offset index entry {0:?} is out of order or range")]
    OffsetEntry(IndexEntry),
    #[error("offset index does not start at the segment start")]
    NotAtSegmentStart,
    #[error("time index entry {0:?} is out of order or range")]
    TimeEntry(TimeEntry),
    #[error("empty offset index for a non-empty segment")]
    Empty,
    /// The file could not be read (missing after a crash before it was written, say).
    #[error("{path}: {source}")]
    Unreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Both sparse indexes of a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentIndex {
    offsets: Vec<IndexEntry>,
    times: Vec<TimeEntry>,
    bytes_since_entry: u64,
}

const OFFSET_ENTRY_BYTES: usize = 8;
const TIME_ENTRY_BYTES: usize = 12;

impl SegmentIndex {
    /// Records a batch appended at `position`; adds index points every `interval_bytes`.
    ///
    /// `max_timestamp_so_far` is the segment's max timestamp including this batch.
    pub fn on_append(
        &mut self,
        relative_offset: u32,
        position: u32,
        len: u32,
        max_timestamp_so_far: i64,
        interval_bytes: u64,
    ) {
        if self.offsets.is_empty() || self.bytes_since_entry >= interval_bytes {
            self.offsets.push(IndexEntry {
                relative_offset,
                position,
            });
            self.push_time(max_timestamp_so_far, relative_offset);
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += u64::from(len);
    }

    /// Adds the final time entry Kafka writes when a segment is sealed, so the file records the
    /// segment's max timestamp.
    pub fn seal(&mut self, max_timestamp: i64, last_batch_relative_offset: u32) {
        self.push_time(max_timestamp, last_batch_relative_offset);
    }

    fn push_time(&mut self, timestamp: i64, relative_offset: u32) {
        if self
            .times
            .last()
            .is_none_or(|last| timestamp > last.timestamp)
        {
            self.times.push(TimeEntry {
                timestamp,
                relative_offset,
            });
        }
    }

    /// The last index point at or before `relative_offset` (the segment start if none).
    pub fn floor(&self, relative_offset: u32) -> IndexEntry {
        let at = self
            .offsets
            .partition_point(|e| e.relative_offset <= relative_offset);
        at.checked_sub(1).map_or(
            IndexEntry {
                relative_offset: 0,
                position: 0,
            },
            |i| self.offsets[i],
        )
    }

    /// Where to start scanning for the first batch with a max timestamp ≥ `target`: the batch
    /// of the last time entry below the target, whose successors are the first candidates.
    pub fn scan_start_for_timestamp(&self, target: i64) -> IndexEntry {
        let at = self.times.partition_point(|e| e.timestamp < target);
        match at.checked_sub(1) {
            Some(i) => self.floor(self.times[i].relative_offset),
            None => IndexEntry {
                relative_offset: 0,
                position: 0,
            },
        }
    }

    /// The largest timestamp the time index knows of.
    pub fn max_timestamp(&self) -> Option<i64> {
        self.times.last().map(|e| e.timestamp)
    }

    pub fn offset_entries(&self) -> &[IndexEntry] {
        &self.offsets
    }

    /// `.index` file bytes.
    pub fn encode_offsets(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.offsets.len() * OFFSET_ENTRY_BYTES);
        for e in &self.offsets {
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
            out.extend_from_slice(&e.position.to_be_bytes());
        }
        out
    }

    /// `.timeindex` file bytes.
    pub fn encode_times(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.times.len() * TIME_ENTRY_BYTES);
        for e in &self.times {
            out.extend_from_slice(&e.timestamp.to_be_bytes());
            out.extend_from_slice(&e.relative_offset.to_be_bytes());
        }
        out
    }

    /// Decodes both files and checks them against the segment they describe: entries strictly
    /// increasing, positions inside `segment_len`, offsets below `relative_end`. An `Err` names
    /// the damage; the caller then rebuilds the index by scanning the segment.
    pub fn decode(
        offsets: &[u8],
        times: &[u8],
        segment_len: u64,
        relative_end: u64,
    ) -> Result<SegmentIndex, IndexError> {
        if !offsets.len().is_multiple_of(OFFSET_ENTRY_BYTES)
            || !times.len().is_multiple_of(TIME_ENTRY_BYTES)
        {
            return Err(IndexError::PartialEntry);
        }
        let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let mut index = SegmentIndex::default();
        for chunk in offsets.chunks_exact(OFFSET_ENTRY_BYTES) {
            let entry = IndexEntry {
                relative_offset: be32(&chunk[..4]),
                position: be32(&chunk[4..]),
            };
            let increasing = index.offsets.last().is_none_or(|last| {
                entry.relative_offset > last.relative_offset && entry.position > last.position
            });
            if !increasing
                || u64::from(entry.position) >= segment_len
                || u64::from(entry.relative_offset) >= relative_end
            {
                return Err(IndexError::OffsetEntry(entry));
            }
            index.offsets.push(entry);
        }
        if index.offsets.first().is_some_and(|e| e.position != 0) {
            return Err(IndexError::NotAtSegmentStart);
        }
        for chunk in times.chunks_exact(TIME_ENTRY_BYTES) {
            let mut ts = [0u8; 8];
            ts.copy_from_slice(&chunk[..8]);
            let entry = TimeEntry {
                timestamp: i64::from_be_bytes(ts),
                relative_offset: be32(&chunk[8..]),
            };
            let increasing = index.times.last().is_none_or(|last| {
                entry.timestamp > last.timestamp && entry.relative_offset >= last.relative_offset
            });
            if !increasing || u64::from(entry.relative_offset) >= relative_end {
                return Err(IndexError::TimeEntry(entry));
            }
            index.times.push(entry);
        }
        index.bytes_since_entry = index
            .offsets
            .last()
            .map_or(0, |e| segment_len - u64::from(e.position));
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built() -> SegmentIndex {
        let mut index = SegmentIndex::default();
        // Ten batches of 1000 bytes, 5 records each, timestamps rising by 10 per batch.
        for i in 0..10u32 {
            index.on_append(i * 5, i * 1000, 1000, 100 + i64::from(i) * 10, 2500);
        }
        index
    }

    #[test]
    fn entries_are_sparse_and_floor_finds_the_preceding_point() {
        let index = built();
        let positions: Vec<u32> = index.offset_entries().iter().map(|e| e.position).collect();
        assert_eq!(positions, vec![0, 3000, 6000, 9000]);
        assert_eq!(index.floor(0).position, 0);
        assert_eq!(index.floor(14).position, 0);
        assert_eq!(index.floor(15).position, 3000);
        assert_eq!(index.floor(49).position, 9000);
    }

    #[test]
    fn timestamp_scan_starts_before_the_first_candidate() {
        let index = built();
        // Batch 4 (offset 20) has max timestamp 140; the scan must start at or before it.
        // The last point below 140 is batch 3 (offset 15, max 130): scanning starts there, not at
        // the segment start.
        let start = index.scan_start_for_timestamp(140);
        assert_eq!((start.relative_offset, start.position), (15, 3000));
        assert_eq!(index.scan_start_for_timestamp(0).position, 0);
    }

    #[test]
    fn files_round_trip_and_damage_is_detected() {
        let mut index = built();
        index.seal(190, 45);
        let (offsets, times) = (index.encode_offsets(), index.encode_times());
        let decoded = SegmentIndex::decode(&offsets, &times, 10_000, 50).unwrap();
        assert_eq!(decoded.offset_entries(), index.offset_entries());
        assert_eq!(decoded.max_timestamp(), Some(190));

        assert!(matches!(
            SegmentIndex::decode(&offsets[..7], &times, 10_000, 50),
            Err(IndexError::PartialEntry)
        ));
        assert!(
            matches!(
                SegmentIndex::decode(&offsets, &times, 5_000, 50),
                Err(IndexError::OffsetEntry(_))
            ),
            "position past the end"
        );
        let mut swapped = offsets.clone();
        swapped[8..16].copy_from_slice(&offsets[16..24]);
        assert!(
            matches!(
                SegmentIndex::decode(&swapped, &times, 10_000, 50),
                Err(IndexError::OffsetEntry(_))
            ),
            "out of order"
        );
        let mut late_time = times.clone();
        late_time[8..12].copy_from_slice(&99u32.to_be_bytes());
        assert!(
            matches!(
                SegmentIndex::decode(&offsets, &late_time, 10_000, 50),
                Err(IndexError::TimeEntry(_))
            ),
            "time entry past the segment's offsets"
        );
    }
}
