//! wire — what the bench producer and consumer share on the wire: request frames, response
//! headers, Metadata (the leader of each partition and where each broker listens), and the
//! process-wide microsecond clock that end-to-end latency is measured with.
//!
//! Owns framing and Metadata only. Must not keep connections or state between calls: the producer
//! and consumer own their connections.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ::wire::protocol::frame::{read_frame, REQUEST_BYTES_MAX_DEFAULT};
use bytes::{Bytes, BytesMut};
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub const METADATA_VERSION: i16 = 4;

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

/// What Metadata says about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// node id → address, for every broker in the answer.
    pub brokers: HashMap<i32, SocketAddr>,
    /// Leader node id of each partition (-1: none right now).
    pub leaders: Vec<i32>,
}

impl TopicMeta {
    pub fn partitions(&self) -> u32 {
        self.leaders.len() as u32
    }

    /// The address of `partition`'s leader, if it has one the answer located.
    pub fn leader_addr(&self, partition: u32) -> Option<(i32, SocketAddr)> {
        let node = *self.leaders.get(partition as usize)?;
        self.brokers.get(&node).map(|a| (node, *a))
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

/// One Metadata exchange for `topic` (auto-creating it if the broker does). A topic or partition
/// error (an auto-created topic not ready yet, a partition without leader) is an `Err` so the
/// caller can ask again.
pub async fn topic_metadata<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    topic: &str,
    correlation_id: i32,
    client_id: &str,
) -> Result<TopicMeta, WireError> {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
            TopicName(StrBytes::from_string(topic.to_string())),
        ))]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = exchange(
        stream,
        ApiKey::Metadata,
        METADATA_VERSION,
        correlation_id,
        client_id,
        &request,
    )
    .await?;
    let t = response
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
        .ok_or_else(|| WireError::Metadata(format!("no topic {topic} in the answer")))?;
    if t.error_code != 0 || t.partitions.is_empty() {
        return Err(WireError::Metadata(format!(
            "topic {topic}: error code {}",
            t.error_code
        )));
    }
    let mut brokers = HashMap::new();
    for b in &response.brokers {
        let port = u16::try_from(b.port)
            .map_err(|_| WireError::Metadata(format!("broker port {}", b.port)))?;
        if let Some(addr) = (b.host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
        {
            brokers.insert(b.node_id.0, addr);
        }
    }
    let count = t.partitions.len();
    let mut leaders = vec![-1; count];
    for p in &t.partitions {
        let index = usize::try_from(p.partition_index)
            .ok()
            .filter(|&i| i < count)
            .ok_or_else(|| {
                WireError::Metadata(format!("partition index {} of {count}", p.partition_index))
            })?;
        leaders[index] = if p.error_code == 0 { p.leader_id.0 } else { -1 };
    }
    Ok(TopicMeta { brokers, leaders })
}

/// Metadata of `topic` by blocking I/O (before a run starts): asks up to 20 times, 100 ms apart,
/// until every partition has a leader the answer locates (auto-created topics take a moment).
pub fn initial_metadata(
    bootstrap: &str,
    topic: &str,
    client_id: &str,
    timeout: Duration,
) -> Result<TopicMeta, WireError> {
    let addr = resolve(bootstrap)?;
    let io = |what: String| move |source| WireError::Io { what, source };
    let stream = std::net::TcpStream::connect_timeout(&addr, timeout)
        .map_err(io(format!("connecting {addr}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(io("socket timeout".into()))?;
    let mut stream = futures::io::AllowStdIo::new(stream);
    let mut last = None;
    for attempt in 0..20 {
        match futures::executor::block_on(topic_metadata(&mut stream, topic, attempt, client_id)) {
            Ok(meta) if (0..meta.partitions()).all(|p| meta.leader_addr(p).is_some()) => {
                return Ok(meta)
            }
            Ok(meta) => {
                last = Some(WireError::Metadata(format!(
                    "topic {topic}: partitions without a located leader: {:?}",
                    meta.leaders
                )))
            }
            Err(e @ WireError::Metadata(_)) => last = Some(e),
            Err(e) => return Err(e),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(last.unwrap_or_else(|| WireError::Metadata("no answer".into())))
}

/// Microseconds since the Unix epoch on a clock shared by the whole process: the wall clock read
/// once, advanced by a monotonic `Instant`. Producer and consumer in one process (`weir bench
/// e2e`) therefore agree exactly; across processes on one host they agree as the wall clock does.
pub fn epoch_us() -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (instant, wall) = ANCHOR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        (Instant::now(), wall)
    });
    wall + instant.elapsed().as_micros() as u64
}
