//! The ZooKeeper frontend at the byte level, over real loopback TCP to an embedded node:
//! negotiated timeouts, pipelined requests answered in order (reads see the writes before them),
//! bad input (unknown opcode, hostile frame length, truncated body, garbage handshake), and a
//! re-attach with a wrong password; a client that does not read its replies is disconnected once
//! they pass the server's per-connection bound, while other clients go on.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use coord::server::{start_embedded_with, ServerConfig};
use coord::zk::jute::{
    self, op, Code, ConnectRequest, ConnectResponse, Jute, PathWatchRequest, ReplyHeader, Request,
    Response,
};

mod common;
use common::zk::{call, create, handshake, recv, send};

fn node(tick_ms: u64) -> (tempfile::TempDir, coord::server::Embedded, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::new(1, dir.path().to_path_buf(), "127.0.0.1:0".into());
    cfg.zk_listen = Some("127.0.0.1:0".into());
    cfg.zk_tick_ms = tick_ms;
    let n = start_embedded_with(cfg).unwrap();
    let zk = n.zk_addr.expect("zk address").to_string();
    (dir, n, zk)
}

#[test]
fn timeouts_are_negotiated_and_pipelined_replies_come_in_order() {
    let (_dir, _node, zk) = node(300);
    // 2..20 ticks of 300 ms.
    let (_s, r) = handshake(&zk, 100_000, 0, vec![0; 16]);
    assert_eq!(r.timeout_ms, 6_000);
    assert_eq!(r.passwd.len(), 16);
    assert_eq!(r.read_only, Some(false));
    let (mut s, r) = handshake(&zk, 1, 0, vec![0; 16]);
    assert_eq!(r.timeout_ms, 600);

    // 200 requests in one write: create /p/i then getData /p/i, alternating.
    let mut b = Vec::new();
    let mut f = Vec::new();
    create("/p", vec![]).write(1, &mut f);
    let mark = jute::begin_frame(&mut b);
    b.extend_from_slice(&f);
    jute::end_frame(&mut b, mark);
    for i in 0..100 {
        let mut one = Vec::new();
        create(&format!("/p/{i}"), vec![i as u8]).write(10 + 2 * i, &mut one);
        let mark = jute::begin_frame(&mut b);
        b.extend_from_slice(&one);
        jute::end_frame(&mut b, mark);
        one.clear();
        Request::GetData(PathWatchRequest {
            path: format!("/p/{i}"),
            watch: false,
        })
        .write(11 + 2 * i, &mut one);
        let mark = jute::begin_frame(&mut b);
        b.extend_from_slice(&one);
        jute::end_frame(&mut b, mark);
    }
    s.write_all(&b).unwrap();
    let first = recv(&mut s).unwrap();
    assert_eq!(ReplyHeader::from_bytes(&first).unwrap().err, 0);
    let mut last_zxid = 0;
    for i in 0..100 {
        let c = recv(&mut s).unwrap();
        let h = ReplyHeader::from_bytes(&c).unwrap();
        assert_eq!((h.xid, h.err), (10 + 2 * i, 0), "create {i}");
        assert!(h.zxid >= last_zxid, "zxids go backwards");
        last_zxid = h.zxid;
        let g = recv(&mut s).unwrap();
        let h = ReplyHeader::from_bytes(&g).unwrap();
        assert_eq!(
            (h.xid, h.err),
            (11 + 2 * i, 0),
            "get {i} must see create {i}"
        );
        let resp = Response::read_body(op::GET_DATA, &mut jute::Reader::new(&g[16..])).unwrap();
        match resp {
            Response::GetData(d) => assert_eq!(d.data, vec![i as u8]),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn bad_input_gets_an_error_or_a_closed_connection_and_wrong_passwords_are_refused() {
    let (_dir, _node, zk) = node(100);
    let (mut s, r) = handshake(&zk, 2_000, 0, vec![0; 16]);
    // Unknown opcode: UNIMPLEMENTED for that xid; the connection stays usable.
    let mut b = 7i32.to_be_bytes().to_vec();
    b.extend_from_slice(&999i32.to_be_bytes());
    send(&mut s, &b);
    let h = ReplyHeader::from_bytes(&recv(&mut s).unwrap()).unwrap();
    assert_eq!((h.xid, h.err), (7, Code::Unimplemented.as_i32()));
    let (h, _) = call(&mut s, -2, &Request::Ping);
    assert_eq!((h.xid, h.err), (-2, 0));
    // Error codes travel in the header.
    let (h, _) = call(
        &mut s,
        8,
        &Request::GetData(PathWatchRequest {
            path: "/missing".into(),
            watch: false,
        }),
    );
    assert_eq!((h.xid, h.err), (8, Code::NoNode.as_i32()));
    // A truncated body closes the connection.
    let mut b = 9i32.to_be_bytes().to_vec();
    b.extend_from_slice(&op::CREATE.to_be_bytes());
    b.extend_from_slice(&100i32.to_be_bytes()); // a path of 100 bytes that never comes
    send(&mut s, &b);
    assert!(
        recv(&mut s).is_none(),
        "truncated request must close the connection"
    );

    // A hostile frame length closes the connection without reading (or allocating) it.
    let (mut s2, _) = handshake(&zk, 2_000, 0, vec![0; 16]);
    s2.write_all(&i32::MAX.to_be_bytes()).unwrap();
    assert!(recv(&mut s2).is_none());

    // Garbage instead of a ConnectRequest.
    let mut s3 = TcpStream::connect(&zk).unwrap();
    s3.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    send(&mut s3, b"ruok");
    assert!(recv(&mut s3).is_none());

    // Re-attach: the right password keeps the session, a wrong one is told it expired.
    let (_s4, again) = handshake(&zk, 2_000, r.session_id, r.passwd.clone());
    assert_eq!(again.session_id, r.session_id);
    assert!(again.timeout_ms > 0);
    let (mut s5, bad) = handshake(&zk, 2_000, r.session_id, vec![1; 16]);
    assert_eq!(bad.timeout_ms, 0);
    assert!(recv(&mut s5).is_none());
    // An unknown session id too.
    let (_s6, unknown) = handshake(&zk, 2_000, 987_654, vec![0; 16]);
    assert_eq!(unknown.timeout_ms, 0);
    // A client claiming a zxid the ensemble never reached is refused (connection closed).
    let mut s7 = TcpStream::connect(&zk).unwrap();
    s7.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ahead = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 1 << 40,
        timeout_ms: 2_000,
        session_id: 0,
        passwd: vec![0; 16],
        read_only: Some(false),
    };
    send(&mut s7, &ahead.to_bytes());
    assert!(recv(&mut s7).is_none());
}

/// A client that saw a few entries more than the node it reconnects to (it came from a follower
/// that applied them first) is not refused: its handshake waits until the node has applied them.
#[test]
fn a_client_slightly_ahead_is_answered_once_the_node_catches_up() {
    let (_dir, _node, zk) = node(100);
    let (mut s, r) = handshake(&zk, 4_000, 0, vec![0; 16]);
    let (h, _) = call(&mut s, 1, &create("/ahead", vec![]));
    assert_eq!(h.err, 0);
    let seen = h.zxid + 3;
    let zk2 = zk.clone();
    let (sid, pw) = (r.session_id, r.passwd.clone());
    let waiting = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&zk2).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: seen,
            timeout_ms: 4_000,
            session_id: sid,
            passwd: pw,
            read_only: Some(false),
        };
        send(&mut s, &req.to_bytes());
        recv(&mut s).map(|b| ConnectResponse::from_bytes(&b).unwrap())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !waiting.is_finished(),
        "answered before the node reached the client's zxid"
    );
    let mut xid = 2;
    loop {
        let (h, _) = call(&mut s, xid, &create(&format!("/ahead/{xid}"), vec![]));
        assert_eq!(h.err, 0);
        if h.zxid >= seen {
            break;
        }
        xid += 1;
    }
    let resp = waiting
        .join()
        .unwrap()
        .expect("the handshake is answered, not dropped");
    assert_eq!(resp.session_id, r.session_id);
    assert!(resp.timeout_ms > 0);
}

/// 100 GetData of a 1 MB node pipelined without reading a reply: ~100 MB of replies, past
/// `CLIENT_OUTBOX_BYTES_MAX` (64 MiB). The server drops what it buffered and closes the
/// connection (the reader sees fewer replies, then the end of the stream) instead of holding it
/// all; another client is served meanwhile.
#[test]
fn a_client_that_does_not_read_is_closed_at_the_outbox_bound() {
    let (_dir, _node, zk) = node(100);
    let (mut s, _) = handshake(&zk, 6_000, 0, vec![0; 16]);
    let (h, _) = call(&mut s, 1, &create("/big", vec![7; 1_000_000]));
    assert_eq!(h.err, 0);
    let requests = 100;
    assert!(requests * 1_000_000 > coord::server::CLIENT_OUTBOX_BYTES_MAX);
    let mut b = Vec::new();
    for i in 0..requests {
        let mut one = Vec::new();
        Request::GetData(PathWatchRequest {
            path: "/big".into(),
            watch: false,
        })
        .write(10 + i as i32, &mut one);
        let mark = jute::begin_frame(&mut b);
        b.extend_from_slice(&one);
        jute::end_frame(&mut b, mark);
    }
    s.write_all(&b).unwrap();
    // Give the node time to answer everything into its buffer before anything is read.
    std::thread::sleep(Duration::from_secs(2));
    let (mut other, _) = handshake(&zk, 6_000, 0, vec![0; 16]);
    let (h, _) = call(&mut other, 1, &create("/other", vec![]));
    assert_eq!(h.err, 0, "another client is served");
    let mut replies = 0;
    loop {
        match common::zk::recv_frame(&mut s) {
            Ok(Some(_)) => replies += 1,
            Ok(None) => break,
            Err(e) => panic!("after {replies} replies the connection stayed open: {e}"),
        }
    }
    assert!(replies < requests, "{replies} replies");
}
