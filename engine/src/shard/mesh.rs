//! The mesh: running work on another shard and getting its result back.
//!
//! Owns the cross-shard channels (two bounded `glommio::channels::shared_channel`s per ordered
//! pair of shards: jobs one way, answers the other), `Mesh::submit`/`Mesh::call`, the table of
//! calls waiting for their answers, and the two loops per peer shard that run its jobs and take
//! its answers. Must not interpret requests (the jobs are the caller's), and must not let a
//! waker of one shard's task be woken, cloned or dropped on another thread.
//!
//! Why answers travel as call numbers, never as wakers: glommio 0.9 counts a task's references
//! atomically, but a `JoinHandle` being dropped reads that count once and frees the task if it
//! reads 0 (`task/join_handle.rs`). A waker dropped on a foreign thread as the task's last reference
//! lowers the count to 0 and raises it back to 1 to send itself home (`task/raw.rs`,
//! `drop_waker`); a `JoinHandle` dropped on the task's own shard between those two steps sees 0
//! and frees the task, and the waker sent home later frees it again — the broker died with
//! `free(): double free detected in tcache 2`. Every request's completion is a task whose
//! `JoinHandle` the connection drops once the response is written (`conn`), and a result sent
//! back through a `futures::channel::oneshot` wakes the waiting task from the answering shard's
//! thread. So here the answering shard only fills the call's slot (plain data) and sends the
//! call's number over a shared channel (whose wakers stay on their own shard: it signals the
//! other executor through its eventfd); the calling shard's answer loop wakes the caller locally.
//! `engine/tests/mesh_wakers.rs` checks that a caller is only woken on its own thread.
//!
//! Ordering contract of `Mesh::submit`: the job's synchronous part runs on the target shard in
//! the order jobs were submitted from one shard (each pair of shards has one FIFO job channel,
//! and the target's job loop runs that part before taking the next job); the future it returns
//! runs concurrently. A Produce uses the synchronous part to append, so pipelined produces to one
//! partition keep their order.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use futures::channel::oneshot;
use futures::future::{join, join_all, LocalBoxFuture};
use futures::FutureExt;
use glommio::channels::shared_channel::{
    self, ConnectedReceiver, ConnectedSender, SharedReceiver, SharedSender,
};

use super::ShardError;

/// A call's number on the shard that made it: the answer comes back as this number.
type CallId = u64;

/// Work sent to another shard: called there with that shard's service; its synchronous part runs
/// in submission order, the returned future is spawned and resolves to the call's number once
/// the call's result is in its slot.
pub type Job<S> = Box<dyn FnOnce(&Rc<S>) -> LocalBoxFuture<'static, CallId> + Send>;

/// Where the answering shard leaves a call's result for the calling shard (plain data: no waker
/// crosses threads).
type Slot<R> = Arc<Mutex<Option<R>>>;

fn take<R>(slot: &Slot<R>) -> Option<R> {
    // A panic while the slot was held cannot leave it half-written (it is an `Option` swap).
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

fn fill<R>(slot: &Slot<R>, result: R) {
    *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
}

/// The calls this shard made to other shards and not yet answered, by target shard. Local to
/// the shard: its senders are only ever used (and dropped) here.
struct Waiting {
    next_id: Cell<CallId>,
    by_target: RefCell<Vec<HashMap<CallId, oneshot::Sender<()>>>>,
}

impl Waiting {
    fn new(count: usize) -> Self {
        Waiting {
            next_id: Cell::new(0),
            by_target: RefCell::new((0..count).map(|_| HashMap::new()).collect()),
        }
    }

    fn next_id(&self) -> CallId {
        let id = self.next_id.get();
        self.next_id.set(id.wrapping_add(1));
        id
    }

    /// Records that call `id` to `target` waits; the receiver completes when it is answered.
    fn wait(&self, target: usize, id: CallId) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut by_target = self.by_target.borrow_mut();
        let previous = by_target[target].insert(id, tx);
        assert!(
            previous.is_none(),
            "call {id} to shard {target} is waited on twice"
        );
        rx
    }

    /// Call `id` to `target` is answered (its slot is filled): wakes its caller, here.
    fn answer(&self, target: usize, id: CallId) {
        let waiting = self.by_target.borrow_mut()[target].remove(&id);
        match waiting {
            // The caller may have stopped waiting (its request was dropped): nothing to wake.
            Some(tx) => {
                let _ = tx.send(());
            }
            None => tracing::warn!(target, id, "an answer for a call nobody waits on"),
        }
    }

    /// `target` has stopped: every call to it fails (its receivers see the sender dropped).
    fn fail_all(&self, target: usize) {
        let dropped = std::mem::take(&mut self.by_target.borrow_mut()[target]);
        drop(dropped);
    }
}

/// This shard's ends of the cross-shard channels.
pub struct Mesh<S> {
    me: usize,
    count: usize,
    senders: Vec<Option<ConnectedSender<Job<S>>>>,
    waiting: Rc<Waiting>,
}

impl<S: 'static> Mesh<S> {
    pub fn shard_id(&self) -> usize {
        self.me
    }

    pub fn shard_count(&self) -> usize {
        self.count
    }

    /// Sends `work` to `target` (run at once if that is this shard). Awaiting this only waits
    /// for channel space; the returned future resolves to the work's result.
    pub async fn submit<R, F>(
        &self,
        this: &Rc<S>,
        target: usize,
        work: F,
    ) -> Result<LocalBoxFuture<'static, Result<R, ShardError>>, ShardError>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, R> + Send + 'static,
    {
        if target == self.me {
            let fut = work(this);
            return Ok(fut.map(Ok).boxed_local());
        }
        let sender = self
            .senders
            .get(target)
            .and_then(Option::as_ref)
            .ok_or(ShardError::Stopped(target))?;
        let id = self.waiting.next_id();
        let slot: Slot<R> = Arc::default();
        let filled = slot.clone();
        let job: Job<S> = Box::new(move |s: &Rc<S>| {
            let fut = work(s);
            async move {
                fill(&filled, fut.await);
                id
            }
            .boxed_local()
        });
        if sender.send(job).await.is_err() {
            return Err(ShardError::Stopped(target));
        }
        // Registered in the same poll as the send completed: the answer loop runs on this shard,
        // so it cannot see the answer before this.
        let answered = self.waiting.wait(target, id);
        Ok(async move {
            answered.await.map_err(|_| ShardError::Stopped(target))?;
            take(&slot).ok_or(ShardError::Stopped(target))
        }
        .boxed_local())
    }

    /// Runs `work` on `target` and waits for its result.
    pub async fn call<R, F>(&self, this: &Rc<S>, target: usize, work: F) -> Result<R, ShardError>
    where
        R: Send + 'static,
        F: FnOnce(&Rc<S>) -> LocalBoxFuture<'static, R> + Send + 'static,
    {
        self.submit(this, target, work).await?.await
    }
}

/// One shard's unconnected channel ends, made on the starting thread and moved to the shard.
pub(super) struct MeshEnds<S> {
    me: usize,
    count: usize,
    /// Jobs to each other shard (`None` for this one).
    jobs_out: Vec<Option<SharedSender<Job<S>>>>,
    /// Jobs from each other shard, with the channel their answers go back on.
    jobs_in: Vec<(SharedReceiver<Job<S>>, SharedSender<CallId>)>,
    /// Answers from each other shard: (that shard, its answers).
    answers_in: Vec<(usize, SharedReceiver<CallId>)>,
}

/// Makes every shard's channel ends: `capacity` jobs (and answers) per ordered pair.
pub(super) fn mesh_ends<S>(count: usize, capacity: usize) -> Vec<MeshEnds<S>> {
    let mut ends: Vec<MeshEnds<S>> = (0..count)
        .map(|me| MeshEnds {
            me,
            count,
            jobs_out: (0..count).map(|_| None).collect(),
            jobs_in: Vec::new(),
            answers_in: Vec::new(),
        })
        .collect();
    for from in 0..count {
        for to in 0..count {
            if from == to {
                continue;
            }
            let (job_tx, job_rx) = shared_channel::new_bounded(capacity);
            let (answer_tx, answer_rx) = shared_channel::new_bounded(capacity);
            ends[from].jobs_out[to] = Some(job_tx);
            ends[to].jobs_in.push((job_rx, answer_tx));
            ends[from].answers_in.push((to, answer_rx));
        }
    }
    ends
}

/// A shard's connected inbound ends, to be served by [`serve`] once its service exists.
pub(super) struct Inbound<S> {
    jobs: Vec<(ConnectedReceiver<Job<S>>, ConnectedSender<CallId>)>,
    answers: Vec<(usize, ConnectedReceiver<CallId>)>,
    waiting: Rc<Waiting>,
}

/// Connects this shard's ends. Every shard connects at once (`connect` waits for the other end).
pub(super) async fn connect<S: 'static>(ends: MeshEnds<S>) -> (Mesh<S>, Inbound<S>) {
    let senders = join_all(ends.jobs_out.into_iter().map(|s| async move {
        match s {
            Some(s) => Some(s.connect().await),
            None => None,
        }
    }));
    let jobs = join_all(
        ends.jobs_in
            .into_iter()
            .map(|(rx, tx)| async move { join(rx.connect(), tx.connect()).await }),
    );
    let answers = join_all(
        ends.answers_in
            .into_iter()
            .map(|(from, rx)| async move { (from, rx.connect().await) }),
    );
    let ((senders, jobs), answers) = join(join(senders, jobs), answers).await;
    let waiting = Rc::new(Waiting::new(ends.count));
    let mesh = Mesh {
        me: ends.me,
        count: ends.count,
        senders,
        waiting: waiting.clone(),
    };
    (
        mesh,
        Inbound {
            jobs,
            answers,
            waiting,
        },
    )
}

/// Starts the loops that run other shards' jobs on `service` and take their answers to this
/// shard's calls. They run until the peers' channel ends close; dropping the tasks stops them.
pub(super) fn serve<S: 'static>(
    shard: usize,
    service: &Rc<S>,
    inbound: Inbound<S>,
) -> Vec<glommio::Task<()>> {
    let mut tasks = Vec::new();
    for (jobs, answers) in inbound.jobs {
        let service = service.clone();
        let answers = Rc::new(answers);
        tasks.push(glommio::spawn_local(async move {
            while let Some(job) = jobs.recv().await {
                tracing::trace!(shard, "cross-shard job");
                let done = job(&service);
                let answers = answers.clone();
                glommio::spawn_local(async move {
                    let id = done.await;
                    // Only fails when the caller's shard has stopped: nobody waits any more.
                    let _ = answers.send(id).await;
                })
                .detach();
            }
        }));
    }
    for (from, answers) in inbound.answers {
        let waiting = inbound.waiting.clone();
        tasks.push(glommio::spawn_local(async move {
            while let Some(id) = answers.recv().await {
                waiting.answer(from, id);
            }
            waiting.fail_all(from);
        }));
    }
    tasks
}
