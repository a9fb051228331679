//! weir's ZooKeeper frontend driven by a real ZooKeeper client: kazoo (PyPI, pinned by
//! scripts/test) against a 3-node `weir coord` ensemble on loopback. The Python scripts in
//! `tests/clients/zk_*.py` assert ZooKeeper's semantics and exit non-zero on any violation.
//! One test speaks jute byte by byte (`raw`) to see exactly what the server sends and when it
//! closes a connection (writes of unknown outcome after a leader's kill -9).

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

/// The tests of this file run one at a time: each starts a 3-node ensemble and Python clients,
/// and six of them at once on two cores starve kazoo's sessions (a hang seen in CI).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
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

/// The byte-level side of one ZooKeeper connection (jute frames over plain TCP), for the test
/// that must see exactly what the server sends and when it closes.
mod raw {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use coord::zk::jute::{
        Acl, ConnectRequest, ConnectResponse, CreateRequest, Id, Jute, PathWatchRequest,
        ReplyHeader, Request,
    };

    pub fn send(s: &mut TcpStream, body: &[u8]) {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        s.write_all(&f).expect("send");
    }

    /// One frame's body, or None once the server closed the connection.
    pub fn recv(s: &mut TcpStream) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).ok()?;
        let mut b = vec![0u8; usize::try_from(i32::from_be_bytes(len)).ok()?];
        s.read_exact(&mut b).ok()?;
        Some(b)
    }

    pub fn connect(addr: &str, session: i64, passwd: Vec<u8>) -> (TcpStream, ConnectResponse) {
        try_connect(addr, session, passwd).expect("connect response")
    }

    /// A handshake, or None if the server closed the connection without answering (it does
    /// while it knows no leader, or when the attach's outcome is unknown: clients try again).
    pub fn try_connect(
        addr: &str,
        session: i64,
        passwd: Vec<u8>,
    ) -> Option<(TcpStream, ConnectResponse)> {
        let mut s = TcpStream::connect(addr).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(15)))
            .expect("timeout");
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 8_000,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        send(&mut s, &req.to_bytes());
        let resp = recv(&mut s)?;
        Some((
            s,
            ConnectResponse::from_bytes(&resp).expect("ConnectResponse"),
        ))
    }

    pub fn request(xid: i32, req: &Request) -> Vec<u8> {
        let mut b = Vec::new();
        req.write(xid, &mut b);
        b
    }

    pub fn create(path: &str, flags: i32) -> Request {
        Request::Create(CreateRequest {
            path: path.into(),
            data: b"x".to_vec(),
            acl: vec![Acl {
                perms: 31,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags,
        })
    }

    pub fn exists(path: &str) -> Request {
        Request::Exists(PathWatchRequest {
            path: path.into(),
            watch: false,
        })
    }

    pub fn header(body: &[u8]) -> ReplyHeader {
        ReplyHeader::from_bytes(body).expect("reply header")
    }
}

/// A ZooKeeper server never answers CONNECTIONLOSS: writes in flight when their leader is
/// killed with -9 (forwarded by a follower) end with the connection closed, never with a -4
/// reply, and the session lives on: it re-attaches on the third node and still owns its
/// ephemeral node. (The close may also come from the follower losing its leader;
/// coord/tests/zk_failover.rs slows elections down to pin the frontend's own close.)
#[test]
fn writes_with_an_unknown_outcome_close_the_connection_and_the_session_lives() {
    let _serial = serial();
    use coord::zk::jute::Jute;
    use coord::zk::jute::Stat;
    let mut e = Ensemble::start();
    let leader = e.leader();
    let follower = (leader + 1) % 3;
    let third = (leader + 2) % 3;
    let (mut s, conn) = raw::connect(&e.zk[follower], 0, vec![0; 16]);
    assert!(conn.timeout_ms > 0, "no session");
    raw::send(&mut s, &raw::request(1, &raw::create("/eph", 1)));
    let first = raw::recv(&mut s).expect("create reply");
    assert_eq!(raw::header(&first).err, 0, "ephemeral create failed");

    const WRITES: i32 = 400;
    let mut pipelined = Vec::new();
    for xid in 10..10 + WRITES {
        pipelined.extend_from_slice(&{
            let body = raw::request(xid, &raw::create(&format!("/w{xid}"), 0));
            let mut f = (body.len() as i32).to_be_bytes().to_vec();
            f.extend_from_slice(&body);
            f
        });
    }
    std::io::Write::write_all(&mut s, &pipelined).expect("pipelined writes");
    let mut victim = e.procs[leader].take().expect("leader running");
    victim.kill().expect("kill -9 the leader");
    victim.wait().expect("reaped");
    let mut xids = Vec::new();
    while let Some(body) = raw::recv(&mut s) {
        let h = raw::header(&body);
        if h.xid == -1 || h.xid == -2 {
            continue; // a watch event or a ping reply
        }
        assert_ne!(h.err, -4, "CONNECTIONLOSS put in a reply for xid {}", h.xid);
        xids.push(h.xid);
    }
    // Closed by the server, not timed out.
    let closed = std::io::Read::read(&mut s, &mut [0u8; 1]);
    assert!(
        matches!(&closed, Ok(0))
            || closed
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "the connection was not closed: {closed:?}"
    );
    assert!(
        xids.len() < WRITES as usize,
        "every write was answered although the leader was frozen: {xids:?}\n{}",
        e.logs()
    );
    assert!(
        xids.windows(2).all(|w| w[0] < w[1]),
        "replies out of order: {xids:?}"
    );
    eprintln!(
        "{} of {WRITES} pipelined writes answered before the close",
        xids.len()
    );

    // The session moves to the third node with its password (retried, as a client does, while
    // the survivors elect a leader) and still owns /eph.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut s3, again) = loop {
        if let Some(c) = raw::try_connect(&e.zk[third], conn.session_id, conn.passwd.clone()) {
            break c;
        }
        assert!(Instant::now() < deadline, "no re-attach: {}", e.logs());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(again.session_id, conn.session_id, "session not re-attached");
    assert!(again.timeout_ms > 0, "session expired");
    raw::send(&mut s3, &raw::request(2, &raw::exists("/eph")));
    let body = raw::recv(&mut s3).expect("exists reply");
    assert_eq!(raw::header(&body).err, 0, "/eph is gone");
    let stat = Stat::from_bytes(&body[16..]).expect("stat");
    assert_eq!(stat.ephemeral_owner, conn.session_id);
}

/// ZooKeeper's four-letter words on every node, as monitoring scripts send them (four bytes on a
/// fresh connection, the answer, then the server closes): exactly one node says it leads, `mntr`
/// is `zk_key<TAB>value` lines, a word outside the five served gets ZooKeeper's whitelist
/// answer, and kazoo's own `command()` reads the same answers.
#[test]
fn four_letter_words_answer_like_zookeeper() {
    let _serial = serial();
    use std::io::{Read, Write};
    let e = Ensemble::start();
    let word = |addr: &str, w: &[u8; 4]| -> String {
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(w).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out)
            .expect("answer until the server closes");
        out
    };
    let mut modes = Vec::new();
    for addr in &e.zk {
        assert_eq!(word(addr, b"ruok"), "imok");
        assert_eq!(word(addr, b"isro"), "rw");
        let srvr = word(addr, b"srvr");
        assert!(srvr.starts_with("Zookeeper version: weir-"), "{srvr}");
        let mode = srvr
            .lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .unwrap_or_else(|| panic!("no mode: {srvr}"))
            .to_string();
        assert!(srvr.lines().any(|l| l.starts_with("Zxid: 0x")), "{srvr}");
        let mntr = word(addr, b"mntr");
        assert!(
            mntr.lines()
                .all(|l| l.starts_with("zk_") && l.split('\t').count() == 2),
            "{mntr}"
        );
        assert!(
            mntr.contains(&format!("zk_server_state\t{mode}\n")),
            "{mntr}"
        );
        assert_eq!(
            word(addr, b"dump"),
            "dump is not executed because it is not in the whitelist.\n"
        );
        modes.push(mode);
    }
    modes.sort();
    assert_eq!(modes, ["follower", "follower", "leader"]);
    let out = kazoo(
        &e,
        "zk_basic.py",
        &["four", &e.zk[0]],
        Duration::from_secs(30),
    );
    assert!(out.contains("== ruok\nimok"), "{out}");
    assert!(out.contains("Mode: "), "{out}");
    assert!(out.contains("zk_znode_count\t"), "{out}");
}
