//! Shards: one glommio executor per core, each owning a disjoint set of partitions, all listening
//! on the Kafka port with SO_REUSEPORT, talking to each other only by message passing.
//!
//! Owns: executor creation and pinning, the listener and its accept loop, and orderly stop; the
//! cross-shard channels and running work on another shard are `mesh`'s.
//! Must not: interpret requests (that is the `Service` the caller provides), share mutable state
//! between shards, take a lock on the request path, or hand a shard task's waker to another
//! thread (glommio 0.9 can free a task twice when a foreign thread drops its waker: see `mesh`;
//! so the stop signal is a flag the shard polls, not a channel the starting thread wakes).

pub mod conn;
mod mesh;
pub mod port_owner;

pub use conn::ConnContext;
pub use mesh::{Job, Mesh};

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

use wire::protocol::ProtocolError;

/// The completion stage of one request: resolves to its response (`None`: the request has no
/// response, e.g. Produce with acks=0); an error closes the connection.
/// A response as the shards write it: encoded bytes and the log's own buffers, sent without a copy.
pub type ResponseFrame = wire::protocol::ResponseFrame<storage::LogBytes>;

pub type Completion = LocalBoxFuture<'static, Result<Option<ResponseFrame>, ProtocolError>>;

/// What a shard runs: per-shard state that answers requests and owns its partitions.
pub trait Service: Sized + 'static {
    /// The dispatch stage of one request frame: parse it, start its work (locally or on other
    /// shards, in order) and return its completion. An error closes the connection.
    ///
    /// `conn` is the connection's context (peer, listener, principal), the same for every
    /// request of the connection.
    fn dispatch(
        self: Rc<Self>,
        frame: Bytes,
        conn: &Rc<ConnContext>,
    ) -> LocalBoxFuture<'static, Result<Completion, ProtocolError>>;
    /// Stops the shard's work: called once, after the listener stopped (e.g. closes every log).
    fn shutdown(self: Rc<Self>) -> LocalBoxFuture<'static, ()>;
}

/// Errors of the shard runtime.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("shard {0} has stopped")]
    Stopped(usize),
    #[error("starting shard {shard} on core {core}: {reason}")]
    Start {
        shard: usize,
        core: usize,
        reason: String,
    },
    #[error(
        "{addr}: another process listens on this port too (socket inodes {inodes:?}); \
         stop it or choose another --kafka-addr"
    )]
    PortShared { addr: SocketAddr, inodes: Vec<u64> },
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// How to run the shards.
#[derive(Debug, Clone)]
pub struct ShardsConfig {
    /// The core of each shard (its length is the number of shards).
    pub cores: Vec<usize>,
    /// glommio io_memory per shard (registered buffers; bounded by the memlock limit).
    pub io_memory_bytes: usize,
    /// Where every shard listens (SO_REUSEPORT). Port 0 is resolved to one free port first.
    pub kafka_addr: SocketAddr,
    /// Kafka's socket.request.max.bytes.
    pub request_bytes_max: usize,
    /// Capacity of each cross-shard channel (jobs).
    pub channel_jobs_max: usize,
    /// Client connections each shard serves at once; a connection accepted beyond it is closed
    /// at once (and logged), so a connection storm cannot exhaust a shard's memory or fds.
    pub connections_max: usize,
}

/// Default of `ShardsConfig::connections_max` (`shard.connections.max`).
pub const CONNECTIONS_MAX_DEFAULT: usize = 10_000;

/// What shards report to the thread that started them.
#[derive(Debug)]
pub enum ShardEvent {
    Ready { shard: usize, addr: SocketAddr },
    Exited { shard: usize, error: Option<String> },
}

/// How often a shard looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(10);

/// Running shards. Dropping the set stops them too (without waiting for them).
pub struct ShardSet {
    pub addr: SocketAddr,
    /// Set to stop every shard: a flag each shard polls, so no waker of a shard's task is woken
    /// from this thread (see `mesh`).
    stop: Arc<AtomicBool>,
    threads: Vec<glommio::ExecutorJoinHandle<()>>,
    events: mpsc::Receiver<ShardEvent>,
}

impl ShardSet {
    /// The next event, if one arrived.
    pub fn try_event(&self) -> Option<ShardEvent> {
        self.events.try_recv().ok()
    }

    /// Stops every shard (each stops accepting, then shuts its service down) and waits for them.
    pub fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Release);
        let mut errors = Vec::new();
        for t in self.threads.drain(..) {
            if let Err(e) = t.join() {
                errors.push(e.to_string());
            }
        }
        while let Ok(ev) = self.events.try_recv() {
            if let ShardEvent::Exited {
                shard,
                error: Some(e),
            } = ev
            {
                errors.push(format!("shard {shard}: {e}"));
            }
        }
        errors
    }
}

impl Drop for ShardSet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// Resolves once `stop` is set.
async fn stopped(stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        glommio::timer::sleep(STOP_POLL).await;
    }
}

/// A concrete port for every shard to bind, held until they have: a port-0 address becomes a free
/// port taken by a bound (never listening) SO_REUSEPORT socket, so no other process's port-0 bind
/// can be handed the same port in the meantime.
pub struct PortReservation {
    pub addr: SocketAddr,
    _holder: Option<socket2::Socket>,
}

/// Reserves `addr`'s port, choosing one if it is 0. Keep the reservation until `start` returns.
pub fn reserve_port(addr: SocketAddr) -> Result<PortReservation, ShardError> {
    if addr.port() != 0 {
        return Ok(PortReservation {
            addr,
            _holder: None,
        });
    }
    let bind_err = |source| ShardError::Bind { addr, source };
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .map_err(bind_err)?;
    // The shards' listeners (SO_REUSEPORT) may only join a port whose holder allows it too.
    socket.set_reuse_port(true).map_err(bind_err)?;
    socket.bind(&addr.into()).map_err(bind_err)?;
    let local = socket.local_addr().map_err(bind_err)?;
    let addr = local.as_socket().ok_or_else(|| {
        bind_err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bound address is not an IP address",
        ))
    })?;
    Ok(PortReservation {
        addr,
        _holder: Some(socket),
    })
}

/// Starts one executor per entry of `cfg.cores`. `build` makes each shard's service (on that
/// shard, with its mesh); the shard then listens and serves connections until stopped. Returns
/// once every shard is listening (or the first failure).
pub fn start<S, B>(cfg: ShardsConfig, build: B) -> Result<ShardSet, ShardError>
where
    S: Service,
    B: Fn(Mesh<S>) -> LocalBoxFuture<'static, Result<Rc<S>, String>> + Send + Sync + 'static,
{
    let count = cfg.cores.len();
    let reservation = reserve_port(cfg.kafka_addr)?;
    let addr = reservation.addr;
    let build = Arc::new(build);
    let (events_tx, events) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (shard, ends) in mesh::mesh_ends::<S>(count, cfg.channel_jobs_max)
        .into_iter()
        .enumerate()
    {
        let core = cfg.cores[shard];
        let stop = stop.clone();
        let build = build.clone();
        let events_tx = events_tx.clone();
        let request_bytes_max = cfg.request_bytes_max;
        let connections_max = cfg.connections_max;
        let handle = LocalExecutorBuilder::new(Placement::Fixed(core))
            .name(&format!("weir-shard-{shard}"))
            .io_memory(cfg.io_memory_bytes)
            .spawn(move || async move {
                let error = run_shard(
                    shard,
                    addr,
                    request_bytes_max,
                    connections_max,
                    ends,
                    build,
                    &stop,
                    &events_tx,
                )
                .await
                .err();
                if let Some(e) = &error {
                    tracing::error!(shard, "shard failed: {e}");
                }
                let _ = events_tx.send(ShardEvent::Exited { shard, error });
            })
            .map_err(|e| ShardError::Start {
                shard,
                core,
                reason: e.to_string(),
            })?;
        threads.push(handle);
    }
    let set = ShardSet {
        addr,
        stop,
        threads,
        events,
    };
    let mut ready = 0;
    while ready < count {
        match set.events.recv() {
            Ok(ShardEvent::Ready { .. }) => ready += 1,
            Ok(ShardEvent::Exited { shard, error }) => {
                let reason = error.unwrap_or_else(|| "exited during start".into());
                let core = cfg.cores[shard];
                let _ = set.stop();
                return Err(ShardError::Start {
                    shard,
                    core,
                    reason,
                });
            }
            Err(_) => {
                return Err(ShardError::Start {
                    shard: 0,
                    core: cfg.cores[0],
                    reason: "shards vanished during start".into(),
                })
            }
        }
    }
    // SO_REUSEPORT lets another process of this user join the port instead of failing to bind.
    let foreign = port_owner::foreign_listeners(addr);
    if !foreign.is_empty() {
        let _ = set.stop();
        return Err(ShardError::PortShared {
            addr,
            inodes: foreign.iter().map(|l| l.inode).collect(),
        });
    }
    // Every shard listens on the port now; the holder can let go of it.
    drop(reservation);
    Ok(set)
}

#[allow(clippy::too_many_arguments)]
async fn run_shard<S, B>(
    shard: usize,
    addr: SocketAddr,
    request_bytes_max: usize,
    connections_max: usize,
    ends: mesh::MeshEnds<S>,
    build: Arc<B>,
    stop: &AtomicBool,
    events: &mpsc::Sender<ShardEvent>,
) -> Result<(), String>
where
    S: Service,
    B: Fn(Mesh<S>) -> LocalBoxFuture<'static, Result<Rc<S>, String>> + Send + Sync + 'static,
{
    let (mesh, inbound) = mesh::connect(ends).await;
    let service = build(mesh).await?;
    let tasks = mesh::serve(shard, &service, inbound);
    let listener = TcpListener::bind(addr).map_err(|e| format!("binding {addr}: {e}"))?;
    let _ = events.send(ShardEvent::Ready { shard, addr });
    tracing::info!(shard, %addr, "shard listening");
    let accept = {
        let service = service.clone();
        let live = Rc::new(std::cell::Cell::new(0usize));
        glommio::spawn_local(async move {
            loop {
                match listener.accept().await {
                    Ok(stream) if live.get() >= connections_max => {
                        tracing::warn!(
                            shard,
                            connections_max,
                            peer = ?stream.peer_addr().ok(),
                            "connection refused: the shard serves its maximum of connections"
                        );
                        drop(stream);
                    }
                    Ok(stream) => {
                        let service = service.clone();
                        let live = live.clone();
                        live.set(live.get() + 1);
                        glommio::spawn_local(async move {
                            conn::serve(stream, service, request_bytes_max).await;
                            let open = live.get();
                            assert!(open > 0, "live connection count underflow");
                            live.set(open - 1);
                        })
                        .detach();
                    }
                    Err(e) => {
                        tracing::warn!(shard, "accept failed: {e}");
                        glommio::timer::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        })
    };
    stopped(stop).await;
    tracing::info!(shard, "shard stopping");
    drop(accept);
    service.shutdown().await;
    drop(tasks);
    Ok(())
}
