//! Micro-benchmarks of the partition log's append path (the mesh round trip is in
//! `engine/benches/mesh.rs`):
//! - `log_append/64KiB_written`: `storage::PartitionLog::append` of 64 KiB batches (1 KiB JSON
//!   records) on a real O_DIRECT log, pipelined, acknowledged at the written watermark (acks=1);
//!   the time of a sample includes waiting until its last batch is written.
//! - `log_append/64KiB_durable_each`: one batch at a time, each waited until durable (an
//!   fdatasync per batch: acks=all with no other producer to group-commit with).
//!
//! The log lives under `$WEIR_BENCH_DIR` (default: cargo's target tmp dir, which must be on a
//! real disk: O_DIRECT fails on tmpfs); old segments are deleted by retention as the bench runs,
//! and everything at the end. Each glommio executor runs on its own thread and receives
//! "run N iterations" commands from criterion's thread (`iter_custom`), so only the work is timed.
//! Needs `ulimit -l` ≥ a few MiB (glommio's registered buffers).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bench::payload::{PayloadPool, PayloadSpec};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::channel::mpsc as fmpsc;
use futures::StreamExt;
use kclient::batch::{BatchBuilder, Compression, ProducerFields};
use storage::{Clock, LogConfig, PartitionLog, Watermark};

/// A command to an executor: run this many iterations, send back the time they took.
type Command = (u64, mpsc::Sender<Duration>);

/// 64 KiB of 1 KiB JSON log records, uncompressed.
fn batch_64k() -> Bytes {
    let pool = PayloadPool::generate(&PayloadSpec::JsonLog, 1024, 42).expect("json payloads");
    let mut b = BatchBuilder::with_capacity(1_700_000_000_000, 64 << 10);
    for (i, v) in pool.values.iter().cycle().enumerate() {
        if b.size() + BatchBuilder::record_size(None, Some(v), &[]) > 64 << 10 {
            break;
        }
        b.append(1_700_000_000_000 + i as i64, None, Some(v), &[]);
    }
    Bytes::from(
        b.build(Compression::None, None, ProducerFields::NONE)
            .expect("batch"),
    )
}

fn bench_dir() -> PathBuf {
    let base = std::env::var_os("WEIR_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    base.join(format!("weir-io-bench-{}", std::process::id()))
}

/// How the log bench acknowledges.
#[derive(Clone, Copy)]
enum Ack {
    /// Pipelined, at most `LAG` batches ahead of the written watermark.
    Written,
    /// Each batch waited until durable.
    DurableEach,
}

const LAG: usize = 256; // 16 MiB of 64 KiB batches

/// Starts an executor owning a log in `dir`; returns its command channel.
fn log_executor(
    dir: PathBuf,
    ack: Ack,
) -> (
    fmpsc::UnboundedSender<Command>,
    glommio::ExecutorJoinHandle<()>,
) {
    let (tx, mut rx) = fmpsc::unbounded::<Command>();
    let handle = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("log-bench")
        .io_memory(2 << 20)
        .spawn(move || async move {
            let config = LogConfig {
                segment_bytes: 64 << 20,
                retention_bytes: Some(256 << 20),
                ..LogConfig::default()
            };
            let log = PartitionLog::open(&dir, config, Clock::System)
                .await
                .expect("opening the bench log");
            let batch = batch_64k();
            while let Some((iters, reply)) = rx.next().await {
                let start = Instant::now();
                let mut outstanding = std::collections::VecDeque::new();
                let mut last = 0;
                for i in 0..iters {
                    match ack {
                        Ack::Written => {
                            let info = log.append(batch.clone(), 0).expect("append");
                            last = info.last_offset;
                            outstanding.push_back(last);
                            if outstanding.len() > LAG {
                                let behind = outstanding.pop_front().unwrap_or(0);
                                log.wait(behind, Watermark::Written).await.expect("wait");
                            }
                        }
                        Ack::DurableEach => {
                            log.append_and_wait(batch.clone(), 0, Watermark::Durable)
                                .await
                                .expect("append durable");
                        }
                    }
                    if i % 1024 == 1023 {
                        log.apply_retention().expect("retention");
                    }
                }
                if matches!(ack, Ack::Written) && iters > 0 {
                    log.wait(last, Watermark::Written).await.expect("wait");
                }
                let elapsed = start.elapsed();
                log.apply_retention().expect("retention");
                let _ = reply.send(elapsed);
            }
            log.close().await.expect("closing the bench log");
        })
        .expect("log executor");
    (tx, handle)
}

fn run_on(tx: &fmpsc::UnboundedSender<Command>, iters: u64) -> Duration {
    let (reply, answer) = mpsc::channel();
    tx.unbounded_send((iters, reply)).expect("executor alive");
    answer.recv().expect("executor answered")
}

fn log_append(c: &mut Criterion) {
    let base = bench_dir();
    let mut group = c.benchmark_group("log_append");
    group.throughput(Throughput::Bytes(batch_64k().len() as u64));
    for (name, ack) in [
        ("64KiB_written", Ack::Written),
        ("64KiB_durable_each", Ack::DurableEach),
    ] {
        let (tx, handle) = log_executor(base.join(name), ack);
        group.bench_function(name, |b| b.iter_custom(|iters| run_on(&tx, iters)));
        drop(tx);
        handle.join().expect("log executor");
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&base);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = log_append
}
criterion_main!(benches);
