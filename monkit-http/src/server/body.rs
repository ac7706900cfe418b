//! The bodies around every request and response the accept loop serves: a request body
//! that gives up on a client who stops sending, and a response body handed to the protocol
//! in bounded chunks, so that what a client does not read stays counted against the
//! listener's byte budget instead of vanishing into the protocol's send buffers.

use super::conns::{Activity, Conns};
use bytes::{Buf, Bytes};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The largest piece of a response handed to the protocol at once. HTTP/2 takes the next
/// piece only when the client's window has room, so only a response's last piece, once
/// handed over, sits in the protocol's buffers uncounted.
const CHUNK: usize = 8 * 1024;

/// The body of a request served by [`serve_connections`](crate::serve_connections): the
/// client's bytes as they come, or [`RequestBodyError`] when the client sends nothing for
/// [`ServeOptions::body_timeout`](crate::ServeOptions::body_timeout) while the server waits
/// for more.
///
/// ```
/// use http_body_util::BodyExt;
/// async fn echo(
///     req: hyper::Request<monkit_http::RequestBody>,
/// ) -> Result<hyper::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
///     Ok(match req.into_body().collect().await {
///         Ok(b) => hyper::Response::new(http_body_util::Full::new(b.to_bytes())),
///         Err(e) => {
///             let mut r = hyper::Response::new(http_body_util::Full::new(e.to_string().into()));
///             *r.status_mut() = if e.is_timeout() {
///                 hyper::StatusCode::REQUEST_TIMEOUT
///             } else {
///                 hyper::StatusCode::BAD_REQUEST
///             };
///             r
///         }
///     })
/// }
/// # let _ = echo;
/// ```
pub struct RequestBody {
    inner: Incoming,
    activity: Arc<Activity>,
    conns: Arc<Conns>,
    timeout: Duration,
    /// Armed while a read waits; reset, not reallocated, for the next wait.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    waiting: bool,
    failed: bool,
}

impl fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBody")
            .field("timeout", &self.timeout)
            .field("waiting", &self.waiting)
            .finish_non_exhaustive()
    }
}

impl RequestBody {
    pub(super) fn new(
        inner: Incoming,
        activity: Arc<Activity>,
        conns: Arc<Conns>,
        timeout: Duration,
    ) -> RequestBody {
        RequestBody {
            inner,
            activity,
            conns,
            timeout,
            timer: None,
            waiting: false,
            failed: false,
        }
    }

    fn stop_waiting(&mut self) {
        if self.waiting {
            self.waiting = false;
            self.activity.awaiting_body.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        self.stop_waiting();
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(r) => {
                this.stop_waiting();
                if matches!(r, Some(Ok(_))) {
                    this.activity.touch();
                }
                if matches!(r, Some(Err(_))) {
                    this.failed = true;
                }
                Poll::Ready(r.map(|r| r.map_err(|e| RequestBodyError(Kind::Transport(e)))))
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    this.activity.awaiting_body.fetch_add(1, Ordering::Relaxed);
                    let deadline = tokio::time::Instant::now() + this.timeout;
                    match &mut this.timer {
                        Some(t) => t.as_mut().reset(deadline),
                        None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                let timer = this.timer.as_mut().expect("armed above");
                if timer.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.stop_waiting();
                this.failed = true;
                this.conns
                    .stats
                    .body_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                Poll::Ready(Some(Err(RequestBodyError(Kind::Timeout(this.timeout)))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

use std::future::Future as _;

/// Why a [`RequestBody`] ended before its last byte.
pub struct RequestBodyError(Kind);

enum Kind {
    Timeout(Duration),
    Transport(hyper::Error),
}

impl RequestBodyError {
    /// Whether the client sent nothing for the body timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.0, Kind::Timeout(_))
    }
}

impl fmt::Debug for RequestBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Timeout(t) => f.debug_tuple("Timeout").field(t).finish(),
            Kind::Transport(e) => f.debug_tuple("Transport").field(e).finish(),
        }
    }
}

impl fmt::Display for RequestBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Kind::Timeout(t) => write!(f, "the client sent no body bytes for {t:?}"),
            Kind::Transport(e) => write!(f, "reading the request body: {e}"),
        }
    }
}

impl std::error::Error for RequestBodyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0 {
            Kind::Timeout(_) => None,
            Kind::Transport(e) => Some(e),
        }
    }
}

pin_project_lite::pin_project! {
    /// A response on its way out: handed over in pieces of at most [`CHUNK`] bytes, with
    /// what is not handed over yet counted against the connection and the listener.
    pub(super) struct Sending<B> {
        #[pin]
        inner: Option<B>,
        // What the inner body gave and the protocol has not taken yet.
        rest: Bytes,
        unsent: Unsent,
    }
}

/// The bytes a response counts as unsent, on its connection and its listener; given back
/// when the response is dropped.
struct Unsent {
    counted: u64,
    activity: Arc<Activity>,
    conns: Arc<Conns>,
}

impl Unsent {
    fn set(&mut self, now: u64) {
        if now == self.counted {
            return;
        }
        for a in [&self.activity.unsent, &self.conns.stats.unsent] {
            if now > self.counted {
                a.fetch_add(now - self.counted, Ordering::Relaxed);
            } else {
                a.fetch_sub(self.counted - now, Ordering::Relaxed);
            }
        }
        self.counted = now;
    }
}

impl Drop for Unsent {
    fn drop(&mut self) {
        self.set(0);
    }
}

impl<B: Body> Sending<B> {
    pub(super) fn new(inner: B, activity: Arc<Activity>, conns: Arc<Conns>) -> Sending<B> {
        let mut unsent = Unsent {
            counted: 0,
            activity,
            conns,
        };
        unsent.set(inner.size_hint().lower());
        Sending {
            inner: Some(inner),
            rest: Bytes::new(),
            unsent,
        }
    }

    /// The bytes this response counts as unsent.
    pub(super) fn unsent(&self) -> u64 {
        self.unsent.counted
    }

    /// A body of our own (an answer the server gives without the service).
    pub(super) fn own(
        text: &'static str,
        activity: Arc<Activity>,
        conns: Arc<Conns>,
    ) -> Sending<B> {
        Sending {
            inner: None,
            rest: Bytes::from_static(text.as_bytes()),
            unsent: Unsent {
                counted: 0,
                activity,
                conns,
            },
        }
    }
}

impl<B: Body> Body for Sending<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let mut this = self.project();
        if this.rest.is_empty() {
            let Some(inner) = this.inner.as_mut().as_pin_mut() else {
                return Poll::Ready(None);
            };
            match inner.poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.inner.set(None);
                    this.unsent.set(0);
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Err(e))) => {
                    this.inner.set(None);
                    this.unsent.set(0);
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(mut data) => *this.rest = data.copy_to_bytes(data.remaining()),
                    Err(frame) => {
                        this.unsent.activity.touch();
                        let trailers = frame.into_trailers().unwrap_or_default();
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                },
            }
        }
        let piece = this.rest.split_to(this.rest.len().min(CHUNK));
        // The piece handed over counts until the protocol asks for the next one: HTTP/2 asks
        // only once the client's window took the last.
        let left = piece.len() as u64
            + this.rest.len() as u64
            + this
                .inner
                .as_ref()
                .as_pin_ref()
                .map_or(0, |b| b.size_hint().lower());
        this.unsent.set(left);
        this.unsent.activity.touch();
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty() && self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self
            .inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint);
        let rest = self.rest.len() as u64;
        // The upper bound first: a lower bound above the upper one is refused.
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + rest);
        }
        hint.set_lower(hint.lower() + rest);
        hint
    }
}
