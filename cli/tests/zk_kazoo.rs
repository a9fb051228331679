//! weir's ZooKeeper frontend driven by a real ZooKeeper client: kazoo (PyPI, pinned by
//! scripts/test) against a 3-node `weir coord` ensemble on loopback. The Python scripts in
//! `tests/clients/zk_*.py` assert ZooKeeper's semantics and exit non-zero on any violation.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;
use support::{free_port, run, try_run, ServeProcess};

/// A 3-node ensemble of `weir coord` processes, each serving weir's protocol and ZooKeeper's.
struct Ensemble {
    dir: tempfile::TempDir,
    native: Vec<String>,
    zk: Vec<String>,
    procs: Vec<Option<Child>>,
}

impl Ensemble {
    fn start() -> Ensemble {
        let dir = tempfile::tempdir().expect("temp dir");
        let native: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let zk: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let peers = native
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut procs = Vec::new();
        for i in 0..3 {
            let log = std::fs::File::create(dir.path().join(format!("n{}.log", i + 1)))
                .expect("log file");
            let child = Command::new(env!("CARGO_BIN_EXE_weir"))
                .args(["coord", "--id", &(i + 1).to_string(), "--data-dir"])
                .arg(dir.path().join(format!("n{}", i + 1)))
                .args(["--listen", &native[i], "--peers", &peers])
                .args(["--zk-addr", &zk[i], "--zk-tick-ms", "500"])
                .args(["--cores", &(i % 2).to_string()])
                .env("RUST_LOG", "info")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn weir coord");
            procs.push(Some(child));
        }
        let e = Ensemble {
            dir,
            native,
            zk,
            procs,
        };
        e.wait_ready();
        e
    }

    /// Waits until a leader is elected (a ZooKeeper session can be created through node 1).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = try_run(
                Command::new("python3")
                    .arg(script("zk_basic.py"))
                    .args(["ping", &self.hosts()]),
                b"",
                Duration::from_secs(20),
            );
            if out.is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!("ensemble not ready: {out:?}\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Index of the current leader (asks node 1 for its view; retried until one is known).
    fn leader(&self) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = try_run(
                Command::new(env!("CARGO_BIN_EXE_weir")).args([
                    "coord",
                    "status",
                    "--server",
                    &self.native[0],
                ]),
                b"",
                Duration::from_secs(10),
            )
            .unwrap_or_default();
            let id = out
                .split("\"leader\":")
                .nth(1)
                .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|s| s.parse::<usize>().ok())
                .unwrap_or(0);
            if (1..=3).contains(&id) {
                return id - 1;
            }
            assert!(Instant::now() < deadline, "no leader: {out}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn hosts(&self) -> String {
        self.zk.join(",")
    }

    fn pids(&self) -> String {
        self.zk
            .iter()
            .zip(&self.procs)
            .filter_map(|(a, p)| p.as_ref().map(|p| format!("{a}={}", p.id())))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn logs(&self) -> String {
        (1..=3)
            .map(|i| {
                let p = self.dir.path().join(format!("n{i}.log"));
                format!("--- n{i}\n{}", support::read(&p))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for p in self.procs.iter_mut().flatten() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

fn kazoo(e: &Ensemble, name: &str, args: &[&str], limit: Duration) -> String {
    let mut cmd = Command::new("python3");
    cmd.arg(script(name)).args(args);
    match try_run(&mut cmd, b"", limit) {
        Ok(out) => out,
        Err(err) => panic!("{err}\n{}", e.logs()),
    }
}

/// CRUD with versions and error codes, ephemeral and sequential nodes, one-shot watches,
/// persistent and recursive watches, ACLs, transactions, containers, TTL nodes and ephemeral
/// cleanup after expiry — once through each node (leader and followers alike).
#[test]
fn kazoo_data_model_watches_acls_and_multi_on_every_node() {
    let e = Ensemble::start();
    for (i, host) in e.zk.iter().enumerate() {
        let out = kazoo(
            &e,
            "zk_basic.py",
            &["all", host, &e.hosts(), &format!("/n{i}")],
            Duration::from_secs(90),
        );
        assert!(out.contains("basic: ok"), "node {i}: {out}");
    }
}

/// Lock, Election, Counter and Barrier recipes across separate client processes, each spread
/// over the three nodes.
#[test]
fn kazoo_recipes_across_processes() {
    let e = Ensemble::start();
    let out = kazoo(
        &e,
        "zk_recipes.py",
        &["driver", &e.zk.join(",")],
        Duration::from_secs(110),
    );
    for what in ["lock: ok", "election: ok", "counter: ok", "barrier: ok"] {
        assert!(out.contains(what), "{what} missing:\n{out}");
    }
}

/// kill -9 of the node a client is connected to — a follower in one ensemble, the leader in
/// another: the session, its ephemeral node and its watches survive on another node.
#[test]
fn kazoo_session_survives_kill9_of_its_node() {
    for kill_leader in [false, true] {
        let e = Ensemble::start();
        let leader = e.leader();
        let victim = if kill_leader {
            leader
        } else {
            (leader + 1) % 3
        };
        let out = kazoo(
            &e,
            "zk_failover.py",
            &[&e.hosts(), &e.pids(), &e.zk[victim]],
            Duration::from_secs(90),
        );
        assert!(
            out.contains("failover: ok"),
            "kill leader {kill_leader}: {out}"
        );
    }
}

/// `weir serve --coord-zk-addr`: the broker's embedded coordinator answers ZooKeeper clients,
/// who see the broker's own metadata (`/weir/...`) in the tree.
#[test]
fn weir_serve_embedded_coordinator_serves_zookeeper_clients() {
    let dir = tempfile::tempdir().expect("temp dir");
    let zk = format!("127.0.0.1:{}", free_port());
    let data = dir.path().join("data");
    let broker = ServeProcess::start(
        &dir.path().join("serve.stderr"),
        &[
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--kafka-addr",
            "127.0.0.1:0",
            "--shards",
            "1",
            "--coord-zk-addr",
            &zk,
        ],
    );
    let out = run(
        Command::new("python3")
            .arg(script("zk_basic.py"))
            .args(["ls", &zk, "/weir"]),
        b"",
        Duration::from_secs(30),
    );
    assert!(
        out.lines().any(|l| l == "cluster_id"),
        "{out}\n{}",
        broker.log()
    );
    broker.stop();
}
