//! The group coordinator's clocks, one task each per shard: the tick ([`TICK`]) that evicts
//! members whose session.timeout.ms or rebalance.timeout.ms passed and writes the metadata record
//! of groups that changed (and, at a clean stop, the records its next tick would have written),
//! and the offset expiry (offsets.retention.minutes of an empty group, checked every
//! offsets.retention.check.interval.ms).
//!
//! Owns when those happen and which offsets are expired. Must not: answer requests, or hold a
//! group's `RefCell` borrow across an await (every write goes through `persist`).

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::offsets::Committed;
use super::state::Group;
use crate::broker::Broker;

use super::persist::{delete_offsets, write_group_metadata};
use super::{state, Groups, TICK};

impl Groups {
    /// Evicts members whose session or rebalance timed out, notes when groups became empty, and
    /// forgets dead groups.
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
}

/// Starts the shard's group timer task.
pub(in crate::broker) fn start_timer(b: &Rc<Broker>) -> glommio::Task<()> {
    let weak = Rc::downgrade(b);
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(TICK).await;
            let Some(b) = weak.upgrade() else { return };
            let now_ms = b.cfg.clock.now_ms();
            b.groups.tick(b.cfg.clock.now_instant(), now_ms);
            write_group_metadata(&b, now_ms);
        }
    })
}

/// At a clean stop, before the logs close: the metadata records the next tick would have
/// written (a group whose generation completed or that became empty since the last tick), so a
/// restart right after a rebalance finds the group as it was.
pub(in crate::broker) fn write_pending_metadata(b: &Rc<Broker>) {
    write_group_metadata(b, b.cfg.clock.now_ms());
}

/// Starts the shard's offset expiry task (`offsets.retention.minutes`, checked every
/// `offsets.retention.check.interval.ms`).
pub(in crate::broker) fn start_expiry(b: &Rc<Broker>) -> glommio::Task<()> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::groups::offsets::Committed;
    use crate::broker::groups::state::Group;

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
