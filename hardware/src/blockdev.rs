//! From a directory to its mount and its whole block device: `/proc/self/mountinfo` gives the
//! mount and device number covering the directory, `/sys/dev/block/MAJ:MIN` the device (a
//! partition's queue settings live on its parent disk).
//!
//! Owns: that resolution. Must not: read device settings (probe/disk.rs) or change them (tune/).

use std::path::{Component, Path, PathBuf};

use crate::root::HostRoot;

/// A mount as `/proc/self/mountinfo` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub mount_point: String,
    /// `MAJ:MIN` of the filesystem's device (`0:N` for virtual filesystems).
    pub device_number: String,
    pub fs_type: String,
    pub source: String,
    /// Per-mount options (`rw,noatime`).
    pub options: String,
    /// The filesystem's own options (`rw,discard`).
    pub super_options: String,
}

impl Mount {
    /// Whether `option` is among the per-mount or the filesystem options.
    pub fn has_option(&self, option: &str) -> bool {
        self.options
            .split(',')
            .chain(self.super_options.split(','))
            .any(|o| o == option)
    }
}

/// A whole disk in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// Kernel name (`nvme0n1`, `vda`).
    pub name: String,
    /// Its sysfs directory as a host path (`/sys/devices/.../block/vda`).
    pub sys_dir: String,
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Parses one mountinfo line; `None` if malformed.
fn parse_line(line: &str) -> Option<Mount> {
    let (head, tail) = line.split_once(" - ")?;
    let head: Vec<&str> = head.split(' ').collect();
    let mut tail = tail.split(' ');
    Some(Mount {
        device_number: head.get(2)?.to_string(),
        mount_point: unescape(head.get(4)?),
        options: head.get(5)?.to_string(),
        fs_type: tail.next()?.to_string(),
        source: unescape(tail.next()?),
        super_options: tail.next().unwrap_or_default().to_string(),
    })
}

/// `dir` made absolute and free of `.`/`..` without touching the filesystem (a fake root's
/// paths do not exist on this host).
fn normalise(dir: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in dir.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The mount that holds `dir` (a path on the host under `root`): the longest mount point that
/// is an ancestor of it; the last such line wins (later mounts cover earlier ones).
pub fn mount_of(root: &HostRoot, dir: &Path) -> Option<Mount> {
    let dir = if root.is_real() {
        dir.canonicalize().unwrap_or_else(|_| normalise(dir))
    } else {
        normalise(dir)
    };
    let text = root.read("/proc/self/mountinfo")?;
    let mut best: Option<Mount> = None;
    for mount in text.lines().filter_map(parse_line) {
        if !dir.starts_with(&mount.mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or_len(|b| mount.mount_point.len() >= b.mount_point.len());
        if longer {
            best = Some(mount);
        }
    }
    best
}

/// `Option::is_none_or` for toolchains before 1.82.
trait NoneOr<T> {
    fn is_none_or_len(&self, f: impl FnOnce(&T) -> bool) -> bool;
}

impl<T> NoneOr<T> for Option<T> {
    fn is_none_or_len(&self, f: impl FnOnce(&T) -> bool) -> bool {
        match self {
            None => true,
            Some(v) => f(v),
        }
    }
}

/// The whole disk behind a device number, if it is a block device in sysfs.
pub fn disk_of(root: &HostRoot, device_number: &str) -> Option<Disk> {
    let link = root.path(&format!("/sys/dev/block/{device_number}"));
    let mut dir = link.canonicalize().ok()?;
    if dir.join("partition").exists() {
        dir = dir.parent()?.to_path_buf();
    }
    let name = dir.file_name()?.to_str()?.to_string();
    let sys_dir = root.host_path(&dir)?;
    Some(Disk { name, sys_dir })
}

/// The disk under `dir`, through its mount.
pub fn disk_of_dir(root: &HostRoot, dir: &Path) -> Option<(Mount, Option<Disk>)> {
    let mount = mount_of(root, dir)?;
    let disk = disk_of(root, &mount.device_number);
    Some((mount, disk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_lines_parse_with_optional_fields_and_escapes() {
        let m = parse_line(
            "36 35 98:0 /mnt1 /mnt/my\\040disk rw,noatime master:1 - xfs /dev/nvme1n1 rw,attr2",
        )
        .expect("parses");
        assert_eq!(m.mount_point, "/mnt/my disk");
        assert_eq!(m.device_number, "98:0");
        assert_eq!(m.fs_type, "xfs");
        assert_eq!(m.source, "/dev/nvme1n1");
        assert_eq!(m.options, "rw,noatime");
        assert!(m.has_option("attr2") && m.has_option("noatime") && !m.has_option("discard"));
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn paths_normalise_without_the_filesystem() {
        assert_eq!(normalise(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
    }
}
