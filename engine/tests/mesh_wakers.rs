//! A cross-shard call wakes its caller on the caller's own shard, never from the answering
//! shard's thread.
//!
//! glommio 0.9 frees a task twice when a foreign thread drops the task's last waker while the
//! task's `JoinHandle` is dropped on its own shard (the broker died with `free(): double free
//! detected in tcache 2` during a tuning sweep; see `engine/src/shard/mesh.rs`). Every request's
//! completion is such a task, so `Mesh` must keep each waker on its own thread: these tests wrap
//! the caller's waker in one that records the thread it is woken or dropped on.

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::ThreadId;
use std::time::Duration;

use bytes::Bytes;
use engine::shard::{self, Completion, ConnContext, Mesh, Service, ShardError, ShardsConfig};
use futures::future::{join_all, LocalBoxFuture};
use futures::FutureExt;
use wire::protocol::ProtocolError;

/// Calls per test: enough for answers to overtake each other and fill the channels.
const CALLS: u64 = 500;
/// Capacity of each cross-shard channel: small, so calls wait for channel space too.
const CHANNEL_JOBS: usize = 8;

/// A shard that only offers its mesh.
struct MeshOnly {
    mesh: Mesh<MeshOnly>,
}

impl Service for MeshOnly {
    fn dispatch(
        self: Rc<Self>,
        _frame: Bytes,
        _conn: &Rc<ConnContext>,
    ) -> LocalBoxFuture<'static, Result<Completion, ProtocolError>> {
        async { Err(ProtocolError::Malformed("a mesh-only test shard")) }.boxed_local()
    }

    fn shutdown(self: Rc<Self>) -> LocalBoxFuture<'static, ()> {
        async {}.boxed_local()
    }
}

/// Wakes `inner`, counting every wake and every final drop that happens off `home`.
struct Recorder {
    home: ThreadId,
    inner: Waker,
    foreign: Arc<AtomicUsize>,
}

impl Recorder {
    fn note(&self) {
        if std::thread::current().id() != self.home {
            self.foreign.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Wake for Recorder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.note();
        self.inner.wake_by_ref();
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.note();
    }
}

/// Polls `fut` with a recording waker around the task's own.
async fn watched<T>(fut: LocalBoxFuture<'static, T>, foreign: Arc<AtomicUsize>) -> T {
    let mut fut = fut;
    let home = std::thread::current().id();
    futures::future::poll_fn(move |cx| {
        let waker = Waker::from(Arc::new(Recorder {
            home,
            inner: cx.waker().clone(),
            foreign: foreign.clone(),
        }));
        match fut.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(out) => Poll::Ready(out),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// `Mesh::call` of `work` on shard 1, as a future of its own.
fn call_shard_1<R, F>(me: &Rc<MeshOnly>, work: F) -> LocalBoxFuture<'static, Result<R, ShardError>>
where
    R: Send + 'static,
    F: FnOnce(&Rc<MeshOnly>) -> LocalBoxFuture<'static, R> + Send + 'static,
{
    let me = me.clone();
    async move { me.mesh.call(&me, 1, work).await }.boxed_local()
}

/// Starts two shards and runs `run` on shard 0; returns what it returned.
fn on_shard_0<T: Send + 'static>(
    run: impl FnOnce(Rc<MeshOnly>) -> LocalBoxFuture<'static, T> + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let run = Arc::new(Mutex::new(Some((run, tx))));
    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shards = shard::start(
        ShardsConfig {
            cores: (0..2).map(|i| i % online).collect(),
            io_memory_bytes: 1 << 20,
            kafka_addr: "127.0.0.1:0".parse().expect("an address"),
            request_bytes_max: 1 << 20,
            channel_jobs_max: CHANNEL_JOBS,
            connections_max: shard::CONNECTIONS_MAX_DEFAULT,
        },
        move |mesh: Mesh<MeshOnly>| {
            let run = run.clone();
            async move {
                let me = Rc::new(MeshOnly { mesh });
                if me.mesh.shard_id() == 0 {
                    let (run, tx) = run
                        .lock()
                        .map_err(|_| "poisoned".to_string())?
                        .take()
                        .ok_or("run twice")?;
                    let fut = run(me.clone());
                    // Held in a task with a JoinHandle, as a request's completion is.
                    glommio::spawn_local(async move {
                        let _ = tx.send(fut.await);
                    })
                    .detach();
                }
                Ok(me)
            }
            .boxed_local()
        },
    )
    .expect("two shards");
    let out = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the calls finished");
    let errors = shards.stop();
    assert!(errors.is_empty(), "{errors:?}");
    out
}

#[test]
fn a_call_answered_by_another_shard_wakes_its_caller_only_on_the_callers_shard() {
    let (answers, foreign) = on_shard_0(|me| {
        async move {
            let foreign = Arc::new(AtomicUsize::new(0));
            let mut answers = Vec::new();
            for i in 0..CALLS {
                // Each call in a task of its own whose JoinHandle is dropped once it is done,
                // like a request's completion in `conn`.
                let call = call_shard_1(&me, move |other: &Rc<MeshOnly>| {
                    let shard = other.mesh.shard_id();
                    async move { (shard, i * 3) }.boxed_local()
                });
                let task = glommio::spawn_local(watched(call, foreign.clone()));
                answers.push(task.await);
            }
            (answers, foreign.load(Ordering::SeqCst))
        }
        .boxed_local()
    });
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.as_ref().ok(), Some(&(1, i as u64 * 3)), "call {i}");
    }
    assert_eq!(
        foreign, 0,
        "callers' wakers were woken or dropped {foreign} times on the answering shard's thread"
    );
}

#[test]
fn many_calls_in_flight_at_once_each_get_their_own_answer_on_the_callers_shard() {
    let (answers, foreign) = on_shard_0(|me| {
        async move {
            let foreign = Arc::new(AtomicUsize::new(0));
            let calls = (0..CALLS).map(|i| {
                let call = call_shard_1(&me, move |_: &Rc<MeshOnly>| {
                    async move {
                        // Answers come back out of order.
                        if i % 7 == 0 {
                            glommio::timer::sleep(Duration::from_millis(1)).await;
                        }
                        i
                    }
                    .boxed_local()
                });
                watched(call, foreign.clone())
            });
            let answers = join_all(calls).await;
            (answers, foreign.load(Ordering::SeqCst))
        }
        .boxed_local()
    });
    assert_eq!(answers.len() as u64, CALLS);
    for (i, answer) in answers.iter().enumerate() {
        assert_eq!(answer.as_ref().ok(), Some(&(i as u64)), "call {i}");
    }
    assert_eq!(foreign, 0, "{foreign} foreign wakes or drops");
}
