//! Typed errors of the storage engine and their Kafka error codes.
//!
//! Owns the mapping from a storage failure to the code a Kafka client understands. Must not log or
//! decide policy: callers choose whether an error closes a connection or fails a partition.

use std::path::PathBuf;

/// Kafka protocol error codes the log can produce (from Kafka's `Errors` enum).
pub mod kafka_code {
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = 43;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const INVALID_RECORD: i16 = 87;
}

/// Everything that can go wrong in a partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The bytes are not a well-formed v2 record batch (bad magic, length or CRC).
    #[error("corrupt record batch at byte {position} of the record set: {reason}")]
    CorruptMessage { position: usize, reason: String },
    /// A message set in the pre-0.11 formats (magic 0 or 1): weir stores record batches v2 only.
    #[error("message format v{magic} at byte {position} of the record set is not supported: weir stores record batches v2 (Kafka clients 0.11 and later)")]
    UnsupportedMessageFormat { position: usize, magic: i8 },
    /// A batch larger than the partition's `max.message.bytes`.
    #[error("record batch of {size} bytes exceeds max.message.bytes = {max}")]
    MessageTooLarge { size: usize, max: usize },
    /// A well-formed batch whose contents break a rule (record count, offset deltas, empty batch).
    #[error("invalid record batch at byte {position} of the record set: {reason}")]
    InvalidRecord { position: usize, reason: String },
    /// A read below the log start offset or past the log end offset.
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: u64,
        log_start: u64,
        log_end: u64,
    },
    /// Data already on disk failed validation somewhere recovery may not truncate.
    #[error("corrupt segment {path} at byte {position}: {reason}")]
    CorruptSegment {
        path: PathBuf,
        position: u64,
        reason: String,
    },
    /// An I/O call failed; carries the operation and the file.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An earlier write or sync failed: the log refuses further work until reopened, because what
    /// reached the disk after a failed write is unknown.
    #[error("log is offline after an earlier failure: {0}")]
    Offline(String),
    /// The log has been closed.
    #[error("log is closed")]
    Closed,
    /// Compaction could not re-compress the kept records of a batch.
    #[error("compacting the batch at offset {offset}: {source}")]
    Codec {
        offset: u64,
        source: crate::codec::CodecError,
    },
}

impl LogError {
    /// The Kafka error code a client should see for this error.
    pub fn kafka_code(&self) -> i16 {
        match self {
            LogError::CorruptMessage { .. } => kafka_code::CORRUPT_MESSAGE,
            LogError::MessageTooLarge { .. } => kafka_code::MESSAGE_TOO_LARGE,
            LogError::UnsupportedMessageFormat { .. } => kafka_code::UNSUPPORTED_FOR_MESSAGE_FORMAT,
            LogError::InvalidRecord { .. } => kafka_code::INVALID_RECORD,
            LogError::OffsetOutOfRange { .. } => kafka_code::OFFSET_OUT_OF_RANGE,
            LogError::CorruptSegment { .. }
            | LogError::Io { .. }
            | LogError::Offline(_)
            | LogError::Closed
            | LogError::Codec { .. } => kafka_code::KAFKA_STORAGE_ERROR,
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        source: impl Into<std::io::Error>,
    ) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
