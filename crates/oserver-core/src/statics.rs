//! Static files: the fallback after the handlers. Maps the resolved path to a
//! file beneath the root and answers it with validators, ranges, precompressed
//! variants and listings.

use std::net::SocketAddr;
use std::rc::Rc;

use httpdate::HttpDate;

use crate::cache::{Lookup, OpenFile};
use crate::conditional::{self, Precondition};
use crate::fs::OpenError;
use crate::parse::RequestHead;
use crate::path::Resolved;
use crate::range::{self, RangeRequest};
use crate::respond::{error, error_with, Ctx, FileBody, FileRef, Reply};
use crate::response::{Clock, Head};
use crate::{autoindex, encoding, mime};

pub(crate) fn serve(
    cx: &mut Ctx<'_>,
    head: &RequestHead<'_>,
    raw_path: &[u8],
    resolved: Resolved,
    keep_alive: bool,
    is_head: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let clock = cx.clock;
    let cfg = &cx.sh.cfg;
    let Some(root) = cx.sh.root.as_ref() else {
        return error(clock, 404, keep_alive, is_head, out);
    };
    if resolved.hidden && !cfg.hidden {
        return error(clock, 404, keep_alive, is_head, out);
    }
    let found = match cx.cache.lookup(root, &cx.scratch.path, cx.now) {
        Ok(l) => l,
        Err(e) => return open_error(cx.peer, clock, e, keep_alive, is_head, out),
    };
    let file = match found {
        Lookup::File(f) if !resolved.trailing_slash => f,
        // `/page.html/` names a directory that is not there.
        Lookup::File(_) => return error(clock, 404, keep_alive, is_head, out),
        Lookup::Special => return error(clock, 403, keep_alive, is_head, out),
        Lookup::Dir if !resolved.trailing_slash => {
            return redirect_to_dir(clock, raw_path, keep_alive, is_head, out)
        }
        Lookup::Dir => {
            let rel = &mut cx.scratch.path;
            let dir_len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(b"index.html");
            match cx.cache.lookup(root, rel, cx.now) {
                Ok(Lookup::File(f)) => f,
                Ok(_) => return error(clock, 403, keep_alive, is_head, out),
                Err(OpenError::NotFound) if cfg.autoindex => {
                    rel.truncate(dir_len);
                    return listing(cx, keep_alive, is_head, out);
                }
                Err(OpenError::NotFound) | Err(OpenError::Forbidden) => {
                    return error(clock, 403, keep_alive, is_head, out)
                }
                Err(e) => return open_error(cx.peer, clock, e, keep_alive, is_head, out),
            }
        }
    };
    serve_file(cx, head, file, keep_alive, is_head, out)
}

/// `/dir` is a directory: send the client to `/dir/` so relative links in its
/// index resolve.
fn redirect_to_dir(
    clock: &Clock,
    raw_path: &[u8],
    keep_alive: bool,
    is_head: bool,
    out: &mut Vec<u8>,
) -> Reply {
    error_with(clock, 301, &[("Location", &[raw_path, b"/"])], keep_alive, is_head, out)
}

fn open_error(
    peer: SocketAddr,
    clock: &Clock,
    e: OpenError,
    keep_alive: bool,
    is_head: bool,
    out: &mut Vec<u8>,
) -> Reply {
    match e {
        OpenError::NotFound => error(clock, 404, keep_alive, is_head, out),
        OpenError::Forbidden => error(clock, 403, keep_alive, is_head, out),
        OpenError::Io(e) => {
            log::error!("{peer}: open: {e}");
            error(clock, 500, keep_alive, is_head, out)
        }
    }
}

/// Answer a regular file: 304 when the client's copy is current, 206 or 416
/// for ranges, else 200; the precompressed variant when asked and present.
fn serve_file(
    cx: &mut Ctx<'_>,
    head: &RequestHead<'_>,
    file: Rc<OpenFile>,
    keep_alive: bool,
    is_head: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let cfg = &cx.sh.cfg;
    let ctype = mime::content_type(&cx.scratch.path);
    let (mut file, mut coding) = (file, None);
    if cfg.precompressed {
        if let (Some(ae), Some(root)) = (head.header(b"accept-encoding"), cx.sh.root.as_ref()) {
            let name = &mut cx.scratch.path;
            let base = name.len();
            for c in encoding::preferred(encoding::accepts(ae)) {
                name.truncate(base);
                name.extend_from_slice(c.suffix.as_bytes());
                if let Ok(Lookup::File(f)) = cx.cache.lookup(root, name, cx.now) {
                    (file, coding) = (f, Some(c.content_encoding));
                    break;
                }
            }
            name.truncate(base);
        }
    }
    let (len, mtime, etag) = (file.len, file.mtime, file.etag);

    let validators = |h: &mut Head<'_>| {
        if let Some(t) = conditional::last_modified(mtime) {
            h.header_display("Last-Modified", HttpDate::from(t));
        }
        h.header("ETag", etag.as_bytes());
        if let Some(secs) = cfg.max_age {
            h.header_display("Cache-Control", format_args!("max-age={secs}"));
        }
        if cfg.precompressed {
            h.header("Vary", b"Accept-Encoding");
        }
    };

    let inm = head.header(b"if-none-match");
    let ims = head.header(b"if-modified-since");
    if (inm.is_some() || ims.is_some())
        && conditional::evaluate(inm, ims, etag.as_bytes(), mtime) == Precondition::NotModified
    {
        let mut h = Head::start(out, 304, cx.clock);
        validators(&mut h);
        // RFC 9110 8.6: a 304 may carry the Content-Length a 200 would have.
        h.finish(len, keep_alive);
        return Reply { status: 304, keep_alive, file: None, body_bytes: 0 };
    }

    let mut range = RangeRequest::Full;
    if let Some(r) = head.header(b"range") {
        let current =
            head.header(b"if-range").map_or(true, |v| conditional::if_range(v, etag.as_bytes(), mtime));
        if current {
            range = range::parse_range(r, len);
        }
    }
    let (status, start, end) = match range {
        RangeRequest::Full => (200, 0, len),
        RangeRequest::Partial { start, end } => (206, start, end + 1),
        RangeRequest::Unsatisfiable => {
            let mut cr = Vec::with_capacity(32);
            range::content_range_unsatisfied(&mut cr, len);
            return error_with(cx.clock, 416, &[("Content-Range", &[&cr])], keep_alive, is_head, out);
        }
    };
    let mut h = Head::start(out, status, cx.clock);
    h.header("Content-Type", ctype.as_bytes());
    validators(&mut h);
    h.header("Accept-Ranges", b"bytes");
    if let Some(enc) = coding {
        h.header("Content-Encoding", enc.as_bytes());
    }
    if status == 206 {
        let mut cr = Vec::with_capacity(48);
        range::content_range(&mut cr, start, end - 1, len);
        h.header("Content-Range", &cr);
    }
    h.finish(end - start, keep_alive);
    if is_head {
        return Reply { status, keep_alive, file: None, body_bytes: 0 };
    }
    if let Some(small) = &file.small {
        // Bounds hold: start <= end <= len == small.len().
        if let Some(body) = small.get(start as usize..end as usize) {
            out.extend_from_slice(body);
            return Reply { status, keep_alive, file: None, body_bytes: end - start };
        }
    }
    Reply {
        status,
        keep_alive,
        file: Some(FileBody { file: FileRef::Cached(file), offset: start, end }),
        body_bytes: end - start,
    }
}

/// `--autoindex`: an HTML listing of `dir`.
fn listing(cx: &mut Ctx<'_>, keep_alive: bool, is_head: bool, out: &mut Vec<u8>) -> Reply {
    let dir = match cx.sh.root.as_ref().map(|r| r.open(&cx.scratch.path)) {
        Some(Ok(d)) => d,
        Some(Err(e)) => return open_error(cx.peer, cx.clock, e, keep_alive, is_head, out),
        None => return error(cx.clock, 404, keep_alive, is_head, out),
    };
    let s = cx.scratch.url_path(true);
    let page = match autoindex::render(&dir, s.as_bytes(), cx.sh.cfg.hidden) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{}: listing {s}: {e}", cx.peer);
            return error(cx.clock, 500, keep_alive, is_head, out);
        }
    };
    let mut h = Head::start(out, 200, cx.clock);
    h.header("Content-Type", b"text/html; charset=utf-8");
    h.finish(page.len() as u64, keep_alive);
    if is_head {
        return Reply { status: 200, keep_alive, file: None, body_bytes: 0 };
    }
    out.extend_from_slice(&page);
    Reply { status: 200, keep_alive, file: None, body_bytes: page.len() as u64 }
}
