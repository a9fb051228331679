//! A fault proxy for process-level tests: a TCP proxy (threads) between a real client and a
//! broker that advertises the proxy's address, so every connection goes through it. It pairs each
//! response frame with its request by correlation id and, while faults are on, drops one in
//! `drop_every` Produce responses and cuts the connection there: the broker appended the batch,
//! the client never hears of it and must retry on a new connection. The test can also drop the
//! next Produce response on demand and then cut every new connection (`drop_next`, `blocked`),
//! for a broker about to be killed. And while `lose_produce` is set, Produce requests vanish on
//! their way to the broker: the batch is never appended and the client hears nothing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const PRODUCE_API_KEY: i16 = 0;

/// The fault proxy: forwards every connection to `upstream`, dropping Produce responses.
pub struct Proxy {
    /// Drop one Produce response in this many while faults are on.
    pub drop_every: usize,
    pub addr: String,
    faults: Arc<AtomicBool>,
    /// Set by the test: drop the next Produce response (whatever the count), cut, and block.
    pub drop_next: Arc<AtomicBool>,
    /// While set, new connections are cut at once (the broker is about to be killed).
    pub blocked: Arc<AtomicBool>,
    /// While set, Produce requests are not forwarded (counted in `lost`).
    pub lose_produce: Arc<AtomicBool>,
    pub lost: Arc<AtomicUsize>,
    pub produce_responses: Arc<AtomicUsize>,
    pub dropped: Arc<AtomicUsize>,
}

impl Proxy {
    /// A proxy to `upstream` dropping one Produce response in `drop_every` while faults are on.
    pub fn start(upstream: String, drop_every: usize) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let addr = listener.local_addr().expect("proxy addr").to_string();
        let faults = Arc::new(AtomicBool::new(false));
        let drop_next = Arc::new(AtomicBool::new(false));
        let blocked = Arc::new(AtomicBool::new(false));
        let produce_responses = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let lose_produce = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicUsize::new(0));
        let (lose, lost2) = (lose_produce.clone(), lost.clone());
        eprintln!("fault proxy {addr} -> {upstream}");
        let (f, r, d) = (faults.clone(), produce_responses.clone(), dropped.clone());
        let (n, b) = (drop_next.clone(), blocked.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if b.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                // The broker may be down (the kill -9 test): the client sees a cut connection.
                let Ok(broker) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let conn = Connection {
                    drop_every,
                    client,
                    broker,
                    requests: Arc::default(),
                    faults: f.clone(),
                    drop_next: n.clone(),
                    blocked: b.clone(),
                    lose_produce: lose.clone(),
                    lost: lost2.clone(),
                    produce_responses: r.clone(),
                    dropped: d.clone(),
                };
                conn.run();
            }
        });
        Proxy {
            drop_every,
            addr,
            faults,
            drop_next,
            blocked,
            lose_produce,
            lost,
            produce_responses,
            dropped,
        }
    }

    pub fn set_faults(&self, on: bool) {
        self.faults.store(on, Ordering::SeqCst);
    }
}

struct Connection {
    drop_every: usize,
    client: TcpStream,
    broker: TcpStream,
    /// correlation id → api key of the requests in flight on this connection.
    requests: Arc<Mutex<HashMap<i32, i16>>>,
    faults: Arc<AtomicBool>,
    drop_next: Arc<AtomicBool>,
    blocked: Arc<AtomicBool>,
    lose_produce: Arc<AtomicBool>,
    lost: Arc<AtomicUsize>,
    produce_responses: Arc<AtomicUsize>,
    dropped: Arc<AtomicUsize>,
}

/// One size-prefixed Kafka frame (the size included), or None at the end of the stream.
fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    s.read_exact(&mut size).ok()?;
    let len = usize::try_from(i32::from_be_bytes(size)).ok()?;
    let mut frame = size.to_vec();
    frame.resize(4 + len, 0);
    s.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

impl Connection {
    fn run(self) {
        let cut = |a: &TcpStream, b: &TcpStream| {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        };
        let (mut from_client, mut to_broker) = (
            self.client.try_clone().expect("clone"),
            self.broker.try_clone().expect("clone"),
        );
        let requests = self.requests.clone();
        let (lose, lost) = (self.lose_produce.clone(), self.lost.clone());
        std::thread::spawn(move || {
            while let Some(frame) = read_frame(&mut from_client) {
                // Request header: api key (2), api version (2), correlation id (4).
                if frame.len() >= 12 {
                    let api_key = i16::from_be_bytes([frame[4], frame[5]]);
                    if api_key == PRODUCE_API_KEY && lose.load(Ordering::SeqCst) {
                        lost.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let correlation =
                        i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
                    if let Ok(mut r) = requests.lock() {
                        r.insert(correlation, api_key);
                    }
                }
                if to_broker.write_all(&frame).is_err() {
                    break;
                }
            }
            cut(&from_client, &to_broker);
        });
        let (mut from_broker, mut to_client) = (
            self.broker.try_clone().expect("clone"),
            self.client.try_clone().expect("clone"),
        );
        std::thread::spawn(move || {
            while let Some(frame) = read_frame(&mut from_broker) {
                let api_key = (frame.len() >= 8)
                    .then(|| i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]))
                    .and_then(|c| self.requests.lock().ok()?.remove(&c));
                if api_key == Some(PRODUCE_API_KEY) {
                    let count = self.produce_responses.fetch_add(1, Ordering::SeqCst) + 1;
                    if self.drop_next.swap(false, Ordering::SeqCst) {
                        // Block first, so the client's retry cannot reach this broker again.
                        self.blocked.store(true, Ordering::SeqCst);
                        self.dropped.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    if self.faults.load(Ordering::SeqCst) && count.is_multiple_of(self.drop_every) {
                        // The broker appended it; the client never hears so and must retry.
                        self.dropped.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                }
                if to_client.write_all(&frame).is_err() {
                    break;
                }
            }
            cut(&from_broker, &to_client);
        });
    }
}
