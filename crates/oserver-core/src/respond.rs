//! From a parsed request to a response: method and framing checks, path
//! resolution, handler routing, then static files as the fallback.

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Instant;

use crate::cache::{FileCache, OpenFile};

use crate::handler::{Body, Request};
use crate::parse::RequestHead;
use crate::path::{self, PathError};
use crate::response::{error_body, error_body_len, Clock, Head};
use crate::server::Shared;
use crate::statics;

/// Largest request body read and thrown away so the connection can stay open.
/// A static server is sent bodies only by mistake (a form posted to it); 1 MiB
/// covers those, and beyond it closing is cheaper than reading.
pub(crate) const MAX_DISCARD: u64 = 1 << 20;

/// A file to send: from the open-file cache, or a handler's own.
#[derive(Debug)]
pub(crate) enum FileRef {
    Cached(Rc<OpenFile>),
    Owned(File),
}

impl FileRef {
    pub(crate) fn fd(&self) -> RawFd {
        match self {
            FileRef::Cached(f) => f.file.as_raw_fd(),
            FileRef::Owned(f) => f.as_raw_fd(),
        }
    }
}

/// The body part of a response that is not in the head buffer.
#[derive(Debug)]
pub(crate) struct FileBody {
    pub file: FileRef,
    pub offset: u64,
    pub end: u64,
}

/// What the connection does with a rendered response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub keep_alive: bool,
    /// Sent after the head buffer, with sendfile.
    pub file: Option<FileBody>,
    /// Body bytes the response carries (for the access log).
    pub body_bytes: u64,
}

/// Buffers reused from request to request by one event loop.
#[derive(Default)]
pub(crate) struct Scratch {
    /// The resolved relative path (see `path::resolve`).
    pub path: Vec<u8>,
    path_str: String,
}

impl Scratch {
    /// `path` as a URL path again: a leading `/`, and a trailing one when
    /// asked (never doubled for the root). Lossy where the bytes are not UTF-8.
    pub(crate) fn url_path(&mut self, trailing_slash: bool) -> &str {
        let s = &mut self.path_str;
        s.clear();
        s.push('/');
        s.push_str(&String::from_utf8_lossy(&self.path));
        if trailing_slash && !self.path.is_empty() {
            s.push('/');
        }
        s
    }
}

/// Everything about the request that `respond` needs besides the head.
pub(crate) struct Ctx<'a> {
    pub sh: &'a Shared,
    pub clock: &'a Clock,
    pub scratch: &'a mut Scratch,
    pub cache: &'a mut FileCache,
    pub peer: SocketAddr,
    pub now: Instant,
    pub draining: bool,
}

/// Render the response to `head` into `out` (head and any in-memory body).
pub(crate) fn respond(cx: &mut Ctx<'_>, head: &RequestHead<'_>, out: &mut Vec<u8>) -> Reply {
    let is_get = head.method == b"GET";
    let is_head = head.method == b"HEAD";
    // A chunked body is not decoded: answer, then close, so its bytes are
    // never taken for a request.
    let keep_alive = head.keep_alive && !cx.draining && !head.chunked;
    if head.content_length.unwrap_or(0) > MAX_DISCARD {
        let status = if is_get || is_head { 413 } else { 405 };
        return error(cx.clock, status, false, is_head, out);
    }
    if !is_get && !is_head {
        return error(cx.clock, 405, keep_alive, false, out);
    }
    let target = match path::split_target(head.target) {
        Ok(t) => t,
        Err(_) => return error(cx.clock, 400, false, is_head, out),
    };
    let resolved = match path::resolve(target.raw_path, &mut cx.scratch.path) {
        Ok(r) => r,
        Err(PathError::BadRequest(why)) => {
            log::debug!("{}: bad target: {why}", cx.peer);
            return error(cx.clock, 400, false, is_head, out);
        }
        Err(PathError::Escapes) => {
            log::debug!("{}: target climbs above the root", cx.peer);
            return error(cx.clock, 400, false, is_head, out);
        }
    };
    if !cx.sh.handlers.is_empty() {
        let path = cx.scratch.url_path(resolved.trailing_slash);
        let req = Request { head, path, query: target.query, peer: cx.peer };
        for (prefix, h) in &cx.sh.handlers {
            if !req.path().starts_with(prefix.as_str()) {
                continue;
            }
            // A panicking handler costs its request a 500, not the loop and
            // every other connection on it (where panics unwind at all).
            match panic::catch_unwind(AssertUnwindSafe(|| h.handle(&req))) {
                Ok(Some(resp)) => return render_handler(cx.clock, resp, keep_alive, is_head, out),
                Ok(None) => {}
                Err(_) => {
                    log::error!("{}: handler for {prefix} panicked on {}", cx.peer, req.path());
                    return error(cx.clock, 500, false, is_head, out);
                }
            }
        }
    }
    statics::serve(cx, head, target.raw_path, resolved, keep_alive, is_head, out)
}

/// An error page. `keep_alive` false for errors caused by the request.
pub(crate) fn error(clock: &Clock, status: u16, keep_alive: bool, is_head: bool, out: &mut Vec<u8>) -> Reply {
    let allow: &[(&str, &[&[u8]])] = if status == 405 { &[("Allow", &[b"GET, HEAD"])] } else { &[] };
    error_with(clock, status, allow, keep_alive, is_head, out)
}

/// An error (or redirect) page with extra headers, each value given in parts
/// so it is written without building a string first.
pub(crate) fn error_with(
    clock: &Clock,
    status: u16,
    extra: &[(&str, &[&[u8]])],
    keep_alive: bool,
    is_head: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let mut h = Head::start(out, status, clock);
    h.header("Content-Type", b"text/html");
    for (name, parts) in extra {
        h.header_parts(name, parts);
    }
    let len = error_body_len(status);
    h.finish(len, keep_alive);
    if !is_head {
        error_body(status, out);
    }
    Reply { status, keep_alive, file: None, body_bytes: if is_head { 0 } else { len } }
}

fn render_handler(
    clock: &Clock,
    resp: crate::Response,
    keep_alive: bool,
    is_head: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let status = resp.status;
    let mut h = Head::start(out, status, clock);
    for (k, v) in &resp.headers {
        h.header(k, v.as_bytes());
    }
    let body = resp.body;
    let len = match &body {
        Body::Empty => 0,
        Body::Bytes(b) => b.len() as u64,
        Body::Static(b) => b.len() as u64,
        Body::File(f) => match f.metadata() {
            Ok(m) => m.len(),
            Err(e) => {
                log::error!("handler file: {e}");
                out.clear();
                return error(clock, 500, keep_alive, is_head, out);
            }
        },
    };
    // Status codes that never carry a body (RFC 9110 6.4.1).
    let bodiless = status == 204 || status == 304 || (100..200).contains(&status);
    h.finish(if bodiless { 0 } else { len }, keep_alive);
    if is_head || bodiless {
        return Reply { status, keep_alive, file: None, body_bytes: 0 };
    }
    let file = match body {
        Body::Empty => None,
        Body::Bytes(b) => {
            out.extend_from_slice(&b);
            None
        }
        Body::Static(b) => {
            out.extend_from_slice(b);
            None
        }
        Body::File(file) => Some(FileBody { file: FileRef::Owned(file), offset: 0, end: len }),
    };
    Reply { status, keep_alive, file, body_bytes: len }
}
