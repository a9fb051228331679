//! Helpers shared by the storage crate's integration tests: an executor and batch factories.
#![allow(dead_code)]

use std::future::Future;

use bytes::Bytes;
use storage::{LogConfig, PartitionLog, Watermark};
use wire::batch::{encode_batch, Record};

/// Runs `fut` on a fresh glommio executor with a small io memory (the default memlock limit is
/// 8 MiB), returning its output.
pub fn run<T: Send + 'static, F: Future<Output = T> + 'static>(
    make: impl FnOnce() -> F + Send + 'static,
) -> T {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(make)
        .expect("spawn executor")
        .join()
        .expect("executor panicked")
}

/// Runs `test` on an executor with a fresh temporary directory, removed afterwards.
pub fn in_temp_dir<F: Future<Output = ()> + 'static>(
    test: impl FnOnce(std::path::PathBuf) -> F + Send + 'static,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    run(move || test(path));
}

/// A batch of `count` records whose values encode `tag` and the record index.
pub fn batch(tag: u64, count: usize, value_len: usize, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            timestamp: timestamp + i as i64,
            key: Some(format!("key-{tag}-{i}").into_bytes()),
            value: Some(value_bytes(tag, i, value_len)),
            headers: vec![("tag".into(), Some(tag.to_be_bytes().to_vec()))],
        })
        .collect();
    Bytes::from(encode_batch(&records))
}

pub fn value_bytes(tag: u64, i: usize, len: usize) -> Vec<u8> {
    let mut seed = tag.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64);
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// The batch as the log stores it: base offset and leader epoch stamped.
pub fn stamped(batch: &[u8], base_offset: u64, leader_epoch: i32) -> Vec<u8> {
    let mut out = batch.to_vec();
    wire::batch::stamp(&mut out, base_offset, leader_epoch);
    out
}

/// Segments of 1 MiB, so preallocation stays small.
pub fn mib_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        ..LogConfig::default()
    }
}

pub fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 << 10,
        index_interval_bytes: 1024,
        tail_cache_bytes: 0,
        write_bytes_max: 16 << 10,
        ..mib_config()
    }
}

/// Whether the log's durable watermark reaches `offset` within `limit` (polled every 5 ms).
pub async fn durable_within(log: &PartitionLog, offset: u64, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if log.durable_offset() >= offset {
            return true;
        }
        glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
    }
    false
}

/// Small segments without preallocation; compact only, every pass due (the compaction and
/// failpoint tests).
pub fn compact_config() -> LogConfig {
    LogConfig {
        segment_bytes: 4 << 10,
        preallocate: false,
        index_interval_bytes: 512,
        tail_cache_bytes: 64 << 10,
        write_bytes_max: 16 << 10,
        cleanup_delete: false,
        cleanup_compact: true,
        min_cleanable_dirty_ratio_ppm: 0,
        ..LogConfig::default()
    }
}

/// Appends about `mib` MiB (batches of 2 × 30 KB records) and waits until written.
pub async fn fill(log: &PartitionLog, tag: u64, mib: usize) -> u64 {
    let mut last = 0;
    for i in 0..(mib * (1 << 20) / 60_000) as u64 {
        last = log
            .append(batch(tag * 10_000 + i, 2, 30_000, 0), 0)
            .unwrap()
            .last_offset;
    }
    log.wait(last, Watermark::Written).await.unwrap();
    last
}
