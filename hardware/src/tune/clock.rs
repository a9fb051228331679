//! Tuner of the clocksource: `tsc` when the kernel offers it (Xen and KVM guests often start on
//! their paravirtual clock).
//!
//! Owns: that plan. Must not: write (run.rs does).

use super::{set_text, Plan, TuneContext, Tuner};
use crate::recommended::CLOCKSOURCE;
use crate::root::HostRoot;

pub struct Clocksource;

const DIR: &str = "/sys/devices/system/clocksource/clocksource0";

impl Tuner for Clocksource {
    fn name(&self) -> &'static str {
        "clocksource"
    }
    fn about(&self) -> &'static str {
        "current_clocksource = tsc when offered (timestamps without a system call)"
    }
    fn plan(&self, root: &HostRoot, _: &TuneContext) -> Plan {
        let Some(offered) = root.read(&format!("{DIR}/available_clocksource")) else {
            return Plan::NotApplicable("no clocksource in sysfs".into());
        };
        if !offered.split_whitespace().any(|c| c == CLOCKSOURCE) {
            return Plan::NotApplicable(format!("{CLOCKSOURCE} not offered ({})", offered.trim()));
        }
        match set_text(root, &format!("{DIR}/current_clocksource"), CLOCKSOURCE) {
            Some(actions) => Plan::Changes(actions),
            None => Plan::NotApplicable("no current_clocksource".into()),
        }
    }
}
