//! The Produce request, parsed by hand so each partition's record set is a `Bytes` slice of the
//! request frame: the log queues that slice and copies it once, into its DMA buffer.
//!
//! Layout (v0–v8 classic, v9+ flexible: compact strings/arrays/bytes and tagged-field sections):
//! transactional_id (v3+), acks, timeout_ms, [topic name, [partition index, records]].
//! Owns that layout, and the response layout of v0–2, which the `kafka-protocol` crate (following
//! Kafka 4, which dropped them) no longer encodes. Must not validate record batches (the log does,
//! as a whole, before queueing).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ProduceResponse;

use super::header::{put_response_header, RequestHeader};
use super::wire::Reader;
use super::{Part, ProtocolError, ResponseFrame};

/// Produce v3 added transactional_id (and, in Kafka, requires record batches v2).
const FIRST_WITH_TRANSACTIONAL_ID: i16 = 3;
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

/// Parses a Produce request body of `version` (0..=12).
pub fn parse(body: Bytes, version: i16) -> Result<ProduceRequest, ProtocolError> {
    let flexible = version >= FIRST_FLEXIBLE;
    let mut r = Reader::new(body);
    let transactional_id = if version >= FIRST_WITH_TRANSACTIONAL_ID {
        r.string(flexible)?.map(utf8).transpose()?
    } else {
        None
    };
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

/// The Produce response of v0–2: [topic name, [partition, error code, base offset,
/// log append time (v2)]], throttle time (v1+). Later versions go through `kafka-protocol`.
pub fn encode_legacy_response<X: std::ops::Deref<Target = [u8]>>(
    header: &RequestHeader,
    response: &ProduceResponse,
) -> Result<ResponseFrame<X>, ProtocolError> {
    let version = header.api_version;
    if !(0..FIRST_WITH_TRANSACTIONAL_ID).contains(&version) {
        return Err(ProtocolError::Encode {
            api: "Produce",
            version,
            reason: "only v0–2 are encoded here".into(),
        });
    }
    let mut out = BytesMut::with_capacity(64);
    put_response_header(&mut out, header.api_key, version, header.correlation_id);
    out.put_i32(response.responses.len() as i32);
    for topic in &response.responses {
        let name = topic.name.0.as_bytes();
        let name_len = i16::try_from(name.len()).map_err(|_| ProtocolError::Encode {
            api: "Produce",
            version,
            reason: "topic name longer than 32767 bytes".into(),
        })?;
        out.put_i16(name_len);
        out.put_slice(name);
        out.put_i32(topic.partition_responses.len() as i32);
        for p in &topic.partition_responses {
            out.put_i32(p.index);
            out.put_i16(p.error_code);
            out.put_i64(p.base_offset);
            if version >= 2 {
                out.put_i64(p.log_append_time_ms);
            }
        }
    }
    if version >= 1 {
        out.put_i32(response.throttle_time_ms);
    }
    Ok(ResponseFrame::from_parts(vec![Part::Bytes(out.freeze())]))
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
        // kafka-protocol follows Kafka 4, which dropped Produce v0–2; their layout is v3's
        // without the leading transactional_id (a null string, 2 bytes).
        let mut out = bytes::BytesMut::new();
        req.encode(&mut out, version.max(3)).unwrap();
        let body = out.freeze();
        if version < 3 {
            assert_eq!(&body[..2], &[0xff, 0xff]);
            return body.slice(2..);
        }
        body
    }

    #[test]
    fn classic_and_flexible_versions_parse_to_frame_slices() {
        for version in [0, 1, 2, 3, 7, 8, 9, 11] {
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

    #[test]
    fn legacy_responses_have_the_v0_to_v2_layouts() {
        use kafka_protocol::messages::produce_response::{
            PartitionProduceResponse, TopicProduceResponse,
        };
        use kafka_protocol::messages::ApiKey;
        let response = ProduceResponse::default()
            .with_throttle_time_ms(9)
            .with_responses(vec![TopicProduceResponse::default()
                .with_name(TopicName(StrBytes::from_static_str("t1")))
                .with_partition_responses(vec![PartitionProduceResponse::default()
                    .with_index(3)
                    .with_error_code(43)
                    .with_base_offset(77)
                    .with_log_append_time_ms(-1)])]);
        for version in 0..3i16 {
            let header = RequestHeader {
                api_key: ApiKey::Produce,
                api_version: version,
                correlation_id: 5,
                client_id: None,
            };
            let frame: ResponseFrame = encode_legacy_response(&header, &response).unwrap();
            let bytes: Vec<u8> = frame
                .parts
                .iter()
                .flat_map(|p| p.as_slice().to_vec())
                .collect();
            let mut want = Vec::new();
            want.extend_from_slice(&5i32.to_be_bytes()); // correlation id
            want.extend_from_slice(&1i32.to_be_bytes());
            want.extend_from_slice(&2i16.to_be_bytes());
            want.extend_from_slice(b"t1");
            want.extend_from_slice(&1i32.to_be_bytes());
            want.extend_from_slice(&3i32.to_be_bytes());
            want.extend_from_slice(&43i16.to_be_bytes());
            want.extend_from_slice(&77i64.to_be_bytes());
            if version >= 2 {
                want.extend_from_slice(&(-1i64).to_be_bytes());
            }
            if version >= 1 {
                want.extend_from_slice(&9i32.to_be_bytes());
            }
            assert_eq!(
                &bytes[..4],
                &(want.len() as i32).to_be_bytes(),
                "size prefix"
            );
            assert_eq!(&bytes[4..], &want[..], "v{version}");
        }
        let v3 = RequestHeader {
            api_key: ApiKey::Produce,
            api_version: 3,
            correlation_id: 5,
            client_id: None,
        };
        assert!(encode_legacy_response::<Bytes>(&v3, &response).is_err());
    }
}
