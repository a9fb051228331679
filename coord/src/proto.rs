//! Wire and replicated-command types shared by the state machine, the server and the client.
//!
//! Owns: the request/response vocabulary (ZooKeeper's data model, not its jute encoding), the
//! replicated `Command` written into Raft entries, and the length-prefixed bincode framing.
//! Must not: do I/O, know about Raft internals or glommio. This encoding is weir's own and may
//! change between versions; ZooKeeper's jute encoding lives in `zk::jute`, and the ZooKeeper
//! frontend (`zk::front`) maps it onto these types (`Request::ZkWrite`, `Op::CreateZk`, ...).

use serde::{Deserialize, Serialize};

/// Largest znode payload accepted (ZooKeeper's `jute.maxbuffer` default).
pub const DATA_BYTES_MAX: usize = 1024 * 1024;
/// Largest client frame (a 1 MiB payload plus path and framing).
pub const CLIENT_FRAME_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Largest peer frame (snapshots of large trees travel in one Raft message).
pub const PEER_FRAME_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Longest path accepted.
pub const PATH_BYTES_MAX: usize = 4096;

/// How a znode is created.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    /// Deleted (in the same apply) when its last child is deleted.
    Container,
    /// Deleted by the leader once unmodified for its TTL and childless (`Op::CreateZk::ttl_ms`).
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            CreateMode::Ephemeral | CreateMode::EphemeralSequential
        )
    }
    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }
    pub fn is_ttl(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl
        )
    }
}

/// One ZooKeeper ACL entry (`perms` bits as in `ZooDefs.Perms`). A znode with an empty ACL list
/// (every node created through weir's own protocol) is open to everyone.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Acl {
    pub perms: i32,
    pub scheme: String,
    pub id: String,
}

/// ZooKeeper permission bits.
pub const PERM_READ: i32 = 1;
pub const PERM_WRITE: i32 = 2;
pub const PERM_CREATE: i32 = 4;
pub const PERM_DELETE: i32 = 8;
pub const PERM_ADMIN: i32 = 16;
pub const PERM_ALL: i32 = 31;

/// Whether `auth` (the caller's authenticated ids as `scheme:id`, e.g. `digest:bob:HASH`) may do
/// `perm` on a node with `acl`. `None` is weir's own protocol: no ACL enforcement.
pub fn acl_allows(acl: &[Acl], perm: i32, auth: Option<&[String]>) -> bool {
    let Some(auth) = auth else {
        return true;
    };
    if acl.is_empty() {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm != 0
            && match a.scheme.as_str() {
                "world" => a.id == "anyone",
                "digest" | "ip" => auth.iter().any(|x| {
                    x.len() == a.scheme.len() + 1 + a.id.len()
                        && x.starts_with(a.scheme.as_str())
                        && x.as_bytes()[a.scheme.len()] == b':'
                        && x.ends_with(a.id.as_str())
                }),
                _ => false,
            }
    })
}

/// ZooKeeper's Stat: zxids are Raft log indexes, times are the proposing leader's wall clock.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Stat {
    pub czxid: u64,
    pub mzxid: u64,
    pub pzxid: u64,
    pub ctime_ms: u64,
    pub mtime_ms: u64,
    pub version: i32,
    pub cversion: i32,
    /// ACL version (ZooKeeper's `aversion`), bumped by `Op::SetAcl`.
    pub aversion: i32,
    pub ephemeral_owner: u64,
    pub data_length: u32,
    pub num_children: u32,
}

/// One operation of a `multi`, or a single write.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Create {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        mode: CreateMode,
    },
    /// `version == -1` matches any version.
    Set {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        version: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    /// A create from the ZooKeeper frontend: any mode, an ACL, a TTL for the TTL modes.
    CreateZk {
        path: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        mode: CreateMode,
        acl: Vec<Acl>,
        ttl_ms: u64,
    },
    /// `version == -1` matches any ACL version.
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
}

/// Result of one `Op`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    Created { path: String, stat: Stat },
    Set { stat: Stat },
    Deleted,
    Checked,
    AclSet { stat: Stat },
}

/// A client request. Writes go through Raft; reads are served by the leader after a read index.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Opens a session (replicated); the reply carries its id and negotiated timeout.
    CreateSession {
        timeout_ms: u64,
    },
    /// Re-attaches an existing session after reconnecting (linearizable check that it lives).
    AttachSession {
        session: u64,
    },
    CloseSession,
    Ping,
    Write(Op),
    Multi(Vec<Op>),
    Get {
        path: String,
        watch: bool,
    },
    Exists {
        path: String,
        watch: bool,
    },
    Children {
        path: String,
        watch: bool,
    },
    /// Barrier: returns once the serving node has applied everything committed before it.
    Sync,
    /// Any node answers this, leader or not.
    Status,
    AddNode {
        id: u64,
        addr: String,
    },
    RemoveNode {
        id: u64,
    },
    TransferLeader {
        id: u64,
    },
    /// `req` on behalf of `session` (a ZooKeeper frontend forwarding its client's request to
    /// the leader over one shared connection).
    AsSession {
        session: u64,
        req: Box<Request>,
    },
    /// Writes from the ZooKeeper frontend: ACLs are enforced against `auth` (`scheme:id`).
    ZkWrite {
        auth: Vec<String>,
        ops: Vec<Op>,
        multi: bool,
    },
    /// Opens a session that can be re-attached anywhere with `passwd` (ZooKeeper's handshake).
    ZkCreateSession {
        timeout_ms: u64,
        #[serde(with = "serde_bytes")]
        passwd: Vec<u8>,
    },
    /// Sessions that were active on a follower's ZooKeeper frontend (the leader tracks liveness).
    Touch {
        sessions: Vec<u64>,
    },
}

impl Request {
    /// True for requests that change the replicated state.
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::CreateSession { .. }
                | Request::CloseSession
                | Request::Write(_)
                | Request::Multi(_)
                | Request::AddNode { .. }
                | Request::RemoveNode { .. }
                | Request::ZkWrite { .. }
                | Request::ZkCreateSession { .. }
        ) || matches!(self, Request::AsSession { req, .. } if req.is_write())
    }
}

/// A node's view of the cluster, answered by `Request::Status`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
    pub commit: u64,
    pub applied: u64,
    pub is_leader: bool,
    pub members: Vec<(u64, String)>,
    pub znodes: u64,
    pub sessions: u64,
    /// OS process id of the serving node (filled in by the server; lets benchmarks kill it).
    pub pid: u32,
}

/// A successful reply.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Session {
        session: u64,
        timeout_ms: u64,
    },
    Closed,
    Pong,
    Op(OpResult),
    Multi(Vec<OpResult>),
    Data {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        stat: Stat,
    },
    Exists(Option<Stat>),
    Children {
        names: Vec<String>,
        stat: Stat,
    },
    Synced,
    Status(NodeStatus),
    Done,
}

/// ZooKeeper-style error codes, plus the ones a replicated service needs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ZkError {
    #[error("no node")]
    NoNode,
    #[error("node exists")]
    NodeExists,
    #[error("bad version")]
    BadVersion,
    #[error("node has children")]
    NotEmpty,
    #[error("ephemeral nodes may not have children")]
    NoChildrenForEphemerals,
    #[error("bad arguments: {0}")]
    BadArguments(String),
    #[error("session expired")]
    SessionExpired,
    /// Definite: the request was not applied. Retry at `leader_addr` if known.
    #[error("not the leader (leader {leader}, at {leader_addr:?})")]
    NotLeader {
        leader: u64,
        leader_addr: Option<String>,
    },
    /// Op number `index` of a multi failed with `error`; nothing was applied.
    #[error("multi op {index} failed: {error}")]
    MultiFailed { index: u32, error: Box<ZkError> },
    #[error("membership change refused: {0}")]
    Membership(String),
    /// The outcome is not known (connection lost or timed out after sending).
    #[error("connection lost; outcome unknown")]
    ConnectionLoss,
    /// The caller's authenticated ids do not grant the permission (ZooKeeper's NOAUTH).
    #[error("not authorized")]
    NoAuth,
    /// An ACL list that is empty or names an unknown scheme (ZooKeeper's INVALIDACL).
    #[error("invalid ACL")]
    InvalidAcl,
    /// removeWatches/checkWatches on a watch that is not set (ZooKeeper's NOWATCHER).
    #[error("no such watcher")]
    NoWatcher,
}

/// An event that fires one-shot watches, emitted in apply order with the change that caused it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct WatchEvent {
    pub kind: EventKind,
    pub path: String,
    pub zxid: u64,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    NodeCreated,
    NodeDeleted,
    NodeDataChanged,
    NodeChildrenChanged,
}

/// What is written into a Raft entry's data.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// Node that proposed it and its proposal sequence number: lets that node match the applied
    /// entry to the waiting client.
    pub origin: u64,
    pub seq: u64,
    /// Proposer's wall clock; the state machine's only notion of time (ctime/mtime).
    pub time_ms: u64,
    pub body: CommandBody,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum CommandBody {
    CreateSession {
        timeout_ms: u64,
    },
    CloseSession {
        session: u64,
    },
    /// `multi == false` means a single op whose error is returned as is.
    Ops {
        session: u64,
        ops: Vec<Op>,
        multi: bool,
    },
    /// Like `Ops`, with ZooKeeper ACLs enforced against `auth`.
    ZkOps {
        session: u64,
        auth: Vec<String>,
        ops: Vec<Op>,
        multi: bool,
    },
    /// A session with a password (ZooKeeper clients re-attach with id + password).
    CreateZkSession {
        timeout_ms: u64,
        #[serde(with = "serde_bytes")]
        passwd: Vec<u8>,
    },
}

/// First frame on every connection.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum Hello {
    Client,
    /// `addr` is where the sender listens: lets a joining node, which knows no members yet,
    /// answer the leader before the snapshot tells it the membership.
    Peer {
        id: u64,
        addr: String,
    },
}

/// Client → server frame. `xid` is echoed; requests may be pipelined.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct ClientFrame {
    pub xid: u64,
    pub req: Request,
}

/// Server → client frame.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub enum ServerFrame {
    Reply {
        xid: u64,
        zxid: u64,
        result: Result<Response, ZkError>,
    },
    Event(WatchEvent),
}

/// Errors of encoding and decoding frames.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("decoding a frame: {0}")]
    Decode(#[from] bincode::Error),
}

/// Serialises `v` into a `[u32 little-endian length][bincode]` frame appended to `out`.
pub fn encode_frame<T: Serialize>(v: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    bincode::serialize_into(&mut *out, v)?;
    let len = out.len() - start - 4;
    let len32 = u32::try_from(len).map_err(|_| CodecError::TooLarge {
        len,
        max: u32::MAX as usize,
    })?;
    out[start..start + 4].copy_from_slice(&len32.to_le_bytes());
    Ok(())
}

/// Decodes a frame body (without its length prefix).
pub fn decode<T: for<'a> Deserialize<'a>>(body: &[u8]) -> Result<T, CodecError> {
    Ok(bincode::deserialize(body)?)
}

/// Encodes a value without framing.
pub fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, CodecError> {
    Ok(bincode::serialize(v)?)
}

/// Checks a znode path: absolute, no empty, "." or ".." components, no trailing slash.
pub fn validate_path(path: &str) -> Result<(), ZkError> {
    if path.len() > PATH_BYTES_MAX {
        return Err(ZkError::BadArguments("path too long".into()));
    }
    if !path.starts_with('/') {
        return Err(ZkError::BadArguments(format!(
            "path {path:?} is not absolute"
        )));
    }
    if path == "/" {
        return Ok(());
    }
    for comp in path[1..].split('/') {
        if comp.is_empty() || comp == "." || comp == ".." || comp.contains('\0') {
            return Err(ZkError::BadArguments(format!("bad path {path:?}")));
        }
    }
    Ok(())
}

/// Parent of a valid non-root path.
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `serde_bytes` changes speed, not format: a data field encodes exactly as a plain
    /// `Vec<u8>` did (u64 length, then the bytes), so existing WALs and snapshots still read.
    #[test]
    fn byte_fields_keep_bincodes_plain_vec_layout() {
        #[derive(Serialize)]
        struct Plain {
            path: String,
            data: Vec<u8>,
            version: i32,
        }
        let data = vec![0u8, 1, 255, 7];
        let op = Op::Set {
            path: "/a".into(),
            data: data.clone(),
            version: 3,
        };
        let plain = Plain {
            path: "/a".into(),
            data,
            version: 3,
        };
        let encoded = encode(&op).unwrap();
        // The enum tag (u32) comes first, then the fields.
        assert_eq!(&encoded[4..], &encode(&plain).unwrap()[..]);
        assert_eq!(decode::<Op>(&encoded).unwrap(), op);
    }

    #[test]
    fn frame_roundtrip_and_paths() {
        let mut buf = Vec::new();
        let f = ClientFrame {
            xid: 7,
            req: Request::Get {
                path: "/a".into(),
                watch: true,
            },
        };
        encode_frame(&f, &mut buf).unwrap();
        let len = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        assert_eq!(len, buf.len() - 4);
        let back: ClientFrame = decode(&buf[4..]).unwrap();
        assert_eq!(back, f);
        assert!(decode::<ClientFrame>(&buf[4..6]).is_err());

        assert!(validate_path("/").is_ok());
        assert!(validate_path("/a/b").is_ok());
        for bad in ["", "a", "/a/", "//a", "/a/./b", "/a/.."] {
            assert!(validate_path(bad).is_err(), "{bad}");
        }
        assert_eq!(parent_of("/a"), "/");
        assert_eq!(parent_of("/a/b/c"), "/a/b");
    }
}
