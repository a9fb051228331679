//! Micro-benchmark of the cross-shard hop: `mesh/round_trip` sends a job from shard 0 to shard 1
//! through `engine::shard::Mesh::call` (glommio shared channels both ways) and awaits its
//! answer — the cost a request pays when its partition lives on another shard.
//!
//! Each executor runs on its own thread and receives "run N iterations" commands from criterion's
//! thread (`iter_custom`), so only the work is timed. Needs `ulimit -l` ≥ a few MiB.

use std::rc::Rc;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use engine::shard::{self, Completion, Mesh, Service, ShardsConfig};
use futures::channel::mpsc as fmpsc;
use futures::future::LocalBoxFuture;
use futures::{FutureExt, StreamExt};

/// A command to an executor: run this many iterations, send back the time they took.
type Command = (u64, mpsc::Sender<Duration>);

fn run_on(tx: &fmpsc::UnboundedSender<Command>, iters: u64) -> Duration {
    let (reply, answer) = mpsc::channel();
    tx.unbounded_send((iters, reply)).expect("executor alive");
    answer.recv().expect("executor answered")
}

/// A shard service that answers no requests: the bench only uses its mesh.
struct MeshOnly {
    mesh: Mesh<MeshOnly>,
}

impl Service for MeshOnly {
    fn dispatch(
        self: Rc<Self>,
        _frame: Bytes,
        _conn: &Rc<engine::shard::ConnContext>,
    ) -> LocalBoxFuture<'static, Result<Completion, wire::protocol::ProtocolError>> {
        async { Err(wire::protocol::ProtocolError::Malformed("bench shard")) }.boxed_local()
    }

    fn shutdown(self: Rc<Self>) -> LocalBoxFuture<'static, ()> {
        async {}.boxed_local()
    }
}

fn mesh_round_trip(c: &mut Criterion) {
    let (tx, rx) = fmpsc::unbounded::<Command>();
    let rx = Arc::new(Mutex::new(Some(rx)));
    let cores = (0..2).map(|i| i % online_cores()).collect();
    let shards = shard::start(
        ShardsConfig {
            cores,
            io_memory_bytes: 1 << 20,
            kafka_addr: "127.0.0.1:0".parse().expect("address"),
            request_bytes_max: 1 << 20,
            channel_jobs_max: 128,
            connections_max: engine::shard::CONNECTIONS_MAX_DEFAULT,
        },
        move |mesh: Mesh<MeshOnly>| {
            let rx = rx.clone();
            async move {
                let me = Rc::new(MeshOnly { mesh });
                if me.mesh.shard_id() == 0 {
                    let mut commands = rx
                        .lock()
                        .map_err(|_| "poisoned".to_string())?
                        .take()
                        .ok_or("no command channel")?;
                    let driver = me.clone();
                    glommio::spawn_local(async move {
                        while let Some((iters, reply)) = commands.next().await {
                            let start = Instant::now();
                            for i in 0..iters {
                                let back = driver
                                    .mesh
                                    .call(&driver, 1, move |_| async move { i + 1 }.boxed_local())
                                    .await;
                                assert_eq!(back.ok(), Some(i + 1));
                            }
                            let _ = reply.send(start.elapsed());
                        }
                    })
                    .detach();
                }
                Ok(me)
            }
            .boxed_local()
        },
    )
    .expect("starting two shards");
    let mut group = c.benchmark_group("mesh");
    group.bench_function("round_trip", |b| b.iter_custom(|iters| run_on(&tx, iters)));
    group.finish();
    drop(tx);
    let errors = shards.stop();
    assert!(errors.is_empty(), "{errors:?}");
}

fn online_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(10);
    targets = mesh_round_trip
}
criterion_main!(benches);
