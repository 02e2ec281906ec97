//! Static files: the fallback after the handlers. Maps the resolved path to a
//! file beneath the root and answers it with validators, ranges, precompressed
//! variants and listings.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use httpdate::HttpDate;

use crate::files::autoindex;
use crate::files::cache::{FileCache, Lookup, OpenFile};
use crate::files::fs::OpenError;
use crate::files::path::{self, Resolved};
use crate::http::conditional::{self, Precondition};
use crate::http::range::{self, RangeRequest};
use crate::http::{encoding, mime};

use super::message::{FileBody, FileRef, Payload, Reply, Request};
use super::site::Site;

/// What the static path borrows from the responder.
pub(super) struct Cx<'a> {
    pub site: &'a Site,
    pub cache: &'a mut FileCache,
    /// The resolved relative path; extended in place for `index.html` and
    /// the precompressed variants, and put back.
    pub path: &'a mut Vec<u8>,
    pub peer: SocketAddr,
    pub now: Instant,
}

pub(super) fn serve(
    cx: &mut Cx<'_>,
    req: &Request<'_>,
    query: Option<&[u8]>,
    resolved: Resolved,
    reply: &mut Reply,
) {
    let settings = &cx.site.settings;
    let Some(root) = cx.site.root.as_ref() else {
        return reply.error(404);
    };
    if resolved.hidden && !settings.hidden {
        return reply.error(404);
    }
    let found = match cx.cache.lookup(root, cx.path, cx.now) {
        Ok(l) => l,
        Err(e) => return open_error(cx.peer, e, reply),
    };
    let file = match found {
        Lookup::File(f) if !resolved.trailing_slash => f,
        // `/page.html/` names a directory that is not there.
        Lookup::File(_) => return reply.error(404),
        Lookup::Special => return reply.error(403),
        Lookup::Dir if !resolved.trailing_slash => return redirect_to_dir(cx.path, query, reply),
        Lookup::Dir => {
            let rel = &mut *cx.path;
            let dir_len = rel.len();
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(b"index.html");
            match cx.cache.lookup(root, rel, cx.now) {
                Ok(Lookup::File(f)) => f,
                Ok(_) => return reply.error(403),
                Err(OpenError::NotFound) if settings.autoindex => {
                    rel.truncate(dir_len);
                    return listing(cx, reply);
                }
                Err(OpenError::NotFound) | Err(OpenError::Forbidden) => return reply.error(403),
                Err(e) => return open_error(cx.peer, e, reply),
            }
        }
    };
    serve_file(cx, req, file, reply)
}

/// `/dir` is a directory: send the client to `/dir/` so relative links in its
/// index resolve. The Location is built from the resolved path, encoded, so
/// nothing in the target can point it at another host.
fn redirect_to_dir(rel: &[u8], query: Option<&[u8]>, reply: &mut Reply) {
    reply.error(301);
    let mut location = Vec::with_capacity(rel.len() + 8);
    path::url_path(rel, true, &mut location);
    if let Some(q) = query {
        // The parser admits only visible ASCII in a target, so the query
        // needs no encoding to be a valid field value.
        location.push(b'?');
        location.extend_from_slice(q);
    }
    reply.fields.push("Location", &location);
}

fn open_error(peer: SocketAddr, e: OpenError, reply: &mut Reply) {
    match e {
        OpenError::NotFound => reply.error(404),
        OpenError::Forbidden => reply.error(403),
        OpenError::Io(e) => {
            log::error!("{peer}: open: {e}");
            reply.error(500)
        }
    }
}

/// Answer a regular file: 304 when the client's copy is current, 206 or 416
/// for ranges, else 200; the precompressed variant when asked and present.
fn serve_file(cx: &mut Cx<'_>, req: &Request<'_>, file: Rc<OpenFile>, reply: &mut Reply) {
    let settings = &cx.site.settings;
    let ctype = mime::content_type(cx.path);
    let (mut file, mut coding) = (file, None);
    if settings.precompressed {
        if let (Some(ae), Some(root)) = (req.fields.get(b"accept-encoding"), cx.site.root.as_ref()) {
            let name = &mut *cx.path;
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

    let validators = |reply: &mut Reply| {
        if let Some(t) = conditional::last_modified(mtime) {
            reply.fields.push_display("Last-Modified", HttpDate::from(t));
        }
        reply.fields.push("ETag", etag.as_bytes());
        if let Some(secs) = settings.max_age {
            reply.fields.push_display("Cache-Control", format_args!("max-age={secs}"));
        }
        if settings.precompressed {
            reply.fields.push("Vary", b"Accept-Encoding");
        }
    };

    let inm = req.fields.get(b"if-none-match");
    let ims = req.fields.get(b"if-modified-since");
    if (inm.is_some() || ims.is_some())
        && conditional::evaluate(inm, ims, etag.as_bytes(), mtime) == Precondition::NotModified
    {
        reply.start(304);
        validators(reply);
        // RFC 9110 8.6: a 304 may carry the Content-Length a 200 would have.
        reply.content_length = len;
        return;
    }

    let mut range = RangeRequest::Full;
    if let Some(r) = req.fields.get(b"range") {
        let current =
            req.fields.get(b"if-range").map_or(true, |v| conditional::if_range(v, etag.as_bytes(), mtime));
        if current {
            range = range::parse_range(r, len);
        }
    }
    let (status, start, end) = match range {
        RangeRequest::Full => (200, 0, len),
        RangeRequest::Partial { start, end } => (206, start, end + 1),
        RangeRequest::Unsatisfiable => {
            reply.error(416);
            let mut cr = Vec::with_capacity(32);
            range::content_range_unsatisfied(&mut cr, len);
            reply.fields.push("Content-Range", &cr);
            return;
        }
    };
    reply.start(status);
    reply.fields.push("Content-Type", ctype.as_bytes());
    validators(reply);
    reply.fields.push("Accept-Ranges", b"bytes");
    if let Some(enc) = coding {
        reply.fields.push("Content-Encoding", enc.as_bytes());
    }
    if status == 206 {
        let mut cr = Vec::with_capacity(48);
        range::content_range(&mut cr, start, end - 1, len);
        reply.fields.push("Content-Range", &cr);
    }
    reply.content_length = end - start;
    reply.payload = Payload::File(FileBody { file: FileRef::Cached(file), offset: start, end });
}

/// `--autoindex`: an HTML listing of the directory.
fn listing(cx: &mut Cx<'_>, reply: &mut Reply) {
    let dir = match cx.site.root.as_ref().map(|r| r.open(cx.path)) {
        Some(Ok(d)) => d,
        Some(Err(e)) => return open_error(cx.peer, e, reply),
        None => return reply.error(404),
    };
    // The page shows the decoded path; its links are encoded by autoindex.
    let mut shown = Vec::with_capacity(cx.path.len() + 2);
    shown.push(b'/');
    shown.extend_from_slice(cx.path);
    if !cx.path.is_empty() {
        shown.push(b'/');
    }
    let page = match autoindex::render(&dir, &shown, cx.site.settings.hidden) {
        Ok(p) => p,
        Err(e) => {
            log::error!("{}: listing {}: {e}", cx.peer, String::from_utf8_lossy(&shown));
            return reply.error(500);
        }
    };
    reply.start(200);
    reply.fields.push("Content-Type", b"text/html; charset=utf-8");
    reply.content_length = page.len() as u64;
    reply.payload = Payload::Bytes(page);
}
