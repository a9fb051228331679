//! Tuners of the data disk's queue: scheduler `none` and nomerges 2.
//!
//! Owns: those plans. Must not: write (run.rs does).

use super::{set_text, Plan, TuneContext, Tuner};
use crate::blockdev::disk_of_dir;
use crate::recommended::{DISK_NOMERGES, DISK_SCHEDULER};
use crate::root::{offered, HostRoot};

/// The data disk's sysfs directory, or why there is none.
pub(super) fn data_disk(root: &HostRoot, ctx: &TuneContext) -> Result<String, Plan> {
    match disk_of_dir(root, &ctx.data_dir) {
        Some((_, Some(disk))) => Ok(disk.sys_dir),
        Some((mount, None)) => Err(Plan::NotApplicable(format!(
            "{} ({}) is not a block device",
            mount.source, mount.fs_type
        ))),
        None => Err(Plan::NotApplicable(format!(
            "no mount found for {}",
            ctx.data_dir.display()
        ))),
    }
}

pub struct Scheduler;

impl Tuner for Scheduler {
    fn name(&self) -> &'static str {
        "disk_scheduler"
    }
    fn about(&self) -> &'static str {
        "data disk queue/scheduler = none (no reordering on NVMe)"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let dir = match data_disk(root, ctx) {
            Ok(dir) => dir,
            Err(plan) => return plan,
        };
        let path = format!("{dir}/queue/scheduler");
        let Some(text) = root.read(&path) else {
            return Plan::NotApplicable(format!("no {path}"));
        };
        if !offered(&text).contains(&DISK_SCHEDULER) {
            return Plan::NotApplicable(format!("{DISK_SCHEDULER} not offered ({})", text.trim()));
        }
        Plan::Changes(set_text(root, &path, DISK_SCHEDULER).unwrap_or_default())
    }
}

pub struct Nomerges;

impl Tuner for Nomerges {
    fn name(&self) -> &'static str {
        "disk_nomerges"
    }
    fn about(&self) -> &'static str {
        "data disk queue/nomerges = 2 (weir writes large aligned runs already)"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let dir = match data_disk(root, ctx) {
            Ok(dir) => dir,
            Err(plan) => return plan,
        };
        let path = format!("{dir}/queue/nomerges");
        match set_text(root, &path, &DISK_NOMERGES.to_string()) {
            Some(actions) => Plan::Changes(actions),
            None => Plan::NotApplicable(format!("no {path}")),
        }
    }
}
