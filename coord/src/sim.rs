//! Seeded deterministic simulation of a coordinator cluster (VOPR-style).
//!
//! Owns: a simulated clock, a network with delays, drops and partitions, per-node "disks" that
//! survive crashes (what was persisted through `PersistBatch`es and nothing else), crash/restart
//! and leader-transfer faults, and clients running a CAS register workload on one znode.
//! Checks: the history is linearizable (`lincheck`), replicas that applied the same index hold
//! the same tree, and after healing every acknowledged write is still there.
//! Must not: use wall time, threads or OS randomness: one seed = one exact run.

use std::collections::{BTreeMap, HashMap};

use raft::prelude::Message;

use crate::lincheck::{self, HistOp, RegOp, RegResult};
use crate::node::{Effect, Node, NodeConfig, SnapshotJob, Tag};
use crate::proto::{CreateMode, Op, OpResult, Request, Response, ZkError};
use crate::store::LogState;

/// Knobs of one simulated run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub seed: u64,
    pub nodes: u64,
    pub clients: u64,
    /// Faulty period; a quiet period of `quiet_ms` follows.
    pub duration_ms: u64,
    pub quiet_ms: u64,
    pub drop_per_mille: u64,
    pub delay_ms_max: u64,
    pub faults: bool,
    pub snapshot_entries: u64,
    /// Session holders: each opens a session, creates an ephemeral node, pings, and "dies"
    /// (stops pinging) after a random lifetime, then starts over.
    pub session_actors: u64,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            nodes: 3,
            clients: 3,
            duration_ms: 6_000,
            quiet_ms: 3_000,
            drop_per_mille: 20,
            delay_ms_max: 8,
            faults: true,
            snapshot_entries: 32,
            session_actors: 2,
        }
    }
}

/// What happened in a run that passed.
#[derive(Debug, Default, Clone)]
pub struct SimReport {
    pub ops_ok: u64,
    pub ops_unknown: u64,
    pub ops_refused: u64,
    pub crashes: u64,
    pub partitions: u64,
    pub transfers: u64,
    pub final_version: i32,
    pub acked_writes: u64,
    pub max_term: u64,
    pub snapshots_installed: u64,
    pub sessions_created: u64,
    /// Sessions whose holder died and which the quorum was required to expire.
    pub sessions_expired_checked: u64,
}

/// xorshift64*: small, seedable, good enough for fault injection.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

enum Event {
    Raft(Message),
    Request {
        node: u64,
        tag: Tag,
        session: u64,
        req: Request,
    },
    Reply {
        tag: Tag,
        result: Result<Response, ZkError>,
    },
    /// A local snapshot for the driver to encode, some time after the node asked (the server
    /// encodes it on another thread meanwhile).
    EncodeSnapshot {
        node: u64,
        job: SnapshotJob,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ActorState {
    NeedSession,
    NeedEphemeral,
    Alive,
}

struct Actor {
    target: u64,
    state: ActorState,
    session: u64,
    serial: u64,
    die_at: u64,
    next_at: u64,
    waiting: Option<(Tag, u64)>,
}

const SESSION_MS: u64 = 500;

struct Client {
    target: u64,
    /// (tag, history index, deadline)
    waiting: Option<(Tag, usize, u64)>,
    next_at: u64,
    last_version: i32,
}

const REG: &str = "/reg";
const TICK_MS: u64 = 10;
const CLIENT_TIMEOUT_MS: u64 = 1_000;

struct Sim {
    cfg: SimConfig,
    rng: Rng,
    now: u64,
    nodes: Vec<Option<Node>>,
    disks: Vec<LogState>,
    group: Vec<u64>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    clients: Vec<Client>,
    actors: Vec<Actor>,
    actor_tags: HashMap<Tag, usize>,
    /// (session, time its holder stopped pinging)
    dead_sessions: Vec<(u64, u64)>,
    history: Vec<HistOp>,
    tags: HashMap<Tag, (usize, usize)>,
    next_tag: Tag,
    digests: HashMap<u64, u64>,
    report: SimReport,
    setup_done: bool,
}

/// Runs one seed. `Err` describes the safety violation found.
pub fn run(cfg: SimConfig) -> Result<SimReport, String> {
    let members: BTreeMap<u64, String> = (1..=cfg.nodes).map(|i| (i, format!("sim-{i}"))).collect();
    let boot = Node::bootstrap_state(&members).map_err(|e| e.to_string())?;
    let mut sim = Sim {
        rng: Rng(cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        now: 0,
        nodes: Vec::new(),
        disks: vec![boot; cfg.nodes as usize],
        group: vec![0; cfg.nodes as usize],
        queue: BTreeMap::new(),
        seq: 0,
        clients: (0..cfg.clients)
            .map(|c| Client {
                target: 1 + c % cfg.nodes,
                waiting: None,
                next_at: 0,
                last_version: 0,
            })
            .collect(),
        actors: (0..cfg.session_actors)
            .map(|a| Actor {
                target: 1 + a % cfg.nodes,
                state: ActorState::NeedSession,
                session: 0,
                serial: 0,
                die_at: 0,
                next_at: 0,
                waiting: None,
            })
            .collect(),
        actor_tags: HashMap::new(),
        dead_sessions: Vec::new(),
        history: Vec::new(),
        tags: HashMap::new(),
        next_tag: 1,
        digests: HashMap::new(),
        report: SimReport::default(),
        setup_done: false,
        cfg,
    };
    for i in 0..sim.cfg.nodes {
        let n = sim.start_node(i + 1)?;
        sim.nodes.push(Some(n));
    }
    sim.run_loop()?;
    sim.final_checks()?;
    Ok(sim.report)
}

impl Sim {
    fn node_cfg(&self, id: u64) -> NodeConfig {
        let mut c = NodeConfig::new(id);
        c.election_tick = 10;
        c.heartbeat_tick = 2;
        // A fixed, distinct election timeout per node (raft-rs's RNG cannot be seeded).
        c.pinned_election_tick = Some(10 + 4 * id as usize);
        c.snapshot_entries = self.cfg.snapshot_entries;
        c.compaction_lag_entries = self.cfg.snapshot_entries / 4;
        c
    }

    fn start_node(&self, id: u64) -> Result<Node, String> {
        Node::new(self.node_cfg(id), self.disks[(id - 1) as usize].clone())
            .map_err(|e| format!("restart of node {id}: {e}"))
    }

    fn push(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), ev);
    }

    fn delay(&mut self) -> u64 {
        1 + self.rng.below(self.cfg.delay_ms_max)
    }

    fn run_loop(&mut self) -> Result<(), String> {
        let end = self.cfg.duration_ms + self.cfg.quiet_ms;
        while self.now < end {
            self.now += 1;
            let faulty = self.now < self.cfg.duration_ms && self.cfg.faults;
            if !faulty && self.now == self.cfg.duration_ms {
                self.heal()?;
            }
            if faulty && self.now % 50 == 0 {
                self.inject_fault()?;
            }
            // Deliver due events.
            while let Some((&(at, s), _)) = self.queue.iter().next() {
                if at > self.now {
                    break;
                }
                let Some(ev) = self.queue.remove(&(at, s)) else {
                    break;
                };
                self.deliver(ev)?;
            }
            if self.now % TICK_MS == 0 {
                for id in 1..=self.cfg.nodes {
                    if let Some(n) = self.nodes[(id - 1) as usize].as_mut() {
                        n.tick(self.now);
                    }
                    self.drive(id)?;
                }
            }
            self.run_clients();
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), String> {
        self.group.iter_mut().for_each(|g| *g = 0);
        for id in 1..=self.cfg.nodes {
            if self.nodes[(id - 1) as usize].is_none() {
                let n = self.start_node(id)?;
                self.nodes[(id - 1) as usize] = Some(n);
            }
        }
        Ok(())
    }

    fn inject_fault(&mut self) -> Result<(), String> {
        let n = self.cfg.nodes;
        let r = self.rng.below(100);
        let id = 1 + self.rng.below(n);
        let idx = (id - 1) as usize;
        let down = self.nodes.iter().filter(|x| x.is_none()).count() as u64;
        if r < 4 && self.nodes[idx].is_some() && down < (n - 1) / 2 + 1 {
            // Crash: volatile state is lost, the disk keeps what was persisted.
            self.nodes[idx] = None;
            self.report.crashes += 1;
        } else if r < 12 && self.nodes[idx].is_none() {
            let node = self.start_node(id)?;
            self.nodes[idx] = Some(node);
        } else if r < 16 {
            self.group[idx] = 1 + self.rng.below(2);
            self.report.partitions += 1;
        } else if r < 24 {
            self.group.iter_mut().for_each(|g| *g = 0);
        } else if r < 26 {
            // Ask the current leader (if any) to hand over to someone.
            let leader = self
                .nodes
                .iter()
                .flatten()
                .find(|n| n.is_leader())
                .map(|n| n.id());
            if let Some(l) = leader {
                let to = 1 + self.rng.below(n);
                let tag = self.next_tag;
                self.next_tag += 1;
                self.push(
                    self.now,
                    Event::Request {
                        node: l,
                        tag,
                        session: 0,
                        req: Request::TransferLeader { id: to },
                    },
                );
                self.report.transfers += 1;
            }
        }
        Ok(())
    }

    fn connected(&self, a: u64, b: u64) -> bool {
        self.group[(a - 1) as usize] == self.group[(b - 1) as usize]
    }

    fn deliver(&mut self, ev: Event) -> Result<(), String> {
        match ev {
            Event::Raft(m) => {
                let (to, from) = (m.to, m.from);
                if to == 0 || to > self.cfg.nodes {
                    return Ok(());
                }
                let is_snap = m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot;
                let delivered = self.connected(to, from) && self.nodes[(to - 1) as usize].is_some();
                if delivered {
                    if let Some(n) = self.nodes[(to - 1) as usize].as_mut() {
                        if is_snap {
                            self.report.snapshots_installed += 1;
                        }
                        n.step(m);
                        self.drive(to)?;
                    }
                }
                if is_snap {
                    if let Some(n) = self.nodes[(from - 1) as usize].as_mut() {
                        n.report_snapshot(to, delivered);
                        self.drive(from)?;
                    }
                }
            }
            Event::Request {
                node,
                tag,
                session,
                req,
            } => {
                if let Some(n) = self.nodes[(node - 1) as usize].as_mut() {
                    n.submit(tag, session, req, self.now);
                    self.drive(node)?;
                }
            }
            Event::Reply { tag, result } => self.on_reply(tag, result)?,
            Event::EncodeSnapshot { node, job } => {
                // Encoded only now, after the node applied more: the job's tree must still be
                // the tree as of its index (a restart from this snapshot checks the digest).
                if let Some(n) = self.nodes[(node - 1) as usize].as_mut() {
                    n.snapshot_encoded(job.index, job.encode())
                        .map_err(|e| format!("node {node} snapshot: {e}"))?;
                    self.drive(node)?;
                }
            }
        }
        Ok(())
    }

    /// Runs a node's Ready loop and acts on its outputs: persist, then send, then effects.
    fn drive(&mut self, id: u64) -> Result<(), String> {
        let idx = (id - 1) as usize;
        let Some(n) = self.nodes[idx].as_mut() else {
            return Ok(());
        };
        let before = n.applied();
        let out = n.ready().map_err(|e| format!("node {id} ready: {e}"))?;
        if n.applied() != before {
            n.tree()
                .check_invariants()
                .map_err(|e| format!("node {id} at {}: {e}", n.applied()))?;
        }
        let (applied, digest, term) = (n.applied(), n.tree().digest(), n.term());
        self.report.max_term = self.report.max_term.max(term);
        match self.digests.insert(applied, digest) {
            Some(d) if d != digest => {
                return Err(format!(
                    "replica divergence: node {id} at index {applied} has a different tree"
                ))
            }
            _ => {}
        }
        for b in &out.persist {
            self.disks[idx].apply(b);
        }
        for m in out.messages {
            let is_snap = m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot;
            if !is_snap
                && (self.rng.chance(self.cfg.drop_per_mille) || !self.connected(m.from, m.to))
            {
                continue;
            }
            let at = self.now + self.delay();
            self.push(at, Event::Raft(m));
        }
        if let Some(job) = out.snapshot {
            let at = self.now + self.delay();
            self.push(at, Event::EncodeSnapshot { node: id, job });
        }
        for e in out.effects {
            if let Effect::Reply { tag, result, .. } = e {
                let at = self.now + self.delay();
                self.push(at, Event::Reply { tag, result });
            }
        }
        Ok(())
    }

    fn run_clients(&mut self) {
        for c in 0..self.clients.len() {
            if let Some((_, h, deadline)) = self.clients[c].waiting {
                if self.now >= deadline {
                    // Timed out: outcome unknown.
                    if h != usize::MAX {
                        self.history[h].ret_ms = None;
                        self.history[h].result = None;
                        self.report.ops_unknown += 1;
                    }
                    self.clients[c].waiting = None;
                    self.clients[c].target = 1 + self.rng.below(self.cfg.nodes);
                }
                continue;
            }
            let end = self.cfg.duration_ms + self.cfg.quiet_ms;
            if self.now < self.clients[c].next_at || self.now + 1_000 > end {
                continue;
            }
            if !self.setup_done && c != 0 {
                continue;
            }
            let tag = self.next_tag;
            self.next_tag += 1;
            let (req, h) = if !self.setup_done {
                (
                    Request::Write(Op::Create {
                        path: REG.into(),
                        data: b"0".to_vec(),
                        mode: CreateMode::Persistent,
                    }),
                    usize::MAX,
                )
            } else {
                let value = self.rng.next() % 1_000_000;
                let (req, op) = match self.rng.below(10) {
                    0..=3 => (
                        Request::Get {
                            path: REG.into(),
                            watch: false,
                        },
                        RegOp::Read,
                    ),
                    4..=6 => (
                        Request::Write(Op::Set {
                            path: REG.into(),
                            data: value.to_string().into_bytes(),
                            version: -1,
                        }),
                        RegOp::Write(value),
                    ),
                    _ => {
                        let ev = self.clients[c].last_version;
                        (
                            Request::Write(Op::Set {
                                path: REG.into(),
                                data: value.to_string().into_bytes(),
                                version: ev,
                            }),
                            RegOp::Cas {
                                expected_version: ev,
                                value,
                            },
                        )
                    }
                };
                self.history.push(HistOp {
                    client: c as u64,
                    call_ms: self.now,
                    ret_ms: Some(u64::MAX),
                    op,
                    result: None,
                });
                (req, self.history.len() - 1)
            };
            self.tags.insert(tag, (c, h));
            self.clients[c].waiting = Some((tag, h, self.now + CLIENT_TIMEOUT_MS));
            let node = self.clients[c].target;
            let at = self.now + self.delay();
            self.push(
                at,
                Event::Request {
                    node,
                    tag,
                    session: 0,
                    req,
                },
            );
        }
        self.run_actors();
    }

    fn run_actors(&mut self) {
        let end = self.cfg.duration_ms + self.cfg.quiet_ms;
        for a in 0..self.actors.len() {
            if let Some((_, deadline)) = self.actors[a].waiting {
                if self.now >= deadline {
                    self.actors[a].waiting = None;
                    self.actors[a].target = 1 + self.rng.below(self.cfg.nodes);
                }
                continue;
            }
            if self.now < self.actors[a].next_at {
                continue;
            }
            // Holders die for good before the end so their expiry can be checked.
            let must_die = self.now + SESSION_MS + 1_500 > end;
            let act = &mut self.actors[a];
            let (session, req) = match act.state {
                ActorState::NeedSession if must_die => continue,
                ActorState::NeedSession => (
                    0,
                    Request::CreateSession {
                        timeout_ms: SESSION_MS,
                    },
                ),
                ActorState::NeedEphemeral => {
                    act.serial += 1;
                    (
                        act.session,
                        Request::Write(Op::Create {
                            path: format!("/e-{a}-{}", act.serial),
                            data: vec![],
                            mode: CreateMode::Ephemeral,
                        }),
                    )
                }
                ActorState::Alive if self.now >= act.die_at || must_die => {
                    self.dead_sessions.push((act.session, self.now));
                    act.state = ActorState::NeedSession;
                    act.session = 0;
                    act.next_at = self.now + 50;
                    continue;
                }
                ActorState::Alive => (act.session, Request::Ping),
            };
            let tag = self.next_tag;
            self.next_tag += 1;
            self.actor_tags.insert(tag, a);
            let node = self.actors[a].target;
            self.actors[a].waiting = Some((tag, self.now + CLIENT_TIMEOUT_MS));
            let at = self.now + self.delay();
            self.push(
                at,
                Event::Request {
                    node,
                    tag,
                    session,
                    req,
                },
            );
        }
    }

    fn on_actor_reply(&mut self, a: usize, tag: Tag, result: Result<Response, ZkError>) {
        match self.actors[a].waiting {
            Some((t, _)) if t == tag => {}
            _ => return,
        }
        self.actors[a].waiting = None;
        let state = self.actors[a].state;
        let pace = 20 + self.rng.below(30);
        let act = &mut self.actors[a];
        act.next_at = self.now + pace;
        match (state, result) {
            (_, Err(ZkError::NotLeader { leader, .. })) => {
                act.target = if leader != 0 {
                    leader
                } else {
                    1 + self.rng.below(self.cfg.nodes)
                };
            }
            (ActorState::NeedSession, Ok(Response::Session { session, .. })) => {
                act.session = session;
                act.state = ActorState::NeedEphemeral;
                act.die_at = self.now + 200 + self.rng.below(2_500);
                self.report.sessions_created += 1;
            }
            (ActorState::NeedEphemeral, Ok(_)) => act.state = ActorState::Alive,
            (_, Err(ZkError::SessionExpired)) => {
                // Lost to a partition: start over (its node must vanish too, checked by the
                // tree invariants).
                act.state = ActorState::NeedSession;
                act.session = 0;
            }
            _ => {}
        }
    }

    fn on_reply(&mut self, tag: Tag, result: Result<Response, ZkError>) -> Result<(), String> {
        if let Some(a) = self.actor_tags.remove(&tag) {
            self.on_actor_reply(a, tag, result);
            return Ok(());
        }
        let Some((c, h)) = self.tags.remove(&tag) else {
            return Ok(());
        };
        match self.clients[c].waiting {
            Some((t, _, _)) if t == tag => {}
            _ => return Ok(()), // a late reply after a timeout: already unknown
        }
        self.clients[c].waiting = None;
        self.clients[c].next_at = self.now + self.rng.below(20);
        if h == usize::MAX {
            match result {
                Ok(_) | Err(ZkError::NodeExists) => self.setup_done = true,
                Err(ZkError::NotLeader { leader, .. }) if leader != 0 => {
                    self.clients[c].target = leader
                }
                Err(_) => self.clients[c].target = 1 + self.rng.below(self.cfg.nodes),
            }
            return Ok(());
        }
        let op = self.history[h].op;
        let observed = match (op, result) {
            (RegOp::Read, Ok(Response::Data { data, stat })) => {
                let value = std::str::from_utf8(&data)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| format!("register holds garbage: {data:?}"))?;
                self.clients[c].last_version = stat.version;
                Some(RegResult::Read {
                    value,
                    version: stat.version,
                })
            }
            (RegOp::Write(_), Ok(Response::Op(OpResult::Set { stat }))) => {
                self.report.acked_writes += 1;
                self.clients[c].last_version = stat.version;
                Some(RegResult::Written {
                    version: stat.version,
                })
            }
            (RegOp::Cas { .. }, Ok(Response::Op(OpResult::Set { stat }))) => {
                self.report.acked_writes += 1;
                self.clients[c].last_version = stat.version;
                Some(RegResult::CasOk {
                    version: stat.version,
                })
            }
            (RegOp::Cas { .. }, Err(ZkError::BadVersion)) => Some(RegResult::CasFailed),
            (_, Err(ZkError::NotLeader { leader, .. })) => {
                // Definite refusal: the op did not happen; drop it from the history.
                self.history[h].ret_ms = Some(u64::MAX - 1);
                self.clients[c].target = if leader != 0 {
                    leader
                } else {
                    1 + self.rng.below(self.cfg.nodes)
                };
                self.report.ops_refused += 1;
                return Ok(());
            }
            (_, Err(ZkError::ConnectionLoss)) => {
                self.history[h].ret_ms = None;
                self.report.ops_unknown += 1;
                return Ok(());
            }
            (op, other) => return Err(format!("unexpected reply to {op:?}: {other:?}")),
        };
        self.history[h].ret_ms = Some(self.now);
        self.history[h].result = observed;
        self.report.ops_ok += 1;
        Ok(())
    }

    fn final_checks(&mut self) -> Result<(), String> {
        // Every replica converged on the same tree.
        let mut seen: Option<(u64, u64)> = None;
        let mut version = None;
        for n in self.nodes.iter().flatten() {
            let cur = (n.applied(), n.tree().digest());
            if let Some(prev) = seen {
                if prev != cur {
                    return Err(format!("replicas did not converge: {prev:?} vs {cur:?}"));
                }
            }
            seen = Some(cur);
            version = n.tree().get(REG).ok().map(|(_, s)| s.version);
        }
        let version = version.ok_or("register missing after the run")?;
        // Every session whose holder died long enough ago was expired by the quorum, and its
        // ephemeral nodes went with it (the invariants tie ephemerals to live sessions).
        let end = self.cfg.duration_ms + self.cfg.quiet_ms;
        for n in self.nodes.iter().flatten() {
            n.tree().check_invariants()?;
            for (s, died) in &self.dead_sessions {
                if *s != 0 && died + SESSION_MS + 1_000 < end {
                    if n.tree().session(*s).is_some() {
                        return Err(format!(
                            "session {s} of a holder dead since {died} ms still alive at {end}"
                        ));
                    }
                    self.report.sessions_expired_checked += 1;
                }
            }
        }
        self.report.final_version = version;
        if (version as u64) < self.report.acked_writes {
            return Err(format!(
                "lost writes: {} acknowledged, register at version {version}",
                self.report.acked_writes
            ));
        }
        // Refused ops never happened; ops still waiting at the end are unknown.
        let history: Vec<HistOp> = self
            .history
            .iter()
            .filter(|o| o.ret_ms != Some(u64::MAX - 1))
            .map(|o| {
                let mut o = *o;
                if o.ret_ms == Some(u64::MAX) {
                    o.ret_ms = None;
                    o.result = None;
                }
                o
            })
            .collect();
        lincheck::check((0, 0), &history)
    }
}
