//! The TCP listener `axum::serve` runs on, with one repair: hyper answers
//! a request line whose URI is longer than its fixed limit (65,534 bytes,
//! not configurable) with a `414` and an empty body, written by hyper
//! itself with no hook for the application. Each connection's writes are
//! watched for that automatic answer, which is replaced by a `414` saying
//! what to do (a LogQL query may be up to 128 KiB; a POST form body has no
//! such limit).
//!
//! Owns only that rewrite; everything else passes through untouched.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The body of lokal's `414`.
pub const URI_TOO_LONG: &str = "request URI too long; send the query as a POST form body";

/// A [`TcpListener`] whose connections carry lokal's `414` message.
pub struct MessageListener(pub TcpListener);

impl axum::serve::Listener for MessageListener {
    type Io = UriTooLongIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = axum::serve::Listener::accept(&mut self.0).await;
        (UriTooLongIo::new(io), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose automatic `414` from hyper is replaced.
pub struct UriTooLongIo<T> {
    inner: T,
    /// Bytes of the replacement response already written, while replacing.
    replacing: Option<usize>,
}

impl<T> UriTooLongIo<T> {
    pub fn new(inner: T) -> Self {
        UriTooLongIo {
            inner,
            replacing: None,
        }
    }
}

/// Whether `buf` is hyper's automatic `414`: a whole response head, with
/// no body, as hyper writes it in one piece.
fn is_automatic_414(buf: &[u8]) -> bool {
    (buf.starts_with(b"HTTP/1.1 414 ") || buf.starts_with(b"HTTP/1.0 414 "))
        && buf.ends_with(b"\r\n\r\n")
        && memchr::memmem::find(&buf.to_ascii_lowercase(), b"\r\ncontent-length: 0\r\n").is_some()
}

fn replacement() -> Vec<u8> {
    let body = format!("{URI_TOO_LONG}\n");
    format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

impl<T: AsyncRead + Unpin> AsyncRead for UriTooLongIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for UriTooLongIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            if !is_automatic_414(buf) {
                return Pin::new(&mut self.inner).poll_write(cx, buf);
            }
            self.replacing = Some(0);
        }
        // Hyper offers the same head again until it is reported written.
        let out = replacement();
        while let Some(done) = self.replacing
            && done < out.len()
        {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &out[done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.replacing = Some(done + n);
        }
        Poll::Ready(Ok(buf.len()))
    }

    /// Vectored writes pass straight through, so hyper writes a response
    /// head and its body with one `writev` instead of copying the body into
    /// its own buffer (what it does for a stream that is not vectored).
    /// The automatic `414` has no body: its head is the only slice.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &b[..]);
        if self.replacing.is_some() || is_automatic_414(first) {
            return self.poll_write(cx, first);
        }
        let this = self.get_mut();
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_empty_414_is_replaced() {
        assert!(is_automatic_414(
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n"
        ));
        assert!(!is_automatic_414(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
        ));
        assert!(!is_automatic_414(
            b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 5\r\n\r\nhello"
        ));
        let r = String::from_utf8(replacement()).unwrap();
        assert!(r.ends_with("\r\n\r\nrequest URI too long; send the query as a POST form body\n"));
    }
}
