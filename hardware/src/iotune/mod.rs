//! `weir hw iotune --dir DIR`: calibrates the disk under DIR with a scratch file and writes the
//! io-properties file (see properties.rs). Runs on one glommio executor, so it needs memlock like
//! the broker.
//!
//! Owns: the parameters and the order of the passes. Must not: touch anything in DIR but its
//! scratch file (removed at the end).

pub mod measure;
pub mod properties;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use properties::{Bandwidth, IoProperties, Latency, RandomFigures, Suggested};

use crate::HwError;

/// The scratch file's name inside DIR.
pub const SCRATCH_FILE: &str = "weir-iotune.scratch";
/// Bounds on what a caller may ask for.
const FILE_BYTES_MAX: u64 = 64 << 30;
const DEPTH_MAX: usize = 1024;
const OPS_PER_PASS_MAX: usize = 4 << 20;

/// What to measure.
#[derive(Debug, Clone)]
pub struct IotuneConfig {
    pub dir: PathBuf,
    /// Size of the scratch file (sequential passes cover it; random ones stay inside it).
    pub file_bytes: u64,
    /// Sequential block and depth.
    pub seq_block_bytes: usize,
    pub seq_depth: usize,
    /// Random block and the queue depths measured.
    pub random_block_bytes: usize,
    pub random_depths: Vec<usize>,
    /// Time for each random pass and for the fdatasync pass.
    pub pass_duration: Duration,
    pub fdatasync_samples: usize,
    /// glommio io memory for the executor.
    pub io_memory_bytes: usize,
}

impl IotuneConfig {
    pub fn new(dir: impl Into<PathBuf>) -> IotuneConfig {
        IotuneConfig {
            dir: dir.into(),
            file_bytes: 1 << 30,
            seq_block_bytes: 128 << 10,
            seq_depth: 4,
            random_block_bytes: 4096,
            random_depths: vec![1, 4, 16, 64],
            pass_duration: Duration::from_secs(3),
            fdatasync_samples: 200,
            io_memory_bytes: 1 << 20,
        }
    }

    fn check(&self) -> Result<(), HwError> {
        let bad = |what: String| Err(HwError::Invalid(what));
        if self.file_bytes == 0 || self.file_bytes > FILE_BYTES_MAX {
            return bad(format!(
                "file size {} outside 1..={FILE_BYTES_MAX}",
                self.file_bytes
            ));
        }
        for (name, block) in [
            ("sequential", self.seq_block_bytes),
            ("random", self.random_block_bytes),
        ] {
            if block == 0 || block % 4096 != 0 || block as u64 > self.file_bytes {
                return bad(format!(
                    "{name} block {block} must be a multiple of 4096 and fit the file"
                ));
            }
        }
        let depths = self.random_depths.iter().chain([&self.seq_depth]);
        if self.random_depths.is_empty() || depths.clone().any(|&d| d == 0 || d > DEPTH_MAX) {
            return bad(format!("queue depths must be in 1..={DEPTH_MAX}"));
        }
        if self.fdatasync_samples == 0 {
            return bad("fdatasync samples must be at least 1".into());
        }
        Ok(())
    }
}

async fn close(file: glommio::io::DmaFile, path: &Path) -> Result<(), HwError> {
    file.close()
        .await
        .map_err(|e| HwError::io("closing", path, std::io::Error::other(e.to_string())))
}

async fn passes(config: &IotuneConfig, path: &Path) -> Result<IoProperties, HwError> {
    let c = config;
    // glommio probes io polling once per device, by reading the first aligned block of the
    // first file it opens there; on an empty file that read succeeds vacuously and the device is
    // taken as pollable (reads then fail with EOPNOTSUPP where it is not). So the scratch file
    // holds a block before glommio opens it.
    std::fs::write(path, vec![0u8; c.seq_block_bytes])
        .map_err(|e| HwError::io("creating", path, e))?;
    let file = measure::open(path).await?;
    let seq_write =
        measure::seq_write(&file, path, c.file_bytes, c.seq_block_bytes, c.seq_depth).await?;
    let seq_read =
        measure::seq_read(&file, path, c.file_bytes, c.seq_block_bytes, c.seq_depth).await?;
    let mut random_read = Vec::new();
    let mut random_write = Vec::new();
    for &depth in &c.random_depths {
        let args = (
            c.file_bytes,
            c.random_block_bytes,
            depth,
            c.pass_duration,
            OPS_PER_PASS_MAX,
        );
        random_read.push(
            measure::random(&file, path, false, args.0, args.1, args.2, args.3, args.4).await?,
        );
        random_write.push(
            measure::random(&file, path, true, args.0, args.1, args.2, args.3, args.4).await?,
        );
    }
    let fdatasync = measure::fdatasync_latency(
        &file,
        path,
        c.random_block_bytes,
        c.fdatasync_samples,
        c.pass_duration,
    )
    .await?;
    close(file, path).await?;
    let suggested = Suggested::from_figures(&seq_write, &random_write, &fdatasync);
    Ok(IoProperties {
        version: properties::PROPERTIES_VERSION,
        dir: c.dir.display().to_string(),
        device: None,
        measured_at_unix_s: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        file_bytes: c.file_bytes,
        seq_write,
        seq_read,
        random_read,
        random_write,
        fdatasync,
        suggested,
    })
}

/// Runs every pass on a scratch file in `config.dir` (removed afterwards, also on failure).
pub fn run(config: &IotuneConfig) -> Result<IoProperties, HwError> {
    config.check()?;
    let path = config.dir.join(SCRATCH_FILE);
    let owned = config.clone();
    let scratch = path.clone();
    let handle = glommio::LocalExecutorBuilder::default()
        .name("weir-iotune")
        .io_memory(config.io_memory_bytes)
        .spawn(move || async move { passes(&owned, &scratch).await })
        .map_err(|e| HwError::Invalid(format!("starting the io executor: {e}")))?;
    let result = handle
        .join()
        .map_err(|e| HwError::Invalid(format!("the io executor failed: {e}")));
    let _ = std::fs::remove_file(&path);
    let mut props = result??;
    let root = crate::root::HostRoot::real();
    props.device = crate::blockdev::disk_of_dir(&root, &config.dir)
        .and_then(|(_, disk)| disk)
        .map(|d| d.name);
    Ok(props)
}
