//! Writes to `__consumer_offsets` for the group APIs and timers: group metadata records,
//! durable appends of commits, and tombstones (deleted or expired offsets, deleted groups).
//!
//! Owns how a write becomes visible: the in-memory state changes only after the write is durable
//! (or, for the informational metadata record, after it was appended). Must not: decide what to
//! write (the handlers and timers do), or run anywhere but the group's coordinator shard.

use crate::broker::log_error::KafkaCode;
use std::rc::Rc;

use super::offsets::Committed;
use super::state::Group;
use crate::broker::Broker;
use storage::log::Watermark;
use wire::error_code as ec;

use super::{offsets, partition_for, COMMIT_TIMEOUT, OFFSETS_TOPIC};

/// A group's metadata record as Kafka writes it (members with their subscription for the chosen
/// protocol and their assignment).
pub(super) fn group_meta(g: &Group, now_ms: i64) -> offsets::GroupMeta {
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
pub(super) fn write_group_metadata(b: &Rc<Broker>, now_ms: i64) {
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
pub(super) async fn write_emptied_group(b: &Broker, group: &str) {
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

/// Appends `batch` to the group's `__consumer_offsets` partition (on this, its coordinator shard)
/// and waits until it is durable; returns the batch's last offset. `appended` runs right after
/// the append, before any await, so what it records about the group follows the log's order.
pub(super) async fn append_durable(
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
pub(super) async fn delete_offsets(
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
