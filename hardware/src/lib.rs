//! hardware — knows the host weir runs on: the probe (`weir hw probe`), the tuners (`weir hw
//! tune`), disk calibration (`weir hw iotune`), the EC2 catalogue (`weir hw catalogue`) and the
//! rendering of fixed-IP deployments (`weir deploy render`), and where `weir serve` places its
//! shards and coordinator (`placement`).
//!
//! Everything reads and writes the host through [`root::HostRoot`], so it runs unchanged against
//! a fake sysfs/procfs tree. Must not: read argv or the environment (the cli does), or touch the
//! broker's data (iotune only writes its own scratch file).

pub mod blockdev;
pub mod catalogue;
pub mod fake_host;
pub mod iotune;
pub mod irq;
pub mod placement;
pub mod probe;
pub mod recommended;
pub mod render;
pub mod root;
pub mod tune;

use std::path::{Path, PathBuf};

/// What the hardware crate reports when it cannot do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl HwError {
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> HwError {
        HwError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}
