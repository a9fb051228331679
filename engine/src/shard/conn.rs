//! One Kafka connection: reads frames, dispatches each request in arrival order, and writes the
//! responses in request order even when requests are pipelined and complete out of order.
//!
//! Owns: the connection's two loops (the reader dispatches; the writer awaits each completion in
//! turn and writes it), the bound on requests in flight per connection, closing the connection on
//! a bad frame or request (logged with the peer and the reason), and the connection's
//! [`ConnContext`] (who is at the other end, on which listener), made once at accept and handed
//! to every request's dispatch.
//! Must not: interpret requests, or let one connection's failure reach the shard.

use std::cell::RefCell;
use std::net::SocketAddr;
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

/// The one listener weir has: Kafka's default listener name for plaintext connections.
pub const PLAINTEXT_LISTENER: &str = "PLAINTEXT";

/// Who sent a request and where: what every handler may know of its connection. Made once per
/// connection; handlers get it by `Rc`, so adding a field (the TLS session, quotas' client id)
/// touches this struct and its readers only.
#[derive(Debug, Clone)]
pub struct ConnContext {
    /// The client's address.
    pub peer: SocketAddr,
    /// The listener the connection came in on.
    pub listener: Listener,
    /// The peer as Kafka reports client hosts (`/127.0.0.1`: "/" and the IP), e.g. in
    /// DescribeGroups.
    pub client_host: Rc<str>,
    /// Who the connection authenticated as; `None` until weir has security (every connection is
    /// then anonymous), when an authorisation column of the API table checks it before dispatch.
    pub principal: Option<Principal>,
}

/// A listener: its name (Kafka's `listeners` names, e.g. `PLAINTEXT`) and local address.
#[derive(Debug, Clone)]
pub struct Listener {
    pub name: &'static str,
    pub local: SocketAddr,
}

/// An authenticated identity, as Kafka's `KafkaPrincipal` (`User:alice`). Nothing makes one yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal type (`User`).
    pub kind: String,
    pub name: String,
}

impl ConnContext {
    /// The context of a plaintext connection from `peer` to `local` (no principal).
    pub fn plaintext(peer: SocketAddr, local: SocketAddr) -> ConnContext {
        ConnContext {
            peer,
            listener: Listener {
                name: PLAINTEXT_LISTENER,
                local,
            },
            // Kafka's client host: "/" and the peer's IP address.
            client_host: format!("/{}", peer.ip()).into(),
            principal: None,
        }
    }
}

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
    let addrs = stream
        .peer_addr()
        .and_then(|p| Ok((p, stream.local_addr()?)));
    let cx = match addrs {
        Ok((peer, local)) => Rc::new(ConnContext::plaintext(peer, local)),
        Err(e) => {
            // Only a connection already reset has no peer: there is nobody to answer.
            tracing::debug!("accepted connection without addresses, closing: {e}");
            return;
        }
    };
    let peer = cx.peer;
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "set_nodelay: {e}");
    }
    let stream = Rc::new(RefCell::new(stream));
    let mut reader = Half(stream.clone());
    let mut writer = Half(stream);
    let (tx, rx) = local_channel::new_bounded::<
        glommio::Task<Result<Option<ResponseFrame>, ProtocolError>>,
    >(IN_FLIGHT_MAX);
    let writer_peer = peer;
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
        let completion = match service.clone().dispatch(frame, &cx).await {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plaintext_context_reports_the_client_host_as_kafka_does() {
        let cx = ConnContext::plaintext(
            "10.1.2.3:50000".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap(),
        );
        assert_eq!(&*cx.client_host, "/10.1.2.3");
        assert_eq!(cx.listener.name, "PLAINTEXT");
        assert_eq!(cx.listener.local.port(), 9092);
        assert!(cx.principal.is_none());
        let v6 = ConnContext::plaintext("[::1]:1".parse().unwrap(), "[::1]:9092".parse().unwrap());
        assert_eq!(&*v6.client_host, "/::1");
    }
}
