//! The sans-I/O coordinator node: raft-rs `RawNode` + the znode tree + client bookkeeping.
//!
//! Owns: turning client requests into proposals or read-index reads, the raft-rs Ready loop,
//! applying committed entries to the `DataTree`, matching applied entries to waiting requests,
//! session liveness on the leader (expiry proposals), and local snapshots / log compaction.
//! Must not: touch sockets, files, clocks or threads. Time comes in through `tick(now_ms)` and
//! `submit(.., now_ms)`; everything leaves through `Outputs`, which the driver (the glommio
//! server or the simulator) must act on in order: persist, then send, then deliver effects.

use std::collections::{BTreeMap, HashMap, VecDeque};

use protobuf::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, ConfState, Entry, EntryType, Message, Snapshot};
use raft::{RawNode, StateRole, Storage as _};

use crate::proto::{
    decode, encode, validate_path, CodecError, Command, CommandBody, NodeStatus, Op, Request,
    Response, WatchEvent, ZkError, DATA_BYTES_MAX,
};
use crate::store::{LogState, PersistBatch};
use crate::tree::DataTree;

/// Opaque handle the driver attaches to a request; returned with its reply.
pub type Tag = u64;

/// Tunables of one node. Tick length is the driver's business (`tick_ms` in the server).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: u64,
    pub election_tick: usize,
    pub heartbeat_tick: usize,
    /// Pins the randomized election timeout to exactly this many ticks (deterministic tests).
    pub pinned_election_tick: Option<usize>,
    /// Take a local snapshot and compact the log every this many applied entries — and only
    /// once the entries applied since the last snapshot hold at least `1/SNAPSHOT_LOG_FRACTION`
    /// of its size, so that snapshotting a large tree costs a bounded share of the write work.
    pub snapshot_entries: u64,
    /// Entries kept behind a local snapshot for followers that lag a little.
    pub compaction_lag_entries: u64,
    pub max_size_per_msg: u64,
    pub max_inflight_msgs: usize,
}

impl NodeConfig {
    pub fn new(id: u64) -> Self {
        NodeConfig {
            id,
            election_tick: 10,
            heartbeat_tick: 2,
            pinned_election_tick: None,
            snapshot_entries: 10_000,
            compaction_lag_entries: 5_000,
            max_size_per_msg: 1024 * 1024,
            max_inflight_msgs: 256,
        }
    }
}

/// Errors that stop a node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("state machine snapshot: {0}")]
    Snapshot(#[from] CodecError),
}

/// Something the driver must deliver after the batch is durable.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Reply {
        tag: Tag,
        zxid: u64,
        result: Result<Response, ZkError>,
    },
    /// A change that fires watches; comes before the reply to the write that caused it.
    Event(WatchEvent),
    /// The session is gone (closed or expired): drop its connections' watches.
    SessionClosed(u64),
    MembersChanged,
}

/// The result of one `Node::ready`.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Make these durable, in order, before sending `messages`.
    pub persist: Vec<PersistBatch>,
    pub messages: Vec<Message>,
    pub effects: Vec<Effect>,
    /// A local snapshot to encode: the driver runs `SnapshotJob::encode` wherever it likes
    /// (off the Raft core) and hands the bytes back with `Node::snapshot_encoded`.
    pub snapshot: Option<SnapshotJob>,
}

impl Outputs {
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && self.messages.is_empty()
            && self.effects.is_empty()
            && self.snapshot.is_none()
    }
}

/// The tree as of one applied index, to be encoded for a local snapshot. Encoding a large tree
/// takes long enough to miss heartbeats, so it is not done on the Raft core. The tree is a
/// copy-on-write clone: taking it is O(1), and the node's later writes copy only the few tree
/// nodes they touch while the job still holds them.
pub struct SnapshotJob {
    pub index: u64,
    tree: DataTree,
}

impl std::fmt::Debug for SnapshotJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotJob")
            .field("index", &self.index)
            .field("znodes", &self.tree.node_count())
            .finish()
    }
}

impl SnapshotJob {
    /// The encoded tree; takes time in proportion to the tree, callable from any thread.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        encode(&self.tree)
    }
}

/// A local snapshot being encoded by the driver.
struct SnapshotTaking {
    index: u64,
    term: u64,
    conf_state: ConfState,
}

/// Context carried in a ConfChange entry.
#[derive(serde::Serialize, serde::Deserialize)]
struct ConfContext {
    origin: u64,
    seq: u64,
    addr: String,
}

/// A snapshot is taken once the log since the last one holds at least 1/this of its bytes:
/// encoding the tree then costs at most this many times what writing the log did (a tree of
/// 360k small znodes is ~40 MB; at 10,000 entries per snapshot it was re-encoded every 0.3 s).
const SNAPSHOT_LOG_FRACTION: u64 = 4;

/// How long an expiry proposal may stay unapplied before it is proposed again.
const EXPIRE_RETRY_MS: u64 = 5_000;
/// How often the leader looks for expired TTL nodes.
const TTL_SCAN_MS: u64 = 500;

/// One coordinator replica.
pub struct Node {
    cfg: NodeConfig,
    raw: RawNode<LogState>,
    tree: DataTree,
    applied: u64,
    conf_state: ConfState,
    next_seq: u64,
    /// log index → (proposal seq, tag).
    pending_writes: BTreeMap<u64, (u64, Tag)>,
    reads_waiting: Vec<(Tag, Request)>,
    reads_inflight: BTreeMap<u64, Vec<(Tag, Request)>>,
    reads_ready: VecDeque<(u64, Vec<(Tag, Request)>)>,
    next_read_ctx: u64,
    now_ms: u64,
    is_leader: bool,
    /// Leader only: last time each session was heard from.
    session_seen: HashMap<u64, u64>,
    expiring: HashMap<u64, u64>,
    ttl_scanned_ms: u64,
    effects: Vec<Effect>,
    persist: Vec<PersistBatch>,
    /// At most one local snapshot is encoded at a time.
    snapshot_taking: Option<SnapshotTaking>,
    /// Bytes of the entries applied since the last snapshot was taken.
    applied_bytes_since_snapshot: u64,
    snapshot_job: Option<SnapshotJob>,
}

impl Node {
    /// Starts (or restarts) a node from its durable log state.
    pub fn new(cfg: NodeConfig, log: LogState) -> Result<Node, NodeError> {
        let tree: DataTree = if log.snapshot.data.is_empty() {
            DataTree::new()
        } else {
            decode(&log.snapshot.data)?
        };
        let applied = log.snapshot_index();
        let conf_state = log.snapshot.get_metadata().get_conf_state().clone();
        let mut rc = raft::Config {
            id: cfg.id,
            election_tick: cfg.election_tick,
            heartbeat_tick: cfg.heartbeat_tick,
            applied,
            max_size_per_msg: cfg.max_size_per_msg,
            max_inflight_msgs: cfg.max_inflight_msgs,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        if let Some(t) = cfg.pinned_election_tick {
            rc.election_tick = t.min(cfg.election_tick);
            rc.min_election_tick = t;
            rc.max_election_tick = t + 1;
        }
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let mut raw = RawNode::new(&rc, log, &logger)?;
        if conf_state.voters == [cfg.id] {
            // A single-node cluster elects itself at once instead of after a timeout.
            raw.campaign()?;
        }
        Ok(Node {
            cfg,
            raw,
            tree,
            applied,
            conf_state,
            next_seq: 1,
            pending_writes: BTreeMap::new(),
            reads_waiting: Vec::new(),
            reads_inflight: BTreeMap::new(),
            reads_ready: VecDeque::new(),
            next_read_ctx: 1,
            now_ms: 0,
            is_leader: false,
            session_seen: HashMap::new(),
            expiring: HashMap::new(),
            ttl_scanned_ms: 0,
            effects: Vec::new(),
            persist: Vec::new(),
            snapshot_taking: None,
            applied_bytes_since_snapshot: 0,
            snapshot_job: None,
        })
    }

    /// State for a member of a brand-new cluster (`members`: id → address, the same on all).
    pub fn bootstrap_state(members: &BTreeMap<u64, String>) -> Result<LogState, NodeError> {
        let mut tree = DataTree::new();
        tree.members = members.clone();
        let voters: Vec<u64> = members.keys().copied().collect();
        Ok(LogState::bootstrap(&voters, encode(&tree)?))
    }

    pub fn id(&self) -> u64 {
        self.cfg.id
    }
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }
    pub fn applied(&self) -> u64 {
        self.applied
    }
    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == StateRole::Leader
    }
    pub fn leader(&self) -> u64 {
        self.raw.raft.leader_id
    }
    pub fn term(&self) -> u64 {
        self.raw.raft.term
    }
    pub fn log(&self) -> &LogState {
        self.raw.store()
    }

    pub fn status(&self) -> NodeStatus {
        NodeStatus {
            id: self.cfg.id,
            leader: self.leader(),
            term: self.term(),
            commit: self.raw.raft.raft_log.committed,
            applied: self.applied,
            is_leader: self.is_leader(),
            members: self
                .tree
                .members
                .iter()
                .map(|(k, v)| (*k, v.clone()))
                .collect(),
            znodes: self.tree.node_count() as u64,
            sessions: self.tree.session_count() as u64,
            pid: 0,
        }
    }

    fn not_leader(&self) -> ZkError {
        let leader = self.leader();
        ZkError::NotLeader {
            leader,
            leader_addr: self.tree.members.get(&leader).cloned(),
        }
    }

    fn reply(&mut self, tag: Tag, result: Result<Response, ZkError>) {
        self.effects.push(Effect::Reply {
            tag,
            zxid: self.applied,
            result,
        });
    }

    /// Records activity of sessions served elsewhere (a ZooKeeper frontend on this node); only
    /// meaningful on the leader, which is the one that expires sessions.
    pub fn touch(&mut self, sessions: &[u64], now_ms: u64) {
        if self.is_leader() {
            for s in sessions {
                self.session_seen.insert(*s, now_ms);
            }
        }
    }

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        self.raw.tick();
        self.check_role();
        if self.is_leader && self.raw.raft.commit_to_current_term() {
            self.expire_sessions();
            if now_ms.saturating_sub(self.ttl_scanned_ms) >= TTL_SCAN_MS {
                self.ttl_scanned_ms = now_ms;
                self.expire_ttl_nodes();
            }
        }
    }

    /// Proposes a versioned delete of every TTL node past its TTL (a node changed meanwhile
    /// fails the version check and lives on).
    fn expire_ttl_nodes(&mut self) {
        for (path, version) in self.tree.expired_ttl_nodes(self.now_ms) {
            let cmd = self.command(CommandBody::Ops {
                session: 0,
                ops: vec![Op::Delete { path, version }],
                multi: false,
            });
            if let Ok(data) = encode(&cmd) {
                let _ = self.raw.propose(vec![], data);
            }
        }
    }

    fn expire_sessions(&mut self) {
        let now = self.now_ms;
        let mut dead = Vec::new();
        for (sid, timeout_ms) in self.tree.session_ids() {
            let seen = *self.session_seen.entry(sid).or_insert(now);
            if now.saturating_sub(seen) > timeout_ms {
                match self.expiring.get(&sid) {
                    Some(at) if now.saturating_sub(*at) < EXPIRE_RETRY_MS => {}
                    _ => dead.push(sid),
                }
            }
        }
        for sid in dead {
            self.expiring.insert(sid, now);
            let cmd = self.command(CommandBody::CloseSession { session: sid });
            if let Ok(data) = encode(&cmd) {
                // A dropped proposal is retried after EXPIRE_RETRY_MS.
                let _ = self.raw.propose(vec![], data);
            }
        }
    }

    fn command(&mut self, body: CommandBody) -> Command {
        let seq = self.next_seq;
        self.next_seq += 1;
        Command {
            origin: self.cfg.id,
            seq,
            time_ms: self.now_ms,
            body,
        }
    }

    /// Feeds a message from a peer. Messages from unknown peers or stale terms are ignored.
    pub fn step(&mut self, msg: Message) {
        if let Err(e) = self.raw.step(msg) {
            tracing::debug!(node = self.cfg.id, "step: {e}");
        }
    }

    /// Tells raft a peer could not be reached (it then probes instead of pipelining).
    pub fn report_unreachable(&mut self, peer: u64) {
        self.raw.report_unreachable(peer);
    }

    /// Reports whether a snapshot message to `peer` got through (raft-rs waits for this before
    /// it probes that peer again).
    pub fn report_snapshot(&mut self, peer: u64, delivered: bool) {
        let status = if delivered {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.raw.report_snapshot(peer, status);
    }

    /// Submits a client request from `session` (0 = none). The reply comes out as an `Effect`.
    pub fn submit(&mut self, tag: Tag, session: u64, req: Request, now_ms: u64) {
        if let Request::AsSession { session, req } = req {
            return self.submit(tag, session, *req, now_ms);
        }
        self.now_ms = now_ms;
        self.check_role();
        if let Err(e) = check_request(&req) {
            return self.reply(tag, Err(e));
        }
        if matches!(req, Request::Status) {
            let st = self.status();
            return self.reply(tag, Ok(Response::Status(st)));
        }
        if !self.is_leader {
            let e = self.not_leader();
            return self.reply(tag, Err(e));
        }
        match req {
            Request::Ping => {
                if session != 0 {
                    self.session_seen.insert(session, now_ms);
                }
                self.reply(tag, Ok(Response::Pong));
            }
            Request::TransferLeader { id } => {
                self.raw.transfer_leader(id);
                self.reply(tag, Ok(Response::Done));
            }
            Request::CreateSession { timeout_ms } => {
                self.propose(tag, CommandBody::CreateSession { timeout_ms })
            }
            Request::CloseSession => self.propose(tag, CommandBody::CloseSession { session }),
            Request::ZkCreateSession { timeout_ms, passwd } => {
                self.propose(tag, CommandBody::CreateZkSession { timeout_ms, passwd })
            }
            Request::ZkWrite { auth, ops, multi } => {
                if session != 0 {
                    self.session_seen.insert(session, now_ms);
                }
                self.propose(
                    tag,
                    CommandBody::ZkOps {
                        session,
                        auth,
                        ops,
                        multi,
                    },
                )
            }
            Request::Touch { sessions } => {
                for s in sessions {
                    self.session_seen.insert(s, now_ms);
                }
                self.reply(tag, Ok(Response::Pong));
            }
            Request::Write(op) => self.propose(
                tag,
                CommandBody::Ops {
                    session,
                    ops: vec![op],
                    multi: false,
                },
            ),
            Request::Multi(ops) => self.propose(
                tag,
                CommandBody::Ops {
                    session,
                    ops,
                    multi: true,
                },
            ),
            Request::AddNode { id, addr } => self.propose_conf(tag, id, addr, true),
            Request::RemoveNode { id } => self.propose_conf(tag, id, String::new(), false),
            read => {
                if session != 0 {
                    self.session_seen.insert(session, now_ms);
                }
                self.reads_waiting.push((tag, read));
            }
        }
    }

    fn track(&mut self, tag: Tag, seq: u64) {
        let idx = self.raw.raft.raft_log.last_index();
        if let Some((_, old)) = self.pending_writes.insert(idx, (seq, tag)) {
            let e = self.not_leader();
            self.reply(old, Err(e));
        }
    }

    fn propose(&mut self, tag: Tag, body: CommandBody) {
        let cmd = self.command(body);
        let data = match encode(&cmd) {
            Ok(d) => d,
            Err(e) => return self.reply(tag, Err(ZkError::BadArguments(e.to_string()))),
        };
        match self.raw.propose(vec![], data) {
            Ok(()) => self.track(tag, cmd.seq),
            Err(_) => {
                let e = self.not_leader();
                self.reply(tag, Err(e));
            }
        }
    }

    fn propose_conf(&mut self, tag: Tag, id: u64, addr: String, add: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        let ctx = ConfContext {
            origin: self.cfg.id,
            seq,
            addr,
        };
        let mut cc = ConfChange {
            node_id: id,
            ..Default::default()
        };
        cc.set_change_type(if add {
            ConfChangeType::AddNode
        } else {
            ConfChangeType::RemoveNode
        });
        match encode(&ctx) {
            Ok(c) => cc.context = c.into(),
            Err(e) => return self.reply(tag, Err(ZkError::BadArguments(e.to_string()))),
        }
        match self.raw.propose_conf_change(vec![], cc) {
            Ok(()) => self.track(tag, seq),
            Err(e) => self.reply(tag, Err(ZkError::Membership(e.to_string()))),
        }
    }

    fn check_role(&mut self) {
        let now_leader = self.is_leader();
        if self.is_leader && !now_leader {
            let e = self.not_leader();
            let mut failed: Vec<Tag> = self.reads_waiting.drain(..).map(|(t, _)| t).collect();
            for (_, b) in std::mem::take(&mut self.reads_inflight) {
                failed.extend(b.into_iter().map(|(t, _)| t));
            }
            for (_, b) in std::mem::take(&mut self.reads_ready) {
                failed.extend(b.into_iter().map(|(t, _)| t));
            }
            for t in failed {
                self.reply(t, Err(e.clone()));
            }
        }
        if self.is_leader != now_leader {
            // A new leader gives every session a fresh timeout, as ZooKeeper does.
            self.session_seen.clear();
            self.expiring.clear();
        }
        self.is_leader = now_leader;
    }

    /// Runs raft-rs's Ready loop and returns what the driver must do.
    pub fn ready(&mut self) -> Result<Outputs, NodeError> {
        self.check_role();
        let mut messages = Vec::new();
        if self.is_leader
            && !self.reads_waiting.is_empty()
            && self.raw.raft.commit_to_current_term()
        {
            let ctx = self.next_read_ctx;
            self.next_read_ctx += 1;
            self.reads_inflight
                .insert(ctx, std::mem::take(&mut self.reads_waiting));
            self.raw.read_index(ctx.to_le_bytes().to_vec());
        }
        while self.raw.has_ready() {
            let mut rd = self.raw.ready();
            messages.extend(rd.take_messages());
            if !rd.snapshot().is_empty() {
                let snap = rd.snapshot().clone();
                self.install_snapshot(snap)?;
            }
            let committed = rd.take_committed_entries();
            self.apply_entries(committed)?;
            let mut batch = PersistBatch::default();
            if !rd.entries().is_empty() {
                batch.entries = rd.take_entries();
            }
            if let Some(hs) = rd.hs() {
                batch.hard_state = Some(hs.clone());
            }
            if !batch.is_empty() {
                self.raw.mut_store().apply(&batch);
                self.persist.push(batch);
            }
            for rs in rd.take_read_states() {
                let mut b = [0u8; 8];
                if rs.request_ctx.len() == 8 {
                    b.copy_from_slice(&rs.request_ctx);
                }
                if let Some(batch) = self.reads_inflight.remove(&u64::from_le_bytes(b)) {
                    self.reads_ready.push_back((rs.index, batch));
                }
            }
            messages.extend(rd.take_persisted_messages());
            let mut light = self.raw.advance(rd);
            if let Some(commit) = light.commit_index() {
                let mut hs = self.raw.store().hard_state.clone();
                hs.commit = commit;
                let batch = PersistBatch {
                    hard_state: Some(hs),
                    ..Default::default()
                };
                self.raw.mut_store().apply(&batch);
                self.persist.push(batch);
            }
            messages.extend(light.take_messages());
            let committed = light.take_committed_entries();
            self.apply_entries(committed)?;
            self.raw.advance_apply();
            self.check_role();
        }
        self.serve_reads();
        self.maybe_snapshot()?;
        Ok(Outputs {
            persist: std::mem::take(&mut self.persist),
            messages,
            effects: std::mem::take(&mut self.effects),
            snapshot: self.snapshot_job.take(),
        })
    }

    fn install_snapshot(&mut self, snap: Snapshot) -> Result<(), NodeError> {
        let meta = snap.get_metadata();
        let idx = meta.index;
        self.tree = decode(&snap.data)?;
        self.conf_state = meta.get_conf_state().clone();
        self.applied = idx;
        self.applied_bytes_since_snapshot = 0;
        let later = self.pending_writes.split_off(&(idx + 1));
        for (_, (_, tag)) in std::mem::replace(&mut self.pending_writes, later) {
            self.reply(tag, Err(ZkError::ConnectionLoss));
        }
        let batch = PersistBatch {
            installed: Some(snap),
            ..Default::default()
        };
        self.raw.mut_store().apply(&batch);
        self.persist.push(batch);
        self.effects.push(Effect::MembersChanged);
        Ok(())
    }

    fn apply_entries(&mut self, entries: Vec<Entry>) -> Result<(), NodeError> {
        for e in entries {
            if e.index <= self.applied {
                continue;
            }
            let idx = e.index;
            self.applied_bytes_since_snapshot += e.data.len() as u64;
            match e.get_entry_type() {
                EntryType::EntryNormal if e.data.is_empty() => self.applied = idx,
                EntryType::EntryNormal => match decode::<Command>(&e.data) {
                    Ok(cmd) => {
                        let (res, events) = self.tree.apply(idx, cmd.time_ms, &cmd.body);
                        self.effects.extend(events.into_iter().map(Effect::Event));
                        if let (
                            CommandBody::CreateZkSession { .. },
                            Ok(Response::Session { session, .. }),
                        ) = (&cmd.body, &res)
                        {
                            // The session's clock starts when it exists, not at the next scan.
                            self.session_seen.insert(*session, self.now_ms);
                        }
                        if let CommandBody::CloseSession { session } = cmd.body {
                            self.session_seen.remove(&session);
                            self.expiring.remove(&session);
                            self.effects.push(Effect::SessionClosed(session));
                        }
                        self.applied = idx;
                        self.resolve(idx, cmd.origin, cmd.seq, res);
                    }
                    Err(err) => {
                        // Every replica sees the same bytes and skips the same way.
                        tracing::error!(index = idx, "undecodable entry: {err}");
                        self.applied = idx;
                        self.resolve(idx, 0, 0, Err(ZkError::BadArguments(err.to_string())));
                    }
                },
                EntryType::EntryConfChange => {
                    let cc = ConfChange::parse_from_bytes(&e.data).map_err(raft::Error::from)?;
                    let ctx: Option<ConfContext> = decode(&cc.context).ok();
                    let res = match self.raw.apply_conf_change(&cc) {
                        Ok(cs) => {
                            self.conf_state = cs;
                            match cc.get_change_type() {
                                ConfChangeType::RemoveNode => {
                                    self.tree.members.remove(&cc.node_id);
                                }
                                _ => {
                                    if let Some(c) = &ctx {
                                        self.tree.members.insert(cc.node_id, c.addr.clone());
                                    }
                                }
                            }
                            self.effects.push(Effect::MembersChanged);
                            Ok(Response::Done)
                        }
                        Err(err) => Err(ZkError::Membership(err.to_string())),
                    };
                    self.applied = idx;
                    let (origin, seq) = ctx.map(|c| (c.origin, c.seq)).unwrap_or((0, 0));
                    self.resolve(idx, origin, seq, res);
                }
                EntryType::EntryConfChangeV2 => {
                    self.applied = idx;
                    self.resolve(idx, 0, 0, Err(ZkError::Membership("v2 unsupported".into())));
                }
            }
        }
        Ok(())
    }

    fn resolve(&mut self, idx: u64, origin: u64, seq: u64, res: Result<Response, ZkError>) {
        if let Some((pseq, tag)) = self.pending_writes.remove(&idx) {
            let result = if origin == self.cfg.id && pseq == seq {
                res
            } else {
                // Another leader's entry took this index: ours was never committed.
                Err(self.not_leader())
            };
            self.effects.push(Effect::Reply {
                tag,
                zxid: idx,
                result,
            });
        }
    }

    fn serve_reads(&mut self) {
        while let Some((idx, _)) = self.reads_ready.front() {
            if *idx > self.applied {
                break;
            }
            let Some((_, batch)) = self.reads_ready.pop_front() else {
                break;
            };
            for (tag, req) in batch {
                let res = self.read(&req);
                self.reply(tag, res);
            }
        }
    }

    fn read(&mut self, req: &Request) -> Result<Response, ZkError> {
        match req {
            Request::Get { path, .. } => {
                let (data, stat) = self.tree.get(path)?;
                Ok(Response::Data {
                    data: data.to_vec(),
                    stat,
                })
            }
            Request::Exists { path, .. } => Ok(Response::Exists(self.tree.exists(path)?)),
            Request::Children { path, .. } => {
                let (names, stat) = self.tree.children(path)?;
                Ok(Response::Children { names, stat })
            }
            Request::Sync => Ok(Response::Synced),
            Request::AttachSession { session } => match self.tree.session(*session) {
                Some(s) => {
                    let timeout_ms = s.timeout_ms;
                    self.session_seen.insert(*session, self.now_ms);
                    Ok(Response::Session {
                        session: *session,
                        timeout_ms,
                    })
                }
                None => Err(ZkError::SessionExpired),
            },
            other => Err(ZkError::BadArguments(format!("not a read: {other:?}"))),
        }
    }

    /// Starts a local snapshot when enough entries were applied since the last one (or raft
    /// asked for one to send): hands the tree to the driver as a `SnapshotJob`.
    fn maybe_snapshot(&mut self) -> Result<(), NodeError> {
        if self.snapshot_taking.is_some() {
            return Ok(());
        }
        let snap_idx = self.raw.store().snapshot_index();
        let requested = self.raw.store().snapshot_requested.get() && self.applied > snap_idx;
        let snapshot_bytes = self.raw.store().snapshot.data.len() as u64;
        let due = self.applied >= snap_idx + self.cfg.snapshot_entries
            && self
                .applied_bytes_since_snapshot
                .saturating_mul(SNAPSHOT_LOG_FRACTION)
                >= snapshot_bytes;
        if !due && !requested {
            return Ok(());
        }
        self.applied_bytes_since_snapshot = 0;
        self.raw.store().snapshot_requested.set(false);
        let term = self.raw.store().term(self.applied)?;
        self.snapshot_taking = Some(SnapshotTaking {
            index: self.applied,
            term,
            conf_state: self.conf_state.clone(),
        });
        self.snapshot_job = Some(SnapshotJob {
            index: self.applied,
            tree: self.tree.clone(),
        });
        Ok(())
    }

    /// The driver encoded the snapshot job for `index`: the snapshot replaces the stored one
    /// and the log behind it is compacted (both made durable by the next `ready`'s persist).
    /// A result for a job this node no longer waits for (it restarted, or installed a newer
    /// snapshot from the leader meanwhile) is dropped.
    pub fn snapshot_encoded(
        &mut self,
        index: u64,
        data: Result<Vec<u8>, CodecError>,
    ) -> Result<(), NodeError> {
        if self.snapshot_taking.as_ref().map(|t| t.index) != Some(index) {
            return Ok(());
        }
        let Some(taking) = self.snapshot_taking.take() else {
            return Ok(());
        };
        let data = data?;
        if index <= self.raw.store().snapshot_index() {
            return Ok(());
        }
        let mut snap = Snapshot {
            data: data.into(),
            ..Default::default()
        };
        let meta = snap.mut_metadata();
        meta.index = index;
        meta.term = taking.term;
        meta.set_conf_state(taking.conf_state);
        let batch = PersistBatch {
            compacted: Some(snap),
            compact_to: index.saturating_sub(self.cfg.compaction_lag_entries),
            ..Default::default()
        };
        self.raw.mut_store().apply(&batch);
        self.persist.push(batch);
        Ok(())
    }
}

/// Cheap validation done before proposing, so bad requests never reach the log.
fn check_request(req: &Request) -> Result<(), ZkError> {
    let check_op = |op: &Op| -> Result<(), ZkError> {
        match op {
            Op::Create { path, data, .. } | Op::Set { path, data, .. } => {
                validate_path(path)?;
                if data.len() > DATA_BYTES_MAX {
                    return Err(ZkError::BadArguments("data larger than 1 MiB".into()));
                }
                Ok(())
            }
            Op::CreateZk { path, data, .. } => {
                validate_path(path)?;
                if data.len() > DATA_BYTES_MAX {
                    return Err(ZkError::BadArguments("data larger than 1 MiB".into()));
                }
                Ok(())
            }
            Op::Delete { path, .. } | Op::Check { path, .. } | Op::SetAcl { path, .. } => {
                validate_path(path)
            }
        }
    };
    match req {
        Request::Write(op) => check_op(op),
        Request::Multi(ops) => ops.iter().try_for_each(check_op),
        Request::ZkWrite { ops, .. } => ops.iter().try_for_each(check_op),
        Request::Get { path, .. }
        | Request::Exists { path, .. }
        | Request::Children { path, .. } => validate_path(path),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CreateMode;

    /// One node of a one-node cluster, driven until `tag` is answered; returns the snapshot
    /// jobs it handed out meanwhile (encoded and given back at once, as a driver would).
    fn write(node: &mut Node, tag: Tag, op: Op) -> usize {
        node.submit(tag, 0, Request::Write(op), 0);
        let mut jobs = 0;
        for _ in 0..100 {
            let out = node.ready().unwrap();
            if let Some(job) = out.snapshot {
                jobs += 1;
                node.snapshot_encoded(job.index, job.encode()).unwrap();
            }
            let answered = out.effects.iter().any(|e| {
                matches!(e, Effect::Reply { tag: t, result, .. } if *t == tag && result.is_ok())
            });
            if answered {
                return jobs;
            }
        }
        panic!("write {tag} not answered");
    }

    /// Snapshots follow `snapshot_entries` while the tree is small, but a large tree is not
    /// re-encoded until the log since its last snapshot holds a quarter of its size.
    #[test]
    fn a_large_tree_is_snapshotted_in_proportion_to_the_log_not_every_n_entries() {
        let members = BTreeMap::from([(1, "127.0.0.1:1".to_string())]);
        let mut cfg = NodeConfig::new(1);
        cfg.snapshot_entries = 10;
        let mut node = Node::new(cfg, Node::bootstrap_state(&members).unwrap()).unwrap();
        let mut tag = 0;
        let mut next = || {
            tag += 1;
            tag
        };
        let mut jobs = 0;
        for i in 0..40 {
            let op = Op::Create {
                path: format!("/big{i}"),
                data: vec![7; 32 * 1024],
                mode: CreateMode::Persistent,
            };
            jobs += write(&mut node, next(), op);
        }
        assert!(jobs >= 2, "{jobs} snapshots while the tree grew by 1.3 MB");
        let tree_bytes = node.raw.store().snapshot.data.len();
        assert!(tree_bytes > 32 * 1024, "snapshot of {tree_bytes} bytes");
        // 200 one-byte sets: twenty times snapshot_entries, but a few KB against a tree of a
        // megabyte: no snapshot.
        let mut small_jobs = 0;
        for _ in 0..200 {
            let op = Op::Set {
                path: "/big0".into(),
                data: vec![1],
                version: -1,
            };
            small_jobs += write(&mut node, next(), op);
        }
        assert_eq!(
            small_jobs, 0,
            "a large tree re-encoded for a few small writes"
        );
        // Once a quarter of the tree's size has been written, the next snapshot comes.
        let mut big_jobs = 0;
        for i in 0..20 {
            let op = Op::Set {
                path: format!("/big{i}"),
                data: vec![9; 32 * 1024],
                version: -1,
            };
            big_jobs += write(&mut node, next(), op);
        }
        assert!(big_jobs >= 1, "no snapshot after 640 KB of writes");
    }
}
