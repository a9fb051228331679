//! Crash harness for compaction, with real processes (the pattern of `crash.rs`). A child
//! process appends keyed records (record `n` has key `k{n % KEYS}` and value `n`), reports each
//! one once it is durable, and compacts the log continuously in another task; the parent
//! `kill -9`s it at a random moment — often in the middle of a pass or a swap — reopens the log
//! and checks: it opens, every read returns whole valid batches with growing offsets, each
//! record's key matches its value, values grow with offsets, and for every reported record its
//! key's newest value is that record or a later one (nothing acknowledged is lost). Then it
//! starts the next child on the same log. Every third record is a compressed batch (each codec in
//! turn), so passes decompress, filter and re-compress while being killed; every batch read back
//! must decode with its codec and pass its CRC.
//!
//! Run by `cargo test` (harness = false: it is a `main`).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::run;
use storage::{Clock, LogConfig, PartitionLog, Watermark};
use wire::batch::{encode_batch, records_in, reseal, scan_batch, Record, Scanned, HEADER_LEN};
use wire::codec::{self, Codec};

const ROUNDS: usize = 16;
const KEYS: u64 = 40;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 10,
        preallocate: false,
        write_bytes_max: 16 << 10,
        tail_cache_bytes: 64 << 10,
        index_interval_bytes: 512,
        cleanup_delete: false,
        cleanup_compact: true,
        min_cleanable_dirty_ratio_ppm: 0,
        ..LogConfig::default()
    }
}

/// Record `n` as a batch; every third is compressed (the codecs in turn) and first holds a
/// record of an extra key `y{n % 5}` (skipped by the checks), so passes decompress, drop some
/// records of a batch, and re-compress the rest while being killed.
fn record(n: u64) -> Bytes {
    let record = Record {
        timestamp: 1_700_000_000_000,
        key: Some(format!("k{}", n % KEYS).into_bytes()),
        value: Some(format!("{n}-{}", "v".repeat((n % 50) as usize)).into_bytes()),
        headers: Vec::new(),
    };
    let codec = match n % 12 {
        0 => Codec::Gzip,
        3 => Codec::Snappy,
        6 => Codec::Lz4,
        9 => Codec::Zstd,
        _ => return Bytes::from(encode_batch(&[record])),
    };
    let extra = Record {
        key: Some(format!("y{}", n % 5).into_bytes()),
        value: Some(format!("y{n}").into_bytes()),
        ..record.clone()
    };
    let plain = encode_batch(&[extra, record]);
    let mut b = plain[..HEADER_LEN].to_vec();
    codec::compress_into(codec, None, &plain[HEADER_LEN..], &mut b).expect("compress");
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[21..23].copy_from_slice(&codec.id().to_be_bytes());
    reseal(&mut b);
    Bytes::from(b)
}

fn child(dir: PathBuf, first: u64) {
    run(move || async move {
        let log = PartitionLog::open(&dir, config(), Clock::System)
            .await
            .expect("child open");
        let cleaner = log.clone();
        glommio::spawn_local(async move {
            loop {
                cleaner.compact().await.expect("compaction");
                glommio::timer::sleep(Duration::from_millis(2)).await;
            }
        })
        .detach();
        let mut n = first;
        loop {
            log.append_and_wait(record(n), 0, Watermark::Durable)
                .await
                .expect("durable append");
            let mut out = std::io::stdout().lock();
            writeln!(out, "{n}").expect("report");
            out.flush().expect("flush report");
            n += 1;
        }
    });
}

fn run_child_and_kill(dir: &Path, first: u64, kill_after: Duration) -> Vec<u64> {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .arg("--child")
        .arg(dir)
        .arg(first.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .map(|l| l.parse::<u64>().expect("number"))
            .collect::<Vec<u64>>()
    });
    std::thread::sleep(kill_after);
    child.kill().expect("kill -9");
    child.wait().expect("reap child");
    reader.join().expect("reader thread")
}

/// What a kill left of a compaction in progress: `.cleaned` files, swap markers.
fn leftovers(dir: &Path) -> (usize, usize) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    (
        names.iter().filter(|n| n.ends_with(".cleaned")).count(),
        names.iter().filter(|n| n.ends_with(".swap")).count(),
    )
}

/// Reopens the log and checks it; returns (records left, segment files, the next n to write,
/// compressed batches read and batches a pass removed records from).
fn verify(dir: PathBuf, reported: Vec<u64>) -> (usize, usize, u64, (usize, usize)) {
    run(move || async move {
        let log = PartitionLog::open(&dir, config(), Clock::System)
            .await
            .expect("reopen after kill -9");
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset();
        let mut newest: HashMap<String, u64> = HashMap::new();
        let (mut last_n, mut last_offset, mut left) = (None::<u64>, None::<u64>, 0usize);
        let (mut compressed, mut partial) = (0usize, 0usize);
        while offset < end {
            let read = log.read(offset, 1 << 16).await.expect("read");
            assert!(!read.is_empty(), "a read at {offset} below the end {end}");
            let bytes = read.to_vec();
            let mut at = 0;
            for header in &read.batches {
                let len = header.total_len().expect("whole batch");
                let batch = &bytes[at..at + len];
                assert!(
                    matches!(scan_batch(batch, None), Scanned::Batch(..)),
                    "batch at {} has a valid CRC",
                    header.base_offset
                );
                let codec = Codec::from_id(header.compression()).expect("codec");
                compressed += usize::from(codec != Codec::None);
                partial += usize::from(header.records_count <= header.last_offset_delta);
                let plain =
                    codec::decompress(codec, &batch[HEADER_LEN..], 1 << 20).expect("decompress");
                for r in records_in(&plain, header.records_count).expect("records") {
                    if r.key.is_some_and(|k| k.starts_with(b"y")) {
                        continue;
                    }
                    let o = header.base_offset as u64 + r.offset_delta as u64;
                    let value = std::str::from_utf8(r.value.expect("a value")).expect("utf-8");
                    let n: u64 = value.split('-').next().unwrap().parse().expect("n");
                    let key = std::str::from_utf8(r.key.expect("a key")).expect("utf-8");
                    assert_eq!(key, format!("k{}", n % KEYS), "key of record {n}");
                    assert!(last_offset.is_none_or(|l| o > l), "offsets grow");
                    assert!(last_n.is_none_or(|l| n > l), "values grow with offsets");
                    (last_offset, last_n) = (Some(o), Some(n));
                    newest.insert(key.to_string(), n);
                    left += 1;
                }
                at += len;
                offset = header.last_offset() as u64 + 1;
            }
        }
        for n in &reported {
            let key = format!("k{}", n % KEYS);
            assert!(
                newest.get(&key).is_some_and(|&m| m >= *n),
                "acknowledged record {n} lost: newest of {key} is {:?}",
                newest.get(&key)
            );
        }
        let files = std::fs::read_dir(&dir)
            .expect("list")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
            })
            .count();
        log.close().await.expect("close");
        (
            left,
            files,
            last_n.map_or(0, |n| n + 1),
            (compressed, partial),
        )
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let first = args[at + 2].parse().expect("first n");
        child(PathBuf::from(&args[at + 1]), first);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = seed;
    let started = Instant::now();
    let (mut next, mut acknowledged, mut interrupted) = (0u64, 0usize, 0usize);
    let (mut compressed_seen, mut partial_seen) = (0usize, 0usize);
    for round in 0..ROUNDS {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let kill_after = Duration::from_millis(50 + rng % 250);
        let reported = run_child_and_kill(dir.path(), next, kill_after);
        acknowledged += reported.len();
        let (cleaned, swaps) = leftovers(dir.path());
        interrupted += usize::from(cleaned > 0 || swaps > 0);
        let (left, files, n, (compressed, partial)) = verify(dir.path().to_path_buf(), reported);
        compressed_seen += compressed;
        partial_seen += partial;
        assert_eq!(
            leftovers(dir.path()),
            (0, 0),
            "recovery removes every leftover"
        );
        next = n.max(next);
        println!(
            "compaction crash round {round}: killed after {kill_after:?}, {next} records written, {left} left, {files} segment files ({compressed} compressed batches, {partial} rebuilt), left {cleaned} .cleaned / {swaps} .swap files"
        );
    }
    assert!(acknowledged > 0, "the children acknowledged records");
    assert!(
        partial_seen > 0,
        "passes rebuilt batches keeping some of their records"
    );
    assert!(
        compressed_seen > 0,
        "compressed batches were written and read back"
    );
    println!(
        "compaction crash harness (seed {seed}): {ROUNDS} rounds ({interrupted} killed inside a pass), {acknowledged} acknowledged records checked in {:?}",
        started.elapsed()
    );
}
