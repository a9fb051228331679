//! `weir deploy render`: from `hosts.toml` (fixed addresses, racks, node ids) to one directory
//! per host with its broker config, coordinator environment and systemd units.
//!
//! Owns: which files each host gets. Must not: write them (the cli does) or reach any host.

pub mod configs;
pub mod hosts;
pub mod units;

pub use hosts::{Cluster, Host, HostsFile};

use crate::HwError;

/// One rendered file, relative to the output directory (`node-1/weir-broker.toml`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub text: String,
}

/// Every file for every host; refuses a hosts file that fails its checks.
pub fn render(file: &HostsFile) -> Result<Vec<RenderedFile>, HwError> {
    file.check()?;
    let mut out = Vec::new();
    for host in &file.host {
        let dir = format!("node-{}", host.node_id);
        let mut put = |name: &str, text: String| {
            out.push(RenderedFile {
                path: format!("{dir}/{name}"),
                text,
            })
        };
        put("weir-broker.toml", configs::broker_toml(file, host));
        put("weir-broker.service", units::broker_unit(file, host));
        if host.coordinator {
            put("weir-coord.env", configs::coord_env(file, host));
            put("weir-coord.service", units::coord_unit(file, host));
        }
    }
    Ok(out)
}
