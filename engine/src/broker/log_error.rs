//! The Kafka error code a client sees for each way the partition log can fail.
//!
//! Owns that mapping (the log itself knows nothing of Kafka's codes). Must not decide policy: the
//! handlers choose whether an error fails one partition or the request.

use storage::LogError;
use wire::error_code;

/// The code a client should see for a log error.
pub trait KafkaCode {
    fn kafka_code(&self) -> i16;
}

impl KafkaCode for LogError {
    fn kafka_code(&self) -> i16 {
        match self {
            LogError::Batch(e) => e.kafka_code(),
            LogError::OffsetOutOfRange { .. } => error_code::OFFSET_OUT_OF_RANGE,
            // Backpressure (the disk is behind): retriable, as a Kafka producer sees a slow broker.
            LogError::PendingFull { .. } => error_code::REQUEST_TIMED_OUT,
            // A full disk: Kafka's KafkaStorageException, retriable; weir resumes by itself once
            // space is freed.
            LogError::DiskFull { .. } => error_code::KAFKA_STORAGE_ERROR,
            LogError::CorruptSegment { .. }
            | LogError::Io { .. }
            | LogError::Offline(_)
            | LogError::Closed
            | LogError::Codec { .. } => error_code::KAFKA_STORAGE_ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_are_kafka_storage_errors_and_bad_input_keeps_its_code() {
        let offline = LogError::Offline("write failed".into());
        assert_eq!(offline.kafka_code(), error_code::KAFKA_STORAGE_ERROR);
        let range = LogError::OffsetOutOfRange {
            offset: 9,
            log_start: 0,
            log_end: 3,
        };
        assert_eq!(range.kafka_code(), error_code::OFFSET_OUT_OF_RANGE);
        let full = LogError::PendingFull {
            pending_bytes: 1,
            record_set_bytes: 1,
            pending_bytes_max: 1,
        };
        assert_eq!(full.kafka_code(), error_code::REQUEST_TIMED_OUT);
        let disk_full = LogError::DiskFull {
            dir: "/data/t-0".into(),
            reason: "No space left on device".into(),
        };
        assert_eq!(disk_full.kafka_code(), error_code::KAFKA_STORAGE_ERROR);
        let batch = wire::batch::BatchError::InvalidRecord {
            position: 0,
            reason: "x".into(),
        };
        let batch_code = batch.kafka_code();
        assert_eq!(LogError::from(batch).kafka_code(), batch_code);
    }
}
