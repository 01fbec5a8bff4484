//! The HTTP listener: a small accept loop on hyper-util that bounds what one client can hold.
//!
//! `axum::serve` is a convenience loop with no knobs: no header-read timeout we can set, no
//! connection cap, no write timeout, no HTTP/2 settings. Behind it a slowloris client holds a
//! connection as long as it dribbles bytes, any number of idle sockets stay open until the
//! process runs out of file descriptors, and a client that stops reading keeps a response (and
//! its buffers) alive forever (catalogue §4.10, D1–D4). This loop keeps axum's router and
//! `ConnectInfo<SocketAddr>` (the client IP for rate limits and audit) and adds, per connection:
//!
//! | limit | setting (default) | what happens |
//! |---|---|---|
//! | request head | `HTTP_HEADER_TIMEOUT` (10 s) | HTTP/1: hyper's header-read timer; headers not complete in time → connection closed |
//! | idle connection | `HTTP_HEADER_TIMEOUT` (10 s) | no request in flight for that long → closed (HTTP/1: hyper starts the header timer as soon as a keep-alive connection goes idle; HTTP/2 and half-sent prefaces: [`Activity`]) |
//! | request body | `HTTP_BODY_TIMEOUT` (30 s) | the body must be in within that time of its head → 408 (see `super::deadline`) |
//! | stalled write | `HTTP_WRITE_TIMEOUT` (30 s) | a write that makes no progress that long (the client stopped reading) → closed |
//! | connections | `MAX_CONNECTIONS` (1024) | one more is accepted and closed at once; the open ones keep working |
//! | HTTP/2 streams | `HTTP2_MAX_STREAMS` (32) | concurrent requests per connection (SETTINGS_MAX_CONCURRENT_STREAMS) |
//! | buffers | constants below | HTTP/1 read buffer 128 KiB and 100 headers (431 beyond); HTTP/2 header list 128 KiB; hyper's per-stream send buffer (400 KiB); kernel send buffer 256 KiB |
//!
//! So a client holds at most `MAX_CONNECTIONS` sockets (file descriptors) and each for a bounded
//! time unless it is really sending or reading. Excess connections are closed rather than left
//! in the kernel's backlog, where they would wait unanswered; accept-and-close costs one fd for
//! an instant. HTTP/2 is cleartext with prior knowledge (`auto` builder); TLS is the reverse
//! proxy's job (see the README).
//!
//! Graceful shutdown (see `crate::shutdown`): on the stop signal the listener is dropped (new
//! connections are refused), every connection is told to finish (HTTP/1 ends after the response
//! in flight, HTTP/2 sends GOAWAY and lets open streams finish), and [`serve`] returns once the
//! last one has ended. The connection semaphore doubles as the tracker: all permits back means
//! all connections gone. If that takes longer than the grace period, the drain is aborted
//! (running agent calls answer "shutting down"), and [`ABORT_WINDOW`] later the connections
//! still open are closed.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::{Router, extract::ConnectInfo};
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::shutdown::{ABORT_WINDOW, Drain};

/// HTTP/1 read buffer: the request head must fit (431 beyond); bodies stream through it.
/// hyper's default is ~400 KiB; 128 KiB still takes a 64 KiB `User-Agent` (see the audit
/// tests, which check such a header is truncated in the log rather than refused).
const H1_MAX_BUF: usize = 128 * 1024;
/// HTTP/1 header count (hyper's default, stated here so it is a decision).
const H1_MAX_HEADERS: usize = 100;
/// HTTP/2 header list (decoded size of all headers of one request), in line with HTTP/1.
const H2_MAX_HEADER_LIST: u32 = 128 * 1024;
/// Kernel send buffer per connection. Linux otherwise grows it up to `tcp_wmem` (4 MiB by
/// default) for a client that does not read, so 1024 such clients could pin 4 GiB; this bound
/// (the kernel doubles it) still fills a 40 Mbit/s link at 100 ms round trip.
const SEND_BUF: usize = 256 * 1024;

/// The connection limits, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a complete request head; also how long a connection may sit idle.
    pub header_timeout: Duration,
    /// Time to send a whole request body once its head is in.
    pub body_timeout: Duration,
    /// Time a response write may make no progress.
    pub write_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub http2_max_streams: u32,
}

/// Accepts connections on `listener` and serves `router` on each until `shutdown` resolves,
/// then stops accepting and drains the open connections for up to `grace` (see the module doc).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    drain: Drain,
) -> io::Result<()> {
    let limits = Arc::new(limits);
    let builder = Arc::new(builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let stop = CancellationToken::new();
    let force = CancellationToken::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("http_connections_refused_total").increment(1);
            tracing::debug!(%peer, "connection limit reached; closing the new connection");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUF);
        tokio::spawn(serve_connection(
            builder.clone(),
            limits.clone(),
            router.clone(),
            stream,
            peer,
            (stop.clone(), force.clone()),
            permit,
        ));
    }
    drop(listener);
    drain.begin();
    let started = Instant::now();
    let open = || limits.max_connections - permits.available_permits();
    tracing::info!(
        connections = open(),
        tool_calls = drain.calls_in_flight(),
        grace_secs = grace.as_secs(),
        "drain started: new connections refused, requests in flight may finish"
    );
    stop.cancel();
    // Every connection holds one permit until it ends: all of them back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let all_closed = || permits.acquire_many(all);
    let mut aborted = 0;
    let mut closed = 0;
    if tokio::time::timeout(grace, all_closed()).await.is_err() {
        aborted = drain.calls_in_flight();
        tracing::warn!(
            connections = open(),
            tool_calls = aborted,
            "grace period over: cancelling the calls still running"
        );
        drain.abort();
        if tokio::time::timeout(ABORT_WINDOW, all_closed())
            .await
            .is_err()
        {
            closed = open();
            tracing::warn!(connections = closed, "closing the connections still open");
            force.cancel();
            let _ = all_closed().await;
        }
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        tool_calls_cancelled = aborted,
        connections_cut = closed,
        "drain finished: all connections closed"
    );
    Ok(())
}

/// The hyper connection builder with every limit of [`Limits`] that hyper enforces itself.
fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(H1_MAX_BUF)
        .max_headers(H1_MAX_HEADERS)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(H2_MAX_HEADER_LIST);
    builder
}

/// An accept error: per-connection ones (the peer reset before we took it) are skipped; the
/// others (out of file descriptors) get a short pause so the loop does not spin.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(%error, "accept failed; pausing");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Serves one connection until it ends, is idle too long, or the server stops.
async fn serve_connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    limits: Arc<Limits>,
    router: Router,
    stream: TcpStream,
    peer: SocketAddr,
    (stop, force): (CancellationToken, CancellationToken),
    _permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let service = {
        let activity = activity.clone();
        service_fn(move |mut request: hyper::Request<Incoming>| {
            let in_flight = activity.begin();
            request.extensions_mut().insert(ConnectInfo(peer));
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await?;
                Ok::<_, Infallible>(response.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let io = TokioIo::new(WriteTimeout::new(stream, limits.write_timeout));
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let idle = activity.idle_for(limits.header_timeout);
    tokio::pin!(idle);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop.cancelled() => {
            // Server stop: finish what is in flight, until the drain gives up on it.
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => result,
                () = force.cancelled() => Ok(()),
            }
        }
        () = &mut idle => {
            // Nothing in flight: hyper closes at once; a half-sent HTTP/2 preface or a peer
            // that ignores GOAWAY gets one more header timeout, then the socket is dropped.
            metrics::counter!("http_connections_idle_closed_total").increment(1);
            connection.as_mut().graceful_shutdown();
            tokio::time::timeout(limits.header_timeout, connection)
                .await
                .unwrap_or(Ok(()))
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Requests in flight on one connection and when that count last changed.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    changed: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            changed: Mutex::new(Instant::now()),
        }
    }

    fn touch(&self) {
        *self.changed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Counts a request until its response body is dropped (sent or abandoned).
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
        InFlight(self.clone())
    }

    /// Resolves once no request has been in flight for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let since = *self.changed.lock().unwrap_or_else(|e| e.into_inner());
            let wait = if self.in_flight.load(Ordering::SeqCst) == 0 {
                match timeout.checked_sub(since.elapsed()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return,
                }
            } else {
                timeout
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// One request in flight (see [`Activity::begin`]).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that keeps its request counted as in flight until hyper is done with it,
/// so a long streamed answer is never mistaken for an idle connection.
#[derive(Debug)]
struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: HttpBody + Unpin> HttpBody for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A socket whose writes fail with `TimedOut` after making no progress for `timeout`: a client
/// that stops reading (slow read, D3) loses its connection instead of pinning a response and
/// its buffers. A write that moves any byte resets the clock, so a slow but live reader is
/// served; the connection cap bounds how many of those there can be.
#[derive(Debug)]
struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimeout<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// Passes a ready write through; on a pending one, starts (or checks) the stall clock.
    fn watch<R>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<R>>) -> Poll<io::Result<R>> {
        match poll {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => {
                let timeout = self.timeout;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if stalled.as_mut().poll(cx).is_ready() {
                    metrics::counter!("http_write_timeouts_total").increment(1);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the client stopped reading the response",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A writer whose buffer never drains fails after the timeout, not before.
    #[tokio::test]
    async fn a_stalled_write_times_out() {
        let (client, _server) = tokio::io::duplex(16);
        let mut writer = WriteTimeout::new(client, Duration::from_millis(300));
        writer.write_all(&[0; 16]).await.unwrap();
        let started = Instant::now();
        let error = writer.write_all(&[0; 16]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(300));
    }

    /// A write that keeps moving is never cut, however long it takes in total: 16 reads 150 ms
    /// apart (2.4 s in all) against a 1.5 s stall limit, a margin that holds on a loaded machine.
    #[tokio::test]
    async fn a_slow_but_live_reader_is_served() {
        let (client, mut server) = tokio::io::duplex(16);
        let mut writer = WriteTimeout::new(client, Duration::from_millis(1500));
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 4];
            let mut total = 0;
            while total < 64 {
                tokio::time::sleep(Duration::from_millis(150)).await;
                total += tokio::io::AsyncReadExt::read(&mut server, &mut buf)
                    .await
                    .unwrap();
            }
        });
        writer.write_all(&[0; 64]).await.unwrap();
        reader.await.unwrap();
    }

    #[tokio::test]
    async fn idle_waits_for_the_last_request_to_end() {
        let timeout = Duration::from_millis(200);
        let activity = Arc::new(Activity::new());
        let request = activity.begin();
        let idle = tokio::spawn({
            let activity = activity.clone();
            async move { activity.idle_for(timeout).await }
        });
        tokio::time::sleep(timeout * 3).await;
        assert!(!idle.is_finished(), "idle while a request is in flight");
        let ended = Instant::now();
        drop(request);
        idle.await.unwrap();
        assert!(ended.elapsed() >= timeout);
    }
}
