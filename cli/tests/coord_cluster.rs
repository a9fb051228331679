//! Coordinator ensembles as real `weir coord` processes on loopback: kill -9 of the leader under
//! write load, restart and catch-up, a stopped (isolated) leader that must refuse writes, and
//! ephemeral nodes of a dead CLI session vanishing with a watcher told.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::FutureExt;

use coord::client::{request_once, Client, ClientConfig, ClientError};
use coord::proto::{CreateMode, NodeStatus, Op, Request, Response, ZkError};

mod support;
use support::free_port;

struct Cluster {
    dir: tempfile::TempDir,
    addrs: Vec<String>,
    procs: Vec<Option<Child>>,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let addrs: Vec<String> = (0..n)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let mut c = Cluster {
            dir,
            addrs,
            procs: (0..n).map(|_| None).collect(),
        };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    fn peers(&self) -> String {
        self.addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn spawn(&mut self, i: usize) {
        let data = self.dir.path().join(format!("n{}", i + 1));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("n{}.log", i + 1)))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["coord", "--id", &(i + 1).to_string(), "--data-dir"])
            .arg(&data)
            .args(["--listen", &self.addrs[i], "--peers", &self.peers()])
            .arg("--no-zk")
            .args(["--cores", &(i % 2).to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs[i] = Some(child);
    }

    fn kill9(&mut self, i: usize) {
        if let Some(mut c) = self.procs[i].take() {
            c.kill().unwrap(); // SIGKILL
            c.wait().unwrap();
        }
    }

    fn signal(&self, i: usize, sig: i32) {
        let pid = self.procs[i].as_ref().unwrap().id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn servers(&self) -> String {
        self.addrs.join(",")
    }

    /// SIGSTOP to node `stopped` (it is isolated, not dead); the other nodes and their
    /// comma-joined addresses (a client's servers that leave it out).
    fn stop(&self, stopped: usize) -> (Vec<usize>, String) {
        self.signal(stopped, libc::SIGSTOP);
        let live: Vec<usize> = (0..self.addrs.len()).filter(|i| *i != stopped).collect();
        let servers = live
            .iter()
            .map(|i| self.addrs[*i].clone())
            .collect::<Vec<_>>()
            .join(",");
        (live, servers)
    }

    fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            if let Some(c) = self.procs[i].as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn block_on<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1024 * 1024)
        .make()
        .unwrap()
        .run(f)
}

async fn status(addr: &str) -> Option<NodeStatus> {
    match request_once(addr, Request::Status, Duration::from_millis(300)).await {
        Ok(Response::Status(s)) => Some(s),
        _ => None,
    }
}

/// Waits for a leader that all `live` nodes agree on; returns its index.
async fn wait_leader(addrs: &[String], live: &[usize]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut leaders = Vec::new();
        for &i in live {
            if let Some(s) = status(&addrs[i]).await {
                leaders.push((s.leader, s.is_leader, i));
            }
        }
        if leaders.len() == live.len() {
            let l = leaders[0].0;
            if l != 0 && leaders.iter().all(|x| x.0 == l) {
                if let Some(x) = leaders.iter().find(|x| x.1) {
                    return x.2;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader among {live:?}: {leaders:?}"
        );
        glommio::timer::sleep(Duration::from_millis(50)).await;
    }
}

fn client_cfg(servers: &str, session_ms: u64) -> ClientConfig {
    let mut c = ClientConfig::new(servers.split(',').map(String::from).collect());
    c.session_timeout_ms = session_ms;
    c.request_timeout_ms = 8_000;
    c
}

#[test]
fn coord_leader_kill9_under_load_loses_no_acked_write_and_restart_catches_up() {
    leader_kill9_scenario(3);
}

#[test]
fn coord_five_nodes_leader_kill9_under_load_loses_no_acked_write_and_restart_catches_up() {
    leader_kill9_scenario(5);
}

fn leader_kill9_scenario(n: usize) {
    let all: Vec<usize> = (0..n).collect();
    let mut cl = Cluster::start(n);
    let addrs = cl.addrs.clone();
    let servers = cl.servers();
    let leader = block_on({
        let (addrs, all) = (addrs.clone(), all.clone());
        async move { wait_leader(&addrs, &all).await }
    });

    // Writers run on a thread of their own while this thread kills the leader.
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn({
        let servers = servers.clone();
        move || {
            block_on(async move {
                let c = Client::connect(client_cfg(&servers, 0)).await.unwrap();
                c.create("/w", b"", CreateMode::Persistent).await.unwrap();
                let acked = Rc::new(std::cell::RefCell::new(Vec::<(String, Instant)>::new()));
                let end = Rc::new(std::cell::Cell::new(None::<Instant>));
                let mut tasks = Vec::new();
                for t in 0..8 {
                    let (acked, end) = (acked.clone(), end.clone());
                    let c = Client::connect(client_cfg(&servers, 0)).await.unwrap();
                    tasks.push(glommio::spawn_local(async move {
                        let mut i = 0;
                        loop {
                            if end.get().is_some_and(|e| Instant::now() > e) {
                                break;
                            }
                            let path = format!("/w/t{t}-{i}");
                            i += 1;
                            match c.create(&path, b"v", CreateMode::Persistent).await {
                                Ok(_) => acked.borrow_mut().push((path, Instant::now())),
                                Err(ClientError::Zk(ZkError::ConnectionLoss)) => {}
                                Err(e) => panic!("write {path}: {e}"),
                            }
                        }
                    }));
                }
                // Signal the killer after a second of load, keep writing 3 s past the kill.
                glommio::timer::sleep(Duration::from_secs(1)).await;
                kill_tx.send(()).unwrap();
                let killed_at = Instant::now();
                end.set(Some(killed_at + Duration::from_secs(3)));
                for t in tasks {
                    t.await;
                }
                let acked = acked.borrow().clone();
                (acked, killed_at)
            })
        }
    });
    kill_rx.recv().unwrap();
    cl.kill9(leader);
    let (acked, killed_at) = writer.join().unwrap();
    let after: Vec<_> = acked.iter().filter(|(_, t)| *t > killed_at).collect();
    assert!(acked.len() > 100, "too few writes: {}", acked.len());
    assert!(
        after.len() > 20,
        "writes did not resume after the kill: {}",
        after.len()
    );
    let first_after = after.iter().map(|(_, t)| *t).min().unwrap();
    eprintln!(
        "acked {} writes, {} after the kill; first resumed write {:?} after kill",
        acked.len(),
        after.len(),
        first_after - killed_at
    );

    let live: Vec<usize> = (0..n).filter(|i| *i != leader).collect();
    let acked_paths: Vec<String> = acked.iter().map(|(p, _)| p.clone()).collect();
    let new_leader = block_on({
        let (addrs, servers, live, paths) = (
            addrs.clone(),
            servers.clone(),
            live.clone(),
            acked_paths.clone(),
        );
        async move {
            let l = wait_leader(&addrs, &live).await;
            let c = Client::connect(client_cfg(&servers, 0)).await.unwrap();
            let present: std::collections::HashSet<String> =
                c.children("/w").await.unwrap().into_iter().collect();
            for p in &paths {
                let name = p.trim_start_matches("/w/");
                assert!(present.contains(name), "acknowledged write {p} was lost");
            }
            l
        }
    });
    assert_ne!(new_leader, leader);

    // Restart the killed node: it recovers from its disk and catches up.
    cl.spawn(leader);
    block_on({
        let addrs = addrs.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let l = status(&addrs[new_leader]).await;
                let r = status(&addrs[leader]).await;
                if let (Some(l), Some(r)) = (l, r) {
                    if r.applied >= l.commit && r.znodes == l.znodes && r.leader == l.id {
                        break;
                    }
                }
                assert!(Instant::now() < deadline, "restarted node did not catch up");
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    assert!(cl
        .data_dir()
        .join(format!("n{}", leader + 1))
        .join("snap")
        .exists());
}

#[test]
fn coord_stopped_leader_is_replaced_and_refuses_writes_when_it_wakes() {
    let cl = Cluster::start(3);
    let addrs = cl.addrs.clone();
    let leader = block_on({
        let addrs = addrs.clone();
        async move { wait_leader(&addrs, &[0, 1, 2]).await }
    });
    block_on({
        let servers = cl.servers();
        async move {
            let c = Client::connect(client_cfg(&servers, 0)).await.unwrap();
            c.create("/k", b"0", CreateMode::Persistent).await.unwrap();
        }
    });
    // Isolate the leader by stopping it.
    let (live, majority) = cl.stop(leader);
    block_on({
        let (addrs, live) = (addrs.clone(), live.clone());
        async move {
            let l = wait_leader(&addrs, &live).await;
            assert_ne!(l, leader);
            // The majority keeps accepting writes.
            let c = Client::connect(client_cfg(&majority, 0)).await.unwrap();
            for i in 0..20 {
                c.set("/k", format!("{i}").as_bytes(), -1).await.unwrap();
            }
        }
    });
    // Wake the old leader and write to it straight away: it must never acknowledge.
    cl.signal(leader, libc::SIGCONT);
    block_on({
        let (addrs, servers) = (addrs.clone(), cl.servers());
        async move {
            let stale = request_once(
                &addrs[leader],
                Request::Write(Op::Create {
                    path: "/stale".into(),
                    data: vec![],
                    mode: CreateMode::Persistent,
                }),
                Duration::from_secs(5),
            )
            .await;
            assert!(
                matches!(stale, Err(ClientError::Zk(ZkError::NotLeader { .. }))),
                "old leader answered {stale:?}"
            );
            let c = Client::connect(client_cfg(&servers, 0)).await.unwrap();
            assert_eq!(c.exists("/stale").await.unwrap(), None);
            assert_eq!(c.get("/k").await.unwrap().0, b"19");
        }
    });
}

/// Waits for a child, killing it (and failing) if it outlives `limit`.
fn output_within(mut c: Child, limit: Duration) -> std::process::Output {
    let deadline = Instant::now() + limit;
    while c.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("{c:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    c.wait_with_output().unwrap()
}

fn weir() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weir"))
}

#[test]
fn coord_cli_ephemeral_of_dead_session_vanishes_and_watcher_is_told() {
    let cl = Cluster::start(3);
    let addrs = cl.addrs.clone();
    block_on(async move { wait_leader(&addrs, &[0, 1, 2]).await });
    let s = cl.servers();
    let out = weir()
        .args(["coord", "create", "--server", &s, "/svc", "x"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Two sequential ephemerals from two CLI processes: unique, increasing names.
    let mut names = Vec::new();
    for _ in 0..2 {
        let out = weir()
            .args([
                "coord",
                "create",
                "--server",
                &s,
                "-e",
                "-s",
                "--session-ms",
                "3000",
            ])
            .args(["/svc/m-", "addr"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        names.push(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    assert!(names[0] < names[1], "{names:?}");
    let watches: Vec<_> = names
        .iter()
        .map(|n| {
            weir()
                .args(["coord", "watch", "--server", &s, "--count", "1", n])
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (w, n) in watches.into_iter().zip(&names) {
        let out = output_within(w, Duration::from_secs(30));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success());
        assert!(text.contains(&format!("NodeDeleted {n}")), "{text}");
    }
    let out = weir()
        .args(["coord", "ls", "--server", &s, "/svc"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "");
    let out = weir()
        .args(["coord", "get", "--server", &s, "/svc"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "x");
    // CAS with a stale version fails from the CLI too.
    let ok = weir()
        .args([
            "coord",
            "set",
            "--server",
            &s,
            "/svc",
            "y",
            "--version",
            "0",
        ])
        .output()
        .unwrap();
    assert!(ok.status.success());
    let stale = weir()
        .args([
            "coord",
            "set",
            "--server",
            &s,
            "/svc",
            "z",
            "--version",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!stale.status.success());
}

#[test]
fn coord_membership_add_remove_and_leader_transfer() {
    let cl = Cluster::start(3);
    let addrs = cl.addrs.clone();
    let s = cl.servers();
    let leader = block_on({
        let addrs = addrs.clone();
        async move { wait_leader(&addrs, &[0, 1, 2]).await }
    });
    for i in 0..50 {
        let out = weir()
            .args(["coord", "create", "--server", &s, &format!("/m{i}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    // Leader transfer to a chosen follower.
    let target = (leader + 1) % 3;
    let out = weir()
        .args(["coord", "transfer-leader", "--server", &s, "--id"])
        .arg((target + 1).to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let new = block_on({
        let addrs = addrs.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let l = wait_leader(&addrs, &[0, 1, 2]).await;
                if l == target || Instant::now() > deadline {
                    return l;
                }
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    assert_eq!(
        new,
        target,
        "leadership did not move to node {}",
        target + 1
    );

    // A fourth node joins empty, is added, and catches up from the leader.
    let addr4 = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(cl.data_dir().join("n4.log")).unwrap();
    let mut n4 = weir()
        .args(["coord", "--id", "4", "--join", "--data-dir"])
        .arg(cl.data_dir().join("n4"))
        .args(["--listen", &addr4, "--no-zk"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let out = weir()
        .args([
            "coord", "add-node", "--server", &s, "--id", "4", "--addr", &addr4,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let ok = block_on({
        let (addrs, addr4) = (addrs.clone(), addr4.clone());
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let l = status(&addrs[target]).await;
                let r = status(&addr4).await;
                if let (Some(l), Some(r)) = (l, r) {
                    if r.znodes == l.znodes && r.members.len() == 4 && r.leader == l.id {
                        return true;
                    }
                }
                if Instant::now() > deadline {
                    return false;
                }
                glommio::timer::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    // Remove the new node again; the three keep serving writes.
    let out = weir()
        .args(["coord", "remove-node", "--server", &s, "--id", "4"])
        .output()
        .unwrap();
    let _ = n4.kill();
    let _ = n4.wait();
    assert!(ok, "joined node did not catch up");
    assert!(out.status.success(), "{out:?}");
    let st = block_on({
        let addrs = addrs.clone();
        async move { status(&addrs[target]).await.unwrap() }
    });
    assert_eq!(st.members.len(), 3);
    let out = weir()
        .args(["coord", "create", "--server", &s, "/after-removal"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn coord_session_ephemeral_and_watch_survive_a_stopped_leader() {
    let cl = Cluster::start(3);
    let addrs = cl.addrs.clone();
    let leader = block_on({
        let addrs = addrs.clone();
        async move { wait_leader(&addrs, &[0, 1, 2]).await }
    });
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn({
        let servers = cl.servers();
        move || {
            block_on(async move {
                let c = Client::connect(client_cfg(&servers, 6_000)).await.unwrap();
                let sid = c.session_id();
                c.create("/k", b"0", CreateMode::Persistent).await.unwrap();
                c.create("/eph", b"", CreateMode::Ephemeral).await.unwrap();
                let (_, _, w) = c.get_watch("/k").await.unwrap();
                ready_tx.send(()).unwrap();
                // The leader this client talks to is stopped now; the change happens on the
                // new leader. The watch must still fire (re-armed after the reconnect).
                let ev = async { w.wait().await }
                    .or(async {
                        glommio::timer::sleep(Duration::from_secs(20)).await;
                        None
                    })
                    .await;
                let ev = ev.expect("watch never fired across the failover");
                assert_eq!(ev.path, "/k");
                // Same session, its ephemeral still there, and it can write again.
                assert_eq!(c.session_id(), sid);
                assert!(!c.is_expired());
                let st = c.exists("/eph").await.unwrap().expect("ephemeral lost");
                assert_eq!(st.ephemeral_owner, sid);
                c.create("/after", b"", CreateMode::Ephemeral)
                    .await
                    .unwrap();
            })
        }
    });
    ready_rx.recv().unwrap();
    let (live, majority) = cl.stop(leader);
    block_on({
        let addrs = addrs.clone();
        async move {
            wait_leader(&addrs, &live).await;
            let c = Client::connect(client_cfg(&majority, 0)).await.unwrap();
            c.set("/k", b"changed", -1).await.unwrap();
        }
    });
    let r = holder.join();
    cl.signal(leader, libc::SIGCONT);
    r.unwrap();
}
