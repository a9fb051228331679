//! A probe of the glommio bug that `engine::shard::mesh` works around (ignored: it fails on
//! glommio 0.9, by design; run it when upgrading glommio to see whether the workaround can go).
//!
//! glommio 0.9 keeps a task's reference count in an atomic but, when the task's `JoinHandle` is
//! dropped, loads it and frees the task if it reads 0 (`task/join_handle.rs`). A waker dropped on
//! a foreign thread as the last reference decrements the count to 0 and then increments it again
//! to send a clone home (`task/raw.rs`, `drop_waker`). A `JoinHandle` dropped between those two
//! steps frees the task, and the clone sent home frees it a second time (in the broker: `free():
//! double free detected in tcache 2`), or, if the memory was reused meanwhile, breaks another
//! task's count ("Waker invariant broken").
//!
//! Here the foreign thread drops its waker at the moment the task's own thread drops the
//! `JoinHandle` (both released by one flag), so the window of a few instructions is usually hit
//! within seconds instead of after many minutes of a busy broker (on glommio 0.9 it failed in 2
//! of 3 runs of 10 s here, with "Waker invariant broken" on the foreign thread).
//!
//! `cargo test -p weir-engine --test glommio_foreign_waker -- --ignored`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

/// Rounds of spinning the `JoinHandle` drop is shifted by, at most.
const SPREAD: u64 = 256;
/// How long the probe runs when nothing goes wrong.
const RUN_FOR: Duration = Duration::from_secs(10);

#[test]
#[ignore = "fails on glommio 0.9 (double free of a task): the bug engine::shard::mesh avoids"]
fn a_task_survives_a_foreign_waker_dropped_as_its_join_handle_is_dropped() {
    let go = Arc::new(AtomicBool::new(false));
    let (wakers_tx, wakers) = mpsc::channel::<Waker>();
    let foreign_go = go.clone();
    let foreign = std::thread::spawn(move || {
        for waker in wakers {
            waker.wake_by_ref();
            while !foreign_go.swap(false, Ordering::AcqRel) {
                std::hint::spin_loop();
            }
            drop(waker);
        }
    });
    let local = LocalExecutorBuilder::new(Placement::Unbound)
        .spawn(move || async move {
            let deadline = Instant::now() + RUN_FOR;
            let mut rounds = 0u64;
            while Instant::now() < deadline {
                let wakers_tx = wakers_tx.clone();
                let mut task = glommio::spawn_local(async move {
                    let mut sent = false;
                    futures::future::poll_fn(|cx| {
                        // Once woken, or if the foreign thread has died (nobody would wake it).
                        if sent || wakers_tx.send(cx.waker().clone()).is_err() {
                            return Poll::Ready(());
                        }
                        sent = true;
                        Poll::Pending
                    })
                    .await
                });
                (&mut task).await;
                go.store(true, Ordering::Release);
                // The foreign thread needs a moment to see the flag: vary how long the drop waits,
                // so the two land together in some rounds.
                for _ in 0..rounds % SPREAD {
                    std::hint::spin_loop();
                }
                drop(task);
                rounds += 1;
            }
            rounds
        })
        .expect("an executor");
    let rounds = local.join().expect("the executor thread");
    foreign.join().expect("the foreign thread");
    assert!(rounds > 0);
}
