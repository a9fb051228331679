//! `weir bench zk`: ZooKeeper-protocol load against any ZooKeeper-compatible ensemble (Apache
//! ZooKeeper, or weir's frontend on `weir coord --zk-addr`).
//!
//! Owns the flags of `weir bench zk` and how its report is printed. Must not measure anything
//! itself: the load generator is `bench::zk_load`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use bench::zk_load::{self, LeaderProbe, ZkLoadConfig, ZkOp};
use clap::Args;

/// `weir bench zk --servers A,B,C --op create-seq|set|get ...`
#[derive(Debug, Args)]
pub struct ZkArgs {
    /// ZooKeeper client addresses, comma separated (connections are spread round-robin).
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub servers: String,
    /// create-seq (PERSISTENT_SEQUENTIAL creates), set (setData) or get (getData); each
    /// connection works on its own znode ROOT/cN.
    #[arg(long, default_value = "set")]
    pub op: ZkOp,
    /// Data bytes per create/set (and expected per get).
    #[arg(long, default_value = "1024", value_parser = crate::bench_cmd::parse_size)]
    pub size: u64,
    /// Connections (one ZooKeeper session each).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Requests each connection keeps pipelined.
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration_s: f64,
    /// Seconds of load before measuring (JIT warm-up for a JVM server).
    #[arg(long, default_value_t = 1.0)]
    pub warmup_s: f64,
    /// kill -9 the leader this many seconds into the measured window and report the longest
    /// gap without a successful request afterwards (same machine only).
    #[arg(long)]
    pub kill_leader_at_s: Option<f64>,
    /// Find the leader with weir's Status request to these native coordinator addresses (it
    /// reports the pid) instead of ZooKeeper's `srvr` four-letter word.
    #[arg(long)]
    pub weir_status: Option<String>,
    /// glommio executors (threads) the connections are spread over.
    #[arg(long, default_value_t = 1)]
    pub executors: usize,
    /// Znode holding the benchmark's nodes (created if missing).
    #[arg(long, default_value = "/weir-bench-zk")]
    pub root: String,
    /// A connection that receives nothing for this long while requests are outstanding is
    /// dropped and reopened on the next server (a new session).
    #[arg(long, default_value_t = 2000)]
    pub request_timeout_ms: u64,
    /// Write the report to this file as JSON (it is always printed as one JSON line).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_string())
        .filter(|x| !x.is_empty())
        .collect()
}

pub fn run(a: ZkArgs) -> anyhow::Result<()> {
    let secs = |flag: &str, v: f64| {
        Duration::try_from_secs_f64(v).with_context(|| format!("{flag} {v}: not a duration"))
    };
    let duration = secs("--duration-s", a.duration_s)?;
    if duration.is_zero() {
        bail!("--duration-s must be > 0");
    }
    let mut cfg = ZkLoadConfig::new(list(&a.servers), a.op);
    cfg.size = usize::try_from(a.size).context("--size")?;
    cfg.clients = a.clients;
    cfg.in_flight = a.in_flight;
    cfg.duration = duration;
    cfg.warmup = secs("--warmup-s", a.warmup_s)?;
    cfg.kill_leader_at = match a.kill_leader_at_s {
        Some(v) => Some(secs("--kill-leader-at-s", v)?),
        None => None,
    };
    if let Some(w) = &a.weir_status {
        cfg.leader_probe = LeaderProbe::WeirStatus(list(w));
    }
    cfg.executors = a.executors;
    cfg.root = a.root.clone();
    cfg.request_timeout = Duration::from_millis(a.request_timeout_ms);
    let report = zk_load::run(cfg).with_context(|| format!("ZooKeeper load on {}", a.servers))?;
    let json = serde_json::to_string(&report)?;
    println!("{json}");
    if let Some(path) = &a.json {
        std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if report.ops == 0 {
        bail!(
            "no request succeeded (first error: {})",
            report.first_error.as_deref().unwrap_or("none")
        );
    }
    Ok(())
}
