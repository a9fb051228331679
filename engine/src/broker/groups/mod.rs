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
//!
//! Layout: one file per group API (`find_coordinator`, `join_group`, `sync_group`, `heartbeat`,
//! `leave_group`, `offset_commit`, `offset_fetch`, `list_groups`, `describe_groups`,
//! `delete_groups`, `offset_delete`), the writes to `__consumer_offsets` in `persist`, the timers in
//! `timers`, the restart in `replay`; this file holds the routing (group → coordinator shard) and
//! the shard's group map.

mod delete_groups;
mod describe_groups;
mod find_coordinator;
mod heartbeat;
mod join_group;
mod leave_group;
mod list_groups;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
pub mod offsets;
mod persist;
mod replay;
pub mod state;
mod sync_group;
mod timers;

pub(super) use replay::replay;
pub(super) use timers::{start_expiry, start_timer, write_pending_metadata};

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use kafka_protocol::protocol::StrBytes;

use self::state::Group;
use super::store::TopicMeta;
use super::Broker;
use wire::error_code as ec;

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
}
