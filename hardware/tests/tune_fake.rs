//! Every tuner against the fake EC2-like host tree: check says what it would change, apply
//! changes exactly that, revert restores the tree byte for byte (files, links, directories).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use hardware::fake_host::{self, DATA_DIR};
use hardware::root::HostRoot;
use hardware::tune::run::{apply, check, revert, Outcome};
use hardware::tune::{all, select, TuneContext};

/// Every entry under `dir`: file bytes, link targets, directories.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    format!("-> {}", fs::read_link(&path).unwrap().display()),
                );
            } else if meta.is_dir() {
                out.insert(rel, "dir".into());
                stack.push(path);
            } else {
                out.insert(rel, format!("{:?}", fs::read(&path).unwrap()));
            }
        }
    }
    out
}

struct Host {
    dir: tempfile::TempDir,
    root: HostRoot,
    ctx: TuneContext,
    state: PathBuf,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    fake_host::build(dir.path()).unwrap();
    let root = HostRoot::fake(dir.path());
    let mut ctx = TuneContext::new(DATA_DIR);
    ctx.ballast_bytes = 1 << 20;
    let state = root.path(hardware::tune::state::STATE_PATH);
    Host {
        dir,
        root,
        ctx,
        state,
    }
}

fn read(h: &Host, rel: &str) -> String {
    fs::read_to_string(h.root.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn apply_sets_every_knob_and_revert_restores_the_tree_byte_for_byte() {
    let h = host();
    let before = snapshot(h.dir.path());
    let tuners = all();
    for o in check(&h.root, &h.ctx, &tuners) {
        assert!(
            matches!(o.outcome, Outcome::Changes(ref c) if !c.is_empty()),
            "{}: untuned fake host should need changes, got {:?}",
            o.tuner,
            o.outcome
        );
    }
    let applied = apply(&h.root, &h.ctx, &tuners, &h.state, false).unwrap();
    for o in &applied {
        assert!(matches!(o.outcome, Outcome::Changes(_)), "{o:?}");
    }
    let disk = "/sys/devices/pci0000:00/0000:00:04.0/nvme/nvme1/nvme1n1/queue";
    assert_eq!(
        read(&h, &format!("{disk}/scheduler")),
        "mq-deadline [none]\n"
    );
    assert_eq!(read(&h, &format!("{disk}/nomerges")), "2");
    assert_eq!(read(&h, "/proc/sys/vm/swappiness"), "1");
    assert_eq!(read(&h, "/proc/sys/fs/aio-max-nr"), "1048576");
    assert_eq!(read(&h, "/proc/sys/net/core/netdev_max_backlog"), "16384");
    assert_eq!(
        read(&h, "/sys/kernel/mm/transparent_hugepage/enabled"),
        "always [madvise] never\n"
    );
    assert_eq!(
        read(
            &h,
            "/sys/devices/system/clocksource/clocksource0/current_clocksource"
        ),
        "tsc"
    );
    assert_eq!(
        read(&h, "/sys/devices/system/cpu/cpu3/cpufreq/scaling_governor"),
        "performance"
    );
    for (i, irq) in fake_host::NIC_IRQS.iter().enumerate() {
        assert_eq!(
            read(&h, &format!("/proc/irq/{irq}/smp_affinity_list")),
            i.to_string()
        );
    }
    assert_eq!(read(&h, "/proc/irq/42/smp_affinity_list"), "2");
    assert_eq!(read(&h, "/sys/class/net/eth0/queues/rx-1/rps_cpus"), "f");
    assert_eq!(read(&h, "/sys/class/net/eth0/queues/tx-1/xps_cpus"), "2");
    assert_eq!(
        read(&h, "/proc/sys/kernel/core_pattern"),
        "/var/lib/weir/coredump/core.%e.%p.%t"
    );
    assert!(h.root.path("/var/lib/weir/coredump").is_dir());
    let ballast = fs::metadata(h.root.path("/var/lib/weir/weir.ballast")).unwrap();
    assert_eq!(ballast.len(), 1 << 20);
    assert!(read(&h, "/etc/systemd/system/weir-fstrim.service")
        .contains("fstrim --verbose /var/lib/weir"));
    assert!(h
        .root
        .path("/etc/systemd/system/timers.target.wants/weir-fstrim.timer")
        .symlink_metadata()
        .is_ok());
    for o in check(&h.root, &h.ctx, &tuners) {
        assert_eq!(o.outcome, Outcome::Tuned, "{} after apply", o.tuner);
    }
    // A second apply changes nothing and keeps the first originals.
    apply(&h.root, &h.ctx, &tuners, &h.state, false).unwrap();
    let lines = revert(&h.root, None, &h.state, false).unwrap();
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("FAILED") && !l.contains("reads back")),
        "{lines:#?}"
    );
    assert_eq!(snapshot(h.dir.path()), before);
    assert!(!h.state.exists());
}

#[test]
fn each_tuner_alone_changes_only_its_files_and_reverts_them() {
    for tuner in all() {
        let h = host();
        let before = snapshot(h.dir.path());
        let only = [tuner.name().to_string()];
        let tuners = select(Some(&only)).unwrap();
        let applied = apply(&h.root, &h.ctx, &tuners, &h.state, false).unwrap();
        assert_eq!(applied.len(), 1);
        let Outcome::Changes(lines) = &applied[0].outcome else {
            panic!("{}: {:?}", tuner.name(), applied[0].outcome);
        };
        let after = snapshot(h.dir.path());
        let changed: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        // Each action shows up as one changed entry (plus the state file and its directory).
        let state_rel = Path::new(hardware::tune::state::STATE_PATH.trim_start_matches('/'));
        let non_state = changed.iter().filter(|p| p.as_path() != state_rel).count();
        assert_eq!(
            non_state,
            lines.len(),
            "{}: {changed:?} vs {lines:?}",
            tuner.name()
        );
        revert(&h.root, Some(&only), &h.state, false).unwrap();
        assert_eq!(snapshot(h.dir.path()), before, "{}", tuner.name());
    }
}

#[test]
fn dry_run_writes_nothing_and_revert_only_undoes_the_named_tuner() {
    let h = host();
    let before = snapshot(h.dir.path());
    let tuners = all();
    let planned = apply(&h.root, &h.ctx, &tuners, &h.state, true).unwrap();
    assert!(planned
        .iter()
        .all(|o| matches!(o.outcome, Outcome::Changes(_))));
    assert_eq!(snapshot(h.dir.path()), before);
    apply(&h.root, &h.ctx, &tuners, &h.state, false).unwrap();
    let dry = revert(&h.root, None, &h.state, true).unwrap();
    assert!(!dry.is_empty());
    assert_eq!(read(&h, "/proc/sys/vm/swappiness"), "1");
    revert(&h.root, Some(&["swappiness".to_string()]), &h.state, false).unwrap();
    assert_eq!(read(&h, "/proc/sys/vm/swappiness"), "60\n");
    assert_eq!(read(&h, "/proc/sys/fs/aio-max-nr"), "1048576");
    revert(&h.root, None, &h.state, false).unwrap();
    assert_eq!(snapshot(h.dir.path()), before);
}

#[test]
fn a_host_without_the_knobs_is_not_applicable_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let root = HostRoot::fake(dir.path());
    let ctx = TuneContext::new("/data");
    for o in check(&root, &ctx, &all()) {
        assert!(matches!(o.outcome, Outcome::NotApplicable(_)), "{o:?}");
    }
    assert!(select(Some(&["no_such_tuner".to_string()])).is_err());
}
