//! Tuner of transparent huge pages: `madvise` instead of `always` (left alone at `never`).
//!
//! Owns: that plan. Must not: write (run.rs does).

use super::{Plan, TuneContext, Tuner};
use crate::recommended::THP_ENABLED;
use crate::root::{selected, HostRoot};

pub struct TransparentHugepages;

const ENABLED: &str = "/sys/kernel/mm/transparent_hugepage/enabled";

impl Tuner for TransparentHugepages {
    fn name(&self) -> &'static str {
        "transparent_hugepages"
    }
    fn about(&self) -> &'static str {
        "transparent_hugepage/enabled = madvise (no khugepaged compaction stalls under a shard)"
    }
    fn plan(&self, root: &HostRoot, _: &TuneContext) -> Plan {
        let Some(text) = root.read(ENABLED) else {
            return Plan::NotApplicable("no transparent_hugepage in sysfs".into());
        };
        if selected(&text) != Some("always") {
            return Plan::Changes(Vec::new());
        }
        match super::set_text(root, ENABLED, THP_ENABLED) {
            Some(actions) => Plan::Changes(actions),
            None => Plan::NotApplicable("transparent_hugepage/enabled unreadable".into()),
        }
    }
}
