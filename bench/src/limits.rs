//! limits — the machine's physical limits, measured in the same run as the figures they bound,
//! so those figures can be read as ratios: O_DIRECT sequential write and read bandwidth of the
//! filesystem under a directory (hardware's iotune loops: io_uring through glommio, the path the
//! broker's segments take; 1 MiB blocks, 8 in flight, like fio's `--bs=1M --iodepth=8`), and
//! loopback TCP throughput (one stream, like `iperf3 -c 127.0.0.1`).
//!
//! Bounded: each pass is sized or timed to about [`LimitsConfig::pass`] (a short probe sizes the
//! disk passes), the scratch file is at most [`LimitsConfig::disk_bytes_max`] and a quarter of
//! the free space. A limit that cannot be measured (no O_DIRECT on tmpfs, no memlock) is recorded
//! with the reason, never as a figure.
//!
//! Owns the measurement and its scratch file (removed, also on failure). Must not touch any other
//! file, and must not reuse or copy the I/O loops (they are `hardware::iotune::measure`'s).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hardware::iotune::measure;
use serde::{Deserialize, Serialize};

const MIB: u64 = 1 << 20;
/// Raw DMA block and operations in flight (the shared `limits` script's fio parameters).
const BLOCK_BYTES: usize = 1 << 20;
const DEPTH: usize = 8;
/// The probe that sizes the disk passes.
const PROBE_BYTES: u64 = 32 * MIB;
/// Smallest disk pass (shorter ones measure the device's cache more than its bandwidth).
const DISK_BYTES_MIN: u64 = 64 * MIB;
/// Longest pass a caller may ask for.
const PASS_MAX: Duration = Duration::from_secs(30);
/// Name of the scratch file inside the directory.
pub const SCRATCH_FILE: &str = "weir-limits.scratch";
/// TCP buffers: iperf3's default 128 KiB writes.
const TCP_WRITE_BYTES: usize = 128 << 10;

/// What to measure, and how long.
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// A directory on the filesystem whose disk is measured (the broker's data, the results).
    pub dir: PathBuf,
    /// About how long each pass takes: disk write, disk read, loopback TCP.
    pub pass: Duration,
    /// Largest scratch file.
    pub disk_bytes_max: u64,
}

impl LimitsConfig {
    /// 1.5 s per pass (≈ 5 s in all), at most 1 GiB on disk.
    pub fn new(dir: impl Into<PathBuf>) -> LimitsConfig {
        LimitsConfig {
            dir: dir.into(),
            pass: Duration::from_millis(1500),
            disk_bytes_max: 1 << 30,
        }
    }
}

/// The limits measured (or why not), as a results file records them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// The directory whose filesystem was measured.
    pub dir: String,
    /// O_DIRECT sequential write, MB/s (10^6 bytes), fdatasync included.
    pub disk_write_mb_per_s: Option<f64>,
    /// O_DIRECT sequential read of what was written, MB/s.
    pub disk_read_mb_per_s: Option<f64>,
    /// Bytes each disk pass moved, in blocks of `disk_block_bytes`, `disk_depth` in flight.
    pub disk_bytes: u64,
    pub disk_block_bytes: usize,
    pub disk_depth: usize,
    /// Why the disk was not measured.
    pub disk_error: Option<String>,
    /// One TCP stream over 127.0.0.1, MB/s received.
    pub tcp_loopback_mb_per_s: Option<f64>,
    /// Why loopback TCP was not measured.
    pub tcp_error: Option<String>,
    /// How long measuring took, s.
    pub elapsed_s: f64,
}

impl Limits {
    /// One line: "disk (O_DIRECT, 1 MiB × 8) write 812 MB/s, read 1650 MB/s; loopback TCP 3420
    /// MB/s", each missing figure with its reason.
    pub fn caption(&self) -> String {
        let disk = match (self.disk_write_mb_per_s, self.disk_read_mb_per_s) {
            (Some(w), Some(r)) => format!(
                "disk under {} (O_DIRECT, {} KiB × {} in flight, {:.0} MiB): write {w:.0} MB/s, read {r:.0} MB/s",
                self.dir,
                self.disk_block_bytes >> 10,
                self.disk_depth,
                self.disk_bytes as f64 / MIB as f64
            ),
            _ => format!(
                "disk not measured ({})",
                self.disk_error.as_deref().unwrap_or("no figure")
            ),
        };
        let tcp = match self.tcp_loopback_mb_per_s {
            Some(t) => format!("loopback TCP (1 stream) {t:.0} MB/s"),
            None => format!(
                "loopback TCP not measured ({})",
                self.tcp_error.as_deref().unwrap_or("no figure")
            ),
        };
        format!("{disk}; {tcp}")
    }
}

/// Measures both limits (each failure recorded in the result, never returned).
pub fn measure(config: &LimitsConfig) -> Limits {
    let start = Instant::now();
    let pass = config.pass.min(PASS_MAX);
    let mut limits = Limits {
        dir: config.dir.display().to_string(),
        disk_write_mb_per_s: None,
        disk_read_mb_per_s: None,
        disk_bytes: 0,
        disk_block_bytes: BLOCK_BYTES,
        disk_depth: DEPTH,
        disk_error: None,
        tcp_loopback_mb_per_s: None,
        tcp_error: None,
        elapsed_s: 0.0,
    };
    match disk(&config.dir, pass, config.disk_bytes_max) {
        Ok(d) => {
            limits.disk_write_mb_per_s = Some(d.write_mb_per_s);
            limits.disk_read_mb_per_s = Some(d.read_mb_per_s);
            limits.disk_bytes = d.bytes;
        }
        Err(e) => limits.disk_error = Some(e),
    }
    match tcp_loopback(pass) {
        Ok(t) => limits.tcp_loopback_mb_per_s = Some(t),
        Err(e) => limits.tcp_error = Some(e),
    }
    limits.elapsed_s = start.elapsed().as_secs_f64();
    limits
}

struct DiskFigures {
    bytes: u64,
    write_mb_per_s: f64,
    read_mb_per_s: f64,
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
}

/// The disk passes on their own glommio executor; the scratch file is removed whatever happens.
fn disk(dir: &Path, pass: Duration, bytes_max: u64) -> Result<DiskFigures, String> {
    let free = free_bytes(dir).map_err(|e| format!("statvfs {}: {e}", dir.display()))?;
    let bytes_max = bytes_max.min(free / 4);
    if bytes_max < DISK_BYTES_MIN {
        return Err(format!(
            "{} MiB free under {}: too little for a {} MiB pass",
            free / MIB,
            dir.display(),
            DISK_BYTES_MIN / MIB
        ));
    }
    let path = dir.join(SCRATCH_FILE);
    let scratch = path.clone();
    let outcome = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("weir-limits")
        // Small, like iotune and `weir bench log`: buffers beyond it come from the heap, and it
        // must fit the default memlock limit (8 MiB).
        .io_memory(MIB as usize)
        .spawn(move || async move { disk_passes(&scratch, pass, bytes_max).await })
        .map_err(|e| format!("starting an io executor: {e}"))
        .and_then(|h| h.join().map_err(|e| format!("the io executor failed: {e}")));
    let _ = std::fs::remove_file(&path);
    outcome?
}

async fn disk_passes(path: &Path, pass: Duration, bytes_max: u64) -> Result<DiskFigures, String> {
    // glommio decides once per device whether it can poll by reading the first block of the
    // first file it opens there: the file must hold one (as hardware's iotune does it).
    std::fs::write(path, vec![0u8; BLOCK_BYTES]).map_err(|e| e.to_string())?;
    let file = measure::open(path).await.map_err(|e| e.to_string())?;
    let outcome = async {
        let buffers = measure::random_buffers(&file, BLOCK_BYTES, DEPTH);
        let t = Instant::now();
        let probed = measure::write_blocks(&file, path, buffers, PROBE_BYTES)
            .await
            .map_err(|e| e.to_string())?;
        let probe_rate = probed as f64 / t.elapsed().as_secs_f64().max(1e-9);
        let wanted = (probe_rate * pass.as_secs_f64()) as u64;
        let bytes =
            wanted.clamp(DISK_BYTES_MIN, bytes_max) / BLOCK_BYTES as u64 * BLOCK_BYTES as u64;
        // Preallocated like the broker's segments (log.preallocate), so the pass measures
        // writes, not block allocation.
        file.pre_allocate(bytes, false)
            .await
            .map_err(|e| format!("preallocating {bytes} bytes: {e}"))?;
        let buffers = measure::random_buffers(&file, BLOCK_BYTES, DEPTH);
        let t = Instant::now();
        let written = measure::write_blocks(&file, path, buffers, bytes)
            .await
            .map_err(|e| e.to_string())?;
        let write_mb_per_s = mb_per_s(written, t.elapsed());
        let t = Instant::now();
        let read = measure::read_blocks(&file, path, written, BLOCK_BYTES, DEPTH)
            .await
            .map_err(|e| e.to_string())?;
        Ok(DiskFigures {
            bytes: written,
            write_mb_per_s,
            read_mb_per_s: mb_per_s(read, t.elapsed()),
        })
    }
    .await;
    let _ = file.close().await;
    outcome
}

/// Free bytes for an unprivileged user under `dir`.
fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// One TCP stream over 127.0.0.1 for `duration`: MB/s the receiver read, timed from the first
/// write until the receiver has drained the stream.
pub fn tcp_loopback(duration: Duration) -> Result<f64, String> {
    let duration = duration.min(PASS_MAX);
    fn err(what: &'static str) -> impl Fn(std::io::Error) -> String {
        move |e| format!("{what}: {e}")
    }
    let listener = TcpListener::bind("127.0.0.1:0").map_err(err("binding 127.0.0.1"))?;
    let addr = listener.local_addr().map_err(err("its address"))?;
    // Bounded waits everywhere: no thread outlives a failure by more than this.
    let patience = duration + Duration::from_secs(5);
    listener
        .set_nonblocking(true)
        .map_err(err("a non-blocking listener"))?;
    let receiver = std::thread::Builder::new()
        .name("weir-limits-tcp".into())
        .spawn(move || -> Result<u64, String> {
            let deadline = Instant::now() + patience;
            let mut stream = loop {
                match listener.accept() {
                    Ok((s, _)) => break s,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if Instant::now() > deadline {
                            return Err("no connection came".into());
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(e) => return Err(format!("accepting: {e}")),
                }
            };
            stream
                .set_nonblocking(false)
                .and_then(|_| stream.set_read_timeout(Some(patience)))
                .map_err(|e| format!("the receiving socket: {e}"))?;
            let mut buffer = vec![0u8; 4 * TCP_WRITE_BYTES];
            let mut total = 0u64;
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => return Ok(total),
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("receiving: {e}")),
                }
            }
        })
        .map_err(err("starting the receiver"))?;
    let sent = (|| {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_write_timeout(Some(patience))?;
        let chunk = vec![0x5au8; TCP_WRITE_BYTES];
        let start = Instant::now();
        while start.elapsed() < duration {
            stream.write_all(&chunk)?;
        }
        stream.shutdown(Shutdown::Write)?;
        Ok::<_, std::io::Error>(start)
    })();
    let received = receiver
        .join()
        .map_err(|_| "the receiver panicked".to_string())?;
    let start = sent.map_err(err("sending"))?;
    let elapsed = start.elapsed();
    Ok(mb_per_s(received?, elapsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_tcp_moves_bytes_within_its_time() {
        let t = Instant::now();
        let rate = tcp_loopback(Duration::from_millis(200)).unwrap();
        assert!(rate > 0.0, "{rate} MB/s");
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "bounded: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn a_directory_that_is_not_there_is_a_reason_not_a_figure() {
        let limits = measure(&LimitsConfig {
            dir: "/nonexistent/weir-limits".into(),
            pass: Duration::from_millis(100),
            disk_bytes_max: 64 * MIB,
        });
        assert!(limits.disk_write_mb_per_s.is_none() && limits.disk_read_mb_per_s.is_none());
        let reason = limits.disk_error.as_deref().unwrap();
        assert!(reason.contains("/nonexistent/weir-limits"), "{reason}");
        assert!(limits.tcp_loopback_mb_per_s.is_some(), "{limits:?}");
        let caption = limits.caption();
        assert!(
            caption.starts_with("disk not measured (statvfs"),
            "{caption}"
        );
        assert!(caption.contains("loopback TCP (1 stream) "), "{caption}");
    }

    #[test]
    fn the_disk_is_measured_in_a_bounded_pass_and_its_scratch_file_removed() {
        let dir = tempfile::tempdir().unwrap();
        let limits = measure(&LimitsConfig {
            dir: dir.path().into(),
            pass: Duration::from_millis(100),
            disk_bytes_max: 64 * MIB,
        });
        // glommio needs memlock (the test suite runs with it) and O_DIRECT (not tmpfs).
        let (Some(w), Some(r)) = (limits.disk_write_mb_per_s, limits.disk_read_mb_per_s) else {
            panic!("{limits:?}");
        };
        assert!(w > 0.0 && r > 0.0, "{limits:?}");
        assert_eq!(limits.disk_bytes, 64 * MIB, "the pass is clamped");
        assert!(!dir.path().join(SCRATCH_FILE).exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(limits.caption().contains("write "), "{}", limits.caption());
    }
}
