//! A small blocking Kafka-protocol client for the `weir` admin subcommands (`weir group ...`):
//! one request at a time over a `std::net::TcpStream`, encoded and decoded by `kafka-protocol`.
//!
//! Owns: framing, correlation ids, the group queries (coordinator lookup, ListGroups,
//! DescribeGroups, OffsetFetch, ListOffsets latest, consumer-protocol assignment decoding), and
//! what `weir bench run` needs: ApiVersions (does the target answer CreateTopics?) and
//! CreateTopics.
//! Must not: print (callers decide the output), or trust the network: every size, correlation
//! id and error code from the broker is checked and turned into an error, never a panic.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ParseResponseErrorCode;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ConsumerProtocolAssignment, CreateTopicsRequest,
    DescribeGroupsRequest, FindCoordinatorRequest, GroupId, ListGroupsRequest, ListOffsetsRequest,
    MetadataRequest, OffsetFetchRequest, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest response accepted.
const MAX_FRAME: usize = 64 << 20;
const CLIENT_ID: &str = "weir-cli";

/// Names a Kafka error code for a message.
pub fn error_name(code: i16) -> String {
    match code.err() {
        Some(e) => format!("{e:?} ({code})"),
        None => "NONE".to_string(),
    }
}

/// One connection to one broker.
pub struct Conn {
    stream: TcpStream,
    correlation: i32,
}

impl Conn {
    pub fn connect(addr: &str) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        Ok(Conn {
            stream,
            correlation: 0,
        })
    }

    /// Sends `req` at `version` and decodes its response.
    pub fn call<R: Request>(&mut self, req: &R, version: i16) -> anyhow::Result<R::Response> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, R::header_version(version))
            .map_err(|e| anyhow!("encoding a request header: {e}"))?;
        req.encode(&mut buf, version)
            .map_err(|e| anyhow!("encoding api {} v{version}: {e}", R::KEY))?;
        let size = u32::try_from(buf.len()).context("request too large")?;
        self.stream.write_all(&size.to_be_bytes())?;
        self.stream.write_all(&buf)?;

        let mut size = [0u8; 4];
        self.stream
            .read_exact(&mut size)
            .context("reading a response (the broker closed the connection?)")?;
        let size = u32::from_be_bytes(size) as usize;
        if size > MAX_FRAME {
            bail!("response of {size} bytes is too large");
        }
        let mut frame = vec![0u8; size];
        self.stream.read_exact(&mut frame)?;
        let mut frame = Bytes::from(frame);
        let rh = ResponseHeader::decode(&mut frame, R::Response::header_version(version))
            .map_err(|e| anyhow!("decoding a response header: {e}"))?;
        if rh.correlation_id != self.correlation {
            bail!(
                "response correlation id {} does not match request {}",
                rh.correlation_id,
                self.correlation
            );
        }
        R::Response::decode(&mut frame, version)
            .map_err(|e| anyhow!("decoding api {} v{version} response: {e}", R::KEY))
    }
}

/// A listed group: (id, state, protocol type).
pub type Listed = (String, String, String);

/// Every group the broker coordinates.
pub fn list_groups(bootstrap: &str) -> anyhow::Result<Vec<Listed>> {
    let mut c = Conn::connect(bootstrap)?;
    let resp = c.call(&ListGroupsRequest::default(), 4)?;
    if resp.error_code != 0 {
        bail!("ListGroups: {}", error_name(resp.error_code));
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

/// The coordinator of `group` ("host:port"), asked of `bootstrap`.
pub fn find_coordinator(bootstrap: &str, group: &str) -> anyhow::Result<String> {
    let mut c = Conn::connect(bootstrap)?;
    let req = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_string(group.to_string()))
        .with_key_type(0);
    let resp = c.call(&req, 3)?;
    if resp.error_code != 0 {
        bail!("FindCoordinator: {}", error_name(resp.error_code));
    }
    Ok(format!("{}:{}", resp.host, resp.port))
}

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
pub fn decode_assignment(bytes: &Bytes) -> anyhow::Result<Vec<(String, i32)>> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = bytes.clone();
    if b.len() < 2 {
        bail!("assignment of {} bytes", b.len());
    }
    let version = bytes::Buf::get_i16(&mut b);
    if version < 0 {
        bail!("assignment version {version}");
    }
    // Newer versions only add fields at the end (Kafka decodes them with its highest version).
    let a = ConsumerProtocolAssignment::decode(&mut b, version.min(3))
        .map_err(|e| anyhow!("decoding an assignment: {e}"))?;
    Ok(a.assigned_partitions
        .into_iter()
        .flat_map(|tp| {
            let topic = tp.topic.to_string();
            tp.partitions.into_iter().map(move |p| (topic.clone(), p))
        })
        .collect())
}

/// Describes `group`: its members and assignments (DescribeGroups), committed offsets
/// (OffsetFetch) and log end offsets (ListOffsets latest) of every partition it commits to or
/// is assigned. weir is one broker, so the log end offsets are asked of `bootstrap`.
pub fn describe_group(bootstrap: &str, group: &str) -> anyhow::Result<Described> {
    let coordinator = find_coordinator(bootstrap, group)?;
    let mut c = Conn::connect(&coordinator)
        .with_context(|| format!("the coordinator of {group} ({coordinator})"))?;
    let gid = GroupId(StrBytes::from_string(group.to_string()));
    let resp = c.call(
        &DescribeGroupsRequest::default().with_groups(vec![gid.clone()]),
        5,
    )?;
    let d = resp
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("DescribeGroups answered no group"))?;
    if d.error_code != 0 {
        bail!("DescribeGroups {group}: {}", error_name(d.error_code));
    }
    if d.group_state.as_str() == "Dead" {
        bail!("group {group} does not exist");
    }
    let consumer = d.protocol_type.as_str() == "consumer";
    let mut members = Vec::with_capacity(d.members.len());
    for m in d.members {
        let (assigned, assignment_error) = if consumer {
            match decode_assignment(&m.member_assignment) {
                Ok(a) => (a, None),
                Err(e) => (Vec::new(), Some(format!("{e:#}"))),
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

    let fetched = c.call(
        &OffsetFetchRequest::default()
            .with_group_id(gid)
            .with_topics(None),
        7,
    )?;
    if fetched.error_code != 0 {
        bail!("OffsetFetch {group}: {}", error_name(fetched.error_code));
    }
    let mut parts: BTreeMap<(String, i32), PartitionLag> = BTreeMap::new();
    for t in fetched.topics {
        for p in t.partitions {
            if p.error_code != 0 {
                bail!(
                    "OffsetFetch {}-{}: {}",
                    t.name.as_str(),
                    p.partition_index,
                    error_name(p.error_code)
                );
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

    let ends = log_end_offsets(bootstrap, parts.keys())?;
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
fn log_end_offsets<'a>(
    bootstrap: &str,
    partitions: impl Iterator<Item = &'a (String, i32)>,
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
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
    let mut c = Conn::connect(bootstrap)?;
    let resp = c.call(&ListOffsetsRequest::default().with_topics(topics), 1)?;
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
pub fn supports(bootstrap: &str, api: ApiKey) -> anyhow::Result<bool> {
    let mut c = Conn::connect(bootstrap)?;
    let resp = c.call(&ApiVersionsRequest::default(), 0)?;
    if resp.error_code != 0 {
        bail!("ApiVersions: {}", error_name(resp.error_code));
    }
    Ok(resp.api_keys.iter().any(|k| k.api_key == api as i16))
}

/// Creates `names`, each with `partitions` partitions (replication factor 1 unless the broker
/// picks: -1), CreateTopics v4. A topic that already exists is fine; any other error is not.
pub fn create_topics(bootstrap: &str, names: &[String], partitions: u32) -> anyhow::Result<()> {
    let mut c = Conn::connect(bootstrap)?;
    let partitions = i32::try_from(partitions).context("too many partitions")?;
    let req = CreateTopicsRequest::default()
        .with_timeout_ms(TIMEOUT.as_millis() as i32)
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
    let resp = c.call(&req, 4)?;
    for t in resp.topics {
        if t.error_code != 0 && t.error_code != TOPIC_ALREADY_EXISTS {
            bail!(
                "CreateTopics {}: {}{}",
                t.name.0.as_str(),
                error_name(t.error_code),
                t.error_message
                    .map_or(String::new(), |m| format!(": {}", m.as_str()))
            );
        }
    }
    Ok(())
}

/// Partitions of `topic` (Metadata v1, no auto-creation); `None` if the broker does not know it.
pub fn topic_partitions(bootstrap: &str, topic: &str) -> anyhow::Result<Option<u32>> {
    let mut c = Conn::connect(bootstrap)?;
    let req = MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]));
    let resp = c.call(&req, 1)?;
    Ok(resp
        .topics
        .iter()
        .find(|t| t.error_code == 0 && t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .map(|t| t.partitions.len() as u32))
}

use wire::error_code::TOPIC_ALREADY_EXISTS;

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition;

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
