//! `weir serve`: the Kafka broker. Starts the embedded single-node coordinator (or uses
//! `--coord ADDR,...`), then one shard per core, and stops cleanly on SIGTERM/SIGINT (every
//! partition log is flushed, synced and marked clean before the coordinator stops).
//!
//! Owns: argv for the broker, core placement, signal handling and the ready line on stdout
//! (`weir: serving Kafka on ADDR ...`). Must not: implement broker behaviour (that is
//! `engine::broker` on `engine::shard`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{ArgAction, Args};
use engine::broker::{self, BrokerConfig};
use engine::shard::{self, ShardEvent, ShardsConfig};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Directory for partition logs (`DIR/logs`) and the embedded coordinator (`DIR/coord`).
    #[arg(long)]
    data_dir: PathBuf,
    /// Where every shard listens for Kafka clients (SO_REUSEPORT). Port 0 picks a free port.
    #[arg(long, default_value = "0.0.0.0:9092")]
    kafka_addr: SocketAddr,
    /// HOST:PORT clients are told to connect to (default: the listen address; 127.0.0.1 for a
    /// wildcard address).
    #[arg(long)]
    advertised_addr: Option<String>,
    /// This broker's id.
    #[arg(long, default_value_t = 1)]
    node_id: i32,
    /// Number of shards (default: one per core in --cores, or per online core).
    #[arg(long)]
    shards: Option<usize>,
    /// Cores for the shards, comma separated (shard i runs on the i-th; reused round-robin if
    /// there are more shards than cores).
    #[arg(long, value_delimiter = ',')]
    cores: Option<Vec<usize>>,
    /// Core of the embedded coordinator (default: the last online core; it may share a core with
    /// a shard on small machines).
    #[arg(long)]
    coord_core: Option<usize>,
    /// Use these coordinator servers instead of starting an embedded one.
    #[arg(long, value_delimiter = ',')]
    coord: Option<Vec<String>>,
    /// `num.partitions`: partitions of auto-created topics.
    #[arg(long, default_value_t = 1)]
    num_partitions: i32,
    /// `auto.create.topics.enable`.
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    auto_create_topics_enable: bool,
    /// `log.segment.bytes`: default segment size of topics.
    #[arg(long)]
    log_segment_bytes: Option<u64>,
    /// `log.retention.ms`: default retention of topics (-1: keep forever).
    #[arg(long)]
    log_retention_ms: Option<i64>,
    /// `socket.request.max.bytes`: larger request frames close the connection.
    #[arg(long, default_value_t = engine::protocol::frame::REQUEST_BYTES_MAX_DEFAULT)]
    socket_request_max_bytes: usize,
    /// glommio io_memory per shard (bounded by the memlock limit).
    #[arg(long, default_value_t = 1 << 20)]
    io_memory_bytes: usize,
}

fn online_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn placement(a: &ServeArgs) -> anyhow::Result<Vec<usize>> {
    let online = online_cores();
    let cores = a.cores.clone().unwrap_or_else(|| (0..online).collect());
    if cores.is_empty() {
        bail!("--cores is empty");
    }
    if let Some(c) = cores.iter().find(|c| **c >= online) {
        bail!("--cores names core {c}, but only {online} are online");
    }
    let shards = a.shards.unwrap_or(cores.len());
    if shards == 0 {
        bail!("--shards must be at least 1");
    }
    Ok((0..shards).map(|i| cores[i % cores.len()]).collect())
}

fn advertised(a: &ServeArgs, listen: SocketAddr) -> anyhow::Result<(String, u16)> {
    match &a.advertised_addr {
        Some(s) => {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("--advertised-addr {s:?} is not HOST:PORT"))?;
            Ok((
                host.to_string(),
                port.parse().context("--advertised-addr port")?,
            ))
        }
        None => {
            let host = match listen.ip() {
                ip if ip.is_unspecified() => IpAddr::from([127, 0, 0, 1]),
                ip => ip,
            };
            Ok((host.to_string(), listen.port()))
        }
    }
}

/// Blocks SIGINT and SIGTERM in this thread and every thread started after it, so they can be
/// taken synchronously with `sigtimedwait`.
fn block_signals() -> anyhow::Result<libc::sigset_t> {
    // SAFETY: plain libc calls on a local, initialised sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            bail!("pthread_sigmask: {}", std::io::Error::from_raw_os_error(rc));
        }
        Ok(set)
    }
}

/// The signal taken within `timeout`, if any.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<i32> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is initialised; a null siginfo is allowed.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), &ts) };
    (sig > 0).then_some(sig)
}

pub fn run(a: ServeArgs) -> anyhow::Result<()> {
    let signals = block_signals()?;
    let shard_cores = placement(&a)?;
    let listen = shard::resolve_port(a.kafka_addr).context("resolving --kafka-addr")?;
    let (host, port) = advertised(&a, listen)?;
    std::fs::create_dir_all(&a.data_dir)
        .with_context(|| format!("creating {}", a.data_dir.display()))?;

    let mut embedded = None;
    let coord_servers = match &a.coord {
        Some(servers) => servers.clone(),
        None => {
            let core = a.coord_core.unwrap_or(online_cores() - 1);
            let node =
                coord::server::start_embedded(a.data_dir.join("coord"), "127.0.0.1:0", Some(core))
                    .map_err(|e| anyhow!("starting the embedded coordinator: {e}"))?;
            let addr = node.addr.to_string();
            tracing::info!(%addr, core, "embedded coordinator started");
            embedded = Some(node);
            vec![addr]
        }
    };

    let mut cfg = BrokerConfig::new(a.data_dir.join("logs"), coord_servers.clone());
    cfg.node_id = a.node_id;
    cfg.advertised_host = host.clone();
    cfg.advertised_port = port;
    cfg.num_partitions = a.num_partitions;
    cfg.auto_create_topics = a.auto_create_topics_enable;
    if let Some(b) = a.log_segment_bytes {
        cfg.log_defaults.segment_bytes = b;
    }
    if let Some(ms) = a.log_retention_ms {
        cfg.log_defaults.retention_ms = u64::try_from(ms).ok();
    }
    let shards = shard::start(
        ShardsConfig {
            cores: shard_cores.clone(),
            io_memory_bytes: a.io_memory_bytes,
            kafka_addr: listen,
            request_bytes_max: a.socket_request_max_bytes,
            channel_jobs_max: 1024,
        },
        broker::builder(cfg),
    );
    let shards = match shards {
        Ok(s) => s,
        Err(e) => {
            if let Some(node) = embedded {
                node.stop();
            }
            return Err(e).context("starting shards");
        }
    };
    println!(
        "weir: serving Kafka on {} (advertised {host}:{port}), {} shards on cores {:?}, coordinator {}",
        shards.addr,
        shard_cores.len(),
        shard_cores,
        coord_servers.join(",")
    );
    let mut failure = None;
    loop {
        if let Some(sig) = wait_signal(&signals, Duration::from_millis(200)) {
            tracing::info!(signal = sig, "stopping");
            break;
        }
        if let Some(ShardEvent::Exited { shard, error }) = shards.try_event() {
            failure = Some(anyhow!(
                "shard {shard} stopped: {}",
                error.unwrap_or_else(|| "no reason given".into())
            ));
            break;
        }
        if embedded.as_ref().is_some_and(|n| n.is_finished()) {
            failure = Some(anyhow!("the embedded coordinator stopped"));
            break;
        }
    }
    let errors = shards.stop();
    if let Some(node) = embedded {
        node.stop();
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if !errors.is_empty() {
        bail!("unclean shutdown: {}", errors.join("; "));
    }
    eprintln!("weir: stopped cleanly");
    Ok(())
}
