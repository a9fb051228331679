//! engine — the broker's data plane. This first layer is the partition log: Kafka record batches
//! stored byte-for-byte in segment files written with O_DIRECT through io_uring (glommio), with
//! sparse offset and time indexes, two watermarks (written, durable), retention and recovery.
//!
//! Architecture invariant: everything here is shard-local (`!Send`), and knows nothing of
//! connections or the Kafka request layer; errors carry the Kafka code a client should see.

pub mod batch;
pub mod broker;
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

pub use config::{Clock, LogConfig};
pub use error::{LogError, Result};
pub use log::{AppendInfo, LogRead, PartitionLog, RetentionOutcome, Watermark};
pub use tail::LogBytes;
