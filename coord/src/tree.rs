//! The replicated state machine: ZooKeeper's znode tree plus the session table.
//!
//! Owns: znodes, stats, sequential counters, ephemeral ownership, sessions, cluster membership
//! addresses, and the watch events each change fires. `apply` is a pure function of
//! (tree, zxid, time, command), so every replica that applies the same log ends identical.
//! Must not: read clocks, do I/O, or keep per-connection state (watch registrations live in the
//! server, which matches them against the events returned here).

use std::collections::BTreeMap;

use imbl::{OrdMap, OrdSet};

use serde::{Deserialize, Serialize};

use crate::proto::{
    acl_allows, parent_of, validate_path, Acl, CommandBody, CreateMode, EventKind, Op, OpResult,
    Response, Stat, WatchEvent, ZkError, DATA_BYTES_MAX, PERM_ADMIN, PERM_CREATE, PERM_DELETE,
    PERM_READ, PERM_WRITE,
};

/// One znode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ZNode {
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
    pub stat: Stat,
    pub children: OrdSet<String>,
    /// ZooKeeper ACL; empty = open to everyone (nodes made through weir's own protocol).
    pub acl: Vec<Acl>,
    /// Deleted in the same apply as its last child's deletion.
    pub container: bool,
    /// TTL node: the leader deletes it once childless and unmodified for this long (0 = none).
    pub ttl_ms: u64,
}

/// One session: its timeout and the ephemeral nodes it owns.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Session {
    pub timeout_ms: u64,
    pub ephemerals: OrdSet<String>,
    /// ZooKeeper session password (empty for sessions of weir's own protocol).
    #[serde(with = "serde_bytes")]
    pub passwd: Vec<u8>,
}

/// Session timeouts are clamped to this range (ZooKeeper: 2..20 ticks of 2 s).
pub const SESSION_TIMEOUT_MS_MIN: u64 = 500;
pub const SESSION_TIMEOUT_MS_MAX: u64 = 60_000;

/// The znode tree, the sessions, and the members' addresses.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct DataTree {
    nodes: OrdMap<String, ZNode>,
    sessions: OrdMap<u64, Session>,
    /// Raft id → address, replicated so that a restarted or joining node learns its peers.
    pub members: BTreeMap<u64, String>,
    /// Paths of TTL nodes (the leader scans these for expiry).
    ttl_nodes: OrdSet<String>,
}

/// `world:anyone` with every permission is stored as the empty list (both mean open to all):
/// most znodes have it, and it then costs nothing per node in memory and snapshots.
fn normalize_acl(acl: &[Acl]) -> Vec<Acl> {
    match acl {
        [a] if a.perms == crate::proto::PERM_ALL && a.scheme == "world" && a.id == "anyone" => {
            Vec::new()
        }
        _ => acl.to_vec(),
    }
}

/// Undo record for multi rollback.
enum Undo {
    Node(String, Option<ZNode>),
    Session(u64, Option<Session>),
    /// Whether the path was in `ttl_nodes` before.
    Ttl(String, bool),
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    pub fn new() -> Self {
        let mut nodes = OrdMap::new();
        nodes.insert(
            "/".to_string(),
            ZNode {
                data: Vec::new(),
                stat: Stat::default(),
                children: OrdSet::new(),
                acl: Vec::new(),
                container: false,
                ttl_ms: 0,
            },
        );
        DataTree {
            nodes,
            sessions: OrdMap::new(),
            members: BTreeMap::new(),
            ttl_nodes: OrdSet::new(),
        }
    }

    /// Ephemeral znodes, over all sessions.
    pub fn ephemeral_count(&self) -> usize {
        self.sessions.values().map(|s| s.ephemerals.len()).sum()
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub fn session(&self, id: u64) -> Option<&Session> {
        self.sessions.get(&id)
    }

    pub fn session_ids(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.sessions.iter().map(|(id, s)| (*id, s.timeout_ms))
    }

    pub fn get(&self, path: &str) -> Result<(&[u8], Stat), ZkError> {
        validate_path(path)?;
        let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        Ok((&n.data, self.stat_of(n)))
    }

    pub fn exists(&self, path: &str) -> Result<Option<Stat>, ZkError> {
        validate_path(path)?;
        Ok(self.nodes.get(path).map(|n| self.stat_of(n)))
    }

    pub fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ZkError> {
        validate_path(path)?;
        let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        Ok((n.children.iter().cloned().collect(), self.stat_of(n)))
    }

    /// The node itself (ACL, container/TTL flags), for the ZooKeeper frontend.
    pub fn node(&self, path: &str) -> Option<&ZNode> {
        self.nodes.get(path)
    }

    /// Number of descendants of `path` (ZooKeeper's getAllChildrenNumber).
    pub fn descendant_count(&self, path: &str) -> usize {
        let prefix = if path == "/" {
            "/".to_string()
        } else {
            format!("{path}/")
        };
        self.nodes
            .range::<_, str>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| k.as_str() != "/")
            .count()
    }

    /// TTL nodes that are childless and unmodified for their TTL at `now_ms`, with their
    /// versions (the leader proposes a versioned delete for each).
    pub fn expired_ttl_nodes(&self, now_ms: u64) -> Vec<(String, i32)> {
        self.ttl_nodes
            .iter()
            .filter_map(|p| {
                let n = self.nodes.get(p)?;
                (n.children.is_empty() && now_ms >= n.stat.mtime_ms.saturating_add(n.ttl_ms))
                    .then(|| (p.clone(), n.stat.version))
            })
            .collect()
    }

    /// Checks that `auth` may do `perm` on `path` (NONODE if it does not exist).
    pub fn check_acl(&self, path: &str, perm: i32, auth: Option<&[String]>) -> Result<(), ZkError> {
        let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
        if acl_allows(&n.acl, perm, auth) {
            Ok(())
        } else {
            Err(ZkError::NoAuth)
        }
    }

    /// The stat of `n` as clients see it (with its data length and child count).
    pub fn stat_of(&self, n: &ZNode) -> Stat {
        let mut s = n.stat;
        s.data_length = n.data.len() as u32;
        s.num_children = n.children.len() as u32;
        s
    }

    /// Checks the tree's structural invariants (parent/child links, ephemeral ownership both
    /// ways, no children under ephemerals). For tests and the simulator: O(tree).
    pub fn check_invariants(&self) -> Result<(), String> {
        for (path, n) in &self.nodes {
            for c in &n.children {
                let child = if path == "/" {
                    format!("/{c}")
                } else {
                    format!("{path}/{c}")
                };
                if !self.nodes.contains_key(&child) {
                    return Err(format!("{path} lists missing child {child}"));
                }
            }
            if path != "/" {
                let parent = parent_of(path);
                let name = path[parent.len()..].trim_start_matches('/');
                match self.nodes.get(parent) {
                    Some(p) if p.children.contains(name) => {}
                    _ => return Err(format!("{path} is not listed by its parent {parent}")),
                }
            }
            let owner = n.stat.ephemeral_owner;
            if owner != 0 {
                if !n.children.is_empty() {
                    return Err(format!("ephemeral {path} has children"));
                }
                match self.sessions.get(&owner) {
                    Some(s) if s.ephemerals.contains(path) => {}
                    _ => return Err(format!("ephemeral {path} owned by dead session {owner}")),
                }
            }
        }
        for (id, s) in &self.sessions {
            for e in &s.ephemerals {
                match self.nodes.get(e) {
                    Some(n) if n.stat.ephemeral_owner == *id => {}
                    _ => return Err(format!("session {id} lists missing ephemeral {e}")),
                }
            }
        }
        Ok(())
    }

    /// A digest of the whole state, for replica comparison in tests.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.nodes.hash(&mut h);
        self.sessions.hash(&mut h);
        self.members.hash(&mut h);
        h.finish()
    }

    /// A new session whose id is the zxid that created it (weir's own sessions have no password).
    fn open_session(&mut self, zxid: u64, timeout_ms: u64, passwd: Vec<u8>) -> Response {
        let timeout_ms = timeout_ms.clamp(SESSION_TIMEOUT_MS_MIN, SESSION_TIMEOUT_MS_MAX);
        self.sessions.insert(
            zxid,
            Session {
                timeout_ms,
                ephemerals: OrdSet::new(),
                passwd,
            },
        );
        Response::Session {
            session: zxid,
            timeout_ms,
        }
    }

    /// Applies one committed command at log index `zxid`. Returns the reply and the watch events
    /// (empty when the command failed: a failed write changes nothing).
    pub fn apply(
        &mut self,
        zxid: u64,
        time_ms: u64,
        body: &CommandBody,
    ) -> (Result<Response, ZkError>, Vec<WatchEvent>) {
        let mut events = Vec::new();
        let result = match body {
            CommandBody::CreateSession { timeout_ms } => {
                Ok(self.open_session(zxid, *timeout_ms, Vec::new()))
            }
            CommandBody::CreateZkSession { timeout_ms, passwd } => {
                Ok(self.open_session(zxid, *timeout_ms, passwd.clone()))
            }
            CommandBody::CloseSession { session } => {
                self.close_session(*session, zxid, time_ms, &mut events);
                Ok(Response::Closed)
            }
            CommandBody::Ops {
                session,
                ops,
                multi,
            } => self.apply_ops(*session, None, zxid, time_ms, ops, *multi, &mut events),
            CommandBody::ZkOps {
                session,
                auth,
                ops,
                multi,
            } => self.apply_ops(
                *session,
                Some(auth.as_slice()),
                zxid,
                time_ms,
                ops,
                *multi,
                &mut events,
            ),
        };
        if result.is_err() {
            events.clear();
        }
        (result, events)
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_ops(
        &mut self,
        session: u64,
        auth: Option<&[String]>,
        zxid: u64,
        time_ms: u64,
        ops: &[Op],
        multi: bool,
        events: &mut Vec<WatchEvent>,
    ) -> Result<Response, ZkError> {
        if session != 0 && !self.sessions.contains_key(&session) {
            Err(ZkError::SessionExpired)
        } else if multi {
            self.apply_multi(session, auth, zxid, time_ms, ops, events)
                .map(Response::Multi)
        } else if let [op] = ops {
            self.apply_op(session, auth, zxid, time_ms, op, events, None)
                .map(Response::Op)
        } else {
            Err(ZkError::BadArguments("single write with != 1 op".into()))
        }
    }

    fn close_session(&mut self, session: u64, zxid: u64, time_ms: u64, ev: &mut Vec<WatchEvent>) {
        let Some(s) = self.sessions.remove(&session) else {
            return;
        };
        for path in s.ephemerals.iter().rev() {
            let op = Op::Delete {
                path: path.clone(),
                version: -1,
            };
            // An ephemeral has no children, so this cannot fail; if it does the tree was already
            // consistent without the node.
            let _ = self.apply_op(0, None, zxid, time_ms, &op, ev, None);
        }
    }

    fn apply_multi(
        &mut self,
        session: u64,
        auth: Option<&[String]>,
        zxid: u64,
        time_ms: u64,
        ops: &[Op],
        ev: &mut Vec<WatchEvent>,
    ) -> Result<Vec<OpResult>, ZkError> {
        let mut undo = Vec::new();
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            match self.apply_op(session, auth, zxid, time_ms, op, ev, Some(&mut undo)) {
                Ok(r) => results.push(r),
                Err(e) => {
                    for u in undo.into_iter().rev() {
                        match u {
                            Undo::Node(p, Some(n)) => {
                                self.nodes.insert(p, n);
                            }
                            Undo::Node(p, None) => {
                                self.nodes.remove(&p);
                            }
                            Undo::Session(id, Some(s)) => {
                                self.sessions.insert(id, s);
                            }
                            Undo::Session(id, None) => {
                                self.sessions.remove(&id);
                            }
                            Undo::Ttl(p, true) => {
                                self.ttl_nodes.insert(p);
                            }
                            Undo::Ttl(p, false) => {
                                self.ttl_nodes.remove(&p);
                            }
                        }
                    }
                    return Err(ZkError::MultiFailed {
                        index: i as u32,
                        error: Box::new(e),
                    });
                }
            }
        }
        Ok(results)
    }

    fn save(&self, undo: &mut Option<&mut Vec<Undo>>, path: &str) {
        if let Some(u) = undo {
            u.push(Undo::Node(path.to_string(), self.nodes.get(path).cloned()));
        }
    }

    fn save_session(&self, undo: &mut Option<&mut Vec<Undo>>, id: u64) {
        if let Some(u) = undo {
            u.push(Undo::Session(id, self.sessions.get(&id).cloned()));
        }
    }

    fn save_ttl(&self, undo: &mut Option<&mut Vec<Undo>>, path: &str) {
        if let Some(u) = undo {
            u.push(Undo::Ttl(path.to_string(), self.ttl_nodes.contains(path)));
        }
    }

    fn check_version(expected: i32, actual: i32) -> Result<(), ZkError> {
        if expected != -1 && expected != actual {
            return Err(ZkError::BadVersion);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_op(
        &mut self,
        session: u64,
        auth: Option<&[String]>,
        zxid: u64,
        time_ms: u64,
        op: &Op,
        ev: &mut Vec<WatchEvent>,
        undo: Option<&mut Vec<Undo>>,
    ) -> Result<OpResult, ZkError> {
        match op {
            Op::Create { path, data, mode } => self.create(
                session,
                auth,
                zxid,
                time_ms,
                (path, data, *mode, &[], 0),
                ev,
                undo,
            ),
            Op::CreateZk {
                path,
                data,
                mode,
                acl,
                ttl_ms,
            } => self.create(
                session,
                auth,
                zxid,
                time_ms,
                (path, data, *mode, acl, *ttl_ms),
                ev,
                undo,
            ),
            other => self.apply_change(session, auth, zxid, time_ms, other, ev, undo),
        }
    }

    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn create(
        &mut self,
        session: u64,
        auth: Option<&[String]>,
        zxid: u64,
        time_ms: u64,
        (path, data, mode, acl, ttl_ms): (&String, &Vec<u8>, CreateMode, &[Acl], u64),
        ev: &mut Vec<WatchEvent>,
        mut undo: Option<&mut Vec<Undo>>,
    ) -> Result<OpResult, ZkError> {
        {
            {
                validate_path(path)?;
                if path == "/" {
                    return Err(ZkError::NodeExists);
                }
                if data.len() > DATA_BYTES_MAX {
                    return Err(ZkError::BadArguments("data larger than 1 MiB".into()));
                }
                if mode.is_ephemeral() && session == 0 {
                    return Err(ZkError::BadArguments(
                        "ephemeral node without a session".into(),
                    ));
                }
                if mode.is_ttl() && ttl_ms == 0 {
                    return Err(ZkError::BadArguments("TTL node without a TTL".into()));
                }
                if auth.is_some() && acl.is_empty() {
                    return Err(ZkError::InvalidAcl);
                }
                let parent_path = parent_of(path).to_string();
                let parent = self.nodes.get(&parent_path).ok_or(ZkError::NoNode)?;
                if !acl_allows(&parent.acl, PERM_CREATE, auth) {
                    return Err(ZkError::NoAuth);
                }
                if parent.stat.ephemeral_owner != 0 {
                    return Err(ZkError::NoChildrenForEphemerals);
                }
                let full = if mode.is_sequential() {
                    format!("{path}{:010}", parent.stat.cversion)
                } else {
                    path.clone()
                };
                if self.nodes.contains_key(&full) {
                    return Err(ZkError::NodeExists);
                }
                self.save(&mut undo, &parent_path);
                self.save(&mut undo, &full);
                let name = full[parent_path.len()..]
                    .trim_start_matches('/')
                    .to_string();
                if let Some(parent) = self.nodes.get_mut(&parent_path) {
                    parent.children.insert(name);
                    parent.stat.cversion += 1;
                    parent.stat.pzxid = zxid;
                }
                let owner = if mode.is_ephemeral() { session } else { 0 };
                if owner != 0 {
                    self.save_session(&mut undo, owner);
                    if let Some(s) = self.sessions.get_mut(&owner) {
                        s.ephemerals.insert(full.clone());
                    }
                }
                let stat = Stat {
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime_ms: time_ms,
                    mtime_ms: time_ms,
                    version: 0,
                    cversion: 0,
                    aversion: 0,
                    ephemeral_owner: owner,
                    data_length: data.len() as u32,
                    num_children: 0,
                };
                let ttl_ms = if mode.is_ttl() { ttl_ms } else { 0 };
                if ttl_ms > 0 {
                    self.save_ttl(&mut undo, &full);
                    self.ttl_nodes.insert(full.clone());
                }
                self.nodes.insert(
                    full.clone(),
                    ZNode {
                        data: data.clone(),
                        stat,
                        children: OrdSet::new(),
                        acl: normalize_acl(acl),
                        container: mode == CreateMode::Container,
                        ttl_ms,
                    },
                );
                ev.push(WatchEvent {
                    kind: EventKind::NodeCreated,
                    path: full.clone(),
                    zxid,
                });
                ev.push(WatchEvent {
                    kind: EventKind::NodeChildrenChanged,
                    path: parent_path,
                    zxid,
                });
                Ok(OpResult::Created { path: full, stat })
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn apply_change(
        &mut self,
        session: u64,
        auth: Option<&[String]>,
        zxid: u64,
        time_ms: u64,
        op: &Op,
        ev: &mut Vec<WatchEvent>,
        mut undo: Option<&mut Vec<Undo>>,
    ) -> Result<OpResult, ZkError> {
        match op {
            Op::Create { .. } | Op::CreateZk { .. } => {
                self.apply_op(session, auth, zxid, time_ms, op, ev, undo)
            }
            Op::Set {
                path,
                data,
                version,
            } => {
                validate_path(path)?;
                if data.len() > DATA_BYTES_MAX {
                    return Err(ZkError::BadArguments("data larger than 1 MiB".into()));
                }
                let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                if !acl_allows(&n.acl, PERM_WRITE, auth) {
                    return Err(ZkError::NoAuth);
                }
                Self::check_version(*version, n.stat.version)?;
                self.save(&mut undo, path);
                let n = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
                n.data.clone_from(data);
                n.stat.version += 1;
                n.stat.mzxid = zxid;
                n.stat.mtime_ms = time_ms;
                let stat = {
                    let n = &*n;
                    let mut s = n.stat;
                    s.data_length = n.data.len() as u32;
                    s.num_children = n.children.len() as u32;
                    s
                };
                ev.push(WatchEvent {
                    kind: EventKind::NodeDataChanged,
                    path: path.clone(),
                    zxid,
                });
                Ok(OpResult::Set { stat })
            }
            Op::Delete { path, version } => {
                validate_path(path)?;
                if path == "/" {
                    return Err(ZkError::BadArguments("cannot delete /".into()));
                }
                let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                let parent_path = parent_of(path).to_string();
                if let Some(p) = self.nodes.get(&parent_path) {
                    if !acl_allows(&p.acl, PERM_DELETE, auth) {
                        return Err(ZkError::NoAuth);
                    }
                }
                Self::check_version(*version, n.stat.version)?;
                if !n.children.is_empty() {
                    return Err(ZkError::NotEmpty);
                }
                let owner = n.stat.ephemeral_owner;
                self.save(&mut undo, path);
                self.save(&mut undo, &parent_path);
                if n.ttl_ms > 0 {
                    self.save_ttl(&mut undo, path);
                    self.ttl_nodes.remove(path);
                }
                self.nodes.remove(path);
                if owner != 0 {
                    self.save_session(&mut undo, owner);
                    if let Some(s) = self.sessions.get_mut(&owner) {
                        s.ephemerals.remove(path);
                    }
                }
                let name = &path[parent_path.len()..].trim_start_matches('/');
                if let Some(parent) = self.nodes.get_mut(&parent_path) {
                    parent.children.remove(*name);
                    parent.stat.cversion += 1;
                    parent.stat.pzxid = zxid;
                }
                ev.push(WatchEvent {
                    kind: EventKind::NodeDeleted,
                    path: path.clone(),
                    zxid,
                });
                ev.push(WatchEvent {
                    kind: EventKind::NodeChildrenChanged,
                    path: parent_path.clone(),
                    zxid,
                });
                // A container goes with its last child (ZooKeeper deletes it on a later scan;
                // doing it in the same apply keeps the tree a pure function of the log).
                let empty_container = self
                    .nodes
                    .get(&parent_path)
                    .is_some_and(|p| p.container && p.children.is_empty());
                if empty_container {
                    let del = Op::Delete {
                        path: parent_path,
                        version: -1,
                    };
                    self.apply_change(0, None, zxid, time_ms, &del, ev, undo)?;
                }
                Ok(OpResult::Deleted)
            }
            Op::Check { path, version } => {
                validate_path(path)?;
                let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                if !acl_allows(&n.acl, PERM_READ, auth) {
                    return Err(ZkError::NoAuth);
                }
                Self::check_version(*version, n.stat.version)?;
                Ok(OpResult::Checked)
            }
            Op::SetAcl { path, acl, version } => {
                validate_path(path)?;
                if acl.is_empty() {
                    return Err(ZkError::InvalidAcl);
                }
                let n = self.nodes.get(path).ok_or(ZkError::NoNode)?;
                if !acl_allows(&n.acl, PERM_ADMIN, auth) {
                    return Err(ZkError::NoAuth);
                }
                Self::check_version(*version, n.stat.aversion)?;
                self.save(&mut undo, path);
                let n = self.nodes.get_mut(path).ok_or(ZkError::NoNode)?;
                n.acl = normalize_acl(acl);
                n.stat.aversion += 1;
                let mut stat = n.stat;
                stat.data_length = n.data.len() as u32;
                stat.num_children = n.children.len() as u32;
                Ok(OpResult::AclSet { stat })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::CreateMode;

    fn create(path: &str, mode: CreateMode) -> Op {
        Op::Create {
            path: path.into(),
            data: b"x".to_vec(),
            mode,
        }
    }

    fn ops(session: u64, ops: Vec<Op>, multi: bool) -> CommandBody {
        CommandBody::Ops {
            session,
            ops,
            multi,
        }
    }

    /// The tree's persistent maps and sets (imbl) encode exactly as the `BTreeMap`/`BTreeSet`
    /// they replaced (a length, then the entries in key order), so snapshots written before the
    /// change still read, and the FORMAT version did not change.
    #[test]
    fn snapshot_bytes_are_those_of_the_btree_tree() {
        use std::collections::BTreeSet;
        #[derive(Serialize)]
        struct ZNodeThen {
            #[serde(with = "serde_bytes")]
            data: Vec<u8>,
            stat: Stat,
            children: BTreeSet<String>,
            acl: Vec<Acl>,
            container: bool,
            ttl_ms: u64,
        }
        #[derive(Serialize)]
        struct SessionThen {
            timeout_ms: u64,
            ephemerals: BTreeSet<String>,
            #[serde(with = "serde_bytes")]
            passwd: Vec<u8>,
        }
        #[derive(Serialize)]
        struct TreeThen {
            nodes: BTreeMap<String, ZNodeThen>,
            sessions: BTreeMap<u64, SessionThen>,
            members: BTreeMap<u64, String>,
            ttl_nodes: BTreeSet<String>,
        }
        let mut t = DataTree::new();
        t.members.insert(1, "127.0.0.1:2281".into());
        let (r, _) = t.apply(
            1,
            0,
            &CommandBody::CreateZkSession {
                timeout_ms: 4_000,
                passwd: vec![7; 16],
            },
        );
        let Ok(Response::Session { session, .. }) = r else {
            panic!("{r:?}")
        };
        for (i, path) in ["/b", "/a", "/b/z", "/b/c"].iter().enumerate() {
            let r = t.apply(
                2 + i as u64,
                0,
                &ops(0, vec![create(path, CreateMode::Persistent)], false),
            );
            assert!(r.0.is_ok());
        }
        let r = t.apply(
            9,
            0,
            &ops(
                session,
                vec![create("/a/mine", CreateMode::Ephemeral)],
                false,
            ),
        );
        assert!(r.0.is_ok());
        let then = TreeThen {
            nodes: t
                .nodes
                .iter()
                .map(|(k, n)| {
                    let n = ZNodeThen {
                        data: n.data.clone(),
                        stat: n.stat,
                        children: n.children.iter().cloned().collect(),
                        acl: n.acl.clone(),
                        container: n.container,
                        ttl_ms: n.ttl_ms,
                    };
                    (k.clone(), n)
                })
                .collect(),
            sessions: t
                .sessions
                .iter()
                .map(|(k, s)| {
                    let s = SessionThen {
                        timeout_ms: s.timeout_ms,
                        ephemerals: s.ephemerals.iter().cloned().collect(),
                        passwd: s.passwd.clone(),
                    };
                    (*k, s)
                })
                .collect(),
            members: t.members.clone(),
            ttl_nodes: t.ttl_nodes.iter().cloned().collect(),
        };
        assert_eq!(then.nodes.len(), 6, "root, /a, /b, /b/z, /b/c, /a/mine");
        assert_eq!(
            crate::proto::encode(&t).unwrap(),
            crate::proto::encode(&then).unwrap()
        );
        let back: DataTree = crate::proto::decode(&crate::proto::encode(&then).unwrap()).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn create_get_set_cas_delete() {
        let mut t = DataTree::new();
        let (r, ev) = t.apply(
            1,
            10,
            &ops(0, vec![create("/a", CreateMode::Persistent)], false),
        );
        assert!(r.is_ok());
        assert_eq!(ev.len(), 2);
        assert_eq!(
            t.apply(
                2,
                11,
                &ops(0, vec![create("/a", CreateMode::Persistent)], false)
            )
            .0,
            Err(ZkError::NodeExists)
        );
        assert_eq!(
            t.apply(
                2,
                11,
                &ops(0, vec![create("/x/y", CreateMode::Persistent)], false)
            )
            .0,
            Err(ZkError::NoNode)
        );
        let set = |v: i32| Op::Set {
            path: "/a".into(),
            data: b"y".to_vec(),
            version: v,
        };
        assert!(t.apply(3, 12, &ops(0, vec![set(0)], false)).0.is_ok());
        // Stale version: CAS fails and nothing changes.
        let (r, ev) = t.apply(4, 13, &ops(0, vec![set(0)], false));
        assert_eq!(r, Err(ZkError::BadVersion));
        assert!(ev.is_empty());
        let (data, stat) = t.get("/a").unwrap();
        assert_eq!(data, b"y");
        assert_eq!(
            (stat.version, stat.czxid, stat.mzxid, stat.mtime_ms),
            (1, 1, 3, 12)
        );
        assert_eq!(t.get("/").unwrap().1.num_children, 1);
        assert_eq!(
            t.apply(
                5,
                14,
                &ops(
                    0,
                    vec![Op::Delete {
                        path: "/a".into(),
                        version: 0
                    }],
                    false
                )
            )
            .0,
            Err(ZkError::BadVersion)
        );
        assert!(t
            .apply(
                5,
                14,
                &ops(
                    0,
                    vec![Op::Delete {
                        path: "/a".into(),
                        version: 1
                    }],
                    false
                )
            )
            .0
            .is_ok());
        assert_eq!(t.exists("/a").unwrap(), None);
    }

    #[test]
    fn sequential_names_are_unique_and_increasing() {
        let mut t = DataTree::new();
        assert!(t
            .apply(
                1,
                0,
                &ops(0, vec![create("/q", CreateMode::Persistent)], false),
            )
            .0
            .is_ok());
        let mut names = Vec::new();
        for i in 0..20 {
            let (r, _) = t.apply(
                2 + i,
                0,
                &ops(
                    0,
                    vec![create("/q/n-", CreateMode::PersistentSequential)],
                    false,
                ),
            );
            match r {
                Ok(Response::Op(OpResult::Created { path, .. })) => names.push(path),
                other => panic!("{other:?}"),
            }
            if i % 3 == 0 {
                // Deleting does not reuse numbers.
                let last = names.last().cloned().unwrap();
                assert!(t
                    .apply(
                        100 + i,
                        0,
                        &ops(
                            0,
                            vec![Op::Delete {
                                path: last,
                                version: -1,
                            }],
                            false,
                        ),
                    )
                    .0
                    .is_ok());
            }
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted, names);
        assert_eq!(names[0], "/q/n-0000000000");
    }

    #[test]
    fn multi_is_all_or_nothing() {
        let mut t = DataTree::new();
        assert!(t
            .apply(
                1,
                0,
                &ops(0, vec![create("/a", CreateMode::Persistent)], false),
            )
            .0
            .is_ok());
        let before = t.digest();
        let bad = vec![
            create("/b", CreateMode::Persistent),
            Op::Set {
                path: "/a".into(),
                data: vec![1],
                version: -1,
            },
            Op::Delete {
                path: "/a".into(),
                version: -1,
            },
            Op::Check {
                path: "/b".into(),
                version: 7,
            },
        ];
        let (r, ev) = t.apply(2, 0, &ops(0, bad, true));
        assert_eq!(
            r,
            Err(ZkError::MultiFailed {
                index: 3,
                error: Box::new(ZkError::BadVersion)
            })
        );
        assert!(ev.is_empty());
        assert_eq!(t.digest(), before);
        let good = vec![
            create("/b", CreateMode::Persistent),
            Op::Check {
                path: "/b".into(),
                version: 0,
            },
            Op::Set {
                path: "/a".into(),
                data: vec![1],
                version: 0,
            },
        ];
        let (r, _) = t.apply(3, 0, &ops(0, good, true));
        assert!(matches!(r, Ok(Response::Multi(v)) if v.len() == 3));
        assert!(t.exists("/b").unwrap().is_some());
    }

    #[test]
    fn closing_a_session_deletes_its_ephemerals() {
        let mut t = DataTree::new();
        let (r, _) = t.apply(1, 0, &CommandBody::CreateSession { timeout_ms: 1 });
        assert_eq!(
            r,
            Ok(Response::Session {
                session: 1,
                timeout_ms: SESSION_TIMEOUT_MS_MIN
            })
        );
        assert!(t
            .apply(
                2,
                0,
                &ops(1, vec![create("/e", CreateMode::Ephemeral)], false),
            )
            .0
            .is_ok());
        assert_eq!(
            t.apply(
                3,
                0,
                &ops(1, vec![create("/e/c", CreateMode::Persistent)], false)
            )
            .0,
            Err(ZkError::NoChildrenForEphemerals)
        );
        assert_eq!(
            t.apply(
                3,
                0,
                &ops(9, vec![create("/f", CreateMode::Ephemeral)], false)
            )
            .0,
            Err(ZkError::SessionExpired)
        );
        assert_eq!(t.exists("/e").unwrap().map(|s| s.ephemeral_owner), Some(1));
        let (_, ev) = t.apply(4, 0, &CommandBody::CloseSession { session: 1 });
        assert!(ev.contains(&WatchEvent {
            kind: EventKind::NodeDeleted,
            path: "/e".into(),
            zxid: 4
        }));
        assert_eq!(t.exists("/e").unwrap(), None);
        assert_eq!(t.session_count(), 0);
    }

    fn zk(session: u64, auth: &[&str], ops: Vec<Op>, multi: bool) -> CommandBody {
        CommandBody::ZkOps {
            session,
            auth: auth.iter().map(|s| s.to_string()).collect(),
            ops,
            multi,
        }
    }

    fn zk_create(path: &str, mode: CreateMode, acl: Vec<Acl>, ttl_ms: u64) -> Op {
        Op::CreateZk {
            path: path.into(),
            data: vec![],
            mode,
            acl,
            ttl_ms,
        }
    }

    fn world() -> Vec<Acl> {
        vec![Acl {
            perms: crate::proto::PERM_ALL,
            scheme: "world".into(),
            id: "anyone".into(),
        }]
    }

    #[test]
    fn zk_acls_are_enforced_for_zk_writes_only() {
        let mut t = DataTree::new();
        let alice = vec![Acl {
            perms: crate::proto::PERM_ALL,
            scheme: "digest".into(),
            id: "alice:h".into(),
        }];
        let c = zk_create("/p", CreateMode::Persistent, alice.clone(), 0);
        assert!(t.apply(1, 0, &zk(0, &[], vec![c], false)).0.is_ok());
        let kid = zk_create("/p/k", CreateMode::Persistent, world(), 0);
        assert_eq!(
            t.apply(2, 0, &zk(0, &["ip:1.2.3.4"], vec![kid.clone()], false))
                .0,
            Err(ZkError::NoAuth)
        );
        assert!(t
            .apply(3, 0, &zk(0, &["digest:alice:h"], vec![kid], false))
            .0
            .is_ok());
        let set = Op::Set {
            path: "/p".into(),
            data: vec![1],
            version: -1,
        };
        assert_eq!(
            t.apply(4, 0, &zk(0, &[], vec![set.clone()], false)).0,
            Err(ZkError::NoAuth)
        );
        // weir's own protocol is not subject to ACLs.
        assert!(t.apply(5, 0, &ops(0, vec![set], false)).0.is_ok());
        // Empty ACL on a ZooKeeper create is INVALIDACL; setACL checks aversion.
        let bad = zk_create("/q", CreateMode::Persistent, vec![], 0);
        assert_eq!(
            t.apply(6, 0, &zk(0, &[], vec![bad], false)).0,
            Err(ZkError::InvalidAcl)
        );
        let sa = |v| Op::SetAcl {
            path: "/p".into(),
            acl: world(),
            version: v,
        };
        assert_eq!(
            t.apply(7, 0, &zk(0, &["digest:alice:h"], vec![sa(3)], false))
                .0,
            Err(ZkError::BadVersion)
        );
        assert!(t
            .apply(8, 0, &zk(0, &["digest:alice:h"], vec![sa(0)], false))
            .0
            .is_ok());
        assert_eq!(t.exists("/p").unwrap().map(|s| s.aversion), Some(1));
        assert!(t
            .check_acl("/p", crate::proto::PERM_WRITE, Some(&[]))
            .is_ok());
    }

    #[test]
    fn containers_go_with_their_last_child_and_ttl_nodes_expire_by_the_clock() {
        let mut t = DataTree::new();
        let c = zk_create("/c", CreateMode::Container, world(), 0);
        assert!(t.apply(1, 0, &zk(0, &[], vec![c], false)).0.is_ok());
        for (i, k) in ["/c/a", "/c/b"].iter().enumerate() {
            let op = zk_create(k, CreateMode::Persistent, world(), 0);
            assert!(t
                .apply(2 + i as u64, 0, &zk(0, &[], vec![op], false))
                .0
                .is_ok());
        }
        let del = |p: &str| Op::Delete {
            path: p.into(),
            version: -1,
        };
        assert!(t
            .apply(4, 0, &zk(0, &[], vec![del("/c/a")], false))
            .0
            .is_ok());
        assert!(t.exists("/c").unwrap().is_some());
        let (r, ev) = t.apply(5, 0, &zk(0, &[], vec![del("/c/b")], false));
        assert!(r.is_ok());
        assert!(t.exists("/c").unwrap().is_none());
        assert!(ev.contains(&WatchEvent {
            kind: EventKind::NodeDeleted,
            path: "/c".into(),
            zxid: 5
        }));
        t.check_invariants().unwrap();
        // TTL: listed as expired only when childless and unmodified for the TTL.
        let ttl = zk_create("/t", CreateMode::PersistentWithTtl, world(), 100);
        assert!(t.apply(6, 1_000, &zk(0, &[], vec![ttl], false)).0.is_ok());
        assert!(t.expired_ttl_nodes(1_050).is_empty());
        assert_eq!(t.expired_ttl_nodes(1_100), vec![("/t".to_string(), 0)]);
        // A failed multi that created a TTL node leaves no trace of it.
        let before = t.digest();
        let m = vec![
            zk_create("/t2", CreateMode::PersistentWithTtl, world(), 5),
            del("/missing"),
        ];
        assert!(t.apply(7, 2_000, &zk(0, &[], m, true)).0.is_err());
        assert_eq!(t.digest(), before);
        assert_eq!(t.expired_ttl_nodes(u64::MAX).len(), 1);
        assert!(t.apply(8, 0, &zk(0, &[], vec![del("/t")], false)).0.is_ok());
        assert!(t.expired_ttl_nodes(u64::MAX).is_empty());
    }
}
