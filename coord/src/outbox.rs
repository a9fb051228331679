//! Outbox: one connection's write queue with a doorbell, drained by one writer task (client
//! connections, peer links, a follower's forwarder to the leader).
//!
//! Owns: the buffer, the bell, the closed flag and the bound of a client connection's queue.
//! Must not: write to sockets (the writer tasks in `server` and `zk::front` do) or decide what
//! is sent.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};

use crate::proto::encode_frame;

/// Replies and events buffered for one client connection (native or ZooKeeper) beyond which the
/// connection is closed: a client that sends requests but does not read its replies would
/// otherwise grow the node's memory without bound. The client reconnects and re-attaches its
/// session; the requests whose replies were dropped end in ConnectionLoss, as on any disconnect.
pub const CLIENT_OUTBOX_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Every producer appends to `buf` and then rings, so the bound is enforced in `ring`.
pub(crate) struct Outbox {
    pub(crate) buf: RefCell<Vec<u8>>,
    pub(crate) snapshots: Cell<u32>,
    bell: LocalSender<()>,
    pub(crate) closed: Cell<bool>,
    /// None: bounded elsewhere (peers: `PEER_BUFFER_BYTES_MAX`; the follower's forwarder: by the
    /// requests its own clients may have pending).
    bytes_max: Option<usize>,
    /// Past `bytes_max`: everything buffered is dropped and the connection closed.
    overflowed: Cell<bool>,
}

impl Outbox {
    pub(crate) fn new() -> (Rc<Outbox>, LocalReceiver<()>) {
        Outbox::with_limit(None)
    }

    /// The outbox of a client connection: closed once more than `CLIENT_OUTBOX_BYTES_MAX` waits.
    pub(crate) fn for_client() -> (Rc<Outbox>, LocalReceiver<()>) {
        Outbox::with_limit(Some(CLIENT_OUTBOX_BYTES_MAX))
    }

    fn with_limit(bytes_max: Option<usize>) -> (Rc<Outbox>, LocalReceiver<()>) {
        let (tx, rx) = local_channel::new_bounded(1);
        (
            Rc::new(Outbox {
                buf: RefCell::new(Vec::new()),
                snapshots: Cell::new(0),
                bell: tx,
                closed: Cell::new(false),
                bytes_max,
                overflowed: Cell::new(false),
            }),
            rx,
        )
    }

    pub(crate) fn ring(&self) {
        if let Some(max) = self.bytes_max {
            let mut buf = self.buf.borrow_mut();
            if !self.overflowed.get() && buf.len() > max {
                tracing::warn!(
                    buffered_bytes = buf.len(),
                    limit_bytes = max,
                    "closing a client connection that does not read its replies"
                );
                self.overflowed.set(true);
                self.closed.set(true);
            }
            if self.overflowed.get() {
                buf.clear();
            }
        }
        let _ = self.bell.try_send(());
    }
    pub(crate) fn push_frame<T: serde::Serialize>(&self, v: &T) {
        if encode_frame(v, &mut self.buf.borrow_mut()).is_ok() {
            self.ring();
        }
    }
    pub(crate) fn take(&self) -> (Vec<u8>, u32) {
        (
            std::mem::take(&mut *self.buf.borrow_mut()),
            self.snapshots.replace(0),
        )
    }
    pub(crate) fn close(&self) {
        self.closed.set(true);
        self.ring();
    }
}
