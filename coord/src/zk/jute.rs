//! ZooKeeper's jute wire encoding: every client-facing record, both directions.
//!
//! Owns: the byte layout of ZooKeeper's client protocol (`zookeeper.jute`, module
//! `org.apache.zookeeper.proto` and `.data`): primitives (big-endian `int`/`long`, one-byte
//! `boolean`, length-prefixed `ustring`/`buffer`/`vector`, `-1` = null), the records, the
//! request/response bodies keyed by opcode (including `multi`/`multiRead`), frame lengths, and
//! the protocol constants (opcodes, error codes, create modes, event types, states, perms).
//! Must not: do I/O, know about sessions, the tree or Raft, or panic on input. Every length read
//! from the wire is checked against the bytes actually left before anything is allocated, so a
//! hostile length cannot make the decoder reserve more than the frame it was handed.
//!
//! Decoding is lenient where ZooKeeper is: trailing bytes after a record are ignored (the Java
//! server ignores them too; `ConnectRequest`/`ConnectResponse` end with an optional `readOnly`
//! byte that old clients omit), and a null (`-1`) string, buffer or vector decodes as empty.
//! Encoding always writes non-null values, so `decode(encode(x)) == x` for every record.

use std::fmt;

/// Largest frame accepted from a client (ZooKeeper's `jute.maxbuffer` default is 1 MiB of data
/// plus headers; we accept a little more so a 1 MiB payload with a long path fits).
pub const FRAME_BYTES_MAX: usize = 1024 * 1024 + 64 * 1024;

/// Errors decoding jute bytes. Encoding cannot fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    #[error("truncated record: {needed} bytes needed at offset {at}, {left} left")]
    Truncated {
        at: usize,
        needed: usize,
        left: usize,
    },
    #[error("negative length {len} at offset {at}")]
    NegativeLength { at: usize, len: i32 },
    #[error("length {len} at offset {at} exceeds the {left} bytes left in the frame")]
    LengthTooLarge { at: usize, len: usize, left: usize },
    #[error("string at offset {at} is not valid UTF-8")]
    BadUtf8 { at: usize },
    #[error("unknown opcode {0}")]
    UnknownOpCode(i32),
    #[error("opcode {0} is not allowed inside a multi")]
    BadMultiOp(i32),
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    #[error("negative frame length {0}")]
    NegativeFrame(i32),
}

// ---------------------------------------------------------------------------------------------
// Constants

/// `ZooDefs.OpCode`.
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Reserved xids (`ClientCnxn`): replies with these xids are not answers to numbered requests.
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// `KeeperException.Code`: the `err` of a `ReplyHeader`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Code {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSaslAuth = -124,
    QuotaExceeded = -125,
    ThrottledOp = -127,
}

impl Code {
    const ALL: [Code; 32] = [
        Code::Ok,
        Code::SystemError,
        Code::RuntimeInconsistency,
        Code::DataInconsistency,
        Code::ConnectionLoss,
        Code::MarshallingError,
        Code::Unimplemented,
        Code::OperationTimeout,
        Code::BadArguments,
        Code::UnknownSession,
        Code::NewConfigNoQuorum,
        Code::ReconfigInProgress,
        Code::ApiError,
        Code::NoNode,
        Code::NoAuth,
        Code::BadVersion,
        Code::NoChildrenForEphemerals,
        Code::NodeExists,
        Code::NotEmpty,
        Code::SessionExpired,
        Code::InvalidCallback,
        Code::InvalidAcl,
        Code::AuthFailed,
        Code::SessionMoved,
        Code::NotReadOnly,
        Code::EphemeralOnLocalSession,
        Code::NoWatcher,
        Code::RequestTimeout,
        Code::ReconfigDisabled,
        Code::SessionClosedRequireSaslAuth,
        Code::QuotaExceeded,
        Code::ThrottledOp,
    ];

    pub fn from_i32(v: i32) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| *c as i32 == v)
    }

    pub fn as_i32(self) -> i32 {
        self as i32
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?} ({})", *self as i32)
    }
}

/// `CreateMode` is the replicated model's; the wire carries it as `flags`.
pub use crate::proto::CreateMode;

impl CreateMode {
    pub fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }
    pub fn flags(self) -> i32 {
        match self {
            CreateMode::Persistent => 0,
            CreateMode::Ephemeral => 1,
            CreateMode::PersistentSequential => 2,
            CreateMode::EphemeralSequential => 3,
            CreateMode::Container => 4,
            CreateMode::PersistentWithTtl => 5,
            CreateMode::PersistentSequentialWithTtl => 6,
        }
    }
}

/// `Watcher.Event.EventType`.
pub mod event_type {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// `Watcher.Event.KeeperState`.
pub mod state {
    pub const DISCONNECTED: i32 = 0;
    pub const SYNC_CONNECTED: i32 = 3;
    pub const AUTH_FAILED: i32 = 4;
    pub const CONNECTED_READ_ONLY: i32 = 5;
    pub const SASL_AUTHENTICATED: i32 = 6;
    pub const EXPIRED: i32 = -112;
    pub const CLOSED: i32 = 7;
}

/// `Watcher.WatcherType` (removeWatches/checkWatches `type`).
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
}

/// `AddWatchMode`.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

/// `ZooDefs.Perms`.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

// ---------------------------------------------------------------------------------------------
// Primitives

/// A cursor over one frame's bytes.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    pub fn position(&self) -> usize {
        self.pos
    }
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Truncated {
                at: self.pos,
                needed: n,
                left: self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn read_i32(&mut self) -> Result<i32, JuteError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub fn read_i64(&mut self) -> Result<i64, JuteError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    pub fn read_bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.take(1)?[0] != 0)
    }
    /// A length prefix: `-1` (null) is `None`; any other negative value, or a length larger
    /// than `remaining / unit` (each element needs at least `unit` bytes), is an error.
    fn read_len(&mut self, unit: usize) -> Result<Option<usize>, JuteError> {
        let at = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(JuteError::NegativeLength { at, len });
        }
        let len = len as usize;
        let left = self.remaining();
        if len.saturating_mul(unit.max(1)) > left {
            return Err(JuteError::LengthTooLarge { at, len, left });
        }
        Ok(Some(len))
    }
    /// A `buffer` borrowed from the frame (null decodes as empty).
    pub fn read_buffer_ref(&mut self) -> Result<&'a [u8], JuteError> {
        match self.read_len(1)? {
            None => Ok(&[]),
            Some(n) => self.take(n),
        }
    }
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, JuteError> {
        Ok(self.read_buffer_ref()?.to_vec())
    }
    /// A `ustring` borrowed from the frame (null decodes as empty).
    pub fn read_str(&mut self) -> Result<&'a str, JuteError> {
        let at = self.pos;
        let b = self.read_buffer_ref()?;
        std::str::from_utf8(b).map_err(|_| JuteError::BadUtf8 { at })
    }
    pub fn read_string(&mut self) -> Result<String, JuteError> {
        Ok(self.read_str()?.to_owned())
    }
    /// A `vector<T>` (null decodes as empty). Capacity is bounded by the bytes left.
    pub fn read_vec<T: Jute>(&mut self) -> Result<Vec<T>, JuteError> {
        match self.read_len(T::MIN_BYTES)? {
            None => Ok(Vec::new()),
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(T::read(self)?);
                }
                Ok(v)
            }
        }
    }
}

pub fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_be_bytes());
}
pub fn put_bool(out: &mut Vec<u8>, v: bool) {
    out.push(v as u8);
}
pub fn put_buffer(out: &mut Vec<u8>, v: &[u8]) {
    put_i32(out, v.len() as i32);
    out.extend_from_slice(v);
}
pub fn put_str(out: &mut Vec<u8>, v: &str) {
    put_buffer(out, v.as_bytes());
}
pub fn put_vec<T: Jute>(out: &mut Vec<u8>, v: &[T]) {
    put_i32(out, v.len() as i32);
    for x in v {
        x.write(out);
    }
}

/// Starts a length-prefixed frame in `out`; pass the returned mark to [`end_frame`].
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let mark = out.len();
    out.extend_from_slice(&[0u8; 4]);
    mark
}

/// Writes the big-endian length of everything after `mark` into the frame's prefix.
pub fn end_frame(out: &mut [u8], mark: usize) {
    let len = (out.len() - mark - 4) as u32;
    out[mark..mark + 4].copy_from_slice(&len.to_be_bytes());
}

/// Length of the frame whose 4-byte prefix is `prefix`, checked against [`FRAME_BYTES_MAX`].
pub fn frame_len(prefix: [u8; 4]) -> Result<usize, JuteError> {
    let len = i32::from_be_bytes(prefix);
    if len < 0 {
        return Err(JuteError::NegativeFrame(len));
    }
    let len = len as usize;
    if len > FRAME_BYTES_MAX {
        return Err(JuteError::FrameTooLarge {
            len,
            max: FRAME_BYTES_MAX,
        });
    }
    Ok(len)
}

/// A jute record (or primitive usable as a vector element / record field).
pub trait Jute: Sized {
    /// Fewest bytes one encoded value takes (bounds vector lengths before allocating).
    const MIN_BYTES: usize;
    fn write(&self, out: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self, JuteError>;

    /// Decodes one value from the start of `buf` (trailing bytes ignored).
    fn from_bytes(buf: &[u8]) -> Result<Self, JuteError> {
        Self::read(&mut Reader::new(buf))
    }
    fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write(&mut v);
        v
    }
}

/// Jute's primitives: each is written by a `put_*` function and read by a `Reader` method.
macro_rules! primitive {
    ($($t:ty: $min:expr, |$out:ident, $v:ident| $put:expr, $read:ident;)*) => {$(
        impl Jute for $t {
            const MIN_BYTES: usize = $min;
            fn write(&self, $out: &mut Vec<u8>) {
                let $v = self;
                $put
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, JuteError> {
                r.$read()
            }
        }
    )*};
}

primitive! {
    i32: 4, |out, v| put_i32(out, *v), read_i32;
    i64: 8, |out, v| put_i64(out, *v), read_i64;
    bool: 1, |out, v| put_bool(out, *v), read_bool;
    String: 4, |out, v| put_str(out, v), read_string;
}

/// Field codecs used by the `record!` macro: `buffer` and `vector` need their own markers since
/// `Vec<u8>` is a buffer, not a vector of bytes; `trailing` is an `Option<bool>` that is the last
/// field and may be missing altogether (the handshake's read-only flag, absent before 3.4).
macro_rules! field_write {
    (buffer, $out:expr, $v:expr) => {
        put_buffer($out, &$v)
    };
    (vector, $out:expr, $v:expr) => {
        put_vec($out, &$v)
    };
    (plain, $out:expr, $v:expr) => {
        Jute::write(&$v, $out)
    };
    (trailing, $out:expr, $v:expr) => {
        if let Some(v) = $v {
            put_bool($out, v)
        }
    };
}
macro_rules! field_read {
    (buffer, $r:expr, $t:ty) => {
        $r.read_buffer()?
    };
    (vector, $r:expr, $t:ty) => {
        $r.read_vec()?
    };
    (plain, $r:expr, $t:ty) => {
        <$t as Jute>::read($r)?
    };
    (trailing, $r:expr, $t:ty) => {
        if $r.is_empty() {
            None
        } else {
            Some($r.read_bool()?)
        }
    };
}
macro_rules! field_min {
    (buffer, $t:ty) => {
        4
    };
    (vector, $t:ty) => {
        4
    };
    (plain, $t:ty) => {
        <$t as Jute>::MIN_BYTES
    };
    (trailing, $t:ty) => {
        0
    };
}

macro_rules! record {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $f:ident : $kind:ident $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fm])* pub $f: $t,)*
        }
        impl Jute for $name {
            const MIN_BYTES: usize = 0 $(+ field_min!($kind, $t))*;
            fn write(&self, out: &mut Vec<u8>) {
                $(field_write!($kind, out, self.$f);)*
            }
            fn read(r: &mut Reader<'_>) -> Result<Self, JuteError> {
                Ok($name { $($f: field_read!($kind, r, $t),)* })
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Records (org.apache.zookeeper.data)

record!(
    /// An ACL identity: `world:anyone`, `digest:user:base64(sha1(user:password))`, `auth:`, `ip:…`.
    Id { scheme: plain String, id: plain String }
);
record!(
    /// One ACL entry: a `perms` bit set for an identity.
    Acl { perms: plain i32, id: plain Id }
);
record!(
    /// The znode stat as clients see it (68 bytes).
    Stat {
        czxid: plain i64,
        mzxid: plain i64,
        ctime: plain i64,
        mtime: plain i64,
        version: plain i32,
        cversion: plain i32,
        aversion: plain i32,
        ephemeral_owner: plain i64,
        data_length: plain i32,
        num_children: plain i32,
        pzxid: plain i64,
    }
);

// Records (org.apache.zookeeper.proto)

record!(
    /// Header of every request after the handshake.
    RequestHeader { xid: plain i32, op: plain i32 }
);
record!(
    /// Header of every reply and notification (`xid == -1`).
    ReplyHeader { xid: plain i32, zxid: plain i64, err: plain i32 }
);
record!(
    /// Precedes each op of a multi; `{-1, true, -1}` ends the list.
    MultiHeader { op: plain i32, done: plain bool, err: plain i32 }
);
record!(AuthPacket { kind: plain i32, scheme: plain String, auth: buffer Vec<u8> });
record!(
    /// `readOnly` is optional on the wire (old clients omit it): see [`ConnectRequest::read`].
    SetWatches {
        relative_zxid: plain i64,
        data_watches: vector Vec<String>,
        exist_watches: vector Vec<String>,
        child_watches: vector Vec<String>,
    }
);
record!(SetWatches2 {
    relative_zxid: plain i64,
    data_watches: vector Vec<String>,
    exist_watches: vector Vec<String>,
    child_watches: vector Vec<String>,
    persistent_watches: vector Vec<String>,
    persistent_recursive_watches: vector Vec<String>,
});
record!(
    /// getData, exists, getChildren, getChildren2 (and the reads of a multiRead).
    PathWatchRequest { path: plain String, watch: plain bool }
);
record!(
    /// sync, getACL, getAllChildrenNumber, getEphemerals.
    PathRequest { path: plain String }
);
record!(SetDataRequest { path: plain String, data: buffer Vec<u8>, version: plain i32 });
record!(ReconfigRequest {
    joining_servers: plain String,
    leaving_servers: plain String,
    new_members: plain String,
    cur_config_id: plain i64,
});
record!(
    /// create, create2, createContainer.
    CreateRequest {
        path: plain String,
        data: buffer Vec<u8>,
        acl: vector Vec<Acl>,
        flags: plain i32,
    }
);
record!(CreateTtlRequest {
    path: plain String,
    data: buffer Vec<u8>,
    acl: vector Vec<Acl>,
    flags: plain i32,
    ttl: plain i64,
});
record!(
    /// delete, and check (`CheckVersionRequest` has the same layout).
    PathVersionRequest { path: plain String, version: plain i32 }
);
record!(SetAclRequest { path: plain String, acl: vector Vec<Acl>, version: plain i32 });
record!(AddWatchRequest { path: plain String, mode: plain i32 });
record!(
    /// removeWatches and checkWatches; `kind` is a [`watcher_type`].
    WatchesRequest { path: plain String, kind: plain i32 }
);
record!(WatcherEvent { kind: plain i32, state: plain i32, path: plain String });
record!(ErrorResponse { err: plain i32 });
record!(CreateResponse { path: plain String });
record!(Create2Response { path: plain String, stat: plain Stat });
record!(GetDataResponse { data: buffer Vec<u8>, stat: plain Stat });
record!(GetChildren2Response { children: vector Vec<String>, stat: plain Stat });
record!(GetAclResponse { acl: vector Vec<Acl>, stat: plain Stat });
record!(ClientInfo { auth_scheme: plain String, user: plain String });

record!(
    /// The first frame a client sends (`read_only` is `None` when a pre-3.4 client did not send
    /// the byte).
    ConnectRequest {
        protocol_version: plain i32,
        last_zxid_seen: plain i64,
        timeout_ms: plain i32,
        session_id: plain i64,
        passwd: buffer Vec<u8>,
        read_only: trailing Option<bool>,
    }
);
record!(
    /// The server's answer to [`ConnectRequest`]; `timeout_ms == 0` tells the client its session
    /// is expired (or its password wrong).
    ConnectResponse {
        protocol_version: plain i32,
        timeout_ms: plain i32,
        session_id: plain i64,
        passwd: buffer Vec<u8>,
        read_only: trailing Option<bool>,
    }
);

// ---------------------------------------------------------------------------------------------
// Requests and responses keyed by opcode

/// One op of a `multi` (writes) or `multiRead` (reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(PathVersionRequest),
    SetData(SetDataRequest),
    Check(PathVersionRequest),
    GetChildren(PathWatchRequest),
    GetData(PathWatchRequest),
}

impl MultiOp {
    pub fn op_code(&self) -> i32 {
        match self {
            MultiOp::Create(_) => op::CREATE,
            MultiOp::Create2(_) => op::CREATE2,
            MultiOp::CreateContainer(_) => op::CREATE_CONTAINER,
            MultiOp::CreateTtl(_) => op::CREATE_TTL,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
            MultiOp::GetChildren(_) => op::GET_CHILDREN,
            MultiOp::GetData(_) => op::GET_DATA,
        }
    }
    fn write_body(&self, out: &mut Vec<u8>) {
        match self {
            MultiOp::Create(x) | MultiOp::Create2(x) | MultiOp::CreateContainer(x) => x.write(out),
            MultiOp::CreateTtl(x) => x.write(out),
            MultiOp::Delete(x) | MultiOp::Check(x) => x.write(out),
            MultiOp::SetData(x) => x.write(out),
            MultiOp::GetChildren(x) | MultiOp::GetData(x) => x.write(out),
        }
    }
    fn read_body(code: i32, r: &mut Reader<'_>) -> Result<MultiOp, JuteError> {
        Ok(match code {
            op::CREATE => MultiOp::Create(Jute::read(r)?),
            op::CREATE2 => MultiOp::Create2(Jute::read(r)?),
            op::CREATE_CONTAINER => MultiOp::CreateContainer(Jute::read(r)?),
            op::CREATE_TTL => MultiOp::CreateTtl(Jute::read(r)?),
            op::DELETE => MultiOp::Delete(Jute::read(r)?),
            op::SET_DATA => MultiOp::SetData(Jute::read(r)?),
            op::CHECK => MultiOp::Check(Jute::read(r)?),
            op::GET_CHILDREN => MultiOp::GetChildren(Jute::read(r)?),
            op::GET_DATA => MultiOp::GetData(Jute::read(r)?),
            other => return Err(JuteError::BadMultiOp(other)),
        })
    }
}

const MULTI_END: MultiHeader = MultiHeader {
    op: -1,
    done: true,
    err: -1,
};

fn write_multi_ops(ops: &[MultiOp], out: &mut Vec<u8>) {
    for o in ops {
        MultiHeader {
            op: o.op_code(),
            done: false,
            err: -1,
        }
        .write(out);
        o.write_body(out);
    }
    MULTI_END.write(out);
}

fn read_multi_ops(r: &mut Reader<'_>) -> Result<Vec<MultiOp>, JuteError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        ops.push(MultiOp::read_body(h.op, r)?);
    }
}

/// A request body, by opcode. The header's xid travels separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Ping,
    CloseSession,
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(PathVersionRequest),
    DeleteContainer(PathRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRequest),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRequest),
    Check(PathVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchesRequest),
    RemoveWatches(WatchesRequest),
    Auth(AuthPacket),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    GetEphemerals(PathRequest),
    GetAllChildrenNumber(PathRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
}

impl Request {
    pub fn op_code(&self) -> i32 {
        match self {
            Request::Ping => op::PING,
            Request::CloseSession => op::CLOSE_SESSION,
            Request::Create(_) => op::CREATE,
            Request::Create2(_) => op::CREATE2,
            Request::CreateContainer(_) => op::CREATE_CONTAINER,
            Request::CreateTtl(_) => op::CREATE_TTL,
            Request::Delete(_) => op::DELETE,
            Request::DeleteContainer(_) => op::DELETE_CONTAINER,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren(_) => op::GET_CHILDREN,
            Request::GetChildren2(_) => op::GET_CHILDREN2,
            Request::Sync(_) => op::SYNC,
            Request::Check(_) => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches(_) => op::CHECK_WATCHES,
            Request::RemoveWatches(_) => op::REMOVE_WATCHES,
            Request::Auth(_) => op::AUTH,
            Request::SetWatches(_) => op::SET_WATCHES,
            Request::SetWatches2(_) => op::SET_WATCHES2,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch(_) => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
        }
    }

    /// Encodes `RequestHeader{xid, op}` and the body (no frame length).
    pub fn write(&self, xid: i32, out: &mut Vec<u8>) {
        RequestHeader {
            xid,
            op: self.op_code(),
        }
        .write(out);
        match self {
            Request::Ping | Request::CloseSession | Request::WhoAmI => {}
            Request::Create(x) | Request::Create2(x) | Request::CreateContainer(x) => x.write(out),
            Request::CreateTtl(x) => x.write(out),
            Request::Delete(x) | Request::Check(x) => x.write(out),
            Request::DeleteContainer(x)
            | Request::GetAcl(x)
            | Request::Sync(x)
            | Request::GetEphemerals(x)
            | Request::GetAllChildrenNumber(x) => x.write(out),
            Request::Exists(x)
            | Request::GetData(x)
            | Request::GetChildren(x)
            | Request::GetChildren2(x) => x.write(out),
            Request::SetData(x) => x.write(out),
            Request::SetAcl(x) => x.write(out),
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi_ops(ops, out),
            Request::Reconfig(x) => x.write(out),
            Request::CheckWatches(x) | Request::RemoveWatches(x) => x.write(out),
            Request::Auth(x) => x.write(out),
            Request::SetWatches(x) => x.write(out),
            Request::SetWatches2(x) => x.write(out),
            Request::AddWatch(x) => x.write(out),
        }
    }

    /// Decodes the body of a request whose header said `code`.
    pub fn read_body(code: i32, r: &mut Reader<'_>) -> Result<Request, JuteError> {
        Ok(match code {
            op::PING => Request::Ping,
            op::CLOSE_SESSION => Request::CloseSession,
            op::WHO_AM_I => Request::WhoAmI,
            op::CREATE => Request::Create(Jute::read(r)?),
            op::CREATE2 => Request::Create2(Jute::read(r)?),
            op::CREATE_CONTAINER => Request::CreateContainer(Jute::read(r)?),
            op::CREATE_TTL => Request::CreateTtl(Jute::read(r)?),
            op::DELETE => Request::Delete(Jute::read(r)?),
            op::DELETE_CONTAINER => Request::DeleteContainer(Jute::read(r)?),
            op::EXISTS => Request::Exists(Jute::read(r)?),
            op::GET_DATA => Request::GetData(Jute::read(r)?),
            op::SET_DATA => Request::SetData(Jute::read(r)?),
            op::GET_ACL => Request::GetAcl(Jute::read(r)?),
            op::SET_ACL => Request::SetAcl(Jute::read(r)?),
            op::GET_CHILDREN => Request::GetChildren(Jute::read(r)?),
            op::GET_CHILDREN2 => Request::GetChildren2(Jute::read(r)?),
            op::SYNC => Request::Sync(Jute::read(r)?),
            op::CHECK => Request::Check(Jute::read(r)?),
            op::MULTI => Request::Multi(read_multi_ops(r)?),
            op::MULTI_READ => Request::MultiRead(read_multi_ops(r)?),
            op::RECONFIG => Request::Reconfig(Jute::read(r)?),
            op::CHECK_WATCHES => Request::CheckWatches(Jute::read(r)?),
            op::REMOVE_WATCHES => Request::RemoveWatches(Jute::read(r)?),
            op::AUTH => Request::Auth(Jute::read(r)?),
            op::SET_WATCHES => Request::SetWatches(Jute::read(r)?),
            op::SET_WATCHES2 => Request::SetWatches2(Jute::read(r)?),
            op::GET_EPHEMERALS => Request::GetEphemerals(Jute::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(Jute::read(r)?),
            op::ADD_WATCH => Request::AddWatch(Jute::read(r)?),
            other => return Err(JuteError::UnknownOpCode(other)),
        })
    }

    /// Decodes a whole request frame body (header + body). An unknown opcode is an error that
    /// still lets the caller answer: decode the header alone with [`RequestHeader::from_bytes`].
    pub fn decode(body: &[u8]) -> Result<(RequestHeader, Request), JuteError> {
        let mut r = Reader::new(body);
        let h = RequestHeader::read(&mut r)?;
        let req = Request::read_body(h.op, &mut r)?;
        Ok((h, req))
    }
}

/// Result of one op of a multi / multiRead, as `MultiResponse` serialises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// Answer to a `create` op: the path only.
    Create(String),
    /// Answer to `create2`, `createContainer`, `createTTL`: path and stat.
    Create2 {
        op: i32,
        path: String,
        stat: Stat,
    },
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData {
        data: Vec<u8>,
        stat: Stat,
    },
    /// A failed op (`0` marks an op rolled back because another failed).
    Error(i32),
}

impl MultiResult {
    pub fn op_code(&self) -> i32 {
        match self {
            MultiResult::Create(_) => op::CREATE,
            MultiResult::Create2 { op, .. } => *op,
            MultiResult::Delete => op::DELETE,
            MultiResult::SetData(_) => op::SET_DATA,
            MultiResult::Check => op::CHECK,
            MultiResult::GetChildren(_) => op::GET_CHILDREN,
            MultiResult::GetData { .. } => op::GET_DATA,
            MultiResult::Error(_) => op::ERROR,
        }
    }
}

/// A response body. Which variant a reply carries depends on the request's opcode, so decoding
/// needs it ([`Response::read_body`]); a reply whose header has `err != 0` has no body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// delete, check, ping, closeSession, setWatches(2), auth, addWatch, removeWatches,
    /// checkWatches, and any error reply.
    Empty,
    Create(CreateResponse),
    Create2(Create2Response),
    /// exists, setData, setACL.
    Stat(Stat),
    GetData(GetDataResponse),
    GetAcl(GetAclResponse),
    /// getChildren, getEphemerals.
    Children(Vec<String>),
    Children2(GetChildren2Response),
    Sync(PathRequest),
    AllChildrenNumber(i32),
    Multi(Vec<MultiResult>),
    WhoAmI(Vec<ClientInfo>),
}

impl Response {
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Response::Empty => {}
            Response::Create(x) => x.write(out),
            Response::Create2(x) => x.write(out),
            Response::Stat(x) => x.write(out),
            Response::GetData(x) => x.write(out),
            Response::GetAcl(x) => x.write(out),
            Response::Children(x) => put_vec(out, x),
            Response::Children2(x) => x.write(out),
            Response::Sync(x) => x.write(out),
            Response::AllChildrenNumber(n) => put_i32(out, *n),
            Response::WhoAmI(x) => put_vec(out, x),
            Response::Multi(results) => {
                for res in results {
                    let code = res.op_code();
                    let err = match res {
                        MultiResult::Error(e) => *e,
                        _ => 0,
                    };
                    MultiHeader {
                        op: code,
                        done: false,
                        err,
                    }
                    .write(out);
                    match res {
                        MultiResult::Create(p) => put_str(out, p),
                        MultiResult::Create2 { path, stat, .. } => {
                            put_str(out, path);
                            stat.write(out);
                        }
                        MultiResult::Delete | MultiResult::Check => {}
                        MultiResult::SetData(s) => s.write(out),
                        MultiResult::GetChildren(c) => put_vec(out, c),
                        MultiResult::GetData { data, stat } => {
                            put_buffer(out, data);
                            stat.write(out);
                        }
                        MultiResult::Error(e) => put_i32(out, *e),
                    }
                }
                MULTI_END.write(out);
            }
        }
    }

    /// Decodes the body of a successful reply to a request with opcode `code`.
    pub fn read_body(code: i32, r: &mut Reader<'_>) -> Result<Response, JuteError> {
        Ok(match code {
            op::DELETE
            | op::CHECK
            | op::PING
            | op::CLOSE_SESSION
            | op::SET_WATCHES
            | op::SET_WATCHES2
            | op::AUTH
            | op::ADD_WATCH
            | op::REMOVE_WATCHES
            | op::CHECK_WATCHES
            | op::DELETE_CONTAINER
            | op::RECONFIG => Response::Empty,
            op::CREATE => Response::Create(Jute::read(r)?),
            op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                Response::Create2(Jute::read(r)?)
            }
            op::EXISTS | op::SET_DATA | op::SET_ACL => Response::Stat(Jute::read(r)?),
            op::GET_DATA => Response::GetData(Jute::read(r)?),
            op::GET_ACL => Response::GetAcl(Jute::read(r)?),
            op::GET_CHILDREN | op::GET_EPHEMERALS => Response::Children(r.read_vec()?),
            op::GET_CHILDREN2 => Response::Children2(Jute::read(r)?),
            op::SYNC => Response::Sync(Jute::read(r)?),
            op::GET_ALL_CHILDREN_NUMBER => Response::AllChildrenNumber(r.read_i32()?),
            op::WHO_AM_I => Response::WhoAmI(r.read_vec()?),
            op::MULTI | op::MULTI_READ => {
                let mut results = Vec::new();
                loop {
                    let h = MultiHeader::read(r)?;
                    if h.done {
                        break;
                    }
                    results.push(match h.op {
                        op::CREATE => MultiResult::Create(r.read_string()?),
                        op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
                            MultiResult::Create2 {
                                op: h.op,
                                path: r.read_string()?,
                                stat: Stat::read(r)?,
                            }
                        }
                        op::DELETE => MultiResult::Delete,
                        op::CHECK => MultiResult::Check,
                        op::SET_DATA => MultiResult::SetData(Stat::read(r)?),
                        op::GET_CHILDREN => MultiResult::GetChildren(r.read_vec()?),
                        op::GET_DATA => MultiResult::GetData {
                            data: r.read_buffer()?,
                            stat: Stat::read(r)?,
                        },
                        op::ERROR => MultiResult::Error(r.read_i32()?),
                        other => return Err(JuteError::BadMultiOp(other)),
                    });
                }
                Response::Multi(results)
            }
            other => return Err(JuteError::UnknownOpCode(other)),
        })
    }
}

/// Bytes of a `ReplyHeader` (xid, zxid, err).
const REPLY_HEADER_BYTES: usize = 16;

/// Appends one reply frame (length, `ReplyHeader`, body) to `out`: `body` writes the body and
/// returns the error code; an error reply keeps no body (ZooKeeper sends only the header).
pub fn write_reply_with(
    out: &mut Vec<u8>,
    xid: i32,
    zxid: i64,
    body: impl FnOnce(&mut Vec<u8>) -> i32,
) {
    let mark = begin_frame(out);
    ReplyHeader { xid, zxid, err: 0 }.write(out);
    let err = body(out);
    if err != 0 {
        let hdr_end = mark + 4 + REPLY_HEADER_BYTES;
        out.truncate(hdr_end);
        out[hdr_end - 4..].copy_from_slice(&err.to_be_bytes());
    }
    end_frame(out, mark);
}

/// Appends one whole reply frame (length, `ReplyHeader`, body) to `out`.
pub fn write_reply(out: &mut Vec<u8>, xid: i32, zxid: i64, err: i32, body: &Response) {
    write_reply_with(out, xid, zxid, |out| {
        if err == 0 {
            body.write(out);
        }
        err
    });
}

/// Appends one watch notification frame (`xid -1`) to `out`.
pub fn write_event(out: &mut Vec<u8>, zxid: i64, kind: i32, path: &str) {
    write_reply_with(out, xid::NOTIFICATION, zxid, |out| {
        put_i32(out, kind);
        put_i32(out, state::SYNC_CONNECTED);
        put_str(out, path);
        0
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(v: i32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    fn be64(v: i64) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }
    fn s(v: &str) -> Vec<u8> {
        let mut o = be32(v.len() as i32);
        o.extend_from_slice(v.as_bytes());
        o
    }
    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    fn stat() -> Stat {
        Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        }
    }
    fn stat_bytes() -> Vec<u8> {
        cat(&[
            be64(1),
            be64(2),
            be64(3),
            be64(4),
            be32(5),
            be32(6),
            be32(7),
            be64(8),
            be32(9),
            be32(10),
            be64(11),
        ])
    }

    #[test]
    fn stat_is_68_bytes_in_jute_field_order() {
        let b = stat().to_bytes();
        assert_eq!(b.len(), 68);
        assert_eq!(b, stat_bytes());
        assert_eq!(Stat::from_bytes(&b).unwrap(), stat());
        assert!(matches!(
            Stat::from_bytes(&b[..67]),
            Err(JuteError::Truncated { .. })
        ));
    }

    #[test]
    fn connect_request_with_and_without_read_only() {
        // protocolVersion 0, lastZxidSeen 0x10, timeOut 10000, sessionId 0, passwd 16 zero bytes,
        // readOnly false: what kazoo 2.x sends on a fresh connection.
        let mut bytes = cat(&[be32(0), be64(0x10), be32(10_000), be64(0), be32(16)]);
        bytes.extend_from_slice(&[0u8; 16]);
        let without = bytes.clone();
        bytes.push(0);
        let req = ConnectRequest::from_bytes(&bytes).unwrap();
        assert_eq!(
            req,
            ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 0x10,
                timeout_ms: 10_000,
                session_id: 0,
                passwd: vec![0; 16],
                read_only: Some(false),
            }
        );
        assert_eq!(req.to_bytes(), bytes);
        let old = ConnectRequest::from_bytes(&without).unwrap();
        assert_eq!(old.read_only, None);
        assert_eq!(old.to_bytes(), without);

        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms: 4000,
            session_id: 0x0102_0304_0506_0708,
            passwd: (0..16).collect(),
            read_only: Some(false),
        };
        let mut expect = cat(&[be32(0), be32(4000), be64(0x0102_0304_0506_0708), be32(16)]);
        expect.extend(0u8..16);
        expect.push(0);
        assert_eq!(resp.to_bytes(), expect);
        assert_eq!(ConnectResponse::from_bytes(&expect).unwrap(), resp);
    }

    #[test]
    fn create_request_bytes_and_roundtrip() {
        let req = Request::Create(CreateRequest {
            path: "/a".into(),
            data: b"hi".to_vec(),
            acl: vec![Acl {
                perms: perms::ALL,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags: CreateMode::EphemeralSequential.flags(),
        });
        let mut out = Vec::new();
        req.write(7, &mut out);
        let expect = cat(&[
            be32(7),
            be32(op::CREATE),
            s("/a"),
            s("hi"),
            be32(1),
            be32(31),
            s("world"),
            s("anyone"),
            be32(3),
        ]);
        assert_eq!(out, expect);
        let (h, back) = Request::decode(&out).unwrap();
        assert_eq!(h, RequestHeader { xid: 7, op: 1 });
        assert_eq!(back, req);
        // Every strict prefix is a typed truncation error, never a panic.
        for cut in 0..out.len() {
            assert!(Request::decode(&out[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn every_request_roundtrips() {
        let cr = CreateRequest {
            path: "/c".into(),
            data: vec![1, 2, 3],
            acl: vec![Acl {
                perms: perms::READ | perms::WRITE,
                id: Id {
                    scheme: "digest".into(),
                    id: "u:hash=".into(),
                },
            }],
            flags: 4,
        };
        let ttl = CreateTtlRequest {
            path: "/t".into(),
            data: vec![],
            acl: vec![],
            flags: 5,
            ttl: 1500,
        };
        let pw = PathWatchRequest {
            path: "/p".into(),
            watch: true,
        };
        let pv = PathVersionRequest {
            path: "/v".into(),
            version: -1,
        };
        let p = PathRequest { path: "/x".into() };
        let sd = SetDataRequest {
            path: "/s".into(),
            data: vec![9; 10],
            version: 3,
        };
        let reqs = vec![
            Request::Ping,
            Request::CloseSession,
            Request::WhoAmI,
            Request::Create(cr.clone()),
            Request::Create2(cr.clone()),
            Request::CreateContainer(cr.clone()),
            Request::CreateTtl(ttl.clone()),
            Request::Delete(pv.clone()),
            Request::DeleteContainer(p.clone()),
            Request::Exists(pw.clone()),
            Request::GetData(pw.clone()),
            Request::SetData(sd.clone()),
            Request::GetAcl(p.clone()),
            Request::SetAcl(SetAclRequest {
                path: "/a".into(),
                acl: cr.acl.clone(),
                version: 0,
            }),
            Request::GetChildren(pw.clone()),
            Request::GetChildren2(pw.clone()),
            Request::Sync(p.clone()),
            Request::Check(pv.clone()),
            Request::Multi(vec![
                MultiOp::Create(cr.clone()),
                MultiOp::Create2(cr.clone()),
                MultiOp::CreateContainer(cr.clone()),
                MultiOp::CreateTtl(ttl),
                MultiOp::Delete(pv.clone()),
                MultiOp::SetData(sd),
                MultiOp::Check(pv),
            ]),
            Request::MultiRead(vec![
                MultiOp::GetChildren(pw.clone()),
                MultiOp::GetData(pw.clone()),
            ]),
            Request::Multi(vec![]),
            Request::Reconfig(ReconfigRequest {
                joining_servers: "a".into(),
                leaving_servers: "b".into(),
                new_members: "".into(),
                cur_config_id: -1,
            }),
            Request::CheckWatches(WatchesRequest {
                path: "/w".into(),
                kind: watcher_type::ANY,
            }),
            Request::RemoveWatches(WatchesRequest {
                path: "/w".into(),
                kind: watcher_type::DATA,
            }),
            Request::Auth(AuthPacket {
                kind: 0,
                scheme: "digest".into(),
                auth: b"user:pw".to_vec(),
            }),
            Request::SetWatches(SetWatches {
                relative_zxid: 77,
                data_watches: vec!["/d".into()],
                exist_watches: vec!["/e".into(), "/f".into()],
                child_watches: vec![],
            }),
            Request::SetWatches2(SetWatches2 {
                relative_zxid: 78,
                data_watches: vec![],
                exist_watches: vec![],
                child_watches: vec!["/c".into()],
                persistent_watches: vec!["/p".into()],
                persistent_recursive_watches: vec!["/r".into()],
            }),
            Request::GetEphemerals(p.clone()),
            Request::GetAllChildrenNumber(p),
            Request::AddWatch(AddWatchRequest {
                path: "/w".into(),
                mode: add_watch_mode::PERSISTENT_RECURSIVE,
            }),
        ];
        for (i, req) in reqs.iter().enumerate() {
            let mut out = Vec::new();
            req.write(i as i32, &mut out);
            let (h, back) = Request::decode(&out).unwrap();
            assert_eq!(h.xid, i as i32);
            assert_eq!(h.op, req.op_code());
            assert_eq!(&back, req);
            for cut in 0..out.len() {
                // Bodyless requests decode from their header alone; the rest must be refused.
                if let Ok((_, short)) = Request::decode(&out[..cut]) {
                    assert_eq!(&short, req, "{req:?} cut at {cut}");
                }
            }
        }
    }

    #[test]
    fn multi_request_layout() {
        let req = Request::Multi(vec![
            MultiOp::Check(PathVersionRequest {
                path: "/a".into(),
                version: 2,
            }),
            MultiOp::Delete(PathVersionRequest {
                path: "/b".into(),
                version: -1,
            }),
        ]);
        let mut out = Vec::new();
        req.write(1, &mut out);
        let expect = cat(&[
            be32(1),
            be32(op::MULTI),
            be32(op::CHECK),
            vec![0],
            be32(-1),
            s("/a"),
            be32(2),
            be32(op::DELETE),
            vec![0],
            be32(-1),
            s("/b"),
            be32(-1),
            be32(-1),
            vec![1],
            be32(-1),
        ]);
        assert_eq!(out, expect);
        // An op that cannot appear in a multi is a typed error.
        let mut bad = cat(&[be32(1), be32(op::MULTI), be32(op::PING), vec![0], be32(-1)]);
        bad.extend(cat(&[be32(-1), vec![1], be32(-1)]));
        assert_eq!(Request::decode(&bad), Err(JuteError::BadMultiOp(op::PING)));
    }

    #[test]
    fn every_response_roundtrips() {
        let st = stat();
        let cases: Vec<(i32, Response)> = vec![
            (op::DELETE, Response::Empty),
            (
                op::CREATE,
                Response::Create(CreateResponse { path: "/a".into() }),
            ),
            (
                op::CREATE2,
                Response::Create2(Create2Response {
                    path: "/a".into(),
                    stat: st.clone(),
                }),
            ),
            (op::EXISTS, Response::Stat(st.clone())),
            (
                op::GET_DATA,
                Response::GetData(GetDataResponse {
                    data: b"xyz".to_vec(),
                    stat: st.clone(),
                }),
            ),
            (
                op::GET_ACL,
                Response::GetAcl(GetAclResponse {
                    acl: vec![Acl {
                        perms: 31,
                        id: Id {
                            scheme: "world".into(),
                            id: "anyone".into(),
                        },
                    }],
                    stat: st.clone(),
                }),
            ),
            (
                op::GET_CHILDREN,
                Response::Children(vec!["a".into(), "b".into()]),
            ),
            (
                op::GET_CHILDREN2,
                Response::Children2(GetChildren2Response {
                    children: vec!["z".into()],
                    stat: st.clone(),
                }),
            ),
            (op::SYNC, Response::Sync(PathRequest { path: "/".into() })),
            (op::GET_ALL_CHILDREN_NUMBER, Response::AllChildrenNumber(42)),
            (
                op::WHO_AM_I,
                Response::WhoAmI(vec![ClientInfo {
                    auth_scheme: "ip".into(),
                    user: "127.0.0.1".into(),
                }]),
            ),
            (
                op::MULTI,
                Response::Multi(vec![
                    MultiResult::Create("/n".into()),
                    MultiResult::Create2 {
                        op: op::CREATE_TTL,
                        path: "/t".into(),
                        stat: st.clone(),
                    },
                    MultiResult::Delete,
                    MultiResult::SetData(st.clone()),
                    MultiResult::Check,
                    MultiResult::Error(Code::NoNode.as_i32()),
                ]),
            ),
            (
                op::MULTI_READ,
                Response::Multi(vec![
                    MultiResult::GetChildren(vec!["c".into()]),
                    MultiResult::GetData {
                        data: vec![],
                        stat: st,
                    },
                    MultiResult::Error(Code::NoNode.as_i32()),
                ]),
            ),
        ];
        for (code, resp) in cases {
            let mut out = Vec::new();
            resp.write(&mut out);
            let back = Response::read_body(code, &mut Reader::new(&out)).unwrap();
            assert_eq!(back, resp, "op {code}");
        }
    }

    #[test]
    fn reply_and_event_frames() {
        let mut out = Vec::new();
        write_reply(
            &mut out,
            5,
            0x20,
            0,
            &Response::Create(CreateResponse { path: "/a".into() }),
        );
        let expect = cat(&[be32(4 + 8 + 4 + 6), be32(5), be64(0x20), be32(0), s("/a")]);
        assert_eq!(out, expect);
        // An error reply carries no body, whatever the body argument.
        out.clear();
        write_reply(
            &mut out,
            6,
            0x21,
            Code::NoNode.as_i32(),
            &Response::Stat(stat()),
        );
        assert_eq!(out, cat(&[be32(16), be32(6), be64(0x21), be32(-101)]));
        // A body that fails after writing part of itself leaves only the header, with its code;
        // frames already in `out` are kept.
        write_reply_with(&mut out, 7, 0x22, |out| {
            put_str(out, "/partial");
            Code::NoAuth.as_i32()
        });
        let expect = cat(&[be32(16), be32(6), be64(0x21), be32(-101)]);
        let expect = cat(&[expect, be32(16), be32(7), be64(0x22), be32(-102)]);
        assert_eq!(out, expect);

        out.clear();
        write_event(&mut out, 9, event_type::NODE_DATA_CHANGED, "/w");
        let expect = cat(&[
            be32(16 + 4 + 4 + 6),
            be32(-1),
            be64(9),
            be32(0),
            be32(3),
            be32(3),
            s("/w"),
        ]);
        assert_eq!(out, expect);
        let mut r = Reader::new(&out[4..]);
        let h = ReplyHeader::read(&mut r).unwrap();
        assert_eq!(h.xid, xid::NOTIFICATION);
        let ev = WatcherEvent::read(&mut r).unwrap();
        assert_eq!(
            ev,
            WatcherEvent {
                kind: 3,
                state: 3,
                path: "/w".into()
            }
        );
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        // A vector claiming 2^31-1 ACLs in a 20-byte frame.
        let b = cat(&[s("/a"), be32(0), be32(i32::MAX)]);
        assert!(matches!(
            CreateRequest::from_bytes(&b),
            Err(JuteError::LengthTooLarge { .. })
        ));
        // A string longer than the frame.
        assert!(matches!(
            PathRequest::from_bytes(&cat(&[be32(1000), b"ab".to_vec()])),
            Err(JuteError::LengthTooLarge { .. })
        ));
        // Negative lengths other than -1.
        assert!(matches!(
            PathRequest::from_bytes(&be32(-7)),
            Err(JuteError::NegativeLength { len: -7, .. })
        ));
        // -1 is null: decodes as empty.
        assert_eq!(
            PathRequest::from_bytes(&be32(-1)).unwrap(),
            PathRequest::default()
        );
        // Bad UTF-8 in a path.
        assert!(matches!(
            PathRequest::from_bytes(&cat(&[be32(2), vec![0xff, 0xfe]])),
            Err(JuteError::BadUtf8 { .. })
        ));
        // Unknown opcode.
        assert_eq!(
            Request::decode(&cat(&[be32(1), be32(9999)])),
            Err(JuteError::UnknownOpCode(9999))
        );
        // Frame lengths.
        assert_eq!(frame_len(16i32.to_be_bytes()), Ok(16));
        assert!(frame_len((-2i32).to_be_bytes()).is_err());
        assert!(frame_len(i32::MAX.to_be_bytes()).is_err());
    }

    #[test]
    fn codes_and_modes() {
        for c in Code::ALL {
            assert_eq!(Code::from_i32(c.as_i32()), Some(c));
        }
        assert_eq!(Code::NoNode.as_i32(), -101);
        assert_eq!(Code::NodeExists.as_i32(), -110);
        assert_eq!(Code::SessionExpired.as_i32(), -112);
        assert_eq!(Code::from_i32(-9999), None);
        for f in 0..7 {
            assert_eq!(CreateMode::from_flags(f).unwrap().flags(), f);
        }
        assert_eq!(CreateMode::from_flags(7), None);
        assert!(CreateMode::PersistentSequentialWithTtl.is_ttl());
        assert!(CreateMode::PersistentSequentialWithTtl.is_sequential());
        assert!(!CreateMode::Container.is_ephemeral());
    }

    fn valid_frames() -> Vec<Vec<u8>> {
        let acl = vec![Acl {
            perms: 31,
            id: Id {
                scheme: "digest".into(),
                id: "u:h".into(),
            },
        }];
        let reqs = [
            Request::Create(CreateRequest {
                path: "/a/b".into(),
                data: vec![7; 20],
                acl: acl.clone(),
                flags: 3,
            }),
            Request::Multi(vec![
                MultiOp::CreateTtl(CreateTtlRequest {
                    path: "/t".into(),
                    data: vec![1],
                    acl,
                    flags: 5,
                    ttl: 9,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/s".into(),
                    data: vec![2; 5],
                    version: 1,
                }),
            ]),
            Request::SetWatches2(SetWatches2 {
                relative_zxid: 3,
                data_watches: vec!["/d".into()],
                exist_watches: vec!["/e".into()],
                child_watches: vec!["/c".into()],
                persistent_watches: vec!["/p".into()],
                persistent_recursive_watches: vec!["/r".into()],
            }),
        ];
        reqs.iter()
            .map(|r| {
                let mut v = Vec::new();
                r.write(1, &mut v);
                v
            })
            .collect()
    }

    proptest::proptest! {
        /// Valid frames with bytes overwritten (lengths, counts, opcodes land on hostile values
        /// far more often than with random bytes): a typed error or a value, never a panic or an
        /// allocation beyond the frame.
        #[test]
        fn decoding_mutated_frames_never_panics(
            which in 0usize..3,
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..6),
            cut in proptest::num::usize::ANY,
        ) {
            let mut f = valid_frames()[which].clone();
            for (at, b) in edits {
                let i = at % f.len();
                f[i] = b;
            }
            let len = f.len();
            let f = &f[..=(cut % len)];
            if let Ok((_, req)) = Request::decode(f) {
                let mut again = Vec::new();
                req.write(1, &mut again);
                proptest::prop_assert!(again.len() <= f.len() + 8 * 64);
            }
        }

        #[test]
        fn decoding_random_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = Request::decode(&bytes);
            let _ = ConnectRequest::from_bytes(&bytes);
            for code in [op::MULTI, op::GET_DATA, op::GET_ACL, op::CREATE2, op::WHO_AM_I] {
                let _ = Response::read_body(code, &mut Reader::new(&bytes));
            }
        }
    }
}
