//! log_bench — the partition-log benchmark: append and cold-read bandwidth of
//! [`storage::PartitionLog`] measured beside the raw O_DIRECT bandwidth of the same disk, in the
//! same run, on one glommio executor.
//!
//! What one run does, in order, all under `<dir>/weir-bench-log-<pid>/`:
//! 1. Opens and closes a throwaway log, so glommio's per-device IOPOLL probe sees a non-empty file
//!    (an empty first file makes it enable the poll ring, and later reads fail with EOPNOTSUPP).
//! 2. Raw DMA sequential write: `bytes` in 1 MiB aligned writes, 8 in flight (fio's iodepth=8),
//!    then one fdatasync. Then raw DMA sequential read of that file, 1 MiB reads, 8 in flight.
//! 3. For each batch size (16 KiB, 64 KiB, 1 MiB of 1 KiB records with pseudo-random values):
//!    appends to a fresh log (a) with no fsync per batch, a bounded backlog (waits `Written` on the
//!    batch [`LogBenchConfig::written_lag_bytes`] behind) and a final wait `Durable`; (b) one
//!    producer waiting `Durable` after every batch (fdatasync per batch); (c) many producers each
//!    waiting `Durable` after every batch (group commit). Then the log of (a) is closed, reopened
//!    (tail cache empty) and read from offset 0 to the end with 1 MiB reads.
//! 4. Deletes everything it wrote.
//!
//! Owns the measurement and its report (table and serde JSON). Must not parse argv or touch the
//! environment (the CLI does), must not change the engine's behaviour or reach into its internals
//! (only the public `PartitionLog` API), and must leave no data files behind, even on error.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use glommio::io::OpenOptions;
use hardware::iotune::measure;
use serde::{Deserialize, Serialize};
use storage::{Clock, LogConfig, LogError, PartitionLog, Watermark};
use wire::batch::{encode_batch, Record, HEADER_LEN};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("partition log: {0}")]
    Log(#[from] LogError),
    #[error("glommio executor: {0}")]
    Executor(String),
    #[error("benchmark check failed: {0}")]
    Check(String),
    #[error("bad benchmark configuration: {0}")]
    Config(String),
}

impl BenchError {
    fn io(op: &'static str, path: &Path, source: impl Into<std::io::Error>) -> Self {
        BenchError::Io {
            op,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }
}

pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// What to measure and how hard.
#[derive(Debug, Clone, PartialEq)]
pub struct LogBenchConfig {
    /// Directory on the disk under test; the run works in a subdirectory it creates and removes.
    pub dir: PathBuf,
    /// Bytes written by each raw loop and by each no-fsync append run (the fsync runs stop at
    /// `bytes` or `case_seconds`, whichever comes first).
    pub bytes: u64,
    /// Target size of one record batch; each batch holds as many records as fit.
    pub batch_sizes: Vec<usize>,
    /// Value bytes of one record.
    pub record_value_bytes: usize,
    /// Size of one raw DMA write or read.
    pub raw_block_bytes: usize,
    /// Raw DMA operations in flight.
    pub raw_depth: usize,
    /// No-fsync appends: how far appends may run ahead of the written watermark.
    pub written_lag_bytes: u64,
    /// Producers of the group-commit run.
    pub producers: usize,
    /// Time cap of each fsync-per-batch and group-commit run.
    pub case_seconds: f64,
    /// `max_bytes` of each cold read.
    pub read_max_bytes: usize,
    /// Memory registered with io_uring by the executor (the memlock limit is small).
    pub io_memory: usize,
    /// The log under test; the defaults unless someone is tuning (1 GiB preallocated segments,
    /// default tail cache and write size).
    pub log: LogConfig,
}

impl LogBenchConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogBenchConfig {
            dir: dir.into(),
            bytes: 1 << 30,
            batch_sizes: vec![16 * KIB, 64 * KIB, MIB],
            record_value_bytes: KIB,
            raw_block_bytes: MIB,
            raw_depth: 8,
            written_lag_bytes: 64 << 20,
            producers: 32,
            case_seconds: 20.0,
            read_max_bytes: MIB,
            io_memory: MIB,
            log: LogConfig::default(),
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(BenchError::Config(what.to_string()));
        if self.raw_block_bytes == 0 || !self.raw_block_bytes.is_multiple_of(4096) {
            return bad("raw block size must be a positive multiple of 4096");
        }
        if self.bytes < self.raw_block_bytes as u64 {
            return bad("bytes must be at least one raw block");
        }
        if self.raw_depth == 0 || self.producers == 0 {
            return bad("raw depth and producers must be positive");
        }
        let max = self.log.max_message_bytes;
        if self.batch_sizes.is_empty() || self.batch_sizes.iter().any(|&b| b > max) {
            return bad("batch sizes must be given and at most max.message.bytes");
        }
        if self.case_seconds.is_nan() || self.case_seconds <= 0.0 {
            return bad("case seconds must be positive");
        }
        Ok(())
    }
}

/// Bytes moved in some time, and how busy the executor thread was meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    pub bytes: u64,
    pub seconds: f64,
    /// Decimal megabytes (10^6 bytes) per second, as fio reports.
    pub mb_per_s: f64,
    /// CPU time of the executor thread (which runs the producers, the log and its flusher).
    pub cpu_seconds: f64,
}

impl Throughput {
    fn new(bytes: u64, elapsed: Elapsed) -> Self {
        let seconds = elapsed.wall.as_secs_f64().max(1e-9);
        Throughput {
            bytes,
            seconds,
            mb_per_s: bytes as f64 / seconds / 1e6,
            cpu_seconds: elapsed.cpu.as_secs_f64(),
        }
    }

    /// Share of the wall time the executor thread spent on a CPU.
    pub fn cpu_busy(&self) -> f64 {
        self.cpu_seconds / self.seconds
    }
}

/// Wall and thread CPU time since a start.
#[derive(Debug, Clone, Copy)]
struct Elapsed {
    wall: Duration,
    cpu: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: thread_cpu_time(),
        }
    }

    fn wall(&self) -> Duration {
        self.wall.elapsed()
    }

    fn elapsed(&self) -> Elapsed {
        Elapsed {
            wall: self.wall.elapsed(),
            cpu: thread_cpu_time().saturating_sub(self.cpu),
        }
    }
}

/// CPU time consumed by the calling thread (zero if the clock is unavailable).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The raw DMA loops: the ceiling the log is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawFigures {
    pub block_bytes: usize,
    pub depth: usize,
    /// Includes the final fdatasync.
    pub write: Throughput,
    pub read: Throughput,
}

/// How an append run waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppendMode {
    /// Appends run ahead of the written watermark up to a bound; one wait `Durable` at the end.
    NoFsync,
    /// One producer: append, wait `Durable`, next batch.
    FsyncPerBatch,
    /// Many producers, each: append, wait `Durable`, next batch.
    GroupCommit,
}

impl AppendMode {
    pub fn label(self) -> &'static str {
        match self {
            AppendMode::NoFsync => "no fsync",
            AppendMode::FsyncPerBatch => "fdatasync/batch",
            AppendMode::GroupCommit => "group commit",
        }
    }
}

/// One append run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppendRow {
    pub batch_target_bytes: usize,
    /// Actual encoded size of one batch.
    pub batch_bytes: usize,
    pub records_per_batch: usize,
    pub mode: AppendMode,
    pub producers: usize,
    pub batches: u64,
    pub throughput: Throughput,
    pub ratio_to_raw_write: f64,
    /// The run stopped at the time cap before `bytes`.
    pub time_capped: bool,
}

/// One cold sequential read of a whole log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadRow {
    pub batch_target_bytes: usize,
    pub batch_bytes: usize,
    pub read_max_bytes: usize,
    /// `PartitionLog::read` calls made.
    pub reads: u64,
    /// Time of the clean reopen before reading (not part of the throughput).
    pub reopen_seconds: f64,
    pub throughput: Throughput,
    pub ratio_to_raw_read: f64,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBenchReport {
    pub dir: PathBuf,
    pub bytes: u64,
    pub record_value_bytes: usize,
    pub written_lag_bytes: u64,
    pub case_seconds: f64,
    /// `write_bytes_max` and `preallocate` of the log under test.
    pub write_bytes_max: usize,
    pub preallocate: bool,
    pub segment_bytes: u64,
    pub raw: RawFigures,
    pub appends: Vec<AppendRow>,
    pub cold_reads: Vec<ReadRow>,
}

impl LogBenchReport {
    /// A fixed-width table for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let mb = |b: u64| b as f64 / 1e6;
        let _ = writeln!(
            out,
            "raw O_DIRECT, {} KiB blocks, {} in flight, {:.0} MB: write {:.0} MB/s (incl. fdatasync, cpu {:.0}%), read {:.0} MB/s (cpu {:.0}%)",
            self.raw.block_bytes / KIB,
            self.raw.depth,
            mb(self.raw.write.bytes),
            self.raw.write.mb_per_s,
            self.raw.write.cpu_busy() * 100.0,
            self.raw.read.mb_per_s,
            self.raw.read.cpu_busy() * 100.0,
        );
        let _ = writeln!(
            out,
            "\n{:<8} {:>8} {:>7} {:<20} {:>9} {:>9} {:>8} {:>5} {:>7}",
            "batch", "actual", "records", "mode", "MB", "MB/s", "vs raw", "cpu%", "note"
        );
        for row in &self.appends {
            let mode = match row.mode {
                AppendMode::GroupCommit => format!("{} x{}", row.mode.label(), row.producers),
                other => other.label().to_string(),
            };
            let _ = writeln!(
                out,
                "{:<8} {:>8} {:>7} {:<20} {:>9.1} {:>9.1} {:>8.3} {:>5.0} {:>7}",
                size_label(row.batch_target_bytes),
                row.batch_bytes,
                row.records_per_batch,
                mode,
                mb(row.throughput.bytes),
                row.throughput.mb_per_s,
                row.ratio_to_raw_write,
                row.throughput.cpu_busy() * 100.0,
                if row.time_capped { "capped" } else { "" },
            );
        }
        let _ = writeln!(
            out,
            "\n{:<8} {:>8} {:<20} {:>9} {:>9} {:>8} {:>5} {:>9}",
            "batch", "reads", "cold read", "MB", "MB/s", "vs raw", "cpu%", "reopen s"
        );
        for row in &self.cold_reads {
            let _ = writeln!(
                out,
                "{:<8} {:>8} {:<20} {:>9.1} {:>9.1} {:>8.3} {:>5.0} {:>9.3}",
                size_label(row.batch_target_bytes),
                row.reads,
                format!("max_bytes {}", size_label(row.read_max_bytes)),
                mb(row.throughput.bytes),
                row.throughput.mb_per_s,
                row.ratio_to_raw_read,
                row.throughput.cpu_busy() * 100.0,
                row.reopen_seconds,
            );
        }
        out
    }
}

fn size_label(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} B")
    }
}

/// Runs the whole benchmark on a fresh glommio executor (its own thread) and returns the figures.
/// Every file it created is removed before it returns, whether it succeeded or not.
pub fn run(config: LogBenchConfig) -> Result<LogBenchReport> {
    config.check()?;
    let io_memory = config.io_memory;
    let work = config
        .dir
        .join(format!("weir-bench-log-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| BenchError::io("creating", &work, e))?;
    let inner = work.clone();
    let outcome = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(io_memory)
        .name("weir-bench-log")
        .spawn(move || async move { run_on_executor(config, inner).await })
        .map_err(|e| BenchError::Executor(e.to_string()))
        .and_then(|handle| {
            handle
                .join()
                .map_err(|e| BenchError::Executor(e.to_string()))
        })
        .and_then(|r| r);
    let removed = std::fs::remove_dir_all(&work).map_err(|e| BenchError::io("removing", &work, e));
    let report = outcome?;
    removed?;
    Ok(report)
}

async fn run_on_executor(config: LogBenchConfig, work: PathBuf) -> Result<LogBenchReport> {
    // (1) glommio's IOPOLL probe: let PartitionLog::open make the first DMA file on this device.
    let probe_dir = work.join("probe");
    let probe = PartitionLog::open(&probe_dir, small_config(), Clock::System).await?;
    probe.close().await?;
    remove_dir(&probe_dir)?;

    // (2) Raw DMA loops.
    let raw_path = work.join("raw.dat");
    let raw_write = raw_dma_write(&raw_path, &config).await?;
    let raw_read = raw_dma_read(&raw_path, &config).await?;
    std::fs::remove_file(&raw_path).map_err(|e| BenchError::io("removing", &raw_path, e))?;
    let raw = RawFigures {
        block_bytes: config.raw_block_bytes,
        depth: config.raw_depth,
        write: raw_write,
        read: raw_read,
    };

    // (3) The log, per batch size.
    let mut appends = Vec::new();
    let mut cold_reads = Vec::new();
    for &target in &config.batch_sizes {
        let pool = BatchPool::new(target, config.record_value_bytes, config.bytes);
        let dir = work.join(format!("log-{target}"));

        let (row, log) = append_no_fsync(&dir, &pool, &config).await?;
        let appended = row.throughput.bytes;
        appends.push(finish_row(row, &raw));
        log.close().await?;
        let read = cold_read(&dir, &pool, &config, appended).await?;
        cold_reads.push(ReadRow {
            ratio_to_raw_read: read.throughput.mb_per_s / raw.read.mb_per_s,
            ..read
        });
        remove_dir(&dir)?;

        for (mode, producers) in [
            (AppendMode::FsyncPerBatch, 1),
            (AppendMode::GroupCommit, config.producers),
        ] {
            let log = PartitionLog::open(&dir, config.log.clone(), Clock::System).await?;
            let row = append_durable(&log, &pool, &config, mode, producers).await?;
            log.close().await?;
            remove_dir(&dir)?;
            appends.push(finish_row(row, &raw));
        }
    }
    Ok(LogBenchReport {
        dir: config.dir.clone(),
        bytes: config.bytes,
        record_value_bytes: config.record_value_bytes,
        written_lag_bytes: config.written_lag_bytes,
        case_seconds: config.case_seconds,
        write_bytes_max: config.log.write_bytes_max,
        preallocate: config.log.preallocate,
        segment_bytes: config.log.segment_bytes,
        raw,
        appends,
        cold_reads,
    })
}

fn finish_row(row: AppendRow, raw: &RawFigures) -> AppendRow {
    AppendRow {
        ratio_to_raw_write: row.throughput.mb_per_s / raw.write.mb_per_s,
        ..row
    }
}

fn remove_dir(dir: &Path) -> Result<()> {
    std::fs::remove_dir_all(dir).map_err(|e| BenchError::io("removing", dir, e))
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: MIB as u64,
        preallocate: false,
        ..LogConfig::default()
    }
}

/// A deterministic xorshift stream, so values are incompressible and runs repeatable.
struct XorShift(u64);

impl XorShift {
    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes()[..chunk.len()]);
        }
    }
}

/// Pre-encoded batches of one size, reused round-robin (the log keeps `Bytes`, never copies them
/// until its DMA write).
struct BatchPool {
    target: usize,
    batches: Vec<Bytes>,
    batch_bytes: usize,
    records_per_batch: usize,
}

/// Distinct batches kept per size; the run cycles through them.
const POOL_BYTES: u64 = 64 << 20;

impl BatchPool {
    fn new(target: usize, value_bytes: usize, total: u64) -> Self {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ target as u64);
        let record = |rng: &mut XorShift, timestamp: i64| {
            let mut value = vec![0u8; value_bytes];
            rng.fill(&mut value);
            Record {
                timestamp,
                key: None,
                value: Some(value),
                headers: Vec::new(),
            }
        };
        let one = encode_batch(&[record(&mut rng, 0)]).len() - HEADER_LEN;
        let now = Clock::System.now_ms();
        let make = |rng: &mut XorShift, n: usize| {
            let records: Vec<Record> = (0..n).map(|i| record(rng, now + i as i64)).collect();
            Bytes::from(encode_batch(&records))
        };
        // Varint deltas grow with the record index, so shrink the estimate until the batch fits.
        let mut records_per_batch = (target.saturating_sub(HEADER_LEN) / one).max(1);
        let mut first = make(&mut rng, records_per_batch);
        while first.len() > target && records_per_batch > 1 {
            records_per_batch -= 1;
            first = make(&mut rng, records_per_batch);
        }
        let count = (POOL_BYTES.min(total) / target as u64).max(1);
        let mut batches = vec![first];
        for _ in 1..count {
            batches.push(make(&mut rng, records_per_batch));
        }
        let batch_bytes = batches.first().map_or(0, |b| b.len());
        BatchPool {
            target,
            batches,
            batch_bytes,
            records_per_batch,
        }
    }

    fn get(&self, i: u64) -> Bytes {
        self.batches[(i % self.batches.len() as u64) as usize].clone()
    }

    /// Whole batches in `bytes`.
    fn count_for(&self, bytes: u64) -> u64 {
        (bytes / self.batch_bytes as u64).max(1)
    }

    fn row(&self, mode: AppendMode, producers: usize, batches: u64, elapsed: Elapsed) -> AppendRow {
        AppendRow {
            batch_target_bytes: self.target,
            batch_bytes: self.batch_bytes,
            records_per_batch: self.records_per_batch,
            mode,
            producers,
            batches,
            throughput: Throughput::new(batches * self.batch_bytes as u64, elapsed),
            ratio_to_raw_write: 0.0,
            time_capped: false,
        }
    }
}

/// A hardware-crate error in the bench's terms.
fn from_hw(e: hardware::HwError) -> BenchError {
    match e {
        hardware::HwError::Io {
            action,
            path,
            source,
        } => BenchError::io(action, &path, source),
        hardware::HwError::Invalid(message) => BenchError::Check(message),
    }
}

/// The raw O_DIRECT write: `hardware`'s loop (the one `weir hw iotune` measures with), timed
/// here with the executor's CPU time.
async fn raw_dma_write(path: &Path, config: &LogBenchConfig) -> Result<Throughput> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .dma_open(path)
        .await
        .map_err(|e| BenchError::io("creating", path, e))?;
    let buffers = measure::random_buffers(&file, config.raw_block_bytes, config.raw_depth);
    let start = Stopwatch::start();
    let bytes = measure::write_blocks(&file, path, buffers, config.bytes)
        .await
        .map_err(from_hw)?;
    let elapsed = start.elapsed();
    file.close()
        .await
        .map_err(|e| BenchError::io("closing", path, e))?;
    Ok(Throughput::new(bytes, elapsed))
}

/// The raw O_DIRECT read, `hardware`'s loop as for the write.
async fn raw_dma_read(path: &Path, config: &LogBenchConfig) -> Result<Throughput> {
    let file = OpenOptions::new()
        .read(true)
        .dma_open(path)
        .await
        .map_err(|e| BenchError::io("opening", path, e))?;
    let start = Stopwatch::start();
    let bytes = measure::read_blocks(
        &file,
        path,
        config.bytes,
        config.raw_block_bytes,
        config.raw_depth,
    )
    .await
    .map_err(from_hw)?;
    let elapsed = start.elapsed();
    file.close()
        .await
        .map_err(|e| BenchError::io("closing", path, e))?;
    Ok(Throughput::new(bytes, elapsed))
}

/// Appends `bytes` as fast as the log takes them, keeping at most `written_lag_bytes` ahead of the
/// written watermark, then waits until all of it is durable. Returns the open log.
async fn append_no_fsync(
    dir: &Path,
    pool: &BatchPool,
    config: &LogBenchConfig,
) -> Result<(AppendRow, PartitionLog)> {
    let log = PartitionLog::open(dir, config.log.clone(), Clock::System).await?;
    let batches = pool.count_for(config.bytes);
    let lag = (config.written_lag_bytes / pool.batch_bytes as u64).max(1);
    let mut outstanding = std::collections::VecDeque::new();
    let start = Stopwatch::start();
    let mut last = 0;
    for i in 0..batches {
        let info = log.append(pool.get(i), 0)?;
        last = info.last_offset;
        outstanding.push_back(info.last_offset);
        if outstanding.len() as u64 > lag {
            if let Some(behind) = outstanding.pop_front() {
                log.wait(behind, Watermark::Written).await?;
            }
        }
    }
    log.wait(last, Watermark::Durable).await?;
    let elapsed = start.elapsed();
    Ok((pool.row(AppendMode::NoFsync, 1, batches, elapsed), log))
}

/// `producers` tasks each append one batch and wait until it is durable, until `bytes` are
/// appended or the time cap passes.
async fn append_durable(
    log: &PartitionLog,
    pool: &BatchPool,
    config: &LogBenchConfig,
    mode: AppendMode,
    producers: usize,
) -> Result<AppendRow> {
    let limit = pool.count_for(config.bytes);
    let cap = Duration::from_secs_f64(config.case_seconds);
    let next = Cell::new(0u64);
    let done = Cell::new(0u64);
    let capped = Cell::new(false);
    let start = Stopwatch::start();
    let (next, done, capped) = (&next, &done, &capped);
    let producer = move || async move {
        loop {
            let i = next.get();
            if i >= limit {
                return Ok::<(), BenchError>(());
            }
            if start.wall() >= cap {
                capped.set(true);
                return Ok(());
            }
            next.set(i + 1);
            log.append_and_wait(pool.get(i), 0, Watermark::Durable)
                .await?;
            done.set(done.get() + 1);
        }
    };
    for outcome in futures::future::join_all((0..producers).map(|_| producer())).await {
        outcome?;
    }
    let elapsed = start.elapsed();
    let mut row = pool.row(mode, producers, done.get(), elapsed);
    row.time_capped = capped.get();
    Ok(row)
}

/// Reopens the closed log in `dir` (tail cache empty) and reads it from offset 0 to the end.
async fn cold_read(
    dir: &Path,
    pool: &BatchPool,
    config: &LogBenchConfig,
    expected_bytes: u64,
) -> Result<ReadRow> {
    let reopen = Instant::now();
    let log = PartitionLog::open(dir, config.log.clone(), Clock::System).await?;
    let reopen_seconds = reopen.elapsed().as_secs_f64();
    let end = log.log_end_offset();
    let start = Stopwatch::start();
    let mut offset = log.log_start_offset();
    let mut total = 0u64;
    let mut reads = 0u64;
    while offset < end {
        let read = log.read(offset, config.read_max_bytes).await?;
        reads += 1;
        total += read.len() as u64;
        offset = read
            .next_offset()
            .ok_or_else(|| BenchError::Check(format!("empty read at offset {offset} < {end}")))?;
    }
    let elapsed = start.elapsed();
    log.close().await?;
    if total != expected_bytes {
        return Err(BenchError::Check(format!(
            "cold read returned {total} bytes, {expected_bytes} were appended"
        )));
    }
    Ok(ReadRow {
        batch_target_bytes: pool.target,
        batch_bytes: pool.batch_bytes,
        read_max_bytes: config.read_max_bytes,
        reads,
        reopen_seconds,
        throughput: Throughput::new(total, elapsed),
        ratio_to_raw_read: 0.0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_fit_their_target_and_hold_1_kib_records() {
        for target in [16 * KIB, 64 * KIB, MIB] {
            let pool = BatchPool::new(target, KIB, 4 * MIB as u64);
            assert!(pool.batch_bytes <= target, "{target}: {}", pool.batch_bytes);
            assert!(
                pool.batch_bytes > target * 9 / 10,
                "{target}: {}",
                pool.batch_bytes
            );
            assert!(pool.batches.iter().all(|b| b.len() == pool.batch_bytes));
            let spans = wire::batch::validate_record_set(
                &pool.get(0),
                LogConfig::default().max_message_bytes,
            )
            .unwrap();
            assert_eq!(
                spans[0].header.records_count as usize,
                pool.records_per_batch
            );
        }
    }

    #[test]
    fn values_do_not_repeat_between_batches() {
        let pool = BatchPool::new(16 * KIB, KIB, MIB as u64);
        assert_ne!(pool.get(0)[HEADER_LEN..], pool.get(1)[HEADER_LEN..]);
    }

    #[test]
    fn a_bad_configuration_is_refused() {
        let mut config = LogBenchConfig::new("/nonexistent");
        config.raw_block_bytes = 1000;
        assert!(matches!(run(config), Err(BenchError::Config(_))));
    }
}
