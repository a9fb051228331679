//! Request headers (v1: api key, version, correlation id, client id; v2 adds tagged fields) and
//! response headers (v0: correlation id; v1 adds tagged fields).
//!
//! Owns which header version each request and response uses (from the `kafka-protocol` crate's
//! generated tables). Must not decide whether a version is supported (see `api_versions`).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;

use super::wire::Reader;
use super::ProtocolError;

/// A parsed request header.
#[derive(Debug, Clone)]
pub struct RequestHeader {
    pub api_key: ApiKey,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
}

/// A request frame split into its header and its body (a slice of the frame).
#[derive(Debug)]
pub struct Request {
    pub header: RequestHeader,
    pub body: Bytes,
}

/// Parses the header of one request frame.
pub fn parse_request(frame: Bytes) -> Result<Request, ProtocolError> {
    let mut r = Reader::new(frame);
    let key = r.i16()?;
    let api_version = r.i16()?;
    let correlation_id = r.i32()?;
    let api_key = ApiKey::try_from(key).map_err(|_| ProtocolError::UnknownApiKey(key))?;
    let header_version = api_key.request_header_version(api_version.max(0));
    let client_id = if header_version >= 1 {
        r.nullable_string()?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    } else {
        None
    };
    if header_version >= 2 {
        r.skip_tagged_fields()?;
    }
    Ok(Request {
        header: RequestHeader {
            api_key,
            api_version,
            correlation_id,
            client_id,
        },
        body: r.into_rest(),
    })
}

/// Encodes a response header for `api_key`/`api_version` into `out`.
pub fn put_response_header(
    out: &mut BytesMut,
    api_key: ApiKey,
    api_version: i16,
    correlation_id: i32,
) {
    out.put_i32(correlation_id);
    if api_key.response_header_version(api_version) >= 1 {
        out.put_u8(0); // no tagged fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_v1_and_v2_parse_and_garbage_is_refused() {
        // Metadata v9 (flexible: header v2), correlation 7, client "ab", no tags, body [1, 2].
        let frame = Bytes::from_static(&[0, 3, 0, 9, 0, 0, 0, 7, 0, 2, b'a', b'b', 0, 1, 2]);
        let req = parse_request(frame).unwrap();
        assert_eq!(req.header.api_key, ApiKey::Metadata);
        assert_eq!(req.header.correlation_id, 7);
        assert_eq!(req.header.client_id.as_deref(), Some("ab"));
        assert_eq!(&req.body[..], &[1, 2]);
        // Metadata v1 (header v1): no tagged-field byte.
        let frame = Bytes::from_static(&[0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff, 9]);
        let req = parse_request(frame).unwrap();
        assert_eq!(req.header.client_id, None);
        assert_eq!(&req.body[..], &[9]);
        assert!(matches!(
            parse_request(Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 0])),
            Err(ProtocolError::UnknownApiKey(_))
        ));
        assert!(parse_request(Bytes::from_static(&[0, 3, 0])).is_err());
    }
}
