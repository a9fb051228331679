//! The broker: per-shard state (its partition logs, a cache of the coordinator's metadata) and
//! the Kafka request handlers, each in one shape: decode (in the dispatch stage, by
//! `protocol::request::decode_request`, so a malformed request closes the connection before
//! anything happens), apply (locally or on the owning shards), encode.
//!
//! Owns: what each API means on this broker, topic creation, which shard opens which log, and
//! closing logs at shutdown. Must not: parse frames or write to sockets (`protocol`, `shard`),
//! touch another shard's logs except through `Mesh` jobs, or hold a `RefCell` borrow across an
//! await.
//!
//! What production would do differently (later issues): multi-broker leadership and ISR from the
//! coordinator, metadata watches instead of read-through caching, fetch sessions, quotas.

mod admin;
mod api_versions;
mod configs;
mod dispatch;
mod fan_out;
mod fetch;
mod groups;
mod idempotence;
mod list_offsets;
mod log_error;
mod metadata;
mod partition;
mod produce;
pub mod store;
pub mod topic_config;
mod topics;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coord::client::{Client, ClientConfig};
use futures::future::LocalBoxFuture;
use futures::FutureExt;

use crate::shard::{Completion, ConnContext, Mesh, Service};
use partition::Partition;
use storage::config::Clock;
use store::TopicMeta;
use topic_config::TopicDefaults;
use wire::protocol::request::decode_request;
use wire::protocol::ProtocolError;

/// Broker settings (typed; only the CLI reads flags and files).
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    /// Host and port clients are told to connect to (Metadata).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// `broker.rack`: reported in Metadata (v1+) and DescribeCluster; `None` reports null.
    pub rack: Option<String>,
    /// Partition logs live in `<data_dir>/<topic>-<partition>/`.
    pub log_dir: PathBuf,
    /// Coordinator addresses.
    pub coord_servers: Vec<String>,
    /// Broker defaults for topic configs (`log.*` in Kafka's broker config).
    pub topic_defaults: TopicDefaults,
    /// `num.partitions`: partitions of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// `auto.create.topics.enable`.
    pub auto_create_topics: bool,
    /// `log.retention.check.interval.ms` (also how often idempotent producers expire).
    pub retention_check_interval_ms: u64,
    /// `producer.id.expiration.ms`: an idempotent producer whose last batch is older is
    /// forgotten (at open and at every retention check).
    pub producer_id_expiration_ms: u64,
    /// `offsets.retention.minutes`: committed offsets of a group without members expire this
    /// long after the group became empty (or after the commit, if later).
    pub offsets_retention_minutes: u64,
    /// `offsets.retention.check.interval.ms`: how often each shard expires offsets.
    pub offsets_retention_check_interval_ms: u64,
    /// `offsets.topic.segment.bytes`: segment.bytes of `__consumer_offsets` when it is created
    /// (Kafka's default is 100 MiB; weir's 16 MiB: group records are small, compaction sooner).
    pub offsets_topic_segment_bytes: u64,
    /// `group.initial.rebalance.delay.ms`: how long the first join of an empty group waits for
    /// more members before the first generation.
    pub group_initial_rebalance_delay_ms: u64,
    /// The clock the broker reads for time-based rules: wall time for retention, segment.ms,
    /// producer expiry, commit timestamps and offsets retention; its monotonic reading for group
    /// session and rebalance timeouts. Tests pass `Clock::Manual`. Waits that only bound how long
    /// a request is held (fetch max wait, produce timeout) run on real time.
    pub clock: Clock,
}

impl BrokerConfig {
    pub fn new(log_dir: PathBuf, coord_servers: Vec<String>) -> Self {
        BrokerConfig {
            node_id: 1,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9092,
            rack: None,
            log_dir,
            coord_servers,
            topic_defaults: TopicDefaults::default(),
            num_partitions: 1,
            auto_create_topics: true,
            retention_check_interval_ms: 300_000,
            producer_id_expiration_ms: idempotence::PRODUCER_ID_EXPIRATION_MS,
            group_initial_rebalance_delay_ms: groups::state::INITIAL_REBALANCE_DELAY_MS,
            offsets_retention_minutes: 10_080,
            offsets_retention_check_interval_ms: 600_000,
            offsets_topic_segment_bytes: 16 << 20,
            clock: Clock::System,
        }
    }
}

type TopicPartition = (String, i32);

/// One shard's broker.
pub struct Broker {
    mesh: Mesh<Broker>,
    cfg: Arc<BrokerConfig>,
    coord: Client,
    cluster_id: String,
    topics: RefCell<HashMap<String, Rc<TopicMeta>>>,
    /// The partitions this shard leads: log, producer state, epoch, high watermark.
    partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    /// The zxid of the newest topic record installed here, per topic (see `adopt`).
    record_zxids: RefCell<HashMap<String, u64>>,
    /// Serialises log opening on this shard (a control-plane path).
    opening: glommio::sync::Semaphore,
    /// Producer ids this shard may hand out (a block reserved in the coordinator).
    producer_ids: RefCell<std::ops::Range<i64>>,
    background: RefCell<Vec<glommio::Task<()>>>,
    /// The consumer groups this shard coordinates (see `groups`).
    groups: groups::Groups,
}

/// Errors starting a shard's broker.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("coordinator: {0}")]
    Store(#[from] store::StoreError),
    #[error("opening {topic}-{partition}: {source}")]
    Log {
        topic: String,
        partition: i32,
        source: storage::LogError,
    },
    #[error("topic {topic}: {source}")]
    Config {
        topic: String,
        source: topic_config::ConfigError,
    },
}

/// Why a change applied on every shard ([`Broker::on_every_shard`]) failed; the first shard's
/// failure is the answer.
#[derive(Debug, thiserror::Error)]
pub enum EveryShardError {
    /// A shard could not be reached (stopped, or gone while the job ran).
    #[error(transparent)]
    Shard(#[from] crate::shard::ShardError),
    /// A shard could not apply the change (opening a log, a topic's config).
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("removing {}: {source}", dir.display())]
    RemoveDir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// The function `shard::start` calls on each shard to make its broker.
pub fn builder(
    cfg: BrokerConfig,
) -> impl Fn(Mesh<Broker>) -> LocalBoxFuture<'static, Result<Rc<Broker>, String>> + Send + Sync + 'static
{
    let cfg = Arc::new(cfg);
    move |mesh| {
        let cfg = cfg.clone();
        async move { Broker::start(mesh, cfg).await.map_err(|e| e.to_string()) }.boxed_local()
    }
}

impl Broker {
    async fn start(mesh: Mesh<Broker>, cfg: Arc<BrokerConfig>) -> Result<Rc<Broker>, BrokerError> {
        let mut ccfg = ClientConfig::new(cfg.coord_servers.clone());
        ccfg.session_timeout_ms = 0;
        let coord = Client::connect(ccfg)
            .await
            .map_err(store::StoreError::from)?;
        let cluster_id = store::bootstrap(&coord).await?;
        let topics = store::list_topics(&coord).await?;
        let broker = Rc::new(Broker {
            mesh,
            cfg,
            coord,
            cluster_id,
            topics: RefCell::new(HashMap::new()),
            partitions: RefCell::new(HashMap::new()),
            record_zxids: RefCell::new(HashMap::new()),
            opening: glommio::sync::Semaphore::new(1),
            producer_ids: RefCell::new(0..0),
            background: RefCell::new(Vec::new()),
            groups: groups::Groups::default(),
        });
        for topic in topics {
            let topic = Rc::new(topic);
            broker
                .topics
                .borrow_mut()
                .insert(topic.name.clone(), topic.clone());
            broker.open_owned_logs(&topic).await?;
            if topic.name == groups::OFFSETS_TOPIC {
                groups::replay(&broker, &topic).await;
            }
        }
        let weak = Rc::downgrade(&broker);
        let period = Duration::from_millis(broker.cfg.retention_check_interval_ms.max(1));
        let retention = glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(period).await;
                let Some(b) = weak.upgrade() else { return };
                b.apply_retention();
                b.compact_logs().await;
            }
        });
        broker.background.borrow_mut().push(retention);
        let group_timer = groups::start_timer(&broker);
        broker.background.borrow_mut().push(group_timer);
        let expiry = groups::start_expiry(&broker);
        broker.background.borrow_mut().push(expiry);
        tracing::info!(
            shard = broker.mesh.shard_id(),
            partitions = broker.partitions.borrow().len(),
            "broker shard ready"
        );
        Ok(broker)
    }

    fn shard_count(&self) -> usize {
        self.mesh.shard_count()
    }

    /// The shard owning `partition` of `topic` (as recorded; folded onto the running shards if
    /// the broker now runs fewer).
    fn owner(&self, topic: &TopicMeta, partition: i32) -> Option<usize> {
        let p = topic.partitions.get(usize::try_from(partition).ok()?)?;
        Some(p.shard as usize % self.shard_count())
    }

    fn partition(&self, topic: &str, partition: i32) -> Option<Rc<Partition>> {
        self.partitions
            .borrow()
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    /// The log of a partition this shard leads (for the group coordinator's own records, which
    /// bypass the producer rules).
    fn log(&self, topic: &str, partition: i32) -> Option<storage::PartitionLog> {
        self.partition(topic, partition).map(|p| p.log().clone())
    }

    /// Every partition this shard leads, with its key (a snapshot: no borrow is held).
    fn partitions(&self) -> Vec<(TopicPartition, Rc<Partition>)> {
        self.partitions
            .borrow()
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    /// The log config of `topic`: the broker's defaults and the topic's overrides in force.
    fn log_config_of(
        &self,
        topic: &TopicMeta,
    ) -> Result<storage::config::LogConfig, topic_config::ConfigError> {
        let overrides = topic_config::effective_overrides(&topic.name, &topic.configs);
        topic_config::log_config(&self.cfg.topic_defaults, &overrides)
    }

    /// Opens the logs of `topic` that this shard owns and has not opened yet.
    async fn open_owned_logs(self: &Rc<Self>, topic: &TopicMeta) -> Result<(), BrokerError> {
        let overrides = topic_config::effective_overrides(&topic.name, &topic.configs);
        let config =
            topic_config::log_config(&self.cfg.topic_defaults, &overrides).map_err(|source| {
                BrokerError::Config {
                    topic: topic.name.clone(),
                    source,
                }
            })?;
        let _permit = self.opening.acquire_permit(1).await;
        for partition in 0..topic.partitions.len() as i32 {
            if self.owner(topic, partition) != Some(self.mesh.shard_id())
                || self.partition(&topic.name, partition).is_some()
            {
                continue;
            }
            let dir = self.cfg.log_dir.join(format!("{}-{partition}", topic.name));
            let opened = Partition::open(
                &topic.name,
                partition,
                &dir,
                config.clone(),
                self.cfg.clock.clone(),
                self.cfg.producer_id_expiration_ms,
            )
            .await
            .map_err(|source| BrokerError::Log {
                topic: topic.name.clone(),
                partition,
                source,
            })?;
            self.partitions
                .borrow_mut()
                .insert((topic.name.clone(), partition), opened);
        }
        Ok(())
    }

    /// A topic's metadata: from the cache, else from the coordinator.
    async fn topic(
        self: &Rc<Self>,
        name: &str,
    ) -> Result<Option<Rc<TopicMeta>>, store::StoreError> {
        if let Some(t) = self.topics.borrow().get(name) {
            return Ok(Some(t.clone()));
        }
        let Some(t) = store::get_topic(&self.coord, name).await? else {
            return Ok(None);
        };
        // A newer record may have been installed while this one was read: keep that.
        let t = self
            .topics
            .borrow_mut()
            .entry(name.to_string())
            .or_insert_with(|| Rc::new(t))
            .clone();
        Ok(Some(t))
    }

    /// Every topic, freshly listed from the coordinator.
    async fn all_topics(self: &Rc<Self>) -> Result<Vec<Rc<TopicMeta>>, store::StoreError> {
        let list = store::list_topics(&self.coord).await?;
        let mut cache = self.topics.borrow_mut();
        Ok(list
            .into_iter()
            .map(|t| {
                let t = Rc::new(t);
                cache.insert(t.name.clone(), t.clone());
                t
            })
            .collect())
    }

    /// Makes a new or grown topic known on every shard and opens its logs on their owners.
    /// `zxid` is that of the record's write (0 if unknown: a creation).
    async fn install_topic(
        self: &Rc<Self>,
        topic: TopicMeta,
        zxid: u64,
    ) -> Result<(), EveryShardError> {
        tracing::debug!(topic = %topic.name, from = self.mesh.shard_id(), "installing topic");
        self.on_every_shard(move |b| {
            let topic = topic.clone();
            async move {
                let (topic, _) = b.adopt(topic, zxid);
                tracing::debug!(topic = %topic.name, shard = b.mesh.shard_id(), "opening topic's logs");
                Ok(b.open_owned_logs(&topic).await?)
            }
        })
        .await
    }

    /// Caches a topic record unless a newer one (larger zxid) is cached already; returns the
    /// record to use and whether it is the one given. Records broadcast from different shards
    /// (CreatePartitions, AlterConfigs) may arrive out of order; the newer one was written after
    /// the older by compare-and-set, so it holds every change of the older.
    fn adopt(&self, topic: TopicMeta, zxid: u64) -> (Rc<TopicMeta>, bool) {
        let mut zxids = self.record_zxids.borrow_mut();
        let last = zxids.entry(topic.name.clone()).or_insert(0);
        let cached = self.topics.borrow().get(&topic.name).cloned();
        match cached {
            Some(cached) if zxid < *last => (cached, false),
            _ => {
                *last = zxid;
                let topic = Rc::new(topic);
                self.topics
                    .borrow_mut()
                    .insert(topic.name.clone(), topic.clone());
                (topic, true)
            }
        }
    }

    /// Runs `job` on every shard (this one included) and waits until all have finished; the first
    /// error wins.
    async fn on_every_shard<J, F>(self: &Rc<Self>, job: J) -> Result<(), EveryShardError>
    where
        J: Fn(Rc<Broker>) -> F + Clone + Send + 'static,
        F: std::future::Future<Output = Result<(), EveryShardError>> + 'static,
    {
        let mut pending = Vec::new();
        for shard in 0..self.shard_count() {
            let job = job.clone();
            let fut = self
                .mesh
                .submit(self, shard, move |b: &Rc<Broker>| {
                    job(b.clone()).boxed_local()
                })
                .await?;
            pending.push(fut);
        }
        for r in futures::future::join_all(pending).await {
            r??;
        }
        Ok(())
    }

    /// One compaction pass over each compacted log this shard owns, one log at a time (the pass
    /// yields between chunks, so produce and fetch go on).
    async fn compact_logs(&self) {
        let compacted = self
            .partitions()
            .into_iter()
            .filter(|(_, p)| p.log().config().cleanup_compact);
        for ((topic, partition), p) in compacted {
            let started = std::time::Instant::now();
            match p.log().compact().await {
                Ok(Some(out)) => tracing::info!(
                    %topic, partition, segments_before = out.segments_before,
                    segments_after = out.segments_after, bytes_before = out.bytes_before,
                    bytes_after = out.bytes_after, removed = out.records_removed,
                    cleaned_to = out.cleaned_to, elapsed_ms = started.elapsed().as_millis() as u64,
                    "compacted"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(%topic, partition, "compaction failed: {e}"),
            }
        }
    }

    fn apply_retention(&self) {
        let now = self.cfg.clock.now_ms();
        for ((topic, partition), p) in self.partitions() {
            match p.apply_retention() {
                Ok(out) if !out.deleted_segments.is_empty() => tracing::info!(
                    %topic, partition, deleted = out.deleted_segments.len(),
                    log_start = out.log_start_offset, "retention deleted segments"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(%topic, partition, "retention failed: {e}"),
            }
            let expired = p.expire_producers(now, self.cfg.producer_id_expiration_ms);
            if expired > 0 {
                tracing::info!(%topic, partition, expired, "idempotent producers expired");
            }
        }
    }
}

impl Service for Broker {
    fn dispatch(
        self: Rc<Self>,
        frame: Bytes,
        conn: &Rc<ConnContext>,
    ) -> LocalBoxFuture<'static, Result<Completion, ProtocolError>> {
        // Everything done to the bytes without state (header, version, guard, body decode),
        // then the handler the API table names for the body's type (`dispatch`).
        match decode_request(frame) {
            Ok(req) => req.body.dispatch(dispatch::Call {
                broker: self,
                conn: conn.clone(),
                header: req.header,
            }),
            Err(e) => dispatch::ready(Err(e)),
        }
    }

    fn shutdown(self: Rc<Self>) -> LocalBoxFuture<'static, ()> {
        async move {
            self.background.borrow_mut().clear();
            groups::write_pending_metadata(&self);
            let partitions: Vec<_> = self.partitions.borrow_mut().drain().collect();
            let closes = partitions
                .into_iter()
                .map(|((topic, partition), p)| async move {
                    match p.close().await {
                        Ok(()) => tracing::info!(%topic, partition, "partition log closed"),
                        Err(e) => tracing::error!(%topic, partition, "closing log: {e}"),
                    }
                });
            futures::future::join_all(closes).await;
        }
        .boxed_local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These messages reach clients (CreateTopics', CreatePartitions' and AlterConfigs' error
    /// messages): the typed errors keep the wording the strings had.
    #[test]
    fn every_shard_errors_read_as_before() {
        let config = EveryShardError::from(BrokerError::Config {
            topic: "t".into(),
            source: topic_config::ConfigError::SegmentBytesBelowMinimum(9),
        });
        assert_eq!(
            config.to_string(),
            "topic t: segment.bytes=9 is below Kafka's minimum of 14"
        );
        let stopped = EveryShardError::from(crate::shard::ShardError::Stopped(3));
        assert_eq!(stopped.to_string(), "shard 3 has stopped");
        let removing = EveryShardError::RemoveDir {
            dir: PathBuf::from("/data/t-0"),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        };
        assert_eq!(
            removing.to_string(),
            "removing /data/t-0: permission denied"
        );
    }
}
