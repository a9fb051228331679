//! The decode entry point: everything the broker does to a request frame's bytes before it
//! touches any state — header, API and version check, the array-length guard, and the body
//! decoder of every supported API (the hand-written Produce parser and the `kafka-protocol`
//! decoders of the control plane).
//!
//! Owns the order of those steps and the map from API to body decoder. The broker's dispatch
//! stage calls [`decode_request`] and nothing else on a frame; the fuzz target (`fuzz/`) and the
//! corpus test (`wire/tests/decoder_corpus.rs`) call the same function, so what they exercise is
//! exactly what a connection's bytes go through. Must not: touch state, allocate from a length the
//! frame cannot back, or panic on any input (every failure is a [`ProtocolError`], and the broker
//! closes the connection that sent it).

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, IncrementalAlterConfigsRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest,
};

use super::header::{parse_request, RequestHeader};
use super::produce::{self, ProduceRequest};
use super::{api_versions, decode_body, guard, ProtocolError};

/// The decoded body of a request weir answers.
#[derive(Debug)]
pub enum RequestBody {
    /// Any version, the body unread: an unsupported version is answered in v0 (see
    /// `api_versions`), and v3's client name and version are informational.
    ApiVersions,
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    Metadata(MetadataRequest),
    CreateTopics(CreateTopicsRequest),
    InitProducerId(InitProducerIdRequest),
    DeleteTopics(DeleteTopicsRequest),
    DescribeConfigs(DescribeConfigsRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
    CreatePartitions(CreatePartitionsRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
}

/// A request frame, decoded.
#[derive(Debug)]
pub struct DecodedRequest {
    pub header: RequestHeader,
    pub body: RequestBody,
}

/// Decodes one request frame (the bytes after the size prefix). Pure: no state, no I/O; an error
/// means the connection that sent the frame is closed.
pub fn decode_request(frame: Bytes) -> Result<DecodedRequest, ProtocolError> {
    let req = parse_request(frame)?;
    let header = req.header;
    let (key, v) = (header.api_key, header.api_version);
    if key == ApiKey::ApiVersions {
        return Ok(DecodedRequest {
            header,
            body: RequestBody::ApiVersions,
        });
    }
    if !api_versions::is_supported(key, v) {
        return Err(ProtocolError::UnsupportedVersion {
            api_key: key as i16,
            version: v,
        });
    }
    guard::check(key, v, &req.body)?;
    let body = req.body;
    let body = match key {
        ApiKey::Produce => RequestBody::Produce(produce::parse(body, v)?),
        ApiKey::Fetch => RequestBody::Fetch(decode_body("Fetch", v, body)?),
        ApiKey::ListOffsets => RequestBody::ListOffsets(decode_body("ListOffsets", v, body)?),
        ApiKey::Metadata => RequestBody::Metadata(decode_body("Metadata", v, body)?),
        ApiKey::CreateTopics => RequestBody::CreateTopics(decode_body("CreateTopics", v, body)?),
        ApiKey::InitProducerId => {
            RequestBody::InitProducerId(decode_body("InitProducerId", v, body)?)
        }
        ApiKey::DeleteTopics => RequestBody::DeleteTopics(decode_body("DeleteTopics", v, body)?),
        ApiKey::DescribeConfigs => {
            RequestBody::DescribeConfigs(decode_body("DescribeConfigs", v, body)?)
        }
        ApiKey::AlterConfigs => RequestBody::AlterConfigs(decode_body("AlterConfigs", v, body)?),
        ApiKey::IncrementalAlterConfigs => {
            RequestBody::IncrementalAlterConfigs(decode_body("IncrementalAlterConfigs", v, body)?)
        }
        ApiKey::DescribeCluster => {
            RequestBody::DescribeCluster(decode_body("DescribeCluster", v, body)?)
        }
        ApiKey::CreatePartitions => {
            RequestBody::CreatePartitions(decode_body("CreatePartitions", v, body)?)
        }
        ApiKey::FindCoordinator => {
            RequestBody::FindCoordinator(decode_body("FindCoordinator", v, body)?)
        }
        ApiKey::JoinGroup => RequestBody::JoinGroup(decode_body("JoinGroup", v, body)?),
        ApiKey::SyncGroup => RequestBody::SyncGroup(decode_body("SyncGroup", v, body)?),
        ApiKey::Heartbeat => RequestBody::Heartbeat(decode_body("Heartbeat", v, body)?),
        ApiKey::LeaveGroup => RequestBody::LeaveGroup(decode_body("LeaveGroup", v, body)?),
        ApiKey::OffsetCommit => RequestBody::OffsetCommit(decode_body("OffsetCommit", v, body)?),
        ApiKey::OffsetFetch => RequestBody::OffsetFetch(decode_body("OffsetFetch", v, body)?),
        ApiKey::ListGroups => RequestBody::ListGroups(decode_body("ListGroups", v, body)?),
        ApiKey::DescribeGroups => {
            RequestBody::DescribeGroups(decode_body("DescribeGroups", v, body)?)
        }
        ApiKey::DeleteGroups => RequestBody::DeleteGroups(decode_body("DeleteGroups", v, body)?),
        ApiKey::OffsetDelete => RequestBody::OffsetDelete(decode_body("OffsetDelete", v, body)?),
        // `is_supported` passed, so the version table names an API this match does not: refuse
        // it rather than answer something we cannot decode.
        other => {
            return Err(ProtocolError::UnsupportedVersion {
                api_key: other as i16,
                version: v,
            })
        }
    };
    Ok(DecodedRequest { header, body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api_versions::SUPPORTED;

    #[test]
    fn every_supported_api_has_a_decoder() {
        // An empty body of every supported API and version: a decoder error or a body, never
        // the catch-all "unsupported" arm.
        for (key, min, max) in SUPPORTED {
            for v in *min..=*max {
                let mut frame = Vec::new();
                frame.extend_from_slice(&(*key as i16).to_be_bytes());
                frame.extend_from_slice(&v.to_be_bytes());
                frame.extend_from_slice(&7i32.to_be_bytes());
                frame.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
                if key.request_header_version(v) >= 2 {
                    frame.push(0);
                }
                let r = decode_request(Bytes::from(frame));
                assert!(
                    !matches!(r, Err(ProtocolError::UnsupportedVersion { .. })),
                    "{key:?} v{v}: {r:?}"
                );
            }
        }
    }
}
