//! `weir coord`: run a coordinator node, talk to one (get/set/create/ls/rm/stat/watch), and
//! benchmark an ensemble.
//!
//! Owns: argv parsing for the coordinator and printing. Must not: implement coordinator logic
//! (everything goes through `coord::server` and `coord::client`) or measure: the benchmark is
//! `bench::coord_load`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bench::coord_load::{self, CoordLoadConfig, CoordOp};
use clap::{Args, Subcommand};
use coord::client::{request_once, Client, ClientConfig};
use coord::proto::{CreateMode, NodeStatus, Request, Response, Stat, ZkError};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CoordArgs {
    #[command(subcommand)]
    cmd: Option<CoordCmd>,
    #[command(flatten)]
    serve: ServeArgs,
}

/// Run a node: `weir coord --id N --data-dir DIR --listen ADDR --peers 1=ADDR,2=ADDR,3=ADDR`.
#[derive(Debug, Args)]
struct ServeArgs {
    /// This node's Raft id (>= 1).
    #[arg(long, default_value_t = 1)]
    id: u64,
    /// Directory for the WAL and snapshots.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address for weir's own protocol: weir clients (`weir coord get ...`, the broker) and
    /// peers.
    #[arg(long, default_value = "127.0.0.1:2281")]
    listen: String,
    /// Address for ZooKeeper clients (jute protocol; kazoo, zkCli, Curator ...). Every node of
    /// an ensemble serves it; writes received by a follower are forwarded to the leader.
    #[arg(long, default_value = "127.0.0.1:2181")]
    zk_addr: String,
    /// Do not serve the ZooKeeper protocol.
    #[arg(long)]
    no_zk: bool,
    /// ZooKeeper `tickTime` in ms: negotiated session timeouts are clamped to 2–20 ticks.
    #[arg(long, default_value_t = 2000)]
    zk_tick_ms: u64,
    /// All members of a new ensemble, `ID=ADDR,...` with their --listen addresses (omit for a
    /// single node).
    #[arg(long)]
    peers: Option<String>,
    /// Start empty and wait to be added with `weir coord add-node`.
    #[arg(long)]
    join: bool,
    /// Core to pin the node to (first of a comma list).
    #[arg(long)]
    cores: Option<String>,
    #[arg(long, default_value_t = 25)]
    tick_ms: u64,
    #[arg(long, default_value_t = 12)]
    election_tick: usize,
    #[arg(long, default_value_t = 10_000)]
    snapshot_entries: u64,
}

#[derive(Debug, Args)]
struct Target {
    /// Server address(es), comma separated.
    #[arg(long, default_value = "127.0.0.1:2281")]
    server: String,
}

#[derive(Debug, Subcommand)]
enum CoordCmd {
    /// Print a znode's data.
    Get {
        #[command(flatten)]
        t: Target,
        path: String,
    },
    /// Set a znode's data (compare-and-set with --version).
    Set {
        #[command(flatten)]
        t: Target,
        path: String,
        data: String,
        #[arg(long, default_value_t = -1)]
        version: i32,
    },
    /// Create a znode; prints its path.
    Create {
        #[command(flatten)]
        t: Target,
        path: String,
        #[arg(default_value = "")]
        data: String,
        /// Ephemeral: lives as long as this command's session (it expires after it exits).
        #[arg(long, short)]
        ephemeral: bool,
        #[arg(long, short)]
        sequential: bool,
        /// Session timeout for an ephemeral node.
        #[arg(long, default_value_t = 5_000)]
        session_ms: u64,
    },
    /// List children.
    Ls {
        #[command(flatten)]
        t: Target,
        path: String,
    },
    /// Delete a znode.
    Rm {
        #[command(flatten)]
        t: Target,
        path: String,
        #[arg(long, default_value_t = -1)]
        version: i32,
    },
    /// Print a znode's stat as JSON.
    Stat {
        #[command(flatten)]
        t: Target,
        path: String,
    },
    /// Print events on a znode (data, or children with --children), re-arming each time.
    Watch {
        #[command(flatten)]
        t: Target,
        path: String,
        #[arg(long)]
        children: bool,
        /// Exit after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Print one node's status as JSON (asks exactly that node).
    Status {
        #[command(flatten)]
        t: Target,
    },
    /// Add a member (run the new node with --join first).
    AddNode {
        #[command(flatten)]
        t: Target,
        #[arg(long)]
        id: u64,
        #[arg(long)]
        addr: String,
    },
    /// Remove a member.
    RemoveNode {
        #[command(flatten)]
        t: Target,
        #[arg(long)]
        id: u64,
    },
    /// Ask the leader to hand leadership to `--id`.
    TransferLeader {
        #[command(flatten)]
        t: Target,
        #[arg(long)]
        id: u64,
    },
    /// Benchmark: concurrent clients doing one op each at a time.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct BenchArgs {
    #[command(flatten)]
    t: Target,
    /// set | create | get | ping (null sink: no Raft, no disk)
    #[arg(long, default_value = "set")]
    op: CoordOp,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    #[arg(long, default_value_t = 1024)]
    size: usize,
    #[arg(long, default_value_t = 5.0)]
    duration_s: f64,
    /// kill -9 the leader (same machine) this many seconds in, and report the write gap.
    #[arg(long)]
    kill_leader_at_s: Option<f64>,
    /// Core to pin the benchmark client to.
    #[arg(long)]
    core: Option<usize>,
}

pub fn run(args: CoordArgs) -> anyhow::Result<()> {
    match args.cmd {
        None => serve(args.serve),
        Some(cmd) => client_cmd(cmd),
    }
}

fn parse_peers(s: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut m = BTreeMap::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .ok_or_else(|| anyhow!("--peers entry {part:?} is not ID=ADDR"))?;
        let id: u64 = id.trim().parse().context("peer id")?;
        m.insert(id, addr.trim().to_string());
    }
    Ok(m)
}

fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let dir = a
        .data_dir
        .ok_or_else(|| anyhow!("--data-dir is required"))?;
    let mut cfg = coord::server::ServerConfig::new(a.id, dir, a.listen);
    if let Some(p) = &a.peers {
        cfg.peers = parse_peers(p)?;
        if cfg.peers.len() & 1 == 0 {
            eprintln!(
                "warning: an even number of members tolerates no more failures than one fewer"
            );
        }
    }
    cfg.join = a.join;
    cfg.core = match &a.cores {
        Some(c) => Some(
            c.split(',')
                .next()
                .unwrap_or("")
                .trim()
                .parse()
                .context("--cores")?,
        ),
        None => None,
    };
    cfg.tick_ms = a.tick_ms;
    cfg.election_tick = a.election_tick;
    cfg.snapshot_entries = a.snapshot_entries;
    cfg.zk_listen = (!a.no_zk).then_some(a.zk_addr);
    cfg.zk_tick_ms = a.zk_tick_ms.max(1);
    coord::server::run(cfg)?;
    Ok(())
}

fn block_on<T: 'static>(
    f: impl std::future::Future<Output = anyhow::Result<T>> + 'static,
) -> anyhow::Result<T> {
    let ex = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1024 * 1024)
        .make()
        .map_err(|e| anyhow!("glommio executor: {e}"))?;
    ex.run(f)
}

fn servers(t: &Target) -> Vec<String> {
    t.server.split(',').map(|s| s.trim().to_string()).collect()
}

async fn connect(t: &Target, session_ms: u64) -> anyhow::Result<Client> {
    let mut cfg = ClientConfig::new(servers(t));
    cfg.session_timeout_ms = session_ms;
    Ok(Client::connect(cfg).await?)
}

fn stat_json(s: &Stat) -> serde_json::Value {
    serde_json::json!({
        "czxid": s.czxid, "mzxid": s.mzxid, "pzxid": s.pzxid,
        "ctime_ms": s.ctime_ms, "mtime_ms": s.mtime_ms,
        "version": s.version, "cversion": s.cversion,
        "ephemeral_owner": s.ephemeral_owner,
        "data_length": s.data_length, "num_children": s.num_children,
    })
}

fn status_json(s: &NodeStatus) -> serde_json::Value {
    serde_json::json!({
        "id": s.id, "leader": s.leader, "term": s.term, "commit": s.commit,
        "applied": s.applied, "is_leader": s.is_leader, "znodes": s.znodes,
        "sessions": s.sessions, "pid": s.pid,
        "members": s.members.iter().map(|(i, a)| serde_json::json!({"id": i, "addr": a})).collect::<Vec<_>>(),
    })
}

fn client_cmd(cmd: CoordCmd) -> anyhow::Result<()> {
    if let CoordCmd::Bench(b) = cmd {
        return bench(b);
    }
    block_on(async move {
        match cmd {
            CoordCmd::Get { t, path } => {
                let (data, _) = connect(&t, 0).await?.get(&path).await?;
                println!("{}", String::from_utf8_lossy(&data));
            }
            CoordCmd::Set {
                t,
                path,
                data,
                version,
            } => {
                let st = connect(&t, 0)
                    .await?
                    .set(&path, data.as_bytes(), version)
                    .await?;
                println!("{}", stat_json(&st));
            }
            CoordCmd::Create {
                t,
                path,
                data,
                ephemeral,
                sequential,
                session_ms,
            } => {
                let mode = match (ephemeral, sequential) {
                    (false, false) => CreateMode::Persistent,
                    (true, false) => CreateMode::Ephemeral,
                    (false, true) => CreateMode::PersistentSequential,
                    (true, true) => CreateMode::EphemeralSequential,
                };
                let c = connect(&t, if ephemeral { session_ms } else { 0 }).await?;
                println!("{}", c.create(&path, data.as_bytes(), mode).await?);
            }
            CoordCmd::Ls { t, path } => {
                for n in connect(&t, 0).await?.children(&path).await? {
                    println!("{n}");
                }
            }
            CoordCmd::Rm { t, path, version } => {
                connect(&t, 0).await?.delete(&path, version).await?;
            }
            CoordCmd::Stat { t, path } => match connect(&t, 0).await?.exists(&path).await? {
                Some(s) => println!("{}", stat_json(&s)),
                None => bail!("{path}: {}", ZkError::NoNode),
            },
            CoordCmd::Watch {
                t,
                path,
                children,
                count,
            } => {
                let c = connect(&t, 10_000).await?;
                let mut n = 0;
                loop {
                    let w = if children {
                        c.children_watch(&path).await?.1
                    } else {
                        c.exists_watch(&path).await?.1
                    };
                    println!("armed {path}");
                    let ev = w.wait().await.ok_or_else(|| anyhow!("client closed"))?;
                    println!("{:?} {} {}", ev.kind, ev.path, ev.zxid);
                    n += 1;
                    if count.is_some_and(|c| n >= c) {
                        break;
                    }
                }
            }
            CoordCmd::Status { t } => {
                let addr = servers(&t).into_iter().next().unwrap_or_default();
                match request_once(&addr, Request::Status, Duration::from_secs(2)).await? {
                    Response::Status(s) => println!("{}", status_json(&s)),
                    r => bail!("unexpected reply {r:?}"),
                }
            }
            CoordCmd::AddNode { t, id, addr } => {
                connect(&t, 0)
                    .await?
                    .call(Request::AddNode { id, addr })
                    .await?;
            }
            CoordCmd::RemoveNode { t, id } => {
                connect(&t, 0)
                    .await?
                    .call(Request::RemoveNode { id })
                    .await?;
            }
            CoordCmd::TransferLeader { t, id } => {
                connect(&t, 0)
                    .await?
                    .call(Request::TransferLeader { id })
                    .await?;
            }
            CoordCmd::Bench(_) => {}
        }
        Ok(())
    })
}

/// `weir coord bench`: the flags into a `bench::coord_load` run, its report printed as one JSON
/// line (and the killed leader on stderr).
fn bench(b: BenchArgs) -> anyhow::Result<()> {
    let mut cfg = CoordLoadConfig::new(servers(&b.t), b.op);
    cfg.clients = b.clients;
    cfg.size_bytes = b.size;
    cfg.duration = Duration::try_from_secs_f64(b.duration_s)
        .with_context(|| format!("--duration-s {}: not a duration", b.duration_s))?;
    cfg.kill_leader_at = match b.kill_leader_at_s {
        Some(v) => Some(
            Duration::try_from_secs_f64(v)
                .with_context(|| format!("--kill-leader-at-s {v}: not a duration"))?,
        ),
        None => None,
    };
    cfg.core = b.core;
    let report = coord_load::run(cfg).with_context(|| format!("benchmarking {}", b.t.server))?;
    if let Some(k) = &report.killed_leader {
        eprintln!("killed leader {} (pid {})", k.id, k.pid);
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
