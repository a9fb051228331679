//! The broker's metadata in the coordinator: the cluster id, and one znode per topic holding its
//! id, partitions (leader node and owning shard of each) and configs (Kafka's names).
//!
//! Layout: `/weir/cluster_id` (the id as UTF-8), `/weir/topics/<name>` (JSON `TopicMeta`).
//! Owns that layout and its encoding. Must not cache (the broker does) or use anything but the
//! coordinator's public client API.

use std::collections::BTreeMap;

use coord::client::{Client, ClientError};
use coord::client::{CreateMode, ZkError};
use serde::{Deserialize, Serialize};

const ROOT: &str = "/weir";
const TOPICS: &str = "/weir/topics";
const CLUSTER_ID: &str = "/weir/cluster_id";
const PRODUCER_ID_BLOCKS: &str = "/weir/producer_id_blocks";
/// Producer ids reserved at a time by one shard.
pub const PRODUCER_ID_BLOCK: i64 = 1000;

/// A topic as recorded in the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    /// Kafka topic id (UUID, hyphenated).
    pub topic_id: String,
    pub partitions: Vec<PartitionMeta>,
    /// Topic config overrides, by Kafka name.
    pub configs: BTreeMap<String, String>,
}

/// Where one partition lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    /// The broker leading it.
    pub leader: i32,
    /// The shard of that broker that owns its log.
    pub shard: u32,
}

impl TopicMeta {
    pub fn uuid(&self) -> uuid::Uuid {
        uuid::Uuid::parse_str(&self.topic_id).unwrap_or_default()
    }
}

/// Errors talking to the coordinator or reading what it holds.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("coordinator: {0}")]
    Coord(#[from] ClientError),
    #[error("corrupt metadata at {path}: {reason}")]
    Corrupt { path: String, reason: String },
}

fn is_exists(e: &ClientError) -> bool {
    matches!(e.zk(), Some(ZkError::NodeExists))
}

fn is_no_node(e: &ClientError) -> bool {
    matches!(e.zk(), Some(ZkError::NoNode))
}

async fn create_if_absent(c: &Client, path: &str, data: &[u8]) -> Result<(), StoreError> {
    match c.create(path, data, CreateMode::Persistent).await {
        Ok(_) => Ok(()),
        Err(e) if is_exists(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates the layout if needed and returns the cluster id (the first broker to ask picks it).
pub async fn bootstrap(c: &Client) -> Result<String, StoreError> {
    create_if_absent(c, ROOT, b"").await?;
    create_if_absent(c, TOPICS, b"").await?;
    create_if_absent(c, PRODUCER_ID_BLOCKS, b"").await?;
    let fresh = uuid::Uuid::new_v4().simple().to_string();
    create_if_absent(c, CLUSTER_ID, fresh.as_bytes()).await?;
    let (data, _) = c.get(CLUSTER_ID).await?;
    String::from_utf8(data).map_err(|_| StoreError::Corrupt {
        path: CLUSTER_ID.into(),
        reason: "not UTF-8".into(),
    })
}

fn topic_path(name: &str) -> String {
    format!("{TOPICS}/{name}")
}

fn decode(path: &str, data: &[u8]) -> Result<TopicMeta, StoreError> {
    serde_json::from_slice(data).map_err(|e| StoreError::Corrupt {
        path: path.into(),
        reason: e.to_string(),
    })
}

/// One topic, if it exists.
pub async fn get_topic(c: &Client, name: &str) -> Result<Option<TopicMeta>, StoreError> {
    let path = topic_path(name);
    match c.get(&path).await {
        Ok((data, _)) => decode(&path, &data).map(Some),
        Err(e) if is_no_node(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Every topic.
pub async fn list_topics(c: &Client) -> Result<Vec<TopicMeta>, StoreError> {
    let mut topics = Vec::new();
    for name in c.children(TOPICS).await? {
        if let Some(t) = get_topic(c, &name).await? {
            topics.push(t);
        }
    }
    Ok(topics)
}

/// Records a new topic; `false` if one of that name exists.
pub async fn create_topic(c: &Client, topic: &TopicMeta) -> Result<bool, StoreError> {
    let data = serde_json::to_vec(topic).map_err(|e| StoreError::Corrupt {
        path: topic_path(&topic.name),
        reason: e.to_string(),
    })?;
    match c
        .create(&topic_path(&topic.name), &data, CreateMode::Persistent)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if is_exists(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Reserves a block of producer ids no other shard or broker will get: the sequence number of a
/// sequential znode (the parent's counter only grows, so the znode is deleted at once).
pub async fn reserve_producer_ids(c: &Client) -> Result<std::ops::Range<i64>, StoreError> {
    let path = c
        .create(
            &format!("{PRODUCER_ID_BLOCKS}/block-"),
            b"",
            CreateMode::PersistentSequential,
        )
        .await?;
    let seq: i64 = path
        .rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            path: path.clone(),
            reason: "sequential znode without a number".into(),
        })?;
    if let Err(e) = c.delete(&path, -1).await {
        tracing::debug!(%path, "deleting a producer id block marker: {e}");
    }
    let start = seq * PRODUCER_ID_BLOCK;
    Ok(start..start + PRODUCER_ID_BLOCK)
}

/// Removes a topic's record; `false` if there was none.
pub async fn delete_topic(c: &Client, name: &str) -> Result<bool, StoreError> {
    match c.delete(&topic_path(name), -1).await {
        Ok(()) => Ok(true),
        Err(e) if is_no_node(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Records more partitions for an existing topic (compare-and-set on the topic's znode, so two
/// concurrent changes cannot both apply). `partitions` is the new total; the new partitions get
/// `assign(index)` as their owner shard. Returns the new record and the zxid of its write, or
/// the current partition count if that is not smaller; `Ok(None)` if the topic does not exist.
pub async fn grow_topic(
    c: &Client,
    name: &str,
    partitions: usize,
    leader: i32,
    assign: impl Fn(usize) -> u32,
) -> Result<Option<Result<(TopicMeta, u64), usize>>, StoreError> {
    let path = topic_path(name);
    let (data, stat) = match c.get(&path).await {
        Ok(found) => found,
        Err(e) if is_no_node(&e) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut topic = decode(&path, &data)?;
    let current = topic.partitions.len();
    if partitions <= current {
        return Ok(Some(Err(current)));
    }
    for p in current..partitions {
        topic.partitions.push(PartitionMeta {
            leader,
            shard: assign(p),
        });
    }
    let data = serde_json::to_vec(&topic).map_err(|e| StoreError::Corrupt {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let stat = c.set(&path, &data, stat.version).await?;
    Ok(Some(Ok((topic, stat.mzxid))))
}

/// Changes a topic's configs by compare-and-set on its znode (a concurrent change makes `change`
/// run again on the newer record). `change` maps the current overrides to the new ones or refuses.
/// Returns the topic as recorded and the zxid of the change (later changes have larger zxids, so
/// shards can ignore a change that arrives after a newer one); `Ok(None)` if there is no topic.
pub async fn alter_topic_configs<E>(
    c: &Client,
    name: &str,
    mut change: impl FnMut(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, E>,
) -> Result<Option<Result<(TopicMeta, u64), E>>, StoreError> {
    let path = topic_path(name);
    loop {
        let (data, stat) = match c.get(&path).await {
            Ok(found) => found,
            Err(e) if is_no_node(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut topic = decode(&path, &data)?;
        topic.configs = match change(&topic.configs) {
            Ok(configs) => configs,
            Err(e) => return Ok(Some(Err(e))),
        };
        let data = serde_json::to_vec(&topic).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        match c.set(&path, &data, stat.version).await {
            Ok(stat) => return Ok(Some(Ok((topic, stat.mzxid)))),
            Err(e) if matches!(e.zk(), Some(ZkError::BadVersion)) => continue,
            Err(e) if is_no_node(&e) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}
