//! The Fetch response, encoded by hand so record bytes go to the socket as the log holds them:
//! the encoder emits control bytes as `Part::Bytes` and each partition's records as the parts it
//! is given (the log's own buffers on the owning shard, or one copy made by another shard).
//!
//! Layout v4–v11 (classic) and v12 (flexible): throttle_time_ms, error_code (v7+), session_id
//! (v7+), [topic, [partition_index, error_code, high_watermark, last_stable_offset,
//! log_start_offset (v5+), aborted_transactions, preferred_read_replica (v11+), records]].
//! Owns that layout. Must not read the log or decide what to return.

use std::ops::Deref;

use bytes::{BufMut, BytesMut};

use super::header::{put_response_header, RequestHeader};
use super::wire::{put_array_len, put_bytes_len, put_string, put_uvarint};
use super::{Part, ResponseFrame};

const FIRST_FLEXIBLE: i16 = 12;

pub struct FetchResponseTopic<X = bytes::Bytes> {
    pub name: String,
    pub partitions: Vec<FetchResponsePartition<X>>,
}

pub struct FetchResponsePartition<X = bytes::Bytes> {
    pub index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Whole record batches, in order.
    pub records: Vec<Part<X>>,
}

/// Encodes a Fetch response (`header.api_version` in 4..=12).
pub fn encode<X: Deref<Target = [u8]>>(
    header: &RequestHeader,
    error_code: i16,
    session_id: i32,
    topics: Vec<FetchResponseTopic<X>>,
) -> ResponseFrame<X> {
    let version = header.api_version;
    let flexible = version >= FIRST_FLEXIBLE;
    let mut parts = Vec::new();
    let mut out = BytesMut::with_capacity(256);
    put_response_header(&mut out, header.api_key, version, header.correlation_id);
    out.put_i32(0); // throttle_time_ms
    if version >= 7 {
        out.put_i16(error_code);
        out.put_i32(session_id);
    }
    put_array_len(&mut out, topics.len(), flexible);
    for topic in topics {
        put_string(&mut out, topic.name.as_bytes(), flexible);
        put_array_len(&mut out, topic.partitions.len(), flexible);
        for p in topic.partitions {
            out.put_i32(p.index);
            out.put_i16(p.error_code);
            out.put_i64(p.high_watermark);
            out.put_i64(p.last_stable_offset);
            if version >= 5 {
                out.put_i64(p.log_start_offset);
            }
            put_array_len(&mut out, 0, flexible); // aborted_transactions: none
            if version >= 11 {
                out.put_i32(-1); // preferred_read_replica
            }
            let len: usize = p.records.iter().map(Part::len).sum();
            put_bytes_len(&mut out, Some(len), flexible);
            if len > 0 {
                parts.push(Part::Bytes(out.split().freeze()));
                parts.extend(p.records.into_iter().filter(|r| !r.is_empty()));
            }
            if flexible {
                put_uvarint(&mut out, 0);
            }
        }
        if flexible {
            put_uvarint(&mut out, 0);
        }
    }
    if flexible {
        put_uvarint(&mut out, 0);
    }
    parts.push(Part::Bytes(out.freeze()));
    ResponseFrame::from_parts(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::{ApiKey, FetchResponse};
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn hand_encoding_matches_the_reference_decoder_for_every_version() {
        for version in 4..=12 {
            let header = RequestHeader {
                api_key: ApiKey::Fetch,
                api_version: version,
                correlation_id: 9,
                client_id: None,
            };
            let topics = vec![FetchResponseTopic {
                name: "t".into(),
                partitions: vec![
                    FetchResponsePartition {
                        index: 0,
                        error_code: 0,
                        high_watermark: 10,
                        last_stable_offset: 10,
                        log_start_offset: 0,
                        records: vec![
                            Part::<Bytes>::Bytes(Bytes::from_static(b"abc")),
                            Part::Bytes(Bytes::from_static(b"defg")),
                        ],
                    },
                    FetchResponsePartition {
                        index: 1,
                        error_code: 1,
                        high_watermark: 0,
                        last_stable_offset: 0,
                        log_start_offset: 0,
                        records: vec![],
                    },
                ],
            }];
            let frame = encode(&header, 0, 0, topics).to_vec();
            assert_eq!(
                u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
                frame.len() - 4
            );
            let hv = ApiKey::Fetch.response_header_version(version);
            let body_at = if hv >= 1 { 9 } else { 8 };
            let mut body = Bytes::copy_from_slice(&frame[body_at..]);
            let r = FetchResponse::decode(&mut body, version).unwrap();
            assert!(body.is_empty(), "v{version}: trailing bytes");
            let p = &r.responses[0].partitions;
            assert_eq!(p[0].records.as_deref(), Some(&b"abcdefg"[..]));
            assert_eq!(p[0].high_watermark, 10);
            assert_eq!(p[1].error_code, 1);
            assert_eq!(r.responses[0].topic.0.as_str(), "t");
        }
    }
}
