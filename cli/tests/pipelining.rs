//! Per-connection ordering with pipelining: requests sent back to back on one connection are
//! answered in the order they were sent, even when an early one (a long-poll Fetch) completes long
//! after the later ones, and when they land on different shards.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

mod support;
use support::{header, run, ServeProcess};

fn string(b: &mut Vec<u8>, s: &str) {
    b.extend_from_slice(&(s.len() as i16).to_be_bytes());
    b.extend_from_slice(s.as_bytes());
}

/// Fetch v4 of one partition from `offset`, waiting up to `max_wait_ms` for one byte.
fn fetch(correlation: i32, topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> Vec<u8> {
    let mut b = header(1, 4, correlation);
    b.extend_from_slice(&(-1i32).to_be_bytes()); // replica id
    b.extend_from_slice(&max_wait_ms.to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes()); // min bytes
    b.extend_from_slice(&(1i32 << 20).to_be_bytes()); // max bytes
    b.push(0); // read uncommitted
    b.extend_from_slice(&1i32.to_be_bytes());
    string(&mut b, topic);
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(&partition.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&(1i32 << 20).to_be_bytes());
    b
}

fn metadata(correlation: i32, topic: &str) -> Vec<u8> {
    let mut b = header(3, 1, correlation);
    b.extend_from_slice(&1i32.to_be_bytes());
    string(&mut b, topic);
    b
}

/// ListOffsets v1, latest offset of partitions 0..4.
fn list_offsets(correlation: i32, topic: &str) -> Vec<u8> {
    let mut b = header(2, 1, correlation);
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    string(&mut b, topic);
    b.extend_from_slice(&4i32.to_be_bytes());
    for p in 0..4i32 {
        b.extend_from_slice(&p.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
    }
    b
}

/// Writes every request frame back to back, before reading anything.
fn send_all(stream: &mut std::net::TcpStream, requests: &[Vec<u8>]) {
    let mut out = Vec::new();
    for r in requests {
        out.extend_from_slice(&(r.len() as u32).to_be_bytes());
        out.extend_from_slice(r);
    }
    stream.write_all(&out).expect("send pipelined requests");
}

/// Reads one response frame; returns its correlation id.
fn read_correlation(stream: &mut std::net::TcpStream) -> i32 {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).expect("response size");
    let mut resp = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut resp).expect("response");
    i32::from_be_bytes([resp[0], resp[1], resp[2], resp[3]])
}

#[test]
fn pipelined_requests_across_shards_are_answered_in_request_order() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("data");
    let broker = ServeProcess::start(
        &tmp.path().join("serve.stderr"),
        &[
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--shards",
            "2",
            "--num-partitions",
            "4",
        ],
    );
    // One record in partition 2 creates the topic (4 partitions over the 2 shards); 0 and 1
    // stay empty, so a Fetch of partition 0 long-polls.
    run(
        Command::new("kcat").args(["-b", &broker.addr, "-P", "-t", "pipe", "-p", "2"]),
        b"one\n",
        Duration::from_secs(30),
    );

    let requests = [
        fetch(1, "pipe", 0, 0, 800),
        header(18, 0, 2), // ApiVersions v0
        fetch(3, "pipe", 1, 0, 0),
        metadata(4, "pipe"),
        list_offsets(5, "pipe"),
        fetch(6, "pipe", 2, 0, 0),
    ];
    let mut stream = broker.connect();
    let started = Instant::now();
    send_all(&mut stream, &requests);
    let mut answered = vec![read_correlation(&mut stream)];
    let first_after = started.elapsed();
    for _ in 1..requests.len() {
        answered.push(read_correlation(&mut stream));
    }
    assert_eq!(
        answered,
        [1, 2, 3, 4, 5, 6],
        "responses out of request order"
    );
    // The long poll really waited, so the later (immediate) answers were held back behind it.
    assert!(
        first_after >= Duration::from_millis(700),
        "the long-poll Fetch came back after {first_after:?}"
    );
    // The connection is still in order afterwards.
    send_all(&mut stream, &[metadata(7, "pipe"), header(18, 0, 8)]);
    assert_eq!(read_correlation(&mut stream), 7);
    assert_eq!(read_correlation(&mut stream), 8);
    broker.stop();
}
