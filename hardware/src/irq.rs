//! Interrupts of a device and their CPU affinity: MSI vectors listed under the device's sysfs
//! directory (or its PCI parent, for virtio), affinity in `/proc/irq/N/smp_affinity_list`.
//!
//! Owns: finding the IRQs and NICs. Must not: change affinity (tune/irq.rs does).

use crate::root::HostRoot;

/// How far up from a device directory to look for `msi_irqs` (virtio sits one below its PCI
/// function; NVMe namespaces two below the controller's function).
const PARENT_LEVELS_MAX: usize = 3;
/// A bound on IRQs per device.
pub const IRQS_PER_DEVICE_MAX: usize = 4096;

/// IRQ numbers of the device whose sysfs directory is `device` (a host path), sorted.
pub fn irqs_of_device(root: &HostRoot, device: &str) -> Vec<u32> {
    let Ok(mut dir) = root.path(device).canonicalize() else {
        return Vec::new();
    };
    for _ in 0..=PARENT_LEVELS_MAX {
        let msi = dir.join("msi_irqs");
        if msi.is_dir() {
            let Some(host) = root.host_path(&msi) else {
                return Vec::new();
            };
            let mut irqs: Vec<u32> = root
                .list(&host)
                .iter()
                .filter_map(|n| n.parse().ok())
                .take(IRQS_PER_DEVICE_MAX)
                .collect();
            irqs.sort_unstable();
            return irqs;
        }
        if !dir.pop() {
            break;
        }
    }
    Vec::new()
}

/// Network interfaces backed by a device (physical or virtio), sorted; `lo`, bridges and
/// veths have no `device` link and are left out.
pub fn nics(root: &HostRoot) -> Vec<String> {
    root.list("/sys/class/net")
        .into_iter()
        .filter(|n| root.exists(&format!("/sys/class/net/{n}/device")))
        .collect()
}

/// The driver's name of a NIC (`ena`, `virtio_net`).
pub fn nic_driver(root: &HostRoot, nic: &str) -> Option<String> {
    let link = root.path(&format!("/sys/class/net/{nic}/device/driver"));
    let target = link.canonicalize().ok()?;
    Some(target.file_name()?.to_str()?.to_string())
}

/// Queue directories of a NIC with the prefix `rx-` or `tx-`.
pub fn nic_queues(root: &HostRoot, nic: &str, prefix: &str) -> Vec<String> {
    root.list(&format!("/sys/class/net/{nic}/queues"))
        .into_iter()
        .filter(|q| q.starts_with(prefix))
        .collect()
}

/// The CPUs online, from `/sys/devices/system/cpu/online`.
pub fn online_cpus(root: &HostRoot) -> Vec<usize> {
    root.read("/sys/devices/system/cpu/online")
        .and_then(|t| crate::root::parse_cpu_list(&t, crate::probe::MAX_CPUS))
        .unwrap_or_default()
}
