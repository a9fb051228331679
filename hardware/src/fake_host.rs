//! A fake host tree (`sys/`, `proc/`, `etc/` under a directory) shaped like an untuned EC2
//! storage instance: 4 CPUs with cpufreq, an NVMe data disk under `/var/lib/weir`, an ENA NIC
//! with two queue pairs, stock sysctls. Tests (here and in the cli) point a `HostRoot::fake` at it.
//!
//! Owns: the tree's layout and its untuned values. Must not: be read by anything but tests and
//! demos (`weir hw … --root DIR`).

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

/// The data directory the fake host mounts its NVMe disk at.
pub const DATA_DIR: &str = "/var/lib/weir";
/// The NVMe disk's IRQs; the NIC's are [`NIC_IRQS`].
pub const DISK_IRQS: [u32; 3] = [40, 41, 42];
pub const NIC_IRQS: [u32; 3] = [50, 51, 52];
/// The disk's and the NIC's PCI functions.
const DISK_PCI: &str = "sys/devices/pci0000:00/0000:00:04.0";
const NIC_PCI: &str = "sys/devices/pci0000:00/0000:00:05.0";

fn put(base: &Path, rel: &str, text: &str) -> io::Result<()> {
    let path = base.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(path, text)
}

fn link(base: &Path, rel: &str, target: &str) -> io::Result<()> {
    let path = base.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    symlink(target, path)
}

/// Writes the fake host under `base` (which must exist and be empty).
pub fn build(base: &Path) -> io::Result<()> {
    put(base, "sys/devices/system/cpu/online", "0-3\n")?;
    put(base, "sys/devices/system/node/online", "0\n")?;
    for cpu in 0..4 {
        let dir = format!("sys/devices/system/cpu/cpu{cpu}");
        put(
            base,
            &format!("{dir}/cpufreq/scaling_governor"),
            "powersave\n",
        )?;
        put(
            base,
            &format!("{dir}/cpufreq/scaling_available_governors"),
            "performance powersave\n",
        )?;
        let sibling = cpu ^ 2;
        let (lo, hi) = (cpu.min(sibling), cpu.max(sibling));
        put(
            base,
            &format!("{dir}/topology/thread_siblings_list"),
            &format!("{lo},{hi}\n"),
        )?;
    }
    put(
        base,
        "proc/cpuinfo",
        "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Platinum 8259CL CPU @ 2.50GHz\n",
    )?;
    put(
        base,
        "proc/meminfo",
        "MemTotal:       65536000 kB\nMemFree:        60000000 kB\nSwapTotal:       1048576 kB\n",
    )?;
    put(base, "proc/sys/vm/swappiness", "60\n")?;
    put(base, "proc/sys/vm/max_map_count", "65530\n")?;
    put(base, "proc/sys/fs/aio-max-nr", "65536\n")?;
    put(base, "proc/sys/kernel/osrelease", "6.1.0-18-cloud-amd64\n")?;
    put(base, "proc/sys/kernel/io_uring_disabled", "0\n")?;
    put(
        base,
        "proc/sys/kernel/core_pattern",
        "|/lib/systemd/systemd-coredump %P %u %g %s %t 9223372036854775808 %h\n",
    )?;
    put(base, "proc/sys/net/core/somaxconn", "128\n")?;
    put(base, "proc/sys/net/core/netdev_max_backlog", "1000\n")?;
    put(base, "proc/sys/net/ipv4/tcp_max_syn_backlog", "512\n")?;
    put(base, "proc/self/status", "Name:\tweir\nSeccomp:\t0\n")?;
    put(
        base,
        "proc/self/limits",
        "Limit                     Soft Limit           Hard Limit           Units\n\
         Max open files            1024                 524288               files\n\
         Max locked memory         65536                65536                bytes\n",
    )?;
    put(
        base,
        "proc/self/mountinfo",
        "1 0 259:1 / / rw,relatime - ext4 /dev/nvme0n1p1 rw\n\
         30 1 259:0 / /var/lib/weir rw,noatime - xfs /dev/nvme1n1 rw,attr2\n",
    )?;
    put(
        base,
        "sys/kernel/mm/transparent_hugepage/enabled",
        "[always] madvise never\n",
    )?;
    let clock = "sys/devices/system/clocksource/clocksource0";
    put(base, &format!("{clock}/current_clocksource"), "xen\n")?;
    put(
        base,
        &format!("{clock}/available_clocksource"),
        "xen tsc hpet acpi_pm \n",
    )?;
    disk(base)?;
    nic(base)?;
    for irq in DISK_IRQS.iter().chain(&NIC_IRQS) {
        put(base, &format!("proc/irq/{irq}/smp_affinity_list"), "0-3\n")?;
    }
    fs::create_dir_all(base.join("etc/systemd/system"))?;
    fs::create_dir_all(base.join(DATA_DIR.trim_start_matches('/')))
}

fn disk(base: &Path) -> io::Result<()> {
    let ctrl = format!("{DISK_PCI}/nvme/nvme1");
    let dev = format!("{ctrl}/nvme1n1");
    for (file, text) in [
        ("scheduler", "[mq-deadline] none\n"),
        ("nomerges", "0\n"),
        ("rotational", "0\n"),
        ("write_cache", "write through\n"),
        ("logical_block_size", "512\n"),
        ("physical_block_size", "4096\n"),
        ("discard_max_bytes", "2199023255040\n"),
    ] {
        put(base, &format!("{dev}/queue/{file}"), text)?;
    }
    put(
        base,
        &format!("{ctrl}/model"),
        "Amazon EC2 NVMe Instance Storage        \n",
    )?;
    link(base, &format!("{dev}/device"), "..")?;
    link(
        base,
        "sys/dev/block/259:0",
        "../../devices/pci0000:00/0000:00:04.0/nvme/nvme1/nvme1n1",
    )?;
    for irq in DISK_IRQS {
        put(base, &format!("{DISK_PCI}/msi_irqs/{irq}"), "msix\n")?;
    }
    Ok(())
}

fn nic(base: &Path) -> io::Result<()> {
    let dev = format!("{NIC_PCI}/net/eth0");
    put(base, &format!("{dev}/speed"), "25000\n")?;
    for q in 0..2 {
        put(base, &format!("{dev}/queues/rx-{q}/rps_cpus"), "0\n")?;
        put(base, &format!("{dev}/queues/tx-{q}/xps_cpus"), "0\n")?;
    }
    link(base, &format!("{dev}/device"), "../../../0000:00:05.0")?;
    fs::create_dir_all(base.join("sys/bus/pci/drivers/ena"))?;
    link(
        base,
        &format!("{NIC_PCI}/driver"),
        "../../../bus/pci/drivers/ena",
    )?;
    for irq in NIC_IRQS {
        put(base, &format!("{NIC_PCI}/msi_irqs/{irq}"), "msix\n")?;
    }
    link(
        base,
        "sys/class/net/eth0",
        "../../devices/pci0000:00/0000:00:05.0/net/eth0",
    )?;
    fs::create_dir_all(base.join("sys/class/net/lo"))
}
