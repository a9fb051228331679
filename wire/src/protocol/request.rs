//! The decode entry point: everything the broker does to a request frame's bytes before it
//! touches any state — header, API and version check, the array-length guard, and the body
//! decoder of every supported API (the hand-written Produce parser and the `kafka-protocol`
//! decoders of the control plane).
//!
//! Owns the order of those steps (the map from API to body decoder is the API table's, `apis`).
//! The broker's dispatch
//! stage calls [`decode_request`] and nothing else on a frame; the fuzz target (`fuzz/`) and the
//! corpus test (`wire/tests/decoder_corpus.rs`) call the same function, so what they exercise is
//! exactly what a connection's bytes go through. Must not: touch state, allocate from a length the
//! frame cannot back, or panic on any input (every failure is a [`ProtocolError`], and the broker
//! closes the connection that sent it).

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;

pub use super::apis::RequestBody;
use super::header::{parse_request, RequestHeader};
use super::{api_versions, apis, guard, ProtocolError};

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
    // ApiVersions is answered at any version (an unsupported one in v0: see `api_versions`).
    if key != ApiKey::ApiVersions && !api_versions::is_supported(key, v) {
        return Err(ProtocolError::UnsupportedVersion {
            api_key: key as i16,
            version: v,
        });
    }
    guard::check(key, v, &req.body)?;
    let body = apis::decode_body_of(key, v, req.body)?;
    Ok(DecodedRequest { header, body })
}
