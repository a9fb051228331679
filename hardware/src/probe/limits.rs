//! Probe of limits: this process's memlock and nofile, fs.aio-max-nr, vm.max_map_count.
//!
//! Owns: reading /proc/self/limits and the two sysctls. Must not: change anything. The process
//! limits are the probe's own: a systemd unit sets the broker's (see `weir deploy render`).

use super::{Item, Severity};
use crate::recommended::{AIO_MAX_NR, MAX_MAP_COUNT, NOFILE_MIN};
use crate::root::HostRoot;

/// The soft limit of a `/proc/self/limits` row: `None` unreadable, `Some(None)` unlimited.
fn soft_limit(limits: &str, row: &str) -> Option<Option<u64>> {
    let rest = limits.lines().find_map(|l| l.strip_prefix(row))?;
    match rest.split_whitespace().next()? {
        "unlimited" => Some(None),
        n => n.parse().ok().map(Some),
    }
}

fn show(limit: Option<u64>) -> String {
    limit.map_or("unlimited".into(), |n| n.to_string())
}

pub(super) fn probe(root: &HostRoot, items: &mut Vec<Item>) {
    let limits = root.read("/proc/self/limits").unwrap_or_default();
    let memlock = soft_limit(&limits, "Max locked memory");
    items.push(
        Item::check(
            "limits",
            "limits.memlock_bytes",
            memlock.map(show),
            "unlimited",
            memlock == Some(None),
            Severity::Critical,
        )
        .note("glommio locks each shard's io memory; LimitMEMLOCK=infinity in the unit"),
    );
    let nofile = soft_limit(&limits, "Max open files");
    items.push(Item::check(
        "limits",
        "limits.nofile",
        nofile.map(show),
        format!(">= {NOFILE_MIN}"),
        nofile.is_some_and(|n| match n {
            None => true,
            Some(n) => n >= NOFILE_MIN,
        }),
        Severity::Warning,
    ));
    super::sysctls_at_least(
        root,
        "limits",
        &[
            ("fs.aio-max-nr", "/proc/sys/fs/aio-max-nr", AIO_MAX_NR),
            (
                "vm.max_map_count",
                "/proc/sys/vm/max_map_count",
                MAX_MAP_COUNT,
            ),
        ],
        items,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_rows_parse() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max open files            1024                 524288               files\n\
                    Max locked memory         unlimited            unlimited            bytes\n";
        assert_eq!(soft_limit(text, "Max open files"), Some(Some(1024)));
        assert_eq!(soft_limit(text, "Max locked memory"), Some(None));
        assert_eq!(soft_limit(text, "Max processes"), None);
    }
}
