//! `weir tune sweep --local --resume`: a sweep killed with SIGKILL mid-way (its local broker
//! dies with it; its data directory, RESULTS.broker, stays), its results file then torn mid-line
//! as a kill during a write would leave it, resumes where it stopped (clearing that directory)
//! and ends with every point of the plan exactly once and no broker directory left.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PLAN: &str = r#"
name = "resume"
budget_minutes = 5
[timing]
warmup_s = 0
measure_s = 0.3
repetitions = 2
[modes]
fixed_load_mbps = [0.5, 1]
[axes]
linger_ms = [0, 5]
batch_size = [16384, 65536]
compression = ["lz4"]
acks = ["1"]
partitions = [1]
[[broker]]
name = "one-shard"
settings = { shards = 1 }
"#;

fn lines(results: &Path) -> Vec<String> {
    std::fs::read_to_string(results)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Point ids and how often each appears (every line must parse).
fn counts(results: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for l in lines(results) {
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        if v["type"] == "point" {
            *counts
                .entry(v["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    counts
}

/// The pids of `weir serve` processes whose config lives in `dir`.
fn brokers_in(dir: &Path) -> Vec<u32> {
    let dir = dir.display().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(" serve --config ") && cmdline.contains(&dir) {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn a_sweep_killed_with_sigkill_resumes_and_ends_with_every_point_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::write(&plan, PLAN).unwrap();
    let results = dir.path().join("r.jsonl");
    let args = |resume: bool| {
        let mut a = vec![
            "tune".to_string(),
            "sweep".into(),
            "--plan".into(),
            plan.display().to_string(),
            "--local".into(),
            "--out".into(),
            results.display().to_string(),
            "--limits-s".into(),
            "0.2".into(),
        ];
        if resume {
            a.push("--resume".into());
        }
        a
    };
    let broker_dir = dir.path().join("r.jsonl.broker");
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args(false))
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once two points are written (of eight).
    let deadline = Instant::now() + Duration::from_secs(120);
    while counts(&results).len() < 2 {
        assert!(Instant::now() < deadline, "no two points written in 120 s");
        assert!(child.try_wait().unwrap().is_none(), "the sweep ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let done = counts(&results);
    assert!((2..8).contains(&done.len()), "{done:?}");
    // Its broker died with it (parent-death signal).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = brokers_in(&broker_dir);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "weir serve {left:?} outlived the sweep"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        broker_dir.join("data").is_dir(),
        "a killed sweep leaves its broker's data"
    );
    // A kill during a write leaves half a line: the resumed sweep must cut it.
    let text = std::fs::read_to_string(&results).unwrap();
    let last = text.lines().last().unwrap().to_string();
    std::fs::write(&results, format!("{text}{}", &last[..last.len() / 2])).unwrap();

    support::run(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args(true))
            .env("RUST_BACKTRACE", "0"),
        b"",
        Duration::from_secs(180),
    );
    let after = counts(&results);
    assert_eq!(after.len(), 8, "{after:?}");
    assert!(after.values().all(|&n| n == 1), "{after:?}");
    for id in done.keys() {
        assert!(after.contains_key(id));
    }
    // Two sweep headers (the start and the resumption), then the points; nothing torn.
    let all = lines(&results);
    assert_eq!(all.len(), 2 + 8);
    let headers = all
        .iter()
        .filter(|l| l.starts_with("{\"type\":\"sweep\""))
        .count();
    assert_eq!(headers, 2);
    // Each start measured the machine's limits (loopback TCP always can be).
    for h in all.iter().filter(|l| l.starts_with("{\"type\":\"sweep\"")) {
        let h: serde_json::Value = serde_json::from_str(h).unwrap();
        assert!(
            h["limits"]["tcp_loopback_mb_per_s"].as_f64().unwrap() > 0.0,
            "{h:#}"
        );
    }
    assert!(
        !broker_dir.exists(),
        "the resumed sweep removed its broker's directory"
    );
    // Resuming a finished sweep runs nothing.
    support::run(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(args(true))
            .env("RUST_BACKTRACE", "0"),
        b"",
        Duration::from_secs(60),
    );
    assert_eq!(counts(&results).len(), 8);
    assert!(lines(&results).len() == 2 + 8 + 1, "one more header only");
}
