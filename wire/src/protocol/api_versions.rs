//! The versions weir speaks, and the ApiVersions response.
//!
//! Owns the supported-version table (what every handler must accept) and the two ApiVersions
//! rules clients depend on: a request for an ApiVersions version we do not speak is answered in
//! v0 with UNSUPPORTED_VERSION and the full table (the client then retries with a version from
//! it), and an ApiVersions v3+ response carries **no tagged fields** — librdkafka 2.0.2 (Debian's
//! kcat) mis-skips non-empty tagged fields there (fixed upstream in 2.2.0).
//! Must not: advertise a version a handler cannot decode and answer.

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};

use super::header::RequestHeader;
use super::{encode_response, ProtocolError, ResponseFrame};
use crate::error_code;

/// (API, lowest version, highest version) that weir answers.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // Hand-parsed (protocol::produce). v0–2 are answered for record batches v2 only (older
    // message formats get UNSUPPORTED_FOR_MESSAGE_FORMAT), because older librdkafka
    // (1.9.2's source; Debian's kcat with 2.0.2) compresses with gzip, snappy or lz4 only if the
    // broker's Produce range includes v0: against a 3–9 range it silently sent uncompressed.
    (ApiKey::Produce, 0, 9),
    // Hand-encoded response (protocol::fetch); v13+ address topics by id.
    (ApiKey::Fetch, 4, 12),
    (ApiKey::ListOffsets, 1, 6),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::InitProducerId, 0, 4),
    // v6 addresses topics by id.
    (ApiKey::DeleteTopics, 1, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    // The classic group protocol (broker::groups). v5+ of FindCoordinator and v9 of
    // OffsetCommit/OffsetFetch belong to transactions' and KIP-848's protocols. JoinGroup v8 adds
    // the member's reason (KIP-800, logged), v9 the response's skip_assignment (KIP-814, always
    // false: a static leader rejoining a Stable group is answered without the member list).
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 4),
    (ApiKey::OffsetCommit, 2, 8),
    (ApiKey::OffsetFetch, 1, 8),
    // v5 of ListGroups filters by group type (KIP-848); v6 of DescribeGroups adds error messages.
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
];

/// The supported range of `key`, if any.
pub fn supported(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, min, max)| (*min, *max))
}

/// Whether `key` at `version` is answered.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported(key).is_some_and(|(min, max)| (min..=max).contains(&version))
}

/// A short name for logs and errors.
pub fn api_name(key: ApiKey) -> &'static str {
    match key {
        ApiKey::Produce => "Produce",
        ApiKey::Fetch => "Fetch",
        ApiKey::ListOffsets => "ListOffsets",
        ApiKey::Metadata => "Metadata",
        ApiKey::ApiVersions => "ApiVersions",
        ApiKey::CreateTopics => "CreateTopics",
        ApiKey::DeleteTopics => "DeleteTopics",
        ApiKey::InitProducerId => "InitProducerId",
        ApiKey::DescribeConfigs => "DescribeConfigs",
        ApiKey::DescribeCluster => "DescribeCluster",
        ApiKey::CreatePartitions => "CreatePartitions",
        ApiKey::AlterConfigs => "AlterConfigs",
        ApiKey::IncrementalAlterConfigs => "IncrementalAlterConfigs",
        ApiKey::FindCoordinator => "FindCoordinator",
        ApiKey::JoinGroup => "JoinGroup",
        ApiKey::SyncGroup => "SyncGroup",
        ApiKey::Heartbeat => "Heartbeat",
        ApiKey::LeaveGroup => "LeaveGroup",
        ApiKey::OffsetCommit => "OffsetCommit",
        ApiKey::OffsetFetch => "OffsetFetch",
        ApiKey::ListGroups => "ListGroups",
        ApiKey::DescribeGroups => "DescribeGroups",
        ApiKey::DeleteGroups => "DeleteGroups",
        ApiKey::OffsetDelete => "OffsetDelete",
        _ => "other",
    }
}

/// Answers an ApiVersions request of any version (the body is not needed: v3's client software
/// name and version are informational).
pub fn respond<X: std::ops::Deref<Target = [u8]>>(
    header: &RequestHeader,
) -> Result<ResponseFrame<X>, ProtocolError> {
    let api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*min)
                .with_max_version(*max)
        })
        .collect();
    // Defaults leave every tagged field out (supported_features empty, finalized_features_epoch
    // -1, finalized_features empty, zk_migration_ready false): see the module header.
    let response = ApiVersionsResponse::default().with_api_keys(api_keys);
    if is_supported(ApiKey::ApiVersions, header.api_version) {
        encode_response(header, &response)
    } else {
        let v0 = RequestHeader {
            api_version: 0,
            ..header.clone()
        };
        encode_response(
            &v0,
            &response.with_error_code(error_code::UNSUPPORTED_VERSION),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::protocol::Decodable;

    fn header(version: i16) -> RequestHeader {
        RequestHeader {
            api_key: ApiKey::ApiVersions,
            api_version: version,
            correlation_id: 42,
            client_id: None,
        }
    }

    #[test]
    fn v3_response_has_no_tagged_fields_and_decodes() {
        let frame = respond::<Bytes>(&header(3)).unwrap().to_vec();
        // size, correlation id (response header v0 even for flexible ApiVersions), body.
        assert_eq!(&frame[4..8], &42i32.to_be_bytes());
        assert_eq!(
            *frame.last().unwrap(),
            0,
            "the top-level tagged-field count is 0"
        );
        let mut body = Bytes::copy_from_slice(&frame[8..]);
        let r = ApiVersionsResponse::decode(&mut body, 3).unwrap();
        assert_eq!(r.error_code, 0);
        assert_eq!(r.api_keys.len(), SUPPORTED.len());
        assert!(r.unknown_tagged_fields.is_empty() && r.supported_features.is_empty());
    }

    #[test]
    fn unsupported_version_falls_back_to_v0_with_the_table() {
        let frame = respond::<Bytes>(&header(99)).unwrap().to_vec();
        let mut body = Bytes::copy_from_slice(&frame[8..]);
        let r = ApiVersionsResponse::decode(&mut body, 0).unwrap();
        assert_eq!(r.error_code, error_code::UNSUPPORTED_VERSION);
        assert!(body.is_empty(), "v0 layout exactly");
        assert!(r
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 3));
    }
}
