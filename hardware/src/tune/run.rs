//! Checking, applying and reverting tuners' plans against a `HostRoot`, with the state file.
//! Nothing is written unless `apply` or `revert` is called without `dry_run`.
//!
//! Owns: executing actions and their undo. Must not: decide what to change (the tuners do).

use std::fs;
use std::os::unix::fs::symlink;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::state::{Record, TuneState, Undo};
use super::{Action, Plan, TuneContext, Tuner};
use crate::root::HostRoot;
use crate::HwError;

/// What happened to one tuner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    NotApplicable(String),
    /// Already as weir recommends.
    Tuned,
    /// Would change (check, dry run) or changed (apply): one line per action.
    Changes(Vec<String>),
    /// Some actions were applied (listed) before one failed.
    Failed {
        done: Vec<String>,
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunerOutcome {
    pub tuner: &'static str,
    pub outcome: Outcome,
}

fn outcome_of(plan: Plan) -> Outcome {
    match plan {
        Plan::NotApplicable(why) => Outcome::NotApplicable(why),
        Plan::Changes(a) if a.is_empty() => Outcome::Tuned,
        Plan::Changes(a) => Outcome::Changes(a.iter().map(Action::describe).collect()),
    }
}

/// What each tuner would change; writes nothing.
pub fn check(root: &HostRoot, ctx: &TuneContext, tuners: &[Box<dyn Tuner>]) -> Vec<TunerOutcome> {
    tuners
        .iter()
        .map(|t| TunerOutcome {
            tuner: t.name(),
            outcome: outcome_of(t.plan(root, ctx)),
        })
        .collect()
}

/// Allocates `bytes` for a new file (really reserved, so deleting it frees space).
fn allocate(path: &Path, bytes: u64) -> Result<(), HwError> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| HwError::io("creating", path, e))?;
    let len = libc::off_t::try_from(bytes)
        .map_err(|_| HwError::Invalid(format!("ballast of {bytes} bytes is too large")))?;
    // SAFETY: the descriptor is open for writing for the duration of the call.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    if rc != 0 {
        let _ = fs::remove_file(path);
        return Err(HwError::io(
            "allocating",
            path,
            std::io::Error::from_raw_os_error(rc),
        ));
    }
    Ok(())
}

/// Performs one action; returns how to undo it.
fn execute(root: &HostRoot, action: &Action) -> Result<Undo, HwError> {
    let path = root.path(action.path());
    match action {
        Action::Write { from, to, .. } => {
            root.write(action.path(), to)?;
            Ok(Undo::of_write(from))
        }
        Action::Allocate { bytes, .. } => allocate(&path, *bytes).map(|_| Undo::Remove),
        Action::Create { text, .. } => fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()))
            .map(|_| Undo::Remove)
            .map_err(|e| HwError::io("creating", &path, e)),
        Action::Link { target, .. } => symlink(target, &path)
            .map(|_| Undo::Remove)
            .map_err(|e| HwError::io("linking", &path, e)),
        Action::CreateDir { .. } => fs::create_dir(&path)
            .map(|_| Undo::RemoveDir)
            .map_err(|e| HwError::io("creating", &path, e)),
    }
}

/// Applies every tuner's plan (or only describes it with `dry_run`), recording undo records in
/// the state file at `state_path` after each change.
pub fn apply(
    root: &HostRoot,
    ctx: &TuneContext,
    tuners: &[Box<dyn Tuner>],
    state_path: &Path,
    dry_run: bool,
) -> Result<Vec<TunerOutcome>, HwError> {
    if dry_run {
        return Ok(check(root, ctx, tuners));
    }
    let mut state = TuneState::load(state_path)?;
    let mut outcomes = Vec::new();
    for tuner in tuners {
        let actions = match tuner.plan(root, ctx) {
            Plan::Changes(actions) if !actions.is_empty() => actions,
            plan => {
                outcomes.push(TunerOutcome {
                    tuner: tuner.name(),
                    outcome: outcome_of(plan),
                });
                continue;
            }
        };
        let mut done = Vec::new();
        let mut failure = None;
        for action in &actions {
            match execute(root, action) {
                Ok(undo) => {
                    if !state.has(action.path()) {
                        state.push(Record {
                            tuner: tuner.name().to_string(),
                            path: action.path().to_string(),
                            undo,
                        })?;
                        state.save(state_path)?;
                    }
                    done.push(action.describe());
                }
                Err(e) if is_managed_irq(action.path(), &e) => {
                    done.push(format!(
                        "{}: left alone (kernel-managed IRQ, affinity fixed by the driver)",
                        action.path()
                    ));
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let outcome = match failure {
            Some(error) => Outcome::Failed { done, error },
            None => Outcome::Changes(done),
        };
        outcomes.push(TunerOutcome {
            tuner: tuner.name(),
            outcome,
        });
    }
    if root.is_real() {
        systemd_reload();
    }
    Ok(outcomes)
}

/// Whether a failed write is the kernel refusing to move a managed interrupt (NVMe and other
/// multi-queue drivers spread their IRQs themselves; writing their affinity fails with EIO).
fn is_managed_irq(path: &str, error: &HwError) -> bool {
    let affinity = path.starts_with("/proc/irq/") && path.ends_with("/smp_affinity_list");
    let eio =
        matches!(error, HwError::Io { source, .. } if source.raw_os_error() == Some(libc::EIO));
    affinity && eio
}

/// A recorded path is absolute and has no `..`: a damaged state file cannot send a revert
/// outside the host root.
fn is_safe(path: &str) -> bool {
    path.starts_with('/') && !path.split('/').any(|c| c == "..")
}

/// Undoes one record; `Ok(line)` describing it.
fn undo(root: &HostRoot, record: &Record) -> Result<String, HwError> {
    if !is_safe(&record.path) {
        return Err(HwError::Invalid(format!(
            "refusing to revert {:?}: not an absolute path without '..'",
            record.path
        )));
    }
    let path = root.path(&record.path);
    match &record.undo {
        Undo::Write { original, restore } => {
            root.write(&record.path, restore)?;
            let now = root.read(&record.path).unwrap_or_default();
            if &now == original {
                Ok(format!("{}: restored {:?}", record.path, original.trim()))
            } else {
                Ok(format!(
                    "{}: wrote {:?}; it reads back {:?}, not {:?}",
                    record.path,
                    restore.trim(),
                    now.trim(),
                    original.trim()
                ))
            }
        }
        Undo::Remove => match fs::remove_file(&path) {
            Ok(()) => Ok(format!("{}: removed", record.path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(format!("{}: already gone", record.path))
            }
            Err(e) => Err(HwError::io("removing", &path, e)),
        },
        Undo::RemoveDir => match fs::remove_dir(&path) {
            Ok(()) => Ok(format!("{}: removed", record.path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(format!("{}: already gone", record.path))
            }
            Err(e) => Err(HwError::io("removing directory", &path, e)),
        },
    }
}

/// Puts back what the recorded changes replaced, newest first (only the tuners in `only`, when
/// given). Records that fail stay in the state for another try. Returns one line per record.
pub fn revert(
    root: &HostRoot,
    only: Option<&[String]>,
    state_path: &Path,
    dry_run: bool,
) -> Result<Vec<String>, HwError> {
    let mut state = TuneState::load(state_path)?;
    let selected = |r: &Record| only.is_none_or_contains(&r.tuner);
    let mut lines = Vec::new();
    let mut kept = Vec::new();
    for record in state.records.iter().rev() {
        if !selected(record) {
            kept.push(record.clone());
            continue;
        }
        if dry_run {
            lines.push(format!("{} ({}): would revert", record.path, record.tuner));
            kept.push(record.clone());
            continue;
        }
        match undo(root, record) {
            Ok(line) => lines.push(format!("{line} ({})", record.tuner)),
            Err(e) => {
                lines.push(format!("{} ({}): FAILED {e}", record.path, record.tuner));
                kept.push(record.clone());
            }
        }
    }
    if !dry_run {
        kept.reverse();
        state.records = kept;
        state.save(state_path)?;
        if root.is_real() {
            systemd_reload();
        }
    }
    Ok(lines)
}

trait OnlyFilter {
    fn is_none_or_contains(&self, name: &str) -> bool;
}

impl OnlyFilter for Option<&[String]> {
    fn is_none_or_contains(&self, name: &str) -> bool {
        match self {
            None => true,
            Some(names) => names.iter().any(|n| n == name),
        }
    }
}

/// Lets systemd see unit files the fstrim tuner wrote or removed (best effort: no systemd, no
/// reload needed).
fn systemd_reload() {
    let _ = std::process::Command::new("systemctl")
        .arg("daemon-reload")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(code: i32) -> HwError {
        HwError::io(
            "writing",
            Path::new("/x"),
            std::io::Error::from_raw_os_error(code),
        )
    }

    #[test]
    fn only_eio_on_irq_affinity_counts_as_a_managed_irq() {
        let irq = "/proc/irq/40/smp_affinity_list";
        assert!(is_managed_irq(irq, &io(libc::EIO)));
        assert!(!is_managed_irq(irq, &io(libc::EINVAL)));
        assert!(!is_managed_irq("/proc/sys/vm/swappiness", &io(libc::EIO)));
    }

    #[test]
    fn revert_refuses_paths_that_leave_the_root() {
        assert!(is_safe("/proc/sys/vm/swappiness"));
        assert!(!is_safe("proc/sys/vm/swappiness"));
        assert!(!is_safe("/var/lib/../../etc/passwd"));
        let dir = tempfile::tempdir().unwrap();
        let root = HostRoot::fake(dir.path());
        let state = dir.path().join("state.json");
        let bad = TuneState {
            records: vec![Record {
                tuner: "swappiness".into(),
                path: "/../outside".into(),
                undo: Undo::Remove,
            }],
            ..TuneState::default()
        };
        bad.save(&state).unwrap();
        let lines = revert(&root, None, &state, false).unwrap();
        assert!(
            lines[0].contains("FAILED") && lines[0].contains("outside"),
            "{lines:?}"
        );
        assert_eq!(
            TuneState::load(&state).unwrap().records.len(),
            1,
            "kept for another try"
        );
    }
}
