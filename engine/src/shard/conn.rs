//! One Kafka connection: reads frames, dispatches each request in arrival order, and writes the
//! responses in request order even when requests are pipelined and complete out of order.
//!
//! Owns: the connection's two loops (the reader dispatches; the writer awaits each completion in
//! turn and writes it), the bound on requests in flight per connection, and closing the
//! connection on a bad frame or request (logged with the peer and the reason).
//! Must not: interpret requests, or let one connection's failure reach the shard.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_lite::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use glommio::channels::local_channel;
use glommio::net::TcpStream;

use super::Service;
use wire::protocol::frame::read_frame;
use wire::protocol::ProtocolError;

use super::ResponseFrame;

/// Requests dispatched but not yet answered, per connection.
const IN_FLIGHT_MAX: usize = 64;
/// Parts smaller than this are gathered into one write; larger ones (record bytes) are written
/// from where they are, without a copy.
const GATHER_BYTES_MAX: usize = 16 * 1024;

/// The two halves of one stream on one thread: each poll borrows the stream only for that call.
#[derive(Clone)]
struct Half(Rc<RefCell<TcpStream>>);

impl AsyncRead for Half {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut s = self.0.borrow_mut();
        Pin::new(&mut *s).poll_read(cx, buf)
    }
}

impl AsyncWrite for Half {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut s = self.0.borrow_mut();
        Pin::new(&mut *s).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut s = self.0.borrow_mut();
        Pin::new(&mut *s).poll_flush(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut s = self.0.borrow_mut();
        Pin::new(&mut *s).poll_close(cx)
    }
}

/// Writes one response: small parts gathered, large parts straight from their buffers.
async fn write_frame(out: &mut Half, frame: ResponseFrame) -> std::io::Result<()> {
    let mut gather: Vec<u8> = Vec::with_capacity(4096);
    for part in &frame.parts {
        let bytes = part.as_slice();
        if bytes.len() < GATHER_BYTES_MAX {
            gather.extend_from_slice(bytes);
            continue;
        }
        if !gather.is_empty() {
            out.write_all(&gather).await?;
            gather.clear();
        }
        out.write_all(bytes).await?;
    }
    if !gather.is_empty() {
        out.write_all(&gather).await?;
    }
    out.flush().await
}

/// Serves one connection until the peer closes it or sends something we refuse.
pub async fn serve<S: Service>(stream: TcpStream, service: Rc<S>, request_bytes_max: usize) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "?".into());
    // Kafka's client host: "/" and the peer's IP address.
    let client_host: Rc<str> = stream
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default()
        .into();
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "set_nodelay: {e}");
    }
    let stream = Rc::new(RefCell::new(stream));
    let mut reader = Half(stream.clone());
    let mut writer = Half(stream);
    let (tx, rx) = local_channel::new_bounded::<
        glommio::Task<Result<Option<ResponseFrame>, ProtocolError>>,
    >(IN_FLIGHT_MAX);
    let writer_peer = peer.clone();
    let writer_task = glommio::spawn_local(async move {
        while let Some(done) = rx.recv().await {
            match done.await {
                Ok(Some(frame)) => {
                    if let Err(e) = write_frame(&mut writer, frame).await {
                        tracing::debug!(peer = %writer_peer, "write failed, closing: {e}");
                        return;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(peer = %writer_peer, "closing connection: {e}");
                    return;
                }
            }
        }
    });
    loop {
        let frame = match read_frame(&mut reader, request_bytes_max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(%peer, "closing connection: {e}");
                return;
            }
        };
        let completion = match service.clone().dispatch(frame, &client_host).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(%peer, "closing connection: {e}");
                return;
            }
        };
        if tx.send(glommio::spawn_local(completion)).await.is_err() {
            return; // the writer stopped (write error)
        }
    }
    // The peer closed its side: answer what was already asked, then close.
    drop(tx);
    writer_task.await;
}
