//! Tuner of TRIM: a weekly `fstrim` of the data filesystem as a systemd timer (unit files and the
//! `timers.target.wants` link that `systemctl enable` would make). Not applicable when the
//! filesystem is mounted with online `discard` or the disk takes no TRIM.
//!
//! Owns: that plan and the unit text. Must not: write (run.rs does) or run fstrim itself.

use super::{Action, Plan, TuneContext, Tuner};
use crate::blockdev::disk_of_dir;
use crate::root::HostRoot;

const UNIT_DIR: &str = "/etc/systemd/system";
pub const SERVICE: &str = "weir-fstrim.service";
pub const TIMER: &str = "weir-fstrim.timer";

pub struct Fstrim;

fn service(mount_point: &str) -> String {
    format!(
        "# Written by `weir hw tune` (fstrim); removed by `weir hw tune --revert`.\n\
         [Unit]\nDescription=TRIM the weir data filesystem\n\n\
         [Service]\nType=oneshot\nExecStart=/sbin/fstrim --verbose {mount_point}\n"
    )
}

fn timer() -> String {
    "# Written by `weir hw tune` (fstrim); removed by `weir hw tune --revert`.\n\
     [Unit]\nDescription=Weekly TRIM of the weir data filesystem\n\n\
     [Timer]\nOnCalendar=weekly\nPersistent=true\nRandomizedDelaySec=1h\n\n\
     [Install]\nWantedBy=timers.target\n"
        .to_string()
}

impl Tuner for Fstrim {
    fn name(&self) -> &'static str {
        "fstrim"
    }
    fn about(&self) -> &'static str {
        "weekly fstrim of the data filesystem (systemd timer weir-fstrim.timer)"
    }
    fn plan(&self, root: &HostRoot, ctx: &TuneContext) -> Plan {
        let Some((mount, disk)) = disk_of_dir(root, &ctx.data_dir) else {
            return Plan::NotApplicable(format!("no mount for {}", ctx.data_dir.display()));
        };
        if mount.has_option("discard") {
            return Plan::NotApplicable(format!("{} is mounted with discard", mount.mount_point));
        }
        let Some(disk) = disk else {
            return Plan::NotApplicable(format!("{} is not a block device", mount.source));
        };
        let discard = root.read_u64(&format!("{}/queue/discard_max_bytes", disk.sys_dir));
        if discard.unwrap_or(0) == 0 {
            return Plan::NotApplicable(format!("{} takes no TRIM", disk.name));
        }
        if !root.path(UNIT_DIR).is_dir() {
            return Plan::NotApplicable(format!("no {UNIT_DIR} (not systemd)"));
        }
        let mut actions = Vec::new();
        let service_path = format!("{UNIT_DIR}/{SERVICE}");
        if !root.exists(&service_path) {
            actions.push(Action::Create {
                path: service_path,
                text: service(&mount.mount_point),
            });
        }
        let timer_path = format!("{UNIT_DIR}/{TIMER}");
        if !root.exists(&timer_path) {
            actions.push(Action::Create {
                path: timer_path,
                text: timer(),
            });
        }
        let wants = format!("{UNIT_DIR}/timers.target.wants");
        if !root.exists(&wants) {
            actions.push(Action::CreateDir {
                path: wants.clone(),
            });
        }
        let link = format!("{wants}/{TIMER}");
        if root.path(&link).symlink_metadata().is_err() {
            actions.push(Action::Link {
                path: link,
                target: format!("../{TIMER}"),
            });
        }
        Plan::Changes(actions)
    }
}
