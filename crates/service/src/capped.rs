//! A cap on the connections a server holds at once: each accepted connection (a TLS one from
//! before its handshake) takes a place that it gives back when it closes; at the cap the server
//! stops accepting, and new connections wait in the kernel's listen backlog until one closes.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A listener of at most as many connections at once as `places` has permits.
#[derive(Debug)]
pub struct Capped<L> {
    inner: L,
    places: Arc<Semaphore>,
}

impl<L> Capped<L> {
    /// Caps `inner` at the permits of `places`.
    pub fn new(inner: L, places: Arc<Semaphore>) -> Self {
        Self { inner, places }
    }
}

/// Waits for a free place (the semaphore is never closed).
pub(crate) async fn place(places: &Arc<Semaphore>) -> Option<OwnedSemaphorePermit> {
    places.clone().acquire_owned().await.ok()
}

impl<L: axum::serve::Listener> axum::serve::Listener for Capped<L> {
    type Io = Placed<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let place = place(&self.places).await;
        let (io, addr) = self.inner.accept().await;
        (Placed { io, _place: place }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection and its place under the cap (given back when it is dropped).
#[derive(Debug)]
pub struct Placed<T> {
    io: T,
    _place: Option<OwnedSemaphorePermit>,
}

impl<T> Placed<T> {
    /// `io` holding `place`.
    pub(crate) fn new(io: T, place: Option<OwnedSemaphorePermit>) -> Self {
        Self { io, _place: place }
    }

    /// The connection.
    pub fn get_ref(&self) -> &T {
        &self.io
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Placed<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Placed<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
