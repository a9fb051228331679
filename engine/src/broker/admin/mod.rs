//! Admin APIs: DeleteTopics and DescribeCluster (the config APIs are in `configs`).
//!
//! Owns their meaning on this broker. Must not: delete a topic's files before its record is gone
//! from the coordinator (a restart would otherwise reopen a half-deleted topic), or touch another
//! shard's logs except through `Mesh` jobs.
//!
//! Layout: one file per API (`delete_topics`, `describe_cluster`); this file holds the topic
//! deletion they rest on.

mod delete_topics;
mod describe_cluster;

use std::rc::Rc;

use super::{Broker, EveryShardError};

impl Broker {
    /// Forgets a deleted topic on every shard: drops it from the cache, closes the logs each
    /// owner holds and removes their directories.
    async fn uninstall_topic(self: &Rc<Self>, name: &str) -> Result<(), EveryShardError> {
        let name = name.to_string();
        self.on_every_shard(move |b| {
            let name = name.clone();
            async move {
                b.topics.borrow_mut().remove(&name);
                b.record_zxids.borrow_mut().remove(&name);
                let partitions: Vec<_> = {
                    let mut partitions = b.partitions.borrow_mut();
                    let keys: Vec<_> = partitions
                        .keys()
                        .filter(|(t, _)| *t == name)
                        .cloned()
                        .collect();
                    keys.into_iter()
                        .filter_map(|k| partitions.remove(&k))
                        .collect()
                };
                for p in partitions {
                    let log = p.log();
                    if let Err(e) = log.close().await {
                        tracing::warn!(topic = %name, "closing a deleted topic's log: {e}");
                    }
                    // A control-plane path: a blocking removal is acceptable here.
                    if let Err(e) = std::fs::remove_dir_all(log.dir()) {
                        return Err(EveryShardError::RemoveDir {
                            dir: log.dir().to_path_buf(),
                            source: e,
                        });
                    }
                }
                Ok(())
            }
        })
        .await
    }
}
