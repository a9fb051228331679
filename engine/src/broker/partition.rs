//! Partition: what this shard holds for one partition it leads — the log, the idempotent
//! producers' state, the leader epoch and the high watermark — and the rules that bind them: an
//! idempotent batch is judged and appended in one synchronous step; retention evicts the producer
//! state below the new log start; expiry forgets idle producers; close snapshots the producer
//! table at the log end so the next open replays nothing.
//!
//! Must not: know requests or responses (the handlers translate outcomes into Kafka fields), or
//! be reached from another shard (it lives in its owner's `Broker`, behind `Rc`).
//!
//! Replication (the cluster issue) adds the in-sync replica set and the followers' positions here;
//! the high watermark then becomes the ISR's lowest log end instead of this replica's.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use bytes::Bytes;
use storage::config::{Clock, LogConfig};
use storage::error::LogError;
use storage::log::{PartitionLog, RetentionOutcome};
use wire::batch::{self, BatchError};

use super::idempotence::{self, Check, ProducerTable};
use super::log_error::KafkaCode;

/// Why an append was refused.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error("record batch: {0}")]
    Batch(#[from] BatchError),
    /// The producer table's verdict on an idempotent batch (a sequence gap, a fenced epoch).
    #[error("idempotent batch refused with Kafka code {0}")]
    Sequence(i16),
    #[error("log: {0}")]
    Log(#[from] LogError),
}

impl KafkaCode for AppendError {
    fn kafka_code(&self) -> i16 {
        match self {
            AppendError::Batch(e) => e.kafka_code(),
            AppendError::Sequence(code) => *code,
            AppendError::Log(e) => e.kafka_code(),
        }
    }
}

/// Offsets of an accepted batch: newly appended, or a retry answered with its original offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_offset: u64,
    pub last_offset: u64,
}

pub struct Partition {
    topic: String,
    index: i32,
    log: PartitionLog,
    producers: RefCell<ProducerTable>,
    /// Bumped by each leader election once the cluster issue lands; 0 on a single broker.
    leader_epoch: Cell<i32>,
}

impl Partition {
    /// Opens the log in `dir` and rebuilds its producer table (snapshot, then the log's tail).
    pub async fn open(
        topic: &str,
        index: i32,
        dir: &Path,
        config: LogConfig,
        clock: Clock,
        producer_id_expiration_ms: u64,
    ) -> Result<Rc<Partition>, LogError> {
        let log = PartitionLog::open(dir, config, clock.clone()).await?;
        let (producers, loaded) =
            ProducerTable::load(&log, clock.now_ms(), producer_id_expiration_ms).await?;
        tracing::info!(
            topic = %topic,
            partition = index,
            log_start = log.log_start_offset(),
            log_end = log.log_end_offset(),
            producers = producers.len(),
            snapshot = loaded.snapshot_offset,
            replayed_batches = loaded.replayed_batches,
            expired_producers = loaded.expired,
            "partition log open"
        );
        Ok(Rc::new(Partition {
            topic: topic.to_string(),
            index,
            log,
            producers: RefCell::new(producers),
            leader_epoch: Cell::new(0),
        }))
    }

    pub fn log(&self) -> &PartitionLog {
        &self.log
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.get()
    }

    /// The offset below which records are committed and visible to consumers. One replica: every
    /// written record (the log end).
    pub fn high_watermark(&self) -> u64 {
        let hw = self.log.log_end_offset();
        debug_assert!(hw <= self.log.next_offset());
        hw
    }

    /// Appends `records` (synchronously: the caller's order is the log's order). An idempotent
    /// batch is judged by the producer table first: a retry is answered with its original
    /// offsets, a gap or a fenced epoch refused. After a roll, the table's snapshot is written in
    /// a task of its own.
    pub fn append(&self, records: Bytes) -> Result<Appended, AppendError> {
        let idempotent = batch::idempotent_header(&records)?;
        let mut producers = self.producers.borrow_mut();
        let appended = match &idempotent {
            None => self.append_to_log(records)?,
            Some(h) => match producers.check(h) {
                Check::Append => {
                    let appended = self.append_to_log(records)?;
                    producers.record(h, appended.first_offset, appended.last_offset);
                    appended
                }
                Check::Duplicate {
                    first_offset,
                    last_offset,
                } => Appended {
                    first_offset,
                    last_offset,
                },
                Check::Refuse(code) => return Err(AppendError::Sequence(code)),
            },
        };
        if let Some((offset, bytes)) = producers.snapshot_due(self.log.active_segment_base()) {
            let dir = self.log.dir().to_path_buf();
            glommio::spawn_local(async move {
                if let Err(e) = idempotence::write_snapshot(&dir, offset, &bytes).await {
                    tracing::warn!(dir = %dir.display(), "producer-state snapshot: {e}");
                }
            })
            .detach();
        }
        Ok(appended)
    }

    fn append_to_log(&self, records: Bytes) -> Result<Appended, LogError> {
        let info = self.log.append(records, self.leader_epoch())?;
        // The append is synchronous on this shard: the batch is the log's last, its offsets
        // contiguous and in order.
        assert!(
            info.first_offset <= info.last_offset && info.last_offset + 1 == self.log.next_offset(),
            "append {}..={} but the log's next offset is {}",
            info.first_offset,
            info.last_offset,
            self.log.next_offset()
        );
        Ok(Appended {
            first_offset: info.first_offset,
            last_offset: info.last_offset,
        })
    }

    /// Deletes segments past retention; producers whose last batch fell below the new log start
    /// are forgotten, as Kafka does.
    pub fn apply_retention(&self) -> Result<RetentionOutcome, LogError> {
        let out = self.log.apply_retention()?;
        if !out.deleted_segments.is_empty() {
            self.producers
                .borrow_mut()
                .evict_before(out.log_start_offset);
        }
        Ok(out)
    }

    /// Forgets producers idle for `expiration_ms`; returns how many.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: u64) -> usize {
        self.producers.borrow_mut().expire(now_ms, expiration_ms)
    }

    /// Closes the log, then snapshots the whole producer table as of the log end.
    pub async fn close(&self) -> Result<(), LogError> {
        self.log.close().await?;
        let end = self.log.log_end_offset();
        let bytes = self.producers.borrow().encode_snapshot(end);
        if let Err(e) = idempotence::write_snapshot(self.log.dir(), end, &bytes).await {
            tracing::warn!(topic = %self.topic, partition = self.index, "producer-state snapshot: {e}");
        }
        Ok(())
    }
}
