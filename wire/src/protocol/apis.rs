//! The one table of Kafka APIs weir answers. Each row names an API (its `ApiKey` variant), the
//! versions answered, the request message on the wire (the `kafka-protocol` type, for tests), the
//! type its body is decoded into, its decoder and its pre-decode array guard (`guard`).
//!
//! From the table come: the [`RequestBody`] enum, the decode arm of
//! `request::decode_request` ([`decode_body_of`]), `api_versions::SUPPORTED` (the ApiVersions
//! answer), `api_versions::api_name`, the guard's choice of layout ([`guard_layout`]) and
//! [`RequestBody::dispatch`], which hands each body to its handler: a [`Handle`] impl the broker
//! writes per body type, so an API without a handler does not compile.
//!
//! Adding an API: one row here (plus its layout in `guard.rs` if its body holds arrays), and one
//! `Handle` impl in the broker's handler file for it. A later authorisation column (the resource
//! and operation each API needs) goes here too, and `dispatch` checks it before any handler runs.
//! Must not: know what a handler does (the broker implements `Handle`), or list an API twice.

use bytes::Bytes;
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteGroupsRequest,
    DeleteTopicsRequest, DescribeClusterRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, HeartbeatRequest, IncrementalAlterConfigsRequest,
    InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, SyncGroupRequest,
};

use super::api_versions::ApiVersionsBody;
use super::{guard, produce, ProtocolError};

/// What the broker does with one decoded body of type `Body`: one impl per API, called by
/// [`RequestBody::dispatch`]. `Self` carries what every handler gets (the broker, the connection,
/// the request header); `Output` is the same for every API of one dispatcher.
pub trait Handle<Body> {
    type Output;
    fn handle(self, body: Body) -> Self::Output;
}

/// The body decoders a row may name; each has the same shape so the table can call any.
mod decode {
    use super::*;

    /// The `kafka-protocol` crate's decoder (after the guard refused lying array lengths).
    pub fn kafka<T: kafka_protocol::protocol::Decodable>(
        api: &'static str,
        version: i16,
        body: Bytes,
    ) -> Result<T, ProtocolError> {
        super::super::decode_body(api, version, body)
    }

    /// The hand-written Produce parser (record sets stay slices of the frame).
    pub fn produce(
        _api: &'static str,
        version: i16,
        body: Bytes,
    ) -> Result<produce::ProduceRequest, ProtocolError> {
        produce::parse(body, version)
    }

    /// Left unread (ApiVersions: see `api_versions`).
    pub fn unread(
        _api: &'static str,
        _version: i16,
        _body: Bytes,
    ) -> Result<ApiVersionsBody, ProtocolError> {
        Ok(ApiVersionsBody)
    }
}

/// Expands the table (below) into the types and functions named in the module header.
macro_rules! kafka_apis {
    ($(
        $name:ident [$min:literal, $max:literal] $message:ident => $body:ty,
            decode: $decode:path, guard: $guard:expr;
    )*) => {
        /// The decoded body of a request weir answers: one variant per API of the table, named
        /// as its `ApiKey`.
        #[derive(Debug)]
        pub enum RequestBody {
            $( $name($body), )*
        }

        impl RequestBody {
            /// The API this body belongs to.
            pub fn api_key(&self) -> ApiKey {
                match self {
                    $( RequestBody::$name(_) => ApiKey::$name, )*
                }
            }

            /// Hands the body to `handler`'s impl of [`Handle`] for its type.
            pub fn dispatch<H, O>(self, handler: H) -> O
            where
                H: $( Handle<$body, Output = O> + )* Sized,
            {
                match self {
                    $( RequestBody::$name(body) => <H as Handle<$body>>::handle(handler, body), )*
                }
            }
        }

        /// (API, lowest version, highest version) that weir answers, in the table's order.
        pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[ $( (ApiKey::$name, $min, $max), )* ];

        /// The API's name as the table spells it (its `ApiKey` variant), if weir answers it.
        pub fn name_of(key: ApiKey) -> Option<&'static str> {
            match key {
                $( ApiKey::$name => Some(stringify!($name)), )*
                _ => None,
            }
        }

        /// Decodes the body of `key` v`version` with the table's decoder. The caller checked the
        /// version and ran the guard.
        pub fn decode_body_of(
            key: ApiKey,
            version: i16,
            body: Bytes,
        ) -> Result<RequestBody, ProtocolError> {
            match key {
                $( ApiKey::$name => Ok(RequestBody::$name($decode(stringify!($name), version, body)?)), )*
                other => Err(ProtocolError::UnsupportedVersion {
                    api_key: other as i16,
                    version,
                }),
            }
        }

        /// The guard's layout of `key`'s body, if its body is walked before decoding.
        pub fn guard_layout(key: ApiKey) -> Option<guard::Layout> {
            match key {
                $( ApiKey::$name => $guard, )*
                _ => None,
            }
        }

        /// A default request of `key` encoded at `version` by the `kafka-protocol` crate (tests).
        #[cfg(test)]
        pub(crate) fn encode_default_request(
            key: ApiKey,
            version: i16,
            out: &mut bytes::BytesMut,
        ) -> Option<Result<(), String>> {
            use kafka_protocol::protocol::Encodable;
            match key {
                $( ApiKey::$name =>
                    Some(kafka_protocol::messages::$message::default()
                        .encode(out, version)
                        .map_err(|e| format!("{e:#}"))), )*
                _ => None,
            }
        }
    };
}

// The table. Its order is that of the ApiVersions answer.
kafka_apis! {
    // Hand-parsed (protocol::produce). v0–2 are answered for record batches v2 only (older message
    // formats get UNSUPPORTED_FOR_MESSAGE_FORMAT), because older librdkafka (1.9.2's source;
    // Debian's kcat with 2.0.2) compresses with gzip, snappy or lz4 only if the broker's Produce
    // range includes v0: against a 3–9 range it silently sent uncompressed.
    Produce [0, 9] ProduceRequest => produce::ProduceRequest,
        decode: decode::produce, guard: None;
    // Hand-encoded response (protocol::fetch); v13+ address topics by id.
    Fetch [4, 12] FetchRequest => FetchRequest,
        decode: decode::kafka, guard: Some(guard::fetch);
    ListOffsets [1, 6] ListOffsetsRequest => ListOffsetsRequest,
        decode: decode::kafka, guard: Some(guard::list_offsets);
    Metadata [0, 12] MetadataRequest => MetadataRequest,
        decode: decode::kafka, guard: Some(guard::metadata);
    // Any version is answered (an unsupported one in v0: see api_versions), the body unread.
    ApiVersions [0, 3] ApiVersionsRequest => ApiVersionsBody,
        decode: decode::unread, guard: None;
    CreateTopics [2, 7] CreateTopicsRequest => CreateTopicsRequest,
        decode: decode::kafka, guard: Some(guard::create_topics);
    InitProducerId [0, 4] InitProducerIdRequest => InitProducerIdRequest,
        decode: decode::kafka, guard: None;
    // v6 addresses topics by id.
    DeleteTopics [1, 5] DeleteTopicsRequest => DeleteTopicsRequest,
        decode: decode::kafka, guard: Some(guard::delete_topics);
    DescribeConfigs [1, 4] DescribeConfigsRequest => DescribeConfigsRequest,
        decode: decode::kafka, guard: Some(guard::describe_configs);
    DescribeCluster [0, 1] DescribeClusterRequest => DescribeClusterRequest,
        decode: decode::kafka, guard: None;
    CreatePartitions [0, 3] CreatePartitionsRequest => CreatePartitionsRequest,
        decode: decode::kafka, guard: Some(guard::create_partitions);
    AlterConfigs [0, 2] AlterConfigsRequest => AlterConfigsRequest,
        decode: decode::kafka, guard: Some(guard::alter_configs);
    IncrementalAlterConfigs [0, 1] IncrementalAlterConfigsRequest => IncrementalAlterConfigsRequest,
        decode: decode::kafka, guard: Some(guard::incremental_alter_configs);
    // The classic group protocol (the broker's groups). v5+ of FindCoordinator and v9 of
    // OffsetCommit/OffsetFetch belong to transactions' and KIP-848's protocols. JoinGroup v8 adds
    // the member's reason (KIP-800, logged), v9 the response's skip_assignment (KIP-814, always
    // false: a static leader rejoining a Stable group is answered without the member list).
    FindCoordinator [0, 4] FindCoordinatorRequest => FindCoordinatorRequest,
        decode: decode::kafka, guard: Some(guard::find_coordinator);
    JoinGroup [0, 9] JoinGroupRequest => JoinGroupRequest,
        decode: decode::kafka, guard: Some(guard::join_group);
    SyncGroup [0, 5] SyncGroupRequest => SyncGroupRequest,
        decode: decode::kafka, guard: Some(guard::sync_group);
    Heartbeat [0, 4] HeartbeatRequest => HeartbeatRequest,
        decode: decode::kafka, guard: None;
    LeaveGroup [0, 4] LeaveGroupRequest => LeaveGroupRequest,
        decode: decode::kafka, guard: Some(guard::leave_group);
    OffsetCommit [2, 8] OffsetCommitRequest => OffsetCommitRequest,
        decode: decode::kafka, guard: Some(guard::offset_commit);
    OffsetFetch [1, 8] OffsetFetchRequest => OffsetFetchRequest,
        decode: decode::kafka, guard: Some(guard::offset_fetch);
    // v5 of ListGroups filters by group type (KIP-848); v6 of DescribeGroups adds error messages.
    ListGroups [0, 4] ListGroupsRequest => ListGroupsRequest,
        decode: decode::kafka, guard: Some(guard::list_groups);
    DescribeGroups [0, 5] DescribeGroupsRequest => DescribeGroupsRequest,
        decode: decode::kafka, guard: Some(guard::describe_groups);
    DeleteGroups [0, 2] DeleteGroupsRequest => DeleteGroupsRequest,
        decode: decode::kafka, guard: Some(guard::delete_groups);
    OffsetDelete [0, 0] OffsetDeleteRequest => OffsetDeleteRequest,
        decode: decode::kafka, guard: Some(guard::offset_delete);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::api_versions;
    use crate::protocol::header::RequestHeader;
    use crate::protocol::request::decode_request;
    use bytes::BytesMut;
    use kafka_protocol::messages::ApiVersionsResponse;
    use kafka_protocol::protocol::Decodable;
    use std::collections::HashSet;

    /// A request frame (after the size prefix): header of the right version, then `body`.
    fn frame(key: ApiKey, version: i16, body: &[u8]) -> Bytes {
        let mut f = Vec::new();
        f.extend_from_slice(&(key as i16).to_be_bytes());
        f.extend_from_slice(&version.to_be_bytes());
        f.extend_from_slice(&7i32.to_be_bytes());
        if key.request_header_version(version) >= 1 {
            f.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
        }
        if key.request_header_version(version) >= 2 {
            f.push(0); // no tagged fields
        }
        f.extend_from_slice(body);
        Bytes::from(f)
    }

    /// A default (empty) request body of `key` v`version`, encoded by the `kafka-protocol` crate,
    /// except Produce v0–2, which the crate no longer encodes (KIP-896): acks, timeout, no topics.
    fn default_body(key: ApiKey, version: i16) -> BytesMut {
        let mut body = BytesMut::new();
        if key == ApiKey::Produce && version < 3 {
            body.extend_from_slice(&1i16.to_be_bytes());
            body.extend_from_slice(&1000i32.to_be_bytes());
            body.extend_from_slice(&0i32.to_be_bytes());
            return body;
        }
        encode_default_request(key, version, &mut body)
            .expect("every table row names a request message")
            .unwrap_or_else(|e| panic!("encoding {key:?} v{version}: {e}"));
        body
    }

    /// The APIs and ranges the ApiVersions response advertises, as a client reads them.
    fn advertised() -> Vec<(ApiKey, i16, i16)> {
        let header = RequestHeader {
            api_key: ApiKey::ApiVersions,
            api_version: 3,
            correlation_id: 1,
            client_id: None,
        };
        let wire = api_versions::respond::<Bytes>(&header).unwrap().to_vec();
        let mut body = Bytes::copy_from_slice(&wire[8..]);
        let response = ApiVersionsResponse::decode(&mut body, 3).unwrap();
        response
            .api_keys
            .iter()
            .map(|k| {
                let key = ApiKey::try_from(k.api_key).unwrap();
                (key, k.min_version, k.max_version)
            })
            .collect()
    }

    #[test]
    fn every_advertised_version_decodes_a_default_request_into_its_own_variant() {
        let advertised = advertised();
        assert_eq!(advertised, SUPPORTED, "ApiVersions answers the table");
        for (key, min, max) in advertised {
            for version in min..=max {
                let body = default_body(key, version);
                let decoded = decode_request(frame(key, version, &body))
                    .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
                assert_eq!(decoded.body.api_key(), key, "v{version}");
                assert_eq!(decoded.header.api_key, key);
            }
            // Just outside the range: refused before any decoder runs (ApiVersions excepted).
            if key != ApiKey::ApiVersions {
                let r = decode_request(frame(key, max + 1, &[]));
                assert!(
                    matches!(r, Err(ProtocolError::UnsupportedVersion { .. })),
                    "{key:?} v{}: {r:?}",
                    max + 1
                );
            }
        }
    }

    #[test]
    fn the_table_names_each_api_once_and_its_names_are_the_api_keys() {
        let keys: HashSet<ApiKey> = SUPPORTED.iter().map(|(k, _, _)| *k).collect();
        assert_eq!(keys.len(), SUPPORTED.len(), "an API listed twice");
        for (key, min, max) in SUPPORTED {
            assert!(min <= max && *min >= 0, "{key:?}");
            let name = name_of(*key).unwrap();
            assert_eq!(format!("{key:?}"), name);
            assert_eq!(api_versions::api_name(*key), name);
        }
        assert_eq!(name_of(ApiKey::SaslHandshake), None);
        assert_eq!(api_versions::api_name(ApiKey::SaslHandshake), "other");
    }

    /// A dispatcher that reports which handler ran.
    struct Probe;
    macro_rules! probe {
        ($($body:ty => $name:literal),* $(,)?) => {
            $( impl Handle<$body> for Probe {
                type Output = &'static str;
                fn handle(self, _body: $body) -> &'static str { $name }
            } )*
        };
    }
    probe! {
        produce::ProduceRequest => "Produce", FetchRequest => "Fetch",
        ListOffsetsRequest => "ListOffsets", MetadataRequest => "Metadata",
        ApiVersionsBody => "ApiVersions", CreateTopicsRequest => "CreateTopics",
        InitProducerIdRequest => "InitProducerId", DeleteTopicsRequest => "DeleteTopics",
        DescribeConfigsRequest => "DescribeConfigs", DescribeClusterRequest => "DescribeCluster",
        CreatePartitionsRequest => "CreatePartitions", AlterConfigsRequest => "AlterConfigs",
        IncrementalAlterConfigsRequest => "IncrementalAlterConfigs",
        FindCoordinatorRequest => "FindCoordinator", JoinGroupRequest => "JoinGroup",
        SyncGroupRequest => "SyncGroup", HeartbeatRequest => "Heartbeat",
        LeaveGroupRequest => "LeaveGroup", OffsetCommitRequest => "OffsetCommit",
        OffsetFetchRequest => "OffsetFetch", ListGroupsRequest => "ListGroups",
        DescribeGroupsRequest => "DescribeGroups", DeleteGroupsRequest => "DeleteGroups",
        OffsetDeleteRequest => "OffsetDelete",
    }

    #[test]
    fn dispatch_hands_each_body_to_the_handler_of_its_type() {
        for (key, min, _) in SUPPORTED {
            let body = default_body(*key, *min);
            let decoded = decode_request(frame(*key, *min, &body)).unwrap();
            assert_eq!(decoded.body.dispatch(Probe), name_of(*key).unwrap());
        }
    }
}
