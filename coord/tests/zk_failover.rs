//! A write of unknown outcome on a ZooKeeper connection to a follower, over real loopback TCP
//! to a 3-node embedded ensemble: reads and writes are pipelined on the follower while the
//! leader dies under them (every connection to it ends at once, as when its process is killed,
//! and it stops). Like a ZooKeeper server, the follower must close the connection rather than
//! answer CONNECTIONLOSS: the replies it sent before are whole and in request order, none
//! carries an error, and the session outlives the connection (it re-attaches on another node
//! once a new leader exists, its ephemeral node still there).

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coord::client::request_once;
use coord::proto::{NodeStatus, Request as NativeRequest, Response as NativeResponse};
use coord::server::{start_embedded_with, Embedded, ServerConfig};
use coord::zk::jute::{
    self, op, Code, CreateResponse, Jute, PathWatchRequest, ReplyHeader, Request, Response,
};

mod common;
use common::zk::{call, create, create_mode, handshake, recv_frame};

/// How far the pipelining writer may run ahead of the replies.
const AHEAD_MAX: usize = 1_000;
/// Replies to see before the leader is stopped (so that the pipeline is running).
const REPLIES_BEFORE_STOP: usize = 300;
/// Election timeout in ticks of 25 ms: 4 s (randomized up to 8 s). A follower that forgets its
/// leader drops its ZooKeeper connections too; the timeout is long so that only the write of
/// unknown outcome can close the connection within `CLOSE_WAIT`.
const ELECTION_TICKS: usize = 160;
/// How long the client waits for the follower to close after the last reply.
const CLOSE_WAIT: Duration = Duration::from_secs(3);

/// A TCP relay in front of a node's native port. Every connection to the node (Raft peers,
/// writes forwarded by followers) goes through it, so that `cut` ends them all at once, as the
/// node's death would; connections made after the cut are closed on arrival.
struct Relay {
    addr: String,
    /// Both ends of every relayed connection; None once cut.
    conns: Arc<Mutex<Option<Vec<TcpStream>>>>,
}

impl Relay {
    fn start(target: String) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let conns = Arc::new(Mutex::new(Some(Vec::new())));
        let all = conns.clone();
        std::thread::spawn(move || {
            for inbound in l.incoming() {
                let Ok(inbound) = inbound else { continue };
                let Ok(outbound) = TcpStream::connect(&target) else {
                    continue;
                };
                let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
                match all.lock().unwrap().as_mut() {
                    Some(v) => {
                        v.push(inbound.try_clone().unwrap());
                        v.push(outbound.try_clone().unwrap());
                    }
                    None => continue,
                }
                let pairs = [
                    (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                    (outbound, inbound),
                ];
                for (mut from, mut to) in pairs {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { addr, conns }
    }

    fn cut(&self) {
        for s in self.conns.lock().unwrap().take().into_iter().flatten() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

struct Ensemble {
    _dir: tempfile::TempDir,
    nodes: Vec<Option<Embedded>>,
    relays: Vec<Relay>,
    /// Native addresses (the relays').
    addrs: Vec<String>,
    zk: Vec<String>,
}

/// Three nodes with ZooKeeper ports, each reached by its peers through a relay; `tickTime` 1 s
/// (session timeouts of 2–20 s).
fn ensemble() -> Ensemble {
    let dir = tempfile::tempdir().unwrap();
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let listen: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect();
    drop(listeners);
    let relays: Vec<Relay> = listen.iter().map(|a| Relay::start(a.clone())).collect();
    let addrs: Vec<String> = relays.iter().map(|r| r.addr.clone()).collect();
    let peers: BTreeMap<u64, String> = (1..=3).zip(addrs.iter().cloned()).collect();
    let mut nodes = Vec::new();
    let mut zk = Vec::new();
    for (i, addr) in listen.iter().enumerate() {
        let mut cfg =
            ServerConfig::new(i as u64 + 1, dir.path().join(format!("n{i}")), addr.clone());
        cfg.peers = peers.clone();
        cfg.zk_listen = Some("127.0.0.1:0".into());
        cfg.zk_tick_ms = 1_000;
        cfg.election_tick = ELECTION_TICKS;
        let n = start_embedded_with(cfg).unwrap();
        zk.push(n.zk_addr.expect("zk address").to_string());
        nodes.push(Some(n));
    }
    Ensemble {
        _dir: dir,
        nodes,
        relays,
        addrs,
        zk,
    }
}

fn block_on<T: 'static>(f: impl std::future::Future<Output = T> + 'static) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1024 * 1024)
        .make()
        .unwrap()
        .run(f)
}

/// The index of the leader all `live` nodes agree on.
fn wait_leader(addrs: &[String], live: &[usize]) -> usize {
    let addrs = addrs.to_vec();
    let live = live.to_vec();
    block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let mut seen: Vec<(usize, NodeStatus)> = Vec::new();
            for &i in &live {
                let r = request_once(&addrs[i], NativeRequest::Status, Duration::from_millis(300))
                    .await;
                if let Ok(NativeResponse::Status(s)) = r {
                    seen.push((i, s));
                }
            }
            if seen.len() == live.len() {
                let l = seen[0].1.leader;
                if l != 0 && seen.iter().all(|(_, s)| s.leader == l) {
                    if let Some((i, _)) = seen.iter().find(|(_, s)| s.is_leader) {
                        return *i;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader among {live:?}");
            glommio::timer::sleep(Duration::from_millis(50)).await;
        }
    })
}

fn get_data(path: &str) -> Request {
    Request::GetData(PathWatchRequest {
        path: path.into(),
        watch: false,
    })
}

/// What the pipelining writer sent: (xid, opcode, index of the znode /w/<i>), in order.
type Sent = Vec<(i32, i32, usize)>;

/// Pipelines `create /w/i` (and `getData /w/i` after every fourth) on `s` until `closed` (or a
/// write fails), at most `AHEAD_MAX` requests ahead of `replies`.
fn pipeline(mut s: TcpStream, closed: Arc<AtomicBool>, replies: Arc<AtomicUsize>) -> Sent {
    let mut sent = Sent::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 0usize;
    while !closed.load(Ordering::SeqCst) && Instant::now() < deadline {
        if sent.len() >= replies.load(Ordering::SeqCst) + AHEAD_MAX {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let mut b = Vec::new();
        for _ in 0..32 {
            // Runs of four writes (in flight together) then a read that must see the last.
            let path = format!("/w/{i}");
            let mut reqs = vec![(op::CREATE, create(&path, vec![i as u8; 3]))];
            if i % 4 == 3 {
                reqs.push((op::GET_DATA, get_data(&path)));
            }
            for (op, req) in reqs {
                let xid = 10 + sent.len() as i32;
                let mark = jute::begin_frame(&mut b);
                req.write(xid, &mut b);
                jute::end_frame(&mut b, mark);
                sent.push((xid, op, i));
            }
            i += 1;
        }
        if s.write_all(&b).is_err() {
            break;
        }
    }
    sent
}

/// Checks one pipelined reply against the request it answers.
fn check_reply(body: &[u8], (xid, opcode, i): (i32, i32, usize), k: usize) -> i64 {
    let h = ReplyHeader::from_bytes(body).unwrap();
    assert_ne!(
        h.err,
        Code::ConnectionLoss.as_i32(),
        "reply {k} (xid {}) carries CONNECTIONLOSS: the connection should have been closed",
        h.xid
    );
    assert_eq!((h.xid, h.err), (xid, 0), "reply {k} out of order or failed");
    let mut r = jute::Reader::new(&body[16..]);
    match Response::read_body(opcode, &mut r).unwrap() {
        Response::Create(CreateResponse { path }) => assert_eq!(path, format!("/w/{i}")),
        Response::GetData(d) => assert_eq!(d.data, vec![i as u8; 3], "getData /w/{i}"),
        other => panic!("reply {k}: {other:?}"),
    }
    assert!(r.is_empty(), "reply {k} has trailing bytes");
    h.zxid
}

#[test]
fn write_of_unknown_outcome_closes_the_follower_connection_and_the_session_survives() {
    let mut e = ensemble();
    let all = [0, 1, 2];
    let leader = wait_leader(&e.addrs, &all);
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;

    let (mut s, r) = handshake(&e.zk[follower], 10_000, 0, vec![0; 16]);
    assert!(r.timeout_ms > 0, "session refused");
    let (h, _) = call(&mut s, 1, &create("/w", vec![]));
    assert_eq!(h.err, 0);
    let (h, _) = call(&mut s, 2, &create_mode("/eph", b"mine".to_vec(), 1));
    assert_eq!(h.err, 0);

    s.set_read_timeout(Some(CLOSE_WAIT)).unwrap();
    let closed = Arc::new(AtomicBool::new(false));
    let replies = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (s, closed, replies) = (s.try_clone().unwrap(), closed.clone(), replies.clone());
        std::thread::spawn(move || pipeline(s, closed, replies))
    };
    let reader = {
        let (closed, replies) = (closed.clone(), replies.clone());
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let end = loop {
                match recv_frame(&mut s) {
                    Ok(Some(b)) => {
                        got.push(b);
                        replies.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            closed.store(true, Ordering::SeqCst);
            (got, end)
        })
    };

    let deadline = Instant::now() + Duration::from_secs(10);
    while replies.load(Ordering::SeqCst) < REPLIES_BEFORE_STOP {
        assert!(Instant::now() < deadline, "the pipeline does not run");
        assert!(
            !closed.load(Ordering::SeqCst),
            "closed before the leader stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Writes are in flight to the leader through the follower: the leader dies under them.
    e.relays[leader].cut();
    e.nodes[leader].take().unwrap().stop();

    let (got, end) = reader.join().unwrap();
    let sent = writer.join().unwrap();
    let mut last_zxid = 0;
    for (k, body) in got.iter().enumerate() {
        let zxid = check_reply(body, sent[k], k);
        assert!(zxid >= last_zxid, "reply {k}: zxid went backwards");
        last_zxid = zxid;
    }
    assert!(
        end.is_ok(),
        "the follower did not close the connection: {end:?} after {} replies",
        got.len()
    );
    assert!(got.len() >= REPLIES_BEFORE_STOP);
    assert!(
        got.len() < sent.len(),
        "all {} requests answered: no write was cut off",
        sent.len()
    );

    // The session outlives its connection: it re-attaches on the other survivor once the two
    // have a leader, and its ephemeral node is there, as is every create acknowledged.
    wait_leader(&e.addrs, &[follower, other]);
    let (mut s2, again) = handshake(&e.zk[other], 10_000, r.session_id, r.passwd.clone());
    assert_eq!(again.session_id, r.session_id);
    assert!(
        again.timeout_ms > 0,
        "the session did not survive the leader"
    );
    let (h, body) = call(&mut s2, 1, &get_data("/eph"));
    assert_eq!(h.err, 0, "ephemeral of the surviving session is gone");
    match Response::read_body(op::GET_DATA, &mut jute::Reader::new(&body)).unwrap() {
        Response::GetData(d) => {
            assert_eq!(d.data, b"mine");
            assert_eq!(d.stat.ephemeral_owner, r.session_id);
        }
        other => panic!("{other:?}"),
    }
    let acked = sent[..got.len()]
        .iter()
        .filter(|(_, o, _)| *o == op::CREATE)
        .map(|(_, _, i)| *i)
        .max()
        .expect("a create was acknowledged");
    let (h, _) = call(&mut s2, 2, &get_data(&format!("/w/{acked}")));
    assert_eq!(h.err, 0, "acknowledged create /w/{acked} lost");
}
