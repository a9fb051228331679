//! The Kafka wire protocol: frames, request headers, the table of APIs (`apis`: versions, body
//! types, decoders, guards, dispatch), the hand-written hot paths
//! (the Produce request parser and the Fetch response encoder), the decode entry point
//! (`request::decode_request`, the one function the broker runs on a request frame's bytes) and
//! the response frame type.
//!
//! Owns: byte layouts and version rules. Control-plane messages are decoded and encoded with the
//! `kafka-protocol` crate; Produce requests and Fetch responses are hand-written so that record
//! bytes are never copied (a Produce request's records are `Bytes` slices of the request frame, a
//! Fetch response's records are the log's own buffers).
//! Must not: do I/O beyond reading one frame from a stream, know about shards, logs or the
//! coordinator, or panic on any input (everything from the network is fallible).

pub mod api_versions;
pub mod apis;
pub mod fetch;
pub mod frame;
pub mod guard;
pub mod header;
pub mod produce;
pub mod request;
pub mod wire;

use bytes::Bytes;

use std::ops::Deref;

/// A request or frame the protocol layer refuses; the connection that sent it is closed.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame of {size} bytes exceeds socket.request.max.bytes = {max}")]
    FrameTooLarge { size: i64, max: usize },
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("unsupported version {version} of API key {api_key}")]
    UnsupportedVersion { api_key: i16, version: i16 },
    #[error("cannot decode {api} v{version}: {reason}")]
    Decode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("cannot encode {api} v{version}: {reason}")]
    Encode {
        api: &'static str,
        version: i16,
        reason: String,
    },
    #[error("reading a frame: {0}")]
    Io(#[from] std::io::Error),
}

/// One piece of a response frame, written to the socket in order.
///
/// `X` is the type of record bytes the caller holds without copying (the broker's log buffers);
/// this layer only needs to see them as bytes, so it does not know what keeps them alive.
pub enum Part<X = Bytes> {
    /// Bytes the request layer encoded (headers, control-plane bodies, copies from other shards).
    Bytes(Bytes),
    /// Record bytes as their owner holds them (the log's tail cache or a DMA read buffer):
    /// written without copying.
    External(X),
}

impl<X: Deref<Target = [u8]>> Part<X> {
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Part::Bytes(b) => b,
            Part::External(x) => x,
        }
    }
}

/// A whole response: size prefix + header + body, as parts written in order.
pub struct ResponseFrame<X = Bytes> {
    pub parts: Vec<Part<X>>,
}

impl<X> Default for ResponseFrame<X> {
    fn default() -> Self {
        ResponseFrame { parts: Vec::new() }
    }
}

impl<X: Deref<Target = [u8]>> ResponseFrame<X> {
    /// A frame whose body (after the 4-byte size) is `parts`.
    pub fn from_parts(mut parts: Vec<Part<X>>) -> ResponseFrame<X> {
        let size: usize = parts.iter().map(Part::len).sum();
        let mut all = Vec::with_capacity(parts.len() + 1);
        all.push(Part::Bytes(Bytes::copy_from_slice(
            &(size as u32).to_be_bytes(),
        )));
        all.append(&mut parts);
        ResponseFrame { parts: all }
    }

    /// Total bytes including the size prefix.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Part::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The frame in one vector (tests).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        for p in &self.parts {
            v.extend_from_slice(p.as_slice());
        }
        v
    }
}

/// Decodes a control-plane request body with the `kafka-protocol` crate. Callers run
/// `guard::check` on the body first (the crate trusts array lengths when allocating).
pub fn decode_body<T: kafka_protocol::protocol::Decodable>(
    api: &'static str,
    version: i16,
    body: Bytes,
) -> Result<T, ProtocolError> {
    let mut body = body;
    T::decode(&mut body, version).map_err(|e| ProtocolError::Decode {
        api,
        version,
        reason: format!("{e:#}"),
    })
}

/// Encodes a control-plane response (header + body) into a frame.
pub fn encode_response<T: kafka_protocol::protocol::Encodable, X: Deref<Target = [u8]>>(
    header: &header::RequestHeader,
    body: &T,
) -> Result<ResponseFrame<X>, ProtocolError> {
    let mut out = bytes::BytesMut::with_capacity(64);
    header::put_response_header(
        &mut out,
        header.api_key,
        header.api_version,
        header.correlation_id,
    );
    body.encode(&mut out, header.api_version)
        .map_err(|e| ProtocolError::Encode {
            api: header_api_name(header),
            version: header.api_version,
            reason: format!("{e:#}"),
        })?;
    Ok(ResponseFrame::from_parts(vec![Part::Bytes(out.freeze())]))
}

fn header_api_name(header: &header::RequestHeader) -> &'static str {
    api_versions::api_name(header.api_key)
}
