//! storage — the partition log: Kafka record batches stored byte-for-byte in segment files written
//! with O_DIRECT through io_uring, sparse offset and time indexes, two watermarks (written,
//! durable), retention, compaction, recovery, and the tail cache that hands written buffers to
//! readers by reference.
//!
//! Architecture invariants: the log knows nothing of connections, Kafka requests or the
//! coordinator (it takes record sets and returns offsets and bytes; it does not choose Kafka error
//! codes — the broker maps `LogError` to them); everything is shard-local (`!Send`, `Rc`/`RefCell`)
//! and reached from other shards only by message passing.

pub mod compact;
pub mod config;
pub mod durable;
pub mod error;
pub mod failpoint;
pub mod index;
pub mod log;
mod readahead;
mod segment;
pub mod tail;

pub use compact::CompactionOutcome;
pub use config::{Clock, LogConfig, ManualClock};
pub use error::{LogError, Result};
pub use log::{AppendInfo, LogRead, PartitionLog, RetentionOutcome, Watermark, WriteStats};
pub use tail::LogBytes;
