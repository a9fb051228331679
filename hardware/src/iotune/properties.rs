//! The io-properties file `weir hw iotune` writes (TOML, documented in docs/HARDWARE.md): the
//! measured figures of one directory's disk and what they suggest for the broker.
//!
//! Owns: the file's format, its derived suggestions, reading and writing it. Must not: measure.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::HwError;

/// Version of the file's format.
pub const PROPERTIES_VERSION: u32 = 1;
/// Bounds of the suggested write group.
const WRITE_GROUP_BYTES_MIN: u64 = 64 << 10;
const WRITE_GROUP_BYTES_MAX: u64 = 8 << 20;

/// A sequential pass.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    pub block_bytes: usize,
    pub queue_depth: usize,
    pub bytes: u64,
    pub bytes_per_s: u64,
}

impl Bandwidth {
    pub fn new(block_bytes: usize, queue_depth: usize, bytes: u64, elapsed: Duration) -> Self {
        Bandwidth {
            block_bytes,
            queue_depth,
            bytes,
            bytes_per_s: (bytes as f64 / elapsed.as_secs_f64().max(1e-9)).round() as u64,
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub samples: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Latency {
    /// Percentiles (nearest rank) of latencies in nanoseconds.
    pub fn of(mut ns: Vec<u64>) -> Latency {
        ns.sort_unstable();
        let at = |q: f64| -> f64 {
            if ns.is_empty() {
                return 0.0;
            }
            let rank = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
            (ns[rank - 1] as f64 / 1000.0 * 10.0).round() / 10.0
        };
        Latency {
            samples: ns.len() as u64,
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: at(1.0),
        }
    }
}

/// Random I/O at one queue depth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RandomFigures {
    pub queue_depth: usize,
    pub block_bytes: usize,
    pub operations: u64,
    pub iops: u64,
    pub latency_us: Latency,
}

/// What the figures suggest for the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggested {
    /// The smallest measured queue depth whose random-write IOPS reach 90% of the best: more
    /// writes in flight per disk only add latency.
    pub writes_in_flight: usize,
    /// Bytes the disk writes sequentially during one median fdatasync (clamped to 64 KiB–8 MiB,
    /// a multiple of 4 KiB): a write group that big costs about one sync's time to write, so
    /// grouping commits up to it amortises the sync without doubling the latency.
    pub write_group_bytes: u64,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoProperties {
    pub version: u32,
    /// The directory measured and the disk under it (if known).
    pub dir: String,
    pub device: Option<String>,
    pub measured_at_unix_s: u64,
    /// Size of the scratch file the passes ran over.
    pub file_bytes: u64,
    pub seq_write: Bandwidth,
    pub seq_read: Bandwidth,
    pub random_read: Vec<RandomFigures>,
    pub random_write: Vec<RandomFigures>,
    pub fdatasync: Latency,
    pub suggested: Suggested,
}

impl Suggested {
    pub fn from_figures(
        seq_write: &Bandwidth,
        random_write: &[RandomFigures],
        sync: &Latency,
    ) -> Self {
        let best = random_write.iter().map(|r| r.iops).max().unwrap_or(0);
        let writes_in_flight = random_write
            .iter()
            .filter(|r| r.iops as f64 >= 0.9 * best as f64)
            .map(|r| r.queue_depth)
            .min()
            .unwrap_or(1);
        let during_sync = seq_write.bytes_per_s as f64 * sync.p50_us / 1e6;
        let write_group_bytes =
            ((during_sync as u64).clamp(WRITE_GROUP_BYTES_MIN, WRITE_GROUP_BYTES_MAX) / 4096)
                * 4096;
        Suggested {
            writes_in_flight,
            write_group_bytes,
        }
    }
}

impl IoProperties {
    pub fn to_toml(&self) -> Result<String, HwError> {
        let body = toml::to_string(self)
            .map_err(|e| HwError::Invalid(format!("encoding io-properties: {e}")))?;
        Ok(format!(
            "# weir io-properties, written by `weir hw iotune` (format: docs/HARDWARE.md).\n{body}"
        ))
    }

    pub fn from_toml(text: &str) -> Result<IoProperties, HwError> {
        let p: IoProperties =
            toml::from_str(text).map_err(|e| HwError::Invalid(format!("io-properties: {e}")))?;
        if p.version != PROPERTIES_VERSION {
            return Err(HwError::Invalid(format!(
                "io-properties version {} (this weir reads {PROPERTIES_VERSION})",
                p.version
            )));
        }
        Ok(p)
    }

    pub fn write(&self, path: &Path) -> Result<(), HwError> {
        std::fs::write(path, self.to_toml()?).map_err(|e| HwError::io("writing", path, e))
    }

    pub fn read(path: &Path) -> Result<IoProperties, HwError> {
        let text = crate::root::read_bounded(path).map_err(|e| HwError::io("reading", path, e))?;
        IoProperties::from_toml(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let l = Latency::of((1..=1000).map(|i| i * 1000).collect());
        assert_eq!(
            (l.p50_us, l.p99_us, l.p999_us, l.max_us),
            (500.0, 990.0, 999.0, 1000.0)
        );
        assert_eq!(Latency::of(Vec::new()).samples, 0);
    }

    #[test]
    fn suggestions_follow_the_figures() {
        let seq = Bandwidth::new(1 << 17, 4, 1_000_000_000, Duration::from_secs(1));
        let r = |qd, iops| RandomFigures {
            queue_depth: qd,
            block_bytes: 4096,
            operations: 1,
            iops,
            latency_us: Latency::of(vec![1]),
        };
        let sync = Latency::of(vec![4_096_000]);
        let s = Suggested::from_figures(&seq, &[r(1, 10_000), r(8, 95_000), r(32, 100_000)], &sync);
        assert_eq!(s.writes_in_flight, 8);
        // 1 GB/s during a 4.096 ms sync.
        assert_eq!(s.write_group_bytes, 4_096_000);
        let slow = Suggested::from_figures(&seq, &[r(1, 10)], &Latency::of(vec![1_000]));
        assert_eq!(slow.write_group_bytes, 64 << 10, "clamped to the minimum");
    }
}
