//! The coordinator server: drives a `Node` from a glommio executor pinned to one core.
//!
//! Owns: the TCP listener (clients and peers share it; the first frame says which), outbound
//! peer connections, per-connection write queues, the watch table (one-shot data and child
//! watches per connection), the tick timer, and the order persist → send → deliver effects.
//! Must not: decide anything about consensus or the tree (that is `node` and `tree`), or read
//! argv / environment (the CLI builds a `ServerConfig`).
//!
//! Concurrency: one executor, one thread. All tasks share `Core` through `Rc<RefCell<_>>` and
//! never hold the borrow across an `.await`. Tasks that feed the node ring the driver's bell;
//! the driver then runs one Ready round for everything that arrived (natural group commit).
//! Two kinds of work leave the thread: encoding a local snapshot (glommio's blocking pool, one
//! unpinned thread, on an O(1) copy of the tree) and writing its file (`disk`'s writer thread).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::{LocalExecutorBuilder, Placement, PoolPlacement};
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};

use crate::disk::{Disk, DiskError};
use crate::node::{Effect, Node, NodeConfig, NodeError, SnapshotJob, Tag};
pub(crate) use crate::outbox::Outbox;
pub use crate::outbox::CLIENT_OUTBOX_BYTES_MAX;
use crate::proto::{
    decode, encode_frame, ClientFrame, EventKind, Hello, Request, Response, ServerFrame, ZkError,
    CLIENT_FRAME_BYTES_MAX, PEER_FRAME_BYTES_MAX,
};
use crate::store::LogState;
use crate::zk::front::{handle_zk_conn, ZkFront, ZkSettings, ZK_TAG};

/// Configuration of one coordinator node.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub id: u64,
    pub data_dir: PathBuf,
    pub listen: String,
    /// All members of a new cluster (id → address), including this node. Ignored on restart
    /// (membership is replicated). Empty with `join` for a node to be added later.
    pub peers: BTreeMap<u64, String>,
    pub join: bool,
    /// Core to pin the executor to (None: unpinned).
    pub core: Option<usize>,
    pub tick_ms: u64,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    pub snapshot_entries: u64,
    /// Where to serve ZooKeeper's client protocol (None: not served).
    pub zk_listen: Option<String>,
    /// ZooKeeper's `tickTime`: negotiated session timeouts are clamped to 2–20 ticks.
    pub zk_tick_ms: u64,
}

impl ServerConfig {
    pub fn new(id: u64, data_dir: PathBuf, listen: String) -> Self {
        ServerConfig {
            id,
            data_dir,
            listen,
            peers: BTreeMap::new(),
            join: false,
            core: None,
            tick_ms: 25,
            election_tick: 12,
            heartbeat_tick: 2,
            snapshot_entries: 10_000,
            zk_listen: None,
            zk_tick_ms: 2_000,
        }
    }
}

/// Errors that stop a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("{op} {addr}: {source}")]
    Net {
        op: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("executor: {0}")]
    Executor(String),
    #[error("config: {0}")]
    Config(String),
}

/// Memory glommio registers for io_uring buffers: small, so the default 8 MiB memlock suffices.
const IO_MEMORY_BYTES: usize = 1024 * 1024;
/// Outbound bytes buffered for a peer beyond which non-snapshot messages are dropped (Raft
/// retransmits what is lost).
const PEER_BUFFER_BYTES_MAX: usize = 64 * 1024 * 1024;
const PEER_CONNECT_TIMEOUT_MS: u64 = 500;
/// A Ready round (apply, persist, deliver) this long is logged as a warning.
const SLOW_ROUND: Duration = Duration::from_millis(50);
/// How often a snapshot waiting for the previous one's file write looks again.
const SNAPSHOT_WRITER_POLL: Duration = Duration::from_millis(20);

/// The coordinator's executor, pinned to `core` if given. Its blocking pool (snapshot encoding)
/// is one unpinned thread, so that a long encode does not share the Raft core's CPU.
fn executor_builder(core: Option<usize>) -> LocalExecutorBuilder {
    let placement = match core {
        Some(c) => Placement::Fixed(c),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .io_memory(IO_MEMORY_BYTES)
        .name("weir-coord")
        .blocking_thread_pool_placement(PoolPlacement::Unbound(1))
}

/// Runs a node on the calling thread until it fails. Pins to `cfg.core` if given.
pub fn run(cfg: ServerConfig) -> Result<(), ServerError> {
    let handle = executor_builder(cfg.core)
        .spawn(move || async move { serve(cfg, None).await })
        .map_err(|e| ServerError::Executor(e.to_string()))?;
    handle
        .join()
        .map_err(|e| ServerError::Executor(e.to_string()))?
}

/// A single-node coordinator running on its own thread (the broker's embedded mode).
pub struct Embedded {
    pub addr: SocketAddr,
    /// Where the ZooKeeper protocol is served, if `zk_listen` was set.
    pub zk_addr: Option<SocketAddr>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Embedded {
    /// Whether the node's thread has stopped (it only stops on a fatal error or `stop`).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().map_or(true, |t| t.is_finished())
    }

    /// Stops the node and waits for its thread. Everything acknowledged is on disk already.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Starts an embedded single-node coordinator with data in `data_dir`, listening on `listen`
/// (e.g. "127.0.0.1:0"), pinned to `core`. Returns once it accepts connections.
pub fn start_embedded(
    data_dir: PathBuf,
    listen: &str,
    core: Option<usize>,
) -> Result<Embedded, ServerError> {
    let mut cfg = ServerConfig::new(1, data_dir, listen.to_string());
    cfg.core = core;
    start_embedded_with(cfg)
}

/// Starts a node described by `cfg` on its own thread. Returns once it accepts connections.
pub fn start_embedded_with(cfg: ServerConfig) -> Result<Embedded, ServerError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let thread = std::thread::Builder::new()
        .name("weir-coord".into())
        .spawn(move || {
            let tx2 = tx.clone();
            let ex = executor_builder(cfg.core).make();
            match ex {
                Ok(ex) => {
                    if let Err(e) = ex.run(serve(cfg, Some((tx, stop2)))) {
                        let _ = tx2.send(Err(e.to_string()));
                        tracing::error!("embedded coordinator stopped: {e}");
                    }
                }
                Err(e) => {
                    let _ = tx2.send(Err(e.to_string()));
                }
            }
        })
        .map_err(|e| ServerError::Executor(e.to_string()))?;
    match rx.recv() {
        Ok(Ok((addr, zk_addr))) => Ok(Embedded {
            addr,
            zk_addr,
            stop,
            thread: Some(thread),
        }),
        Ok(Err(e)) => Err(ServerError::Executor(e)),
        Err(_) => Err(ServerError::Executor(
            "embedded node died while starting".into(),
        )),
    }
}

/// A write queue with a doorbell, drained by one writer task.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WatchKind {
    Data,
    Child,
}

struct Pending {
    conn: u64,
    xid: u64,
    watch: Option<(WatchKind, String)>,
}

struct Conn {
    outbox: Rc<Outbox>,
    session: u64,
}

pub(crate) struct Core {
    pub(crate) node: Node,
    pub(crate) zk: ZkFront,
    disk: Disk,
    conns: HashMap<u64, Conn>,
    tags: HashMap<Tag, Pending>,
    next_tag: Tag,
    next_conn: u64,
    data_watches: HashMap<String, HashSet<u64>>,
    child_watches: HashMap<String, HashSet<u64>>,
    peers: HashMap<u64, (String, Rc<Outbox>)>,
    bell: LocalSender<()>,
    stop: Arc<AtomicBool>,
    my_addr: String,
    /// Self reference for spawning peer tasks.
    this: std::rc::Weak<RefCell<Core>>,
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

type Started = (
    std::sync::mpsc::Sender<Result<(SocketAddr, Option<SocketAddr>), String>>,
    Arc<AtomicBool>,
);

async fn serve(mut cfg: ServerConfig, started: Option<Started>) -> Result<(), ServerError> {
    let listener = TcpListener::bind(cfg.listen.as_str()).map_err(|e| ServerError::Net {
        op: "bind",
        addr: cfg.listen.clone(),
        source: e.into(),
    })?;
    let local = listener.local_addr().map_err(|e| ServerError::Net {
        op: "local_addr",
        addr: cfg.listen.clone(),
        source: e.into(),
    })?;
    if cfg.peers.is_empty() && !cfg.join {
        // Single node: it is its own only member.
        cfg.peers.insert(cfg.id, local.to_string());
    }
    if !cfg.join && !cfg.peers.contains_key(&cfg.id) {
        return Err(ServerError::Config(format!(
            "--peers does not list this node's id {}",
            cfg.id
        )));
    }
    let zk_listener = match &cfg.zk_listen {
        Some(a) => Some(TcpListener::bind(a.as_str()).map_err(|e| ServerError::Net {
            op: "bind",
            addr: a.clone(),
            source: e.into(),
        })?),
        None => None,
    };
    let zk_local = match &zk_listener {
        Some(l) => Some(l.local_addr().map_err(|e| ServerError::Net {
            op: "local_addr",
            addr: cfg.zk_listen.clone().unwrap_or_default(),
            source: e.into(),
        })?),
        None => None,
    };
    let peers = cfg.peers.clone();
    let fresh = || {
        if cfg.join {
            LogState::default()
        } else {
            Node::bootstrap_state(&peers).unwrap_or_default()
        }
    };
    let (disk, log) = Disk::open(&cfg.data_dir, fresh)?;
    let mut ncfg = NodeConfig::new(cfg.id);
    ncfg.election_tick = cfg.election_tick;
    ncfg.heartbeat_tick = cfg.heartbeat_tick;
    ncfg.snapshot_entries = cfg.snapshot_entries;
    ncfg.compaction_lag_entries = cfg.snapshot_entries / 2;
    let node = Node::new(ncfg, log)?;
    let stop = started.as_ref().map(|(_, s)| s.clone()).unwrap_or_default();
    let (bell_tx, bell_rx) = local_channel::new_bounded(1);
    let core = Rc::new(RefCell::new(Core {
        node,
        zk: ZkFront::new(ZkSettings {
            min_session_timeout_ms: 2 * cfg.zk_tick_ms,
            max_session_timeout_ms: 20 * cfg.zk_tick_ms,
        }),
        disk,
        conns: HashMap::new(),
        tags: HashMap::new(),
        next_tag: 1,
        next_conn: 1,
        data_watches: HashMap::new(),
        child_watches: HashMap::new(),
        peers: HashMap::new(),
        bell: bell_tx,
        this: std::rc::Weak::new(),
        stop,
        my_addr: local.to_string(),
    }));
    core.borrow_mut().this = Rc::downgrade(&core);
    core.borrow_mut().zk.core = Rc::downgrade(&core);
    core.borrow_mut().sync_peers();
    tracing::info!(id = cfg.id, %local, "coordinator listening");

    let tick_core = core.clone();
    let tick = Duration::from_millis(cfg.tick_ms.max(1));
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(tick).await;
            let mut c = tick_core.borrow_mut();
            if c.stop.load(Ordering::Relaxed) {
                c.ring();
                return;
            }
            c.node.tick(now_ms());
            c.ring();
        }
    })
    .detach();

    let accept_core = core.clone();
    glommio::spawn_local(async move {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let c = accept_core.clone();
                    glommio::spawn_local(async move { handle_conn(c, stream).await }).detach();
                }
                Err(e) => {
                    tracing::warn!("accept: {e}");
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    })
    .detach();

    if let Some(zl) = zk_listener {
        tracing::info!(id = cfg.id, addr = ?zk_local, "ZooKeeper protocol listening");
        let zk_core = core.clone();
        glommio::spawn_local(async move {
            loop {
                match zl.accept().await {
                    Ok(stream) => {
                        let c = zk_core.clone();
                        glommio::spawn_local(async move { handle_zk_conn(c, stream).await })
                            .detach();
                    }
                    Err(e) => {
                        tracing::warn!("zk accept: {e}");
                        glommio::timer::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    }

    if let Some((tx, _)) = started {
        let _ = tx.send(Ok((local, zk_local)));
    }
    // The driver: one Ready round per wake-up.
    core.borrow_mut().ring();
    while bell_rx.recv().await.is_some() {
        if core.borrow().stop.load(Ordering::Relaxed) {
            break;
        }
        let snapshot = core.borrow_mut().drive()?;
        if let Some(job) = snapshot {
            glommio::spawn_local(encode_snapshot(core.clone(), job)).detach();
        }
        glommio::yield_if_needed().await;
    }
    Ok(())
}

/// Encodes a local snapshot on glommio's blocking thread pool (not pinned: the Raft core keeps
/// its CPU to heartbeats and requests meanwhile), then hands it back to the node. Waits first
/// for the previous snapshot's file to be written, which the next one would otherwise wait for
/// on the Raft core: under load, snapshots come as often as the disk takes them (ZooKeeper
/// likewise skips a snapshot while one is being written).
async fn encode_snapshot(core: Rc<RefCell<Core>>, job: SnapshotJob) {
    let index = job.index;
    while core.borrow().disk.snapshot_writer_busy() {
        glommio::timer::sleep(SNAPSHOT_WRITER_POLL).await;
    }
    let data = glommio::executor()
        .spawn_blocking(move || job.encode())
        .await;
    let mut c = core.borrow_mut();
    if let Err(e) = c.node.snapshot_encoded(index, data) {
        // The node tries again at its next Ready round.
        tracing::error!(index, "encoding a local snapshot failed: {e}");
    }
    c.ring();
}

impl Core {
    pub(crate) fn ring(&self) {
        let _ = self.bell.try_send(());
    }

    /// persist → send → effects; returns a snapshot to encode.
    fn drive(&mut self) -> Result<Option<SnapshotJob>, ServerError> {
        let started = Instant::now();
        let out = self.node.ready()?;
        let readied = started.elapsed();
        if !out.persist.is_empty() {
            self.disk.persist(&out.persist)?;
        }
        let persisted = started.elapsed();
        let compacted = out.persist.iter().any(|b| b.compacted.is_some());
        for m in out.messages {
            self.send_peer(m);
        }
        for e in out.effects {
            self.deliver(e);
        }
        self.zk.after_drive(&mut self.node);
        let took = started.elapsed();
        if took >= SLOW_ROUND {
            // Every request of the round waited this long: worth an operator's attention.
            tracing::warn!(
                ready_ms = readied.as_millis() as u64,
                persist_ms = (persisted - readied).as_millis() as u64,
                deliver_ms = (took - persisted).as_millis() as u64,
                compacted,
                "slow Ready round: {} ms",
                took.as_millis()
            );
        }
        Ok(out.snapshot)
    }

    fn send_peer(&mut self, m: Message) {
        let Some((_, ob)) = self.peers.get(&m.to) else {
            return;
        };
        let is_snap = m.get_msg_type() == MessageType::MsgSnapshot;
        let Ok(body) = m.write_to_bytes() else {
            return;
        };
        {
            let mut buf = ob.buf.borrow_mut();
            if !is_snap && buf.len() > PEER_BUFFER_BYTES_MAX {
                return;
            }
            buf.extend_from_slice(&(body.len() as u32).to_le_bytes());
            buf.extend_from_slice(&body);
        }
        if is_snap {
            ob.snapshots.set(ob.snapshots.get() + 1);
        }
        ob.ring();
    }

    fn deliver(&mut self, e: Effect) {
        match e {
            Effect::Reply {
                tag,
                zxid,
                mut result,
            } => {
                if tag & ZK_TAG != 0 {
                    return self.zk.on_reply(&mut self.node, tag, zxid, result);
                }
                if let Ok(Response::Status(st)) = &mut result {
                    st.pid = std::process::id();
                }
                let Some(p) = self.tags.remove(&tag) else {
                    return;
                };
                let Some(conn) = self.conns.get_mut(&p.conn) else {
                    return;
                };
                if let Ok(Response::Session { session, .. }) = &result {
                    conn.session = *session;
                }
                if let (Ok(_), Some((kind, path))) = (&result, p.watch) {
                    let table = match kind {
                        WatchKind::Data => &mut self.data_watches,
                        WatchKind::Child => &mut self.child_watches,
                    };
                    table.entry(path).or_default().insert(p.conn);
                }
                conn.outbox.push_frame(&ServerFrame::Reply {
                    xid: p.xid,
                    zxid,
                    result,
                });
            }
            Effect::Event(ev) => {
                self.zk.on_event(&ev);
                let fire = |table: &mut HashMap<String, HashSet<u64>>| {
                    if let Some(set) = table.remove(&ev.path) {
                        for c in set {
                            if let Some(conn) = self.conns.get(&c) {
                                conn.outbox.push_frame(&ServerFrame::Event(ev.clone()));
                            }
                        }
                    }
                };
                match ev.kind {
                    EventKind::NodeCreated | EventKind::NodeDataChanged => {
                        fire(&mut self.data_watches)
                    }
                    EventKind::NodeDeleted => {
                        fire(&mut self.data_watches);
                        fire(&mut self.child_watches);
                    }
                    EventKind::NodeChildrenChanged => fire(&mut self.child_watches),
                }
            }
            Effect::SessionClosed(s) => {
                self.zk.on_session_closed(s);
                let zxid = self.node.applied();
                let ids: Vec<u64> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.session == s)
                    .map(|(id, _)| *id)
                    .collect();
                for id in ids {
                    if let Some(c) = self.conns.get_mut(&id) {
                        c.session = 0;
                        c.outbox.push_frame(&ServerFrame::Reply {
                            xid: 0,
                            zxid,
                            result: Err(ZkError::SessionExpired),
                        });
                    }
                }
            }
            Effect::MembersChanged => self.sync_peers(),
        }
    }

    /// Starts writer tasks for new members and stops those of removed ones.
    fn sync_peers(&mut self) {
        let me = self.node.id();
        let members: BTreeMap<u64, String> = self.node.tree().members.clone();
        self.peers.retain(|id, (addr, ob)| {
            let keep = members.get(id) == Some(addr);
            if !keep {
                ob.close();
            }
            keep
        });
        for (id, addr) in members {
            if id == me || self.peers.contains_key(&id) {
                continue;
            }
            let (ob, rx) = Outbox::new();
            self.peers.insert(id, (addr.clone(), ob.clone()));
            let weak = self.this.clone();
            glommio::spawn_local(peer_writer(
                weak,
                me,
                self.my_addr.clone(),
                id,
                addr,
                ob,
                rx,
            ))
            .detach();
        }
    }

    /// A peer we have no address for connected to us (we are joining): talk back to it.
    fn learn_peer(&mut self, id: u64, addr: String) {
        if id == self.node.id() || self.peers.contains_key(&id) {
            return;
        }
        let (ob, rx) = Outbox::new();
        self.peers.insert(id, (addr.clone(), ob.clone()));
        let weak = self.this.clone();
        let (me, my_addr) = (self.node.id(), self.my_addr.clone());
        glommio::spawn_local(peer_writer(weak, me, my_addr, id, addr, ob, rx)).detach();
    }

    fn remove_conn(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            c.outbox.close();
        }
        for t in [&mut self.data_watches, &mut self.child_watches] {
            t.retain(|_, set| {
                set.remove(&id);
                !set.is_empty()
            });
        }
    }
}

async fn peer_writer(
    core: std::rc::Weak<RefCell<Core>>,
    me: u64,
    my_addr: String,
    peer: u64,
    addr: String,
    ob: Rc<Outbox>,
    bell: LocalReceiver<()>,
) {
    let mut stream: Option<TcpStream> = None;
    while bell.recv().await.is_some() {
        if ob.closed.get() {
            return;
        }
        let (data, snaps) = ob.take();
        if data.is_empty() {
            continue;
        }
        if stream.is_none() {
            stream = connect_peer(me, &my_addr, &addr).await;
        }
        let ok = match stream.as_mut() {
            Some(s) => s.write_all(&data).await.is_ok() && s.flush().await.is_ok(),
            None => false,
        };
        if !ok {
            stream = None;
        }
        let Some(core) = core.upgrade() else {
            return;
        };
        {
            let mut c = core.borrow_mut();
            if snaps > 0 {
                c.node.report_snapshot(peer, ok);
            }
            if !ok {
                c.node.report_unreachable(peer);
            }
            c.ring();
        }
        drop(core);
        if !ok {
            // Back off; Raft resends whatever was dropped.
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn connect_peer(me: u64, my_addr: &str, addr: &str) -> Option<TcpStream> {
    let sa: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(sa, Duration::from_millis(PEER_CONNECT_TIMEOUT_MS))
        .await
        .ok()?;
    let _ = s.set_nodelay(true);
    let mut hello = Vec::new();
    encode_frame(
        &Hello::Peer {
            id: me,
            addr: my_addr.to_string(),
        },
        &mut hello,
    )
    .ok()?;
    s.write_all(&hello).await.ok()?;
    Some(s)
}

/// Reads one `[u32 len][body]` frame into `buf`. `Ok(false)` on a clean end of stream.
pub(crate) async fn read_frame<R: futures_lite::io::AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes exceeds {max}"),
        ));
    }
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(true)
}

async fn handle_conn(core: Rc<RefCell<Core>>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (r, w) = futures_lite::io::split(stream);
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut buf = Vec::new();
    match read_frame(&mut r, 1024, &mut buf).await {
        Ok(true) => {}
        _ => return,
    }
    match decode::<Hello>(&buf) {
        Ok(Hello::Peer { id, addr }) => {
            core.borrow_mut().learn_peer(id, addr);
            while let Ok(true) = read_frame(&mut r, PEER_FRAME_BYTES_MAX, &mut buf).await {
                let Ok(m) = Message::parse_from_bytes(&buf) else {
                    return;
                };
                let mut c = core.borrow_mut();
                c.node.step(m);
                c.ring();
            }
        }
        Ok(Hello::Client) => {
            let (ob, bell) = Outbox::for_client();
            let id = {
                let mut c = core.borrow_mut();
                let id = c.next_conn;
                c.next_conn += 1;
                c.conns.insert(
                    id,
                    Conn {
                        outbox: ob.clone(),
                        session: 0,
                    },
                );
                id
            };
            glommio::spawn_local(client_writer(w, ob, bell)).detach();
            while let Ok(true) = read_frame(&mut r, CLIENT_FRAME_BYTES_MAX, &mut buf).await {
                let Ok(frame) = decode::<ClientFrame>(&buf) else {
                    break;
                };
                let watch = match &frame.req {
                    Request::Get { path, watch: true } | Request::Exists { path, watch: true } => {
                        Some((WatchKind::Data, path.clone()))
                    }
                    Request::Children { path, watch: true } => {
                        Some((WatchKind::Child, path.clone()))
                    }
                    _ => None,
                };
                let mut c = core.borrow_mut();
                let tag = c.next_tag;
                c.next_tag += 1;
                let session = c.conns.get(&id).map(|x| x.session).unwrap_or(0);
                c.tags.insert(
                    tag,
                    Pending {
                        conn: id,
                        xid: frame.xid,
                        watch,
                    },
                );
                c.node.submit(tag, session, frame.req, now_ms());
                c.ring();
            }
            core.borrow_mut().remove_conn(id);
        }
        Err(_) => {}
    }
}

pub(crate) async fn client_writer<W: futures_lite::io::AsyncWrite + Unpin>(
    mut w: W,
    ob: Rc<Outbox>,
    bell: LocalReceiver<()>,
) {
    while bell.recv().await.is_some() {
        let (data, _) = ob.take();
        if !data.is_empty() && (w.write_all(&data).await.is_err() || w.flush().await.is_err()) {
            return;
        }
        if ob.closed.get() {
            let _ = w.close().await;
            return;
        }
    }
}
