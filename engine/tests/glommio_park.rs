//! The executor must not park while a task is runnable (weir's patch to glommio 0.9, in
//! vendor/glommio/src/executor/mod.rs; see vendor/glommio/WEIR-PATCH.md).
//!
//! glommio 0.9 parked whenever `run_task_queues` returned without running anything — which it
//! does when the preempt timer has expired before the first queue runs, i.e. whenever the thread
//! was descheduled for longer than the timer since it was armed. With a task runnable and no I/O
//! or timer pending, the executor then slept until some unrelated completion: a shard that never
//! finished starting, a shutdown that never woke. A preempt timer of a
//! microsecond makes that state the common case, so a chain of tasks each waking the next hangs
//! within its first steps on an unpatched glommio; here it must finish, and quickly.

use std::sync::mpsc;
use std::time::Duration;

use glommio::LocalExecutorBuilder;

/// Tasks in the chain: each is spawned by, and awaited from, the previous one.
const CHAIN: usize = 20_000;

#[test]
fn an_executor_runs_its_runnable_tasks_instead_of_parking_when_its_preempt_timer_expired() {
    let (done, finished) = mpsc::channel();
    let handle = LocalExecutorBuilder::default()
        .name("park-probe")
        .io_memory(1 << 20)
        .preempt_timer(Duration::from_micros(1))
        .spawn(move || async move {
            let mut sum = 0usize;
            for i in 0..CHAIN {
                sum += glommio::spawn_local(async move { i % 7 }).await;
                // A yield lets the preempt timer expire between rounds, as a descheduled thread.
                glommio::yield_if_needed().await;
            }
            let _ = done.send(sum);
        })
        .expect("an executor");
    let expected: usize = (0..CHAIN).map(|i| i % 7).sum();
    match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(sum) => assert_eq!(sum, expected),
        Err(_) => panic!("the executor parked with runnable tasks and never woke (60 s)"),
    }
    handle.join().expect("the executor thread");
}
