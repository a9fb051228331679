//! The measurements of `weir hw iotune`, each on one O_DIRECT file through glommio's io_uring
//! (the same path the broker's segments take): sequential write and read bandwidth, 4 KiB random
//! reads and writes at a queue depth, fdatasync latency after appends.
//!
//! Public so that `weir bench log`'s raw O_DIRECT reference loops (bench/src/log_bench.rs) can
//! be these same loops.
//!
//! Owns: the I/O loops and their timing. Must not: pick the parameters (mod.rs) or touch any
//! file but the one it is given.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::io::{DmaBuffer, DmaFile, OpenOptions};

use super::properties::{Bandwidth, Latency, RandomFigures};
use crate::HwError;

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl Fn(glommio::GlommioError<()>) -> HwError + 'a {
    move |e| HwError::io(action, path, std::io::Error::other(e.to_string()))
}

/// A small xorshift generator: random offsets without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Opens an existing file for O_DIRECT reads and writes.
pub async fn open(path: &Path) -> Result<DmaFile, HwError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .dma_open(path)
        .await
        .map_err(io_err("opening", path))
}

/// `depth` DMA buffers of `block_bytes` filled with pseudo-random bytes (incompressible, for
/// devices that compress).
pub fn random_buffers(file: &DmaFile, block_bytes: usize, depth: usize) -> Vec<Rc<DmaBuffer>> {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    (0..depth)
        .map(|_| {
            let mut buffer = file.alloc_dma_buffer(block_bytes);
            for chunk in buffer.as_bytes_mut().chunks_mut(8) {
                let n = chunk.len();
                chunk.copy_from_slice(&rng.next().to_le_bytes()[..n]);
            }
            Rc::new(buffer)
        })
        .collect()
}

/// The raw sequential write: the first `bytes` of `file` in runs of the buffers' size, one
/// buffer per write in flight, then fdatasync. Returns the bytes written (whole blocks). No
/// timing: callers start their clock after `random_buffers` and stop it on return.
pub async fn write_blocks(
    file: &DmaFile,
    path: &Path,
    buffers: Vec<Rc<DmaBuffer>>,
    bytes: u64,
) -> Result<u64, HwError> {
    let Some(block_bytes) = buffers.first().map(|b| b.len()) else {
        return Err(HwError::Invalid("no buffers to write".into()));
    };
    let blocks = bytes / block_bytes as u64;
    let next = Cell::new(0u64);
    let workers = buffers.into_iter().map(|buffer| {
        let next = &next;
        async move {
            loop {
                let index = next.get();
                if index >= blocks {
                    return Ok::<(), HwError>(());
                }
                next.set(index + 1);
                let written = file
                    .write_rc_at(buffer.clone(), index * block_bytes as u64)
                    .await
                    .map_err(io_err("writing", path))?;
                if written != block_bytes {
                    return Err(HwError::Invalid(format!(
                        "short write to {}: {written} of {block_bytes}",
                        path.display()
                    )));
                }
            }
        }
    });
    for outcome in futures::future::join_all(workers).await {
        outcome?;
    }
    file.fdatasync().await.map_err(io_err("syncing", path))?;
    Ok(blocks * block_bytes as u64)
}

/// The raw sequential read: the first `bytes` of `file` in `block_bytes` runs, `depth` in
/// flight. Returns the bytes read; fewer than asked is an error. No timing.
pub async fn read_blocks(
    file: &DmaFile,
    path: &Path,
    bytes: u64,
    block_bytes: usize,
    depth: usize,
) -> Result<u64, HwError> {
    let blocks = bytes / block_bytes as u64;
    let next = Cell::new(0u64);
    let workers = (0..depth).map(|_| {
        let next = &next;
        async move {
            let mut total = 0u64;
            loop {
                let index = next.get();
                if index >= blocks {
                    return Ok::<u64, HwError>(total);
                }
                next.set(index + 1);
                let read = file
                    .read_at_aligned(index * block_bytes as u64, block_bytes)
                    .await
                    .map_err(io_err("reading", path))?;
                total += read.len() as u64;
            }
        }
    });
    let mut total = 0;
    for outcome in futures::future::join_all(workers).await {
        total += outcome?;
    }
    if total != blocks * block_bytes as u64 {
        return Err(HwError::Invalid(format!(
            "read {total} bytes of {} from {}",
            blocks * block_bytes as u64,
            path.display()
        )));
    }
    Ok(total)
}

/// Sequential write bandwidth of `file_bytes` (see `write_blocks`).
pub async fn seq_write(
    file: &DmaFile,
    path: &Path,
    file_bytes: u64,
    block_bytes: usize,
    depth: usize,
) -> Result<Bandwidth, HwError> {
    let buffers = random_buffers(file, block_bytes, depth);
    let start = Instant::now();
    let bytes = write_blocks(file, path, buffers, file_bytes).await?;
    Ok(Bandwidth::new(block_bytes, depth, bytes, start.elapsed()))
}

/// Sequential read bandwidth of `file_bytes` (see `read_blocks`).
pub async fn seq_read(
    file: &DmaFile,
    path: &Path,
    file_bytes: u64,
    block_bytes: usize,
    depth: usize,
) -> Result<Bandwidth, HwError> {
    let start = Instant::now();
    let bytes = read_blocks(file, path, file_bytes, block_bytes, depth).await?;
    Ok(Bandwidth::new(block_bytes, depth, bytes, start.elapsed()))
}

/// 4 KiB (`block_bytes`) random reads or writes within the first `file_bytes`, `depth` in
/// flight, for `duration` or `ops_max` operations: IOPS and per-operation latency.
#[allow(clippy::too_many_arguments)]
pub async fn random(
    file: &DmaFile,
    path: &Path,
    write: bool,
    file_bytes: u64,
    block_bytes: usize,
    depth: usize,
    duration: Duration,
    ops_max: usize,
) -> Result<RandomFigures, HwError> {
    let blocks = (file_bytes / block_bytes as u64).max(1);
    let rng = RefCell::new(XorShift(0x9e37_79b9_7f4a_7c15 ^ depth as u64));
    let latencies_ns = RefCell::new(Vec::with_capacity(ops_max.min(1 << 20)));
    let start = Instant::now();
    let workers = (0..depth).map(|_| {
        let (rng, latencies_ns) = (&rng, &latencies_ns);
        let buffer = Rc::new(file.alloc_dma_buffer(block_bytes));
        async move {
            while start.elapsed() < duration && latencies_ns.borrow().len() < ops_max {
                let pos = (rng.borrow_mut().next() % blocks) * block_bytes as u64;
                let t = Instant::now();
                if write {
                    file.write_rc_at(buffer.clone(), pos)
                        .await
                        .map_err(io_err("writing", path))?;
                } else {
                    file.read_at_aligned(pos, block_bytes)
                        .await
                        .map_err(io_err("reading", path))?;
                }
                latencies_ns
                    .borrow_mut()
                    .push(t.elapsed().as_nanos() as u64);
            }
            Ok::<(), HwError>(())
        }
    });
    for outcome in futures::future::join_all(workers).await {
        outcome?;
    }
    let elapsed = start.elapsed();
    let latencies = latencies_ns.into_inner();
    let iops = latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9);
    Ok(RandomFigures {
        queue_depth: depth,
        block_bytes,
        operations: latencies.len() as u64,
        iops: iops.round() as u64,
        latency_us: Latency::of(latencies),
    })
}

/// Appends `block_bytes` past the end of `file` and fdatasyncs, `samples` times (or for
/// `duration`): the latency of each fdatasync, as a log's commit sees it.
pub async fn fdatasync_latency(
    file: &DmaFile,
    path: &Path,
    block_bytes: usize,
    samples: usize,
    duration: Duration,
) -> Result<Latency, HwError> {
    let end = file.file_size().await.map_err(io_err("sizing", path))?;
    let buffer = Rc::new(file.alloc_dma_buffer(block_bytes));
    let mut latencies = Vec::with_capacity(samples);
    let start = Instant::now();
    for i in 0..samples as u64 {
        if i > 0 && start.elapsed() >= duration {
            break;
        }
        file.write_rc_at(buffer.clone(), end + i * block_bytes as u64)
            .await
            .map_err(io_err("writing", path))?;
        let t = Instant::now();
        file.fdatasync().await.map_err(io_err("syncing", path))?;
        latencies.push(t.elapsed().as_nanos() as u64);
    }
    Ok(Latency::of(latencies))
}
