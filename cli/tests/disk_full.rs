//! A full disk, for real: a small ext4 filesystem in a file (`mkfs.ext4`, `mount -o loop`) holds
//! the broker's data directory; a ballast file takes most of it. A producer fills the rest until
//! the broker refuses with KAFKA_STORAGE_ERROR — the process stays up and keeps serving reads of
//! everything acknowledged. The ballast is deleted; produce works again by itself (no restart),
//! and a read from the beginning finds every acknowledged record exactly once.
//!
//! Needs root (mount) and e2fsprogs, as CI has. Must not touch any filesystem but its own.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::ServeProcess;

const LIMIT: Duration = Duration::from_secs(120);
const FS_BYTES: u64 = 512 << 20;
/// Free space left beside the ballast: a few of the log's 16 MiB reservations.
const LEFT_BYTES: u64 = 24 << 20;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/disk_full.py")
}

/// A loop-mounted ext4 filesystem, unmounted on drop.
struct SmallFs {
    mount: PathBuf,
}

impl SmallFs {
    fn new(dir: &Path) -> SmallFs {
        let image = dir.join("fs.img");
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(FS_BYTES))
            .expect("image file");
        let mount = dir.join("mnt");
        std::fs::create_dir(&mount).expect("mount point");
        let ok = |cmd: &mut Command| {
            let out = cmd.output().expect("running a filesystem tool");
            assert!(out.status.success(), "{cmd:?}: {out:?}");
        };
        ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        ok(Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount));
        SmallFs { mount }
    }

    fn free_bytes(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.mount)
            .output()
            .expect("df");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .nth(1)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("df said {text:?}"))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
    }
}

fn client(broker: &ServeProcess, args: &[&str]) -> Vec<String> {
    let mut c = Command::new("python3");
    c.arg(script()).args(args);
    broker
        .run_client(&mut c, b"", LIMIT)
        .lines()
        .map(str::to_string)
        .collect()
}

fn numbers(lines: &[String], word: &str) -> Vec<u64> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(word))
        .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
        .collect()
}

#[test]
fn a_full_disk_refuses_produce_keeps_reads_and_resumes_once_space_is_freed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let fs = SmallFs::new(tmp.path());
    let data = fs.mount.join("data");
    // The log stays off the small filesystem (it fills up).
    let broker = ServeProcess::one_shard_at(&data, &tmp.path().join("serve.stderr"), &[]);
    let ballast = fs.mount.join("ballast");
    let free = fs.free_bytes();
    assert!(free > LEFT_BYTES * 2, "{free} bytes free");
    std::fs::File::create(&ballast)
        .and_then(|f| {
            use std::io::Write;
            let mut f = std::io::BufWriter::new(f);
            let chunk = vec![0xB5u8; 1 << 20];
            for _ in 0..(free - LEFT_BYTES) >> 20 {
                f.write_all(&chunk)?;
            }
            f.into_inner().map_err(|e| e.into_error())?.sync_all()
        })
        .expect("ballast");

    let topic = "full";
    let filled = client(&broker, &["fill", &broker.addr, topic, "0"]);
    let refused = filled.iter().find(|l| l.starts_with("refused "));
    assert!(
        refused.is_some_and(|l| l.contains("KafkaStorageError")),
        "the producer was never refused: {:?}\nbroker log:\n{}",
        filled.last(),
        broker.log()
    );
    let acked_before = numbers(&filled, "acked ");
    assert!(acked_before.len() > 100, "{} acked", acked_before.len());
    assert!(broker.log().contains("disk full"), "{}", broker.log());
    // Still up, still serving every acknowledged record.
    let read = numbers(&client(&broker, &["read", &broker.addr, topic]), "value ");
    for i in &acked_before {
        assert!(
            read.contains(i),
            "acknowledged record {i} missing while the disk is full"
        );
    }

    std::fs::remove_file(&ballast).expect("removing the ballast");
    let first = acked_before.iter().max().map_or(0, |m| m + 1000);
    let resumed = client(
        &broker,
        &["resume", &broker.addr, topic, &first.to_string(), "20"],
    );
    let acked_after = numbers(&resumed, "acked ");
    assert_eq!(acked_after.len(), 20, "{resumed:?}");

    let read = numbers(&client(&broker, &["read", &broker.addr, topic]), "value ");
    for i in acked_before.iter().chain(&acked_after) {
        let times = read.iter().filter(|v| *v == i).count();
        assert_eq!(times, 1, "acknowledged record {i} stored {times} times");
    }
    assert!(
        broker.log().contains("disk space is back"),
        "{}",
        broker.log()
    );
    broker.stop();
}
