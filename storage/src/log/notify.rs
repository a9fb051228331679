//! Notification: callers waiting on the written and durable watermarks, and the wake-up flag of
//! the flusher task.
//!
//! Owns the waiter lists' wake rules (a waiter on offset `o` wakes once the watermark is past
//! `o`; all are failed together when the log goes offline or closes). Must not move watermarks or
//! decide when to write or sync: the flusher does, then calls here.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::channel::oneshot;

use crate::error::LogError;

/// A caller waiting for a watermark to pass `offset`.
pub(super) struct Waiter {
    pub(super) offset: u64,
    pub(super) done: oneshot::Sender<Result<(), WaitFailure>>,
}

/// Why a waiter was woken without its watermark reaching its offset.
#[derive(Debug, Clone)]
pub(super) enum WaitFailure {
    /// The log went offline; the reason of the first failure.
    Offline(String),
    /// The log closed first.
    Closed,
}

impl From<WaitFailure> for LogError {
    fn from(failure: WaitFailure) -> Self {
        match failure {
            WaitFailure::Offline(reason) => LogError::Offline(reason),
            WaitFailure::Closed => LogError::Closed,
        }
    }
}

/// Fails every waiter with `failure` (the log went offline or closed).
pub(super) fn wake_all(waiters: &mut Vec<Waiter>, failure: WaitFailure) {
    for waiter in waiters.drain(..) {
        let _ = waiter.done.send(Err(failure.clone()));
    }
}

/// Wakes (successfully) every waiter whose offset is below `reached`.
pub(super) fn wake_reached(waiters: &mut Vec<Waiter>, reached: u64) {
    let mut i = 0;
    while i < waiters.len() {
        if waiters[i].offset < reached {
            let waiter = waiters.swap_remove(i);
            let _ = waiter.done.send(Ok(()));
        } else {
            i += 1;
        }
    }
}

/// A wake-up flag for the single flusher task.
#[derive(Default)]
pub(super) struct Notify {
    flagged: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    pub(super) fn notify(&self) {
        self.flagged.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    pub(super) fn notified(&self) -> Notified<'_> {
        Notified { notify: self }
    }
}

pub(super) struct Notified<'a> {
    notify: &'a Notify,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.flagged.replace(false) {
            Poll::Ready(())
        } else {
            *self.notify.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}
