//! batch — the producer's record-batch builder (v2, magic 2) and a record decoder.
//!
//! Owns how a producer lays out records (varint fields, timestamp and offset deltas, headers) and
//! the batch header it writes (producer id/epoch/sequence, attributes with the codec, CRC32C);
//! the inverse — a record decoder — for the consumer and the tests.
//!
//! Must not validate batches or parse their headers itself: that is `::wire::batch` (the broker's
//! rules), which the tests use to check every batch built here; nor implement the codecs: the
//! framing Kafka's clients write for each is `::wire::codec`, shared with the log cleaner. Does
//! no I/O.

use ::wire::batch::{read_varint, reseal, write_varint, HEADER_LEN, LOG_OVERHEAD};
use ::wire::codec::{self, compress_into, CodecError};

/// Kafka's compression.type values a producer may use (the engine's codec type).
pub use ::wire::codec::Codec as Compression;

/// Records of one batch may decompress to at most this many bytes (a consumer fetches whole
/// batches of at most max.message.bytes compressed; this bounds what a hostile one expands to).
pub const DECOMPRESSED_BATCH_BYTES_MAX: usize = 256 << 20;

/// Errors of building or decoding a batch.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error(transparent)]
    Codec(#[from] CodecError),
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("a batch needs at least one record")]
    Empty,
}

/// The idempotent producer fields of a batch; [`ProducerFields::NONE`] for a plain producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerFields {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

impl ProducerFields {
    pub const NONE: ProducerFields = ProducerFields {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
    };
}

/// One record as decoded from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset_delta: i32,
    pub timestamp: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Accumulates records of one partition's batch, uncompressed, until [`BatchBuilder::build`].
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    body: Vec<u8>,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// An empty batch whose records' timestamps are relative to `base_timestamp` (ms).
    pub fn new(base_timestamp: i64) -> BatchBuilder {
        BatchBuilder::with_capacity(base_timestamp, 0)
    }

    pub fn with_capacity(base_timestamp: i64, bytes: usize) -> BatchBuilder {
        BatchBuilder {
            body: Vec::with_capacity(bytes),
            count: 0,
            base_timestamp,
            max_timestamp: base_timestamp,
        }
    }

    /// Records appended so far.
    pub fn records(&self) -> i32 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed size of the batch if it were built now (what batch.size is compared with).
    pub fn size(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Size one more record would add (to decide whether it still fits batch.size).
    pub fn record_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> usize {
        // Upper bound of the framing: length varint (≤5), attributes, two varints of deltas (≤10
        // each), then each length varint (≤5).
        let bytes = |b: Option<&[u8]>| 5 + b.map_or(0, <[u8]>::len);
        5 + 1
            + 20
            + bytes(key)
            + bytes(value)
            + 5
            + headers
                .iter()
                .map(|(k, v)| bytes(Some(k)) + bytes(*v))
                .sum::<usize>()
    }

    /// Appends one record at `timestamp` (ms).
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) {
        let timestamp_delta = timestamp - self.base_timestamp;
        let offset_delta = i64::from(self.count);
        // The length prefix comes first, so it is computed rather than measured: the record is
        // then written once, straight into the body.
        let len = 1
            + varint_len(timestamp_delta)
            + varint_len(offset_delta)
            + bytes_len(key)
            + bytes_len(value)
            + varint_len(headers.len() as i64)
            + headers
                .iter()
                .map(|(k, v)| bytes_len(Some(k)) + bytes_len(*v))
                .sum::<usize>();
        let body = &mut self.body;
        write_varint(body, len as i64);
        body.push(0); // attributes (unused)
        write_varint(body, timestamp_delta);
        write_varint(body, offset_delta);
        put_bytes(body, key);
        put_bytes(body, value);
        write_varint(body, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(body, Some(k));
            put_bytes(body, *v);
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// Appends one record if the batch stays within `limit` bytes ([`BatchBuilder::size`]) with
    /// it, or if the batch is empty (a record larger than batch.size gets a batch of its own, as
    /// in Kafka); otherwise leaves the batch as it was and returns false.
    pub fn try_append(
        &mut self,
        limit: usize,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> bool {
        let (len, count, max_timestamp) = (self.body.len(), self.count, self.max_timestamp);
        self.append(timestamp, key, value, headers);
        if count > 0 && self.size() > limit {
            self.body.truncate(len);
            self.count = count;
            self.max_timestamp = max_timestamp;
            return false;
        }
        true
    }

    /// The finished batch: header, (compressed) records, CRC32C. Base offset 0 and partition
    /// leader epoch -1, as a producer sends them. `level`: the codec's level, `None` for its
    /// default.
    pub fn build(
        &self,
        compression: Compression,
        level: Option<i32>,
        producer: ProducerFields,
    ) -> Result<Vec<u8>, BatchError> {
        if self.count == 0 {
            return Err(BatchError::Empty);
        }
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
        out.extend_from_slice(&0i32.to_be_bytes()); // batchLength, below
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
        out.push(2); // magic
        out.extend_from_slice(&0u32.to_be_bytes()); // crc, below
        out.extend_from_slice(&compression.id().to_be_bytes()); // attributes
        out.extend_from_slice(&(self.count - 1).to_be_bytes()); // lastOffsetDelta
        out.extend_from_slice(&self.base_timestamp.to_be_bytes());
        out.extend_from_slice(&self.max_timestamp.to_be_bytes());
        out.extend_from_slice(&producer.producer_id.to_be_bytes());
        out.extend_from_slice(&producer.producer_epoch.to_be_bytes());
        out.extend_from_slice(&producer.base_sequence.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        debug_assert_eq!(out.len(), HEADER_LEN);
        compress_into(compression, level, &self.body, &mut out)?;
        let batch_length = (out.len() - LOG_OVERHEAD) as i32;
        out[8..12].copy_from_slice(&batch_length.to_be_bytes());
        reseal(&mut out);
        Ok(out)
    }

    /// Empties the builder for the next batch, keeping its buffers.
    pub fn reset(&mut self, base_timestamp: i64) {
        self.body.clear();
        self.count = 0;
        self.base_timestamp = base_timestamp;
        self.max_timestamp = base_timestamp;
    }
}

/// Bytes [`write_varint`] writes for `value`.
fn varint_len(value: i64) -> usize {
    let raw = ((value << 1) ^ (value >> 63)) as u64;
    (64 - raw.leading_zeros() as usize).max(1).div_ceil(7)
}

/// Bytes [`put_bytes`] writes for `bytes`.
fn bytes_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        Some(b) => varint_len(b.len() as i64) + b.len(),
        None => varint_len(-1),
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            write_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => write_varint(out, -1),
    }
}

/// Decompresses the records part of a batch (everything after the header), bounded by
/// [`DECOMPRESSED_BATCH_BYTES_MAX`].
pub fn decompress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    Ok(codec::decompress(
        codec,
        data,
        DECOMPRESSED_BATCH_BYTES_MAX,
    )?)
}

/// Decodes every record of one whole batch (decompressing it first), checked against its
/// header's record count. The batch is assumed validated (`::wire::batch::validate_record_set`).
pub fn decode_batch(batch: &[u8]) -> Result<Vec<DecodedRecord>, BatchError> {
    let header = ::wire::batch::BatchHeader::parse(batch)
        .ok_or_else(|| BatchError::Malformed("shorter than a batch header".into()))?;
    let end = header
        .total_len()
        .filter(|&len| len <= batch.len())
        .ok_or_else(|| BatchError::Malformed("bad batch length".into()))?;
    let codec = Compression::from_id(header.compression())?;
    let body = decompress(codec, &batch[HEADER_LEN..end])?;
    let mut rest = &body[..];
    let mut records = Vec::new();
    let malformed = |what: &str| BatchError::Malformed(what.to_string());
    for _ in 0..header.records_count {
        let len = take_varint(&mut rest)?;
        let len = usize::try_from(len).map_err(|_| malformed("negative record length"))?;
        let (mut record, tail) = rest
            .split_at_checked(len)
            .ok_or_else(|| malformed("record runs past the end"))?;
        rest = tail;
        record = record.get(1..).ok_or_else(|| malformed("empty record"))?;
        let timestamp = header.base_timestamp + take_varint(&mut record)?;
        let offset_delta =
            i32::try_from(take_varint(&mut record)?).map_err(|_| malformed("offset delta"))?;
        let key = take_bytes(&mut record)?;
        let value = take_bytes(&mut record)?;
        let n = take_varint(&mut record)?;
        let mut headers = Vec::new();
        for _ in 0..n.max(0) {
            let k = take_bytes(&mut record)?.unwrap_or_default();
            let v = take_bytes(&mut record)?;
            headers.push((k, v));
        }
        if !record.is_empty() {
            return Err(malformed("bytes after a record's headers"));
        }
        records.push(DecodedRecord {
            offset_delta,
            timestamp,
            key,
            value,
            headers,
        });
    }
    if !rest.is_empty() {
        return Err(malformed("bytes after the last record"));
    }
    Ok(records)
}

fn take_varint(rest: &mut &[u8]) -> Result<i64, BatchError> {
    let (v, used) = read_varint(rest).ok_or_else(|| BatchError::Malformed("bad varint".into()))?;
    *rest = &rest[used..];
    Ok(v)
}

fn take_bytes(rest: &mut &[u8]) -> Result<Option<Vec<u8>>, BatchError> {
    let Ok(len) = usize::try_from(take_varint(rest)?) else {
        return Ok(None); // negative length: null
    };
    let (b, tail) = rest
        .split_at_checked(len)
        .ok_or_else(|| BatchError::Malformed("field runs past the end".into()))?;
    *rest = tail;
    Ok(Some(b.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::wire::batch::{validate_record_set, BatchHeader};

    /// 1 KiB-ish JSON-like values: compressible like real payloads.
    fn json_value(i: usize) -> Vec<u8> {
        let mut v = format!(
            "{{\"id\":{i},\"user\":\"user-{}\",\"event\":\"click\",\"tags\":[",
            i % 97
        );
        while v.len() < 1000 {
            v.push_str(&format!("\"t{}\",", (i * 31 + v.len()) % 1013));
        }
        v.push_str("\"end\"]}");
        v.into_bytes()
    }

    fn build(codec: Compression, n: usize) -> (Vec<u8>, Vec<DecodedRecord>) {
        let mut b = BatchBuilder::new(1_700_000_000_000);
        let mut expected = Vec::new();
        for i in 0..n {
            let key = (i % 3 != 0).then(|| format!("key-{i}").into_bytes());
            let value = (i != 5).then(|| json_value(i));
            let hv = b"hv".to_vec();
            let headers: Vec<(&[u8], Option<&[u8]>)> = if i % 2 == 0 {
                vec![(b"trace", Some(&hv[..])), (b"nil", None)]
            } else {
                vec![]
            };
            let ts = 1_700_000_000_000 + (i as i64 * 7) % 50 - 3;
            b.append(ts, key.as_deref(), value.as_deref(), &headers);
            expected.push(DecodedRecord {
                offset_delta: i as i32,
                timestamp: ts,
                key,
                value,
                headers: headers
                    .iter()
                    .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                    .collect(),
            });
        }
        let producer = ProducerFields {
            producer_id: 17,
            producer_epoch: 2,
            base_sequence: 40,
        };
        (b.build(codec, None, producer).unwrap(), expected)
    }

    #[test]
    fn every_codec_builds_batches_the_broker_accepts_and_that_decode_back() {
        for codec in Compression::ALL {
            let (batch, expected) = build(codec, 64);
            let spans = validate_record_set(&batch, 1 << 20)
                .unwrap_or_else(|e| panic!("{codec}: engine refused the batch: {e}"));
            assert_eq!(spans.len(), 1);
            let h = spans[0].header;
            assert_eq!(h.compression(), codec.id(), "{codec}");
            assert_eq!((h.records_count, h.last_offset_delta), (64, 63));
            assert_eq!(
                (h.producer_id, h.producer_epoch, h.base_sequence),
                (17, 2, 40)
            );
            assert_eq!(h.base_timestamp, 1_700_000_000_000);
            assert_eq!(
                h.max_timestamp,
                expected.iter().map(|r| r.timestamp).max().unwrap()
            );
            assert_eq!(decode_batch(&batch).unwrap(), expected, "{codec}");
            if codec != Compression::None {
                let plain = build(Compression::None, 64).0;
                assert!(
                    batch.len() * 2 < plain.len(),
                    "{codec}: {} bytes is not compressed (plain {})",
                    batch.len(),
                    plain.len()
                );
            }
        }
    }

    #[test]
    fn a_flipped_byte_is_refused_by_the_broker_rules() {
        let (mut batch, _) = build(Compression::Lz4, 4);
        let last = batch.len() - 1;
        batch[last] ^= 0x55;
        assert!(validate_record_set(&batch, 1 << 20).is_err());
    }

    #[test]
    fn size_tracks_the_uncompressed_batch_and_reset_reuses_the_builder() {
        let mut b = BatchBuilder::new(5);
        assert!(b
            .build(Compression::None, None, ProducerFields::NONE)
            .is_err());
        let value = vec![7u8; 1024];
        b.append(5, None, Some(&value), &[]);
        let built = b
            .build(Compression::None, None, ProducerFields::NONE)
            .unwrap();
        assert_eq!(b.size(), built.len());
        assert!(BatchBuilder::record_size(None, Some(&value), &[]) >= built.len() - HEADER_LEN);
        b.reset(9);
        assert!(b.is_empty());
        b.append(10, Some(b"k"), None, &[]);
        let built = b
            .build(Compression::None, None, ProducerFields::NONE)
            .unwrap();
        let h = BatchHeader::parse(&built).unwrap();
        assert_eq!(
            (h.records_count, h.base_timestamp, h.max_timestamp),
            (1, 9, 10)
        );
    }

    #[test]
    fn varint_len_is_what_write_varint_writes() {
        for v in [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            8192,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(varint_len(v), out.len(), "{v}");
        }
    }

    #[test]
    fn codec_names_parse_as_kafka_spells_them() {
        for codec in Compression::ALL {
            assert_eq!(codec.name().parse::<Compression>().unwrap(), codec);
            assert_eq!(Compression::from_id(codec.id()).unwrap(), codec);
        }
        assert!("brotli".parse::<Compression>().is_err());
        assert!(Compression::from_id(5).is_err());
    }
}
