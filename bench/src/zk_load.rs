//! A fast ZooKeeper-protocol load generator (`weir bench zk`): the same client against Apache
//! ZooKeeper and weir's ZooKeeper frontend, so the two are compared with one measuring stick.
//!
//! Owns: sessions over plain TCP speaking jute (`coord::zk::jute`), one closed loop per
//! connection that keeps `in_flight` identical requests pipelined (a request frame is encoded
//! once and only its xid patched), HDR latency histograms merged across connections, reconnecting
//! to the next server when a connection dies, and the leader-kill measurement: `kill -9` of the
//! leader (found with the `srvr` four-letter word, or weir's Status request) and the longest
//! stretch, after the kill, in which no request succeeded anywhere (1 ms resolution).
//! Must not: interpret what the server stores beyond checking each reply (xid order, error code,
//! body decodes, a get returns `size` bytes); it uses no ZooKeeper client library, so the client
//! is never the bottleneck (a kazoo process saturates at a few thousand ops/s).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use coord::zk::jute::{
    self, op, xid, Acl, Code, ConnectRequest, ConnectResponse, CreateMode, CreateRequest, Id, Jute,
    PathRequest, PathWatchRequest, Reader, ReplyHeader, Request, Response, SetDataRequest,
};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::progress::latency_histogram;
use crate::report::Percentiles;

/// The operation every request of a run performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ZkOp {
    /// `create` of a PERSISTENT_SEQUENTIAL child under the connection's own znode.
    CreateSeq,
    /// `setData` (version -1) of the connection's own znode.
    Set,
    /// `getData` of the connection's own znode.
    Get,
}

impl std::str::FromStr for ZkOp {
    type Err = ZkLoadError;
    fn from_str(s: &str) -> Result<Self, ZkLoadError> {
        match s {
            "create-seq" | "create" => Ok(ZkOp::CreateSeq),
            "set" => Ok(ZkOp::Set),
            "get" => Ok(ZkOp::Get),
            _ => Err(ZkLoadError::UnknownOp(s.to_string())),
        }
    }
}

impl ZkOp {
    fn op_code(self) -> i32 {
        match self {
            ZkOp::CreateSeq => op::CREATE,
            ZkOp::Set => op::SET_DATA,
            ZkOp::Get => op::GET_DATA,
        }
    }
}

/// How to find the leader to kill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderProbe {
    /// `srvr` on each ZooKeeper address ("Mode: leader"); the pid is the process listening on
    /// that port (found in /proc).
    FourLetter,
    /// weir's native Status request to these addresses (the coordinators' `--listen`); it
    /// reports the leader's pid.
    WeirStatus(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct ZkLoadConfig {
    /// ZooKeeper client addresses (`host:port`).
    pub servers: Vec<String>,
    pub op: ZkOp,
    /// Data bytes of each create / set (and expected of each get).
    pub size: usize,
    /// Connections (one session each), spread round-robin over the servers.
    pub clients: usize,
    /// Requests each connection keeps outstanding.
    pub in_flight: usize,
    /// Measured time (after the warm-up).
    pub duration: Duration,
    /// Load before measuring (not counted in rates or latencies).
    pub warmup: Duration,
    /// glommio executors (threads) the connections are spread over.
    pub executors: usize,
    /// kill -9 the leader this long after the measured window starts.
    pub kill_leader_at: Option<Duration>,
    pub leader_probe: LeaderProbe,
    /// Znode under which the run's nodes live (`ROOT/c{i}`, one per connection).
    pub root: String,
    pub session_timeout_ms: i32,
    /// A connection that receives nothing for this long while requests are outstanding is given
    /// up and reopened on the next server (socket read/write timeout).
    pub request_timeout: Duration,
}

impl ZkLoadConfig {
    pub fn new(servers: Vec<String>, op: ZkOp) -> Self {
        ZkLoadConfig {
            servers,
            op,
            size: 1024,
            clients: 16,
            in_flight: 16,
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(1),
            executors: 1,
            kill_leader_at: None,
            leader_probe: LeaderProbe::FourLetter,
            root: "/weir-bench-zk".into(),
            session_timeout_ms: 10_000,
            request_timeout: Duration::from_secs(2),
        }
    }

    fn check(&self) -> Result<(), ZkLoadError> {
        let bad = |m: &str| Err(ZkLoadError::Config(m.to_string()));
        if self.servers.is_empty() {
            return bad("no servers");
        }
        if self.clients == 0 || self.in_flight == 0 || self.executors == 0 {
            return bad("clients, in-flight and executors must be at least 1");
        }
        if self.duration.saturating_add(self.warmup) > Duration::from_secs(86_400) {
            return bad("duration plus warm-up must stay under a day");
        }
        if self.size > 1024 * 1024 {
            return bad("size is at most 1 MiB (ZooKeeper's jute.maxbuffer)");
        }
        if self.in_flight * (self.size + 128) > 4 * 1024 * 1024 {
            return bad("in-flight x size must stay under 4 MiB per connection");
        }
        if !self.root.starts_with('/') || self.root.ends_with('/') || self.root.len() < 2 {
            return bad("root must be an absolute znode path like /weir-bench-zk");
        }
        if let LeaderProbe::WeirStatus(a) = &self.leader_probe {
            if a.is_empty() {
                return bad("no weir status addresses");
            }
        }
        if let Some(k) = self.kill_leader_at {
            if k >= self.duration {
                return bad("kill-leader-at must fall inside the duration");
            }
        }
        Ok(())
    }

    fn node(&self, i: usize) -> String {
        format!("{}/c{i}", self.root)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ZkLoadError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("unknown op {0:?}: expected create-seq, set or get")]
    UnknownOp(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("protocol: {0}")]
    Protocol(String),
    #[error("{what}: server answered {code}")]
    Server { what: String, code: String },
    #[error("executor: {0}")]
    Executor(String),
    #[error("no leader found among {0:?}")]
    NoLeader(Vec<String>),
    #[error("no process found listening on port {0}")]
    NoPid(u16),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ZkLoadError {
    let what = what.into();
    move |source| ZkLoadError::Io { what, source }
}

fn code_name(err: i32) -> String {
    match Code::from_i32(err) {
        Some(c) => c.to_string(),
        None => format!("error {err}"),
    }
}

/// The leader that was killed.
#[derive(Debug, Clone, Serialize)]
pub struct KilledLeader {
    pub addr: String,
    pub pid: u32,
    /// Seconds into the measured window.
    pub at_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ZkLoadReport {
    pub op: ZkOp,
    pub size: usize,
    pub clients: usize,
    pub in_flight: usize,
    /// Length of the measured window.
    pub seconds: f64,
    /// Successful requests completed in the measured window.
    pub ops: u64,
    /// Successful requests in all, warm-up included (what the server should hold for creates).
    pub ops_total: u64,
    /// Error replies plus failed connections (a dead connection or a refused connect counts
    /// once, however many requests it had in flight), whole run.
    pub errors: u64,
    pub reconnects: u64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub first_error: Option<String>,
    pub killed_leader: Option<KilledLeader>,
    /// Longest time after the kill without any successful request.
    pub gap_after_kill_ms: Option<f64>,
    pub ops_after_kill: Option<u64>,
}

/// What one connection measured.
struct ConnResult {
    latency_us: Histogram<u64>,
    ops: u64,
    ops_total: u64,
    errors: u64,
    reconnects: u64,
    first_error: Option<String>,
    /// Successes per millisecond of the measured window (only with a leader kill).
    per_ms: Vec<u32>,
}

// ---------------------------------------------------------------------------------------------
// One session

const PASSWD_LEN: usize = 16;

fn open_acl() -> Vec<Acl> {
    vec![Acl {
        perms: jute::perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

/// A connected session: the stream and a read buffer holding frames not yet consumed.
struct Session {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Session {
    async fn connect(
        addr: &str,
        timeout_ms: i32,
        io_timeout: Duration,
    ) -> Result<Self, ZkLoadError> {
        let sa: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| ZkLoadError::Config(format!("server {addr:?} is not host:port")))?;
        let stream = TcpStream::connect_timeout(sa, io_timeout)
            .await
            .map_err(|e| ZkLoadError::Io {
                what: format!("connecting {addr}"),
                source: e.into(),
            })?;
        let opt = |e: glommio::GlommioError<()>| ZkLoadError::Io {
            what: "socket option".into(),
            source: e.into(),
        };
        stream.set_nodelay(true).map_err(opt)?;
        stream.set_read_timeout(Some(io_timeout)).map_err(opt)?;
        stream.set_write_timeout(Some(io_timeout)).map_err(opt)?;
        let mut s = Session {
            stream,
            buf: vec![0; 256 * 1024],
            start: 0,
            end: 0,
        };
        let mut out = Vec::new();
        let mark = jute::begin_frame(&mut out);
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: 0,
            passwd: vec![0; PASSWD_LEN],
            read_only: Some(false),
        }
        .write(&mut out);
        jute::end_frame(&mut out, mark);
        s.write(&out).await?;
        let (a, b) = s.next_frame().await?;
        let resp = ConnectResponse::from_bytes(&s.buf[a..b])
            .map_err(|e| ZkLoadError::Protocol(format!("connect response from {addr}: {e}")))?;
        if resp.timeout_ms <= 0 {
            return Err(ZkLoadError::Protocol(format!(
                "{addr} refused the session (negotiated timeout {})",
                resp.timeout_ms
            )));
        }
        Ok(s)
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), ZkLoadError> {
        self.stream
            .write_all(bytes)
            .await
            .map_err(io("writing requests"))
    }

    /// Reads more bytes (at least one) into the buffer.
    async fn fill(&mut self) -> Result<(), ZkLoadError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.buf.len() - self.end < 64 * 1024 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let n = self.buf.len() * 2;
            self.buf.resize(n, 0);
        }
        let n = self
            .stream
            .read(&mut self.buf[self.end..])
            .await
            .map_err(io("reading replies"))?;
        if n == 0 {
            return Err(ZkLoadError::Io {
                what: "reading replies".into(),
                source: std::io::ErrorKind::UnexpectedEof.into(),
            });
        }
        self.end += n;
        Ok(())
    }

    /// The next complete frame already buffered, as a range of `buf` (consumed).
    fn buffered_frame(&mut self) -> Result<Option<(usize, usize)>, ZkLoadError> {
        if self.end - self.start < 4 {
            return Ok(None);
        }
        let mut prefix = [0u8; 4];
        prefix.copy_from_slice(&self.buf[self.start..self.start + 4]);
        let len = jute::frame_len(prefix).map_err(|e| ZkLoadError::Protocol(e.to_string()))?;
        if self.end - self.start - 4 < len {
            if 4 + len > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                self.buf.resize(4 + len, 0);
            }
            return Ok(None);
        }
        let a = self.start + 4;
        self.start = a + len;
        Ok(Some((a, a + len)))
    }

    async fn next_frame(&mut self) -> Result<(usize, usize), ZkLoadError> {
        loop {
            if let Some(f) = self.buffered_frame()? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// One request, waiting for its reply (setup only; skips notifications and pings).
    async fn call(&mut self, xid: i32, req: &Request) -> Result<(i32, Response), ZkLoadError> {
        let mut out = Vec::new();
        let mark = jute::begin_frame(&mut out);
        req.write(xid, &mut out);
        jute::end_frame(&mut out, mark);
        self.write(&out).await?;
        loop {
            let (a, b) = self.next_frame().await?;
            let mut r = Reader::new(&self.buf[a..b]);
            let h = ReplyHeader::read(&mut r).map_err(|e| ZkLoadError::Protocol(e.to_string()))?;
            if h.xid != xid {
                continue;
            }
            if h.err != 0 {
                return Ok((h.err, Response::Empty));
            }
            let body = Response::read_body(req.op_code(), &mut r)
                .map_err(|e| ZkLoadError::Protocol(e.to_string()))?;
            return Ok((0, body));
        }
    }
}

/// Creates `path` (persistent) unless it exists.
async fn ensure_node(
    s: &mut Session,
    xid: i32,
    path: &str,
    data: &[u8],
) -> Result<(), ZkLoadError> {
    let req = Request::Create(CreateRequest {
        path: path.to_string(),
        data: data.to_vec(),
        acl: open_acl(),
        flags: CreateMode::Persistent.flags(),
    });
    match s.call(xid, &req).await? {
        (0, _) => Ok(()),
        (e, _) if e == Code::NodeExists.as_i32() => Ok(()),
        (e, _) => Err(ZkLoadError::Server {
            what: format!("create {path}"),
            code: code_name(e),
        }),
    }
}

/// Creates the root and one znode per connection (holding `size` bytes) on the first server
/// that takes them.
async fn setup(cfg: &ZkLoadConfig) -> Result<(), ZkLoadError> {
    let mut last = None;
    for addr in &cfg.servers {
        let r = async {
            let mut s =
                Session::connect(addr, cfg.session_timeout_ms, Duration::from_secs(5)).await?;
            // Parents of the root, then the root, then the nodes.
            let mut xid = 1;
            let mut p = String::new();
            for part in cfg.root.split('/').filter(|x| !x.is_empty()) {
                p.push('/');
                p.push_str(part);
                ensure_node(&mut s, xid, &p, b"").await?;
                xid += 1;
            }
            let data = vec![b'x'; cfg.size];
            for i in 0..cfg.clients {
                ensure_node(&mut s, xid, &cfg.node(i), &data).await?;
                xid += 1;
            }
            let _ = s.call(xid, &Request::CloseSession).await;
            Ok::<(), ZkLoadError>(())
        }
        .await;
        match r {
            Ok(()) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or(ZkLoadError::NoLeader(cfg.servers.clone())))
}

// ---------------------------------------------------------------------------------------------
// The load loop

/// The connection's request frame, encoded once (xid 0, patched per request at bytes 4..8).
fn request_template(cfg: &ZkLoadConfig, i: usize) -> Vec<u8> {
    let path = cfg.node(i);
    let data = vec![b'x'; cfg.size];
    let req = match cfg.op {
        ZkOp::CreateSeq => Request::Create(CreateRequest {
            path: format!("{path}/n-"),
            data,
            acl: open_acl(),
            flags: CreateMode::PersistentSequential.flags(),
        }),
        ZkOp::Set => Request::SetData(SetDataRequest {
            path,
            data,
            version: -1,
        }),
        ZkOp::Get => Request::GetData(PathWatchRequest { path, watch: false }),
    };
    let mut out = Vec::new();
    let mark = jute::begin_frame(&mut out);
    req.write(0, &mut out);
    jute::end_frame(&mut out, mark);
    out
}

struct Clock {
    /// Start of the warm-up.
    t0: Instant,
    warmup: Duration,
    /// End of the measured window.
    end: Instant,
    track_ms: bool,
}

struct Conn<'a> {
    cfg: &'a ZkLoadConfig,
    clock: &'a Clock,
    res: ConnResult,
}

impl Conn<'_> {
    fn error(&mut self, what: String) {
        self.res.errors += 1;
        if self.res.first_error.is_none() {
            self.res.first_error = Some(what);
        }
    }

    fn success(&mut self, sent: Instant, now: Instant) {
        self.res.ops_total += 1;
        let since = now.duration_since(self.clock.t0);
        if since < self.clock.warmup || now > self.clock.end {
            return;
        }
        self.res.ops += 1;
        let us = now.duration_since(sent).as_micros().max(1) as u64;
        // Values over the histogram's 1 h bound are clamped rather than dropped.
        let _ = self.res.latency_us.record(us.min(3_600_000_000));
        if self.clock.track_ms {
            let ms = (since - self.clock.warmup).as_millis() as usize;
            if let Some(slot) = self.res.per_ms.get_mut(ms) {
                *slot += 1;
            }
        }
    }

    /// Checks one reply frame against the oldest request in flight.
    fn reply(
        &mut self,
        frame: &[u8],
        in_flight: &mut VecDeque<(i32, Instant)>,
        now: Instant,
    ) -> Result<(), ZkLoadError> {
        let mut r = Reader::new(frame);
        let h = ReplyHeader::read(&mut r).map_err(|e| ZkLoadError::Protocol(e.to_string()))?;
        if h.xid == xid::NOTIFICATION || h.xid == xid::PING {
            return Ok(());
        }
        let (want, sent) = in_flight.pop_front().ok_or_else(|| {
            ZkLoadError::Protocol(format!("reply xid {} with none in flight", h.xid))
        })?;
        if h.xid != want {
            return Err(ZkLoadError::Protocol(format!(
                "reply xid {} out of order (expected {want})",
                h.xid
            )));
        }
        if h.err != 0 {
            self.error(code_name(h.err));
            return Ok(());
        }
        let body = Response::read_body(self.cfg.op.op_code(), &mut r)
            .map_err(|e| ZkLoadError::Protocol(format!("reply body: {e}")))?;
        if let Response::GetData(g) = &body {
            if g.data.len() != self.cfg.size {
                self.error(format!(
                    "get returned {} bytes, expected {}",
                    g.data.len(),
                    self.cfg.size
                ));
                return Ok(());
            }
        }
        self.success(sent, now);
        Ok(())
    }

    /// One session's closed loop until the window ends; `Ok` when it drained cleanly.
    async fn run_session(&mut self, s: &mut Session, template: &[u8]) -> Result<(), ZkLoadError> {
        if self.cfg.op == ZkOp::Get {
            // Reads on a follower may not see the setup's creates yet: sync first.
            let path = self.cfg.node(0);
            s.call(1, &Request::Sync(PathRequest { path })).await?;
        }
        let mut in_flight: VecDeque<(i32, Instant)> = VecDeque::with_capacity(self.cfg.in_flight);
        let mut out = Vec::with_capacity(template.len() * self.cfg.in_flight);
        let mut next_xid: i32 = 2;
        loop {
            let now = Instant::now();
            if now < self.clock.end {
                while in_flight.len() < self.cfg.in_flight {
                    let at = out.len();
                    out.extend_from_slice(template);
                    out[at + 4..at + 8].copy_from_slice(&next_xid.to_be_bytes());
                    in_flight.push_back((next_xid, now));
                    next_xid = if next_xid == i32::MAX {
                        2
                    } else {
                        next_xid + 1
                    };
                }
            }
            if in_flight.is_empty() {
                let _ = s.call(1, &Request::CloseSession).await;
                return Ok(());
            }
            if !out.is_empty() {
                s.write(&out).await?;
                out.clear();
            }
            s.fill().await?;
            let now = Instant::now();
            while let Some((a, b)) = s.buffered_frame()? {
                // Split borrow: the frame lives in the session's buffer.
                let frame = std::mem::take(&mut s.buf);
                let r = self.reply(&frame[a..b], &mut in_flight, now);
                s.buf = frame;
                r?;
            }
        }
    }

    async fn run(mut self, index: usize) -> ConnResult {
        let template = request_template(self.cfg, index);
        let n = self.cfg.servers.len();
        let mut server = index % n;
        let mut failures_in_a_row = 0u32;
        while Instant::now() < self.clock.end {
            let addr = &self.cfg.servers[server];
            let r =
                match Session::connect(addr, self.cfg.session_timeout_ms, self.cfg.request_timeout)
                    .await
                {
                    Ok(mut s) => {
                        failures_in_a_row = 0;
                        let r = self.run_session(&mut s, &template).await;
                        if r.is_err() {
                            // Everything in flight on a dead connection is lost.
                            self.res.reconnects += 1;
                        }
                        r
                    }
                    Err(e) => Err(e),
                };
            match r {
                Ok(()) => break,
                Err(e) => {
                    if self.res.first_error.is_none() {
                        self.res.first_error = Some(format!("{addr}: {e}"));
                    }
                    self.res.errors += 1;
                    server = (server + 1) % n;
                    failures_in_a_row += 1;
                    if failures_in_a_row >= n as u32 {
                        glommio::timer::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
        self.res
    }
}

// ---------------------------------------------------------------------------------------------
// Leader kill

/// Sends a four-letter word and returns the answer.
pub fn four_letter(addr: &str, word: &str) -> Result<String, ZkLoadError> {
    let sa: std::net::SocketAddr = addr
        .parse()
        .map_err(|_| ZkLoadError::Config(format!("server {addr:?} is not host:port")))?;
    let mut s = std::net::TcpStream::connect_timeout(&sa, Duration::from_secs(1))
        .map_err(io(format!("connecting {addr}")))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(io("socket option"))?;
    s.write_all(word.as_bytes())
        .map_err(io(format!("sending {word} to {addr}")))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(io(format!("reading {word} from {addr}")))?;
    Ok(out)
}

/// Pid of the process with a socket listening on `port` (scans /proc; needs permission to
/// read the other process's fds, i.e. the same user).
pub fn pid_listening_on(port: u16) -> Result<u32, ZkLoadError> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, st 0A = LISTEN, inode is field 9.
            if f.len() > 9 && f[3] == "0A" {
                let p = f[1]
                    .rsplit(':')
                    .next()
                    .and_then(|h| u16::from_str_radix(h, 16).ok());
                if p == Some(port) {
                    inodes.push(format!("socket:[{}]", f[9]));
                }
            }
        }
    }
    if inodes.is_empty() {
        return Err(ZkLoadError::NoPid(port));
    }
    let procs = std::fs::read_dir("/proc").map_err(io("reading /proc"))?;
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if inodes.iter().any(|i| target.as_os_str() == i.as_str()) {
                    return Ok(pid);
                }
            }
        }
    }
    Err(ZkLoadError::NoPid(port))
}

/// The current leader's address and pid.
pub fn find_leader(cfg: &ZkLoadConfig) -> Result<(String, u32), ZkLoadError> {
    match &cfg.leader_probe {
        LeaderProbe::FourLetter => {
            for addr in &cfg.servers {
                if let Ok(out) = four_letter(addr, "srvr") {
                    if out.lines().any(|l| l.trim() == "Mode: leader") {
                        let port = addr
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.parse().ok())
                            .ok_or_else(|| ZkLoadError::Config(format!("no port in {addr}")))?;
                        return Ok((addr.clone(), pid_listening_on(port)?));
                    }
                }
            }
            Err(ZkLoadError::NoLeader(cfg.servers.clone()))
        }
        LeaderProbe::WeirStatus(addrs) => {
            let addrs = addrs.clone();
            let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
                .io_memory(1 << 20)
                .make()
                .map_err(|e| ZkLoadError::Executor(e.to_string()))?;
            ex.run(async move {
                match weir_leader(&addrs).await {
                    Some((a, st)) => Ok((a, st.pid)),
                    None => Err(ZkLoadError::NoLeader(addrs.clone())),
                }
            })
        }
    }
}

/// The weir coordinator node among `addrs` (native addresses) that says it is the leader, by
/// the Status request; shared with `weir coord bench`.
pub async fn weir_leader(addrs: &[String]) -> Option<(String, coord::proto::NodeStatus)> {
    for a in addrs {
        let r = coord::client::request_once(
            a,
            coord::proto::Request::Status,
            Duration::from_millis(500),
        )
        .await;
        if let Ok(coord::proto::Response::Status(st)) = r {
            if st.is_leader {
                return Some((a.clone(), st));
            }
        }
    }
    None
}

/// Longest run of milliseconds from `from_ms` on with no success in `per_ms`; the window's end
/// closes the last run.
pub fn longest_gap_ms(per_ms: &[u32], from_ms: usize) -> u64 {
    let mut best = 0u64;
    let mut run = 0u64;
    for &n in per_ms.iter().skip(from_ms) {
        if n == 0 {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

// ---------------------------------------------------------------------------------------------
// Driver

fn split(n: usize, parts: usize) -> Vec<usize> {
    (0..parts)
        .map(|i| n / parts + usize::from(i < n % parts))
        .collect()
}

/// Runs the load and reports.
pub fn run(cfg: ZkLoadConfig) -> Result<ZkLoadReport, ZkLoadError> {
    cfg.check()?;
    {
        let c = cfg.clone();
        glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .io_memory(1 << 20)
            .make()
            .map_err(|e| ZkLoadError::Executor(e.to_string()))?
            .run(async move { setup(&c).await })?;
    }
    let t0 = Instant::now();
    let clock = Clock {
        t0,
        warmup: cfg.warmup,
        end: t0 + cfg.warmup + cfg.duration,
        track_ms: cfg.kill_leader_at.is_some(),
    };
    let window_ms = cfg.duration.as_millis() as usize + 1;
    let mut threads = Vec::new();
    let mut first = 0usize;
    for (e, n) in split(cfg.clients, cfg.executors.min(cfg.clients))
        .into_iter()
        .enumerate()
    {
        let mine: Vec<usize> = (first..first + n).collect();
        first += n;
        let cfg = cfg.clone();
        let (warmup, end, track_ms) = (clock.warmup, clock.end, clock.track_ms);
        let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
            .name(&format!("bench-zk-{e}"))
            .io_memory(1 << 20)
            .spawn(move || async move {
                let cfg = Rc::new(cfg);
                let clock = Rc::new(Clock {
                    t0,
                    warmup,
                    end,
                    track_ms,
                });
                let tasks: Vec<_> = mine
                    .into_iter()
                    .map(|i| {
                        let (cfg, clock) = (cfg.clone(), clock.clone());
                        glommio::spawn_local(async move {
                            let conn = Conn {
                                cfg: &cfg,
                                clock: &clock,
                                res: ConnResult {
                                    latency_us: latency_histogram(),
                                    ops: 0,
                                    ops_total: 0,
                                    errors: 0,
                                    reconnects: 0,
                                    first_error: None,
                                    per_ms: if track_ms {
                                        vec![0; window_ms]
                                    } else {
                                        Vec::new()
                                    },
                                },
                            };
                            conn.run(i).await
                        })
                    })
                    .collect();
                futures::future::join_all(tasks).await
            })
            .map_err(|e| ZkLoadError::Executor(e.to_string()))?;
        threads.push(handle);
    }
    let mut killed = None;
    let mut kill_err = None;
    if let Some(at) = cfg.kill_leader_at {
        let when = t0 + cfg.warmup + at;
        std::thread::sleep(when.saturating_duration_since(Instant::now()));
        match find_leader(&cfg) {
            Ok((addr, pid)) => {
                // SAFETY: kill(2) on a pid that was found listening on the leader's port; no
                // memory is involved.
                let rc = unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                if rc == 0 {
                    let at_s = (Instant::now() - t0 - cfg.warmup).as_secs_f64();
                    killed = Some(KilledLeader { addr, pid, at_s });
                } else {
                    kill_err = Some(ZkLoadError::Io {
                        what: format!("kill -9 {pid}"),
                        source: std::io::Error::last_os_error(),
                    });
                }
            }
            Err(e) => kill_err = Some(e),
        }
    }
    let mut results = Vec::new();
    for t in threads {
        results.extend(t.join().map_err(|e| ZkLoadError::Executor(e.to_string()))?);
    }
    if let Some(e) = kill_err {
        return Err(e);
    }
    let mut latency = latency_histogram();
    let mut per_ms = vec![0u32; if clock.track_ms { window_ms } else { 0 }];
    let (mut ops, mut ops_total, mut errors, mut reconnects) = (0, 0, 0, 0);
    let mut first_error = None;
    for r in results {
        latency
            .add(&r.latency_us)
            .map_err(|e| ZkLoadError::Executor(format!("merging histograms: {e}")))?;
        ops += r.ops;
        ops_total += r.ops_total;
        errors += r.errors;
        reconnects += r.reconnects;
        first_error = first_error.or(r.first_error);
        for (a, b) in per_ms.iter_mut().zip(&r.per_ms) {
            *a += b;
        }
    }
    let seconds = cfg.duration.as_secs_f64();
    let latency = Percentiles::of(&latency);
    let (gap, after) = match &killed {
        Some(k) => {
            let from = (k.at_s * 1000.0) as usize;
            let after: u64 = per_ms.iter().skip(from).map(|n| *n as u64).sum();
            (Some(longest_gap_ms(&per_ms, from) as f64), Some(after))
        }
        None => (None, None),
    };
    Ok(ZkLoadReport {
        op: cfg.op,
        size: cfg.size,
        clients: cfg.clients,
        in_flight: cfg.in_flight,
        seconds,
        ops,
        ops_total,
        errors,
        reconnects,
        ops_per_s: ops as f64 / seconds,
        p50_ms: latency.p50,
        p99_ms: latency.p99,
        p999_ms: latency.p99_9,
        max_ms: latency.max,
        first_error,
        killed_leader: killed,
        gap_after_kill_ms: gap,
        ops_after_kill: after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_is_the_longest_silent_run_after_the_kill() {
        let per_ms = [3, 0, 0, 0, 1, 0, 0, 2, 0];
        assert_eq!(longest_gap_ms(&per_ms, 0), 3);
        assert_eq!(longest_gap_ms(&per_ms, 5), 2);
        assert_eq!(longest_gap_ms(&per_ms, 8), 1);
        assert_eq!(longest_gap_ms(&[1, 1], 0), 0);
    }

    #[test]
    fn template_is_a_decodable_request_with_patchable_xid() {
        let mut cfg = ZkLoadConfig::new(vec!["127.0.0.1:1".into()], ZkOp::Set);
        cfg.size = 10;
        let mut t = request_template(&cfg, 3);
        t[4..8].copy_from_slice(&77i32.to_be_bytes());
        let len = jute::frame_len([t[0], t[1], t[2], t[3]]).unwrap();
        assert_eq!(len, t.len() - 4);
        let (h, req) = Request::decode(&t[4..]).unwrap();
        assert_eq!(h.xid, 77);
        assert_eq!(
            req,
            Request::SetData(SetDataRequest {
                path: "/weir-bench-zk/c3".into(),
                data: vec![b'x'; 10],
                version: -1
            })
        );
        cfg.op = ZkOp::CreateSeq;
        let t = request_template(&cfg, 0);
        match Request::decode(&t[4..]).unwrap().1 {
            Request::Create(c) => {
                assert_eq!(c.path, "/weir-bench-zk/c0/n-");
                assert_eq!(c.flags, 2);
            }
            r => panic!("unexpected {r:?}"),
        }
    }

    #[test]
    fn four_letter_probe_finds_the_leader_and_its_pid() {
        // Two fake servers answering `srvr`: a follower and a leader (this process).
        let serve = |mode: &'static str| {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = l.local_addr().unwrap().to_string();
            std::thread::spawn(move || {
                for mut s in l.incoming().flatten() {
                    let mut word = [0u8; 4];
                    if s.read_exact(&mut word).is_ok() && &word == b"srvr" {
                        let _ = write!(s, "Zookeeper version: 3.8.0\nMode: {mode}\n");
                    }
                }
            });
            addr
        };
        let follower = serve("follower");
        let leader = serve("leader");
        let mut cfg = ZkLoadConfig::new(vec![follower.clone(), leader.clone()], ZkOp::Set);
        let (addr, pid) = find_leader(&cfg).unwrap();
        assert_eq!(addr, leader);
        assert_eq!(pid, std::process::id());
        cfg.servers = vec![follower];
        assert!(matches!(find_leader(&cfg), Err(ZkLoadError::NoLeader(_))));
    }

    #[test]
    fn config_errors_are_reported() {
        let mut cfg = ZkLoadConfig::new(vec![], ZkOp::Get);
        assert!(matches!(cfg.check(), Err(ZkLoadError::Config(_))));
        cfg.servers = vec!["127.0.0.1:1".into()];
        cfg.kill_leader_at = Some(Duration::from_secs(20));
        assert!(matches!(cfg.check(), Err(ZkLoadError::Config(_))));
        cfg.kill_leader_at = None;
        cfg.root = "rel".into();
        assert!(matches!(cfg.check(), Err(ZkLoadError::Config(_))));
    }
}
