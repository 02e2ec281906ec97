//! Static files: the fallback after the handlers. Maps the resolved path to a
//! file beneath the root and answers it with validators, ranges, precompressed
//! variants and listings.

use std::fs::{File, Metadata};

use crate::fs::OpenError;
use crate::parse::RequestHead;
use crate::path::Resolved;
use crate::respond::{error, Ctx, FileBody, Reply};
use crate::response::Head;
use crate::{mime};

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
    let rel = &mut cx.scratch.path;
    let file = match root.open(rel) {
        Ok(f) => f,
        Err(e) => return open_error(cx_peer(cx.peer), clock, e, keep_alive, is_head, out),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return open_error(cx_peer(cx.peer), clock, OpenError::Io(e), keep_alive, is_head, out),
    };
    if meta.is_dir() {
        if !resolved.trailing_slash {
            let mut h = Head::start(out, 301, clock);
            let mut loc = Vec::with_capacity(raw_path.len() + 1);
            loc.extend_from_slice(raw_path);
            loc.push(b'/');
            h.header("Location", &loc);
            h.header("Content-Type", b"text/html");
            let len = crate::response::error_body_len(301);
            h.finish(len, keep_alive);
            if !is_head {
                crate::response::error_body(301, out);
            }
            return Reply { status: 301, keep_alive, file: None, body_bytes: if is_head { 0 } else { len } };
        }
        let dir_len = rel.len();
        if !rel.is_empty() {
            rel.push(b'/');
        }
        rel.extend_from_slice(b"index.html");
        match root.open(rel) {
            Ok(f) => match f.metadata() {
                Ok(m) if m.is_file() => return serve_file(cx, head, f, m, keep_alive, is_head, out),
                _ => return error(clock, 403, keep_alive, is_head, out),
            },
            Err(OpenError::NotFound) if cfg.autoindex => {
                cx.scratch.path.truncate(dir_len);
                return listing(cx, &file, keep_alive, is_head, out);
            }
            Err(OpenError::NotFound) | Err(OpenError::Forbidden) => {
                return error(clock, 403, keep_alive, is_head, out)
            }
            Err(e) => return open_error(cx_peer(cx.peer), clock, e, keep_alive, is_head, out),
        }
    }
    if resolved.trailing_slash {
        return error(clock, 404, keep_alive, is_head, out);
    }
    if !meta.is_file() {
        // FIFOs, devices and sockets are never served.
        return error(clock, 403, keep_alive, is_head, out);
    }
    serve_file(cx, head, file, meta, keep_alive, is_head, out)
}

fn cx_peer(p: std::net::SocketAddr) -> std::net::SocketAddr {
    p
}

fn open_error(
    peer: std::net::SocketAddr,
    clock: &crate::response::Clock,
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

/// Answer a regular file: 200 (whole), later also 304, 206 and 416.
fn serve_file(
    cx: &mut Ctx<'_>,
    _head: &RequestHead<'_>,
    file: File,
    meta: Metadata,
    keep_alive: bool,
    is_head: bool,
    out: &mut Vec<u8>,
) -> Reply {
    let len = meta.len();
    let ctype = mime::content_type(&cx.scratch.path);
    let mut h = Head::start(out, 200, cx.clock);
    h.header("Content-Type", ctype.as_bytes());
    h.finish(len, keep_alive);
    if is_head {
        return Reply { status: 200, keep_alive, file: None, body_bytes: 0 };
    }
    Reply { status: 200, keep_alive, file: Some(FileBody { file, offset: 0, end: len }), body_bytes: len }
}

fn listing(cx: &mut Ctx<'_>, _dir: &File, keep_alive: bool, is_head: bool, out: &mut Vec<u8>) -> Reply {
    error(cx.clock, 403, keep_alive, is_head, out)
}
