//! The versions weir speaks, and the ApiVersions response.
//!
//! Owns (through the API table, `apis`) what every handler must accept, and the two ApiVersions
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

/// (API, lowest version, highest version) that weir answers: the API table's (`apis`).
pub use super::apis::SUPPORTED;

/// ApiVersions' body, left unread: an unsupported version is answered in v0, and v3's client
/// software name and version are informational.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiVersionsBody;

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

/// A short name for logs and errors ("other" for an API weir does not answer).
pub fn api_name(key: ApiKey) -> &'static str {
    super::apis::name_of(key).unwrap_or("other")
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
