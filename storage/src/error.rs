//! Typed errors of the partition log.
//!
//! Owns what can go wrong in the log, with enough context (operation, file, position) to name the
//! problem. Must not log, decide policy or choose Kafka error codes: the broker maps a `LogError` to
//! the code a client sees, and callers choose whether an error closes a connection or fails a
//! partition.

use std::path::PathBuf;

use wire::batch::BatchError;

/// Everything that can go wrong in a partition log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A record set that breaks Kafka's batch rules (corrupt, legacy format, too large, invalid
    /// contents): none of it was appended.
    #[error(transparent)]
    Batch(#[from] BatchError),
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
    /// The log's queue of data not yet written is full: the disk is behind the producers.
    /// Retriable; nothing of the record set was queued.
    #[error("partition write queue full: {pending_bytes} bytes not yet written, {record_set_bytes} more would pass the bound of {pending_bytes_max} (pending_bytes_max); retry when the disk catches up")]
    PendingFull {
        pending_bytes: u64,
        record_set_bytes: u64,
        pending_bytes_max: u64,
    },
    /// The disk has no room for this log's next writes: appends are refused until a reservation
    /// succeeds again (space freed, e.g. by retention). Retriable; nothing was queued.
    #[error("no space left for {dir}: {reason}; appends resume once space is freed")]
    DiskFull { dir: PathBuf, reason: String },
    /// The log has been closed.
    #[error("log is closed")]
    Closed,
    /// Compaction could not re-compress the kept records of a batch.
    #[error("compacting the batch at offset {offset}: {source}")]
    Codec {
        offset: u64,
        source: wire::codec::CodecError,
    },
}

impl LogError {
    /// An I/O error with its operation and file.
    pub fn io(
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

impl LogError {
    /// An I/O failure because the filesystem is full (ENOSPC or EDQUOT).
    pub fn is_storage_full(&self) -> bool {
        match self {
            LogError::Io { source, .. } => {
                source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
            }
            _ => false,
        }
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
