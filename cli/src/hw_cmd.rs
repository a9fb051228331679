//! `weir hw`: the host — probe it, tune it, calibrate its disk, list EC2 instance types.
//!
//! Owns: argv for `weir hw …` and printing. Must not: read or change the host itself; everything
//! goes through the `hardware` crate and its `HostRoot`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use hardware::root::HostRoot;

#[derive(Debug, Args)]
pub struct HwArgs {
    #[command(subcommand)]
    cmd: HwCmd,
}

/// Where the host is read: the real one, or a tree laid out like `/` (`--root DIR`).
#[derive(Debug, Args)]
struct RootArg {
    /// Read (and tune) the host through this directory instead of `/` (a fake or copied tree
    /// with `sys/`, `proc/`, `etc/`).
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

impl RootArg {
    fn host(&self) -> HostRoot {
        match &self.root {
            Some(dir) => HostRoot::fake(dir),
            None => HostRoot::real(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum HwCmd {
    /// What the host is and how it compares with what weir recommends (like `rpk redpanda
    /// check`). The JSON form follows hardware/probe.schema.json.
    Probe {
        #[command(flatten)]
        root: RootArg,
        /// The broker's data directory: its disk and filesystem are probed.
        #[arg(long, default_value = ".")]
        data_dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: HwArgs) -> anyhow::Result<()> {
    match args.cmd {
        HwCmd::Probe {
            root,
            data_dir,
            json,
        } => {
            let report = hardware::probe::probe(&root.host(), Some(&data_dir));
            if json {
                let text = serde_json::to_string_pretty(&report).context("encoding the probe")?;
                println!("{text}");
            } else {
                print!("{}", report.table());
                println!("worst: {}", report.worst().as_str());
            }
            Ok(())
        }
    }
}
