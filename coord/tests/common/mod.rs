//! Helpers shared by the coordinator's integration tests: an executor and client settings.
#![allow(dead_code)]

use coord::client::ClientConfig;
use glommio::{LocalExecutorBuilder, Placement};

/// Runs `f` on a fresh glommio executor with 1 MiB of io memory (the default memlock limit is
/// 8 MiB), and waits for it.
pub fn run<F: std::future::Future<Output = ()> + 'static>(f: impl FnOnce() -> F + Send + 'static) {
    LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(1024 * 1024)
        .spawn(f)
        .expect("spawn executor")
        .join()
        .expect("executor panicked");
}

/// A client configuration for one server with the given session timeout.
pub fn cfg(addr: &str, session_ms: u64) -> ClientConfig {
    let mut c = ClientConfig::new(vec![addr.to_string()]);
    c.session_timeout_ms = session_ms;
    c.request_timeout_ms = 5_000;
    c
}

/// A byte-level ZooKeeper client over a blocking loopback socket (frames, handshake, requests).
pub mod zk {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use coord::zk::jute::{
        self, ConnectRequest, ConnectResponse, CreateRequest, Jute, ReplyHeader, Request,
    };

    /// Writes `body` as one length-prefixed frame.
    pub fn send(s: &mut TcpStream, body: &[u8]) {
        let mut f = (body.len() as i32).to_be_bytes().to_vec();
        f.extend_from_slice(body);
        s.write_all(&f).unwrap();
    }

    /// One frame's body, or None if the server closed the connection.
    pub fn recv(s: &mut TcpStream) -> Option<Vec<u8>> {
        recv_frame(s).ok().flatten()
    }

    /// One frame's body; `Ok(None)` if the server closed the connection (end of stream or a
    /// reset), `Err` on anything else (a read timeout, a length that is not a frame's).
    pub fn recv_frame(s: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
        use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, UnexpectedEof};
        let closed = |e: std::io::Error| match e.kind() {
            UnexpectedEof | ConnectionReset | ConnectionAborted => Ok(None),
            _ => Err(e),
        };
        let mut len = [0u8; 4];
        if let Err(e) = s.read_exact(&mut len) {
            return closed(e);
        }
        let len = i32::from_be_bytes(len);
        if !(0..=4 << 20).contains(&len) {
            return Err(std::io::Error::other(format!("frame length {len}")));
        }
        let mut b = vec![0u8; len as usize];
        match s.read_exact(&mut b) {
            Ok(()) => Ok(Some(b)),
            Err(e) => closed(e),
        }
    }

    /// Connects to `zk` and sends a ConnectRequest (a new session if `session` is 0).
    pub fn handshake(
        zk: &str,
        timeout_ms: i32,
        session: i64,
        passwd: Vec<u8>,
    ) -> (TcpStream, ConnectResponse) {
        let mut s = TcpStream::connect(zk).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: session,
            passwd,
            read_only: Some(false),
        };
        send(&mut s, &req.to_bytes());
        let resp = ConnectResponse::from_bytes(&recv(&mut s).expect("connect response")).unwrap();
        (s, resp)
    }

    /// A create of `path` open to anyone, with ZooKeeper's mode `flags` (0 persistent,
    /// 1 ephemeral).
    pub fn create_mode(path: &str, data: Vec<u8>, flags: i32) -> Request {
        Request::Create(CreateRequest {
            path: path.into(),
            data,
            acl: vec![jute::Acl {
                perms: 31,
                id: jute::Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            }],
            flags,
        })
    }

    /// A persistent create of `path` open to anyone.
    pub fn create(path: &str, data: Vec<u8>) -> Request {
        create_mode(path, data, 0)
    }

    /// Sends one request and waits for its reply: (header, body after the header).
    pub fn call(s: &mut TcpStream, xid: i32, req: &Request) -> (ReplyHeader, Vec<u8>) {
        let mut b = Vec::new();
        req.write(xid, &mut b);
        send(s, &b);
        let body = recv(s).expect("reply");
        let h = ReplyHeader::from_bytes(&body).unwrap();
        (h, body[16..].to_vec())
    }
}
