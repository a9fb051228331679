//! A malformed request closes only the connection that sent it: `weir serve` (two shards) gets
//! every request frame the decoder refuses — the committed fuzz corpus's refused files, a few
//! hundred refused mutations of its seeds, and a Produce frame with a lying 1 MiB topic count —
//! each on a new connection, while connections opened before keep being answered on the same
//! sockets. A record set refused by validation (a bad CRC) is answered with an error code and
//! keeps its connection. The broker then stops cleanly.
//!
//! Which frames are refused is decided by `wire::inspect::inspect_request`, the pure path the
//! broker runs (see wire/src/protocol/request.rs), so this test and the fuzz target agree.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use wire::inspect::inspect_request;

mod support;
use support::{header, roundtrip, ServeProcess};

/// `weir serve` on a free loopback port with two shards and 8 MiB segments, its stderr beside
/// `data_dir`.
fn start(data_dir: &Path) -> ServeProcess {
    let data = data_dir.to_str().expect("utf-8 path");
    ServeProcess::start(
        &data_dir.with_extension("stderr"),
        &[
            "--data-dir",
            data,
            "--kafka-addr",
            "127.0.0.1:0",
            "--shards",
            "2",
            "--log-segment-bytes",
            "8388608",
        ],
    )
}

/// ApiVersions v0 and Metadata v1 (all topics) on `s`, answered with their correlation ids.
fn still_served(s: &mut TcpStream, correlation: i32) {
    let r = roundtrip(s, &header(18, 0, correlation)).expect("ApiVersions answered");
    assert_eq!(&r[..4], &correlation.to_be_bytes());
    let mut metadata = header(3, 1, correlation + 1);
    metadata.extend_from_slice(&(-1i32).to_be_bytes()); // null topics: all
    let r = roundtrip(s, &metadata).expect("Metadata answered");
    assert_eq!(&r[..4], &(correlation + 1).to_be_bytes());
}

/// Produce v3, acks=1, one topic with one partition holding `records`.
fn produce(correlation: i32, topic: &str, records: &[u8]) -> Vec<u8> {
    let mut b = header(0, 3, correlation);
    b.extend_from_slice(&(-1i16).to_be_bytes()); // no transactional id
    b.extend_from_slice(&1i16.to_be_bytes());
    b.extend_from_slice(&5_000i32.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    b.extend_from_slice(topic.as_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&(records.len() as i32).to_be_bytes());
    b.extend_from_slice(records);
    b
}

/// Sends `frame` on a fresh connection and waits for the broker to close it: Err if it answers
/// or, within the 10 s read timeout, does neither (a hung connection is not a closed one).
fn closed_unanswered(s: &mut TcpStream, frame: &[u8]) -> Result<(), String> {
    let mut sized = (frame.len() as u32).to_be_bytes().to_vec();
    sized.extend_from_slice(frame);
    if s.write_all(&sized).is_err() {
        return Ok(()); // closed while the frame was still being sent
    }
    let mut buf = [0u8; 4];
    match s.read(&mut buf) {
        Ok(0) => Ok(()),
        Ok(_) => Err("was answered".into()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Err("was neither answered nor its connection closed".into())
        }
        Err(_) => Ok(()), // reset
    }
}

fn refused(frame: &[u8]) -> bool {
    inspect_request(Bytes::copy_from_slice(frame)).is_err()
}

/// The frames to send: refused corpus files, refused mutations of the seeds, and a lying count.
fn malformed_frames() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/request_decoder");
    let mut seeds = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("corpus dir") {
        seeds.push(std::fs::read(entry.expect("entry").path()).expect("corpus file"));
    }
    seeds.sort();
    let mut out: Vec<Vec<u8>> = seeds.iter().filter(|f| refused(f)).cloned().collect();
    // xorshift: the same mutations on every run.
    let mut x: u64 = 0x0bad_f00d_dead_beef;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut tries = 0;
    while out.len() < 300 && tries < 100_000 {
        tries += 1;
        let mut f = seeds[next() as usize % seeds.len()].clone();
        match next() % 3 {
            0 => {
                let cut = next() as usize % f.len().max(1);
                f.truncate(cut);
            }
            1 => {
                let at = next() as usize % f.len().max(1);
                if let Some(b) = f.get_mut(at) {
                    *b = 0xff;
                }
            }
            _ => {
                let at = next() as usize % f.len().max(1);
                for (i, b) in [0x7f, 0xff, 0xff, 0xff].iter().enumerate() {
                    if let Some(slot) = f.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
        }
        if refused(&f) {
            out.push(f);
        }
    }
    // Produce v3 claiming as many topics as the 1 MiB frame has bytes (it reserved 48 MiB).
    let mut lying = header(0, 3, 9);
    lying.extend_from_slice(&(-1i16).to_be_bytes());
    lying.extend_from_slice(&1i16.to_be_bytes());
    lying.extend_from_slice(&1_000i32.to_be_bytes());
    lying.extend_from_slice(&(1i32 << 20).to_be_bytes());
    lying.resize(lying.len() + (1 << 20), 0xff);
    assert!(refused(&lying));
    out.push(lying);
    out
}

#[test]
fn a_malformed_request_closes_only_its_own_connection() {
    let frames = malformed_frames();
    assert!(
        frames.len() >= 100,
        "only {} malformed frames",
        frames.len()
    );

    let tmp = tempfile::tempdir().expect("tempdir");
    let broker = start(&tmp.path().join("data"));
    // Connections opened first (SO_REUSEPORT spreads them over both shards).
    let mut bystanders: Vec<TcpStream> = (0..6).map(|_| broker.connect()).collect();
    for (i, s) in bystanders.iter_mut().enumerate() {
        still_served(s, 1_000 * i as i32);
    }

    for (n, frame) in frames.iter().enumerate() {
        let mut s = broker.connect();
        if let Err(e) = closed_unanswered(&mut s, frame) {
            panic!("malformed frame {n} ({} bytes) {e}", frame.len());
        }
        if n % 50 == 0 {
            for (i, s) in bystanders.iter_mut().enumerate() {
                still_served(s, 1_000 * i as i32 + n as i32 + 2);
            }
        }
    }

    // A well-formed request whose record set fails validation (CRC) is answered, and its
    // connection stays open.
    let mut batch = wire::batch::encode_batch(&[wire::batch::Record {
        timestamp: 1,
        value: Some(b"v".to_vec()),
        ..Default::default()
    }]);
    *batch.last_mut().expect("bytes") ^= 1;
    let topic = "malformed-crc";
    let mut s = broker.connect();
    // Metadata v1 naming the topic auto-creates it.
    let mut metadata = header(3, 1, 76);
    metadata.extend_from_slice(&1i32.to_be_bytes());
    metadata.extend_from_slice(&(topic.len() as i16).to_be_bytes());
    metadata.extend_from_slice(topic.as_bytes());
    roundtrip(&mut s, &metadata).expect("Metadata answered");
    let r = roundtrip(&mut s, &produce(77, topic, &batch)).expect("Produce answered");
    // correlation id, 1 topic, the name, 1 partition, index 0, then its error code.
    let code_at = 4 + 4 + 2 + topic.len() + 4 + 4;
    assert_eq!(&r[..4], &77i32.to_be_bytes());
    assert_eq!(
        i16::from_be_bytes([r[code_at], r[code_at + 1]]),
        2,
        "CORRUPT_MESSAGE"
    );
    still_served(&mut s, 78);

    for (i, s) in bystanders.iter_mut().enumerate() {
        still_served(s, 1_000 * i as i32 + 999);
    }
    for i in 0..4 {
        still_served(&mut broker.connect(), 50_000 + 2 * i);
    }
    broker.stop();
}
