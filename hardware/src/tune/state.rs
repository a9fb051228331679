//! The tune state file: for every path a tuner changed, what was there (the bytes read before the
//! first change) and how to put it back. Written after every change, so a crash halfway still
//! leaves a complete undo list; `--revert` consumes it.
//!
//! Owns: the file's format, loading and atomic saving. Must not: change the host.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::root::{read_bounded, selected};
use crate::HwError;

/// Default location, under the host root.
pub const STATE_PATH: &str = "/var/lib/weir/hw-tune-state.json";
const STATE_VERSION: u32 = 1;
/// A bound on records (each is one host file).
pub const RECORDS_MAX: usize = 65_536;

/// How to undo one change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Undo {
    /// The file held `original`; writing `restore` puts it back (for a sysfs selector file
    /// `[a] b` that is the word `a`, otherwise the original text).
    Write { original: String, restore: String },
    /// The tuner created this file or link: remove it.
    Remove,
    /// The tuner created this directory: remove it if empty.
    RemoveDir,
}

impl Undo {
    /// The undo of writing over `original`.
    pub fn of_write(original: &str) -> Undo {
        let restore = selected(original).unwrap_or(original).to_string();
        Undo::Write {
            original: original.to_string(),
            restore,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub tuner: String,
    /// Host path (`/proc/sys/vm/swappiness`).
    pub path: String,
    pub undo: Undo,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TuneState {
    pub version: u32,
    pub records: Vec<Record>,
}

impl Default for TuneState {
    fn default() -> Self {
        TuneState {
            version: STATE_VERSION,
            records: Vec::new(),
        }
    }
}

impl TuneState {
    /// The state at `path`; empty when the file does not exist.
    pub fn load(path: &Path) -> Result<TuneState, HwError> {
        let text = match read_bounded(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TuneState::default()),
            Err(e) => return Err(HwError::io("reading", path, e)),
        };
        let state: TuneState = serde_json::from_str(&text).map_err(|e| {
            HwError::Invalid(format!("tune state {} is not valid: {e}", path.display()))
        })?;
        if state.version != STATE_VERSION {
            return Err(HwError::Invalid(format!(
                "tune state {} has version {}, this weir reads {STATE_VERSION}",
                path.display(),
                state.version
            )));
        }
        Ok(state)
    }

    /// Writes the state (temporary file, then rename); removes the file when there is nothing
    /// left to undo.
    pub fn save(&self, path: &Path) -> Result<(), HwError> {
        if self.records.is_empty() {
            return match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(HwError::io("removing", path, e))
                }
                _ => Ok(()),
            };
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| HwError::io("creating", dir, e))?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| HwError::Invalid(format!("encoding tune state: {e}")))?;
        std::fs::write(&tmp, text).map_err(|e| HwError::io("writing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| HwError::io("renaming", &tmp, e))
    }

    /// Whether a change to `path` is already recorded (the first original wins).
    pub fn has(&self, path: &str) -> bool {
        self.records.iter().any(|r| r.path == path)
    }

    pub fn push(&mut self, record: Record) -> Result<(), HwError> {
        if self.records.len() >= RECORDS_MAX {
            return Err(HwError::Invalid(format!(
                "tune state holds {RECORDS_MAX} records already"
            )));
        }
        self.records.push(record);
        Ok(())
    }
}
