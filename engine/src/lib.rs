//! engine — the broker's data plane: the partition log (Kafka record batches stored byte-for-byte
//! in segment files written with O_DIRECT through io_uring, sparse indexes, two watermarks,
//! retention, recovery), the shard runtime (one pinned glommio executor per core, SO_REUSEPORT
//! listeners, cross-shard message passing), the Kafka wire protocol, and the broker that gives
//! each API its meaning.
//!
//! Architecture invariants: the log knows nothing of connections or Kafka requests (it takes record
//! sets and returns offsets and bytes); everything stateful is shard-local (`!Send`) and reached
//! from other shards only through `shard::Mesh` jobs; errors carry the Kafka code a client should
//! see.

pub mod batch;
pub mod broker;
pub mod codec;
pub mod compact;
pub mod config;
pub mod error;
pub mod index;
pub mod inspect;
pub mod log;
pub mod protocol;
mod readahead;
mod segment;
pub mod shard;
pub mod tail;

pub use compact::CompactionOutcome;
pub use config::{Clock, LogConfig};
pub use error::{LogError, Result};
pub use log::{AppendInfo, LogRead, PartitionLog, RetentionOutcome, Watermark};
pub use tail::LogBytes;
