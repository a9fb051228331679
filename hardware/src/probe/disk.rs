//! Probe of the data directory's filesystem and disk: mount options, model, rotational,
//! scheduler, nomerges, write cache, block sizes, discard.
//!
//! Owns: reading the disk's queue settings. Must not: change anything.

use std::path::Path;

use super::{Item, Severity};
use crate::blockdev::disk_of_dir;
use crate::recommended::{DISK_NOMERGES, DISK_SCHEDULER};
use crate::root::{selected, HostRoot};

pub(super) fn probe(root: &HostRoot, dir: &Path, items: &mut Vec<Item>) {
    let Some((mount, disk)) = disk_of_dir(root, dir) else {
        items.push(
            Item::info("disk", "disk.mount", None)
                .note(format!("no mount found for {}", dir.display())),
        );
        return;
    };
    items.push(
        Item::info(
            "disk",
            "disk.mount",
            Some(format!("{} on {}", mount.source, mount.mount_point)),
        )
        .note(format!("options {} {}", mount.options, mount.super_options)),
    );
    let fs_ok = matches!(mount.fs_type.as_str(), "xfs" | "ext4");
    items.push(
        Item::check(
            "disk",
            "disk.filesystem",
            Some(mount.fs_type.clone()),
            "xfs or ext4",
            fs_ok,
            Severity::Warning,
        )
        .note("O_DIRECT and fallocate behave well on both; xfs is Redpanda's choice"),
    );
    let Some(disk) = disk else {
        items.push(
            Item::info("disk", "disk.device", None)
                .note(format!("{} is not a block device in sysfs", mount.source)),
        );
        return;
    };
    let q = |file: &str| root.read_trim(&format!("{}/queue/{file}", disk.sys_dir));
    let name = |what: &str| format!("disk.{}.{what}", disk.name);
    let model = root.read_trim(&format!("{}/device/model", disk.sys_dir));
    items.push(Item::info("disk", name("model"), model));
    let rotational = q("rotational");
    let meets = rotational.as_deref() == Some("0");
    items.push(
        Item::check(
            "disk",
            name("rotational"),
            rotational,
            "0",
            meets,
            Severity::Warning,
        )
        .note("weir is built for SSD/NVMe latencies"),
    );
    let scheduler = q("scheduler");
    let current = scheduler
        .as_deref()
        .map(|s| selected(s).unwrap_or(s).to_string());
    let meets = current.as_deref() == Some(DISK_SCHEDULER);
    items.push(Item::check(
        "disk",
        name("scheduler"),
        current,
        DISK_SCHEDULER,
        meets,
        Severity::Warning,
    ));
    let nomerges = q("nomerges");
    let meets = nomerges.as_deref() == Some(&DISK_NOMERGES.to_string());
    items.push(Item::check(
        "disk",
        name("nomerges"),
        nomerges,
        DISK_NOMERGES.to_string(),
        meets,
        Severity::Warning,
    ));
    items.push(
        Item::info("disk", name("write_cache"), q("write_cache"))
            .note("'write back': fdatasync flushes the device cache"),
    );
    items.push(Item::info(
        "disk",
        name("logical_block_bytes"),
        q("logical_block_size"),
    ));
    items.push(
        Item::info(
            "disk",
            name("physical_block_bytes"),
            q("physical_block_size"),
        )
        .note("weir's DMA writes are aligned to 4096"),
    );
    items.push(
        Item::info("disk", name("discard_max_bytes"), q("discard_max_bytes"))
            .note("0 = no TRIM; the fstrim tuner does nothing then"),
    );
}
