//! Tuners of interrupt affinity: the NICs' and the data disk's IRQs spread one per CPU, round
//! robin over the IRQ CPUs (`--irq-cpus`, default every online CPU).
//!
//! Owns: those plans. Must not: write (run.rs does).

use super::{plan_of, set_text, Action, Plan, TuneContext, Tuner};
use crate::irq::{irqs_of_device, nics, online_cpus};
use crate::root::HostRoot;

/// The CPUs that take interrupts.
pub(super) fn irq_cpus(root: &HostRoot, ctx: &TuneContext) -> Vec<usize> {
    ctx.irq_cpus.clone().unwrap_or_else(|| online_cpus(root))
}

/// IRQ i of `irqs` on CPU `cpus[i % n]`, through `/proc/irq/N/smp_affinity_list`.
fn spread(root: &HostRoot, irqs: &[u32], cpus: &[usize]) -> Vec<Option<Vec<Action>>> {
    if cpus.is_empty() {
        return Vec::new();
    }
    irqs.iter()
        .enumerate()
        .map(|(i, irq)| {
            let path = format!("/proc/irq/{irq}/smp_affinity_list");
            set_text(root, &path, &cpus[i % cpus.len()].to_string())
        })
        .collect()
}

pub struct NicIrqAffinity;

impl Tuner for NicIrqAffinity {
    fn name(&self) -> &'static str {
        "nic_irq_affinity"
    }
    fn about(&self) -> &'static str {
        "each NIC IRQ on its own CPU, round robin over the IRQ CPUs"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let cpus = irq_cpus(root, ctx);
        let parts = nics(root)
            .iter()
            .flat_map(|nic| {
                let irqs = irqs_of_device(root, &format!("/sys/class/net/{nic}/device"));
                spread(root, &irqs, &cpus)
            })
            .collect();
        plan_of(parts, "no NIC with MSI IRQs (or no CPU list)")
    }
}

pub struct DiskIrqAffinity;

impl Tuner for DiskIrqAffinity {
    fn name(&self) -> &'static str {
        "disk_irq_affinity"
    }
    fn about(&self) -> &'static str {
        "each data-disk IRQ on its own CPU, round robin over the IRQ CPUs"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let dir = match super::disk::data_disk(root, ctx) {
            Ok(dir) => dir,
            Err(plan) => return plan,
        };
        let irqs = irqs_of_device(root, &format!("{dir}/device"));
        plan_of(
            spread(root, &irqs, &irq_cpus(root, ctx)),
            "the data disk has no MSI IRQs",
        )
    }
}
