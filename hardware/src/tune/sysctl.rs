//! Tuners of plain sysctls: fs.aio-max-nr (raised), vm.swappiness, kernel.core_pattern (the
//! coredump location, with its directory).
//!
//! Owns: those three plans. Must not: write (run.rs does).

use super::{plan_of, raise_to, Action, Plan, TuneContext, Tuner};
use crate::recommended::{AIO_MAX_NR, SWAPPINESS};
use crate::root::HostRoot;

pub struct AioMaxNr;

impl Tuner for AioMaxNr {
    fn name(&self) -> &'static str {
        "aio_max_nr"
    }
    fn about(&self) -> &'static str {
        "raise fs.aio-max-nr to 1048576 (io_uring rings of every shard)"
    }
    fn plan(&self, root: &HostRoot, _: &TuneContext) -> Plan {
        plan_of(
            vec![raise_to(root, "/proc/sys/fs/aio-max-nr", AIO_MAX_NR)],
            "no /proc/sys/fs/aio-max-nr",
        )
    }
}

pub struct Swappiness;

impl Tuner for Swappiness {
    fn name(&self) -> &'static str {
        "swappiness"
    }
    fn about(&self) -> &'static str {
        "vm.swappiness = 1: keep broker memory out of swap"
    }
    fn plan(&self, root: &HostRoot, _: &TuneContext) -> Plan {
        let path = "/proc/sys/vm/swappiness";
        let parts = match root.read_u64(path) {
            None => vec![None],
            Some(v) if v <= SWAPPINESS => vec![Some(Vec::new())],
            Some(_) => vec![super::set_text(root, path, &SWAPPINESS.to_string())],
        };
        plan_of(parts, "no /proc/sys/vm/swappiness")
    }
}

pub struct Coredump;

impl Tuner for Coredump {
    fn name(&self) -> &'static str {
        "coredump"
    }
    fn about(&self) -> &'static str {
        "kernel.core_pattern = DIR/core.%e.%p.%t, DIR created (cores kept for a post-mortem)"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let dir = ctx.coredump_dir.trim_end_matches('/');
        let pattern = format!("{dir}/core.%e.%p.%t");
        let Some(mut actions) = super::set_text(root, "/proc/sys/kernel/core_pattern", &pattern)
        else {
            return Plan::NotApplicable("no /proc/sys/kernel/core_pattern".into());
        };
        if !root.exists(dir) {
            // Parents first, so revert (in reverse) removes the deepest first.
            let mut missing = Vec::new();
            let mut at = std::path::Path::new(dir);
            while !root.exists(&at.display().to_string()) {
                missing.push(at.display().to_string());
                match at.parent() {
                    Some(parent) => at = parent,
                    None => break,
                }
            }
            let mut dirs: Vec<Action> = missing
                .into_iter()
                .rev()
                .map(|path| Action::CreateDir { path })
                .collect();
            dirs.append(&mut actions);
            actions = dirs;
        }
        Plan::Changes(actions)
    }
}
