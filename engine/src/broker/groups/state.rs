//! One group's membership state machine (Kafka's classic protocol), on its coordinator shard.
//!
//! Empty → PreparingRebalance (a join) → CompletingRebalance (every known member rejoined, or
//! the rebalance timeout evicted those that did not; the leader gets every member's metadata)
//! → Stable (the leader's SyncGroup brought the assignments, relayed to every member). A join,
//! a leave or an eviction in CompletingRebalance or Stable starts a new rebalance; the last
//! member leaving empties the group. Generation and member ids fence stale members.
//!
//! Owns those transitions and the waiters of pending JoinGroup/SyncGroup requests (oneshot
//! senders answered on this shard). Must not: do I/O, await, or be reached from another shard
//! except through a `Mesh` job (it lives in a `RefCell` on its shard).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::channel::oneshot;

use super::offsets::{Committed, GroupMeta};
use wire::error_code as ec;

/// Default group.initial.rebalance.delay.ms (Kafka's is 3 s): an empty group's first wait.
pub const INITIAL_REBALANCE_DELAY_MS: u64 = 1000;
pub const SESSION_TIMEOUT_MIN_MS: i32 = 1000;
pub const SESSION_TIMEOUT_MAX_MS: i32 = 1_800_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    /// Kafka's name of the state (ListGroups, DescribeGroups).
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// What a completed join tells one member.
#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, group instance id, metadata): for the leader only.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(error: i16, member_id: &str) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            protocol_type: None,
            protocol: None,
            leader: String::new(),
            member_id: member_id.to_string(),
            members: Vec::new(),
        }
    }
}

/// What SyncGroup tells one member.
#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: i16) -> SyncResult {
        SyncResult {
            error,
            protocol_type: None,
            protocol: None,
            assignment: Bytes::new(),
        }
    }
}

pub struct Member {
    pub instance_id: Option<String>,
    pub client_id: String,
    /// The member's address as the broker saw its connection (Kafka's "/127.0.0.1").
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    /// (protocol name, metadata), in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    /// Answers the member's pending JoinGroup and SyncGroup (if any) with `code`.
    fn fail_waiters(&mut self, code: i16, member_id: &str) {
        if let Some(w) = self.join_waiter.take() {
            let _ = w.send(JoinResult::error(code, member_id));
        }
        if let Some(w) = self.sync_waiter.take() {
            let _ = w.send(SyncResult::error(code));
        }
    }
}

/// A join request's parameters.
pub struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member first gets an id (ec::MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
    /// group.initial.rebalance.delay.ms: an empty group's first join waits this for more.
    pub initial_rebalance_delay_ms: u64,
}

fn answered(r: JoinResult) -> oneshot::Receiver<JoinResult> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(r);
    rx
}

pub struct Group {
    pub state: State,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// group.instance.id → member id.
    pub static_members: HashMap<String, String>,
    /// Member ids handed out with ec::MEMBER_ID_REQUIRED, not joined yet.
    pending: HashSet<String>,
    /// When the current join phase ends regardless of who rejoined.
    rebalance_deadline: Option<Instant>,
    /// The join phase may not end before this (initial delay of an empty group).
    not_before: Option<Instant>,
    pub offsets: HashMap<(String, i32), Committed>,
    /// Wall-clock ms since when the group has had no members, as first seen by this broker
    /// (`groups::Groups::tick`); None while it has members. A group replayed at start is
    /// empty since the start: Kafka's persisted empty-since time is not kept yet.
    pub empty_since_ms: Option<i64>,
    /// A generation completed or the group became empty since its metadata record was last
    /// written (`groups` writes it on its next tick).
    pub meta_dirty: bool,
    /// Commits appended but not yet durable: key → log offset of the newest one's batch.
    pending_commits: HashMap<(String, i32), u64>,
    /// Log offset of the batch that wrote each entry of `offsets` (absent: replayed).
    pub offset_positions: HashMap<(String, i32), u64>,
}

impl Default for Group {
    fn default() -> Self {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending: HashSet::new(),
            rebalance_deadline: None,
            not_before: None,
            offsets: HashMap::new(),
            empty_since_ms: None,
            meta_dirty: false,
            pending_commits: HashMap::new(),
            offset_positions: HashMap::new(),
        }
    }
}

impl Group {
    /// Handles a JoinGroup; the receiver resolves when the join phase completes (or at once).
    pub fn join(
        &mut self,
        p: JoinParams,
        new_member_id: impl FnOnce() -> String,
        now: Instant,
    ) -> oneshot::Receiver<JoinResult> {
        if !(SESSION_TIMEOUT_MIN_MS..=SESSION_TIMEOUT_MAX_MS).contains(&p.session_timeout_ms) {
            return answered(JoinResult::error(ec::INVALID_SESSION_TIMEOUT, &p.member_id));
        }
        if p.protocols.is_empty()
            || (!self.members.is_empty()
                && (self.protocol_type.as_deref() != Some(p.protocol_type.as_str())
                    || !p.protocols.iter().any(|(name, _)| self.all_support(name))))
        {
            return answered(JoinResult::error(
                ec::INCONSISTENT_GROUP_PROTOCOL,
                &p.member_id,
            ));
        }
        let mut member_id = p.member_id.clone();
        // A static member taking over its membership in a Stable group: the leader before the
        // takeover (Kafka answers it, so a restarted leader does not reassign).
        let mut stable_takeover: Option<String> = None;
        if member_id.is_empty() {
            if let Some(old) = p
                .instance_id
                .as_ref()
                .and_then(|i| self.static_members.get(i).cloned())
            {
                // A static member restarting: it takes over its old membership under a new id;
                // the old id is fenced.
                let new_id = new_member_id();
                if self.state == State::Stable && self.members.contains_key(&old) {
                    stable_takeover = Some(self.leader.clone().unwrap_or_default());
                }
                if let Some(mut m) = self.members.remove(&old) {
                    m.fail_waiters(ec::FENCED_INSTANCE_ID, &old);
                    self.members.insert(new_id.clone(), m);
                }
                if self.leader.as_deref() == Some(old.as_str()) {
                    self.leader = Some(new_id.clone());
                }
                member_id = new_id;
            } else {
                member_id = new_member_id();
                if p.require_known_member_id && p.instance_id.is_none() {
                    self.pending.insert(member_id.clone());
                    return answered(JoinResult::error(ec::MEMBER_ID_REQUIRED, &member_id));
                }
            }
        } else if !self.members.contains_key(&member_id) && !self.pending.remove(&member_id) {
            return answered(JoinResult::error(ec::UNKNOWN_MEMBER_ID, &member_id));
        }
        if let Some(instance) = &p.instance_id {
            if let Some(owner) = self.static_members.get(instance) {
                if *owner != member_id && self.members.contains_key(owner) {
                    return answered(JoinResult::error(ec::FENCED_INSTANCE_ID, &member_id));
                }
            }
            self.static_members
                .insert(instance.clone(), member_id.clone());
        }
        let session_timeout = Duration::from_millis(p.session_timeout_ms as u64);
        let rebalance_timeout =
            Duration::from_millis(p.rebalance_timeout_ms.max(p.session_timeout_ms) as u64);
        if let Some(leader) = stable_takeover {
            // KIP-345: no rebalance if the group's protocol is still supported; the member
            // keeps its assignment and gets it from SyncGroup of the current generation.
            let keeps_protocol = self
                .protocol
                .as_ref()
                .is_some_and(|sel| p.protocols.iter().any(|(n, _)| n == sel));
            if let (true, Some(m)) = (keeps_protocol, self.members.get_mut(&member_id)) {
                // The member's new id goes to the metadata record (Kafka stores the group).
                self.meta_dirty = true;
                m.session_timeout = session_timeout;
                m.rebalance_timeout = rebalance_timeout;
                m.protocols = p.protocols;
                m.last_heartbeat = now;
                return answered(JoinResult {
                    error: ec::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: self.protocol.clone(),
                    leader,
                    member_id,
                    members: Vec::new(),
                });
            }
        }
        let (tx, rx) = oneshot::channel();
        let m = self
            .members
            .entry(member_id.clone())
            .or_insert_with(|| Member {
                instance_id: p.instance_id.clone(),
                client_id: p.client_id.clone(),
                client_host: p.client_host.clone(),
                session_timeout,
                rebalance_timeout,
                protocols: Vec::new(),
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_waiter: None,
                sync_waiter: None,
            });
        m.session_timeout = session_timeout;
        m.rebalance_timeout = rebalance_timeout;
        m.protocols = p.protocols;
        m.last_heartbeat = now;
        if let Some(old) = m.join_waiter.replace(tx) {
            let _ = old.send(JoinResult::error(ec::UNKNOWN_MEMBER_ID, &member_id));
        }
        if self.protocol_type.is_none() || self.members.len() == 1 {
            self.protocol_type = Some(p.protocol_type);
        }
        match self.state {
            State::PreparingRebalance => {}
            State::Empty => {
                self.prepare_rebalance(now);
                self.not_before = Some(now + Duration::from_millis(p.initial_rebalance_delay_ms));
            }
            State::CompletingRebalance | State::Stable => self.prepare_rebalance(now),
        }
        self.try_complete_join(now);
        rx
    }

    fn all_support(&self, protocol: &str) -> bool {
        self.members
            .values()
            .all(|m| m.protocols.iter().any(|(n, _)| n == protocol))
    }

    /// Starts a join phase: members waiting in SyncGroup are told to rejoin.
    pub fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == State::PreparingRebalance {
            return;
        }
        for m in self.members.values_mut() {
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(ec::REBALANCE_IN_PROGRESS));
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.state = State::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
        self.not_before = None;
    }

    /// Ends the join phase if every member has rejoined (and any initial delay passed).
    pub fn try_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        if self.not_before.is_some_and(|t| now < t) {
            return;
        }
        if self.members.values().all(|m| m.join_waiter.is_some()) {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        self.generation += 1;
        // The metadata record is written when the group is Empty here, else when the leader's
        // SyncGroup makes it Stable (with the assignments), as Kafka's storeGroup.
        self.meta_dirty = self.members.is_empty();
        self.rebalance_deadline = None;
        self.not_before = None;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.leader = None;
            self.protocol = None;
            return;
        }
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().unwrap_or_default();
        // The leader's most preferred protocol every member supports.
        let protocol = self.members.get(&leader).and_then(|l| {
            l.protocols
                .iter()
                .map(|(n, _)| n.clone())
                .find(|n| self.all_support(n))
        });
        self.protocol = protocol.clone();
        self.state = State::CompletingRebalance;
        let metadata: Vec<(String, Option<String>, Bytes)> = self
            .members
            .iter()
            .map(|(id, m)| {
                let meta = self.protocol_metadata(m).cloned().unwrap_or_default();
                (id.clone(), m.instance_id.clone(), meta)
            })
            .collect();
        for (id, m) in self.members.iter_mut() {
            m.last_heartbeat = now;
            m.assignment = Bytes::new();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult {
                    error: ec::NONE,
                    generation: self.generation,
                    protocol_type: self.protocol_type.clone(),
                    protocol: protocol.clone(),
                    leader: leader.clone(),
                    member_id: id.clone(),
                    members: if *id == leader {
                        metadata.clone()
                    } else {
                        Vec::new()
                    },
                });
            }
        }
    }

    /// Restores the group from its metadata record (replay at start): Empty without members;
    /// otherwise Stable at the recorded generation, with every member, its subscription (as its
    /// metadata for the chosen protocol) and assignment, as Kafka's loadGroup. The members' session
    /// timers start `now`: consumers still running go on heartbeating with their member id and
    /// generation, and those gone are evicted after session.timeout.ms like any member.
    pub fn restore(&mut self, meta: GroupMeta, now: Instant) {
        for (id, mut m) in std::mem::take(&mut self.members) {
            m.fail_waiters(ec::UNKNOWN_MEMBER_ID, &id);
        }
        self.static_members.clear();
        self.pending.clear();
        self.rebalance_deadline = None;
        self.not_before = None;
        self.protocol_type = (!meta.protocol_type.is_empty()).then_some(meta.protocol_type);
        self.generation = meta.generation;
        self.meta_dirty = false;
        let Some(protocol) = meta.protocol.filter(|_| !meta.members.is_empty()) else {
            self.state = State::Empty;
            self.protocol = None;
            self.leader = None;
            self.empty_since_ms = (meta.state_timestamp >= 0).then_some(meta.state_timestamp);
            return;
        };
        for mm in meta.members {
            let millis = |ms: i32| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
            if let Some(instance) = &mm.instance_id {
                self.static_members
                    .insert(instance.clone(), mm.member_id.clone());
            }
            self.members.insert(
                mm.member_id,
                Member {
                    instance_id: mm.instance_id,
                    client_id: mm.client_id,
                    client_host: mm.client_host,
                    session_timeout: millis(mm.session_timeout_ms),
                    rebalance_timeout: millis(mm.rebalance_timeout_ms.max(mm.session_timeout_ms)),
                    protocols: vec![(protocol.clone(), Bytes::from(mm.subscription))],
                    assignment: Bytes::from(mm.assignment),
                    last_heartbeat: now,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        self.leader = meta.leader.filter(|l| self.members.contains_key(l));
        if self.leader.is_none() {
            self.leader = self.members.keys().next().cloned();
        }
        self.protocol = Some(protocol);
        self.state = State::Stable;
        self.empty_since_ms = None;
    }

    /// Checks a member id and generation (and instance id) against the group.
    pub fn check_member(&self, member_id: &str, instance_id: Option<&str>, generation: i32) -> i16 {
        if let Some(i) = instance_id {
            if self.static_members.get(i).is_some_and(|m| m != member_id) {
                return ec::FENCED_INSTANCE_ID;
            }
        }
        if !self.members.contains_key(member_id) {
            return ec::UNKNOWN_MEMBER_ID;
        }
        if generation != self.generation {
            return ec::ILLEGAL_GENERATION;
        }
        ec::NONE
    }

    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> oneshot::Receiver<SyncResult> {
        let (tx, rx) = oneshot::channel();
        let code = self.check_member(member_id, instance_id, generation);
        if code != ec::NONE {
            let _ = tx.send(SyncResult::error(code));
            return rx;
        }
        let ok = |g: &Group, assignment: Bytes| SyncResult {
            error: ec::NONE,
            protocol_type: g.protocol_type.clone(),
            protocol: g.protocol.clone(),
            assignment,
        };
        match self.state {
            State::Empty | State::PreparingRebalance => {
                let _ = tx.send(SyncResult::error(ec::REBALANCE_IN_PROGRESS));
            }
            State::Stable => {
                let a = self
                    .members
                    .get(member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                let _ = tx.send(ok(self, a));
            }
            State::CompletingRebalance => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.sync_waiter = Some(tx);
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    self.state = State::Stable;
                    self.meta_dirty = true;
                    let (pt, pn) = (self.protocol_type.clone(), self.protocol.clone());
                    for (id, m) in self.members.iter_mut() {
                        m.assignment = given.remove(id).unwrap_or_default();
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(SyncResult {
                                error: ec::NONE,
                                protocol_type: pt.clone(),
                                protocol: pn.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                    }
                }
            }
        }
        rx
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        let code = self.check_member(member_id, instance_id, generation);
        if code == ec::UNKNOWN_MEMBER_ID || code == ec::FENCED_INSTANCE_ID {
            return code;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        if self.state == State::PreparingRebalance {
            return ec::REBALANCE_IN_PROGRESS;
        }
        code
    }

    /// Drops a member and its static-instance entry, if that entry is still this member's (a
    /// newer member with the same group.instance.id may already own it).
    fn forget_member(&mut self, member_id: &str) -> Option<Member> {
        let m = self.members.remove(member_id)?;
        if let Some(i) = &m.instance_id {
            if self.static_members.get(i).is_some_and(|id| id == member_id) {
                self.static_members.remove(i);
            }
        }
        Some(m)
    }

    /// Removes a member (LeaveGroup or eviction) and rebalances the rest.
    pub fn remove_member(&mut self, member_id: &str, now: Instant) -> bool {
        let Some(mut m) = self.forget_member(member_id) else {
            return false;
        };
        m.fail_waiters(ec::UNKNOWN_MEMBER_ID, member_id);
        match self.state {
            State::Empty => {}
            State::PreparingRebalance => self.try_complete_join(now),
            State::CompletingRebalance | State::Stable => {
                if self.members.is_empty() {
                    self.complete_join(now);
                } else {
                    self.prepare_rebalance(now);
                }
            }
        }
        if self.members.is_empty() && self.state == State::PreparingRebalance {
            self.complete_join(now);
        }
        true
    }

    /// The member id registered for a static instance id.
    pub fn member_of_instance(&self, instance_id: &str) -> Option<String> {
        self.static_members.get(instance_id).cloned()
    }

    /// Timers: evicts members whose session expired, ends a join phase whose rebalance timeout
    /// passed (evicting members that did not rejoin) or whose initial delay ended.
    pub fn tick(&mut self, now: Instant) -> Vec<String> {
        let mut evicted = Vec::new();
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.join_waiter.is_none() && now.duration_since(m.last_heartbeat) > m.session_timeout
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if self.state == State::PreparingRebalance {
                // Handled by the rebalance deadline below.
                continue;
            }
            self.remove_member(&id, now);
            evicted.push(id);
        }
        if self.state == State::PreparingRebalance {
            if self.rebalance_deadline.is_some_and(|d| now >= d) {
                let late: Vec<String> = self
                    .members
                    .iter()
                    .filter(|(_, m)| m.join_waiter.is_none())
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in late {
                    self.forget_member(&id);
                    evicted.push(id);
                }
                self.complete_join(now);
            } else {
                self.try_complete_join(now);
            }
        }
        evicted
    }

    /// A commit of `keys` was appended at log offset `at` (called before any await, so in log
    /// order).
    pub fn commit_appended(&mut self, keys: &[(String, i32)], at: u64) {
        for k in keys {
            self.pending_commits.insert(k.clone(), at);
        }
    }

    /// The commit appended at `at` is durable: it becomes the committed offset unless a deletion
    /// of the key was appended after it, or a newer commit already landed (Kafka's rule, so memory
    /// ends as a replay of the log would).
    pub fn commit_durable(&mut self, key: (String, i32), committed: Committed, at: u64) {
        match self.pending_commits.get(&key) {
            None => return,
            Some(p) if *p == at => {
                self.pending_commits.remove(&key);
            }
            Some(_) => {}
        }
        if self.offset_positions.get(&key).is_some_and(|p| *p > at) {
            return;
        }
        self.offset_positions.insert(key.clone(), at);
        self.offsets.insert(key, committed);
    }

    /// A member's metadata for the group's chosen protocol (None before one is chosen).
    pub fn protocol_metadata<'a>(&self, m: &'a Member) -> Option<&'a Bytes> {
        let chosen = self.protocol.as_ref()?;
        m.protocols
            .iter()
            .find(|(n, _)| n == chosen)
            .map(|(_, md)| md)
    }

    /// Whether a commit is in flight (the group must stay in memory for it).
    pub fn has_pending_commits(&self) -> bool {
        !self.pending_commits.is_empty()
    }

    /// Whether the group is Empty with no members, offsets or commits in flight: what is left
    /// of it is only its metadata record (removed with a group tombstone).
    pub fn is_empty_without_offsets(&self) -> bool {
        self.state == State::Empty
            && self.members.is_empty()
            && self.offsets.is_empty()
            && !self.has_pending_commits()
    }

    /// Tombstones of `keys` were appended: commits of them still in flight are void.
    pub fn offsets_deleted(&mut self, keys: &[(String, i32)]) {
        for k in keys {
            self.pending_commits.remove(k);
        }
    }

    /// Whether the group holds nothing worth keeping in memory: no members, no offsets, and no
    /// protocol type (a group that had members is kept, Empty, until its offsets expire, as
    /// Kafka does).
    pub fn is_dead(&self) -> bool {
        self.state == State::Empty
            && self.protocol_type.is_none()
            && self.pending_commits.is_empty()
            && self.members.is_empty()
            && self.offsets.is_empty()
            && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: i64) -> Committed {
        Committed {
            offset,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 0,
        }
    }

    fn key() -> (String, i32) {
        ("t".to_string(), 0)
    }

    #[test]
    fn commits_land_in_log_order_whatever_order_they_become_durable() {
        let mut g = Group::default();
        g.commit_appended(&[key()], 10);
        g.commit_appended(&[key()], 11);
        // The newer one is durable first; the older must not overwrite it.
        g.commit_durable(key(), c(2), 11);
        g.commit_durable(key(), c(1), 10);
        assert_eq!(g.offsets[&key()].offset, 2);
        assert!(!g.has_pending_commits());

        // In order: the newer one wins too.
        g.commit_appended(&[key()], 20);
        g.commit_appended(&[key()], 21);
        g.commit_durable(key(), c(3), 20);
        assert_eq!(g.offsets[&key()].offset, 3);
        g.commit_durable(key(), c(4), 21);
        assert_eq!(g.offsets[&key()].offset, 4);
    }

    #[test]
    fn a_restored_group_is_stable_with_its_members_until_their_sessions_expire() {
        use super::super::offsets::MetaMember;
        let member = |id: &str, session_timeout_ms| MetaMember {
            member_id: id.into(),
            instance_id: (id == "b").then(|| "inst-b".to_string()),
            client_id: "client".into(),
            client_host: "/10.0.0.1".into(),
            rebalance_timeout_ms: 20_000,
            session_timeout_ms,
            subscription: b"sub".to_vec(),
            assignment: format!("assignment of {id}").into_bytes(),
        };
        let meta = GroupMeta {
            protocol_type: "consumer".into(),
            generation: 7,
            protocol: Some("range".into()),
            leader: Some("b".into()),
            state_timestamp: 1_000,
            members: vec![member("a", 10_000), member("b", 30_000)],
        };
        let start = Instant::now();
        let mut g = Group::default();
        g.restore(meta.clone(), start);
        assert_eq!((g.state, g.generation), (State::Stable, 7));
        assert_eq!(g.leader.as_deref(), Some("b"));
        assert_eq!(g.member_of_instance("inst-b").as_deref(), Some("b"));
        assert_eq!(g.members["a"].client_host, "/10.0.0.1");
        // Heartbeats and SyncGroup of the restored generation work with the old member ids.
        assert_eq!(g.heartbeat("a", None, 7, start), ec::NONE);
        assert_eq!(g.heartbeat("a", None, 6, start), ec::ILLEGAL_GENERATION);
        let mut rx = g.sync("b", Some("inst-b"), 7, Vec::new());
        let synced = rx.try_recv().unwrap().unwrap();
        assert_eq!(
            (synced.error, &synced.assignment[..]),
            (ec::NONE, &b"assignment of b"[..])
        );
        // Member a keeps heartbeating; b is gone: after its session timeout it is evicted and a
        // rebalance starts for the rest.
        let later = start + Duration::from_secs(25);
        assert_eq!(g.heartbeat("a", None, 7, later), ec::NONE);
        assert!(g.tick(later).is_empty());
        let evicted = g.tick(start + Duration::from_secs(31));
        assert_eq!(evicted, vec!["b".to_string()]);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(g.member_of_instance("inst-b"), None);

        // A record without members restores an Empty group with its empty-since time.
        let mut g = Group::default();
        g.restore(
            GroupMeta {
                members: Vec::new(),
                protocol: None,
                ..meta
            },
            start,
        );
        assert_eq!((g.state, g.generation), (State::Empty, 7));
        assert_eq!(g.empty_since_ms, Some(1_000));
        assert!(g.members.is_empty());
    }

    #[test]
    fn a_commit_appended_before_a_deletion_does_not_come_back() {
        let mut g = Group::default();
        g.commit_appended(&[key()], 10);
        g.offsets_deleted(&[key()]);
        g.commit_durable(key(), c(1), 10);
        assert!(!g.offsets.contains_key(&key()));
        assert!(g.is_dead());

        // One appended after the deletion lands.
        g.commit_appended(&[key()], 12);
        assert!(!g.is_dead(), "a group with a commit in flight stays");
        g.commit_durable(key(), c(5), 12);
        assert_eq!(g.offsets[&key()].offset, 5);
    }
}
