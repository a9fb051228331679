//! Probe of memory: total and per core, swap, swappiness and transparent huge pages.
//!
//! Owns: reading /proc/meminfo, vm.swappiness and THP's setting. Must not: change anything.

use super::{field, Item, Severity};
use crate::recommended::{MEMORY_PER_CORE_BYTES, SWAPPINESS, THP_ENABLED};
use crate::root::{selected, HostRoot};

/// `MemTotal:  16384 kB` → bytes.
fn meminfo_bytes(text: &str, key: &str) -> Option<u64> {
    let kib: u64 = field(text, key)?.strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

pub(super) fn probe(root: &HostRoot, cpus: Option<usize>, items: &mut Vec<Item>) {
    let meminfo = root.read("/proc/meminfo").unwrap_or_default();
    let total = meminfo_bytes(&meminfo, "MemTotal");
    let wanted = cpus.map(|n| n as u64 * MEMORY_PER_CORE_BYTES);
    let meets = matches!((total, wanted), (Some(t), Some(w)) if t >= w);
    items.push(
        Item::check(
            "memory",
            "memory.total_bytes",
            total.map(|t| t.to_string()),
            format!(
                ">= {} (2 GiB per core)",
                wanted.unwrap_or(MEMORY_PER_CORE_BYTES)
            ),
            meets,
            Severity::Warning,
        )
        .note("shard caches and io memory live here"),
    );
    items.push(Item::info(
        "memory",
        "memory.swap_bytes",
        meminfo_bytes(&meminfo, "SwapTotal").map(|s| s.to_string()),
    ));
    let swappiness = root.read_u64("/proc/sys/vm/swappiness");
    items.push(Item::check(
        "memory",
        "vm.swappiness",
        swappiness.map(|s| s.to_string()),
        format!("<= {SWAPPINESS}"),
        swappiness.is_some_and(|s| s <= SWAPPINESS),
        Severity::Warning,
    ));
    let thp = root.read("/sys/kernel/mm/transparent_hugepage/enabled");
    let thp = thp.as_deref().and_then(selected).map(str::to_string);
    let meets = thp.as_deref().is_some_and(|t| t != "always");
    items.push(
        Item::check(
            "memory",
            "memory.transparent_hugepage",
            thp,
            format!("{THP_ENABLED} or never"),
            meets,
            Severity::Warning,
        )
        .note("'always' lets khugepaged compact memory under a shard"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_lines_become_bytes() {
        let text = "MemTotal:       16315364 kB\nSwapTotal:             0 kB\n";
        assert_eq!(meminfo_bytes(text, "MemTotal"), Some(16_315_364 * 1024));
        assert_eq!(meminfo_bytes(text, "SwapTotal"), Some(0));
        assert_eq!(meminfo_bytes(text, "MemFree"), None);
        assert_eq!(meminfo_bytes("MemTotal: lots kB", "MemTotal"), None);
    }
}
