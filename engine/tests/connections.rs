//! The per-shard connection limit (`ShardsConfig::connections_max`): a connection accepted beyond
//! it is closed at once, the ones within it stay served, and a closed connection frees its place.

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use engine::shard::{self, Completion, Mesh, Service, ShardsConfig};
use futures::future::LocalBoxFuture;
use futures::FutureExt;
use wire::protocol::ProtocolError;

/// A shard service that never answers: connections stay open until the peer closes them.
struct Silent;

impl Service for Silent {
    fn dispatch(
        self: Rc<Self>,
        _frame: Bytes,
        _conn: &Rc<engine::shard::ConnContext>,
    ) -> LocalBoxFuture<'static, Result<Completion, ProtocolError>> {
        async { Err(ProtocolError::Malformed("silent test shard")) }.boxed_local()
    }

    fn shutdown(self: Rc<Self>) -> LocalBoxFuture<'static, ()> {
        async {}.boxed_local()
    }
}

/// Whether the broker closed `stream` within `wait` (EOF or reset), or kept it open.
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 16];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => panic!("the silent shard sent bytes"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn connections_beyond_the_shard_limit_are_closed_and_a_freed_place_is_reused() {
    let shards = shard::start(
        ShardsConfig {
            cores: vec![0],
            io_memory_bytes: 1 << 20,
            kafka_addr: "127.0.0.1:0".parse().unwrap(),
            request_bytes_max: 1 << 20,
            channel_jobs_max: 16,
            connections_max: 2,
        },
        |_mesh: Mesh<Silent>| async { Ok(Rc::new(Silent)) }.boxed_local(),
    )
    .expect("one shard");
    let addr = shards.addr;
    let mut first = TcpStream::connect(addr).unwrap();
    let mut second = TcpStream::connect(addr).unwrap();
    // Both within the limit are accepted and served (the shard holds them open).
    assert!(!closed_within(&mut first, Duration::from_millis(300)));
    assert!(!closed_within(&mut second, Duration::from_millis(300)));
    let mut third = TcpStream::connect(addr).unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(5)),
        "a third connection beyond connections_max = 2 was kept open"
    );
    // Closing one frees its place once the shard has seen it closed (how soon depends on the
    // machine's load, so connections are tried until one is served, not after a fixed sleep).
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let _fourth = loop {
        let mut next = TcpStream::connect(addr).unwrap();
        if !closed_within(&mut next, Duration::from_millis(500)) {
            break next;
        }
        assert!(
            Instant::now() < deadline,
            "a freed place was not given to a later connection within 10 s"
        );
    };
    let mut fifth = TcpStream::connect(addr).unwrap();
    assert!(
        closed_within(&mut fifth, Duration::from_secs(5)),
        "the freed place was given twice"
    );
    assert!(!closed_within(&mut second, Duration::from_millis(100)));
    let errors = shards.stop();
    assert!(errors.is_empty(), "{errors:?}");
}
