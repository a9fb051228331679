//! Kafka record batches (v2, magic 2): header parsing, validation, offset stamping, and a builder.
//!
//! Owns the byte layout of a batch. The log stores batches byte-for-byte as produced, so this module
//! never decompresses or re-encodes a producer's batch: it validates the header and CRC32C, walks
//! the records of uncompressed batches, and patches only the two fields the broker assigns (base
//! offset and partition leader epoch), which lie outside the CRC. (Compaction rewrites batches:
//! it decompresses through `codec` and puts the kept records back with [`rebuilt`].)

use crate::error_code;

/// A record set that breaks Kafka's batch rules; none of it may be appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The bytes are not a well-formed v2 record batch (bad magic, length or CRC).
    #[error("corrupt record batch at byte {position} of the record set: {reason}")]
    CorruptMessage { position: usize, reason: String },
    /// A message set in the pre-0.11 formats (magic 0 or 1): weir stores record batches v2 only.
    #[error("message format v{magic} at byte {position} of the record set is not supported: weir stores record batches v2 (Kafka clients 0.11 and later)")]
    UnsupportedMessageFormat { position: usize, magic: i8 },
    /// A batch larger than the partition's `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes = {max}")]
    MessageTooLarge { size: usize, max: usize },
    /// A well-formed batch whose contents break a rule (record count, offset deltas, empty batch).
    #[error("invalid record batch at byte {position} of the record set: {reason}")]
    InvalidRecord { position: usize, reason: String },
}

impl BatchError {
    /// The Kafka error code a producer should see (Kafka's rules, see `validate_record_set`).
    pub fn kafka_code(&self) -> i16 {
        match self {
            BatchError::CorruptMessage { .. } => error_code::CORRUPT_MESSAGE,
            BatchError::UnsupportedMessageFormat { .. } => {
                error_code::UNSUPPORTED_FOR_MESSAGE_FORMAT
            }
            BatchError::MessageTooLarge { .. } => error_code::MESSAGE_TOO_LARGE,
            BatchError::InvalidRecord { .. } => error_code::INVALID_RECORD,
        }
    }
}

type Result<T, E = BatchError> = std::result::Result<T, E>;

/// Bytes before `batchLength`'s payload: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the v2 batch header, up to and including `recordsCount`.
pub const HEADER_LEN: usize = 61;
const BATCH_LENGTH_AT: usize = 8;
const LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
/// The CRC32C covers everything from the attributes on.
const CRC_COVERS_FROM: usize = 21;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;
const COMPRESSION_MASK: i16 = 0x07;

/// The parsed fixed header of one v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header from the first [`HEADER_LEN`] bytes; `None` if `buf` is shorter.
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        if buf.len() < HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: read_i64(buf, 0),
            batch_length: read_i32(buf, BATCH_LENGTH_AT),
            partition_leader_epoch: read_i32(buf, LEADER_EPOCH_AT),
            magic: buf[MAGIC_AT] as i8,
            crc: read_i32(buf, CRC_AT) as u32,
            attributes: read_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: read_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: read_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: read_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: read_i64(buf, PRODUCER_ID_AT),
            producer_epoch: read_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: read_i32(buf, BASE_SEQUENCE_AT),
            records_count: read_i32(buf, RECORDS_COUNT_AT),
        })
    }

    /// Bytes the whole batch occupies in the log, `None` if the length field is impossible.
    pub fn total_len(&self) -> Option<usize> {
        let body = usize::try_from(self.batch_length).ok()?;
        (body >= HEADER_LEN - LOG_OVERHEAD).then_some(body + LOG_OVERHEAD)
    }

    /// Offset of the last record, once the base offset has been assigned.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// A transaction marker (commit/abort) rather than data.
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// Record timestamps are the broker's append time (the batch's max timestamp).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
}

/// The header of an idempotent producer's record set (producer id >= 0), which Kafka requires to
/// be exactly one batch; `Ok(None)` when the set does not start with an idempotent batch header.
/// The sequence rules are the broker's; this is only the part that needs no state.
pub fn idempotent_header(records: &[u8]) -> Result<Option<BatchHeader>> {
    let Some(header) = BatchHeader::parse(records).filter(|h| h.producer_id >= 0) else {
        return Ok(None);
    };
    if header.total_len() != Some(records.len()) {
        return Err(BatchError::InvalidRecord {
            position: 0,
            reason: "an idempotent producer's record set must be exactly one batch".into(),
        });
    }
    Ok(Some(header))
}

/// Where one validated batch sits inside a record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub header: BatchHeader,
    /// Byte position of the batch in the record set.
    pub position: usize,
    /// Byte length of the batch.
    pub len: usize,
}

/// CRC32C (Castagnoli) of the bytes a batch's CRC covers; hardware-accelerated by `crc32c`.
pub fn batch_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_COVERS_FROM..])
}

/// Validates a producer's record set (one or more v2 batches, back to back) before anything is
/// appended: magic, lengths, CRC32C, record count against `lastOffsetDelta`, size against
/// `max_message_bytes`, and for uncompressed batches every record's framing and offset delta.
///
/// Kafka's rules: a bad magic, length or CRC is `CORRUPT_MESSAGE`; a batch over the size limit is
/// `MESSAGE_TOO_LARGE`; a well-formed batch whose record count or offsets disagree is
/// `INVALID_RECORD`. An error means none of the record set may be appended.
pub fn validate_record_set(records: &[u8], max_message_bytes: usize) -> Result<Vec<BatchSpan>> {
    let mut spans = Vec::new();
    let mut position = 0;
    if records.is_empty() {
        return Err(BatchError::InvalidRecord {
            position: 0,
            reason: "empty record set".into(),
        });
    }
    while position < records.len() {
        let rest = &records[position..];
        let corrupt = |reason: String| BatchError::CorruptMessage { position, reason };
        // Legacy message sets put their magic byte where batches v2 do; a small one is shorter
        // than a v2 header, so look at it first.
        if let Some(&magic @ (0 | 1)) = rest.get(MAGIC_AT) {
            return Err(BatchError::UnsupportedMessageFormat {
                position,
                magic: magic as i8,
            });
        }
        let header = BatchHeader::parse(rest).ok_or_else(|| {
            corrupt(format!(
                "{} trailing bytes are shorter than a batch header",
                rest.len()
            ))
        })?;
        if header.magic != 2 {
            return Err(corrupt(format!("magic {} is not 2", header.magic)));
        }
        let len = header.total_len().ok_or_else(|| {
            corrupt(format!(
                "batch length {} is impossible",
                header.batch_length
            ))
        })?;
        if len > max_message_bytes {
            return Err(BatchError::MessageTooLarge {
                size: len,
                max: max_message_bytes,
            });
        }
        if len > rest.len() {
            return Err(corrupt(format!(
                "batch length says {len} bytes but only {} remain",
                rest.len()
            )));
        }
        let batch = &rest[..len];
        let computed = batch_crc(batch);
        if computed != header.crc {
            return Err(corrupt(format!(
                "CRC32C mismatch: header {:#010x}, computed {computed:#010x}",
                header.crc
            )));
        }
        validate_contents(&header, batch)
            .map_err(|reason| BatchError::InvalidRecord { position, reason })?;
        spans.push(BatchSpan {
            header,
            position,
            len,
        });
        position += len;
    }
    Ok(spans)
}

fn validate_contents(header: &BatchHeader, batch: &[u8]) -> Result<(), String> {
    if header.records_count <= 0 {
        return Err(format!(
            "records count {} (a batch needs at least one)",
            header.records_count
        ));
    }
    if header.last_offset_delta != header.records_count - 1 {
        return Err(format!(
            "lastOffsetDelta {} disagrees with records count {}",
            header.last_offset_delta, header.records_count
        ));
    }
    if header.compression() == 0 {
        walk_uncompressed_records(&batch[HEADER_LEN..], header.records_count)?;
    }
    Ok(())
}

/// Walks uncompressed records, checking each one's framing and that offset deltas run 0, 1, 2 …
fn walk_uncompressed_records(mut body: &[u8], count: i32) -> Result<(), String> {
    for expected_delta in 0..count {
        let (len, used) = read_varint(body).ok_or("record length is not a varint")?;
        body = &body[used..];
        let len = usize::try_from(len).map_err(|_| format!("record length {len} is negative"))?;
        if len > body.len() {
            return Err(format!(
                "record {expected_delta} runs past the end of the batch"
            ));
        }
        let (record, rest) = body.split_at(len);
        body = rest;
        let offset_delta = record_offset_delta(record)
            .ok_or_else(|| format!("record {expected_delta} is malformed"))?;
        if offset_delta != i64::from(expected_delta) {
            return Err(format!(
                "record {expected_delta} has offset delta {offset_delta}"
            ));
        }
    }
    if !body.is_empty() {
        return Err(format!("{} bytes after the last record", body.len()));
    }
    Ok(())
}

/// Parses a record's fields far enough to check it is whole; returns its offset delta.
fn record_offset_delta(record: &[u8]) -> Option<i64> {
    let mut cursor = record.get(1..)?; // attributes
    let next_varint = |cursor: &mut &[u8]| -> Option<i64> {
        let (value, used) = read_varint(cursor)?;
        *cursor = &cursor[used..];
        Some(value)
    };
    let _timestamp_delta = next_varint(&mut cursor)?;
    let offset_delta = next_varint(&mut cursor)?;
    let skip_bytes = |cursor: &mut &[u8]| -> Option<()> {
        let len = next_varint(cursor)?;
        if len >= 0 {
            *cursor = cursor.get(usize::try_from(len).ok()?..)?;
        }
        Some(())
    };
    skip_bytes(&mut cursor)?; // key
    skip_bytes(&mut cursor)?; // value
    let (headers, used) = read_varint(cursor)?;
    cursor = &cursor[used..];
    for _ in 0..headers.max(0) {
        skip_bytes(&mut cursor)?; // header key
        skip_bytes(&mut cursor)?; // header value
    }
    cursor.is_empty().then_some(offset_delta)
}

/// Writes the broker-assigned fields into a batch in place; the CRC stays valid because neither
/// field is covered by it.
pub fn stamp(batch: &mut [u8], base_offset: u64, partition_leader_epoch: i32) {
    batch[..8].copy_from_slice(&(base_offset as i64).to_be_bytes());
    batch[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
        .copy_from_slice(&partition_leader_epoch.to_be_bytes());
}

/// What a scan of on-disk bytes found at one position.
#[derive(Debug, PartialEq, Eq)]
pub enum Scanned {
    /// A whole, CRC-valid batch of this many bytes.
    Batch(BatchHeader, usize),
    /// The bytes end before the batch does (or before a header fits).
    Incomplete,
    /// Not a valid batch here: zeros past the end, a torn write, or corruption.
    Invalid(String),
}

/// Checks the batch that should start at `buf[0]` and hold `expected_offset` (or, after
/// compaction, a later offset), for recovery and cold reads: the header must parse, the base
/// offset must not go back, and the CRC match.
pub fn scan_batch(buf: &[u8], expected_offset: Option<u64>) -> Scanned {
    let Some(header) = BatchHeader::parse(buf) else {
        return if buf.iter().all(|&b| b == 0) {
            Scanned::Invalid("zeros".into())
        } else {
            Scanned::Incomplete
        };
    };
    if header.magic != 2 {
        return Scanned::Invalid(format!("magic {}", header.magic));
    }
    let Some(len) = header.total_len() else {
        return Scanned::Invalid(format!("batch length {}", header.batch_length));
    };
    // Offsets only grow. A compacted segment has gaps where whole batches were removed, so a
    // base offset beyond the expected one is fine; one below it is not.
    if let Some(expected) = expected_offset {
        if header.base_offset < expected as i64 {
            return Scanned::Invalid(format!(
                "base offset {} where at least {expected} was expected",
                header.base_offset
            ));
        }
    }
    if header.last_offset_delta < 0 {
        return Scanned::Invalid(format!("lastOffsetDelta {}", header.last_offset_delta));
    }
    if len > buf.len() {
        return Scanned::Incomplete;
    }
    if batch_crc(&buf[..len]) != header.crc {
        return Scanned::Invalid("CRC32C mismatch".into());
    }
    Scanned::Batch(header, len)
}

/// Timestamp of the first record at or after `target` inside an uncompressed batch, as
/// `(offset, timestamp)`; `None` for compressed batches (the caller falls back to the batch).
pub fn find_record_at_or_after(batch: &[u8], target: i64) -> Option<(u64, i64)> {
    let header = BatchHeader::parse(batch)?;
    if header.compression() != 0 {
        return None;
    }
    let mut body = batch.get(HEADER_LEN..)?;
    for _ in 0..header.records_count {
        let (len, used) = read_varint(body)?;
        body = body.get(used..)?;
        let (record, rest) = body.split_at_checked(usize::try_from(len).ok()?)?;
        body = rest;
        let fields = record.get(1..)?;
        let (timestamp_delta, used) = read_varint(fields)?;
        let (offset_delta, _) = read_varint(&fields[used..])?;
        let timestamp = header.base_timestamp + timestamp_delta;
        if timestamp >= target {
            return Some(((header.base_offset + offset_delta) as u64, timestamp));
        }
    }
    None
}

/// One record of an uncompressed batch, as compaction sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The whole record as stored, its length varint included (copied as is when kept).
    pub raw: &'a [u8],
    pub offset_delta: i64,
    pub timestamp_delta: i64,
    pub key: Option<&'a [u8]>,
    /// `None` for a tombstone (null value).
    pub value: Option<&'a [u8]>,
}

/// The records of an uncompressed batch (`None` if it is compressed or malformed).
pub fn record_views(batch: &[u8]) -> Option<Vec<RecordView<'_>>> {
    let header = BatchHeader::parse(batch)?;
    if header.compression() != 0 {
        return None;
    }
    records_in(
        batch.get(HEADER_LEN..header.total_len()?)?,
        header.records_count,
    )
}

/// The `count` records of a batch's records part: the bytes after the header of an uncompressed
/// batch, or what `codec::decompress` made of a compressed one. `None` if malformed (fewer
/// records, or bytes left after the last).
pub fn records_in(mut body: &[u8], count: i32) -> Option<Vec<RecordView<'_>>> {
    let mut out = Vec::with_capacity(usize::try_from(count).ok()?.min(4096));
    for _ in 0..count {
        let (len, used) = read_varint(body)?;
        let total = used.checked_add(usize::try_from(len).ok()?)?;
        let (raw, rest) = body.split_at_checked(total)?;
        body = rest;
        let mut cursor = raw.get(used + 1..)?; // past the length and the attributes
        let mut varint = || -> Option<i64> {
            let (value, n) = read_varint(cursor)?;
            cursor = &cursor[n..];
            Some(value)
        };
        let timestamp_delta = varint()?;
        let offset_delta = varint()?;
        let key = nullable_field(&mut cursor)?;
        let value = nullable_field(&mut cursor)?;
        out.push(RecordView {
            raw,
            offset_delta,
            timestamp_delta,
            key,
            value,
        });
    }
    body.is_empty().then_some(out)
}

/// A varint-length-prefixed byte field (-1: null), advancing `cursor` past it.
fn nullable_field<'a>(cursor: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let (len, n) = read_varint(cursor)?;
    *cursor = &cursor[n..];
    if len < 0 {
        return Some(None);
    }
    let (field, rest) = cursor.split_at_checked(usize::try_from(len).ok()?)?;
    *cursor = rest;
    Some(Some(field))
}

/// A copy of `batch`'s header followed by `records`, the kept records already encoded
/// (concatenated [`RecordView::raw`]s, compressed with the batch's codec if it has one), for
/// compaction. Base offset, lastOffsetDelta (Kafka keeps it so a producer's last sequence
/// survives), base timestamp, attributes and producer fields stay, so every kept record keeps its
/// offset and timestamp; batch length, records count and `max_timestamp` are set and the CRC is
/// recomputed.
pub fn rebuilt(batch: &[u8], records: &[u8], count: i32, max_timestamp: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    out.extend_from_slice(records);
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    out[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    reseal(&mut out);
    out
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(bytes)
}

/// Reads a zigzag varint (Kafka's varint/varlong); returns the value and bytes used.
pub fn read_varint(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &byte) in buf.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends a zigzag varint.
pub fn write_varint(out: &mut Vec<u8>, value: i64) {
    let mut raw = ((value << 1) ^ (value >> 63)) as u64;
    while raw >= 0x80 {
        out.push((raw as u8) | 0x80);
        raw >>= 7;
    }
    out.push(raw as u8);
}

/// One record to put in a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Encodes uncompressed v2 batches, as a producer would (base offset 0, CRC filled in).
///
/// Used by tests and the benchmarks; a production client also compresses and sets producer ids.
pub fn encode_batch(records: &[Record]) -> Vec<u8> {
    let base_timestamp = records.first().map_or(0, |r| r.timestamp);
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(base_timestamp);
    let mut out = vec![0u8; HEADER_LEN];
    for (delta, record) in records.iter().enumerate() {
        let mut body = vec![0u8]; // attributes
        write_varint(&mut body, record.timestamp - base_timestamp);
        write_varint(&mut body, delta as i64);
        let put_bytes = |body: &mut Vec<u8>, bytes: &Option<Vec<u8>>| match bytes {
            Some(b) => {
                write_varint(body, b.len() as i64);
                body.extend_from_slice(b);
            }
            None => write_varint(body, -1),
        };
        put_bytes(&mut body, &record.key);
        put_bytes(&mut body, &record.value);
        write_varint(&mut body, record.headers.len() as i64);
        for (key, value) in &record.headers {
            put_bytes(&mut body, &Some(key.as_bytes().to_vec()));
            put_bytes(&mut body, value);
        }
        write_varint(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
    }
    let count = records.len() as i32;
    let batch_length = (out.len() - LOG_OVERHEAD) as i32;
    out[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&batch_length.to_be_bytes());
    out[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
    out[MAGIC_AT] = 2;
    out[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&(count - 1).to_be_bytes());
    out[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&base_timestamp.to_be_bytes());
    out[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&max_timestamp.to_be_bytes());
    out[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&(-1i64).to_be_bytes());
    out[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&(-1i16).to_be_bytes());
    out[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
    out[RECORDS_COUNT_AT..RECORDS_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
    let crc = batch_crc(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Rewrites a built batch's producer id, epoch and base sequence, and its CRC (a producer that
/// bumped its epoch resends batches it had numbered under the old one). `batch` must hold at
/// least a header.
pub fn set_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    if batch.len() < HEADER_LEN {
        return;
    }
    batch[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&base_sequence.to_be_bytes());
    reseal(batch);
}

/// Recomputes the CRC of a batch whose covered bytes were edited (tests forge batches with it).
pub fn reseal(batch: &mut [u8]) {
    let crc = batch_crc(batch);
    batch[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| Record {
                timestamp: 1_000 + i as i64,
                key: Some(format!("k{i}").into_bytes()),
                value: Some(vec![b'v'; i * 3]),
                headers: vec![("h".into(), Some(b"x".to_vec())), ("n".into(), None)],
            })
            .collect()
    }

    #[test]
    fn encoded_batches_validate_and_report_their_spans() {
        let mut set = encode_batch(&records(3));
        let first_len = set.len();
        set.extend(encode_batch(&records(5)));
        let spans = validate_record_set(&set, 1 << 20).unwrap();
        assert_eq!(spans.len(), 2);
        assert_eq!((spans[0].position, spans[0].len), (0, first_len));
        assert_eq!(spans[1].header.records_count, 5);
        assert_eq!(spans[1].header.max_timestamp, 1_004);
    }

    /// A legacy (magic 0 or 1) message set: offset, size, crc, magic, attributes, [timestamp],
    /// key, value.
    fn legacy_message(magic: u8, value: &[u8]) -> Vec<u8> {
        let mut message = vec![0, 0, 0, 0, magic, 0];
        if magic == 1 {
            message.extend_from_slice(&1_000i64.to_be_bytes());
        }
        message.extend_from_slice(&(-1i32).to_be_bytes());
        message.extend_from_slice(&(value.len() as i32).to_be_bytes());
        message.extend_from_slice(value);
        let mut set = 0i64.to_be_bytes().to_vec();
        set.extend_from_slice(&(message.len() as i32).to_be_bytes());
        set.extend(message);
        set
    }

    #[test]
    fn legacy_message_formats_are_refused_as_unsupported_not_corrupt() {
        for (magic, value) in [(0u8, &b"x"[..]), (1, &[7u8; 300][..])] {
            let mut set = encode_batch(&records(1));
            let position = set.len();
            set.extend(legacy_message(magic, value));
            let err = validate_record_set(&set, 1 << 20).unwrap_err();
            assert!(
                matches!(err, BatchError::UnsupportedMessageFormat { position: p, magic: m } if p == position && m == magic as i8),
                "{err:?}"
            );
            assert_eq!(err.kafka_code(), 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT");
        }
    }

    #[test]
    fn stamping_keeps_the_crc_valid() {
        let mut batch = encode_batch(&records(2));
        stamp(&mut batch, 42, 7);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!((header.base_offset, header.partition_leader_epoch), (42, 7));
        assert_eq!(
            scan_batch(&batch, Some(42)),
            Scanned::Batch(header, batch.len())
        );
    }

    #[test]
    fn bad_input_maps_to_the_matching_kafka_error() {
        let good = encode_batch(&records(2));
        let code =
            |bytes: &[u8], max: usize| validate_record_set(bytes, max).unwrap_err().kafka_code();

        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(code(&flipped, 1 << 20), error_code::CORRUPT_MESSAGE);

        let mut magic = good.clone();
        magic[MAGIC_AT] = 3;
        assert_eq!(code(&magic, 1 << 20), error_code::CORRUPT_MESSAGE);

        assert_eq!(
            code(&good[..good.len() - 1], 1 << 20),
            error_code::CORRUPT_MESSAGE
        );
        assert_eq!(code(&good, good.len() - 1), error_code::MESSAGE_TOO_LARGE);

        let mut count = good.clone();
        count[RECORDS_COUNT_AT + 3] = 3;
        reseal(&mut count);
        assert_eq!(code(&count, 1 << 20), error_code::INVALID_RECORD);

        let mut delta = good.clone();
        delta[LAST_OFFSET_DELTA_AT + 3] = 5;
        reseal(&mut delta);
        assert_eq!(code(&delta, 1 << 20), error_code::INVALID_RECORD);
    }

    #[test]
    fn a_record_with_a_wrong_offset_delta_is_invalid() {
        let mut batch = encode_batch(&records(2));
        // First record: length varint (1 byte), attributes, timestamp delta 0, offset delta 0.
        let offset_delta_at = HEADER_LEN + 3;
        assert_eq!(batch[offset_delta_at], 0);
        batch[offset_delta_at] = 2; // zigzag 1
        reseal(&mut batch);
        let err = validate_record_set(&batch, 1 << 20).unwrap_err();
        assert!(matches!(err, BatchError::InvalidRecord { .. }), "{err}");
    }

    #[test]
    fn varints_round_trip_across_their_range() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            -300,
            i32::MAX as i64,
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, value);
            assert_eq!(read_varint(&out), Some((value, out.len())));
        }
    }

    #[test]
    fn timestamp_lookup_finds_the_first_record_at_or_after_the_target() {
        let mut batch = encode_batch(&records(4));
        stamp(&mut batch, 100, 0);
        assert_eq!(find_record_at_or_after(&batch, 1_002), Some((102, 1_002)));
        assert_eq!(find_record_at_or_after(&batch, 0), Some((100, 1_000)));
        assert_eq!(find_record_at_or_after(&batch, 5_000), None);
    }
}
