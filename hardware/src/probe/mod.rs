//! `weir hw probe`: what the host is and how far it is from what weir recommends, item by item
//! (like `rpk redpanda check`). The JSON form is described by `hardware/probe.schema.json`.
//!
//! Owns: the report's shape and the order of groups. Must not: change the host (tune/ does).

mod cpu;
mod disk;
mod kernel;
mod limits;
mod memory;
mod net;

use std::path::Path;

use serde::Serialize;

use crate::root::HostRoot;

pub use net::parse_ena_allowance;

/// Version of the JSON report's shape; bumped when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// How an item stands against weir's recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Meets the recommendation.
    Ok,
    /// A fact with no recommendation (model, sizes).
    Info,
    /// The host lacks the knob (VMs, containers) or it could not be read.
    #[serde(rename = "n/a")]
    NotApplicable,
    /// Works, but costs throughput or latency.
    Warning,
    /// weir will not run well or at all (no io_uring, memlock too low).
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::NotApplicable => "n/a",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One line of the probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// `cpu`, `memory`, `kernel`, `limits`, `disk`, `net`.
    pub group: &'static str,
    /// Dotted, stable name (`disk.vda.scheduler`).
    pub name: String,
    /// What the host has; `None` when it could not be read.
    pub value: Option<String>,
    /// What weir recommends; `None` for facts.
    pub recommended: Option<String>,
    pub severity: Severity,
    /// Why it matters or where it came from.
    pub note: String,
}

impl Item {
    /// A fact: no recommendation.
    pub fn info(group: &'static str, name: impl Into<String>, value: Option<String>) -> Item {
        let severity = if value.is_some() {
            Severity::Info
        } else {
            Severity::NotApplicable
        };
        Item {
            group,
            name: name.into(),
            value,
            recommended: None,
            severity,
            note: String::new(),
        }
    }

    /// A value against a recommendation: `ok` when `meets`, else `failing`; `n/a` when the value
    /// is missing.
    pub fn check(
        group: &'static str,
        name: impl Into<String>,
        value: Option<String>,
        recommended: impl Into<String>,
        meets: bool,
        failing: Severity,
    ) -> Item {
        let severity = match (&value, meets) {
            (None, _) => Severity::NotApplicable,
            (Some(_), true) => Severity::Ok,
            (Some(_), false) => failing,
        };
        Item {
            group,
            name: name.into(),
            value,
            recommended: Some(recommended.into()),
            severity,
            note: String::new(),
        }
    }

    pub fn note(mut self, note: impl Into<String>) -> Item {
        self.note = note.into();
        self
    }
}

/// The whole probe.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    /// The root the host was read through (`/` on the real host).
    pub root: String,
    /// The directory whose disk and filesystem were probed.
    pub data_dir: Option<String>,
    pub items: Vec<Item>,
}

impl Report {
    /// The worst severity among the items.
    pub fn worst(&self) -> Severity {
        self.items
            .iter()
            .map(|i| i.severity)
            .max()
            .unwrap_or(Severity::Ok)
    }

    /// A fixed-width table, one item a line.
    pub fn table(&self) -> String {
        let width = self.items.iter().map(|i| i.name.len()).max().unwrap_or(4);
        let mut out = format!(
            "{:<width$}  {:<9}  {:<28}  {}\n",
            "ITEM", "SEVERITY", "VALUE", "RECOMMENDED"
        );
        for i in &self.items {
            let value = i.value.as_deref().unwrap_or("-");
            out.push_str(&format!(
                "{:<width$}  {:<9}  {:<28}  {}{}\n",
                i.name,
                i.severity.as_str(),
                value,
                i.recommended.as_deref().unwrap_or(""),
                if i.note.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", i.note)
                },
            ));
        }
        out
    }
}

/// Probes the host under `root`; `data_dir` (a path on that host) selects the disk and mount.
pub fn probe(root: &HostRoot, data_dir: Option<&Path>) -> Report {
    let mut items = Vec::new();
    let cpus = cpu::probe(root, &mut items);
    memory::probe(root, cpus, &mut items);
    kernel::probe(root, &mut items);
    limits::probe(root, &mut items);
    if let Some(dir) = data_dir {
        disk::probe(root, dir, &mut items);
    }
    net::probe(root, &mut items);
    Report {
        schema_version: SCHEMA_VERSION,
        root: root.base().display().to_string(),
        data_dir: data_dir.map(|d| d.display().to_string()),
        items,
    }
}

/// Number of CPUs in a kernel CPU list file (`0-3,6`).
/// One warning item per sysctl `(name, path under the root, minimum)` whose value is below its
/// minimum (or unreadable).
pub(crate) fn sysctls_at_least(
    root: &HostRoot,
    group: &'static str,
    sysctls: &[(&'static str, &str, u64)],
    items: &mut Vec<Item>,
) {
    for &(name, rel, min) in sysctls {
        let value = root.read_u64(rel);
        items.push(Item::check(
            group,
            name,
            value.map(|v| v.to_string()),
            format!(">= {min}"),
            value.is_some_and(|v| v >= min),
            Severity::Warning,
        ));
    }
}

pub(crate) fn count_cpus(root: &HostRoot, rel: &str) -> Option<usize> {
    crate::root::parse_cpu_list(&root.read(rel)?, MAX_CPUS).map(|v| v.len())
}

/// A bound on CPUs and NUMA nodes read from the host.
pub const MAX_CPUS: usize = 8192;

/// The value of `Key:   value` in a procfs status-like file.
pub(crate) fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim_start().strip_prefix(':'))
        .map(str::trim)
}
