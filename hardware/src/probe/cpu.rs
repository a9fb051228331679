//! Probe of the CPUs: online cores, SMT siblings, NUMA nodes, model and frequency governor.
//!
//! Owns: reading /sys/devices/system/{cpu,node} and /proc/cpuinfo. Must not: change anything.

use super::{count_cpus, field, Item, Severity};
use crate::recommended::CPU_GOVERNOR;
use crate::root::HostRoot;

/// Adds the CPU items; returns the number of online CPUs (if known).
pub(super) fn probe(root: &HostRoot, items: &mut Vec<Item>) -> Option<usize> {
    let online = count_cpus(root, "/sys/devices/system/cpu/online");
    items.push(Item::info(
        "cpu",
        "cpu.online",
        online.map(|n| n.to_string()),
    ));
    let siblings = count_cpus(
        root,
        "/sys/devices/system/cpu/cpu0/topology/thread_siblings_list",
    );
    items.push(
        Item::info("cpu", "cpu.smt_siblings", siblings.map(|n| n.to_string()))
            .note("hardware threads per core; shards are placed one per core"),
    );
    let nodes = count_cpus(root, "/sys/devices/system/node/online");
    items.push(Item::info(
        "cpu",
        "cpu.numa_nodes",
        nodes.map(|n| n.to_string()),
    ));
    let cpuinfo = root.read("/proc/cpuinfo").unwrap_or_default();
    let model = field(&cpuinfo, "model name")
        .or_else(|| field(&cpuinfo, "Hardware"))
        .or_else(|| field(&cpuinfo, "CPU part"))
        .map(str::to_string);
    items.push(Item::info("cpu", "cpu.model", model));
    let governor = root.read_trim("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor");
    let meets = governor.as_deref() == Some(CPU_GOVERNOR);
    items.push(
        Item::check(
            "cpu",
            "cpu.governor",
            governor,
            CPU_GOVERNOR,
            meets,
            Severity::Warning,
        )
        .note("n/a when the hypervisor owns frequency (most VMs)"),
    );
    online
}
