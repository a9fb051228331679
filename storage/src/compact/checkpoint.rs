//! Compaction's durable progress: the `cleaner-offset-checkpoint` file of a partition.
//!
//! Owns its JSON format and reading it forgivingly (a missing, damaged or out-of-range file makes
//! the whole log dirty once: slower, never wrong). Must not decide what to clean.

use std::path::Path;

use crate::durable;
use crate::error::{LogError, Result};

use super::{CleanerState, CHECKPOINT_FILE};

/// What [`CHECKPOINT_FILE`] holds (JSON). Besides Kafka's first dirty offset it keeps what
/// Kafka finds elsewhere (the producer state snapshot) or recomputes: producers' last batches,
/// when the oldest kept tombstone comes due, and the `opaque` flag.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub(super) struct Checkpoint {
    version: u32,
    first_dirty: u64,
    tombstone_due: Option<i64>,
    opaque: bool,
    producer_last: Vec<(i64, u64)>,
}

/// The cleaner state saved in `dir`, or a fresh one (the whole log dirty once) if there is none,
/// it cannot be read, or it is past the log end (a log recreated under the same name).
pub(crate) fn load_checkpoint(dir: &Path, log_end: u64) -> CleanerState {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return CleanerState::default(),
        Err(e) => {
            tracing::warn!(path = %path.display(), "reading the cleaner checkpoint: {e}; the whole log counts as dirty");
            return CleanerState::default();
        }
    };
    match serde_json::from_slice::<Checkpoint>(&bytes) {
        Ok(c) if c.version == 1 && c.first_dirty <= log_end => CleanerState {
            running: false,
            first_dirty: c.first_dirty,
            tombstone_due: c.tombstone_due,
            opaque: c.opaque,
            producer_last: c.producer_last.into_iter().collect(),
        },
        Ok(c) => {
            tracing::warn!(path = %path.display(), first_dirty = c.first_dirty, log_end, version = c.version, "ignoring a cleaner checkpoint that does not fit the log; the whole log counts as dirty");
            CleanerState::default()
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), "damaged cleaner checkpoint: {e}; the whole log counts as dirty");
            CleanerState::default()
        }
    }
}

/// Saves the cleaner state durably (temporary file, fdatasync, rename, directory fsync).
pub(super) async fn save_checkpoint(dir: &Path, state: &CleanerState) -> Result<()> {
    let mut producer_last: Vec<(i64, u64)> =
        state.producer_last.iter().map(|(&p, &o)| (p, o)).collect();
    producer_last.sort_unstable();
    let checkpoint = Checkpoint {
        version: 1,
        first_dirty: state.first_dirty,
        tombstone_due: state.tombstone_due,
        opaque: state.opaque,
        producer_last,
    };
    let bytes = serde_json::to_vec(&checkpoint).map_err(|e| {
        LogError::io(
            "encoding the cleaner checkpoint",
            dir.join(CHECKPOINT_FILE),
            std::io::Error::other(e),
        )
    })?;
    durable::write_file_durably(dir, CHECKPOINT_FILE, &bytes).await
}
