//! `weir bench zk` (the ZooKeeper-protocol load client) against a `weir coord` node's ZooKeeper
//! frontend: short bounded runs whose counted successes must equal what the server then holds,
//! read back through weir's native protocol (sequential children per connection znode; setData
//! versions), and gets that return the bytes that were set. Also `weir coord bench` (the native
//! protocol benchmark, `bench::coord_load`): its successes against what the server holds, its
//! HDR percentiles, and the leader kill.

use std::process::Command;
use std::time::Duration;

mod support;
use support::run;
use support::zk::CoordNode;

fn bench_zk(node: &CoordNode, args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    run(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["bench", "zk", "--servers", &node.zk, "--warmup-s", "0"])
            .args(["--duration-s", "1", "--json"])
            .arg(&json)
            .args(args),
        b"",
        Duration::from_secs(60),
    );
    let text = std::fs::read_to_string(&json).expect("report written");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("report {text:?}: {e}"))
}

/// `weir coord stat PATH` through the native protocol, as JSON.
fn stat(node: &CoordNode, path: &str) -> serde_json::Value {
    let out = node
        .native("stat", &[path])
        .unwrap_or_else(|e| panic!("stat {path}: {e}\ncoord log:\n{}", node.log()));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("stat output {out:?}: {e}"))
}

#[test]
fn counted_successes_match_what_the_server_holds() {
    let node = CoordNode::start();
    let clients = 3u64;

    // Sequential creates: each success is one child of the connection's znode.
    let r = bench_zk(
        &node,
        &[
            "--op",
            "create-seq",
            "--size",
            "16",
            "--clients",
            "3",
            "--in-flight",
            "8",
            // Two executor threads: their connections' counts are merged.
            "--executors",
            "2",
        ],
    );
    let ctx = format!("report {r}\ncoord log:\n{}", node.log());
    assert_eq!(r["errors"], 0, "{ctx}");
    assert_eq!(r["reconnects"], 0, "{ctx}");
    let created = r["ops_total"].as_u64().expect("ops_total");
    assert!(created > 0, "{ctx}");
    // No warm-up: only the replies drained after the window closed are left out of `ops`.
    let measured = r["ops"].as_u64().expect("ops");
    assert!(measured > 0 && measured <= created, "{ctx}");
    let children: u64 = (0..clients)
        .map(|i| {
            stat(&node, &format!("/weir-bench-zk/c{i}"))["num_children"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(children, created, "{ctx}");

    // Sets: each success bumps the znode's data version by one (they start at version 0).
    let r = bench_zk(
        &node,
        &[
            "--op",
            "set",
            "--size",
            "100",
            "--clients",
            "3",
            "--in-flight",
            "8",
        ],
    );
    let ctx = format!("report {r}\ncoord log:\n{}", node.log());
    assert_eq!(r["errors"], 0, "{ctx}");
    let sets = r["ops_total"].as_u64().expect("ops_total");
    assert!(sets > 0, "{ctx}");
    let versions: u64 = (0..clients)
        .map(|i| {
            let s = stat(&node, &format!("/weir-bench-zk/c{i}"));
            assert_eq!(s["data_length"], 100, "{s}");
            s["version"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(versions, sets, "{ctx}");

    // Gets check every reply carries --size bytes: 100 is what the sets left.
    let r = bench_zk(
        &node,
        &[
            "--op",
            "get",
            "--size",
            "100",
            "--clients",
            "2",
            "--in-flight",
            "4",
        ],
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
    assert!(
        r["p99_ms"].as_f64().unwrap() >= r["p50_ms"].as_f64().unwrap(),
        "{r}"
    );
    // A wrong size is reported as an error for every reply, and the run fails.
    let out = support::try_run(
        Command::new(env!("CARGO_BIN_EXE_weir")).args([
            "bench",
            "zk",
            "--servers",
            &node.zk,
            "--op",
            "get",
            "--size",
            "7",
            "--clients",
            "1",
            "--duration-s",
            "0.3",
            "--warmup-s",
            "0",
        ]),
        b"",
        Duration::from_secs(60),
    );
    let err = out.expect_err("gets of the wrong size must fail the run");
    assert!(err.contains("get returned 100 bytes, expected 7"), "{err}");
}

/// Three `weir coord` nodes with their ZooKeeper frontends; killed on drop.
struct Ensemble {
    _dir: tempfile::TempDir,
    children: Vec<std::process::Child>,
    native: Vec<String>,
    zk: Vec<String>,
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ensemble() -> Ensemble {
    let dir = tempfile::tempdir().expect("tempdir");
    let native: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", support::free_port()))
        .collect();
    let zk: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", support::free_port()))
        .collect();
    let peers = (0..3)
        .map(|i| format!("{}={}", i + 1, native[i]))
        .collect::<Vec<_>>()
        .join(",");
    let children = (0..3)
        .map(|i| {
            let log = std::fs::File::create(dir.path().join(format!("n{}.log", i + 1))).unwrap();
            Command::new(env!("CARGO_BIN_EXE_weir"))
                .args(["coord", "--id", &(i + 1).to_string(), "--data-dir"])
                .arg(dir.path().join(format!("n{}", i + 1)))
                .args([
                    "--listen",
                    &native[i],
                    "--zk-addr",
                    &zk[i],
                    "--peers",
                    &peers,
                ])
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawning weir coord")
        })
        .collect();
    let e = Ensemble {
        _dir: dir,
        children,
        native,
        zk,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !e.native.iter().any(|a| {
        support::try_run(
            Command::new(env!("CARGO_BIN_EXE_weir")).args(["coord", "status", "--server", a]),
            b"",
            Duration::from_secs(10),
        )
        .is_ok_and(|s| s.contains("\"is_leader\":true"))
    }) {
        assert!(std::time::Instant::now() < deadline, "no leader elected");
        std::thread::sleep(Duration::from_millis(100));
    }
    e
}

#[test]
fn leader_kill_is_found_killed_and_writes_resume() {
    let mut e = ensemble();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("report.json");
    run(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["bench", "zk", "--servers", &e.zk.join(",")])
            .args(["--weir-status", &e.native.join(",")])
            .args([
                "--op",
                "set",
                "--size",
                "64",
                "--clients",
                "3",
                "--in-flight",
                "4",
            ])
            .args([
                "--duration-s",
                "4",
                "--warmup-s",
                "0",
                "--kill-leader-at-s",
                "1",
            ])
            .arg("--json")
            .arg(&json),
        b"",
        Duration::from_secs(60),
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("json");
    let pid = r["killed_leader"]["pid"]
        .as_u64()
        .expect("a leader was killed") as u32;
    let killed = e
        .children
        .iter_mut()
        .position(|c| c.id() == pid)
        .unwrap_or_else(|| panic!("killed pid {pid} is not one of the nodes: {r}"));
    // It really died (by signal 9), and its native address is the one reported.
    let status = e.children[killed].wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{r}"
    );
    assert_eq!(r["killed_leader"]["addr"], e.native[killed].as_str(), "{r}");
    // Writes stopped for a while and then resumed on the two survivors.
    assert!(r["gap_after_kill_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["ops_after_kill"].as_u64().unwrap() > 0, "{r}");
}

/// `weir coord bench ARGS` against `servers` (native protocol); its one JSON line.
fn coord_bench(servers: &str, args: &[&str]) -> serde_json::Value {
    let out = run(
        Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["coord", "bench", "--server", servers])
            .args(args),
        b"",
        Duration::from_secs(60),
    );
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("report {out:?}: {e}"))
}

/// HDR percentiles, in order, of a run that did something.
fn assert_percentiles(r: &serde_json::Value) {
    let p: Vec<f64> = ["p50_ms", "p99_ms", "p999_ms", "max_ms"]
        .iter()
        .map(|k| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}")))
        .collect();
    assert!(p[0] > 0.0 && p.windows(2).all(|w| w[0] <= w[1]), "{r}");
}

#[test]
fn coord_bench_counts_what_the_server_holds() {
    let node = CoordNode::start();
    let common = ["--clients", "2", "--size", "32", "--duration-s", "1"];

    // Sets: each success bumps its client's znode version by one (they start at 0).
    let r = coord_bench(&node.native, &[&["--op", "set"][..], &common].concat());
    let ctx = format!("report {r}\ncoord log:\n{}", node.log());
    assert_eq!(r["errors"], 0, "{ctx}");
    assert!(r.get("write_gap_after_kill_ms").is_none(), "{ctx}");
    assert_percentiles(&r);
    let sets = r["ops"].as_u64().expect("ops");
    assert!(sets > 0, "{ctx}");
    let versions: u64 = (0..2)
        .map(|i| {
            let s = stat(&node, &format!("/bench/c{i}"));
            assert_eq!(s["data_length"], 32, "{s}");
            s["version"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(versions, sets, "{ctx}");

    // Sequential creates land next to the clients' znodes.
    let r = coord_bench(&node.native, &[&["--op", "create"][..], &common].concat());
    let ctx = format!("report {r}\ncoord log:\n{}", node.log());
    assert_eq!(r["errors"], 0, "{ctx}");
    assert_percentiles(&r);
    let creates = r["ops"].as_u64().expect("ops");
    assert_eq!(stat(&node, "/bench")["num_children"], 2 + creates, "{ctx}");

    // An unknown op is refused, not run as a set.
    let out = node.native("bench", &["--op", "sett", "--duration-s", "1"]);
    assert!(out.is_err(), "{out:?}");
}

#[test]
fn coord_bench_kills_the_leader_and_writes_resume() {
    let mut e = ensemble();
    let r = coord_bench(
        &e.native.join(","),
        &[
            "--op",
            "set",
            "--clients",
            "2",
            "--size",
            "64",
            "--duration-s",
            "4",
            "--kill-leader-at-s",
            "1",
        ],
    );
    let pid = r["killed_leader"]["pid"]
        .as_u64()
        .unwrap_or_else(|| panic!("no leader killed: {r}")) as u32;
    let killed = e
        .children
        .iter_mut()
        .position(|c| c.id() == pid)
        .unwrap_or_else(|| panic!("killed pid {pid} is not one of the nodes: {r}"));
    let status = e.children[killed].wait().expect("wait");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "{r}"
    );
    assert!(r["write_gap_after_kill_ms"].as_f64().unwrap() > 0.0, "{r}");
    assert!(r["writes_after_kill"].as_u64().unwrap() > 0, "{r}");
    assert_percentiles(&r);
}
