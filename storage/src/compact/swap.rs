//! The crash-safe swap of a compacted group (step 3 of the crash-safety list in `compact`)
//! and its recovery when a log opens: a commit marker means finish the swap, `.cleaned` files
//! without one are removed.
//!
//! Owns file names of the swap (`.cleaned`, `.swap`) and every step after the commit point, each
//! idempotent. Must not write record data or touch segments in memory (`clean_group` does).

use std::path::Path;

use crate::durable;
use crate::error::{LogError, Result};
use crate::failpoint;
use crate::segment::file_name;

use super::{CLEANED_SUFFIX, SWAP_EXTENSION};

/// The name of a compacted file before the swap: `<segment file>.cleaned`.
pub(super) fn cleaned_name(base: u64, extension: &str) -> String {
    format!("{}{CLEANED_SUFFIX}", file_name(base, extension))
}

pub(super) fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LogError::io("removing", path, e)),
    }
}

pub(super) fn remove_cleaned(dir: &Path, base: u64) -> Result<()> {
    for ext in ["log", "index", "timeindex"] {
        remove_if_present(&dir.join(cleaned_name(base, ext)))?;
    }
    Ok(())
}

/// Step 3 of a swap (see the module header); idempotent, so recovery can run it again.
pub(super) async fn finish_swap(dir: &Path, base: u64, end: u64) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(old) = name
            .strip_suffix(".log")
            .and_then(|b| b.parse::<u64>().ok())
        else {
            continue;
        };
        if old > base && old < end {
            for ext in ["index", "timeindex", "log"] {
                remove_if_present(&dir.join(file_name(old, ext)))?;
            }
        }
    }
    for ext in ["index", "timeindex", "log"] {
        let from = dir.join(cleaned_name(base, ext));
        if from.exists() {
            let to = dir.join(file_name(base, ext));
            failpoint::check(failpoint::COMPACT_SWAP_RENAME, &to)
                .and_then(|()| std::fs::rename(&from, &to))
                .map_err(|e| LogError::io("renaming", &to, e))?;
        }
    }
    durable::sync_dir(dir).await?;
    remove_if_present(&dir.join(file_name(base, SWAP_EXTENSION)))?;
    durable::sync_dir(dir).await
}

/// Finishes swaps a crash interrupted after their commit point and removes `.cleaned` files of
/// passes that had not reached it. Runs before a log lists its segments.
pub(crate) async fn recover(dir: &Path) -> Result<()> {
    let mut swaps = Vec::new();
    let mut cleaned = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("listing", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(base) = name
            .strip_suffix(&format!(".{SWAP_EXTENSION}"))
            .and_then(|b| b.parse::<u64>().ok())
        {
            swaps.push((base, entry.path()));
        } else if name.ends_with(CLEANED_SUFFIX) {
            cleaned.push(entry.path());
        }
    }
    swaps.sort_unstable();
    for (base, path) in swaps {
        let text = std::fs::read_to_string(&path).map_err(|e| LogError::io("reading", &path, e))?;
        let end = text
            .trim()
            .parse::<u64>()
            .map_err(|_| LogError::CorruptSegment {
                path: path.clone(),
                position: 0,
                reason: format!("swap marker holds {text:?}, not an offset"),
            })?;
        tracing::warn!(dir = %dir.display(), base, end, "finishing an interrupted compaction swap");
        finish_swap(dir, base, end).await?;
    }
    let mut removed = false;
    for path in cleaned {
        if path.exists() {
            remove_if_present(&path)?;
            removed = true;
        }
    }
    if removed {
        tracing::info!(dir = %dir.display(), "removed the files of an unfinished compaction");
        durable::sync_dir(dir).await?;
    }
    Ok(())
}
