//! Committed offsets in `__consumer_offsets`, in Kafka's record format, and their replay.
//!
//! Key (version 1): i16 version, string group, string topic, i32 partition.
//! Value (version 3): i16 version, i64 offset, i32 leader epoch, string metadata, i64 commit
//! timestamp. A null value (tombstone) deletes the key. Records are written as uncompressed v2
//! batches (`batch::encode_batch`). Group-metadata records (key version 2) are not written yet:
//! a group's existence after a restart is rebuilt from its offsets.
//!
//! Owns that encoding and the replay of one partition's log. Must not: touch group membership
//! (`state`) or another shard's logs.

use crate::batch::{self, Record};
use crate::log::PartitionLog;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// What one record of `__consumer_offsets` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRecord {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<Committed>,
    },
    /// A key version this broker does not interpret (e.g. Kafka's group metadata).
    Other,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(i16::MAX as usize);
    out.extend_from_slice(&(len as i16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

pub fn key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut k = Vec::with_capacity(10 + group.len() + topic.len());
    k.extend_from_slice(&1i16.to_be_bytes());
    put_str(&mut k, group);
    put_str(&mut k, topic);
    k.extend_from_slice(&partition.to_be_bytes());
    k
}

pub fn value(c: &Committed) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + c.metadata.len());
    v.extend_from_slice(&3i16.to_be_bytes());
    v.extend_from_slice(&c.offset.to_be_bytes());
    v.extend_from_slice(&c.leader_epoch.to_be_bytes());
    put_str(&mut v, &c.metadata);
    v.extend_from_slice(&c.commit_timestamp.to_be_bytes());
    v
}

/// One batch holding a commit record per (topic, partition).
pub fn commit_batch(group: &str, commits: &[(String, i32, Committed)], now_ms: i64) -> Vec<u8> {
    let records: Vec<Record> = commits
        .iter()
        .map(|(t, p, c)| Record {
            timestamp: now_ms,
            key: Some(key(group, t, *p)),
            value: Some(value(c)),
            headers: Vec::new(),
        })
        .collect();
    batch::encode_batch(&records)
}

/// One batch of tombstones (null values): deletes the committed offsets of `keys`.
pub fn tombstone_batch(group: &str, keys: &[(String, i32)], now_ms: i64) -> Vec<u8> {
    let records: Vec<Record> = keys
        .iter()
        .map(|(t, p)| Record {
            timestamp: now_ms,
            key: Some(key(group, t, *p)),
            value: None,
            headers: Vec::new(),
        })
        .collect();
    batch::encode_batch(&records)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn string(&mut self) -> Option<String> {
        let n = usize::try_from(self.i16()?).ok()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn varint(&mut self) -> Option<i64> {
        let (v, n) = batch::read_varint(self.0)?;
        self.take(n)?;
        Some(v)
    }
    fn varbytes(&mut self) -> Option<Option<&'a [u8]>> {
        let n = self.varint()?;
        if n < 0 {
            return Some(None);
        }
        self.take(usize::try_from(n).ok()?).map(Some)
    }
}

/// Decodes one record's key and value; None if malformed.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetRecord> {
    let mut k = Cursor(key);
    let version = k.i16()?;
    if version > 1 {
        return Some(OffsetRecord::Other);
    }
    let group = k.string()?;
    let topic = k.string()?;
    let partition = k.i32()?;
    let value = match value {
        None => None,
        Some(v) => {
            let mut v = Cursor(v);
            let version = v.i16()?;
            let offset = v.i64()?;
            let leader_epoch = if version >= 3 { v.i32()? } else { -1 };
            let metadata = v.string()?;
            let commit_timestamp = v.i64()?;
            Some(Committed {
                offset,
                leader_epoch,
                metadata,
                commit_timestamp,
            })
        }
    };
    Some(OffsetRecord::Commit {
        group,
        topic,
        partition,
        value,
    })
}

/// The records of an uncompressed v2 batch (compressed batches are skipped: the broker writes
/// none to this topic). Returns None if the batch is malformed.
pub fn batch_records(batch_bytes: &[u8]) -> Option<Vec<OffsetRecord>> {
    const HEADER_LEN: usize = 61;
    const ATTRIBUTES_AT: usize = 21;
    let attributes = i16::from_be_bytes(
        batch_bytes
            .get(ATTRIBUTES_AT..ATTRIBUTES_AT + 2)?
            .try_into()
            .ok()?,
    );
    if attributes & 0x7 != 0 || attributes & 0x20 != 0 {
        // Compressed, or a control batch.
        return Some(Vec::new());
    }
    let count = i32::from_be_bytes(batch_bytes.get(57..61)?.try_into().ok()?);
    let mut c = Cursor(batch_bytes.get(HEADER_LEN..)?);
    let mut out = Vec::new();
    for _ in 0..count.max(0) {
        let len = usize::try_from(c.varint()?).ok()?;
        let mut r = Cursor(c.take(len)?);
        r.take(1)?; // attributes
        r.varint()?; // timestamp delta
        r.varint()?; // offset delta
        let key = r.varbytes()?;
        let value = r.varbytes()?;
        if let Some(key) = key {
            out.push(decode(key, value)?);
        }
    }
    Some(out)
}

/// Every record of `log` from its start to its end, in order.
pub async fn replay(log: &PartitionLog) -> Result<Vec<OffsetRecord>, crate::LogError> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    let end = log.log_end_offset();
    while offset < end {
        let read = log.read(offset, 1 << 20).await?;
        if read.batches.is_empty() {
            break;
        }
        let bytes = read.to_vec();
        let mut at = 0usize;
        for h in &read.batches {
            let len = 12 + h.batch_length.max(0) as usize;
            let Some(b) = bytes.get(at..at + len) else {
                break;
            };
            match batch_records(b) {
                Some(records) => out.extend(records),
                None => tracing::warn!(
                    base = h.base_offset,
                    "__consumer_offsets: malformed batch skipped"
                ),
            }
            at += len;
        }
        match read.next_offset() {
            Some(next) if next > offset => offset = next,
            _ => break,
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_batch_decodes_to_its_commits() {
        let c = Committed {
            offset: 42,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp: 7,
        };
        let b = commit_batch("g", &[("t".into(), 3, c.clone())], 7);
        let records = batch_records(&b).unwrap();
        assert_eq!(
            records,
            vec![OffsetRecord::Commit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: Some(c)
            }]
        );
        assert_eq!(
            decode(&key("g", "t", 3), None).unwrap(),
            OffsetRecord::Commit {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
                value: None
            }
        );
    }
}
