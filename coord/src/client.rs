//! The coordinator client library (async, for a glommio executor).
//!
//! Owns: finding the leader (servers answer `NotLeader` with a hint), reconnecting, the session
//! (created on first connect, re-attached after a reconnect, kept alive by pings every third of
//! its timeout), request pipelining by xid, and one-shot watch delivery including re-arming
//! watches on a new server after a reconnect (a change missed while disconnected fires at once).
//! Must not: block the executor, or retry a write whose outcome is unknown (it returns
//! `ConnectionLoss`, as ZooKeeper's client does); retrying refused (`NotLeader`) requests is safe.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::io::{AsyncWriteExt, BufReader};
use futures_lite::FutureExt;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;

use crate::proto::{
    decode, encode_frame, ClientFrame, Hello, NodeStatus, Op, OpResult, Request, Response,
    ServerFrame, CLIENT_FRAME_BYTES_MAX,
};
use crate::server::read_frame;

/// The parts of the wire vocabulary a client's caller names (create modes, errors, stats, watch
/// events), so callers need only this module.
pub use crate::proto::{CreateMode, EventKind, Stat, WatchEvent, ZkError};

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub servers: Vec<String>,
    /// 0 = no session (no ephemeral nodes; nothing to keep alive).
    pub session_timeout_ms: u64,
    /// How long one call may take, reconnects included.
    pub request_timeout_ms: u64,
}

impl ClientConfig {
    pub fn new(servers: Vec<String>) -> Self {
        ClientConfig {
            servers,
            session_timeout_ms: 10_000,
            request_timeout_ms: 10_000,
        }
    }
}

/// Client errors.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Zk(#[from] ZkError),
    #[error("no server reachable among {0:?}")]
    NoServer(Vec<String>),
    #[error("request timed out")]
    Timeout,
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

impl ClientError {
    /// The ZooKeeper error code, if this is one.
    pub fn zk(&self) -> Option<&ZkError> {
        match self {
            ClientError::Zk(e) => Some(e),
            _ => None,
        }
    }
}

type Reply = (u64, Result<Response, ZkError>);

struct Conn {
    buf: RefCell<Vec<u8>>,
    bell: LocalSender<()>,
    pending: RefCell<HashMap<u64, LocalSender<Reply>>>,
    alive: Cell<bool>,
}

impl Conn {
    fn send(&self, xid: u64, req: Request) -> Option<LocalReceiver<Reply>> {
        if !self.alive.get() {
            return None;
        }
        let (tx, rx) = local_channel::new_bounded(1);
        self.pending.borrow_mut().insert(xid, tx);
        encode_frame(&ClientFrame { xid, req }, &mut self.buf.borrow_mut()).ok()?;
        let _ = self.bell.try_send(());
        Some(rx)
    }
    fn kill(&self) {
        self.alive.set(false);
        self.pending.borrow_mut().clear();
        let _ = self.bell.try_send(());
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum WatchKind {
    Data,
    Child,
}

struct WatchReg {
    kind: WatchKind,
    path: String,
    /// What the registering read saw (mzxid for data, pzxid for children; None = absent).
    seen: Option<u64>,
    tx: LocalSender<WatchEvent>,
}

struct State {
    conn: Option<Rc<Conn>>,
    session: u64,
    timeout_ms: u64,
    expired: bool,
    closed: bool,
    next_xid: u64,
    hint: Option<String>,
    rotate: usize,
    /// Address of the current connection, and one to skip on the next reconnect (it went
    /// silent).
    conn_addr: Option<String>,
    avoid: Option<String>,
    watches: Vec<WatchReg>,
}

struct Inner {
    cfg: ClientConfig,
    st: RefCell<State>,
    connecting: glommio::sync::Semaphore,
}

/// A one-shot watch: resolves with the event that fired it (None if the client went away).
pub struct Watch {
    rx: LocalReceiver<WatchEvent>,
}

impl Watch {
    pub async fn wait(self) -> Option<WatchEvent> {
        self.rx.recv().await
    }
}

/// A connection to the coordinator ensemble with one session.
#[derive(Clone)]
pub struct Client {
    inner: Rc<Inner>,
}

fn fire(st: &mut State, ev: &WatchEvent) {
    let kinds: &[WatchKind] = match ev.kind {
        EventKind::NodeCreated | EventKind::NodeDataChanged => &[WatchKind::Data],
        EventKind::NodeDeleted => &[WatchKind::Data, WatchKind::Child],
        EventKind::NodeChildrenChanged => &[WatchKind::Child],
    };
    st.watches.retain(|w| {
        if w.path == ev.path && kinds.contains(&w.kind) {
            let _ = w.tx.try_send(ev.clone());
            false
        } else {
            true
        }
    });
}

impl Client {
    /// Connects to the leader among `cfg.servers` and opens a session.
    pub async fn connect(cfg: ClientConfig) -> Result<Client, ClientError> {
        let c = Client {
            inner: Rc::new(Inner {
                cfg,
                st: RefCell::new(State {
                    conn: None,
                    session: 0,
                    timeout_ms: 0,
                    expired: false,
                    closed: false,
                    next_xid: 1,
                    hint: None,
                    rotate: 0,
                    conn_addr: None,
                    avoid: None,
                    watches: Vec::new(),
                }),
                connecting: glommio::sync::Semaphore::new(1),
            }),
        };
        let deadline = Instant::now() + Duration::from_millis(c.inner.cfg.request_timeout_ms);
        c.ensure_conn(deadline).await?;
        if c.inner.cfg.session_timeout_ms > 0 {
            let weak = Rc::downgrade(&c.inner);
            glommio::spawn_local(async move {
                loop {
                    let period = match weak.upgrade() {
                        Some(i) => {
                            let st = i.st.borrow();
                            if st.closed || st.expired {
                                return;
                            }
                            (st.timeout_ms / 3).max(50)
                        }
                        None => return,
                    };
                    glommio::timer::sleep(Duration::from_millis(period)).await;
                    let Some(inner) = weak.upgrade() else { return };
                    let c = Client { inner };
                    let _ = c.call(Request::Ping).await;
                }
            })
            .detach();
        }
        Ok(c)
    }

    pub fn session_id(&self) -> u64 {
        self.inner.st.borrow().session
    }

    pub fn session_timeout_ms(&self) -> u64 {
        self.inner.st.borrow().timeout_ms
    }

    pub fn is_expired(&self) -> bool {
        self.inner.st.borrow().expired
    }

    fn kill_conn(&self) {
        if let Some(c) = self.inner.st.borrow_mut().conn.take() {
            c.kill();
        }
    }

    async fn ensure_conn(&self, deadline: Instant) -> Result<Rc<Conn>, ClientError> {
        loop {
            {
                let st = self.inner.st.borrow();
                if st.expired {
                    return Err(ZkError::SessionExpired.into());
                }
                if let Some(c) = &st.conn {
                    if c.alive.get() {
                        return Ok(c.clone());
                    }
                }
            }
            let permit = self
                .inner
                .connecting
                .acquire_permit(1)
                .await
                .map_err(|_| ClientError::NoServer(self.inner.cfg.servers.clone()))?;
            let need = match &self.inner.st.borrow().conn {
                Some(c) => !c.alive.get(),
                None => true,
            };
            if need {
                self.reconnect(deadline).await?;
            }
            drop(permit);
        }
    }

    async fn reconnect(&self, deadline: Instant) -> Result<(), ClientError> {
        let servers = self.inner.cfg.servers.clone();
        loop {
            let addr = {
                let mut st = self.inner.st.borrow_mut();
                match st.hint.take() {
                    Some(h) if st.avoid.as_ref() != Some(&h) => h,
                    _ => {
                        st.rotate = st.rotate.wrapping_add(1);
                        let mut a = servers[st.rotate % servers.len().max(1)].clone();
                        if servers.len() > 1 && st.avoid.as_ref() == Some(&a) {
                            st.rotate = st.rotate.wrapping_add(1);
                            a = servers[st.rotate % servers.len()].clone();
                        }
                        a
                    }
                }
            };
            match self.try_server(&addr, deadline).await {
                Ok(()) => return Ok(()),
                Err(ClientError::Zk(ZkError::SessionExpired)) => {
                    self.inner.st.borrow_mut().expired = true;
                    return Err(ZkError::SessionExpired.into());
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NoServer(servers));
            }
            glommio::timer::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn try_server(&self, addr: &str, deadline: Instant) -> Result<(), ClientError> {
        let io_err = |_| ClientError::NoServer(vec![addr.to_string()]);
        let sa: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| ClientError::NoServer(vec![addr.to_string()]))?;
        let mut stream = TcpStream::connect_timeout(sa, Duration::from_millis(500))
            .await
            .map_err(|_| ClientError::NoServer(vec![addr.to_string()]))?;
        let _ = stream.set_nodelay(true);
        let mut hello = Vec::new();
        encode_frame(&Hello::Client, &mut hello)
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        stream.write_all(&hello).await.map_err(io_err)?;
        let (r, w) = futures_lite::io::split(stream);
        let (bell_tx, bell_rx) = local_channel::new_bounded(1);
        let conn = Rc::new(Conn {
            buf: RefCell::new(Vec::new()),
            bell: bell_tx,
            pending: RefCell::new(HashMap::new()),
            alive: Cell::new(true),
        });
        glommio::spawn_local(conn_writer(w, conn.clone(), bell_rx)).detach();
        glommio::spawn_local(conn_reader(
            BufReader::with_capacity(64 * 1024, r),
            conn.clone(),
            Rc::downgrade(&self.inner),
        ))
        .detach();
        let (session, timeout) = {
            let st = self.inner.st.borrow();
            (st.session, self.inner.cfg.session_timeout_ms)
        };
        let req = if session != 0 {
            Request::AttachSession { session }
        } else if timeout > 0 {
            Request::CreateSession {
                timeout_ms: timeout,
            }
        } else {
            Request::Sync
        };
        let xid = self.xid();
        let rx = conn.send(xid, req).ok_or(ClientError::Timeout)?;
        // A server that accepts but does not answer (stopped, overloaded) is skipped quickly.
        let left = deadline.saturating_duration_since(Instant::now());
        let patience = Duration::from_millis((timeout / 2).max(1_000));
        let reply = recv_timeout(&rx, left.min(patience).max(Duration::from_millis(100))).await;
        match reply {
            Some((
                _,
                Ok(Response::Session {
                    session,
                    timeout_ms,
                }),
            )) => {
                let mut st = self.inner.st.borrow_mut();
                st.session = session;
                st.timeout_ms = timeout_ms;
                st.conn = Some(conn);
                st.conn_addr = Some(addr.to_string());
                st.avoid = None;
            }
            Some((_, Ok(Response::Synced))) => {
                let mut st = self.inner.st.borrow_mut();
                st.conn = Some(conn);
                st.conn_addr = Some(addr.to_string());
                st.avoid = None;
            }
            Some((_, Err(ZkError::NotLeader { leader_addr, .. }))) => {
                conn.kill();
                self.inner.st.borrow_mut().hint = leader_addr;
                return Err(ClientError::Timeout);
            }
            Some((_, Err(ZkError::SessionExpired))) => {
                conn.kill();
                return Err(ZkError::SessionExpired.into());
            }
            _ => {
                conn.kill();
                return Err(ClientError::Timeout);
            }
        }
        // Re-arm outstanding watches on the new server.
        let has_watches = !self.inner.st.borrow().watches.is_empty();
        if has_watches {
            let me = self.clone();
            glommio::spawn_local(async move { me.rearm_watches().await }).detach();
        }
        Ok(())
    }

    async fn rearm_watches(&self) {
        let regs: Vec<(WatchKind, String, Option<u64>)> = self
            .inner
            .st
            .borrow()
            .watches
            .iter()
            .map(|w| (w.kind, w.path.clone(), w.seen))
            .collect();
        for (kind, path, seen) in regs {
            let now = match kind {
                WatchKind::Data => self
                    .call(Request::Exists {
                        path: path.clone(),
                        watch: true,
                    })
                    .await
                    .map(|r| match r {
                        Response::Exists(s) => s.map(|s| s.mzxid),
                        _ => seen,
                    }),
                WatchKind::Child => match self
                    .call(Request::Children {
                        path: path.clone(),
                        watch: true,
                    })
                    .await
                {
                    Ok(Response::Children { stat, .. }) => Ok(Some(stat.pzxid)),
                    Err(ClientError::Zk(ZkError::NoNode)) => Ok(None),
                    Ok(_) => Ok(seen),
                    Err(e) => Err(e),
                },
            };
            let Ok(now) = now else { continue };
            if now != seen {
                let ev_kind = match (kind, seen, now) {
                    (WatchKind::Data, None, Some(_)) => EventKind::NodeCreated,
                    (_, Some(_), None) => EventKind::NodeDeleted,
                    (WatchKind::Data, _, _) => EventKind::NodeDataChanged,
                    (WatchKind::Child, _, _) => EventKind::NodeChildrenChanged,
                };
                let ev = WatchEvent {
                    kind: ev_kind,
                    path: path.clone(),
                    zxid: now.unwrap_or(0),
                };
                let mut st = self.inner.st.borrow_mut();
                fire(&mut st, &ev);
            }
        }
    }

    fn xid(&self) -> u64 {
        let mut st = self.inner.st.borrow_mut();
        let x = st.next_xid;
        st.next_xid += 1;
        x
    }

    /// Sends one request, following the leader and reconnecting as needed.
    pub async fn call(&self, req: Request) -> Result<Response, ClientError> {
        let deadline = Instant::now() + Duration::from_millis(self.inner.cfg.request_timeout_ms);
        loop {
            let conn = self.ensure_conn(deadline).await?;
            let xid = self.xid();
            let Some(rx) = conn.send(xid, req.clone()) else {
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            // A server silent for half the session timeout is presumed gone: drop the connection
            // and find the leader again, in time to re-attach before the session expires (a new
            // leader restarts every session's timeout when it is elected).
            let silence = {
                let t = self.inner.st.borrow().timeout_ms;
                if t > 0 {
                    Duration::from_millis(t / 2)
                } else {
                    left
                }
            };
            let reply = recv_timeout(&rx, left.min(silence)).await;
            if reply.is_none() && conn.alive.get() {
                conn.kill();
                let mut st = self.inner.st.borrow_mut();
                st.avoid = st.conn_addr.clone();
            }
            match reply {
                Some((_, Ok(resp))) => return Ok(resp),
                Some((_, Err(ZkError::NotLeader { leader_addr, .. }))) => {
                    conn.kill();
                    self.inner.st.borrow_mut().hint = leader_addr;
                    if Instant::now() >= deadline {
                        return Err(ClientError::Timeout);
                    }
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                Some((_, Err(ZkError::SessionExpired))) => {
                    self.inner.st.borrow_mut().expired = true;
                    return Err(ZkError::SessionExpired.into());
                }
                Some((_, Err(e))) => return Err(e.into()),
                None => {
                    if req.is_write() {
                        return Err(ZkError::ConnectionLoss.into());
                    }
                    if Instant::now() >= deadline {
                        return Err(ClientError::Timeout);
                    }
                }
            }
        }
    }

    fn unexpected(r: Response) -> ClientError {
        ClientError::Unexpected(format!("{r:?}"))
    }

    /// Creates a znode; returns its actual path (sequential nodes get a suffix).
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        match self
            .call(Request::Write(Op::Create {
                path: path.into(),
                data: data.to_vec(),
                mode,
            }))
            .await?
        {
            Response::Op(OpResult::Created { path, .. }) => Ok(path),
            r => Err(Self::unexpected(r)),
        }
    }

    pub async fn set(&self, path: &str, data: &[u8], version: i32) -> Result<Stat, ClientError> {
        match self
            .call(Request::Write(Op::Set {
                path: path.into(),
                data: data.to_vec(),
                version,
            }))
            .await?
        {
            Response::Op(OpResult::Set { stat }) => Ok(stat),
            r => Err(Self::unexpected(r)),
        }
    }

    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        match self
            .call(Request::Write(Op::Delete {
                path: path.into(),
                version,
            }))
            .await?
        {
            Response::Op(OpResult::Deleted) => Ok(()),
            r => Err(Self::unexpected(r)),
        }
    }

    pub async fn multi(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, ClientError> {
        match self.call(Request::Multi(ops)).await? {
            Response::Multi(r) => Ok(r),
            r => Err(Self::unexpected(r)),
        }
    }

    pub async fn get(&self, path: &str) -> Result<(Vec<u8>, Stat), ClientError> {
        match self
            .call(Request::Get {
                path: path.into(),
                watch: false,
            })
            .await?
        {
            Response::Data { data, stat } => Ok((data, stat)),
            r => Err(Self::unexpected(r)),
        }
    }

    fn add_watch(&self, kind: WatchKind, path: &str, seen: Option<u64>) -> Watch {
        let (tx, rx) = local_channel::new_bounded(1);
        self.inner.st.borrow_mut().watches.push(WatchReg {
            kind,
            path: path.to_string(),
            seen,
            tx,
        });
        Watch { rx }
    }

    /// Reads a znode and leaves a one-shot data watch on it.
    pub async fn get_watch(&self, path: &str) -> Result<(Vec<u8>, Stat, Watch), ClientError> {
        // Register locally first so an event racing the reply is not lost.
        let w = self.add_watch(WatchKind::Data, path, None);
        match self
            .call(Request::Get {
                path: path.into(),
                watch: true,
            })
            .await
        {
            Ok(Response::Data { data, stat }) => {
                self.set_seen(path, WatchKind::Data, Some(stat.mzxid));
                Ok((data, stat, w))
            }
            Ok(r) => Err(Self::unexpected(r)),
            Err(e) => {
                self.drop_watch(path, WatchKind::Data);
                Err(e)
            }
        }
    }

    pub async fn exists(&self, path: &str) -> Result<Option<Stat>, ClientError> {
        match self
            .call(Request::Exists {
                path: path.into(),
                watch: false,
            })
            .await?
        {
            Response::Exists(s) => Ok(s),
            r => Err(Self::unexpected(r)),
        }
    }

    /// Checks existence and leaves a one-shot watch (fires on create, change or delete).
    pub async fn exists_watch(&self, path: &str) -> Result<(Option<Stat>, Watch), ClientError> {
        let w = self.add_watch(WatchKind::Data, path, None);
        match self
            .call(Request::Exists {
                path: path.into(),
                watch: true,
            })
            .await
        {
            Ok(Response::Exists(s)) => {
                self.set_seen(path, WatchKind::Data, s.map(|s| s.mzxid));
                Ok((s, w))
            }
            Ok(r) => Err(Self::unexpected(r)),
            Err(e) => {
                self.drop_watch(path, WatchKind::Data);
                Err(e)
            }
        }
    }

    pub async fn children(&self, path: &str) -> Result<Vec<String>, ClientError> {
        match self
            .call(Request::Children {
                path: path.into(),
                watch: false,
            })
            .await?
        {
            Response::Children { names, .. } => Ok(names),
            r => Err(Self::unexpected(r)),
        }
    }

    /// Lists children and leaves a one-shot child watch.
    pub async fn children_watch(&self, path: &str) -> Result<(Vec<String>, Watch), ClientError> {
        let w = self.add_watch(WatchKind::Child, path, None);
        match self
            .call(Request::Children {
                path: path.into(),
                watch: true,
            })
            .await
        {
            Ok(Response::Children { names, stat }) => {
                self.set_seen(path, WatchKind::Child, Some(stat.pzxid));
                Ok((names, w))
            }
            Ok(r) => Err(Self::unexpected(r)),
            Err(e) => {
                self.drop_watch(path, WatchKind::Child);
                Err(e)
            }
        }
    }

    fn set_seen(&self, path: &str, kind: WatchKind, seen: Option<u64>) {
        let mut st = self.inner.st.borrow_mut();
        if let Some(w) = st
            .watches
            .iter_mut()
            .rev()
            .find(|w| w.path == path && w.kind == kind)
        {
            w.seen = seen;
        }
    }

    fn drop_watch(&self, path: &str, kind: WatchKind) {
        let mut st = self.inner.st.borrow_mut();
        if let Some(i) = st
            .watches
            .iter()
            .rposition(|w| w.path == path && w.kind == kind)
        {
            st.watches.remove(i);
        }
    }

    /// Waits until the connected server has applied everything committed before this call.
    pub async fn sync(&self) -> Result<(), ClientError> {
        self.call(Request::Sync).await.map(|_| ())
    }

    /// Status of the server this client is connected to.
    pub async fn status(&self) -> Result<NodeStatus, ClientError> {
        match self.call(Request::Status).await? {
            Response::Status(s) => Ok(s),
            r => Err(Self::unexpected(r)),
        }
    }

    /// Closes the session (its ephemeral nodes are deleted) and the connection.
    pub async fn close(&self) -> Result<(), ClientError> {
        let has_session = self.inner.st.borrow().session != 0;
        let r = if has_session {
            self.call(Request::CloseSession).await.map(|_| ())
        } else {
            Ok(())
        };
        self.inner.st.borrow_mut().closed = true;
        self.kill_conn();
        r
    }
}

async fn recv_timeout(rx: &LocalReceiver<Reply>, d: Duration) -> Option<Reply> {
    async { rx.recv().await }
        .or(async {
            glommio::timer::sleep(d).await;
            None
        })
        .await
}

async fn conn_writer<W: futures_lite::io::AsyncWrite + Unpin>(
    mut w: W,
    conn: Rc<Conn>,
    bell: LocalReceiver<()>,
) {
    while bell.recv().await.is_some() {
        if !conn.alive.get() {
            let _ = w.close().await;
            return;
        }
        let data = std::mem::take(&mut *conn.buf.borrow_mut());
        if !data.is_empty() && (w.write_all(&data).await.is_err() || w.flush().await.is_err()) {
            conn.kill();
            return;
        }
    }
}

async fn conn_reader<R: futures_lite::io::AsyncRead + Unpin>(
    mut r: R,
    conn: Rc<Conn>,
    inner: std::rc::Weak<Inner>,
) {
    let mut buf = Vec::new();
    while conn.alive.get() {
        match read_frame(&mut r, CLIENT_FRAME_BYTES_MAX, &mut buf).await {
            Ok(true) => {}
            _ => break,
        }
        let Ok(frame) = decode::<ServerFrame>(&buf) else {
            break;
        };
        match frame {
            ServerFrame::Reply {
                xid: 0,
                result: Err(ZkError::SessionExpired),
                ..
            } => {
                if let Some(i) = inner.upgrade() {
                    let mut st = i.st.borrow_mut();
                    st.expired = true;
                    st.watches.clear();
                }
            }
            ServerFrame::Reply { xid, zxid, result } => {
                let tx = conn.pending.borrow_mut().remove(&xid);
                if let Some(tx) = tx {
                    let _ = tx.try_send((zxid, result));
                }
            }
            ServerFrame::Event(ev) => {
                if let Some(i) = inner.upgrade() {
                    fire(&mut i.st.borrow_mut(), &ev);
                }
            }
        }
    }
    conn.kill();
}

/// Sends one request to exactly `addr` without a session or leader-following (status probes).
pub async fn request_once(
    addr: &str,
    req: Request,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let fut = async {
        let sa: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| ClientError::NoServer(vec![addr.to_string()]))?;
        let mut s = TcpStream::connect_timeout(sa, timeout)
            .await
            .map_err(|_| ClientError::NoServer(vec![addr.to_string()]))?;
        let mut out = Vec::new();
        encode_frame(&Hello::Client, &mut out)
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        encode_frame(&ClientFrame { xid: 1, req }, &mut out)
            .map_err(|e| ClientError::Unexpected(e.to_string()))?;
        s.write_all(&out)
            .await
            .map_err(|_| ClientError::NoServer(vec![addr.to_string()]))?;
        let mut buf = Vec::new();
        loop {
            match read_frame(&mut s, CLIENT_FRAME_BYTES_MAX, &mut buf).await {
                Ok(true) => {}
                _ => return Err(ZkError::ConnectionLoss.into()),
            }
            match decode::<ServerFrame>(&buf) {
                Ok(ServerFrame::Reply { xid: 1, result, .. }) => return result.map_err(Into::into),
                Ok(_) => continue,
                Err(e) => return Err(ClientError::Unexpected(e.to_string())),
            }
        }
    };
    fut.or(async {
        glommio::timer::sleep(timeout).await;
        Err(ClientError::Timeout)
    })
    .await
}
