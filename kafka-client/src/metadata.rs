//! metadata — what Metadata says about a topic ([`TopicMeta`]: where each broker listens, the
//! leader of each partition), asked once on any connection ([`topic_metadata`]) or, before a run,
//! on a blocking connection until every partition has a located leader ([`initial_metadata`]).
//!
//! Owns the Metadata request and the reading of its answer. Must not keep connections or cache
//! answers: the producer and consumer decide when to ask again.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::conn::{exchange, BlockingConn, WireError};

pub const METADATA_VERSION: i16 = 4;

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
    let mut conn = BlockingConn::connect(bootstrap, timeout, client_id)?;
    let mut last = None;
    for attempt in 0..20 {
        match futures::executor::block_on(topic_metadata(
            conn.stream_mut(),
            topic,
            attempt,
            client_id,
        )) {
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
