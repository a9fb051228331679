//! payload — the record values a benchmark sends: random bytes with a chosen compressibility
//! (OpenMessaging Benchmark's `randomBytesRatio`), a realistic JSON-log generator, or the contents
//! of a payload file.
//!
//! Owns generating a pool of values (cycled through by the producers) deterministically from a
//! seed, so two runs (or a run and its null-sink ceiling) send the same bytes. Must not do I/O
//! beyond reading the one payload file it is given, and must not know about batches or codecs.

use std::path::{Path, PathBuf};

use kclient::rng::XorShift;
use serde::{Deserialize, Serialize};

/// Bytes of distinct values in a pool. Producers cycle through the pool, so no value repeats
/// within this many bytes of consecutive records: no batch (Kafka's clients cap a request at
/// max.request.size, 1 MiB by default; the shipped plans' largest batch.size is 1 MiB) holds a
/// value twice, and no codec's window (zstd's spans a whole batch) finds repeats a real
/// workload would not have. The pool was 64 values: zstd then compressed 1 MiB batches of
/// JSON logs 65×. Cycling 16 MiB costs the generator a memory stream instead of an L2-resident
/// pool (docs/TUNING.md has the null-sink figures before and after).
pub const POOL_BYTES: usize = 16 << 20;
/// Fewest and most values in a pool (tiny records: a bounded number of allocations).
pub const POOL_VALUES_MIN: usize = 64;
pub const POOL_VALUES_MAX: usize = 1 << 16;

/// Values in a pool of `size`-byte values.
pub fn pool_values(size: usize) -> usize {
    (POOL_BYTES / size.max(1)).clamp(POOL_VALUES_MIN, POOL_VALUES_MAX)
}

/// Where record values come from.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PayloadSpec {
    /// `ratio` of each value is pseudo-random bytes, the rest zeros, interleaved every 64 bytes:
    /// 1.0 is incompressible, 0.0 all zeros (OMB's randomBytesRatio).
    Random { ratio: f64 },
    /// JSON log lines (timestamp, level, service, host, trace id, HTTP path, status, latency and
    /// a message of words), each exactly the record size when it is ≥ [`JSON_MIN_SIZE`] bytes;
    /// compresses like real application logs (lz4 ≈ 2–3x).
    #[default]
    JsonLog,
    /// Values read from a file: the whole file is one value (OMB's payloadFile). The record size
    /// is the file's size.
    File { path: PathBuf },
}

/// Smallest size at which a JSON log value is complete JSON (smaller values are its prefix).
pub const JSON_MIN_SIZE: usize = 320;

/// Errors of making a payload pool.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("payload file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("payload file {0} is empty")]
    EmptyFile(PathBuf),
    #[error("random payload ratio {0} is not between 0 and 1")]
    Ratio(f64),
    #[error("record size must be at least 1 byte")]
    Size,
}

/// A pool of record values.
#[derive(Debug, Clone, PartialEq)]
pub struct PayloadPool {
    pub values: Vec<Vec<u8>>,
}

impl PayloadPool {
    /// Generates [`pool_values`] values of `size` bytes (a file: its own size, one value).
    pub fn generate(
        spec: &PayloadSpec,
        size: usize,
        seed: u64,
    ) -> Result<PayloadPool, PayloadError> {
        let mut rng = XorShift::new(seed);
        let values = match spec {
            PayloadSpec::File { path } => vec![read_file(path)?],
            _ if size == 0 => return Err(PayloadError::Size),
            PayloadSpec::Random { ratio } => {
                if !(0.0..=1.0).contains(ratio) {
                    return Err(PayloadError::Ratio(*ratio));
                }
                (0..pool_values(size))
                    .map(|_| random_value(&mut rng, size, *ratio))
                    .collect()
            }
            PayloadSpec::JsonLog => (0..pool_values(size))
                .map(|_| json_log(&mut rng, size))
                .collect(),
        };
        Ok(PayloadPool { values })
    }

    /// Size of each value (all values of a pool have one size).
    pub fn value_size(&self) -> usize {
        self.values.first().map_or(0, Vec::len)
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, PayloadError> {
    let bytes = std::fs::read(path).map_err(|source| PayloadError::File {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(PayloadError::EmptyFile(path.to_path_buf()));
    }
    Ok(bytes)
}

fn random_value(rng: &mut XorShift, size: usize, ratio: f64) -> Vec<u8> {
    let random_per_64 = (ratio * 64.0).round() as usize;
    let mut v = vec![0u8; size];
    for chunk in v.chunks_mut(64) {
        let n = random_per_64.min(chunk.len());
        rng.fill(&mut chunk[..n]);
    }
    v
}

const LEVELS: [&str; 5] = ["INFO", "INFO", "INFO", "WARN", "ERROR"];
const SERVICES: [&str; 6] = [
    "checkout",
    "payments",
    "search",
    "auth",
    "inventory",
    "gateway",
];
const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/cart/items",
    "/api/v2/search",
    "/login",
    "/api/v1/stock",
    "/healthz",
];
const STATUSES: [u16; 6] = [200, 200, 200, 201, 404, 500];
const WORDS: [&str; 24] = [
    "request",
    "completed",
    "user",
    "session",
    "cache",
    "miss",
    "upstream",
    "timeout",
    "retry",
    "order",
    "created",
    "payment",
    "accepted",
    "token",
    "refreshed",
    "query",
    "returned",
    "rows",
    "connection",
    "pool",
    "exhausted",
    "slow",
    "handler",
    "finished",
];

/// One JSON log line of exactly `size` bytes (for sizes ≥ JSON_MIN_SIZE; below, its prefix).
fn json_log(rng: &mut XorShift, size: usize) -> Vec<u8> {
    let r = rng.next();
    let pick = |n: usize, shift: u32| ((r >> shift) as usize) % n;
    let micros = 1_700_000_000_000_000u64 + rng.next() % 100_000_000_000;
    let head = format!(
        "{{\"ts\":\"{secs}.{frac:06}\",\"level\":\"{level}\",\"service\":\"{service}\",\"host\":\"{service}-{host}\",\"trace_id\":\"{trace:016x}{span:016x}\",\"method\":\"{method}\",\"path\":\"{path}\",\"status\":{status},\"latency_ms\":{latency},\"user_id\":{user},\"msg\":\"",
        secs = micros / 1_000_000,
        frac = micros % 1_000_000,
        level = LEVELS[pick(LEVELS.len(), 0)],
        service = SERVICES[pick(SERVICES.len(), 8)],
        host = pick(32, 16),
        trace = rng.next(),
        span = rng.next(),
        method = if pick(4, 24) == 0 { "POST" } else { "GET" },
        path = PATHS[pick(PATHS.len(), 32)],
        status = STATUSES[pick(STATUSES.len(), 40)],
        latency = pick(2_000, 44),
        user = rng.next() % 1_000_000,
    );
    let tail = "\"}";
    let mut v = head.into_bytes();
    let body = size.saturating_sub(v.len() + tail.len());
    let mut msg = String::with_capacity(body + 16);
    while msg.len() < body {
        if !msg.is_empty() {
            msg.push(' ');
        }
        msg.push_str(WORDS[(rng.next() % WORDS.len() as u64) as usize]);
    }
    msg.truncate(body);
    v.extend_from_slice(msg.as_bytes());
    v.extend_from_slice(tail.as_bytes());
    v.truncate(size);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lz4_ratio(values: &[Vec<u8>]) -> f64 {
        let all: Vec<u8> = values.concat();
        let compressed = lz4_flex::block::compress(&all);
        all.len() as f64 / compressed.len() as f64
    }

    #[test]
    fn json_log_values_are_valid_json_of_the_exact_size() {
        let pool = PayloadPool::generate(&PayloadSpec::JsonLog, 1024, 7).unwrap();
        assert_eq!(pool.values.len(), POOL_BYTES / 1024);
        for v in &pool.values {
            assert_eq!(v.len(), 1024);
            let parsed: serde_json::Value = serde_json::from_slice(v).unwrap();
            assert!(parsed["msg"].as_str().unwrap().len() > 100);
        }
        let distinct: std::collections::HashSet<_> = pool.values.iter().collect();
        assert_eq!(distinct.len(), pool.values.len());
        let r = lz4_ratio(&pool.values);
        assert!((1.5..8.0).contains(&r), "lz4 ratio {r}");
    }

    /// What a codec does to batches of `batch_bytes` of consecutive pool values, cycled
    /// through as producers do, over four batches.
    fn batch_ratio(pool: &PayloadPool, codec: wire::codec::Codec, batch_bytes: usize) -> f64 {
        let per_batch = (batch_bytes / pool.value_size()).max(1);
        let mut cycle = pool.values.iter().cycle();
        let (mut raw, mut packed) = (0usize, 0usize);
        for _ in 0..4 {
            let data: Vec<u8> = cycle.by_ref().take(per_batch).flatten().copied().collect();
            raw += data.len();
            packed += wire::codec::compress(codec, None, &data).unwrap().len();
        }
        raw as f64 / packed as f64
    }

    /// The artefact this guards: with a pool of 64 values, zstd (whose window spans a whole
    /// batch) compressed 1 MiB batches of JSON logs 65× and half-random values 30×. Over large
    /// batches each codec must see what the payload's design says: ≈ 2× for half-random
    /// values, text-like ratios for JSON logs.
    #[test]
    fn large_batches_compress_as_the_payload_is_designed_to_not_by_repeats() {
        use wire::codec::Codec;
        let half =
            PayloadPool::generate(&PayloadSpec::Random { ratio: 0.5 }, 1024, 0x5eed).unwrap();
        let logs = PayloadPool::generate(&PayloadSpec::JsonLog, 1024, 0x5eed).unwrap();
        for batch in [1 << 20, 4 << 20] {
            for codec in [Codec::Zstd, Codec::Lz4] {
                let r = batch_ratio(&half, codec, batch);
                assert!(
                    (1.6..2.1).contains(&r),
                    "random:0.5, {codec:?}, {batch} B: {r}"
                );
            }
            let zstd = batch_ratio(&logs, Codec::Zstd, batch);
            assert!(
                (3.0..8.0).contains(&zstd),
                "json_log, zstd, {batch} B: {zstd}"
            );
            let lz4 = batch_ratio(&logs, Codec::Lz4, batch);
            assert!((2.0..4.0).contains(&lz4), "json_log, lz4, {batch} B: {lz4}");
        }
        // Distinct within any 16 MiB of consecutive records, tiny records included.
        assert_eq!(logs.values.len() * 1024, POOL_BYTES);
        assert_eq!(pool_values(10), POOL_VALUES_MAX);
        assert_eq!(pool_values(1 << 20), POOL_VALUES_MIN);
    }

    #[test]
    fn the_random_ratio_sets_compressibility() {
        let incompressible =
            PayloadPool::generate(&PayloadSpec::Random { ratio: 1.0 }, 1024, 1).unwrap();
        let half = PayloadPool::generate(&PayloadSpec::Random { ratio: 0.5 }, 1024, 1).unwrap();
        let r1 = lz4_ratio(&incompressible.values);
        let r2 = lz4_ratio(&half.values);
        assert!(r1 < 1.05, "random bytes compressed {r1}x");
        assert!((1.5..2.5).contains(&r2), "half-random compressed {r2}x");
        assert!(PayloadPool::generate(&PayloadSpec::Random { ratio: 1.5 }, 10, 1).is_err());
    }

    #[test]
    fn generation_is_deterministic_per_seed() {
        let a = PayloadPool::generate(&PayloadSpec::JsonLog, 500, 3).unwrap();
        let b = PayloadPool::generate(&PayloadSpec::JsonLog, 500, 3).unwrap();
        let c = PayloadPool::generate(&PayloadSpec::JsonLog, 500, 4).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_payload_file_is_one_value_and_a_missing_one_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.bin");
        std::fs::write(&path, b"hello payload").unwrap();
        let pool =
            PayloadPool::generate(&PayloadSpec::File { path: path.clone() }, 1024, 0).unwrap();
        assert_eq!(pool.values, vec![b"hello payload".to_vec()]);
        assert_eq!(pool.value_size(), 13);
        let missing = PayloadSpec::File {
            path: dir.path().join("nope"),
        };
        assert!(matches!(
            PayloadPool::generate(&missing, 1, 0),
            Err(PayloadError::File { .. })
        ));
    }
}
