//! Tuner of the CPU frequency governor: `performance` on every online CPU that offers it.
//!
//! Owns: that plan. Must not: write (run.rs does).

use super::{plan_of, set_text, Plan, TuneContext, Tuner};
use crate::irq::online_cpus;
use crate::recommended::CPU_GOVERNOR;
use crate::root::HostRoot;

pub struct Governor;

impl Tuner for Governor {
    fn name(&self) -> &'static str {
        "cpu_governor"
    }
    fn about(&self) -> &'static str {
        "scaling_governor = performance on every CPU (no wake-up ramp)"
    }
    fn plan(&self, root: &HostRoot, _: &TuneContext) -> Plan {
        let parts = online_cpus(root)
            .into_iter()
            .map(|cpu| {
                let dir = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq");
                let offered = root.read(&format!("{dir}/scaling_available_governors"))?;
                if !offered.split_whitespace().any(|g| g == CPU_GOVERNOR) {
                    return None;
                }
                set_text(root, &format!("{dir}/scaling_governor"), CPU_GOVERNOR)
            })
            .collect();
        plan_of(
            parts,
            "no cpufreq governor offering performance (VM or container)",
        )
    }
}
