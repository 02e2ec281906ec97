//! The responder: from a request to a reply, whatever protocol carried it.
//!
//! A protocol turns its bytes into a [`Request`] (method, target, header
//! fields, peer) and asks [`Responder::respond`] for a [`Reply`] (status,
//! header fields, body: nothing, bytes, or a range of a file). The responder
//! checks the method and the path, offers the request to the handlers whose
//! route matches, then to the static files. It never writes a byte of
//! HTTP/1: the protocol frames the reply (status line or HEADERS frame, the
//! framing headers, HEAD's missing body).

pub(crate) mod handler;
mod statics;

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::files::cache::{FileCache, OpenFile};
use crate::files::fs::Root;
use crate::files::path::{self, PathError};
use crate::http::fields::{self, FieldList, Fields};
use crate::http::{push_u64, status};
use crate::settings::Settings;

use handler::{Body, Handler};

/// The HTTP version a request came in, for handlers and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Http10,
    Http11,
}

impl Version {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A request as the responder sees it, borrowed from the protocol's buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub method: &'a [u8],
    /// The target exactly as sent.
    pub target: &'a [u8],
    pub version: Version,
    pub fields: Fields<'a>,
    pub peer: SocketAddr,
}

/// A file to send: from the open-file cache, or a handler's own.
#[derive(Debug)]
pub(crate) enum FileRef {
    Cached(Rc<OpenFile>),
    Owned(File),
}

/// The byte range `offset..end` of a file, still to be sent.
#[derive(Debug)]
pub(crate) struct FileBody {
    pub file: FileRef,
    pub offset: u64,
    pub end: u64,
}

impl FileBody {
    pub(crate) fn fd(&self) -> RawFd {
        match &self.file {
            FileRef::Cached(f) => f.file.as_raw_fd(),
            FileRef::Owned(f) => f.as_raw_fd(),
        }
    }

    /// The range's bytes when the file is held in memory (small cached
    /// files), so the protocol can send them with the head in one write.
    pub(crate) fn in_memory(&self) -> Option<&[u8]> {
        match &self.file {
            FileRef::Cached(f) => f.small.as_deref()?.get(self.offset as usize..self.end as usize),
            FileRef::Owned(_) => None,
        }
    }
}

/// A reply's body.
#[derive(Debug, Default)]
pub(crate) enum Payload {
    /// No body.
    #[default]
    Empty,
    /// The bytes in [`Reply::bytes`] (error pages: no allocation per reply).
    Buffered,
    /// Owned bytes (a handler's, a listing).
    Bytes(Vec<u8>),
    /// Bytes that live for the whole program.
    Static(&'static [u8]),
    /// A range of a file.
    File(FileBody),
}

/// The responder's answer. One per loop, reused: `clear` keeps the buffers.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub status: u16,
    /// Header fields besides the framing ones (Date, Server,
    /// Content-Length, Connection, Transfer-Encoding), which the protocol owns.
    pub fields: FieldList,
    pub payload: Payload,
    /// The Content-Length of this reply. For GET it is the payload's length;
    /// a 304 carries the length a 200 would have (RFC 9110 8.6) and no body.
    pub content_length: u64,
    /// The request was malformed: answer, then close the connection.
    pub close: bool,
    /// Backing store for [`Payload::Buffered`].
    pub bytes: Vec<u8>,
}

impl Reply {
    fn start(&mut self, status: u16) {
        self.status = status;
        self.fields.clear();
        self.payload = Payload::Empty;
        self.content_length = 0;
        self.close = false;
        self.bytes.clear();
    }

    /// Take the payload out, leaving the reply empty of it.
    pub(crate) fn take_payload(&mut self) -> Payload {
        std::mem::take(&mut self.payload)
    }

    /// The payload's bytes when they are in memory.
    #[cfg(test)]
    pub(crate) fn body_bytes(&self) -> Option<&[u8]> {
        match &self.payload {
            Payload::Empty => Some(&[]),
            Payload::Buffered => Some(&self.bytes),
            Payload::Bytes(b) => Some(b),
            Payload::Static(b) => Some(b),
            Payload::File(f) => f.in_memory(),
        }
    }

    /// An error (or redirect) page for `status`: a short HTML body.
    pub(crate) fn error(&mut self, status: u16) {
        self.start(status);
        self.fields.push("Content-Type", b"text/html");
        if status == 405 {
            self.fields.push("Allow", b"GET, HEAD");
        }
        error_page(status, &mut self.bytes);
        self.content_length = self.bytes.len() as u64;
        self.payload = Payload::Buffered;
    }

    /// An error page for a malformed request: the connection closes after it.
    pub(crate) fn refuse(&mut self, status: u16) {
        self.error(status);
        self.close = true;
    }
}

/// The short HTML body of an error page.
fn error_page(status: u16, out: &mut Vec<u8>) {
    let r = status::reason(status);
    out.extend_from_slice(b"<html><head><title>");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(r.as_bytes());
    out.extend_from_slice(b"</title></head><body><h1>");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(r.as_bytes());
    out.extend_from_slice(b"</h1></body></html>\n");
}

/// A handler and the path prefix it is routed by.
pub(crate) struct Route {
    prefix: String,
    handler: Box<dyn Handler>,
}

impl Route {
    pub(crate) fn new(prefix: String, handler: Box<dyn Handler>) -> Route {
        Route { prefix, handler }
    }

    /// Whether `path` is at or below this route's prefix, on a segment
    /// boundary: `/api` takes `/api`, `/api/` and `/api/x`, not `/apiary`.
    fn matches(&self, path: &str) -> bool {
        let p = self.prefix.as_str();
        match path.strip_prefix(p) {
            Some(rest) => p.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// What every loop's responder reads: the settings, the root, the routes.
pub(crate) struct Site {
    pub settings: Settings,
    pub root: Option<Root>,
    pub routes: Vec<Route>,
}

/// One loop's responder: the shared site plus what it reuses per request.
pub(crate) struct Responder {
    site: Arc<Site>,
    cache: FileCache,
    /// The resolved relative path of the request being answered.
    path: Vec<u8>,
    /// The same path as a decoded URL path, for handlers.
    url: String,
}

impl Responder {
    pub(crate) fn new(site: Arc<Site>) -> Responder {
        Responder { site, cache: FileCache::default(), path: Vec::new(), url: String::new() }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.site.settings
    }

    /// Answer `req` into `reply`.
    pub(crate) fn respond(&mut self, req: &Request<'_>, now: Instant, reply: &mut Reply) {
        let is_get_or_head = req.method == b"GET" || req.method == b"HEAD";
        if !is_get_or_head {
            return reply.error(405);
        }
        let target = match path::split_target(req.target) {
            Ok(t) => t,
            Err(_) => return reply.refuse(400),
        };
        let resolved = match path::resolve(target.raw_path, &mut self.path) {
            Ok(r) => r,
            Err(e @ PathError::BadRequest(_)) | Err(e @ PathError::Escapes) => {
                log::debug!("{}: {e}", req.peer);
                return reply.refuse(400);
            }
        };
        if !self.site.routes.is_empty() {
            self.url.clear();
            self.url.push('/');
            self.url.push_str(&String::from_utf8_lossy(&self.path));
            if resolved.trailing_slash && !self.path.is_empty() {
                self.url.push('/');
            }
            let hreq = handler::Request { req, path: &self.url, query: target.query };
            for route in &self.site.routes {
                if !route.matches(&self.url) {
                    continue;
                }
                // A panicking handler costs its request a 500, not the loop and
                // every other connection on it (where panics unwind at all).
                match panic::catch_unwind(AssertUnwindSafe(|| route.handler.handle(&hreq))) {
                    Ok(Some(resp)) => return from_handler(resp, reply),
                    Ok(None) => {}
                    Err(_) => {
                        log::error!("{}: handler for {} panicked on {}", req.peer, route.prefix, self.url);
                        return reply.error(500);
                    }
                }
            }
        }
        let mut cx = statics::Cx {
            site: &self.site,
            cache: &mut self.cache,
            path: &mut self.path,
            peer: req.peer,
            now,
        };
        statics::serve(&mut cx, req, target.query, resolved, reply);
    }
}

/// Header fields a handler may not set: the protocol frames the reply, and
/// two framings on one kept-alive connection would let a client read one
/// response as two (or two as one). `Date` and `Server` are written once.
const FRAMING: [&str; 7] =
    ["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "date", "server"];

/// Turn a handler's [`handler::Response`] into a reply: a status that is not
/// a final one (1xx, or not three digits) is a 500; framing headers and
/// invalid fields are dropped (and logged); the body's length is known here.
fn from_handler(resp: handler::Response, reply: &mut Reply) {
    if !status::is_final(resp.status) {
        log::error!(
            "handler answered with status {}, not a final status (200-599): 500 instead",
            resp.status
        );
        return reply.error(500);
    }
    reply.start(resp.status);
    for (name, value) in &resp.headers {
        if FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f)) {
            log::warn!("handler set {name}, which the server writes itself: dropped");
            continue;
        }
        if !fields::valid_name(name.as_bytes()) || !fields::valid_value(value.as_bytes()) {
            log::warn!("handler header {name:?}: {value:?} is not a valid field: dropped");
            continue;
        }
        reply.fields.push(name, value.as_bytes());
    }
    let (payload, len) = match resp.body {
        Body::Empty => (Payload::Empty, 0),
        Body::Bytes(b) => {
            let n = b.len() as u64;
            (Payload::Bytes(b), n)
        }
        Body::Static(b) => (Payload::Static(b), b.len() as u64),
        Body::File(f) => match f.metadata() {
            Ok(m) => {
                let n = m.len();
                (Payload::File(FileBody { file: FileRef::Owned(f), offset: 0, end: n }), n)
            }
            Err(e) => {
                log::error!("handler file: {e}");
                return reply.error(500);
            }
        },
    };
    if status::is_bodiless(resp.status) {
        return;
    }
    reply.payload = payload;
    reply.content_length = len;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route::new(prefix.into(), Box::new(|_: &handler::Request<'_>| None))
    }

    #[test]
    fn routes_match_on_segment_boundaries() {
        let table: &[(&str, &str, bool)] = &[
            ("/api", "/api", true),
            ("/api", "/api/", true),
            ("/api", "/api/x", true),
            ("/api", "/apiary", false),
            ("/api", "/ap", false),
            ("/api/", "/api/x", true),
            ("/api/", "/api", false),
            ("/", "/anything", true),
            ("", "/anything", true),
        ];
        for (prefix, path, want) in table {
            assert_eq!(route(prefix).matches(path), *want, "{prefix} vs {path}");
        }
    }

    #[test]
    fn handler_replies_keep_framing_to_the_server() {
        let mut reply = Reply::default();
        let resp = handler::Response::new(200)
            .header("Content-Length", "99")
            .header("transfer-encoding", "chunked")
            .header("Connection", "close")
            .header("bad name", "x")
            .header("X-Ok", "yes")
            .body("hello");
        from_handler(resp, &mut reply);
        assert_eq!(reply.status, 200);
        let names: Vec<_> = reply.fields.iter().map(|(n, _)| n.to_vec()).collect();
        assert_eq!(names, vec![b"X-Ok".to_vec()]);
        assert_eq!(reply.content_length, 5);
        assert_eq!(reply.body_bytes(), Some(&b"hello"[..]));
    }

    #[test]
    fn handler_statuses_that_are_not_final_become_500() {
        for s in [100, 101, 199, 600, 1000, 0] {
            let mut reply = Reply::default();
            from_handler(handler::Response::new(s).body("x"), &mut reply);
            assert_eq!(reply.status, 500, "{s}");
        }
        let mut reply = Reply::default();
        from_handler(handler::Response::new(204).body("ignored"), &mut reply);
        assert_eq!((reply.status, reply.content_length), (204, 0));
        assert!(matches!(reply.payload, Payload::Empty));
    }

    #[test]
    fn error_pages_have_their_length() {
        for s in [400, 403, 404, 405, 413, 414, 431, 500, 501, 505] {
            let mut r = Reply::default();
            r.error(s);
            assert_eq!(r.content_length, r.bytes.len() as u64);
            assert!(std::str::from_utf8(&r.bytes).unwrap().contains(&s.to_string()));
            assert_eq!(r.fields.get("allow").is_some(), s == 405);
        }
    }
}
