//! The ZooKeeper client-protocol frontend of a coordinator node.
//!
//! Owns: ZooKeeper connections (handshake, per-connection request order, reply batching), the
//! mapping of jute requests onto `proto::Request`s, ZooKeeper session passwords and negotiated
//! timeouts, per-connection auth ids (`addAuth digest`), ZooKeeper watches (one-shot data/exist/
//! child, persistent, persistent-recursive) and their notifications, reads served from the local
//! tree, and forwarding writes to the leader when this node follows.
//! Must not: decide anything the replicated state decides (ACL checks on writes, versions,
//! sequence numbers, containers and TTLs are `tree::apply`'s), block, or hold the `Core` borrow
//! across an `.await`.
//!
//! Consistency is ZooKeeper's: reads are served from this node's applied tree (sequentially
//! consistent; `sync` catches up with the leader), writes are linearized by Raft, and each
//! connection sees its replies in request order. A write's reply is held until this node has
//! applied it, so a read that follows it on the same connection sees it. Reads queued behind a
//! pending write run when it completes; writes queued behind such a read are sent after it ran.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

use futures_lite::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::TcpStream;

use super::four_letter;
use super::jute::{
    self, begin_frame, end_frame, put_buffer, put_i32, put_str, put_vec, write_reply_with,
    ClientInfo, Code, ConnectRequest, ConnectResponse, Jute, JuteError, MultiOp, MultiResult,
};
use crate::node::{Node, Tag};
use crate::proto::{
    encode_frame, parent_of, Acl, ClientFrame, CreateMode, EventKind, Hello, Op, OpResult, Request,
    Response, ServerFrame, Stat, WatchEvent, ZkError, CLIENT_FRAME_BYTES_MAX, PERM_ADMIN,
    PERM_READ,
};
use crate::server::{client_writer, now_ms, read_frame, Core, Outbox};
use crate::tree::DataTree;

/// Tags of requests submitted by the ZooKeeper frontend have this bit set (the native
/// protocol's tags count up from 1 and never reach it).
pub(crate) const ZK_TAG: Tag = 1 << 63;
/// How often sessions active on this node are reported to the leader.
const TOUCH_EVERY_MS: u64 = 100;
/// How long a write waits for a leader to be known before it fails with CONNECTIONLOSS.
const HOLD_MS_MAX: u64 = 10_000;
/// How long a handshake may wait (session creation, attach, catching up to the client's zxid).
const CONNECT_WAIT_MS: u64 = 10_000;
/// How far past the leader's applied index a reconnecting client's zxid may be and still be
/// waited for (rather than refused): followers apply at most a round ahead of the leader.
const CONNECT_ZXID_SLACK: u64 = 4096;
/// Longest TTL ZooKeeper accepts (40 bits of milliseconds).
const TTL_MS_MAX: i64 = 0xFF_FFFF_FFFF;

/// Settings of the frontend (from `ServerConfig`).
#[derive(Debug, Clone, Copy)]
pub struct ZkSettings {
    pub min_session_timeout_ms: u64,
    pub max_session_timeout_ms: u64,
}

enum SlotState {
    /// Submitted; the reply comes back under this tag.
    Waiting(Tag),
    /// Reply encoded, waiting for earlier replies.
    Ready(Vec<u8>),
    /// A read to run when it reaches the head of the queue.
    Read(jute::Request),
    /// A write to submit once no read is queued before it.
    Unsent(Tag, Request),
}

struct Slot {
    xid: i32,
    state: SlotState,
}

struct ZkConn {
    outbox: Rc<Outbox>,
    session: u64,
    /// The client's address (for the `stat` four-letter word).
    peer: Option<SocketAddr>,
    /// `scheme:id` of every identity this connection proved (always `ip:<addr>`).
    auth: Rc<Vec<String>>,
    queue: VecDeque<Slot>,
    /// `Read` and `Unsent` slots in `queue` (so the common case never scans it).
    reads_queued: usize,
    unsent: usize,
    /// closeSession answered: close the socket once the queue is empty.
    close_when_drained: bool,
    /// A closeSession is in flight: the session's end must not close us before its reply.
    closing: bool,
}

impl ZkConn {
    /// Where the request submitted under `tag` waits in the queue.
    fn slot_of(&self, tag: Tag) -> Option<usize> {
        self.queue
            .iter()
            .position(|s| matches!(s.state, SlotState::Waiting(t) if t == tag))
    }

    /// Drops the slot at `at` and everything after it (they will get no reply).
    fn truncate(&mut self, at: usize) {
        self.queue.truncate(at);
        let (mut reads, mut unsent) = (0, 0);
        for s in &self.queue {
            match s.state {
                SlotState::Read(_) => reads += 1,
                SlotState::Unsent(..) => unsent += 1,
                _ => {}
            }
        }
        (self.reads_queued, self.unsent) = (reads, unsent);
    }
}

/// What a submitted request's reply completes.
enum Wait {
    Op {
        conn: u64,
        xid: i32,
        op: i32,
        /// Opcodes of a multi's ops (to shape each result), empty otherwise.
        multi_ops: Vec<i32>,
        /// Path echoed by a sync reply.
        path: String,
    },
    Connect {
        tx: LocalSender<ConnectOutcome>,
        passwd: Vec<u8>,
        attach: bool,
        last_zxid_seen: u64,
    },
    /// No one waits (session touches).
    Nothing,
}

pub(crate) enum ConnectOutcome {
    Ok {
        session: u64,
        timeout_ms: u64,
        passwd: Vec<u8>,
    },
    Expired,
    /// The outcome is unknown (no leader, lost connection): the client should try again.
    Retry,
}

struct Forwarder {
    gen: u64,
    leader: u64,
    outbox: Rc<Outbox>,
    inflight: HashSet<Tag>,
}

/// A matched reply waiting for this node to apply its zxid: (tag, waiter, zxid, result).
type Parked = (Tag, Wait, u64, Result<Response, ZkError>);

/// The frontend's state; lives in the server's `Core`.
pub(crate) struct ZkFront {
    settings: ZkSettings,
    conns: HashMap<u64, ZkConn>,
    next_conn: u64,
    next_tag: Tag,
    waits: HashMap<Tag, Wait>,
    /// Replies (already matched) held until this node has applied `zxid`.
    apply_wait: BTreeMap<u64, Vec<Parked>>,
    data_watches: HashMap<String, HashSet<u64>>,
    child_watches: HashMap<String, HashSet<u64>>,
    persistent: HashMap<String, HashSet<u64>>,
    recursive: HashMap<String, HashSet<u64>>,
    touched: HashSet<u64>,
    touched_at_ms: u64,
    /// Requests waiting for a leader to be known: (tag, session, request, since).
    held: Vec<(Tag, u64, Request, u64)>,
    fwd: Option<Forwarder>,
    next_gen: u64,
    /// Requests received on this node's connections (for `srvr` / `mntr`).
    received: u64,
    pub(crate) core: Weak<RefCell<Core>>,
}

/// Maps a replicated-model error to ZooKeeper's code.
pub fn code_of(e: &ZkError) -> Code {
    match e {
        ZkError::NoNode => Code::NoNode,
        ZkError::NodeExists => Code::NodeExists,
        ZkError::BadVersion => Code::BadVersion,
        ZkError::NotEmpty => Code::NotEmpty,
        ZkError::NoChildrenForEphemerals => Code::NoChildrenForEphemerals,
        ZkError::BadArguments(_) => Code::BadArguments,
        ZkError::SessionExpired => Code::SessionExpired,
        ZkError::NotLeader { .. } | ZkError::ConnectionLoss => Code::ConnectionLoss,
        ZkError::MultiFailed { error, .. } => code_of(error),
        ZkError::Membership(_) => Code::SystemError,
        ZkError::NoAuth => Code::NoAuth,
        ZkError::InvalidAcl => Code::InvalidAcl,
        ZkError::NoWatcher => Code::NoWatcher,
    }
}

fn jstat(s: &Stat) -> jute::Stat {
    jute::Stat {
        czxid: s.czxid as i64,
        mzxid: s.mzxid as i64,
        ctime: s.ctime_ms as i64,
        mtime: s.mtime_ms as i64,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner as i64,
        data_length: s.data_length as i32,
        num_children: s.num_children as i32,
        pzxid: s.pzxid as i64,
    }
}

fn jacl(acl: &[Acl]) -> Vec<jute::Acl> {
    if acl.is_empty() {
        return vec![jute::Acl {
            perms: jute::perms::ALL,
            id: jute::Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }];
    }
    acl.iter()
        .map(|a| jute::Acl {
            perms: a.perms,
            id: jute::Id {
                scheme: a.scheme.clone(),
                id: a.id.clone(),
            },
        })
        .collect()
}

/// `user:base64(sha1(user:password))`, ZooKeeper's digest id for `user:password`.
pub fn digest_id(user_password: &str) -> Option<String> {
    use base64::Engine as _;
    use sha1::Digest as _;
    let (user, _) = user_password.split_once(':')?;
    let hash = sha1::Sha1::digest(user_password.as_bytes());
    Some(format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    ))
}

/// Checks and resolves a client's ACL list (`auth` scheme → the caller's digest ids).
fn resolve_acl(acl: &[jute::Acl], auth: &[String]) -> Result<Vec<Acl>, ZkError> {
    if acl.is_empty() {
        return Err(ZkError::InvalidAcl);
    }
    let mut out = Vec::with_capacity(acl.len());
    for a in acl {
        if a.perms & !jute::perms::ALL != 0 {
            return Err(ZkError::InvalidAcl);
        }
        match a.id.scheme.as_str() {
            "world" if a.id.id == "anyone" => {}
            "digest" if a.id.id.contains(':') => {}
            "ip" if !a.id.id.is_empty() => {}
            "auth" => {
                let mut any = false;
                for id in auth.iter().filter_map(|x| x.strip_prefix("digest:")) {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        scheme: "digest".into(),
                        id: id.to_string(),
                    });
                }
                if !any {
                    return Err(ZkError::InvalidAcl);
                }
                continue;
            }
            _ => return Err(ZkError::InvalidAcl),
        }
        out.push(Acl {
            perms: a.perms,
            scheme: a.id.scheme.clone(),
            id: a.id.id.clone(),
        });
    }
    Ok(out)
}

fn create_op(
    op: i32,
    r: jute::CreateRequest,
    ttl: i64,
    auth: &[String],
) -> Result<(Op, i32), ZkError> {
    let mode = jute::CreateMode::from_flags(r.flags)
        .ok_or_else(|| ZkError::BadArguments(format!("unknown create flags {}", r.flags)))?;
    let ttl_op = op == jute::op::CREATE_TTL;
    if ttl_op != mode.is_ttl() || (ttl_op && !(1..=TTL_MS_MAX).contains(&ttl)) {
        return Err(ZkError::BadArguments(
            "TTL mode and TTL must go together".into(),
        ));
    }
    if (op == jute::op::CREATE_CONTAINER) != (mode == CreateMode::Container) {
        return Err(ZkError::BadArguments(
            "containers are created with createContainer".into(),
        ));
    }
    let acl = resolve_acl(&r.acl, auth)?;
    Ok((
        Op::CreateZk {
            path: r.path,
            data: r.data,
            mode,
            acl,
            ttl_ms: ttl.max(0) as u64,
        },
        op,
    ))
}

/// Converts one write op of a multi (or a single write) to the model's `Op`.
fn write_op(m: MultiOp, auth: &[String]) -> Result<(Op, i32), ZkError> {
    Ok(match m {
        MultiOp::Create(r) => create_op(jute::op::CREATE, r, 0, auth)?,
        MultiOp::Create2(r) => create_op(jute::op::CREATE2, r, 0, auth)?,
        MultiOp::CreateContainer(r) => create_op(jute::op::CREATE_CONTAINER, r, 0, auth)?,
        MultiOp::CreateTtl(r) => {
            let ttl = r.ttl;
            let c = jute::CreateRequest {
                path: r.path,
                data: r.data,
                acl: r.acl,
                flags: r.flags,
            };
            create_op(jute::op::CREATE_TTL, c, ttl, auth)?
        }
        MultiOp::Delete(r) => (
            Op::Delete {
                path: r.path,
                version: r.version,
            },
            jute::op::DELETE,
        ),
        MultiOp::SetData(r) => (
            Op::Set {
                path: r.path,
                data: r.data,
                version: r.version,
            },
            jute::op::SET_DATA,
        ),
        MultiOp::Check(r) => (
            Op::Check {
                path: r.path,
                version: r.version,
            },
            jute::op::CHECK,
        ),
        MultiOp::GetChildren(_) | MultiOp::GetData(_) => {
            return Err(ZkError::BadArguments("read op in a write multi".into()))
        }
    })
}

fn op_result(op: i32, r: &OpResult) -> MultiResult {
    match r {
        OpResult::Created { path, .. } if op == jute::op::CREATE => {
            MultiResult::Create(path.clone())
        }
        OpResult::Created { path, stat } => MultiResult::Create2 {
            op,
            path: path.clone(),
            stat: jstat(stat),
        },
        OpResult::Set { stat } | OpResult::AclSet { stat } => MultiResult::SetData(jstat(stat)),
        OpResult::Deleted => MultiResult::Delete,
        OpResult::Checked => MultiResult::Check,
    }
}

/// Appends a reply frame for a write's result.
fn encode_write_reply(
    out: &mut Vec<u8>,
    xid: i32,
    zxid: u64,
    op: i32,
    multi_ops: &[i32],
    path: &str,
    result: &Result<Response, ZkError>,
) {
    let err = match result {
        Ok(_) => 0,
        // A failed multi answers OK with one error result per op.
        Err(ZkError::MultiFailed { .. }) if op == jute::op::MULTI => 0,
        Err(e) => code_of(e).as_i32(),
    };
    write_reply_with(out, xid, zxid as i64, |out| {
        if err == 0 {
            write_reply_body(out, op, multi_ops, path, result);
        }
        err
    });
}

/// The body of a successful write's reply (or of a failed multi's, which answers OK).
fn write_reply_body(
    out: &mut Vec<u8>,
    op: i32,
    multi_ops: &[i32],
    path: &str,
    result: &Result<Response, ZkError>,
) {
    match result {
        Ok(Response::Op(r)) => match (op, r) {
            (jute::op::CREATE, OpResult::Created { path, .. }) => put_str(out, path),
            (_, OpResult::Created { path, stat }) => {
                put_str(out, path);
                jstat(stat).write(out);
            }
            (_, OpResult::Set { stat } | OpResult::AclSet { stat }) => jstat(stat).write(out),
            (_, OpResult::Deleted | OpResult::Checked) => {}
        },
        Ok(Response::Multi(results)) => {
            let rs: Vec<MultiResult> = results
                .iter()
                .zip(multi_ops)
                .map(|(r, op)| op_result(*op, r))
                .collect();
            jute::Response::Multi(rs).write(out);
        }
        Err(ZkError::MultiFailed { index, error }) => {
            let failed = *index as usize;
            let code = code_of(error).as_i32();
            let rs: Vec<MultiResult> = (0..multi_ops.len())
                .map(|i| {
                    MultiResult::Error(match i.cmp(&failed) {
                        std::cmp::Ordering::Less => 0,
                        std::cmp::Ordering::Equal => code,
                        std::cmp::Ordering::Greater => Code::RuntimeInconsistency.as_i32(),
                    })
                })
                .collect();
            jute::Response::Multi(rs).write(out);
        }
        Ok(Response::Synced) => put_str(out, path),
        // closeSession and anything bodyless.
        _ => {}
    }
}

fn ancestors_or_self(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = Some(path);
    std::iter::from_fn(move || {
        let p = cur?;
        cur = if p == "/" { None } else { Some(parent_of(p)) };
        Some(p)
    })
}

impl ZkFront {
    pub(crate) fn new(settings: ZkSettings) -> Self {
        ZkFront {
            settings,
            conns: HashMap::new(),
            next_conn: 1,
            next_tag: 1,
            waits: HashMap::new(),
            apply_wait: BTreeMap::new(),
            data_watches: HashMap::new(),
            child_watches: HashMap::new(),
            persistent: HashMap::new(),
            recursive: HashMap::new(),
            touched: HashSet::new(),
            touched_at_ms: 0,
            held: Vec::new(),
            fwd: None,
            next_gen: 1,
            received: 0,
            core: Weak::new(),
        }
    }

    fn tag(&mut self) -> Tag {
        let t = ZK_TAG | self.next_tag;
        self.next_tag += 1;
        t
    }

    /// Submits to the local node when it leads, else forwards to the leader, else holds.
    fn submit(&mut self, node: &mut Node, tag: Tag, session: u64, req: Request, now: u64) {
        if node.is_leader() {
            node.submit(tag, session, req, now);
            return;
        }
        let leader = node.leader();
        let addr = node.tree().members.get(&leader).cloned();
        match addr {
            Some(addr) if leader != 0 && leader != node.id() => {
                // Requests in flight to a previous leader have an unknown outcome.
                let applied = node.applied();
                for old in self.forward(leader, addr, tag, session, req) {
                    self.on_reply(node, old, applied, Err(ZkError::ConnectionLoss));
                }
            }
            _ => self.held.push((tag, session, req, now)),
        }
    }

    /// Sends `req` to the leader; returns the requests that were in flight to an older leader.
    fn forward(
        &mut self,
        leader: u64,
        addr: String,
        tag: Tag,
        session: u64,
        req: Request,
    ) -> Vec<Tag> {
        let mut orphans = Vec::new();
        if self.fwd.as_ref().is_some_and(|f| f.leader != leader) {
            orphans = self.drop_forwarder();
        }
        if self.fwd.is_none() {
            let (ob, bell) = Outbox::new();
            let mut hello = Vec::new();
            if encode_frame(&Hello::Client, &mut hello).is_err() {
                orphans.push(tag);
                return orphans;
            }
            ob.buf.borrow_mut().extend_from_slice(&hello);
            let gen = self.next_gen;
            self.next_gen += 1;
            self.fwd = Some(Forwarder {
                gen,
                leader,
                outbox: ob.clone(),
                inflight: HashSet::new(),
            });
            glommio::spawn_local(forwarder(self.core.clone(), gen, addr, ob, bell)).detach();
        }
        if let Some(f) = &mut self.fwd {
            let frame = ClientFrame {
                xid: tag,
                req: Request::AsSession {
                    session,
                    req: Box::new(req),
                },
            };
            f.inflight.insert(tag);
            f.outbox.push_frame(&frame);
        }
        orphans
    }

    fn drop_forwarder(&mut self) -> Vec<Tag> {
        match self.fwd.take() {
            Some(f) => {
                f.outbox.close();
                f.inflight.into_iter().collect()
            }
            None => Vec::new(),
        }
    }

    /// The forwarding connection `gen` ended: its requests' outcomes are unknown.
    pub(crate) fn forwarder_died(&mut self, node: &mut Node, gen: u64) {
        if self.fwd.as_ref().is_some_and(|f| f.gen == gen) {
            for tag in self.drop_forwarder() {
                self.on_reply(node, tag, 0, Err(ZkError::ConnectionLoss));
            }
        }
    }

    /// A reply for `tag` (from the local node or the leader).
    pub(crate) fn on_reply(
        &mut self,
        node: &mut Node,
        tag: Tag,
        zxid: u64,
        result: Result<Response, ZkError>,
    ) {
        if let Some(f) = &mut self.fwd {
            f.inflight.remove(&tag);
        }
        let Some(w) = self.waits.remove(&tag) else {
            return;
        };
        let mut target = zxid;
        if let Wait::Connect {
            last_zxid_seen, tx, ..
        } = &w
        {
            // `zxid` is the leader's applied index when it answered. A follower can apply a
            // committed entry before the leader does (the commit index reaches it in the same
            // round the leader applies), so a client coming from one may have seen a few entries
            // more: it waits until this node has applied them. A client further ahead saw another
            // cluster (or lies) and is refused at once, as ZooKeeper refuses a client ahead of
            // the server; one within the slack that never gets there times out the handshake.
            if result.is_ok() && *last_zxid_seen > zxid {
                if *last_zxid_seen - zxid > CONNECT_ZXID_SLACK {
                    let _ = tx.try_send(ConnectOutcome::Retry);
                    return;
                }
                target = *last_zxid_seen;
            }
        }
        if target > node.applied() {
            self.apply_wait
                .entry(target)
                .or_default()
                .push((tag, w, zxid, result));
            return;
        }
        self.complete(node, tag, w, zxid, result);
    }

    fn complete(
        &mut self,
        node: &mut Node,
        tag: Tag,
        w: Wait,
        zxid: u64,
        result: Result<Response, ZkError>,
    ) {
        match w {
            Wait::Nothing => {}
            Wait::Connect {
                tx, passwd, attach, ..
            } => {
                let outcome = match result {
                    Ok(Response::Session {
                        session,
                        timeout_ms,
                    }) => match node.tree().session(session) {
                        Some(s) if !attach || s.passwd == passwd => ConnectOutcome::Ok {
                            session,
                            timeout_ms,
                            passwd: s.passwd.clone(),
                        },
                        _ => ConnectOutcome::Expired,
                    },
                    Err(ZkError::SessionExpired) => ConnectOutcome::Expired,
                    _ => ConnectOutcome::Retry,
                };
                let _ = tx.try_send(outcome);
            }
            Wait::Op {
                conn,
                xid,
                op,
                multi_ops,
                path,
            } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                if matches!(
                    result,
                    Err(ZkError::ConnectionLoss | ZkError::NotLeader { .. })
                ) {
                    // A ZooKeeper server never answers CONNECTIONLOSS: it drops the connection,
                    // and the client reports connection loss for everything outstanding. The
                    // replies before this one still go out; this and everything after it do not.
                    if let Some(at) = c.slot_of(tag) {
                        c.truncate(at);
                    }
                    c.closing = true;
                    c.close_when_drained = true;
                    self.pump(node, conn);
                    return;
                }
                let encode = |out: &mut Vec<u8>| {
                    encode_write_reply(out, xid, zxid, op, &multi_ops, &path, &result)
                };
                match c.slot_of(tag) {
                    Some(0) => {
                        c.queue.pop_front();
                        encode(&mut c.outbox.buf.borrow_mut());
                    }
                    Some(at) => {
                        let mut bytes = Vec::new();
                        encode(&mut bytes);
                        c.queue[at].state = SlotState::Ready(bytes);
                    }
                    None => {}
                }
                if op == jute::op::CLOSE_SESSION {
                    // Closed once every earlier reply (and this one) has been written.
                    c.closing = false;
                    c.session = 0;
                    c.close_when_drained = true;
                }
                self.pump(node, conn);
            }
        }
    }

    /// Sends what is ready at the head of `conn`'s queue, runs reads that reached it, and
    /// submits writes no longer behind a read.
    fn pump(&mut self, node: &mut Node, conn: u64) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.queue.front_mut().map(|s| &mut s.state) {
                Some(SlotState::Ready(_)) => {
                    if let Some(Slot {
                        state: SlotState::Ready(b),
                        ..
                    }) = c.queue.pop_front()
                    {
                        c.outbox.buf.borrow_mut().extend_from_slice(&b);
                    }
                }
                Some(SlotState::Read(_)) => {
                    if let Some(Slot {
                        xid,
                        state: SlotState::Read(req),
                    }) = c.queue.pop_front()
                    {
                        c.reads_queued -= 1;
                        self.exec_read(node, conn, xid, req);
                    }
                }
                _ => break,
            }
        }
        let now = now_ms();
        let mut submit = Vec::new();
        if let Some(c) = self.conns.get_mut(&conn) {
            if c.unsent > 0 {
                for s in c.queue.iter_mut() {
                    match &mut s.state {
                        SlotState::Read(_) => break,
                        SlotState::Unsent(tag, _) => {
                            let tag = *tag;
                            let st = std::mem::replace(&mut s.state, SlotState::Waiting(tag));
                            if let SlotState::Unsent(_, req) = st {
                                submit.push((tag, req));
                            }
                        }
                        _ => {}
                    }
                }
                c.unsent -= submit.len();
            }
            if c.close_when_drained && c.queue.is_empty() {
                c.outbox.close();
            }
            c.outbox.ring();
            let session = c.session;
            for (tag, req) in submit {
                self.submit(node, tag, session, req, now);
            }
        }
    }

    /// Registers a new connection whose handshake succeeded.
    /// What the four-letter words report about this node now.
    fn stats(&self, node: &Node) -> four_letter::ServerStats {
        let mode = if node.leader() == 0 {
            four_letter::Mode::NotServing
        } else if node.tree().members.len() <= 1 {
            four_letter::Mode::Standalone
        } else if node.is_leader() {
            four_letter::Mode::Leader
        } else {
            four_letter::Mode::Follower
        };
        let outstanding: usize = self.conns.values().map(|c| c.queue.len()).sum();
        let watches = [
            &self.data_watches,
            &self.child_watches,
            &self.persistent,
            &self.recursive,
        ]
        .iter()
        .flat_map(|table| table.values())
        .map(HashSet::len)
        .sum();
        four_letter::ServerStats {
            version: format!("weir-{}", env!("CARGO_PKG_VERSION")),
            mode: Some(mode),
            zxid: node.applied(),
            znodes: node.tree().node_count(),
            ephemerals: node.tree().ephemeral_count(),
            connections: self.conns.len(),
            received: self.received,
            sent: self.received.saturating_sub(outstanding as u64),
            outstanding,
            watches,
            clients: self
                .conns
                .values()
                .filter_map(|c| c.peer.map(|p| p.to_string()))
                .collect(),
        }
    }

    fn add_conn(&mut self, session: u64, outbox: Rc<Outbox>, peer: Option<SocketAddr>) -> u64 {
        // A session lives on one connection: an older one on this node is closed (moved).
        let old: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session == session)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.remove_conn(id);
        }
        let id = self.next_conn;
        self.next_conn += 1;
        let mut auth = Vec::new();
        if let Some(p) = peer {
            auth.push(format!("ip:{}", p.ip()));
        }
        self.conns.insert(
            id,
            ZkConn {
                outbox,
                session,
                peer,
                auth: Rc::new(auth),
                queue: VecDeque::new(),
                reads_queued: 0,
                unsent: 0,
                close_when_drained: false,
                closing: false,
            },
        );
        self.touched.insert(session);
        id
    }

    pub(crate) fn remove_conn(&mut self, id: u64) {
        if let Some(c) = self.conns.remove(&id) {
            c.outbox.close();
        }
        for t in [
            &mut self.data_watches,
            &mut self.child_watches,
            &mut self.persistent,
            &mut self.recursive,
        ] {
            t.retain(|_, set| {
                set.remove(&id);
                !set.is_empty()
            });
        }
    }

    /// Starts a handshake: creates a session, or re-attaches one (any node, with password).
    fn connect(
        &mut self,
        node: &mut Node,
        req: &ConnectRequest,
        tx: LocalSender<ConnectOutcome>,
        now: u64,
    ) {
        let tag = self.tag();
        let timeout_ms = (req.timeout_ms.max(0) as u64).clamp(
            self.settings.min_session_timeout_ms,
            self.settings.max_session_timeout_ms,
        );
        let last_zxid_seen = req.last_zxid_seen.max(0) as u64;
        if req.session_id == 0 {
            let passwd = random_passwd();
            self.waits.insert(
                tag,
                Wait::Connect {
                    tx,
                    passwd: passwd.clone(),
                    attach: false,
                    last_zxid_seen,
                },
            );
            self.submit(
                node,
                tag,
                0,
                Request::ZkCreateSession { timeout_ms, passwd },
                now,
            );
        } else {
            let session = req.session_id as u64;
            self.waits.insert(
                tag,
                Wait::Connect {
                    tx,
                    passwd: req.passwd.clone(),
                    attach: true,
                    last_zxid_seen,
                },
            );
            self.submit(node, tag, 0, Request::AttachSession { session }, now);
        }
    }

    /// Handles one request frame of connection `conn`. Returns false to close the connection.
    fn handle(&mut self, node: &mut Node, conn: u64, body: &[u8]) -> bool {
        let (hdr, req) = match jute::Request::decode(body) {
            Ok(x) => x,
            Err(JuteError::UnknownOpCode(_)) => {
                let Ok(h) = jute::RequestHeader::from_bytes(body) else {
                    return false;
                };
                self.reply_err(node, conn, h.xid, Code::Unimplemented);
                return true;
            }
            Err(e) => {
                tracing::debug!("zk: undecodable request: {e}");
                return false;
            }
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if c.closing || c.session == 0 {
            return true;
        }
        self.received += 1;
        self.touched.insert(c.session);
        let (xid, op) = (hdr.xid, hdr.op);
        // One write op: no per-op codes (those are a multi's), no path to remember.
        let single = |auth: Vec<String>, o: Op| {
            (
                Request::ZkWrite {
                    auth,
                    ops: vec![o],
                    multi: false,
                },
                Vec::new(),
                String::new(),
            )
        };
        let action: Result<(Request, Vec<i32>, String), ZkError> = match req {
            jute::Request::Create(r)
            | jute::Request::Create2(r)
            | jute::Request::CreateContainer(r) => {
                let auth = c.auth.to_vec();
                create_op(op, r, 0, &auth).map(|(o, _)| single(auth, o))
            }
            jute::Request::CreateTtl(r) => {
                let auth = c.auth.to_vec();
                write_op(MultiOp::CreateTtl(r), &auth).map(|(o, _)| single(auth, o))
            }
            jute::Request::Delete(r) => Ok(single(
                c.auth.to_vec(),
                Op::Delete {
                    path: r.path,
                    version: r.version,
                },
            )),
            jute::Request::SetData(r) => Ok(single(
                c.auth.to_vec(),
                Op::Set {
                    path: r.path,
                    data: r.data,
                    version: r.version,
                },
            )),
            jute::Request::Check(r) => Ok(single(
                c.auth.to_vec(),
                Op::Check {
                    path: r.path,
                    version: r.version,
                },
            )),
            jute::Request::SetAcl(r) => {
                let auth = c.auth.to_vec();
                resolve_acl(&r.acl, &auth).map(|acl| {
                    single(
                        auth,
                        Op::SetAcl {
                            path: r.path,
                            acl,
                            version: r.version,
                        },
                    )
                })
            }
            jute::Request::Multi(ops) => {
                let auth = c.auth.to_vec();
                let n = ops.len();
                let mut model = Vec::with_capacity(n);
                let mut codes = Vec::with_capacity(n);
                let mut bad = None;
                for (i, m) in ops.into_iter().enumerate() {
                    match write_op(m, &auth) {
                        Ok((o, code)) => {
                            model.push(o);
                            codes.push(code);
                        }
                        Err(e) => {
                            bad.get_or_insert((i, e));
                            codes.push(jute::op::ERROR);
                        }
                    }
                }
                if let Some((i, e)) = bad {
                    // Refused before submitting: answered like a failed multi.
                    let mut out = Vec::new();
                    let err = Err(ZkError::MultiFailed {
                        index: i as u32,
                        error: Box::new(e),
                    });
                    encode_write_reply(&mut out, xid, node.applied(), op, &codes, "", &err);
                    self.reply_bytes(conn, out);
                    return true;
                }
                Ok((
                    Request::ZkWrite {
                        auth,
                        ops: model,
                        multi: true,
                    },
                    codes,
                    String::new(),
                ))
            }
            jute::Request::Sync(r) => Ok((Request::Sync, Vec::new(), r.path)),
            jute::Request::CloseSession => {
                c.closing = true;
                Ok((Request::CloseSession, Vec::new(), String::new()))
            }
            jute::Request::DeleteContainer(_) => {
                self.reply_err(node, conn, xid, Code::Unimplemented);
                return true;
            }
            jute::Request::Reconfig(_) => {
                self.reply_err(node, conn, xid, Code::ReconfigDisabled);
                return true;
            }
            jute::Request::Auth(a) => {
                // Takes effect at once (later writes carry it); the reply keeps its place.
                let id = (a.scheme == "digest")
                    .then(|| std::str::from_utf8(&a.auth).ok().and_then(digest_id))
                    .flatten();
                match id {
                    Some(id) => {
                        let id = format!("digest:{id}");
                        if !c.auth.contains(&id) {
                            Rc::make_mut(&mut c.auth).push(id);
                        }
                        self.reply_err(node, conn, jute::xid::AUTH, Code::Ok);
                        return true;
                    }
                    None => {
                        self.reply_err(node, conn, jute::xid::AUTH, Code::AuthFailed);
                        return false;
                    }
                }
            }
            read => {
                if c.queue.is_empty() {
                    self.exec_read(node, conn, xid, read);
                    if let Some(c) = self.conns.get(&conn) {
                        c.outbox.ring();
                    }
                } else {
                    c.reads_queued += 1;
                    c.queue.push_back(Slot {
                        xid,
                        state: SlotState::Read(read),
                    });
                }
                return true;
            }
        };
        match action {
            Ok((req, multi_ops, path)) => {
                let tag = self.tag();
                let op = if matches!(req, Request::Sync) {
                    jute::op::SYNC
                } else {
                    op
                };
                self.waits.insert(
                    tag,
                    Wait::Op {
                        conn,
                        xid,
                        op,
                        multi_ops,
                        path,
                    },
                );
                let Some(c) = self.conns.get_mut(&conn) else {
                    return false;
                };
                if c.reads_queued > 0 {
                    c.unsent += 1;
                    c.queue.push_back(Slot {
                        xid,
                        state: SlotState::Unsent(tag, req),
                    });
                } else {
                    c.queue.push_back(Slot {
                        xid,
                        state: SlotState::Waiting(tag),
                    });
                    let session = c.session;
                    self.submit(node, tag, session, req, now_ms());
                }
                true
            }
            Err(e) => {
                self.reply_err(node, conn, xid, code_of(&e));
                true
            }
        }
    }

    /// A bodyless reply (`Code::Ok` or an error), in order.
    fn reply_err(&mut self, node: &Node, conn: u64, xid: i32, err: Code) {
        let mut out = Vec::with_capacity(20);
        let zxid = node.applied() as i64;
        jute::write_reply(&mut out, xid, zxid, err.as_i32(), &jute::Response::Empty);
        self.reply_bytes(conn, out);
    }

    /// Answers in order: straight to the socket if nothing is queued, else after the queue.
    fn reply_bytes(&mut self, conn: u64, bytes: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.queue.is_empty() {
            c.outbox.buf.borrow_mut().extend_from_slice(&bytes);
            c.outbox.ring();
        } else {
            c.queue.push_back(Slot {
                xid: 0,
                state: SlotState::Ready(bytes),
            });
        }
    }

    fn table(&mut self, kind: WatchTable) -> &mut HashMap<String, HashSet<u64>> {
        match kind {
            WatchTable::Data => &mut self.data_watches,
            WatchTable::Child => &mut self.child_watches,
            WatchTable::Persistent => &mut self.persistent,
            WatchTable::Recursive => &mut self.recursive,
        }
    }

    fn watch(&mut self, kind: WatchTable, path: &str, conn: u64) {
        let t = self.table(kind);
        match t.get_mut(path) {
            Some(s) => {
                s.insert(conn);
            }
            None => {
                t.insert(path.to_string(), HashSet::from([conn]));
            }
        }
    }

    fn has_watch(&self, kind: WatchTable, path: &str, conn: u64) -> bool {
        let t = match kind {
            WatchTable::Data => &self.data_watches,
            WatchTable::Child => &self.child_watches,
            WatchTable::Persistent => &self.persistent,
            WatchTable::Recursive => &self.recursive,
        };
        t.get(path).is_some_and(|s| s.contains(&conn))
    }

    fn unwatch(&mut self, kind: WatchTable, path: &str, conn: u64) -> bool {
        let t = self.table(kind);
        let Some(s) = t.get_mut(path) else {
            return false;
        };
        let had = s.remove(&conn);
        if s.is_empty() {
            t.remove(path);
        }
        had
    }

    /// Runs a request this node answers alone (reads, watches, ping) and writes its reply.
    fn exec_read(&mut self, node: &mut Node, conn: u64, xid: i32, req: jute::Request) {
        let zxid = node.applied() as i64;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let outbox = c.outbox.clone();
        let mut out = outbox.buf.borrow_mut();
        let xid = if matches!(req, jute::Request::Ping) {
            jute::xid::PING
        } else if matches!(
            req,
            jute::Request::SetWatches(_) | jute::Request::SetWatches2(_)
        ) {
            jute::xid::SET_WATCHES
        } else {
            xid
        };
        let mut fire = Vec::new();
        write_reply_with(&mut out, xid, zxid, |out| {
            match self.read_body(node.tree(), conn, req, out, &mut fire) {
                Ok(()) => 0,
                Err(e) => code_of(&e).as_i32(),
            }
        });
        for (kind, path) in fire {
            jute::write_event(&mut out, zxid, kind, &path);
        }
    }

    fn read_body(
        &mut self,
        tree: &DataTree,
        conn: u64,
        req: jute::Request,
        out: &mut Vec<u8>,
        fire: &mut Vec<(i32, String)>,
    ) -> Result<(), ZkError> {
        let (auth, session) = match self.conns.get(&conn) {
            Some(c) => (c.auth.clone(), c.session),
            None => return Err(ZkError::ConnectionLoss),
        };
        let remove = matches!(req, jute::Request::RemoveWatches(_));
        let with_stat = matches!(req, jute::Request::GetChildren2(_));
        let can = |path: &str, perm: i32| tree.check_acl(path, perm, Some(auth.as_slice()));
        let mut watch: Option<(WatchTable, String)> = None;
        match req {
            jute::Request::Ping => {}
            jute::Request::Exists(r) => {
                let st = tree.exists(&r.path)?;
                if r.watch {
                    watch = Some((WatchTable::Data, r.path));
                }
                match st {
                    Some(st) => jstat(&st).write(out),
                    None => {
                        if let Some((k, p)) = watch {
                            self.watch(k, &p, conn);
                        }
                        return Err(ZkError::NoNode);
                    }
                }
            }
            jute::Request::GetData(r) => {
                let (data, st) = tree.get(&r.path)?;
                can(&r.path, PERM_READ)?;
                put_buffer(out, data);
                jstat(&st).write(out);
                if r.watch {
                    watch = Some((WatchTable::Data, r.path));
                }
            }
            jute::Request::GetChildren(r) | jute::Request::GetChildren2(r) => {
                let n = tree.node(&r.path).ok_or(ZkError::NoNode)?;
                can(&r.path, PERM_READ)?;
                put_i32(out, n.children.len() as i32);
                for ch in &n.children {
                    put_str(out, ch);
                }
                if with_stat {
                    jstat(&tree.stat_of(n)).write(out);
                }
                if r.watch {
                    watch = Some((WatchTable::Child, r.path));
                }
            }
            jute::Request::GetAcl(r) => {
                let n = tree.node(&r.path).ok_or(ZkError::NoNode)?;
                can(&r.path, PERM_READ).or_else(|_| can(&r.path, PERM_ADMIN))?;
                put_vec(out, &jacl(&n.acl));
                jstat(&tree.stat_of(n)).write(out);
            }
            jute::Request::GetAllChildrenNumber(r) => {
                tree.node(&r.path).ok_or(ZkError::NoNode)?;
                can(&r.path, PERM_READ)?;
                put_i32(out, tree.descendant_count(&r.path) as i32);
            }
            jute::Request::GetEphemerals(r) => {
                let eph: Vec<String> = tree
                    .session(session)
                    .map(|s| {
                        s.ephemerals
                            .iter()
                            .filter(|p| p.starts_with(&r.path))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                put_vec(out, &eph);
            }
            jute::Request::WhoAmI => {
                let infos: Vec<ClientInfo> = auth
                    .iter()
                    .filter_map(|a| a.split_once(':'))
                    .map(|(s, u)| ClientInfo {
                        auth_scheme: s.to_string(),
                        user: u.to_string(),
                    })
                    .collect();
                put_vec(out, &infos);
            }
            jute::Request::MultiRead(ops) => {
                let mut results = Vec::with_capacity(ops.len());
                for m in ops {
                    let r = match m {
                        MultiOp::GetData(r) => tree.get(&r.path).and_then(|(d, st)| {
                            can(&r.path, PERM_READ)?;
                            Ok(MultiResult::GetData {
                                data: d.to_vec(),
                                stat: jstat(&st),
                            })
                        }),
                        MultiOp::GetChildren(r) => tree.children(&r.path).and_then(|(names, _)| {
                            can(&r.path, PERM_READ)?;
                            Ok(MultiResult::GetChildren(names))
                        }),
                        _ => Err(ZkError::BadArguments("write op in multiRead".into())),
                    };
                    results.push(r.unwrap_or_else(|e| MultiResult::Error(code_of(&e).as_i32())));
                }
                jute::Response::Multi(results).write(out);
            }
            jute::Request::AddWatch(r) => {
                crate::proto::validate_path(&r.path)?;
                let t = match r.mode {
                    jute::add_watch_mode::PERSISTENT => WatchTable::Persistent,
                    jute::add_watch_mode::PERSISTENT_RECURSIVE => WatchTable::Recursive,
                    _ => return Err(ZkError::BadArguments("unknown addWatch mode".into())),
                };
                watch = Some((t, r.path));
            }
            jute::Request::SetWatches(w) => {
                let w2 = jute::SetWatches2 {
                    relative_zxid: w.relative_zxid,
                    data_watches: w.data_watches,
                    exist_watches: w.exist_watches,
                    child_watches: w.child_watches,
                    persistent_watches: Vec::new(),
                    persistent_recursive_watches: Vec::new(),
                };
                self.set_watches(tree, conn, w2, fire);
            }
            jute::Request::SetWatches2(w) => self.set_watches(tree, conn, w, fire),
            jute::Request::RemoveWatches(r) | jute::Request::CheckWatches(r) => {
                let kinds: &[WatchTable] = match r.kind {
                    jute::watcher_type::CHILDREN => &[WatchTable::Child, WatchTable::Persistent],
                    jute::watcher_type::DATA => &[WatchTable::Data, WatchTable::Persistent],
                    _ => &[
                        WatchTable::Data,
                        WatchTable::Child,
                        WatchTable::Persistent,
                        WatchTable::Recursive,
                    ],
                };
                let found = kinds.iter().any(|k| self.has_watch(*k, &r.path, conn));
                if !found {
                    return Err(ZkError::NoWatcher);
                }
                if remove {
                    for k in kinds {
                        self.unwatch(*k, &r.path, conn);
                    }
                }
            }
            _ => return Err(ZkError::BadArguments("unexpected request".into())),
        }
        if let Some((k, p)) = watch {
            self.watch(k, &p, conn);
        }
        Ok(())
    }
}

impl ZkFront {
    /// Re-arms watches after a reconnect: fires at once those whose node changed since
    /// `relative_zxid` (ZooKeeper's rules), registers the rest.
    fn set_watches(
        &mut self,
        tree: &DataTree,
        conn: u64,
        w: jute::SetWatches2,
        fire: &mut Vec<(i32, String)>,
    ) {
        let rel = w.relative_zxid.max(0) as u64;
        for p in w.data_watches {
            match tree.exists(&p) {
                Ok(None) | Err(_) => fire.push((jute::event_type::NODE_DELETED, p)),
                Ok(Some(st)) if st.mzxid > rel => {
                    fire.push((jute::event_type::NODE_DATA_CHANGED, p))
                }
                Ok(Some(_)) => self.watch(WatchTable::Data, &p, conn),
            }
        }
        for p in w.exist_watches {
            match tree.exists(&p) {
                Ok(Some(_)) => fire.push((jute::event_type::NODE_CREATED, p)),
                _ => self.watch(WatchTable::Data, &p, conn),
            }
        }
        for p in w.child_watches {
            match tree.exists(&p) {
                Ok(None) | Err(_) => fire.push((jute::event_type::NODE_DELETED, p)),
                Ok(Some(st)) if st.pzxid > rel => {
                    fire.push((jute::event_type::NODE_CHILDREN_CHANGED, p))
                }
                Ok(Some(_)) => self.watch(WatchTable::Child, &p, conn),
            }
        }
        for p in w.persistent_watches {
            self.watch(WatchTable::Persistent, &p, conn);
        }
        for p in w.persistent_recursive_watches {
            self.watch(WatchTable::Recursive, &p, conn);
        }
    }

    /// A change applied on this node: notifies the connections watching it, once each.
    pub(crate) fn on_event(&mut self, ev: &WatchEvent) {
        if self.conns.is_empty() {
            return;
        }
        let kind = match ev.kind {
            EventKind::NodeCreated => jute::event_type::NODE_CREATED,
            EventKind::NodeDeleted => jute::event_type::NODE_DELETED,
            EventKind::NodeDataChanged => jute::event_type::NODE_DATA_CHANGED,
            EventKind::NodeChildrenChanged => jute::event_type::NODE_CHILDREN_CHANGED,
        };
        let mut to: Vec<u64> = Vec::new();
        let mut take = |t: &mut HashMap<String, HashSet<u64>>| {
            if let Some(s) = t.remove(&ev.path) {
                to.extend(s);
            }
        };
        match ev.kind {
            EventKind::NodeCreated | EventKind::NodeDataChanged => take(&mut self.data_watches),
            EventKind::NodeDeleted => {
                take(&mut self.data_watches);
                take(&mut self.child_watches);
            }
            EventKind::NodeChildrenChanged => take(&mut self.child_watches),
        }
        if let Some(s) = self.persistent.get(&ev.path) {
            to.extend(s.iter().copied());
        }
        if !self.recursive.is_empty() && ev.kind != EventKind::NodeChildrenChanged {
            for p in ancestors_or_self(&ev.path) {
                if let Some(s) = self.recursive.get(p) {
                    to.extend(s.iter().copied());
                }
            }
        }
        if to.is_empty() {
            return;
        }
        to.sort_unstable();
        to.dedup();
        for id in to {
            if let Some(c) = self.conns.get(&id) {
                jute::write_event(
                    &mut c.outbox.buf.borrow_mut(),
                    ev.zxid as i64,
                    kind,
                    &ev.path,
                );
                c.outbox.ring();
            }
        }
    }

    /// The session ended (closed or expired): its connections here are closed; a client that
    /// reconnects is told its session expired.
    pub(crate) fn on_session_closed(&mut self, session: u64) {
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.session == session && !c.closing)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.remove_conn(id);
        }
        self.touched.remove(&session);
    }

    /// After each Ready round: releases replies this node has now applied, reports session
    /// activity to the leader, retries held requests, and drops a forwarder to an old leader.
    pub(crate) fn after_drive(&mut self, node: &mut Node) {
        let applied = node.applied();
        while let Some(entry) = self.apply_wait.first_entry() {
            if *entry.key() > applied {
                break;
            }
            for (tag, w, zxid, result) in entry.remove() {
                self.complete(node, tag, w, zxid, result);
            }
        }
        let now = now_ms();
        if !node.is_leader() && node.leader() == 0 && !self.conns.is_empty() {
            // Not part of a quorum (raft forgets the leader when its election timer fires): like
            // a ZooKeeper server that lost its leader, stop serving so that clients move to a
            // node that is, instead of reading an ever staler tree here.
            let ids: Vec<u64> = self.conns.keys().copied().collect();
            for id in ids {
                self.remove_conn(id);
            }
        }
        if let Some(f) = &self.fwd {
            if node.is_leader() || (node.leader() != 0 && node.leader() != f.leader) {
                for tag in self.drop_forwarder() {
                    self.on_reply(node, tag, applied, Err(ZkError::ConnectionLoss));
                }
            }
        }
        if !self.held.is_empty() && (node.is_leader() || node.leader() != 0) {
            for (tag, session, req, since) in std::mem::take(&mut self.held) {
                if now.saturating_sub(since) > HOLD_MS_MAX {
                    self.on_reply(node, tag, applied, Err(ZkError::ConnectionLoss));
                } else {
                    self.submit(node, tag, session, req, since);
                }
            }
        }
        if !self.touched.is_empty() && now.saturating_sub(self.touched_at_ms) >= TOUCH_EVERY_MS {
            self.touched_at_ms = now;
            let sessions: Vec<u64> = self.touched.drain().collect();
            if node.is_leader() {
                node.touch(&sessions, now);
            } else if node.leader() != 0 {
                let tag = self.tag();
                self.waits.insert(tag, Wait::Nothing);
                self.submit(node, tag, 0, Request::Touch { sessions }, now);
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum WatchTable {
    Data,
    Child,
    Persistent,
    Recursive,
}

/// 16 random bytes from the OS (a session password).
fn random_passwd() -> Vec<u8> {
    let mut b = vec![0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b))
        .is_ok();
    if !ok {
        use sha1::Digest as _;
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        b.copy_from_slice(&sha1::Sha1::digest(seed.as_bytes())[..16]);
    }
    b
}

/// One connection to the leader's native port carrying this node's forwarded requests.
async fn forwarder(
    core: Weak<RefCell<Core>>,
    gen: u64,
    addr: String,
    ob: Rc<Outbox>,
    bell: LocalReceiver<()>,
) {
    let stream = match addr.parse::<SocketAddr>() {
        Ok(sa) => TcpStream::connect_timeout(sa, Duration::from_millis(500))
            .await
            .ok(),
        Err(_) => None,
    };
    let Some(stream) = stream else {
        if let Some(c) = core.upgrade() {
            let mut c = c.borrow_mut();
            let c = &mut *c;
            c.zk.forwarder_died(&mut c.node, gen);
        }
        return;
    };
    let _ = stream.set_nodelay(true);
    let (r, w) = futures_lite::io::split(stream);
    glommio::spawn_local(client_writer(w, ob, bell)).detach();
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut buf = Vec::new();
    while let Ok(true) = read_frame(&mut r, CLIENT_FRAME_BYTES_MAX, &mut buf).await {
        let Ok(frame) = crate::proto::decode::<ServerFrame>(&buf) else {
            break;
        };
        if let ServerFrame::Reply { xid, zxid, result } = frame {
            let Some(c) = core.upgrade() else {
                return;
            };
            let mut c = c.borrow_mut();
            let c = &mut *c;
            c.zk.on_reply(&mut c.node, xid, zxid, result);
        }
    }
    if let Some(c) = core.upgrade() {
        let mut c = c.borrow_mut();
        let c = &mut *c;
        c.zk.forwarder_died(&mut c.node, gen);
    }
}

/// Reads one jute frame (`[i32 big-endian length][body]`). `Ok(false)` on a clean end.
async fn read_jute_frame<R: futures_lite::io::AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
) -> std::io::Result<bool> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    let len = jute::frame_len(len)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))?;
    buf.resize(len, 0);
    r.read_exact(buf).await?;
    Ok(true)
}

/// Serves one ZooKeeper client connection.
pub(crate) async fn handle_zk_conn(core: Rc<RefCell<Core>>, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let (r, w) = futures_lite::io::split(stream);
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut first = [0u8; 4];
    if r.read_exact(&mut first).await.is_err() {
        return;
    }
    if let Some(word) = four_letter::Word::parse(first) {
        let text = {
            let c = core.borrow();
            four_letter::answer(word, &c.zk.stats(&c.node))
        };
        let mut w = w;
        let _ = w.write_all(text.as_bytes()).await;
        let _ = w.close().await;
        return;
    }
    let Ok(len) = jute::frame_len(first) else {
        return;
    };
    let mut buf = vec![0u8; len];
    if r.read_exact(&mut buf).await.is_err() {
        return;
    }
    let Ok(creq) = ConnectRequest::from_bytes(&buf) else {
        return;
    };
    let (ob, bell) = Outbox::for_client();
    glommio::spawn_local(client_writer(w, ob.clone(), bell)).detach();
    let (tx, rx) = local_channel::new_bounded(1);
    {
        let mut c = core.borrow_mut();
        let c = &mut *c;
        c.zk.connect(&mut c.node, &creq, tx, now_ms());
        c.ring();
    }
    let outcome = futures_lite::future::or(async { rx.recv().await }, async {
        glommio::timer::sleep(Duration::from_millis(CONNECT_WAIT_MS)).await;
        None
    })
    .await;
    let mut resp = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 0,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: creq.read_only.map(|_| false),
    };
    let session = match outcome {
        Some(ConnectOutcome::Ok {
            session,
            timeout_ms,
            passwd,
        }) => {
            resp.timeout_ms = timeout_ms as i32;
            resp.session_id = session as i64;
            resp.passwd = passwd;
            Some(session)
        }
        Some(ConnectOutcome::Expired) => None,
        // Unknown outcome: drop the connection; the client tries again (maybe elsewhere).
        Some(ConnectOutcome::Retry) | None => {
            ob.close();
            return;
        }
    };
    {
        let mut b = ob.buf.borrow_mut();
        let mark = begin_frame(&mut b);
        resp.write(&mut b);
        end_frame(&mut b, mark);
    }
    let Some(session) = session else {
        ob.close();
        return;
    };
    ob.ring();
    let id = core.borrow_mut().zk.add_conn(session, ob, peer);
    while let Ok(true) = read_jute_frame(&mut r, &mut buf).await {
        let mut c = core.borrow_mut();
        let c = &mut *c;
        if !c.zk.handle(&mut c.node, id, &buf) {
            break;
        }
        c.ring();
    }
    core.borrow_mut().zk.remove_conn(id);
}
