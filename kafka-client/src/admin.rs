//! admin — the client's admin queries, each one request (or a few) on connections the caller
//! opened, on whatever I/O driver it chose ([`crate::conn::Conn`] over a glommio socket, or a
//! [`crate::conn::BlockingConn`] through [`crate::blocking`]): the group queries
//! (FindCoordinator, ListGroups, DescribeGroups with the consumer protocol's assignments,
//! OffsetFetch, ListOffsets latest, put together as `weir group describe` shows a group), and
//! what a benchmark run needs before it starts: ApiVersions (does the target answer
//! CreateTopics?), CreateTopics and a topic's partition count.
//!
//! Owns these requests' versions and the reading of their answers. Must not open connections
//! (the driver does), print (callers decide the output), or trust the network: every error code
//! and answer from the broker is checked and turned into an [`AdminError`], never a panic.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncRead, AsyncWrite};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ConsumerProtocolAssignment, CreateTopicsRequest,
    DeleteTopicsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest,
    ListOffsetsRequest, MetadataRequest, OffsetFetchRequest, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use wire::error_code::TOPIC_ALREADY_EXISTS;

use crate::conn::{Conn, WireError};

/// Errors of the admin queries.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Wire(#[from] WireError),
    /// The broker answered `request` with an error code (and perhaps a message).
    #[error(
        "{request}: {}{}",
        error_name(*code),
        message.as_deref().map_or(String::new(), |m| format!(": {m}"))
    )]
    Refused {
        request: String,
        code: i16,
        message: Option<String>,
    },
    /// The group's coordinator could not be reached.
    #[error("the coordinator of {group} ({addr}): {source}")]
    Coordinator {
        group: String,
        addr: String,
        source: WireError,
    },
    #[error("group {0} does not exist")]
    NoSuchGroup(String),
    /// An answer that is well-formed on the wire but not what the request asks for.
    #[error("{0}")]
    BadAnswer(String),
    #[error("{what} {value} does not fit the protocol's field")]
    OutOfRange { what: &'static str, value: u64 },
}

fn refused(request: String, code: i16) -> AdminError {
    AdminError::Refused {
        request,
        code,
        message: None,
    }
}

/// Names a Kafka error code for a message: Kafka's name and the number.
pub fn error_name(code: i16) -> String {
    if code == 0 {
        return "NONE".to_string();
    }
    format!("{} ({code})", wire::error_code::name(code))
}

/// A listed group: (id, state, protocol type).
pub type Listed = (String, String, String);

/// One member of a described group.
#[derive(Debug, Clone)]
pub struct Member {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub host: String,
    /// (topic, partition) assigned; empty if the assignment is not the consumer protocol's.
    pub assigned: Vec<(String, i32)>,
    /// Why a consumer-protocol assignment could not be decoded (the rest is still shown).
    pub assignment_error: Option<String>,
}

/// One partition's committed offset, log end offset and lag.
#[derive(Debug, Clone)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// None: nothing committed.
    pub committed: Option<i64>,
    /// None: the log end offset could not be read.
    pub log_end: Option<i64>,
    /// The member the partition is assigned to.
    pub member: Option<String>,
}

impl PartitionLag {
    pub fn lag(&self) -> Option<i64> {
        Some((self.log_end? - self.committed?).max(0))
    }
}

/// A group as `weir group describe` shows it.
#[derive(Debug, Clone)]
pub struct Described {
    pub group: String,
    pub state: String,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<Member>,
    pub partitions: Vec<PartitionLag>,
}

/// Decodes Kafka's ConsumerProtocolAssignment (a version, then the struct at that version).
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<(String, i32)>, AdminError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = bytes.clone();
    if b.len() < 2 {
        return Err(AdminError::BadAnswer(format!(
            "assignment of {} bytes",
            b.len()
        )));
    }
    let version = bytes::Buf::get_i16(&mut b);
    if version < 0 {
        return Err(AdminError::BadAnswer(format!(
            "assignment version {version}"
        )));
    }
    // Newer versions only add fields at the end (Kafka decodes them with its highest version).
    let a = ConsumerProtocolAssignment::decode(&mut b, version.min(3))
        .map_err(|e| AdminError::BadAnswer(format!("decoding an assignment: {e}")))?;
    Ok(a.assigned_partitions
        .into_iter()
        .flat_map(|tp| {
            let topic = tp.topic.to_string();
            tp.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect())
}

/// Every group the broker coordinates (ListGroups v4), sorted.
pub async fn list_groups<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
) -> Result<Vec<Listed>, AdminError> {
    let resp = conn.call(&ListGroupsRequest::default(), 4).await?;
    if resp.error_code != 0 {
        return Err(refused("ListGroups".into(), resp.error_code));
    }
    let mut groups: Vec<Listed> = resp
        .groups
        .into_iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.group_state.to_string(),
                g.protocol_type.to_string(),
            )
        })
        .collect();
    groups.sort();
    Ok(groups)
}

/// The coordinator of `group` ("host:port"), FindCoordinator v3.
pub async fn find_coordinator<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    group: &str,
) -> Result<String, AdminError> {
    let req = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let resp = conn.call(&req, 3).await?;
    if resp.error_code != 0 {
        return Err(refused("FindCoordinator".into(), resp.error_code));
    }
    Ok(format!("{}:{}", resp.host, resp.port))
}

/// Describes `group`: its members and assignments (DescribeGroups v5) and committed offsets
/// (OffsetFetch v7) asked of its `coordinator` (see [`find_coordinator`]), and the log end
/// offsets (ListOffsets latest) of every partition it commits to or is assigned, asked of
/// `bootstrap` (weir is one broker).
pub async fn describe_group<S: AsyncRead + AsyncWrite + Unpin>(
    bootstrap: &mut Conn<S>,
    coordinator: &mut Conn<S>,
    group: &str,
) -> Result<Described, AdminError> {
    let gid = GroupId(StrBytes::from_string(group.to_string()));
    let resp = coordinator
        .call(
            &DescribeGroupsRequest::default().with_groups(vec![gid.clone()]),
            5,
        )
        .await?;
    let d = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| AdminError::BadAnswer("DescribeGroups answered no group".into()))?;
    if d.error_code != 0 {
        return Err(refused(format!("DescribeGroups {group}"), d.error_code));
    }
    if d.group_state.as_str() == "Dead" {
        return Err(AdminError::NoSuchGroup(group.to_string()));
    }
    let consumer = d.protocol_type.as_str() == "consumer";
    let mut members = Vec::with_capacity(d.members.len());
    for m in d.members {
        let (assigned, assignment_error) = if consumer {
            match decode_assignment(&m.member_assignment) {
                Ok(a) => (a, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            }
        } else {
            (Vec::new(), None)
        };
        members.push(Member {
            member_id: m.member_id.to_string(),
            instance_id: m.group_instance_id.map(|i| i.to_string()),
            client_id: m.client_id.to_string(),
            host: m.client_host.to_string(),
            assigned,
            assignment_error,
        });
    }

    let fetched = coordinator
        .call(
            &OffsetFetchRequest::default()
                .with_group_id(gid)
                .with_topics(None),
            7,
        )
        .await?;
    if fetched.error_code != 0 {
        return Err(refused(format!("OffsetFetch {group}"), fetched.error_code));
    }
    let mut parts: BTreeMap<(String, i32), PartitionLag> = BTreeMap::new();
    for t in fetched.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                return Err(refused(
                    format!("OffsetFetch {}-{}", t.name.as_str(), p.partition_index),
                    p.error_code,
                ));
            }
            let key = (t.name.to_string(), p.partition_index);
            parts.insert(
                key.clone(),
                PartitionLag {
                    topic: key.0,
                    partition: key.1,
                    committed: (p.committed_offset >= 0).then_some(p.committed_offset),
                    log_end: None,
                    member: None,
                },
            );
        }
    }
    for m in &members {
        for (t, p) in &m.assigned {
            parts
                .entry((t.clone(), *p))
                .or_insert_with(|| PartitionLag {
                    topic: t.clone(),
                    partition: *p,
                    committed: None,
                    log_end: None,
                    member: None,
                })
                .member = Some(m.member_id.clone());
        }
    }

    let ends = log_end_offsets(bootstrap, parts.keys()).await?;
    for (k, p) in parts.iter_mut() {
        p.log_end = ends.get(k).copied();
    }
    Ok(Described {
        group: d.group_id.to_string(),
        state: d.group_state.to_string(),
        protocol_type: d.protocol_type.to_string(),
        protocol: d.protocol_data.to_string(),
        members,
        partitions: parts.into_values().collect(),
    })
}

/// The latest offset of each partition (ListOffsets v1, timestamp -1); partitions that answer
/// an error are left out.
pub async fn log_end_offsets<'a, S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    partitions: impl Iterator<Item = &'a (String, i32)>,
) -> Result<BTreeMap<(String, i32), i64>, AdminError> {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in partitions {
        by_topic.entry(t.as_str()).or_default().push(*p);
    }
    if by_topic.is_empty() {
        return Ok(BTreeMap::new());
    }
    let topics = by_topic
        .into_iter()
        .map(|(t, ps)| {
            ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(t.to_string())))
                .with_partitions(
                    ps.into_iter()
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    let resp = conn
        .call(&ListOffsetsRequest::default().with_topics(topics), 1)
        .await?;
    let mut out = BTreeMap::new();
    for t in resp.topics {
        for p in t.partitions {
            if p.error_code == 0 {
                out.insert((t.name.to_string(), p.partition_index), p.offset);
            }
        }
    }
    Ok(out)
}

/// Whether the broker advertises `api` (ApiVersions v0), so callers can skip what a minimal
/// Kafka server (e.g. `weir bench null-sink`) does not answer.
pub async fn supports<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    api: ApiKey,
) -> Result<bool, AdminError> {
    let resp = conn.call(&ApiVersionsRequest::default(), 0).await?;
    if resp.error_code != 0 {
        return Err(refused("ApiVersions".into(), resp.error_code));
    }
    Ok(resp.api_keys.iter().any(|k| k.api_key == api as i16))
}

/// Creates `names`, each with `partitions` partitions (replication factor: the broker's
/// default, -1), CreateTopics v4 with `timeout` for the broker. A topic that already exists is
/// fine; any other error is not.
pub async fn create_topics<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    names: &[String],
    partitions: u32,
    timeout: Duration,
) -> Result<(), AdminError> {
    let partitions = i32::try_from(partitions).map_err(|_| AdminError::OutOfRange {
        what: "partitions",
        value: partitions.into(),
    })?;
    let timeout_ms = i32::try_from(timeout.as_millis()).map_err(|_| AdminError::OutOfRange {
        what: "timeout ms",
        value: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    })?;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topics(
            names
                .iter()
                .map(|n| {
                    CreatableTopic::default()
                        .with_name(TopicName(StrBytes::from_string(n.clone())))
                        .with_num_partitions(partitions)
                        .with_replication_factor(-1)
                })
                .collect(),
        );
    let resp = conn.call(&req, 4).await?;
    for t in resp.topics {
        if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
            return Err(AdminError::Refused {
                request: format!("CreateTopics {}", t.name.0.as_str()),
                code: t.error_code,
                message: t.error_message.map(|m| m.to_string()),
            });
        }
    }
    Ok(())
}

/// Deletes `names` (DeleteTopics v1, `timeout` for the broker); any error code is refused.
pub async fn delete_topics<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    names: &[String],
    timeout: Duration,
) -> Result<(), AdminError> {
    let timeout_ms = i32::try_from(timeout.as_millis()).map_err(|_| AdminError::OutOfRange {
        what: "timeout ms",
        value: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    })?;
    let req = DeleteTopicsRequest::default()
        .with_timeout_ms(timeout_ms)
        .with_topic_names(
            names
                .iter()
                .map(|n| TopicName(StrBytes::from_string(n.clone())))
                .collect(),
        );
    let resp = conn.call(&req, 1).await?;
    if let Some(bad) = resp.responses.iter().find(|r| r.error_code != 0) {
        return Err(AdminError::Refused {
            request: format!(
                "DeleteTopics {}",
                bad.name.as_ref().map_or("?", |n| n.0.as_str())
            ),
            code: bad.error_code,
            message: bad.error_message.as_ref().map(|m| m.to_string()),
        });
    }
    Ok(())
}

/// Partitions of `topic` (Metadata v1, no auto-creation); `None` if the broker does not know it.
pub async fn topic_partitions<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    topic: &str,
) -> Result<Option<u32>, AdminError> {
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    let resp = conn.call(&req, 1).await?;
    Ok(resp
        .topics
        .iter()
        .find(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .map(|t| t.partitions.len() as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn decodes_a_consumer_assignment_of_any_version() {
        for version in [0i16, 1, 3] {
            let a = ConsumerProtocolAssignment::default().with_assigned_partitions(vec![
                TopicPartition::default()
                    .with_topic(TopicName(StrBytes::from_static_str("orders")))
                    .with_partitions(vec![0, 3]),
            ]);
            let mut buf = BytesMut::new();
            buf.extend_from_slice(&version.to_be_bytes());
            a.encode(&mut buf, version).expect("encode");
            let got = decode_assignment(&buf.freeze()).expect("decode");
            assert_eq!(
                got,
                vec![("orders".to_string(), 0), ("orders".to_string(), 3)]
            );
        }
        assert!(decode_assignment(&Bytes::from_static(b"\x00")).is_err());
        assert!(decode_assignment(&Bytes::from_static(b"\x00\x00\x00\x00\x00\x05ab")).is_err());
        assert_eq!(decode_assignment(&Bytes::new()).expect("empty"), vec![]);
    }

    #[test]
    fn lag_needs_both_offsets() {
        let mut p = PartitionLag {
            topic: "t".into(),
            partition: 0,
            committed: Some(10),
            log_end: Some(25),
            member: None,
        };
        assert_eq!(p.lag(), Some(15));
        p.committed = None;
        assert_eq!(p.lag(), None);
    }
}
