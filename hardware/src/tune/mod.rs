//! `weir hw tune`: tuners, each a small planner that says which host files it would change (or
//! why it does not apply); [`run`] checks, applies and reverts the plans, recording what was
//! there in a state file so `--revert` puts every byte back.
//!
//! Owns: the tuner trait, the plan's actions and the list of tuners. Must not: write to the host
//! itself (run.rs does, through the `HostRoot`), or apply anything unasked.

mod ballast;
mod clock;
mod cpu;
mod disk;
mod fstrim;
mod irq;
mod memory;
mod net;
pub mod run;
pub mod state;
mod sysctl;

use std::path::PathBuf;

use crate::root::{selected, HostRoot};

/// What a tuner needs to know besides the host.
#[derive(Debug, Clone)]
pub struct TuneContext {
    /// The broker's data directory (a host path): its disk, ballast and fstrim.
    pub data_dir: PathBuf,
    /// CPUs that take device interrupts (default: every online CPU).
    pub irq_cpus: Option<Vec<usize>>,
    /// Size of the ballast file.
    pub ballast_bytes: u64,
    /// Where cores go (the coredump tuner).
    pub coredump_dir: String,
}

impl TuneContext {
    pub fn new(data_dir: impl Into<PathBuf>) -> TuneContext {
        TuneContext {
            data_dir: data_dir.into(),
            irq_cpus: None,
            ballast_bytes: crate::recommended::BALLAST_BYTES,
            coredump_dir: crate::recommended::COREDUMP_DIR.to_string(),
        }
    }
}

/// One change to the host, as planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `to` into an existing file that now holds `from`.
    Write {
        path: String,
        from: String,
        to: String,
    },
    /// Create a file of `bytes` zero bytes, allocated (the ballast).
    Allocate { path: String, bytes: u64 },
    /// Create a text file that does not exist yet.
    Create { path: String, text: String },
    /// Create a symbolic link that does not exist yet (`systemctl enable` as a file).
    Link { path: String, target: String },
    /// Create a directory that does not exist yet.
    CreateDir { path: String },
}

impl Action {
    pub fn path(&self) -> &str {
        match self {
            Action::Write { path, .. }
            | Action::Allocate { path, .. }
            | Action::Create { path, .. }
            | Action::Link { path, .. }
            | Action::CreateDir { path } => path,
        }
    }

    /// One line for `--check` and `--dry-run`.
    pub fn describe(&self) -> String {
        match self {
            Action::Write { path, from, to } => {
                format!("{path}: {:?} -> {:?}", from.trim(), to)
            }
            Action::Allocate { path, bytes } => format!("{path}: allocate {bytes} bytes"),
            Action::Create { path, .. } => format!("{path}: create"),
            Action::Link { path, target } => format!("{path}: link to {target}"),
            Action::CreateDir { path } => format!("{path}: create directory"),
        }
    }
}

/// A tuner's verdict on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The host lacks the knob (a VM, a container, no such device).
    NotApplicable(String),
    /// What to change; empty when the host is already tuned.
    Changes(Vec<Action>),
}

/// A tuner: reads the host, says what it would change. Applying is `run`'s job.
pub trait Tuner {
    /// Stable name for `--only`.
    fn name(&self) -> &'static str;
    /// What it sets and why, one line.
    fn about(&self) -> &'static str;
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan;
}

/// Every tuner, in the order they apply.
pub fn all() -> Vec<Box<dyn Tuner>> {
    vec![
        Box::new(cpu::Governor),
        Box::new(irq::NicIrqAffinity),
        Box::new(net::Rps),
        Box::new(net::Xps),
        Box::new(net::Backlog),
        Box::new(irq::DiskIrqAffinity),
        Box::new(disk::Scheduler),
        Box::new(disk::Nomerges),
        Box::new(sysctl::AioMaxNr),
        Box::new(memory::TransparentHugepages),
        Box::new(sysctl::Swappiness),
        Box::new(clock::Clocksource),
        Box::new(sysctl::Coredump),
        Box::new(ballast::Ballast),
        Box::new(fstrim::Fstrim),
    ]
}

/// The tuners named in `only` (all when `None`); an unknown name is an error listing the names.
pub fn select(only: Option<&[String]>) -> Result<Vec<Box<dyn Tuner>>, crate::HwError> {
    let tuners = all();
    let Some(only) = only else {
        return Ok(tuners);
    };
    let names: Vec<&str> = tuners.iter().map(|t| t.name()).collect();
    if let Some(bad) = only.iter().find(|n| !names.contains(&n.as_str())) {
        return Err(crate::HwError::Invalid(format!(
            "no tuner {bad:?}; tuners: {}",
            names.join(", ")
        )));
    }
    Ok(tuners
        .into_iter()
        .filter(|t| only.iter().any(|n| n == t.name()))
        .collect())
}

/// A write of `wanted` to `path` unless it already holds it (the selected word of a selector
/// file, or the trimmed text); `None` when the file is missing.
pub(crate) fn set_text(root: &HostRoot, path: &str, wanted: &str) -> Option<Vec<Action>> {
    let from = root.read(path)?;
    let current = selected(&from).unwrap_or(from.trim());
    if current == wanted {
        return Some(Vec::new());
    }
    Some(vec![Action::Write {
        path: path.to_string(),
        from,
        to: wanted.to_string(),
    }])
}

/// A write raising the integer in `path` to `min` (never lowering it); `None` when missing or
/// not an integer.
pub(crate) fn raise_to(root: &HostRoot, path: &str, min: u64) -> Option<Vec<Action>> {
    let from = root.read(path)?;
    let current: u64 = from.trim().parse().ok()?;
    if current >= min {
        return Some(Vec::new());
    }
    Some(vec![Action::Write {
        path: path.to_string(),
        from,
        to: min.to_string(),
    }])
}

/// Plans from per-file results: not applicable when every file is missing.
pub(crate) fn plan_of(parts: Vec<Option<Vec<Action>>>, missing: &str) -> Plan {
    if parts.iter().all(Option::is_none) {
        return Plan::NotApplicable(missing.to_string());
    }
    Plan::Changes(parts.into_iter().flatten().flatten().collect())
}
