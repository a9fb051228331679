//! coord_load — the coordinator benchmark over weir's native protocol (`weir coord bench`):
//! `clients` sessions through `coord::client`, each a closed loop doing one op at a time (set,
//! sequential create, get, or ping — answered by the leader without Raft or disk, which shows how
//! much load the client itself generates) for a fixed duration, with latency in an HDR histogram
//! and percentiles as the rest of bench reports them ([`crate::report::Percentiles`]). Optionally
//! `kill -9` of the leader (found with weir's Status request) part-way through, and the longest
//! stretch after it in which no op succeeded (1 ms resolution, [`crate::zk_load::longest_gap_ms`]).
//!
//! Owns the load loop and its report. Must not parse argv or print (the cli does), and must not
//! speak the coordinator protocol itself: everything goes through `coord::client`.

use std::cell::RefCell;
use std::rc::Rc;
use std::str::FromStr;
use std::time::{Duration, Instant};

use coord::client::{Client, ClientConfig, ClientError};
use coord::proto::{CreateMode, Request, ZkError};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::progress::latency_histogram;
use crate::report::Percentiles;
use crate::zk_load::{longest_gap_ms, weir_leader};

/// Most sessions one run opens.
pub const CLIENTS_MAX: usize = 10_000;
/// Largest value a set or create writes.
pub const SIZE_BYTES_MAX: usize = 1024 * 1024;
/// Longest run (the failover measurement keeps one counter per millisecond).
pub const DURATION_MAX: Duration = Duration::from_secs(3_600);
/// Under this znode each client works on its own `ROOT/cN`.
pub const ROOT: &str = "/bench";

/// What each client does in its loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CoordOp {
    /// setData on the client's znode.
    Set,
    /// A persistent sequential create next to it.
    Create,
    /// getData of the client's znode.
    Get,
    /// A Ping: the leader answers without Raft or disk (the client's own ceiling).
    Ping,
}

impl FromStr for CoordOp {
    type Err = CoordLoadError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "set" => Ok(CoordOp::Set),
            "create" => Ok(CoordOp::Create),
            "get" => Ok(CoordOp::Get),
            "ping" => Ok(CoordOp::Ping),
            other => Err(CoordLoadError::UnknownOp(other.to_string())),
        }
    }
}

/// One run's parameters.
#[derive(Debug, Clone)]
pub struct CoordLoadConfig {
    /// Native coordinator addresses (`coord::client` follows the leader among them).
    pub servers: Vec<String>,
    pub op: CoordOp,
    pub clients: usize,
    /// Bytes each set or create writes.
    pub size_bytes: usize,
    pub duration: Duration,
    /// `kill -9` the leader this long into the run (same machine only).
    pub kill_leader_at: Option<Duration>,
    /// Core to pin the client's one executor to.
    pub core: Option<usize>,
    /// Per-request timeout of each client session.
    pub request_timeout: Duration,
}

impl CoordLoadConfig {
    pub fn new(servers: Vec<String>, op: CoordOp) -> CoordLoadConfig {
        CoordLoadConfig {
            servers,
            op,
            clients: 1,
            size_bytes: 1024,
            duration: Duration::from_secs(5),
            kill_leader_at: None,
            core: None,
            request_timeout: Duration::from_secs(5),
        }
    }

    fn check(&self) -> Result<(), CoordLoadError> {
        let bad = |m: &str| Err(CoordLoadError::Config(m.to_string()));
        if self.servers.is_empty() {
            return bad("no servers");
        }
        if self.clients == 0 || self.clients > CLIENTS_MAX {
            return bad("clients must be between 1 and 10000");
        }
        if self.size_bytes > SIZE_BYTES_MAX {
            return bad("size is at most 1 MiB");
        }
        if self.duration.is_zero() || self.duration > DURATION_MAX {
            return bad("duration must be more than 0 and at most an hour");
        }
        if self.kill_leader_at.is_some_and(|k| k >= self.duration) {
            return bad("kill-leader-at must fall inside the duration");
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CoordLoadError {
    #[error("bad configuration: {0}")]
    Config(String),
    #[error("unknown op {0:?} (set, create, get or ping)")]
    UnknownOp(String),
    #[error("setting up {what}: {source}")]
    Setup { what: String, source: ClientError },
    #[error("executor: {0}")]
    Executor(String),
    #[error("no leader to kill among {0:?}")]
    NoLeader(Vec<String>),
    #[error("kill -9 {pid}: {source}")]
    Kill { pid: u32, source: std::io::Error },
}

/// The leader the run killed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KilledLeader {
    pub id: u64,
    pub pid: u32,
}

/// What `weir coord bench` prints (one JSON object).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CoordLoadReport {
    pub op: CoordOp,
    pub clients: usize,
    pub size: usize,
    /// Successful ops (all of them: there is no warm-up).
    pub ops: u64,
    pub errors: u64,
    /// From the first client's start to the last client's end.
    pub seconds: f64,
    pub ops_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub killed_leader: Option<KilledLeader>,
    /// The longest stretch after the kill without a successful op, 1 ms resolution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_gap_after_kill_ms: Option<f64>,
    /// Successful ops after the kill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_after_kill: Option<u64>,
}

/// What the clients record, shared on the one executor.
struct Samples {
    latency_us: Histogram<u64>,
    /// Successful ops per millisecond since the start (the last slot takes any later ones).
    per_ms: Vec<u32>,
    errors: u64,
}

impl Samples {
    fn success(&mut self, latency: Duration, since_start: Duration) {
        let us = (latency.as_micros() as u64).clamp(1, 3_600_000_000);
        // Clamped into the histogram's bounds, so recording cannot fail.
        let _ = self.latency_us.record(us);
        let last = self.per_ms.len() - 1;
        let slot = (since_start.as_millis() as usize).min(last);
        self.per_ms[slot] = self.per_ms[slot].saturating_add(1);
    }
}

/// Runs the benchmark on one glommio executor (pinned to `core` if given) and reports.
pub fn run(cfg: CoordLoadConfig) -> Result<CoordLoadReport, CoordLoadError> {
    cfg.check()?;
    let placement = match cfg.core {
        Some(c) => glommio::Placement::Fixed(c),
        None => glommio::Placement::Unbound,
    };
    glommio::LocalExecutorBuilder::new(placement)
        .io_memory(1 << 20)
        .make()
        .map_err(|e| CoordLoadError::Executor(e.to_string()))?
        .run(measure(cfg))
}

async fn ensure(c: &Client, path: &str, data: &[u8]) -> Result<(), CoordLoadError> {
    match c.create(path, data, CreateMode::Persistent).await {
        Ok(_) | Err(ClientError::Zk(ZkError::NodeExists)) => Ok(()),
        Err(source) => Err(CoordLoadError::Setup {
            what: path.to_string(),
            source,
        }),
    }
}

async fn measure(cfg: CoordLoadConfig) -> Result<CoordLoadReport, CoordLoadError> {
    let payload = Rc::new(vec![b'x'; cfg.size_bytes]);
    let setup = Client::connect(ClientConfig::new(cfg.servers.clone()))
        .await
        .map_err(|source| CoordLoadError::Setup {
            what: "a session".into(),
            source,
        })?;
    ensure(&setup, ROOT, b"").await?;
    let samples = Rc::new(RefCell::new(Samples {
        latency_us: latency_histogram(),
        per_ms: vec![0; cfg.duration.as_millis() as usize + 1],
        errors: 0,
    }));
    let start = Instant::now();
    let end = start + cfg.duration;
    let mut tasks = Vec::new();
    for i in 0..cfg.clients {
        let path = format!("{ROOT}/c{i}");
        ensure(&setup, &path, &payload).await?;
        let mut session = ClientConfig::new(cfg.servers.clone());
        session.session_timeout_ms = 0;
        session.request_timeout_ms = cfg.request_timeout.as_millis() as u64;
        let c = Client::connect(session)
            .await
            .map_err(|source| CoordLoadError::Setup {
                what: format!("client {i}"),
                source,
            })?;
        let (payload, samples, op) = (payload.clone(), samples.clone(), cfg.op);
        tasks.push(glommio::spawn_local(async move {
            let sequential = format!("{path}-");
            while Instant::now() < end {
                let t0 = Instant::now();
                let r = match op {
                    CoordOp::Create => c
                        .create(&sequential, &payload, CreateMode::PersistentSequential)
                        .await
                        .map(|_| ()),
                    CoordOp::Get => c.get(&path).await.map(|_| ()),
                    CoordOp::Ping => c.call(Request::Ping).await.map(|_| ()),
                    CoordOp::Set => c.set(&path, &payload, -1).await.map(|_| ()),
                };
                let mut s = samples.borrow_mut();
                match r {
                    Ok(()) => s.success(t0.elapsed(), start.elapsed()),
                    Err(_) => s.errors += 1,
                }
            }
        }));
    }
    let mut killed = None;
    if let Some(at) = cfg.kill_leader_at {
        glommio::timer::sleep(at.saturating_sub(start.elapsed())).await;
        let (_, leader) = weir_leader(&cfg.servers)
            .await
            .ok_or_else(|| CoordLoadError::NoLeader(cfg.servers.clone()))?;
        kill(leader.pid)?;
        killed = Some((
            KilledLeader {
                id: leader.id,
                pid: leader.pid,
            },
            start.elapsed(),
        ));
    }
    for t in tasks {
        t.await;
    }
    let seconds = start.elapsed().as_secs_f64();
    let s = samples.borrow();
    let ops = s.latency_us.len();
    let p = Percentiles::of(&s.latency_us);
    let (killed_leader, gap, after) = match killed {
        Some((leader, at)) => {
            let from = at.as_millis() as usize;
            let after: u64 = s.per_ms.iter().skip(from).map(|n| u64::from(*n)).sum();
            let gap = longest_gap_ms(&s.per_ms, from) as f64;
            (Some(leader), Some(gap), Some(after))
        }
        None => (None, None, None),
    };
    Ok(CoordLoadReport {
        op: cfg.op,
        clients: cfg.clients,
        size: cfg.size_bytes,
        ops,
        errors: s.errors,
        seconds,
        ops_per_s: ops as f64 / seconds,
        p50_ms: p.p50,
        p99_ms: p.p99,
        p999_ms: p.p99_9,
        max_ms: p.max,
        killed_leader,
        write_gap_after_kill_ms: gap,
        writes_after_kill: after,
    })
}

/// `kill -9 pid`.
fn kill(pid: u32) -> Result<(), CoordLoadError> {
    let bad = |source| CoordLoadError::Kill { pid, source };
    let target = i32::try_from(pid)
        .map_err(|_| bad(std::io::Error::from(std::io::ErrorKind::InvalidInput)))?;
    // SAFETY: plain kill(2) on a pid the leader reported; no memory is involved.
    let rc = unsafe { libc::kill(target, libc::SIGKILL) };
    if rc != 0 {
        return Err(bad(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_parse_and_an_unknown_one_is_refused() {
        assert_eq!("create".parse::<CoordOp>().ok(), Some(CoordOp::Create));
        assert_eq!("ping".parse::<CoordOp>().ok(), Some(CoordOp::Ping));
        let err = "sett".parse::<CoordOp>().expect_err("unknown op");
        assert!(err.to_string().contains("\"sett\""), "{err}");
    }

    #[test]
    fn config_errors_are_reported() {
        let ok = CoordLoadConfig::new(vec!["127.0.0.1:1".into()], CoordOp::Set);
        let mut c = ok.clone();
        c.clients = 0;
        assert!(matches!(c.check(), Err(CoordLoadError::Config(_))));
        let mut c = ok.clone();
        c.kill_leader_at = Some(c.duration);
        assert!(matches!(c.check(), Err(CoordLoadError::Config(_))));
        let mut c = ok.clone();
        c.size_bytes = SIZE_BYTES_MAX + 1;
        assert!(matches!(c.check(), Err(CoordLoadError::Config(_))));
        let mut c = ok;
        c.servers.clear();
        assert!(matches!(run(c), Err(CoordLoadError::Config(_))));
    }

    #[test]
    fn samples_count_per_millisecond_and_clamp_late_ones() {
        let mut s = Samples {
            latency_us: latency_histogram(),
            per_ms: vec![0; 3],
            errors: 0,
        };
        s.success(Duration::from_micros(0), Duration::from_micros(1500));
        s.success(Duration::from_millis(2), Duration::from_secs(9));
        assert_eq!(s.per_ms, vec![0, 1, 1]);
        assert_eq!(s.latency_us.len(), 2);
        assert_eq!(s.latency_us.min(), 1);
    }
}
