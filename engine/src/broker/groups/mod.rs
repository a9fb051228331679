//! Consumer groups: Kafka's group coordinator (classic protocol) and committed offsets.
//!
//! Design (issue #5):
//! - **`__consumer_offsets`** is an internal topic of [`OFFSETS_PARTITIONS`] partitions (Kafka
//!   has 50; 8 is enough for one broker of a few shards and keeps the preallocated segments
//!   small: segment.bytes = offsets.topic.segment.bytes, 16 MiB). It is created on first use (the
//!   first group request on any shard), like any topic, so its partitions are spread over shards
//!   by the usual placement. It is compacted (cleanup.policy=compact, `engine::compact`): each
//!   key's last record stays, so a replay after a restart sees the same state.
//! - **Group → partition**: `abs(java hashCode(group id)) % OFFSETS_PARTITIONS`, Kafka's rule.
//!   The shard owning that partition's log is the group's **coordinator shard**: every group
//!   request received on another shard is forwarded there with one `Mesh` job, and the answer
//!   comes back to the connection's shard to be encoded. FindCoordinator answers this broker
//!   (node id, advertised host and port): one broker is every group's coordinator.
//! - **Group state** (`state::Group`: members, generation, leader, assignments, committed
//!   offsets) lives only on the coordinator shard, in a `RefCell` that is never borrowed across
//!   an await. Pending JoinGroup/SyncGroup requests wait on oneshot channels answered by the state
//!   machine. One timer task per shard ([`TICK`]) evicts members whose session.timeout.ms passed
//!   without a heartbeat and ends join phases whose rebalance.timeout.ms passed.
//! - **OffsetCommit** appends one uncompressed batch (Kafka's offset-commit key/value format,
//!   `offsets`) to the group's partition and answers after it is **durable** (fdatasync): a
//!   commit acknowledged to a consumer survives a power loss, not only a process kill. The
//!   in-memory map that serves OffsetFetch is updated only then.
//! - **Restart**: each shard replays its `__consumer_offsets` partitions when it opens them,
//!   rebuilding every group's committed offsets and its state from its metadata record (Kafka's
//!   GroupMetadataValue, written on the tick after the leader's SyncGroup makes a generation
//!   Stable, a static member takes over its membership, or the group empties — at once, before
//!   the answer, when a LeaveGroup empties it): a group that had
//!   members comes back Stable at its generation with every member (id, instance id, client id
//!   and host, timeouts, subscription, assignment), as Kafka's loadGroup, so running consumers
//!   go on heartbeating and committing without a rebalance; their session timers start at the
//!   replay, so members that are gone are evicted after session.timeout.ms. An Empty group comes
//!   back Empty with its protocol type, generation and empty-since time.
//!
//! Owns the group APIs' meaning and the routing above. Must not: touch another shard's logs or
//! groups except through `Mesh` jobs, or hold a `RefCell` borrow across an await.
//! ListGroups asks every shard for its groups; DescribeGroups asks each group's coordinator shard
//! (members, their metadata and assignments).
//! - **Deleting offsets** (DeleteGroups, OffsetDelete, and expiry after
//!   offsets.retention.minutes of an empty group) appends tombstones, waits until durable, then
//!   forgets the offsets in memory, so a deletion survives a restart like a commit.
//! - **Client host**: the connection's peer address (`/IP`, Kafka's form), kept per member and
//!   shown by DescribeGroups. JoinGroup v8's reason (KIP-800) is logged; v9's skip_assignment
//!   (KIP-814) is always false.
//!
//! Not yet (issue #5): KIP-496 (expiring offsets of topics a live group no longer subscribes to).

pub mod offsets;
pub mod state;

use crate::broker::log_error::KafkaCode;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    BrokerId, ConsumerProtocolSubscription, DeleteGroupsRequest, DeleteGroupsResponse,
    DescribeGroupsRequest, DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use self::offsets::{Committed, OffsetRecord};
use self::state::{Group, JoinParams, JoinResult, SyncResult};
use super::store::TopicMeta;
use super::Broker;
use crate::shard::Completion;
use storage::log::Watermark;
use wire::error_code as ec;
use wire::protocol::header::RequestHeader;
use wire::protocol::{encode_response, ProtocolError};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
pub const OFFSETS_PARTITIONS: i32 = 8;
/// How often each shard checks its groups' session and rebalance timers.
pub const TICK: Duration = Duration::from_millis(100);
/// Longest committed metadata string (Kafka's offset.metadata.max.bytes).
const METADATA_MAX: usize = 4096;
/// How long a commit may wait for its write.
const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Java's `String.hashCode` (UTF-16 code units), as Kafka hashes group ids.
pub fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The `__consumer_offsets` partition of a group (Kafka's `Utils.abs(hash) % n`).
pub fn partition_for(group: &str) -> i32 {
    let h = java_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % OFFSETS_PARTITIONS
}

/// This shard's groups (those whose partition this shard owns).
#[derive(Default)]
pub struct Groups {
    map: RefCell<HashMap<String, Group>>,
}

impl Groups {
    /// Runs `f` on the group (created empty if absent).
    fn with<R>(&self, group: &str, f: impl FnOnce(&mut Group) -> R) -> R {
        let mut map = self.map.borrow_mut();
        f(map.entry(group.to_string()).or_default())
    }

    /// Runs `f` on the group if it exists.
    fn with_existing<R>(&self, group: &str, f: impl FnOnce(&mut Group) -> R) -> Option<R> {
        self.map.borrow_mut().get_mut(group).map(f)
    }

    fn tick(&self, now: Instant, now_ms: i64) {
        let mut map = self.map.borrow_mut();
        for (name, g) in map.iter_mut() {
            for member in g.tick(now) {
                tracing::info!(group = %name, %member, "member evicted (session or rebalance timeout)");
            }
            if !g.members.is_empty() {
                g.empty_since_ms = None;
            } else if g.empty_since_ms.is_none() {
                g.empty_since_ms = Some(now_ms);
            }
        }
        map.retain(|_, g| !g.is_dead());
    }

    fn apply(&self, record: OffsetRecord) {
        let mut map = self.map.borrow_mut();
        match record {
            OffsetRecord::Group { group, value: None } => {
                map.remove(&group);
            }
            OffsetRecord::Group {
                group,
                value: Some(meta),
            } => {
                map.entry(group).or_default().restore(meta, Instant::now());
            }
            OffsetRecord::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                let g = map.entry(group).or_default();
                match value {
                    Some(c) => g.offsets.insert((topic, partition), c),
                    None => g.offsets.remove(&(topic, partition)),
                };
            }
            OffsetRecord::Other => {}
        }
    }
}

/// Starts the shard's group timer task.
pub(super) fn start_timer(b: &Rc<Broker>) -> glommio::Task<()> {
    let weak = Rc::downgrade(b);
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(TICK).await;
            let Some(b) = weak.upgrade() else { return };
            let now_ms = b.cfg.clock.now_ms();
            b.groups.tick(Instant::now(), now_ms);
            write_group_metadata(&b, now_ms);
        }
    })
}

/// A group's metadata record as Kafka writes it (members with their subscription for the chosen
/// protocol and their assignment).
fn group_meta(g: &Group, now_ms: i64) -> offsets::GroupMeta {
    let members = g
        .members
        .iter()
        .map(|(id, m)| offsets::MetaMember {
            member_id: id.clone(),
            instance_id: m.instance_id.clone(),
            client_id: m.client_id.clone(),
            client_host: m.client_host.clone(),
            rebalance_timeout_ms: i32::try_from(m.rebalance_timeout.as_millis())
                .unwrap_or(i32::MAX),
            session_timeout_ms: i32::try_from(m.session_timeout.as_millis()).unwrap_or(i32::MAX),
            subscription: g
                .protocol_metadata(m)
                .map(|md| md.to_vec())
                .unwrap_or_default(),
            assignment: m.assignment.to_vec(),
        })
        .collect();
    offsets::GroupMeta {
        protocol_type: g.protocol_type.clone().unwrap_or_default(),
        generation: g.generation,
        protocol: g.protocol.clone(),
        leader: g.leader.clone(),
        state_timestamp: now_ms,
        members,
    }
}

/// Appends the metadata record of every group whose generation completed or that became empty
/// since the last tick. Not waited for: the record is informational (an Empty group's
/// existence, protocol type, generation and empty-since time across a restart).
fn write_group_metadata(b: &Rc<Broker>, now_ms: i64) {
    let dirty: Vec<(String, offsets::GroupMeta)> = b
        .groups
        .map
        .borrow_mut()
        .iter_mut()
        .filter(|(_, g)| g.meta_dirty)
        .map(|(name, g)| {
            g.meta_dirty = false;
            (name.clone(), group_meta(g, now_ms))
        })
        .collect();
    for (group, meta) in dirty {
        append_group_metadata(b, &group, &meta, now_ms);
    }
}

/// Appends one group's metadata record to its partition; the log and the record's offset.
fn append_group_metadata(
    b: &Broker,
    group: &str,
    meta: &offsets::GroupMeta,
    now_ms: i64,
) -> Option<(storage::PartitionLog, u64)> {
    let log = b.log(OFFSETS_TOPIC, partition_for(group))?;
    let batch = offsets::group_batch(group, Some(meta), now_ms);
    match log.append(bytes::Bytes::from(batch), 0) {
        Ok(info) => Some((log, info.last_offset)),
        Err(e) => {
            tracing::warn!(%group, "writing group metadata: {e}");
            None
        }
    }
}

/// After LeaveGroup emptied the group: its metadata record (no members) is appended at once and
/// written to the file before the answer, so a broker killed right after a consumer's clean
/// leave does not bring the member back from the previous record.
async fn write_emptied_group(b: &Broker, group: &str) {
    let meta = b.groups.with_existing(group, |g| {
        (g.meta_dirty && g.members.is_empty()).then(|| {
            g.meta_dirty = false;
            group_meta(g, b.cfg.clock.now_ms())
        })
    });
    let Some(Some(meta)) = meta else { return };
    let now_ms = meta.state_timestamp;
    if let Some((log, offset)) = append_group_metadata(b, group, &meta, now_ms) {
        if let Err(e) = log.wait(offset, Watermark::Written).await {
            tracing::warn!(%group, "writing group metadata: {e}");
        }
    }
}

/// Starts the shard's offset expiry task (`offsets.retention.minutes`, checked every
/// `offsets.retention.check.interval.ms`).
pub(super) fn start_expiry(b: &Rc<Broker>) -> glommio::Task<()> {
    let weak = Rc::downgrade(b);
    let period = Duration::from_millis(b.cfg.offsets_retention_check_interval_ms.max(1));
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(period).await;
            let Some(b) = weak.upgrade() else { return };
            expire_offsets(&b, b.cfg.clock.now_ms()).await;
        }
    })
}

/// The committed offsets of `g` that are expired at `now_ms`: none while the group has
/// members; otherwise those whose later of (group empty since, commit time) is `retention_ms`
/// old. (Kafka, since 2.1, takes its persisted empty-since time alone; the later of the two,
/// with empty-since never before this broker's start, never expires an offset earlier than
/// Kafka would.)
fn expired(g: &Group, now_ms: i64, retention_ms: i64) -> Vec<((String, i32), Committed)> {
    if !g.members.is_empty() || g.state != state::State::Empty {
        return Vec::new();
    }
    g.offsets
        .iter()
        .filter(|(_, c)| {
            // Not seen empty by a tick yet: not expired.
            g.empty_since_ms
                .is_some_and(|e| now_ms.saturating_sub(e.max(c.commit_timestamp)) >= retention_ms)
        })
        .map(|(k, c)| (k.clone(), c.clone()))
        .collect()
}

/// Expires the offsets of this shard's groups (tombstones, as OffsetDelete).
async fn expire_offsets(b: &Rc<Broker>, now_ms: i64) {
    let retention_ms =
        i64::try_from(b.cfg.offsets_retention_minutes.saturating_mul(60_000)).unwrap_or(i64::MAX);
    let names: Vec<String> = b.groups.map.borrow().keys().cloned().collect();
    for group in names {
        // Checked again just before the write: a member may have joined meanwhile.
        let Some(keys) = b
            .groups
            .with_existing(&group, |g| expired(g, now_ms, retention_ms))
        else {
            continue;
        };
        if keys.is_empty() {
            continue;
        }
        let n = keys.len();
        match delete_offsets(b, &group, keys, false).await {
            Ok(()) => tracing::info!(%group, offsets = n, "committed offsets expired"),
            Err(code) => tracing::warn!(%group, code, "expiring committed offsets failed"),
        }
    }
    // Empty groups left without offsets are removed (Kafka's cleanup), with a group tombstone.
    let gone: Vec<String> = b
        .groups
        .map
        .borrow_mut()
        .iter_mut()
        .filter(|(_, g)| g.is_empty_without_offsets())
        .map(|(name, g)| {
            g.meta_dirty = false;
            name.clone()
        })
        .collect();
    for group in gone {
        match delete_offsets(b, &group, Vec::new(), true).await {
            Ok(()) => tracing::info!(%group, "empty group without offsets removed"),
            Err(code) => tracing::warn!(%group, code, "removing an empty group failed"),
        }
    }
}

/// Rebuilds committed offsets from the `__consumer_offsets` partitions this shard owns.
pub(super) async fn replay(b: &Rc<Broker>, topic: &TopicMeta) {
    for p in 0..topic.partitions.len() as i32 {
        let Some(log) = b.log(OFFSETS_TOPIC, p) else {
            continue;
        };
        match offsets::replay(&log).await {
            Ok(records) => {
                let n = records.len();
                for r in records {
                    b.groups.apply(r);
                }
                tracing::info!(partition = p, records = n, "__consumer_offsets replayed");
            }
            Err(e) => tracing::error!(partition = p, "replaying __consumer_offsets: {e}"),
        }
    }
}

impl Broker {
    /// The offsets topic, created on first use.
    async fn offsets_topic(self: &Rc<Self>) -> Option<Rc<TopicMeta>> {
        if let Ok(Some(t)) = self.topic(OFFSETS_TOPIC).await {
            return Some(t);
        }
        let segment_bytes = self.cfg.offsets_topic_segment_bytes.to_string();
        let configs: BTreeMap<String, String> = [
            ("segment.bytes", segment_bytes.as_str()),
            ("cleanup.policy", "compact"),
            ("retention.ms", "-1"),
            ("retention.bytes", "-1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match self
            .create_topic(OFFSETS_TOPIC, OFFSETS_PARTITIONS, -1, configs, false)
            .await
        {
            Ok(_) => tracing::info!("created {OFFSETS_TOPIC}"),
            Err(super::topics::CreateError(code, msg)) => {
                if code != ec::TOPIC_ALREADY_EXISTS {
                    tracing::warn!("creating {OFFSETS_TOPIC}: {msg}");
                }
            }
        }
        self.topic(OFFSETS_TOPIC).await.ok().flatten()
    }

    /// The coordinator shard of `group`.
    async fn group_shard(self: &Rc<Self>, group: &str) -> Option<usize> {
        let t = self.offsets_topic().await?;
        self.owner(&t, partition_for(group))
    }

    /// Runs `work` on the coordinator shard of `group`; None if it cannot be reached.
    async fn on_group<R, F>(self: &Rc<Self>, group: &str, work: F) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Broker>) -> futures::future::LocalBoxFuture<'static, R> + Send + 'static,
    {
        let shard = self.group_shard(group).await?;
        self.mesh
            .call(self, shard, move |b: &Rc<Broker>| work(b.clone()))
            .await
            .ok()
    }
}

fn s(x: impl Into<String>) -> StrBytes {
    StrBytes::from_string(x.into())
}

pub(super) fn dispatch_find_coordinator(
    b: Rc<Broker>,
    h: RequestHeader,
    body: FindCoordinatorRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        // key_type 1 (transactions) is not coordinated here.
        let keys: Vec<String> = if h.api_version >= 4 {
            body.coordinator_keys
                .iter()
                .map(|k| k.to_string())
                .collect()
        } else {
            vec![body.key.to_string()]
        };
        let available = body.key_type == 0 && b.offsets_topic().await.is_some();
        let code = if body.key_type != 0 {
            ec::INVALID_REQUEST
        } else if available {
            ec::NONE
        } else {
            ec::COORDINATOR_NOT_AVAILABLE
        };
        let (node, host, port) = if code == ec::NONE {
            (
                b.cfg.node_id,
                b.cfg.advertised_host.clone(),
                i32::from(b.cfg.advertised_port),
            )
        } else {
            (-1, String::new(), -1)
        };
        let response = if h.api_version >= 4 {
            FindCoordinatorResponse::default().with_coordinators(
                keys.into_iter()
                    .map(|k| {
                        Coordinator::default()
                            .with_key(s(k))
                            .with_node_id(BrokerId(node))
                            .with_host(s(host.clone()))
                            .with_port(port)
                            .with_error_code(code)
                    })
                    .collect(),
            )
        } else {
            FindCoordinatorResponse::default()
                .with_error_code(code)
                .with_node_id(BrokerId(node))
                .with_host(s(host))
                .with_port(port)
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

fn new_member_id(client_id: &str) -> String {
    format!("{client_id}-{}", uuid::Uuid::new_v4().hyphenated())
}

pub(super) fn dispatch_join(
    b: Rc<Broker>,
    h: RequestHeader,
    body: JoinGroupRequest,
    client_host: Rc<str>,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let client_id = h.client_id.clone().unwrap_or_default();
        if let Some(reason) = body.reason.as_ref().filter(|r| !r.is_empty()) {
            tracing::info!(%group, member = %body.member_id, %reason, "JoinGroup");
        }
        let params = JoinParams {
            member_id: body.member_id.to_string(),
            instance_id: body.group_instance_id.as_ref().map(|i| i.to_string()),
            client_id: client_id.clone(),
            client_host: client_host.to_string(),
            session_timeout_ms: body.session_timeout_ms,
            rebalance_timeout_ms: if h.api_version >= 1 {
                body.rebalance_timeout_ms
            } else {
                body.session_timeout_ms
            },
            protocol_type: body.protocol_type.to_string(),
            protocols: body
                .protocols
                .into_iter()
                .map(|p| (p.name.to_string(), p.metadata))
                .collect(),
            require_known_member_id: h.api_version >= 4,
        };
        let member_id = params.member_id.clone();
        let g = group.clone();
        let result = b
            .on_group(&group, move |c| {
                async move {
                    let rx = c.groups.with(&g, |grp| {
                        grp.join(params, || new_member_id(&client_id), Instant::now())
                    });
                    rx.await
                        .unwrap_or_else(|_| JoinResult::error(ec::UNKNOWN_SERVER_ERROR, ""))
                }
                .boxed_local()
            })
            .await
            .unwrap_or_else(|| JoinResult::error(ec::COORDINATOR_NOT_AVAILABLE, &member_id));
        let response = JoinGroupResponse::default()
            .with_error_code(result.error)
            .with_generation_id(result.generation)
            .with_protocol_type(result.protocol_type.map(s))
            .with_protocol_name(if h.api_version >= 7 {
                result.protocol.map(s)
            } else {
                Some(s(result.protocol.unwrap_or_default()))
            })
            .with_leader(s(result.leader))
            .with_member_id(s(result.member_id))
            .with_members(
                result
                    .members
                    .into_iter()
                    .map(|(id, instance, meta)| {
                        JoinGroupResponseMember::default()
                            .with_member_id(s(id))
                            .with_group_instance_id(instance.map(s))
                            .with_metadata(meta)
                    })
                    .collect(),
            );
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

pub(super) fn dispatch_sync(
    b: Rc<Broker>,
    h: RequestHeader,
    body: SyncGroupRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let g = group.clone();
        let result = b
            .on_group(&group, move |c| {
                async move {
                    let member = body.member_id.to_string();
                    let instance = body.group_instance_id.as_ref().map(|i| i.to_string());
                    let assignments = body
                        .assignments
                        .into_iter()
                        .map(|a| (a.member_id.to_string(), a.assignment))
                        .collect();
                    let rx = c.groups.with_existing(&g, |grp| {
                        grp.sync(
                            &member,
                            instance.as_deref(),
                            body.generation_id,
                            assignments,
                        )
                    });
                    match rx {
                        Some(rx) => rx
                            .await
                            .unwrap_or_else(|_| SyncResult::error(ec::UNKNOWN_SERVER_ERROR)),
                        None => SyncResult::error(ec::UNKNOWN_MEMBER_ID),
                    }
                }
                .boxed_local()
            })
            .await
            .unwrap_or_else(|| SyncResult::error(ec::COORDINATOR_NOT_AVAILABLE));
        let response = SyncGroupResponse::default()
            .with_error_code(result.error)
            .with_protocol_type(result.protocol_type.map(s))
            .with_protocol_name(result.protocol.map(s))
            .with_assignment(result.assignment);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

pub(super) fn dispatch_heartbeat(
    b: Rc<Broker>,
    h: RequestHeader,
    body: HeartbeatRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let g = group.clone();
        let code = b
            .on_group(&group, move |c| {
                async move {
                    let member = body.member_id.to_string();
                    let instance = body.group_instance_id.as_ref().map(|i| i.to_string());
                    c.groups
                        .with_existing(&g, |grp| {
                            grp.heartbeat(
                                &member,
                                instance.as_deref(),
                                body.generation_id,
                                Instant::now(),
                            )
                        })
                        .unwrap_or(ec::UNKNOWN_MEMBER_ID)
                }
                .boxed_local()
            })
            .await
            .unwrap_or(ec::COORDINATOR_NOT_AVAILABLE);
        encode_response(&h, &HeartbeatResponse::default().with_error_code(code)).map(Some)
    }
    .boxed_local())
}

pub(super) fn dispatch_leave(
    b: Rc<Broker>,
    h: RequestHeader,
    body: LeaveGroupRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let members: Vec<(String, Option<String>)> = if h.api_version >= 3 {
            body.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                    )
                })
                .collect()
        } else {
            vec![(body.member_id.to_string(), None)]
        };
        let g = group.clone();
        let asked = members.clone();
        let codes = b
            .on_group(&group, move |c| {
                async move {
                    let now = Instant::now();
                    let codes = asked
                        .into_iter()
                        .map(|(member, instance)| {
                            c.groups
                                .with_existing(&g, |grp| {
                                    let id = match &instance {
                                        Some(i) => match grp.member_of_instance(i) {
                                            Some(id) if member.is_empty() || id == member => id,
                                            Some(_) => return ec::FENCED_INSTANCE_ID,
                                            None => return ec::UNKNOWN_MEMBER_ID,
                                        },
                                        None => member.clone(),
                                    };
                                    if grp.remove_member(&id, now) {
                                        tracing::info!(group = %g, member = %id, "member left");
                                        ec::NONE
                                    } else {
                                        ec::UNKNOWN_MEMBER_ID
                                    }
                                })
                                .unwrap_or(ec::UNKNOWN_MEMBER_ID)
                        })
                        .collect::<Vec<i16>>();
                    write_emptied_group(&c, &g).await;
                    codes
                }
                .boxed_local()
            })
            .await;
        let response = match codes {
            None => LeaveGroupResponse::default().with_error_code(ec::COORDINATOR_NOT_AVAILABLE),
            Some(codes) if h.api_version >= 3 => LeaveGroupResponse::default().with_members(
                members
                    .into_iter()
                    .zip(codes)
                    .map(|((m, i), code)| {
                        MemberResponse::default()
                            .with_member_id(s(m))
                            .with_group_instance_id(i.map(s))
                            .with_error_code(code)
                    })
                    .collect(),
            ),
            Some(codes) => LeaveGroupResponse::default()
                .with_error_code(codes.first().copied().unwrap_or(ec::NONE)),
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

/// Commits on the coordinator shard: checks membership, writes the batch, waits until durable,
/// then updates the map. Returns one code per (topic, partition) in request order.
async fn commit(
    c: Rc<Broker>,
    group: String,
    member: String,
    instance: Option<String>,
    generation: i32,
    requested: Vec<(String, i32, Committed)>,
) -> Vec<i16> {
    let n = requested.len();
    let all = |code: i16| vec![code; n];
    let code = c.groups.with(&group, |g| {
        if generation < 0 && member.is_empty() {
            if g.members.is_empty() {
                ec::NONE
            } else {
                ec::UNKNOWN_MEMBER_ID
            }
        } else if g.state == state::State::CompletingRebalance
            && g.members.contains_key(&member)
            && g.generation == generation
        {
            ec::REBALANCE_IN_PROGRESS
        } else {
            g.check_member(&member, instance.as_deref(), generation)
        }
    });
    if code != ec::NONE {
        tracing::info!(%group, %member, generation, code, "OffsetCommit refused");
        return all(code);
    }
    let codes: Vec<i16> = requested
        .iter()
        .map(|(_, _, c)| {
            if c.metadata.len() > METADATA_MAX {
                ec::OFFSET_METADATA_TOO_LARGE
            } else {
                ec::NONE
            }
        })
        .collect();
    let accepted: Vec<(String, i32, Committed)> = requested
        .into_iter()
        .zip(&codes)
        .filter(|(_, code)| **code == ec::NONE)
        .map(|(r, _)| r)
        .collect();
    if accepted.is_empty() {
        return codes;
    }
    let now = c.cfg.clock.now_ms();
    let batch = offsets::commit_batch(&group, &accepted, now);
    let keys: Vec<(String, i32)> = accepted.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let appended = |at| c.groups.with(&group, |g| g.commit_appended(&keys, at));
    let at = match append_durable(&c, &group, batch, appended).await {
        Ok(at) => at,
        Err(code) => {
            tracing::warn!(%group, code, "writing an offset commit failed");
            return all(code);
        }
    };
    c.groups.with(&group, |g| {
        for (t, p, committed) in accepted {
            g.commit_durable((t, p), committed, at);
        }
    });
    codes
}

/// Appends `batch` to the group's `__consumer_offsets` partition (on this, its coordinator shard)
/// and waits until it is durable; returns the batch's last offset. `appended` runs right after
/// the append, before any await, so what it records about the group follows the log's order.
async fn append_durable(
    c: &Rc<Broker>,
    group: &str,
    batch: Vec<u8>,
    appended: impl FnOnce(u64),
) -> Result<u64, i16> {
    let Some(log) = c.log(OFFSETS_TOPIC, partition_for(group)) else {
        return Err(ec::NOT_COORDINATOR);
    };
    match log.append(bytes::Bytes::from(batch), 0) {
        Ok(info) => {
            appended(info.last_offset);
            let wait = log.wait(info.last_offset, Watermark::Durable);
            match glommio::timer::timeout(COMMIT_TIMEOUT, async {
                Ok(wait.await.map_err(|e| e.kafka_code()))
            })
            .await
            {
                Ok(r) => r.map(|()| info.last_offset),
                Err(_) => Err(ec::REQUEST_TIMED_OUT),
            }
        }
        Err(e) => Err(e.kafka_code()),
    }
}

/// Writes tombstones for the offsets `deleted` of `group` (durably) and then forgets those
/// offsets — each only if it is still the value given (a commit that landed meanwhile stays);
/// the group itself goes too if it is left with no members and no offsets.
///
/// With `group_tombstone`, the batch also deletes the group's metadata record, and the group
/// goes from memory if it is still Empty with no members and no offsets.
async fn delete_offsets(
    c: &Rc<Broker>,
    group: &str,
    deleted: Vec<((String, i32), Committed)>,
    group_tombstone: bool,
) -> Result<(), i16> {
    if deleted.is_empty() && !group_tombstone {
        return Ok(());
    }
    let now = c.cfg.clock.now_ms();
    let keys: Vec<(String, i32)> = deleted.iter().map(|(k, _)| k.clone()).collect();
    let batch = offsets::tombstone_batch(group, &keys, group_tombstone, now);
    // Commits of these keys appended before the tombstones must not land in memory after it.
    let appended = |_| {
        c.groups.with_existing(group, |g| g.offsets_deleted(&keys));
    };
    append_durable(c, group, batch, appended).await?;
    let mut map = c.groups.map.borrow_mut();
    if let Some(g) = map.get_mut(group) {
        for (k, was) in &deleted {
            if g.offsets.get(k) == Some(was) {
                g.offsets.remove(k);
                g.offset_positions.remove(k);
            }
        }
        if g.is_dead() || (group_tombstone && g.is_empty_without_offsets()) {
            map.remove(group);
        }
    }
    Ok(())
}

/// DeleteGroups of one group, on its coordinator shard (Kafka's rules: only an Empty group with
/// no members can be deleted; its committed offsets get tombstones).
async fn delete_group(c: Rc<Broker>, group: String) -> i16 {
    let keys = c.groups.with_existing(&group, |g| {
        if g.state != state::State::Empty || !g.members.is_empty() {
            Err(ec::NON_EMPTY_GROUP)
        } else {
            // The tombstone below supersedes any metadata record not written yet.
            g.meta_dirty = false;
            Ok(g.offsets
                .iter()
                .map(|(k, c)| (k.clone(), c.clone()))
                .collect::<Vec<_>>())
        }
    });
    let keys = match keys {
        None => return ec::GROUP_ID_NOT_FOUND,
        Some(Err(code)) => return code,
        Some(Ok(keys)) => keys,
    };
    match delete_offsets(&c, &group, keys, true).await {
        Ok(()) => {
            tracing::info!(%group, "group deleted");
            ec::NONE
        }
        Err(code) => {
            tracing::warn!(%group, code, "deleting a group failed");
            code
        }
    }
}

pub(super) fn dispatch_delete_groups(
    b: Rc<Broker>,
    h: RequestHeader,
    body: DeleteGroupsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut results = Vec::with_capacity(body.groups_names.len());
        for g in body.groups_names {
            let name = g.to_string();
            let code = if name.is_empty() {
                ec::INVALID_GROUP_ID
            } else {
                let n = name.clone();
                b.on_group(&name, move |c| delete_group(c, n).boxed_local())
                    .await
                    .unwrap_or(ec::COORDINATOR_NOT_AVAILABLE)
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(g)
                    .with_error_code(code),
            );
        }
        encode_response(&h, &DeleteGroupsResponse::default().with_results(results)).map(Some)
    }
    .boxed_local())
}

/// The topics a consumer group's members subscribe to (from their ConsumerProtocolSubscription
/// metadata of the chosen protocol); None if they cannot be known, which Kafka treats as
/// subscribed to everything.
fn subscribed_topics(g: &Group) -> Option<std::collections::HashSet<String>> {
    if g.protocol_type.as_deref() != Some("consumer") {
        return None;
    }
    g.protocol.as_ref()?; // none chosen yet: unknown, even with no members
    let mut topics = std::collections::HashSet::new();
    for m in g.members.values() {
        let mut md = g.protocol_metadata(m)?.clone();
        if md.len() < 2 {
            return None;
        }
        let version = bytes::Buf::get_i16(&mut md);
        if version < 0 {
            return None;
        }
        let sub = ConsumerProtocolSubscription::decode(&mut md, version.min(3)).ok()?;
        topics.extend(sub.topics.into_iter().map(|t| t.to_string()));
    }
    Some(topics)
}

/// OffsetDelete on the coordinator shard: per (topic, partitions) the partitions' codes, or the
/// group's error.
async fn offset_delete(
    c: Rc<Broker>,
    group: String,
    requested: Vec<(String, Vec<i32>)>,
) -> Result<Vec<(String, Vec<(i32, i16)>)>, i16> {
    let checked = c.groups.with_existing(&group, |g| {
        if g.members.is_empty() {
            return Ok((std::collections::HashSet::new(), g.offsets.clone()));
        }
        if g.protocol_type.as_deref() != Some("consumer") {
            return Err(ec::NON_EMPTY_GROUP);
        }
        // Unknown subscriptions: every requested topic counts as subscribed.
        let subscribed = subscribed_topics(g)
            .unwrap_or_else(|| requested.iter().map(|(t, _)| t.clone()).collect());
        Ok((subscribed, g.offsets.clone()))
    });
    let (subscribed, committed) = match checked {
        None => return Err(ec::GROUP_ID_NOT_FOUND),
        Some(r) => r?,
    };
    let mut keys = Vec::new();
    let mut out = Vec::with_capacity(requested.len());
    for (t, ps) in requested {
        let is_subscribed = subscribed.contains(&t);
        let codes = ps
            .into_iter()
            .map(|p| {
                if is_subscribed {
                    (p, ec::GROUP_SUBSCRIBED_TO_TOPIC)
                } else {
                    if let Some(c) = committed.get(&(t.clone(), p)) {
                        keys.push(((t.clone(), p), c.clone()));
                    }
                    (p, ec::NONE)
                }
            })
            .collect();
        out.push((t, codes));
    }
    let n = keys.len();
    delete_offsets(&c, &group, keys, false).await?;
    if n > 0 {
        tracing::info!(%group, offsets = n, "committed offsets deleted");
    }
    Ok(out)
}

pub(super) fn dispatch_offset_delete(
    b: Rc<Broker>,
    h: RequestHeader,
    body: OffsetDeleteRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        // Partitions of topics that do not exist are refused here (Kafka's
        // UNKNOWN_TOPIC_OR_PARTITION), before the group is asked.
        let mut refused: HashMap<(String, i32), i16> = HashMap::new();
        let mut requested: Vec<(String, Vec<i32>)> = Vec::with_capacity(body.topics.len());
        for t in &body.topics {
            let name = t.name.to_string();
            let known = match b.topic(&name).await {
                Ok(Some(meta)) => Ok(meta.partitions.len()),
                Ok(None) => Err(ec::UNKNOWN_TOPIC_OR_PARTITION),
                Err(_) => Err(ec::COORDINATOR_NOT_AVAILABLE),
            };
            let mut ps = Vec::new();
            for p in t.partitions.iter().map(|p| p.partition_index) {
                match known {
                    Ok(n) if usize::try_from(p).is_ok_and(|p| p < n) => ps.push(p),
                    Ok(_) => {
                        refused.insert((name.clone(), p), ec::UNKNOWN_TOPIC_OR_PARTITION);
                    }
                    Err(code) => {
                        refused.insert((name.clone(), p), code);
                    }
                }
            }
            requested.push((name, ps));
        }
        let g = group.clone();
        let result = if group.is_empty() {
            Err(ec::INVALID_GROUP_ID)
        } else {
            b.on_group(&group, move |c| {
                offset_delete(c, g, requested).boxed_local()
            })
            .await
            .unwrap_or(Err(ec::COORDINATOR_NOT_AVAILABLE))
        };
        // Every requested partition answered, in the request's order.
        let result = result.map(|answered| {
            let mut codes: HashMap<(String, i32), i16> = answered
                .into_iter()
                .flat_map(|(t, ps)| ps.into_iter().map(move |(p, c)| ((t.clone(), p), c)))
                .collect();
            codes.extend(refused);
            body.topics
                .iter()
                .map(|t| {
                    let name = t.name.to_string();
                    let ps = t
                        .partitions
                        .iter()
                        .map(|p| {
                            let code = codes
                                .get(&(name.clone(), p.partition_index))
                                .copied()
                                .unwrap_or(ec::UNKNOWN_SERVER_ERROR);
                            (p.partition_index, code)
                        })
                        .collect::<Vec<_>>();
                    (name, ps)
                })
                .collect::<Vec<_>>()
        });
        let response = match result {
            Err(code) => OffsetDeleteResponse::default().with_error_code(code),
            Ok(topics) => OffsetDeleteResponse::default().with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetDeleteResponseTopic::default()
                            .with_name(TopicName(s(t)))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|(p, code)| {
                                        OffsetDeleteResponsePartition::default()
                                            .with_partition_index(p)
                                            .with_error_code(code)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

pub(super) fn dispatch_offset_commit(
    b: Rc<Broker>,
    h: RequestHeader,
    body: OffsetCommitRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let group = body.group_id.to_string();
        let now = b.cfg.clock.now_ms();
        let requested: Vec<(String, i32, Committed)> = body
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    (
                        t.name.to_string(),
                        p.partition_index,
                        Committed {
                            offset: p.committed_offset,
                            leader_epoch: p.committed_leader_epoch,
                            metadata: p
                                .committed_metadata
                                .as_ref()
                                .map(|m| m.to_string())
                                .unwrap_or_default(),
                            commit_timestamp: now,
                        },
                    )
                })
            })
            .collect();
        let n = requested.len();
        let (g, member, instance, generation) = (
            group.clone(),
            body.member_id.to_string(),
            body.group_instance_id.as_ref().map(|i| i.to_string()),
            body.generation_id_or_member_epoch,
        );
        let codes = b
            .on_group(&group, move |c| {
                commit(c, g, member, instance, generation, requested).boxed_local()
            })
            .await
            .unwrap_or_else(|| vec![ec::COORDINATOR_NOT_AVAILABLE; n]);
        let mut codes = codes.into_iter();
        let topics = body
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(codes.next().unwrap_or(ec::UNKNOWN_SERVER_ERROR))
                    })
                    .collect();
                OffsetCommitResponseTopic::default()
                    .with_name(t.name)
                    .with_partitions(partitions)
            })
            .collect();
        encode_response(&h, &OffsetCommitResponse::default().with_topics(topics)).map(Some)
    }
    .boxed_local())
}

/// (topic, [(partition, committed)]) of one group; `topics` None = every committed offset.
type Fetched = Vec<(String, Vec<(i32, Option<Committed>)>)>;

async fn fetch_group(
    b: &Rc<Broker>,
    group: String,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, i16> {
    let g = group.clone();
    b.on_group(&group, move |c| {
        async move {
            let map = c.groups.map.borrow();
            let offsets = map.get(&g).map(|grp| &grp.offsets);
            match topics {
                Some(topics) => topics
                    .into_iter()
                    .map(|(t, ps)| {
                        let found = ps
                            .into_iter()
                            .map(|p| {
                                let c = offsets.and_then(|o| o.get(&(t.clone(), p)).cloned());
                                (p, c)
                            })
                            .collect();
                        (t, found)
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<(i32, Option<Committed>)>> =
                        BTreeMap::new();
                    for ((t, p), c) in offsets.into_iter().flatten() {
                        by_topic
                            .entry(t.clone())
                            .or_default()
                            .push((*p, Some(c.clone())));
                    }
                    for v in by_topic.values_mut() {
                        v.sort_by_key(|(p, _)| *p);
                    }
                    by_topic.into_iter().collect()
                }
            }
        }
        .boxed_local()
    })
    .await
    .ok_or(ec::COORDINATOR_NOT_AVAILABLE)
}

/// OffsetFetch's topics from `fetched`, built by `topic` and `partition` (v8+ and older
/// versions have distinct types of the same shape). `partition` gets (partition, committed
/// offset, leader epoch, metadata); nothing committed is (-1, -1, "").
fn fetched_topics<T, P>(
    fetched: Fetched,
    topic: impl Fn(TopicName, Vec<P>) -> T,
    partition: impl Fn(i32, i64, i32, StrBytes) -> P,
) -> Vec<T> {
    fetched
        .into_iter()
        .map(|(t, ps)| {
            let ps = ps
                .into_iter()
                .map(|(p, c)| match c {
                    Some(c) => partition(p, c.offset, c.leader_epoch, s(c.metadata)),
                    None => partition(p, -1, -1, s("")),
                })
                .collect();
            topic(TopicName(s(t)), ps)
        })
        .collect()
}

pub(super) fn dispatch_offset_fetch(
    b: Rc<Broker>,
    h: RequestHeader,
    body: OffsetFetchRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let response = if h.api_version >= 8 {
            let mut groups = Vec::with_capacity(body.groups.len());
            for g in body.groups {
                let topics = g.topics.map(|ts| {
                    ts.into_iter()
                        .map(|t| (t.name.to_string(), t.partition_indexes))
                        .collect()
                });
                let out = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
                groups.push(
                    match fetch_group(&b, g.group_id.to_string(), topics).await {
                        Err(code) => out.with_error_code(code),
                        Ok(fetched) => out.with_topics(fetched_topics(
                            fetched,
                            |name, ps| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(name)
                                    .with_partitions(ps)
                            },
                            |p, o, e, m| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(e)
                                    .with_metadata(Some(m))
                            },
                        )),
                    },
                );
            }
            OffsetFetchResponse::default().with_groups(groups)
        } else {
            let topics = body.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            match fetch_group(&b, body.group_id.to_string(), topics).await {
                Err(code) => OffsetFetchResponse::default().with_error_code(code),
                Ok(fetched) => OffsetFetchResponse::default().with_topics(fetched_topics(
                    fetched,
                    |name, ps| {
                        OffsetFetchResponseTopic::default()
                            .with_name(name)
                            .with_partitions(ps)
                    },
                    |p, o, e, m| {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p)
                            .with_committed_offset(o)
                            .with_committed_leader_epoch(e)
                            .with_metadata(Some(m))
                    },
                )),
            }
        };
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

/// (group, protocol type, state) of every group this shard coordinates.
fn list_local(b: &Broker) -> Vec<(String, String, &'static str)> {
    b.groups
        .map
        .borrow()
        .iter()
        .map(|(name, g)| {
            (
                name.clone(),
                g.protocol_type.clone().unwrap_or_default(),
                g.state.name(),
            )
        })
        .collect()
}

pub(super) fn dispatch_list_groups(
    b: Rc<Broker>,
    h: RequestHeader,
    body: ListGroupsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let states: Vec<String> = body
            .states_filter
            .iter()
            .map(|s| s.to_ascii_lowercase())
            .collect();
        let mut groups = Vec::new();
        let mut code = ec::NONE;
        for shard in 0..b.shard_count() {
            match b
                .mesh
                .call(&b, shard, |o: &Rc<Broker>| {
                    let listed = list_local(o);
                    async move { listed }.boxed_local()
                })
                .await
            {
                Ok(listed) => groups.extend(listed),
                Err(_) => code = ec::COORDINATOR_NOT_AVAILABLE,
            }
        }
        groups.sort();
        let groups = groups
            .into_iter()
            .filter(|(_, _, state)| {
                states.is_empty() || states.contains(&state.to_ascii_lowercase())
            })
            .map(|(name, protocol_type, state)| {
                ListedGroup::default()
                    .with_group_id(kafka_protocol::messages::GroupId(s(name)))
                    .with_protocol_type(s(protocol_type))
                    .with_group_state(s(state))
            })
            .collect();
        let response = ListGroupsResponse::default()
            .with_error_code(code)
            .with_groups(groups);
        encode_response(&h, &response).map(Some)
    }
    .boxed_local())
}

/// One group as DescribeGroups shows it (on its coordinator shard).
fn describe_local(b: &Broker, group: &str) -> DescribedGroup {
    let out = DescribedGroup::default().with_group_id(kafka_protocol::messages::GroupId(s(group)));
    let map = b.groups.map.borrow();
    let Some(g) = map.get(group) else {
        return out.with_group_state(s("Dead"));
    };
    let members = g
        .members
        .iter()
        .map(|(id, m)| {
            let metadata = g.protocol_metadata(m).cloned().unwrap_or_default();
            DescribedGroupMember::default()
                .with_member_id(s(id.clone()))
                .with_group_instance_id(m.instance_id.clone().map(s))
                .with_client_id(s(m.client_id.clone()))
                .with_client_host(s(m.client_host.clone()))
                .with_member_metadata(metadata)
                .with_member_assignment(m.assignment.clone())
        })
        .collect();
    out.with_group_state(s(g.state.name()))
        .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()))
        .with_protocol_data(s(g.protocol.clone().unwrap_or_default()))
        .with_members(members)
}

pub(super) fn dispatch_describe_groups(
    b: Rc<Broker>,
    h: RequestHeader,
    body: DescribeGroupsRequest,
) -> Result<Completion, ProtocolError> {
    Ok(async move {
        let mut groups = Vec::with_capacity(body.groups.len());
        for g in body.groups {
            let name = g.to_string();
            let n = name.clone();
            let described = b
                .on_group(&name, move |c| {
                    let d = describe_local(&c, &n);
                    async move { d }.boxed_local()
                })
                .await
                .unwrap_or_else(|| {
                    DescribedGroup::default()
                        .with_group_id(g)
                        .with_error_code(ec::COORDINATOR_NOT_AVAILABLE)
                });
            groups.push(described);
        }
        encode_response(&h, &DescribeGroupsResponse::default().with_groups(groups)).map(Some)
    }
    .boxed_local())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_matches_kafka() {
        // "".hashCode() == 0, "a".hashCode() == 97, "hello".hashCode() == 99162322.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("a"), 97);
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants"), 0);
    }

    #[test]
    fn offsets_expire_after_the_later_of_empty_since_and_commit() {
        let c = |ts| Committed {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: ts,
        };
        let mut g = Group::default();
        g.offsets.insert(("t".into(), 0), c(1_000));
        g.offsets.insert(("t".into(), 1), c(5_000));
        assert!(expired(&g, 1_000_000, 100).is_empty(), "not seen empty yet");
        g.empty_since_ms = Some(2_000);
        assert!(expired(&g, 2_099, 100).is_empty());
        let keys = |v: Vec<((String, i32), Committed)>| {
            let mut k: Vec<i32> = v.into_iter().map(|((_, p), _)| p).collect();
            k.sort();
            k
        };
        assert_eq!(keys(expired(&g, 2_100, 100)), vec![0]);
        assert_eq!(keys(expired(&g, 5_100, 100)), vec![0, 1]);
        g.state = state::State::PreparingRebalance;
        assert!(
            expired(&g, 5_100, 100).is_empty(),
            "a group in a rebalance keeps its offsets"
        );
    }
}
