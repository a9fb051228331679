//! Probe of the kernel: version, whether io_uring is allowed (sysctl and seccomp), clocksource.
//!
//! Owns: reading osrelease, kernel.io_uring_disabled, /proc/self/status and the clocksource.
//! Must not: change anything.

use super::{field, Item, Severity};
use crate::recommended::{CLOCKSOURCE, KERNEL_MIN};
use crate::root::HostRoot;

/// `6.1.0-18-amd64` → (6, 1).
pub(crate) fn kernel_version(release: &str) -> Option<(u64, u64)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

pub(super) fn probe(root: &HostRoot, items: &mut Vec<Item>) {
    let release = root.read_trim("/proc/sys/kernel/osrelease");
    let meets = release
        .as_deref()
        .and_then(kernel_version)
        .is_some_and(|v| v >= KERNEL_MIN);
    items.push(
        Item::check(
            "kernel",
            "kernel.version",
            release,
            format!(">= {}.{}", KERNEL_MIN.0, KERNEL_MIN.1),
            meets,
            Severity::Critical,
        )
        .note("glommio's io_uring needs 5.8"),
    );
    let disabled = root.read_u64("/proc/sys/kernel/io_uring_disabled");
    items.push(
        Item::check(
            "kernel",
            "kernel.io_uring_disabled",
            disabled.map(|d| d.to_string()),
            "0",
            disabled == Some(0),
            Severity::Critical,
        )
        .note("n/a before Linux 6.6 (io_uring always allowed there)"),
    );
    let status = root.read("/proc/self/status").unwrap_or_default();
    let seccomp = field(&status, "Seccomp").map(str::to_string);
    let meets = seccomp.as_deref() == Some("0");
    items.push(
        Item::check(
            "kernel",
            "kernel.seccomp",
            seccomp,
            "0",
            meets,
            Severity::Warning,
        )
        .note("2 = a filter is active; container runtimes' default filters may refuse io_uring"),
    );
    let base = "/sys/devices/system/clocksource/clocksource0";
    let current = root.read_trim(&format!("{base}/current_clocksource"));
    let available = root
        .read(&format!("{base}/available_clocksource"))
        .unwrap_or_default();
    let offered = available.split_whitespace().any(|c| c == CLOCKSOURCE);
    // Where the TSC is not offered (arm64, unstable TSC) the current source is the best there is.
    let meets = current.as_deref() == Some(CLOCKSOURCE) || (current.is_some() && !offered);
    items.push(Item::check(
        "kernel",
        "kernel.clocksource",
        current,
        if offered {
            CLOCKSOURCE.to_string()
        } else {
            format!("{CLOCKSOURCE} when offered")
        },
        meets,
        Severity::Warning,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(kernel_version("6.1.0-18-amd64"), Some((6, 1)));
        assert_eq!(
            kernel_version("5.10.215-203.850.amzn2.x86_64"),
            Some((5, 10))
        );
        assert_eq!(kernel_version("garbage"), None);
    }
}
