//! Committed offsets in `__consumer_offsets`, in Kafka's record format, and their replay.
//!
//! Key (version 1): i16 version, string group, string topic, i32 partition.
//! Value (version 3): i16 version, i64 offset, i32 leader epoch, string metadata, i64 commit
//! timestamp. A null value (tombstone) deletes the key. Records are written as uncompressed v2
//! batches (`batch::encode_batch`).
//! Group metadata (key version 2: i16 version, string group; value version 3: protocol type,
//! generation, protocol, leader, state timestamp and the members with their subscriptions and
//! assignments, Kafka's layout) is written when a generation completes and when the group
//! becomes empty; a null value deletes the group. Older value versions (0-2) are read too.
//!
//! Owns that encoding and the replay of one partition's log. Must not: touch group membership
//! (`state`) or another shard's logs.

use storage::log::PartitionLog;
use wire::batch::{self, Record};

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
    /// Group metadata (None: the group was deleted).
    Group {
        group: String,
        value: Option<GroupMeta>,
    },
    /// A key version this broker does not interpret.
    Other,
}

/// One member in a group metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// A group metadata record's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMeta {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// Wall-clock ms of the group's last state change; -1 if unknown (value versions 0-1).
    pub state_timestamp: i64,
    pub members: Vec<MetaMember>,
}

fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(4 + group.len());
    k.extend_from_slice(&2i16.to_be_bytes());
    put_str(&mut k, group);
    k
}

pub fn group_value(m: &GroupMeta) -> Vec<u8> {
    let mut v = Vec::with_capacity(64);
    v.extend_from_slice(&3i16.to_be_bytes());
    put_str(&mut v, &m.protocol_type);
    v.extend_from_slice(&m.generation.to_be_bytes());
    put_nullable_str(&mut v, m.protocol.as_deref());
    put_nullable_str(&mut v, m.leader.as_deref());
    v.extend_from_slice(&m.state_timestamp.to_be_bytes());
    v.extend_from_slice(&(m.members.len() as i32).to_be_bytes());
    for mm in &m.members {
        put_str(&mut v, &mm.member_id);
        put_nullable_str(&mut v, mm.instance_id.as_deref());
        put_str(&mut v, &mm.client_id);
        put_str(&mut v, &mm.client_host);
        v.extend_from_slice(&mm.rebalance_timeout_ms.to_be_bytes());
        v.extend_from_slice(&mm.session_timeout_ms.to_be_bytes());
        put_bytes(&mut v, &mm.subscription);
        put_bytes(&mut v, &mm.assignment);
    }
    v
}

/// One batch with the group's metadata record (None: its tombstone).
pub fn group_batch(group: &str, meta: Option<&GroupMeta>, now_ms: i64) -> Vec<u8> {
    batch::encode_batch(&[Record {
        timestamp: now_ms,
        key: Some(group_key(group)),
        value: meta.map(group_value),
        headers: Vec::new(),
    }])
}

fn decode_group_value(v: &[u8]) -> Option<GroupMeta> {
    let mut v = Cursor(v);
    let version = v.i16()?;
    let protocol_type = v.string()?;
    let generation = v.i32()?;
    let protocol = v.nullable_string()?;
    let leader = v.nullable_string()?;
    let state_timestamp = if version >= 2 { v.i64()? } else { -1 };
    let n = v.i32()?;
    let mut members = Vec::new();
    for _ in 0..n.max(0) {
        let member_id = v.string()?;
        let instance_id = if version >= 3 {
            v.nullable_string()?
        } else {
            None
        };
        let client_id = v.string()?;
        let client_host = v.string()?;
        let rebalance_timeout_ms = if version >= 1 { v.i32()? } else { -1 };
        let session_timeout_ms = v.i32()?;
        let subscription = v.bytes()?.to_vec();
        let assignment = v.bytes()?.to_vec();
        members.push(MetaMember {
            member_id,
            instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Some(GroupMeta {
        protocol_type,
        generation,
        protocol,
        leader,
        state_timestamp,
        members,
    })
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

/// One batch of tombstones (null values): deletes the committed offsets of `keys`, and with
/// `group_too` the group's metadata record.
pub fn tombstone_batch(
    group: &str,
    keys: &[(String, i32)],
    group_too: bool,
    now_ms: i64,
) -> Vec<u8> {
    let mut records: Vec<Record> = keys
        .iter()
        .map(|(t, p)| Record {
            timestamp: now_ms,
            key: Some(key(group, t, *p)),
            value: None,
            headers: Vec::new(),
        })
        .collect();
    if group_too {
        records.push(Record {
            timestamp: now_ms,
            key: Some(group_key(group)),
            value: None,
            headers: Vec::new(),
        });
    }
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
        self.nullable_string()? // null where a string is required: malformed
    }
    fn nullable_string(&mut self) -> Option<Option<String>> {
        let n = self.i16()?;
        if n < 0 {
            return Some(None);
        }
        let s = String::from_utf8(self.take(usize::try_from(n).ok()?)?.to_vec()).ok()?;
        Some(Some(s))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.i32()?;
        if n < 0 {
            return Some(&[]);
        }
        self.take(usize::try_from(n).ok()?)
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
    if version == 2 {
        let group = k.string()?;
        let value = match value {
            None => None,
            Some(v) => Some(decode_group_value(v)?),
        };
        return Some(OffsetRecord::Group { group, value });
    }
    if !(0..=1).contains(&version) {
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
    const CONTROL_BIT: i16 = 0x20;
    let header = batch::BatchHeader::parse(batch_bytes)?;
    if header.compression() != 0 || header.attributes & CONTROL_BIT != 0 {
        // Compressed, or a control batch.
        return Some(Vec::new());
    }
    let mut c = Cursor(batch_bytes.get(batch::HEADER_LEN..)?);
    let mut out = Vec::new();
    for _ in 0..header.records_count.max(0) {
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
pub async fn replay(log: &PartitionLog) -> Result<Vec<OffsetRecord>, storage::LogError> {
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
    fn a_group_metadata_batch_decodes_to_its_record() {
        let meta = GroupMeta {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m1".into()),
            state_timestamp: 1234,
            members: vec![MetaMember {
                member_id: "m1".into(),
                instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: b"sub".to_vec(),
                assignment: b"asg".to_vec(),
            }],
        };
        let b = group_batch("g", Some(&meta), 9);
        assert_eq!(
            batch_records(&b),
            Some(vec![OffsetRecord::Group {
                group: "g".into(),
                value: Some(meta)
            }])
        );
        let t = group_batch("g", None, 9);
        assert_eq!(
            batch_records(&t),
            Some(vec![OffsetRecord::Group {
                group: "g".into(),
                value: None
            }])
        );
        // A truncated value is malformed, not a panic.
        assert_eq!(decode(&group_key("g"), Some(&[0, 3, 0, 8])), None);
    }

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
