//! Restart: rebuilds this shard's groups (their committed offsets and their metadata record's
//! state) by replaying the `__consumer_offsets` partitions it owns when it opens them.
//!
//! Owns the order records are applied in (the log's). Must not: write to the log, or run after
//! the shard serves group requests for those partitions.

use std::rc::Rc;
use std::time::Instant;

use super::offsets::OffsetRecord;
use crate::broker::store::TopicMeta;
use crate::broker::Broker;

use super::{offsets, Groups, OFFSETS_TOPIC};

impl Groups {
    /// Applies one replayed record: a group's metadata (or its tombstone) or a committed offset.
    fn apply(&self, record: OffsetRecord, now: Instant) {
        let mut map = self.map.borrow_mut();
        match record {
            OffsetRecord::Group { group, value: None } => {
                map.remove(&group);
            }
            OffsetRecord::Group {
                group,
                value: Some(meta),
            } => {
                map.entry(group).or_default().restore(meta, now);
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

/// Rebuilds committed offsets from the `__consumer_offsets` partitions this shard owns.
pub(in crate::broker) async fn replay(b: &Rc<Broker>, topic: &TopicMeta) {
    for p in 0..topic.partitions.len() as i32 {
        let Some(log) = b.log(OFFSETS_TOPIC, p) else {
            continue;
        };
        let now = b.cfg.clock.now_instant();
        match offsets::replay(&log).await {
            Ok(records) => {
                let n = records.len();
                for r in records {
                    b.groups.apply(r, now);
                }
                tracing::info!(partition = p, records = n, "__consumer_offsets replayed");
            }
            Err(e) => tracing::error!(partition = p, "replaying __consumer_offsets: {e}"),
        }
    }
}
