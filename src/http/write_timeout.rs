//! A connection whose writes must make progress: if the client stops
//! reading, so that a write stays blocked for [`Limits::write_timeout`]
//! (`super::Limits`), the write fails and hyper closes the connection. Without
//! it, a client that asks for tiles and never reads them would hold its
//! connection slot, and the tiles' memory, for as long as it likes.
//!
//! Only a write that waits counts: a slow reader that takes a little now
//! and then keeps its connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `io` with a deadline on blocked writes.
pub struct WriteTimeout<I> {
    io: I,
    limit: Duration,
    /// The timer, made at the first wait and reused.
    deadline: Option<Pin<Box<Sleep>>>,
    /// A write is waiting and `deadline` runs for it.
    waiting: bool,
}

impl<I> WriteTimeout<I> {
    pub fn new(io: I, limit: Duration) -> WriteTimeout<I> {
        WriteTimeout { io, limit, deadline: None, waiting: false }
    }

    /// Turns a pending write into an error once it has waited too long.
    fn check<T>(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if result.is_ready() {
            self.waiting = false;
            return result;
        }
        let until = Instant::now() + self.limit;
        let deadline = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        if !self.waiting {
            deadline.as_mut().reset(until);
            self.waiting = true;
        }
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteTimeout<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, buf);
        self.check(cx, result)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.check(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.check(cx, result)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_shutdown(cx);
        self.check(cx, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_limit_and_progress_resets_it() {
        let (server, mut client) = tokio::io::duplex(1024);
        let mut server = WriteTimeout::new(server, Duration::from_millis(200));
        // A reader that takes a little every 100 ms keeps the writer going.
        let reader = tokio::spawn(async move {
            let mut buf = [0; 512];
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(100)).await;
                client.read_exact(&mut buf).await.unwrap();
            }
            client
        });
        server.write_all(&[7; 512 * 10]).await.unwrap();
        let client = reader.await.unwrap();
        // Then it stops reading.
        let started = std::time::Instant::now();
        let error = server.write_all(&[7; 4096]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200) && started.elapsed() < Duration::from_secs(2));
        drop(client);
    }
}
