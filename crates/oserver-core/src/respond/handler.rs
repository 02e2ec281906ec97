//! Handlers: dynamic answers beside static files.
//!
//! A [`Handler`] sees a parsed [`Request`] and either answers with a
//! [`Response`] or declines (`None`), so the request falls through to the next
//! handler and finally to the static files.

use std::borrow::Cow;
use std::fs::File;
use std::net::SocketAddr;

use super::later;
use super::request::{self, Version};
use super::stream::BodyStream;

/// Answers requests on the event-loop thread.
///
/// Handlers run inside the event loop, between reads and writes of every other
/// connection of that loop: a handler that blocks (sleeps, waits on a lock held
/// for long, does network or slow disk I/O) stalls every client of the loop.
/// Keep handlers to quick, in-memory work. For anything slow:
///
/// - route it with [`ServerBuilder::blocking_route`]: it then runs on the
///   server's blocking pool, and its connection waits without stalling the
///   loop;
/// - or answer [`Response::later`] and complete the reply from any thread;
/// - or stream the body ([`Body::Stream`]) as it is made.
///
/// A handler that panics gets its request answered 500 and the loop goes on,
/// when panics unwind. With `panic = "abort"` (as this workspace's release
/// profile sets for the `oserver` command) a panic ends the process, every
/// connection with it: an embedder that wants the 500 builds with the
/// default `panic = "unwind"`.
///
/// [`ServerBuilder::blocking_route`]: crate::ServerBuilder::blocking_route
///
/// Closures `Fn(&Request) -> Option<Response>` are handlers too.
///
/// # Example
///
/// ```
/// use oserver_core::{Handler, Request, Response};
///
/// struct Version;
///
/// impl Handler for Version {
///     fn handle(&self, req: &Request<'_>) -> Option<Response> {
///         if req.path() != "/version" {
///             return None; // fall through to the next handler or the files
///         }
///         Some(Response::new(200).header("Content-Type", "text/plain").body("1.0\n"))
///     }
/// }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Answer `req`, or return `None` to let the next handler (or the static
    /// files) answer it.
    fn handle(&self, req: &Request<'_>) -> Option<Response>;
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>) -> Option<Response> + Send + Sync + 'static,
{
    fn handle(&self, req: &Request<'_>) -> Option<Response> {
        self(req)
    }
}

/// A parsed request as a handler sees it.
///
/// Handlers are offered every method ([`ServerBuilder::route`] picks some);
/// the static files answer `GET` and `HEAD` and give 405 to the rest. For
/// `HEAD` the server sends the handler's headers (Content-Length included)
/// and no body. A request's body is read whole before its handler runs
/// ([`Request::body`]).
///
/// [`ServerBuilder::route`]: crate::ServerBuilder::route
pub struct Request<'a> {
    pub(crate) req: &'a request::Request<'a>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// The method, as sent (`GET`, `POST`, ...).
    pub fn method(&self) -> &'a str {
        // The parser admits only token bytes, which are ASCII.
        std::str::from_utf8(self.req.method).unwrap_or("")
    }

    /// The request body: what a `Content-Length` or chunked body (or
    /// HTTP/2 DATA) carried, read whole before the handler runs, up to
    /// `ServerBuilder::max_body_bytes` or the route's `body_limit` (a larger
    /// body is answered 413 without running the handler). Empty when the
    /// request has none.
    pub fn body(&self) -> &'a [u8] {
        self.req.body
    }

    /// The decoded, normalised path, starting with `/` (`%XX` decoded once,
    /// `.` and `..` resolved, `//` collapsed). A path that is not UTF-8 after
    /// decoding is given lossily, with U+FFFD.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The raw query string without its `?`, still percent-encoded.
    pub fn query(&self) -> Option<&'a [u8]> {
        self.query
    }

    /// The request target exactly as sent.
    pub fn target(&self) -> &'a [u8] {
        self.req.target
    }

    /// The first header with this name, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.req.fields.get(name.as_bytes())
    }

    /// Every header in the order sent, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + '_ {
        self.req.fields.iter()
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.req.peer
    }

    /// `1` for HTTP/1.1, `0` for HTTP/1.0. HTTP/2 requests give `1`: they
    /// have HTTP/1.1's semantics.
    pub fn minor_version(&self) -> u8 {
        match self.req.version {
            Version::Http10 => 0,
            Version::Http11 | Version::Http2 => 1,
        }
    }
}

/// What a handler answers with.
///
/// `Date`, `Server`, `Content-Length` and `Connection` are added by the
/// server: a handler's `Content-Length`, `Transfer-Encoding`, `Connection`,
/// `Keep-Alive`, `Upgrade`, `Date` or `Server` header is dropped (with a
/// warning in the log), as is a field whose name is not a token or whose
/// value holds a control byte. The status must be a final one, 200 to 599:
/// anything else is answered 500. A 204 or 304 is sent without a body.
///
/// A 200 whose body is a [`Body::File`], answering a `GET` or `HEAD`, is
/// answered as a static file would be; see [`Body::File`].
///
/// # Example
///
/// ```
/// use oserver_core::Response;
///
/// let r = Response::new(200)
///     .header("Content-Type", "application/json")
///     .body(br#"{"ok":true}"#.to_vec());
/// assert_eq!(r.status(), 200);
/// ```
#[derive(Debug)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Headers,
    pub(crate) body: Body,
    /// A placeholder for a reply that comes later (see [`Response::later`]).
    pub(crate) later: Option<Awaited>,
}

/// One header field a handler set, as (name, value).
pub(crate) type Field = (Cow<'static, str>, Cow<'static, str>);

/// How many header fields a response holds in itself before it allocates:
/// a handler's response usually sets one or two (Content-Type, perhaps a
/// Cache-Control or a Location). Each is 48 bytes of a response that is
/// moved from the handler to the server, so not more.
const INLINE_FIELDS: usize = 2;

/// A handler's header fields, in the order set: the first
/// [`INLINE_FIELDS`] in the response itself, any more in a `Vec`, so the
/// usual response allocates nothing for its fields.
#[derive(Debug, Default)]
pub(crate) struct Headers {
    inline: [Field; INLINE_FIELDS],
    /// Fields used in `inline`.
    len: usize,
    more: Vec<Field>,
}

impl Headers {
    fn push(&mut self, name: Cow<'static, str>, value: Cow<'static, str>) {
        match self.inline.get_mut(self.len) {
            Some(slot) => {
                *slot = (name, value);
                self.len += 1;
            }
            None => self.more.push((name, value)),
        }
    }

    /// Every field in the order set.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Field> + '_ {
        self.inline.iter().take(self.len).chain(&self.more)
    }

    /// Drop them, without a call to the drop glue when they own nothing:
    /// literal fields, none past the inline ones (the usual response's).
    /// An unused inline slot is an empty `String`, which owns nothing.
    pub(crate) fn discard(self) {
        let owned = |c: &Cow<'static, str>| matches!(c, Cow::Owned(s) if s.capacity() != 0);
        let owns = self.more.capacity() != 0 || self.inline.iter().any(|(n, v)| owned(n) || owned(v));
        if !owns {
            std::mem::forget(self);
        }
    }
}

/// A response body.
#[derive(Debug)]
#[non_exhaustive]
pub enum Body {
    /// No body (Content-Length: 0).
    Empty,
    /// Owned bytes.
    Bytes(Vec<u8>),
    /// Bytes that live for the whole program.
    Static(&'static [u8]),
    /// A file, sent with sendfile(2).
    ///
    /// When it answers a `GET` or `HEAD` with status 200, it gets what a
    /// static file gets, and the status changes as a static file's would:
    ///
    /// - validators: `ETag` and `Last-Modified`, computed from the open
    ///   file's metadata exactly as for static files, and `Accept-Ranges:
    ///   bytes`;
    /// - 304, without a body, when `If-None-Match` or `If-Modified-Since`
    ///   says the client's copy is current;
    /// - 206 with `Content-Range` and just that range for a `Range` of one
    ///   range (if `If-Range`, when sent, still matches), and 416 when no
    ///   range asked for is in the file.
    ///
    /// The handler's own header fields (`Content-Type`, `Cache-Control`, ...)
    /// are kept, on the 304 too; the 416 is the server's error page, which
    /// gets them without the `Content-*` ones (they describe the file). An
    /// `ETag` or `Last-Modified` the handler set is sent and compared instead
    /// of the computed one (each on its own: setting one keeps the other
    /// computed); a `Last-Modified` that is not an HTTP-date is dropped for
    /// the computed one.
    ///
    /// Any other status, or another method, sends the file whole from its
    /// start, with the handler's status and fields only.
    File(File),
    /// A body of unknown length, sent as it is produced: chunked on
    /// HTTP/1.1 (HTTP/1.0 gets it unframed, then the connection closes),
    /// DATA frames on HTTP/2. The next piece is taken only when the client
    /// has taken the last, so a slow client holds the producer back. A
    /// `HEAD` gets the head only, and the stream is dropped unread.
    ///
    /// ```
    /// use oserver_core::{Body, BodyStream, Response};
    ///
    /// // Pulled on the loop, piece by piece:
    /// let lines = BodyStream::iter((0..3).map(|i| format!("line {i}\n")));
    /// let r = Response::new(200).body(lines);
    /// assert!(matches!(r.body_ref(), Body::Stream(_)));
    ///
    /// // Fed from another thread:
    /// let (body, tx) = BodyStream::channel();
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         if tx.send(format!("tick {i}\n")).is_err() {
    ///             return; // the client left
    ///         }
    ///     }
    /// }); // dropping `tx` ends the body
    /// let r = Response::new(200).header("Content-Type", "text/plain").body(body);
    /// ```
    Stream(BodyStream),
}

impl From<BodyStream> for Body {
    fn from(s: BodyStream) -> Body {
        Body::Stream(s)
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::Bytes(v)
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::Bytes(s.into_bytes())
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::Static(s)
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::Static(s.as_bytes())
    }
}

impl From<File> for Body {
    fn from(f: File) -> Body {
        Body::File(f)
    }
}

impl Response {
    /// A response with this status code, no headers and no body.
    pub fn new(status: u16) -> Response {
        Response { status, headers: Headers::default(), body: Body::Empty, later: None }
    }

    /// A reply that comes later: return the first (a placeholder) from the
    /// handler, and complete the reply with the [`Later`] from any thread.
    /// The connection waits for it without holding up its loop, up to
    /// [`Settings::reply_timeout`](crate::Settings::reply_timeout); if the
    /// client leaves first, the reply is dropped quietly
    /// ([`Later::is_gone`] tells). A client that shuts its sending side
    /// while it waits counts as gone, as in nginx (its 499) and Go's
    /// net/http. Dropping the `Later` unsent answers 500.
    ///
    /// ```
    /// use oserver_core::{Request, Response};
    ///
    /// fn handle(_req: &Request<'_>) -> Option<Response> {
    ///     let (placeholder, later) = Response::later();
    ///     std::thread::spawn(move || {
    ///         let report = "made slowly\n"; // e.g. a database query
    ///         later.send(Response::new(200).body(report));
    ///     });
    ///     Some(placeholder)
    /// }
    /// ```
    pub fn later() -> (Response, Later) {
        let (later, awaited) = Later::new();
        let mut r = Response::new(200);
        r.later = Some(awaited);
        (r, later)
    }

    /// Add a header. A name that is not a token, or a value with CR, LF or
    /// another control byte, is dropped when the response is sent (so a
    /// handler cannot split the response), as are the framing headers the
    /// server writes itself (see [`Response`]).
    pub fn header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Response {
        self.headers.push(name.into(), value.into());
        self
    }

    /// Set the body.
    pub fn body(mut self, body: impl Into<Body>) -> Response {
        let old = std::mem::replace(&mut self.body, body.into());
        // Nearly always the empty body of `new`, which owns nothing: no
        // call to the drop glue for it.
        if matches!(old, Body::Empty) {
            std::mem::forget(old);
        }
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The body.
    pub fn body_ref(&self) -> &Body {
        &self.body
    }
}

/// What a late reply turned out to be.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The handler's response.
    Response(Response),
    /// The server's error page: 500 for a [`Later`] dropped without a
    /// reply (its worker panicked, or forgot); 404 for a blocking handler
    /// that declined the request (nothing is left to fall through to).
    Error(u16),
}

/// The connection's side of a [`Later`]: dropping it (the connection
/// closed) marks the reply unwanted.
pub(crate) type Awaited = later::Receiver<Answer>;

/// Completes a reply later, from any thread: see [`Response::later`].
///
/// Dropping it without [`send`](Later::send) answers the request 500, so a
/// worker that panics (with unwinding) or forgets still answers the client.
pub struct Later {
    /// None once sent.
    tx: Option<later::Sender<Answer>>,
}

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Later").field("gone", &self.is_gone()).finish()
    }
}

impl Later {
    pub(crate) fn new() -> (Later, Awaited) {
        let (tx, rx) = later::channel();
        (Later { tx: Some(tx) }, rx)
    }

    /// Complete the reply with `response` (which may itself be a file, a
    /// stream, or another `later`). If the client has gone, it is dropped
    /// quietly.
    pub fn send(mut self, response: Response) {
        self.answer(Answer::Response(response));
    }

    /// Whether the client has gone (its connection closed), so the reply
    /// would be dropped: long work can check this and stop early.
    pub fn is_gone(&self) -> bool {
        self.tx.as_ref().map_or(true, later::Sender::is_gone)
    }

    /// Complete with the server's error page for `status`.
    pub(crate) fn error(mut self, status: u16) {
        self.answer(Answer::Error(status));
    }

    fn answer(&mut self, answer: Answer) {
        if let Some(tx) = self.tx.take() {
            tx.send(answer);
        }
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        self.answer(Answer::Error(500));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::{Mailbox, Wakeup};

    fn status(a: Option<Answer>) -> Option<u16> {
        match a? {
            Answer::Response(r) => Some(r.status()),
            Answer::Error(s) => Some(s + 10_000),
        }
    }

    #[test]
    fn a_later_answers_its_response() {
        let wake = Wakeup::new(Mailbox::detached(), 0);
        let (later, awaited) = Later::new();
        std::thread::spawn(move || later.send(Response::new(201))).join().unwrap();
        assert_eq!(status(awaited.poll(&wake)), Some(201));
    }

    #[test]
    fn a_dropped_or_panicking_later_answers_500() {
        let wake = Wakeup::new(Mailbox::detached(), 0);
        let (later, awaited) = Later::new();
        drop(later);
        assert_eq!(status(awaited.poll(&wake)), Some(10_500));
        let (later, awaited) = Later::new();
        let r = std::thread::spawn(move || {
            let _held = later;
            panic!("worker failed (expected by the test)");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(status(awaited.poll(&wake)), Some(10_500));
    }

    #[test]
    fn headers_keep_their_order_past_the_inline_ones() {
        let names: Vec<String> = (0..INLINE_FIELDS + 3).map(|i| format!("X-{i}")).collect();
        let mut r = Response::new(200);
        for (i, name) in names.iter().enumerate() {
            r = r.header(name.clone(), i.to_string());
        }
        let got: Vec<(&str, &str)> = r.headers.iter().map(|(n, v)| (n.as_ref(), v.as_ref())).collect();
        let want: Vec<(&str, String)> =
            names.iter().enumerate().map(|(i, n)| (n.as_str(), i.to_string())).collect();
        assert_eq!(got, want.iter().map(|(n, v)| (*n, v.as_str())).collect::<Vec<_>>());
        assert_eq!(Response::new(200).headers.iter().count(), 0);
    }

    #[test]
    fn a_later_knows_its_client_left() {
        let (later, awaited) = Later::new();
        assert!(!later.is_gone());
        drop(awaited);
        assert!(later.is_gone());
        later.send(Response::new(200)); // no panic, nothing kept
    }
}
