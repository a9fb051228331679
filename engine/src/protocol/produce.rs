//! The Produce request, parsed by hand so each partition's record set is a `Bytes` slice of the
//! request frame: the log queues that slice and copies it once, into its DMA buffer.
//!
//! Layout (v3–v8 classic, v9+ flexible: compact strings/arrays/bytes and tagged-field sections):
//! transactional_id, acks, timeout_ms, [topic name, [partition index, records]].
//! Owns that layout. Must not validate record batches (the log does, as a whole, before queueing).

use bytes::Bytes;

use super::wire::Reader;
use super::ProtocolError;

/// Produce v9 is the first flexible version.
const FIRST_FLEXIBLE: i16 = 9;

/// Elements reserved up front per array. A count on the wire is only known not to exceed the
/// bytes left, and each element here is 40–48 bytes in memory against 3–8 on the wire, so
/// reserving the whole count would let a lying count in a large frame reserve many times the
/// frame (a 100 MiB frame: ~4.8 GiB); past this the vector grows as elements are parsed.
const RESERVED_MAX: usize = 64;

#[derive(Debug)]
pub struct ProduceRequest {
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<ProduceTopic>,
}

#[derive(Debug)]
pub struct ProduceTopic {
    pub name: String,
    pub partitions: Vec<ProducePartition>,
}

#[derive(Debug)]
pub struct ProducePartition {
    pub index: i32,
    /// The record set as sent (a slice of the request frame); `None` if the client sent null.
    pub records: Option<Bytes>,
}

fn utf8(b: Bytes) -> Result<String, ProtocolError> {
    String::from_utf8(b.to_vec()).map_err(|_| ProtocolError::Malformed("string is not UTF-8"))
}

/// Parses a Produce request body of `version` (3..=12).
pub fn parse(body: Bytes, version: i16) -> Result<ProduceRequest, ProtocolError> {
    let flexible = version >= FIRST_FLEXIBLE;
    let mut r = Reader::new(body);
    let transactional_id = r.string(flexible)?.map(utf8).transpose()?;
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let topic_count = r.array_len(flexible)?;
    let mut topics = Vec::with_capacity(topic_count.min(RESERVED_MAX));
    for _ in 0..topic_count {
        let name = r
            .string(flexible)?
            .ok_or(ProtocolError::Malformed("null topic name"))
            .and_then(utf8)?;
        let partition_count = r.array_len(flexible)?;
        let mut partitions = Vec::with_capacity(partition_count.min(RESERVED_MAX));
        for _ in 0..partition_count {
            let index = r.i32()?;
            let records = r.nullable_bytes(flexible)?;
            if flexible {
                r.skip_tagged_fields()?;
            }
            partitions.push(ProducePartition { index, records });
        }
        if flexible {
            r.skip_tagged_fields()?;
        }
        topics.push(ProduceTopic { name, partitions });
    }
    if flexible {
        r.skip_tagged_fields()?;
    }
    if r.remaining() != 0 {
        return Err(ProtocolError::Malformed(
            "trailing bytes after a Produce request",
        ));
    }
    Ok(ProduceRequest {
        transactional_id,
        acks,
        timeout_ms,
        topics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest as KpRequest, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn encoded(version: i16) -> Bytes {
        let req = KpRequest::default()
            .with_acks(-1)
            .with_timeout_ms(1500)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("t1")))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(3)
                        .with_records(Some(Bytes::from_static(b"batch-bytes"))),
                    PartitionProduceData::default()
                        .with_index(4)
                        .with_records(None),
                ])]);
        let mut out = bytes::BytesMut::new();
        req.encode(&mut out, version).unwrap();
        out.freeze()
    }

    #[test]
    fn classic_and_flexible_versions_parse_to_frame_slices() {
        for version in [3, 7, 8, 9, 11] {
            let body = encoded(version);
            let req = parse(body.clone(), version).unwrap();
            assert_eq!((req.acks, req.timeout_ms), (-1, 1500));
            assert_eq!(req.topics.len(), 1);
            assert_eq!(req.topics[0].name, "t1");
            let p = &req.topics[0].partitions;
            assert_eq!(p[0].index, 3);
            let records = p[0].records.as_ref().unwrap();
            assert_eq!(&records[..], b"batch-bytes");
            // Zero copy: the records point into the request buffer.
            let inside = body.as_ptr() as usize..body.as_ptr() as usize + body.len();
            assert!(inside.contains(&(records.as_ptr() as usize)));
            assert!(p[1].records.is_none());
            // Every truncation is refused, never a panic.
            for cut in 0..body.len() {
                assert!(parse(body.slice(..cut), version).is_err());
            }
        }
    }
}
