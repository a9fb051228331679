//! `weir deploy render --hosts hosts.toml --out DIR`: per-host broker config, coordinator
//! environment and systemd units for a fixed-IP cluster (docs/deploy-ec2.md).
//!
//! Owns: argv for `weir deploy …` and writing the rendered files. Must not: decide their content
//! (`hardware::render` does) or contact any host.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(subcommand)]
    cmd: DeployCmd,
}

#[derive(Debug, Subcommand)]
enum DeployCmd {
    /// Render DIR/node-N/{weir-broker.toml, weir-broker.service, weir-coord.env,
    /// weir-coord.service} from a hosts file.
    Render {
        /// The hosts file (docs/deploy-ec2.md describes it).
        #[arg(long, value_name = "FILE")]
        hosts: PathBuf,
        /// Output directory (created; files in it are overwritten).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

pub fn run(args: DeployArgs) -> anyhow::Result<()> {
    match args.cmd {
        DeployCmd::Render { hosts, out } => {
            let text = std::fs::read_to_string(&hosts)
                .with_context(|| format!("reading {}", hosts.display()))?;
            let file = hardware::render::HostsFile::parse(&text)
                .with_context(|| format!("hosts file {}", hosts.display()))?;
            let files = hardware::render::render(&file)?;
            for f in &files {
                let path = out.join(&f.path);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                std::fs::write(&path, &f.text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}
