//! conn — one Kafka request at a time on one connection, the client's only codec path: request
//! frames (size, header, body), response headers and correlation ids, typed calls
//! (`kafka_protocol`'s `Request` → its `Response`), and the I/O drivers they run on: any
//! `AsyncRead + AsyncWrite` (glommio sockets in the producer, consumer and async users) and
//! [`BlockingConn`] (a `std` socket with timeouts, driven to completion by
//! `futures::executor::block_on`) for command-line tools. Both drivers run the same
//! [`exchange`], so a request is encoded and its answer checked one way.
//!
//! Owns framing, correlation and decoding. Must not keep state between calls beyond a
//! connection's next correlation id (the producer and consumer own their connections), and must
//! not trust the network: every size, correlation id and body is checked and turned into a
//! [`WireError`], never a panic.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use ::wire::protocol::frame::{read_frame, REQUEST_BYTES_MAX_DEFAULT};
use bytes::{Bytes, BytesMut};
use futures::io::AllowStdIo;
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

/// Errors of the shared wire code.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("metadata: {0}")]
    Metadata(String),
}

/// A size-prefixed request frame.
pub fn request_frame(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &impl Encodable,
) -> Result<Bytes, WireError> {
    let header = RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut out = BytesMut::with_capacity(256);
    out.extend_from_slice(&[0; 4]);
    header
        .encode(&mut out, api.request_header_version(version))
        .map_err(|e| WireError::Protocol(format!("{api:?} request header: {e:#}")))?;
    body.encode(&mut out, version)
        .map_err(|e| WireError::Protocol(format!("{api:?} v{version} request: {e:#}")))?;
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out.freeze())
}

/// Splits a response frame into its correlation id and body.
pub fn response_body(api: ApiKey, version: i16, frame: Bytes) -> Result<(i32, Bytes), WireError> {
    let mut frame = frame;
    let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
        .map_err(|e| WireError::Protocol(format!("{api:?} response header: {e:#}")))?;
    Ok((header.correlation_id, frame))
}

/// Sends one request and reads its response body (one request at a time on `stream`).
pub async fn exchange<S: AsyncRead + AsyncWrite + Unpin, R: Decodable>(
    stream: &mut S,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body: &impl Encodable,
) -> Result<R, WireError> {
    let frame = request_frame(api, version, correlation_id, client_id, body)?;
    stream
        .write_all(&frame)
        .await
        .map_err(|source| WireError::Io {
            what: format!("sending {api:?}"),
            source,
        })?;
    let frame = read_frame(stream, REQUEST_BYTES_MAX_DEFAULT)
        .await
        .map_err(|e| WireError::Protocol(format!("reading a {api:?} response: {e}")))?
        .ok_or_else(|| WireError::Protocol(format!("connection closed before {api:?}")))?;
    let (correlation, mut body) = response_body(api, version, frame)?;
    if correlation != correlation_id {
        return Err(WireError::Protocol(format!(
            "{api:?} response {correlation} to request {correlation_id}"
        )));
    }
    R::decode(&mut body, version)
        .map_err(|e| WireError::Protocol(format!("decoding {api:?} v{version}: {e:#}")))
}

/// Sends the typed `request` at `version` and decodes its typed response (one request at a time
/// on `stream`): [`exchange`] with the API key taken from the request's type.
pub async fn call<S: AsyncRead + AsyncWrite + Unpin, R: Request>(
    stream: &mut S,
    version: i16,
    correlation_id: i32,
    client_id: &str,
    request: &R,
) -> Result<R::Response, WireError> {
    let api = ApiKey::try_from(R::KEY)
        .map_err(|()| WireError::Protocol(format!("api key {} is not Kafka's", R::KEY)))?;
    exchange(stream, api, version, correlation_id, client_id, request).await
}

/// A connection that numbers its requests: the state a client keeps per connection, whatever
/// drives its I/O.
pub struct Conn<S> {
    stream: S,
    correlation_id: i32,
    client_id: String,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub fn new(stream: S, client_id: &str) -> Conn<S> {
        Conn {
            stream,
            correlation_id: 0,
            client_id: client_id.to_string(),
        }
    }

    /// The correlation id of the next request (ids wrap, as Kafka's clients' do).
    pub fn next_correlation_id(&mut self) -> i32 {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        self.correlation_id
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The socket, for an exchange this type does not wrap (the caller numbers it with
    /// [`Conn::next_correlation_id`]).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Sends `request` at `version` and decodes its response.
    pub async fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, WireError> {
        let correlation_id = self.next_correlation_id();
        call(
            &mut self.stream,
            version,
            correlation_id,
            &self.client_id,
            request,
        )
        .await
    }
}

/// The blocking driver's socket: a `std` TCP stream with read and write timeouts, polled by
/// `block_on` (a read that would block blocks the thread, at most for the timeout).
pub type BlockingStream = AllowStdIo<TcpStream>;

/// A connection on the blocking driver, for command-line tools and set-up before a run.
pub type BlockingConn = Conn<BlockingStream>;

impl Conn<BlockingStream> {
    /// Connects to `addr` (`host:port`; each address it resolves to is tried in turn, each for
    /// at most `timeout`), with `timeout` on every later read and write.
    pub fn connect(
        addr: &str,
        timeout: Duration,
        client_id: &str,
    ) -> Result<BlockingConn, WireError> {
        let io = |what: String| move |source| WireError::Io { what, source };
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(io(format!("resolving {addr}")))?
            .collect();
        let mut last = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, timeout) {
                Ok(stream) => {
                    stream
                        .set_read_timeout(Some(timeout))
                        .map_err(io("socket timeout".into()))?;
                    stream
                        .set_write_timeout(Some(timeout))
                        .map_err(io("socket timeout".into()))?;
                    return Ok(Conn::new(AllowStdIo::new(stream), client_id));
                }
                Err(e) => last = Some(e),
            }
        }
        match last {
            Some(source) => Err(WireError::Io {
                what: format!("connecting to {addr}"),
                source,
            }),
            None => Err(WireError::Metadata(format!("{addr} resolves to nothing"))),
        }
    }

    /// [`Conn::call`], run to completion on this thread.
    pub fn call_blocking<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, WireError> {
        futures::executor::block_on(self.call(request, version))
    }
}

/// Resolves `host:port` to its first address.
pub fn resolve(addr: &str) -> Result<SocketAddr, WireError> {
    addr.to_socket_addrs()
        .map_err(|source| WireError::Io {
            what: format!("resolving {addr}"),
            source,
        })?
        .next()
        .ok_or_else(|| WireError::Metadata(format!("{addr} resolves to nothing")))
}
