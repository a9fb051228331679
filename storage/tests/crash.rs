//! Crash harness with real processes. A child process appends batches and reports, over a pipe,
//! every batch it was told is durable; the parent `kill -9`s it at a random moment, reopens the
//! log and checks: every reported batch is present and byte-identical, offsets are contiguous, and
//! only whole, valid batches come back. Then it starts the next child on the same log.
//!
//! Batch number `n` of the log is always the same bytes (see `batch_for`), so the parent can check
//! every batch present, reported or not. Run by `cargo test` (harness = false: it is a `main`).

mod common;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{batch, run, stamped};
use storage::{Clock, LogConfig, PartitionLog, Watermark};

const ROUNDS: usize = 24;
const IN_FLIGHT: usize = 8;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2 << 20,
        write_bytes_max: 64 << 10,
        tail_cache_bytes: 256 << 10,
        index_interval_bytes: 4096,
        ..LogConfig::default()
    }
}

/// Records in batch number `n`: 1 to 40, varied so batches straddle pages and write buffers.
fn records_in(n: u64) -> usize {
    1 + (n.wrapping_mul(2_654_435_761) % 40) as usize
}

fn batch_for(n: u64) -> Bytes {
    let value_len = (n.wrapping_mul(40_503) % 700) as usize;
    batch(n, records_in(n), value_len, 1_700_000_000_000 + n as i64)
}

/// Which batch number starts at `offset`, if the log holds batches 0, 1, 2 … back to back.
fn batch_number_at(offset: u64) -> u64 {
    let (mut n, mut at) = (0u64, 0u64);
    while at < offset {
        at += records_in(n) as u64;
        n += 1;
    }
    assert_eq!(at, offset, "offset {offset} is not a batch boundary");
    n
}

fn child(dir: PathBuf) {
    run(move || async move {
        let log = PartitionLog::open(&dir, config(), Clock::System)
            .await
            .expect("child open");
        let mut n = batch_number_at(log.next_offset());
        let mut in_flight = VecDeque::new();
        loop {
            let info = log.append(batch_for(n), 0).expect("append");
            let log = log.clone();
            in_flight.push_back(glommio::spawn_local(async move {
                log.wait(info.last_offset, Watermark::Durable)
                    .await
                    .expect("durable");
                let mut out = std::io::stdout().lock();
                writeln!(out, "{n} {} {}", info.first_offset, info.last_offset).expect("report");
                out.flush().expect("flush report");
            }));
            if in_flight.len() >= IN_FLIGHT {
                if let Some(oldest) = in_flight.pop_front() {
                    oldest.await;
                }
            }
            n += 1;
        }
    });
}

/// A reported durable batch: its number and offsets.
#[derive(Debug, Clone, Copy)]
struct Reported {
    n: u64,
    first: u64,
    last: u64,
}

fn run_child_and_kill(dir: &Path, kill_after: Duration) -> Vec<Reported> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .arg("--child")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let fields: Vec<u64> = line
                .split(' ')
                .map(|f| f.parse().expect("number"))
                .collect();
            lines.push(Reported {
                n: fields[0],
                first: fields[1],
                last: fields[2],
            });
        }
        lines
    });
    std::thread::sleep(kill_after);
    child.kill().expect("kill -9");
    child.wait().expect("reap child");
    reader.join().expect("reader thread")
}

/// Reopens the log and checks it against what was reported; returns (batches, log end).
fn verify(dir: PathBuf, reported: Vec<Reported>) -> (u64, u64) {
    run(move || async move {
        let log = PartitionLog::open(&dir, config(), Clock::System)
            .await
            .expect("reopen after kill -9");
        let end = log.log_end_offset();
        assert_eq!(log.log_start_offset(), 0);
        let (mut offset, mut n) = (0u64, 0u64);
        let mut bases = Vec::new();
        while offset < end {
            let read = log
                .read(offset, 1 << 20)
                .await
                .expect("read after recovery");
            let bytes = read.to_vec();
            let mut at = 0usize;
            for header in &read.batches {
                assert_eq!(header.base_offset as u64, offset, "offsets are contiguous");
                let len = header.total_len().expect("whole batch");
                let expected = stamped(&batch_for(n), offset, 0);
                assert!(
                    bytes[at..at + len] == expected[..],
                    "batch {n} at offset {offset} is byte-identical"
                );
                bases.push(offset);
                at += len;
                offset = header.last_offset() as u64 + 1;
                n += 1;
            }
            assert_eq!(at, bytes.len(), "a read returns whole batches only");
        }
        for r in &reported {
            assert!(
                r.last < end,
                "durable batch {} (offsets {}..={}) lost: log ends at {end}",
                r.n,
                r.first,
                r.last
            );
            assert_eq!(
                bases.get(r.n as usize),
                Some(&r.first),
                "reported batch {} sits where it was told",
                r.n
            );
        }
        log.close().await.expect("close");
        (n, end)
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        child(PathBuf::from(&args[at + 1]));
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo test -- --list` asks test binaries for their tests; this one is a main.
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = seed;
    let started = Instant::now();
    let mut durable_total = 0usize;
    for round in 0..ROUNDS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = Duration::from_millis(20 + rng % 200);
        let reported = run_child_and_kill(dir.path(), kill_after);
        durable_total += reported.len();
        let (batches, end) = verify(dir.path().to_path_buf(), reported.clone());
        println!(
            "crash round {round}: killed after {kill_after:?}, {} durable reported, log holds {batches} batches / {end} offsets",
            reported.len()
        );
    }
    assert!(durable_total > 0, "the children reported durable batches");
    println!(
        "crash harness (seed {seed}): {ROUNDS} rounds, {durable_total} durable batches checked in {:?}",
        started.elapsed()
    );
    println!("crash: {ROUNDS} passed, 0 failed");
}
