//! CreateTopics, and the topic creation shared with Metadata's auto-create.
//!
//! Owns: validation (name, partitions, replication factor, configs), the partition→shard
//! assignment (deterministic: topic hash + partition, modulo shards; recorded in the
//! coordinator), and making a created topic usable on every shard before answering.
//! Must not: answer before the topic's logs are open on their owners.
//!
//! Layout: one file per API (`create_topics`, `create_partitions`); this file holds topic creation
//! and growth, shared with Metadata's auto-create and the group coordinator's offsets topic.

mod create_partitions;
mod create_topics;

use std::collections::BTreeMap;
use std::rc::Rc;

use super::store::{self, PartitionMeta, TopicMeta};
use super::topic_config::{log_config, validate_topic_name};
use super::Broker;
use wire::error_code as ec;

/// Most partitions one topic may have (a limit on everything).
const PARTITIONS_MAX: i32 = 10_000;

/// FNV-1a: a stable hash (std's hasher is randomised per process).
fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Why a topic was not created: a Kafka code and a message.
pub(super) struct CreateError(pub i16, pub String);

impl Broker {
    /// The shard a new partition is given: consecutive partitions of a topic on consecutive
    /// shards, starting at a hash of its name.
    fn initial_shard(&self, topic: &str, partition: usize) -> u32 {
        (stable_hash(topic).wrapping_add(partition as u64) % self.shard_count() as u64) as u32
    }

    /// Raises a topic's partition count to `count` and opens the new logs on their owners.
    async fn grow_topic(
        self: &Rc<Self>,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), CreateError> {
        if !(1..=PARTITIONS_MAX).contains(&count) {
            return Err(CreateError(
                ec::INVALID_PARTITIONS,
                format!("number of partitions must be in 1..={PARTITIONS_MAX}, got {count}"),
            ));
        }
        let Some(current) = self.topic(name).await.map_err(coord_error)? else {
            return Err(CreateError(
                ec::UNKNOWN_TOPIC_OR_PARTITION,
                format!("no topic {name:?}"),
            ));
        };
        if count as usize <= current.partitions.len() {
            return Err(CreateError(
                ec::INVALID_PARTITIONS,
                format!(
                    "topic {name:?} already has {} partitions",
                    current.partitions.len()
                ),
            ));
        }
        if validate_only {
            return Ok(());
        }
        let grown = store::grow_topic(&self.coord, name, count as usize, self.cfg.node_id, |p| {
            self.initial_shard(name, p)
        })
        .await
        .map_err(coord_error)?;
        let (topic, zxid) = match grown {
            None => {
                return Err(CreateError(
                    ec::UNKNOWN_TOPIC_OR_PARTITION,
                    format!("no topic {name:?}"),
                ))
            }
            Some(Err(has)) => {
                return Err(CreateError(
                    ec::INVALID_PARTITIONS,
                    format!("topic {name:?} already has {has} partitions"),
                ))
            }
            Some(Ok(grown)) => grown,
        };
        tracing::info!(topic = name, partitions = count, "partitions added");
        self.install_topic(topic, zxid)
            .await
            .map_err(|e| CreateError(ec::UNKNOWN_SERVER_ERROR, e.to_string()))
    }

    /// Validates and creates a topic; returns it once every shard knows it and its logs are open.
    pub(super) async fn create_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMeta, CreateError> {
        validate_topic_name(name)
            .map_err(|e| CreateError(ec::INVALID_TOPIC_EXCEPTION, e.to_string()))?;
        let partitions = if partitions == -1 {
            self.cfg.num_partitions
        } else {
            partitions
        };
        if !(1..=PARTITIONS_MAX).contains(&partitions) {
            return Err(CreateError(
                ec::INVALID_PARTITIONS,
                format!("number of partitions must be in 1..={PARTITIONS_MAX}, got {partitions}"),
            ));
        }
        if replication_factor != -1 && replication_factor != 1 {
            return Err(CreateError(
                ec::INVALID_REPLICATION_FACTOR,
                format!("replication factor {replication_factor} exceeds the 1 available broker"),
            ));
        }
        log_config(&self.cfg.topic_defaults, &configs)
            .map_err(|e| CreateError(ec::INVALID_CONFIG, e.to_string()))?;
        let topic = TopicMeta {
            name: name.to_string(),
            topic_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            partitions: (0..partitions as usize)
                .map(|p| PartitionMeta {
                    leader: self.cfg.node_id,
                    shard: self.initial_shard(name, p),
                })
                .collect(),
            configs,
        };
        if validate_only {
            if self.topic(name).await.map_err(coord_error)?.is_some() {
                return Err(exists(name));
            }
            return Ok(topic);
        }
        if !store::create_topic(&self.coord, &topic)
            .await
            .map_err(coord_error)?
        {
            return Err(exists(name));
        }
        tracing::info!(topic = name, partitions, "topic created");
        self.install_topic(topic.clone(), 0)
            .await
            .map_err(|e| CreateError(ec::UNKNOWN_SERVER_ERROR, e.to_string()))?;
        Ok(topic)
    }
}

fn exists(name: &str) -> CreateError {
    CreateError(
        ec::TOPIC_ALREADY_EXISTS,
        format!("topic {name:?} already exists"),
    )
}

fn coord_error(e: store::StoreError) -> CreateError {
    CreateError(ec::REQUEST_TIMED_OUT, e.to_string())
}
