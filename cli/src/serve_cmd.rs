//! `weir serve`: the Kafka broker. Starts the embedded single-node coordinator (or uses
//! `--coord ADDR,...`), then one shard per core, and stops cleanly on SIGTERM/SIGINT (every
//! partition log is flushed, synced and marked clean before the coordinator stops).
//!
//! Owns: argv for the broker, asking `hardware::placement` where shards and the coordinator run,
//! signal handling and the ready line on stdout
//! (`weir: serving Kafka on ADDR ...`). Must not: implement broker behaviour (that is
//! `engine::broker` on `engine::shard`).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use clap::{ArgAction, Args};
use engine::broker::{self, BrokerConfig};
use engine::shard::{self, ShardEvent, ShardsConfig};

use crate::serve_config::Settings;
use crate::serve_io;
use hardware::placement::{Placement, Request, Topology};
use hardware::root::HostRoot;
use storage::LogConfig;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML config file (docs/weir.example.toml lists every key); flags override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// `data.dir`: partition logs in `DIR/logs`, the embedded coordinator in `DIR/coord`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// `kafka.addr`: where every shard listens for Kafka clients (SO_REUSEPORT; default
    /// 0.0.0.0:9092). Port 0 picks a free port.
    #[arg(long)]
    kafka_addr: Option<SocketAddr>,
    /// `advertised.addr`: HOST:PORT clients are told to connect to (default: the listen address;
    /// 127.0.0.1 for a wildcard address).
    #[arg(long)]
    advertised_addr: Option<String>,
    /// `node.id`: this broker's id (default 1).
    #[arg(long)]
    node_id: Option<i32>,
    /// `broker.rack`: this broker's rack (on EC2 its availability zone), reported in Metadata
    /// and DescribeCluster (default: none).
    #[arg(long)]
    broker_rack: Option<String>,
    /// `io.properties.file`: the io-properties file of `weir hw iotune` that sizes the partition
    /// logs' writes in flight and write groups (default: DATA_DIR/io-properties.toml if it
    /// exists; `none`: no file).
    #[arg(long, value_name = "PATH")]
    io_properties: Option<String>,
    /// `shards`: number of shards (default: one per CPU in --cores, or per CPU this process may
    /// use). Without --cores, shards take distinct physical cores before SMT siblings, NUMA nodes
    /// in turn (docs/HARDWARE.md, "Core placement").
    #[arg(long)]
    shards: Option<usize>,
    /// `cores`: cores for the shards, comma separated (shard i runs on the i-th; reused
    /// round-robin if there are more shards than cores).
    #[arg(long, value_delimiter = ',')]
    cores: Option<Vec<usize>>,
    /// `coord.core`: CPU of the embedded coordinator (default: a CPU without a shard, preferably
    /// on a core without one; on a machine with a shard on every CPU, the last shard's).
    #[arg(long)]
    coord_core: Option<usize>,
    /// `coord.zk.addr`: also serve ZooKeeper's client protocol from the embedded coordinator on
    /// this address (off by default; ignored with --coord).
    #[arg(long)]
    coord_zk_addr: Option<String>,
    /// `coord.servers`: use these coordinator servers instead of starting an embedded one.
    #[arg(long, value_delimiter = ',')]
    coord: Option<Vec<String>>,
    /// `num.partitions`: partitions of auto-created topics (default 1).
    #[arg(long)]
    num_partitions: Option<i32>,
    /// `auto.create.topics.enable` (default true).
    #[arg(long, action = ArgAction::Set)]
    auto_create_topics_enable: Option<bool>,
    /// `log.segment.bytes`: default segment size of topics.
    #[arg(long)]
    log_segment_bytes: Option<u64>,
    /// `log.retention.ms`: default retention of topics (-1: keep forever).
    #[arg(long, allow_negative_numbers = true)]
    log_retention_ms: Option<i64>,
    /// `log.retention.check.interval.ms`: how often each shard applies retention (default
    /// 300000).
    #[arg(long)]
    log_retention_check_interval_ms: Option<u64>,
    /// `offsets.retention.minutes`: committed offsets of a group with no members expire this
    /// long after it became empty (default 10080, 7 days).
    #[arg(long)]
    offsets_retention_minutes: Option<u64>,
    /// `offsets.retention.check.interval.ms`: how often offsets are expired (default 600000).
    #[arg(long)]
    offsets_retention_check_interval_ms: Option<u64>,
    /// `group.initial.rebalance.delay.ms`: how long an empty group's first join waits for more
    /// members (default 1000; 0 starts the first generation at once).
    #[arg(long)]
    group_initial_rebalance_delay_ms: Option<u64>,
    /// `offsets.topic.segment.bytes`: segment.bytes of the compacted `__consumer_offsets` topic
    /// when it is created (default 16777216).
    #[arg(long)]
    offsets_topic_segment_bytes: Option<u64>,
    /// `socket.request.max.bytes`: larger request frames close the connection.
    #[arg(long)]
    socket_request_max_bytes: Option<usize>,
    /// `io.memory.bytes`: glommio io_memory per shard (bounded by the memlock limit).
    #[arg(long)]
    io_memory_bytes: Option<usize>,
    /// `shard.connections.max`: client connections each shard serves at once; more are closed
    /// as soon as they are accepted (default 10000).
    #[arg(long)]
    shard_connections_max: Option<usize>,
}

/// The defaults, the config file over them, the flags over that — every value, from the file or
/// a flag, through the one validation of `Settings::set`.
fn settings(a: &ServeArgs) -> anyhow::Result<Settings> {
    let mut s = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Settings::from_toml(&text).with_context(|| format!("config file {}", path.display()))?
        }
        None => Settings::default(),
    };
    for (flag, key, value) in flag_entries(a) {
        s.set(key, &value)
            .and_then(|()| s.check())
            .with_context(|| format!("--{flag}"))?;
    }
    Ok(s)
}

/// The flags given, each as (flag, config key, value) — the key and value the file would hold.
fn flag_entries(a: &ServeArgs) -> Vec<(&'static str, &'static str, toml::Value)> {
    use toml::Value;
    let text = |v: &dyn std::fmt::Display| Value::String(v.to_string());
    let int = |v: i128| Value::Integer(v.clamp(i64::MIN as i128, i64::MAX as i128) as i64);
    let list = |v: &[String]| Value::Array(v.iter().map(|s| Value::String(s.clone())).collect());
    let mut out = Vec::new();
    let mut push = |flag, key, value: Option<Value>| {
        if let Some(v) = value {
            out.push((flag, key, v));
        }
    };
    push(
        "data-dir",
        "data.dir",
        a.data_dir.as_ref().map(|v| text(&v.display())),
    );
    push("kafka-addr", "kafka.addr", a.kafka_addr.map(|v| text(&v)));
    push(
        "advertised-addr",
        "advertised.addr",
        a.advertised_addr.as_ref().map(|v| text(v)),
    );
    push("node-id", "node.id", a.node_id.map(|v| int(v.into())));
    push(
        "broker-rack",
        "broker.rack",
        a.broker_rack.as_ref().map(|v| text(v)),
    );
    push(
        "io-properties",
        "io.properties.file",
        a.io_properties.as_ref().map(|v| text(v)),
    );
    push("shards", "shards", a.shards.map(|v| int(v as i128)));
    push(
        "cores",
        "cores",
        a.cores
            .as_ref()
            .map(|v| Value::Array(v.iter().map(|c| int(*c as i128)).collect())),
    );
    push(
        "coord-core",
        "coord.core",
        a.coord_core.map(|v| int(v as i128)),
    );
    push(
        "coord-zk-addr",
        "coord.zk.addr",
        a.coord_zk_addr.as_ref().map(|v| text(v)),
    );
    push("coord", "coord.servers", a.coord.as_ref().map(|v| list(v)));
    push(
        "num-partitions",
        "num.partitions",
        a.num_partitions.map(|v| int(v.into())),
    );
    push(
        "auto-create-topics-enable",
        "auto.create.topics.enable",
        a.auto_create_topics_enable.map(Value::Boolean),
    );
    push(
        "log-segment-bytes",
        "log.segment.bytes",
        a.log_segment_bytes.map(|v| int(v.into())),
    );
    push(
        "log-retention-ms",
        "log.retention.ms",
        a.log_retention_ms.map(|v| int(v.into())),
    );
    push(
        "log-retention-check-interval-ms",
        "log.retention.check.interval.ms",
        a.log_retention_check_interval_ms.map(|v| int(v.into())),
    );
    push(
        "offsets-retention-minutes",
        "offsets.retention.minutes",
        a.offsets_retention_minutes.map(|v| int(v.into())),
    );
    push(
        "offsets-retention-check-interval-ms",
        "offsets.retention.check.interval.ms",
        a.offsets_retention_check_interval_ms.map(|v| int(v.into())),
    );
    push(
        "group-initial-rebalance-delay-ms",
        "group.initial.rebalance.delay.ms",
        a.group_initial_rebalance_delay_ms.map(|v| int(v.into())),
    );
    push(
        "offsets-topic-segment-bytes",
        "offsets.topic.segment.bytes",
        a.offsets_topic_segment_bytes.map(|v| int(v.into())),
    );
    push(
        "socket-request-max-bytes",
        "socket.request.max.bytes",
        a.socket_request_max_bytes.map(|v| int(v as i128)),
    );
    push(
        "io-memory-bytes",
        "io.memory.bytes",
        a.io_memory_bytes.map(|v| int(v as i128)),
    );
    push(
        "shard-connections-max",
        "shard.connections.max",
        a.shard_connections_max.map(|v| int(v as i128)),
    );
    out
}

/// The host's topology (hardware::placement), or one core per CPU the process may use when
/// sysfs cannot be read.
fn topology() -> Topology {
    match Topology::read(&HostRoot::real()) {
        Ok(t) => t,
        Err(e) => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            eprintln!("weir: CPU topology unreadable ({e}); placing on CPUs 0..{n}");
            Topology::flat(n)
        }
    }
}

/// Which CPU each shard and the embedded coordinator run on (`hardware::placement`'s rule).
fn placement(a: &Settings, topology: &Topology) -> anyhow::Result<Placement> {
    Ok(topology.place(&Request {
        cores: a.cores.clone(),
        shards: a.shards,
        coord_core: a.coord_core,
    })?)
}

fn advertised(a: &Settings, listen: SocketAddr) -> anyhow::Result<(String, u16)> {
    match &a.advertised_addr {
        Some(s) => {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("advertised.addr {s:?} is not HOST:PORT"))?;
            Ok((
                host.to_string(),
                port.parse().context("advertised.addr port")?,
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

/// The signal taken within `timeout`, if any, and the pid that sent it.
fn wait_signal(set: &libc::sigset_t, timeout: Duration) -> Option<(i32, i32)> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` is initialised; `info` is a zeroed siginfo the call fills in.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let sig = libc::sigtimedwait(set, &mut info, &ts);
        (sig > 0).then(|| (sig, info.si_pid()))
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let a = settings(&args)?;
    let data_dir = a
        .data_dir
        .clone()
        .ok_or_else(|| anyhow!("no data directory: pass --data-dir or set data.dir in --config"))?;
    let io_tuning = serve_io::load(&a.io_properties, &data_dir)?;
    let (log_base, io_line) = serve_io::apply(io_tuning.as_ref(), LogConfig::default());
    let topic_defaults = a.topic_defaults(log_base)?;
    eprintln!("{io_line}");
    let signals = block_signals()?;
    let topology = topology();
    let placed = placement(&a, &topology)?;
    let shard_cores = placed.shard_cpus.clone();
    let described: Vec<String> = shard_cores.iter().map(|c| topology.describe(*c)).collect();
    eprintln!(
        "weir: shards on {}; embedded coordinator (if any) on {}",
        described.join(", "),
        topology.describe(placed.coord_cpu)
    );
    // Held until the shards listen, so no other process is handed the same port meanwhile.
    let reserved = shard::reserve_port(a.kafka_addr).context("reserving kafka.addr")?;
    let listen = reserved.addr;
    let (host, port) = advertised(&a, listen)?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;

    let mut embedded = None;
    let coord_servers = match &a.coord_servers {
        Some(servers) => servers.clone(),
        None => {
            let core = placed.coord_cpu;
            let mut ccfg = coord::server::ServerConfig::new(
                1,
                data_dir.join("coord"),
                "127.0.0.1:0".to_string(),
            );
            ccfg.core = Some(core);
            ccfg.zk_listen = a.coord_zk_addr.clone();
            let node = coord::server::start_embedded_with(ccfg)
                .map_err(|e| anyhow!("starting the embedded coordinator: {e}"))?;
            let addr = node.addr.to_string();
            tracing::info!(%addr, core, zk = ?node.zk_addr, "embedded coordinator started");
            if let Some(zk) = node.zk_addr {
                eprintln!("weir: embedded coordinator serves ZooKeeper clients on {zk}");
            }
            embedded = Some(node);
            vec![addr]
        }
    };

    let mut cfg = BrokerConfig::new(data_dir.join("logs"), coord_servers.clone());
    cfg.node_id = a.node_id;
    cfg.rack = a.rack.clone();
    cfg.advertised_host = host.clone();
    cfg.advertised_port = port;
    cfg.num_partitions = a.num_partitions;
    cfg.auto_create_topics = a.auto_create_topics;
    cfg.retention_check_interval_ms = a.retention_check_interval_ms;
    cfg.producer_id_expiration_ms = a.producer_id_expiration_ms;
    cfg.offsets_retention_minutes = a.offsets_retention_minutes;
    cfg.offsets_retention_check_interval_ms = a.offsets_retention_check_interval_ms;
    cfg.offsets_topic_segment_bytes = a.offsets_topic_segment_bytes;
    cfg.group_initial_rebalance_delay_ms = a.group_initial_rebalance_delay_ms;
    cfg.topic_defaults = topic_defaults;
    let shards = shard::start(
        ShardsConfig {
            cores: shard_cores.clone(),
            io_memory_bytes: a.io_memory_bytes,
            kafka_addr: listen,
            request_bytes_max: a.socket_request_max_bytes,
            channel_jobs_max: 1024,
            connections_max: a.shard_connections_max,
        },
        broker::builder(cfg),
    );
    drop(reserved);
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
        if let Some((sig, from_pid)) = wait_signal(&signals, Duration::from_millis(200)) {
            tracing::info!(signal = sig, from_pid, "stopping");
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
    // Each wait is bounded: past its limit the process says what it waited for and exits
    // non-zero (logs not closed are recovered at the next start) instead of hanging.
    let shards_stopped = within(SHARDS_STOP_LIMIT, "the shards to stop", move || {
        shards.stop()
    });
    let coord_stopped = match embedded {
        Some(node) => within(
            COORD_STOP_LIMIT,
            "the embedded coordinator to stop",
            move || node.stop(),
        ),
        None => Ok(()),
    };
    for e in [shards_stopped.as_ref().err(), coord_stopped.as_ref().err()]
        .into_iter()
        .flatten()
    {
        tracing::error!("{e:#}");
    }
    if let Some(f) = failure {
        return Err(f);
    }
    let errors = shards_stopped?;
    coord_stopped?;
    if !errors.is_empty() {
        bail!("unclean shutdown: {}", errors.join("; "));
    }
    eprintln!("weir: stopped cleanly");
    Ok(())
}

/// How long the shards may take to stop (each stops accepting, then closes, flushes and syncs its
/// logs) before `weir serve` gives up on them and exits non-zero.
const SHARDS_STOP_LIMIT: Duration = Duration::from_secs(20);
/// How long the embedded coordinator may take to stop, after the shards.
const COORD_STOP_LIMIT: Duration = Duration::from_secs(5);

/// Runs `work` on a thread of its own and waits at most `limit` for it; past that, an error
/// naming `what` (the thread is left behind: the process is about to exit).
fn within<T: Send + 'static>(
    limit: Duration,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("weir-stop".into())
        .spawn(move || {
            let _ = tx.send(work());
        })
        .with_context(|| format!("starting a thread to wait for {what}"))?;
    rx.recv_timeout(limit)
        .map_err(|_| anyhow!("waited {} s for {what}; giving up", limit.as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn from_flags(flags: &[&str]) -> anyhow::Result<Settings> {
        let cli = Cli::try_parse_from(std::iter::once("weir").chain(flags.iter().copied()))?;
        settings(&cli.serve)
    }

    /// Every flag and its file key refuse and accept the same values (they disagreed on 0 for
    /// socket.request.max.bytes and io.memory.bytes when each had its own checks).
    #[test]
    fn a_flag_and_its_file_key_accept_and_refuse_the_same_values() {
        for (flag, key, value) in [
            (
                "--socket-request-max-bytes",
                "socket.request.max.bytes",
                "0",
            ),
            ("--io-memory-bytes", "io.memory.bytes", "0"),
            ("--shard-connections-max", "shard.connections.max", "0"),
            ("--num-partitions", "num.partitions", "0"),
            ("--shards", "shards", "0"),
            (
                "--log-retention-check-interval-ms",
                "log.retention.check.interval.ms",
                "0",
            ),
            (
                "--offsets-retention-minutes",
                "offsets.retention.minutes",
                "0",
            ),
            (
                "--offsets-topic-segment-bytes",
                "offsets.topic.segment.bytes",
                "13",
            ),
            ("--log-segment-bytes", "log.segment.bytes", "0"),
            ("--advertised-addr", "advertised.addr", "\"nohost\""),
            (
                "--socket-request-max-bytes",
                "socket.request.max.bytes",
                "1048576",
            ),
            ("--num-partitions", "num.partitions", "4"),
            ("--log-retention-ms", "log.retention.ms", "-1"),
            ("--advertised-addr", "advertised.addr", "\"broker-1:9092\""),
            ("--broker-rack", "broker.rack", "\"us-east-1a\""),
            ("--broker-rack", "broker.rack", "\"\""),
            ("--broker-rack", "broker.rack", "\"us east\""),
            (
                "--io-properties",
                "io.properties.file",
                "\"/etc/weir/io.toml\"",
            ),
            ("--io-properties", "io.properties.file", "\"none\""),
            ("--io-properties", "io.properties.file", "\"\""),
        ] {
            let file = Settings::from_toml(&format!("{key} = {value}"));
            let flag_value = value.trim_matches('"');
            let flags = from_flags(&[flag, flag_value]);
            match (&file, &flags) {
                (Ok(f), Ok(g)) => assert_eq!(f, g, "{key} = {value}"),
                (Err(f), Err(g)) => {
                    assert!(format!("{f:#}").contains(key), "{f:#}");
                    assert!(format!("{g:#}").contains(key), "{g:#}");
                    assert!(
                        format!("{g:#}").contains(flag.trim_start_matches('-')),
                        "{g:#}"
                    );
                }
                _ => panic!(
                    "{key} = {value}: the file says {:?}, the flag {:?}",
                    file.as_ref().map(|_| "ok").map_err(|e| format!("{e:#}")),
                    flags.as_ref().map(|_| "ok").map_err(|e| format!("{e:#}"))
                ),
            }
        }
    }

    #[test]
    fn a_flag_overrides_the_file_and_defaults_are_the_brokers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.toml");
        std::fs::write(&path, "num.partitions = 3\nlog.retention.ms = 1000\n").unwrap();
        let s = from_flags(&["--config", path.to_str().unwrap(), "--num-partitions", "5"]).unwrap();
        assert_eq!(s.num_partitions, 5);
        assert_eq!(s.topic_defaults["retention.ms"], "1000");
        let broker = BrokerConfig::new(PathBuf::new(), Vec::new());
        let d = from_flags(&[]).unwrap();
        assert_eq!(d.num_partitions, broker.num_partitions);
        assert_eq!(
            d.producer_id_expiration_ms,
            broker.producer_id_expiration_ms
        );
        assert_eq!(
            d.offsets_topic_segment_bytes,
            broker.offsets_topic_segment_bytes
        );
    }
}
