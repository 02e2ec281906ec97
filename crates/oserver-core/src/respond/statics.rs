//! Static files: the fallback after the handlers. Maps the resolved path to a
//! file beneath the root and answers it with validators, ranges, precompressed
//! variants and listings. [`answer_file`], the preconditions and ranges, also
//! answers a handler's file replies, so both get the same.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Instant, SystemTime};

use crate::files::autoindex;
use crate::files::cache::{FileCache, Lookup, OpenFile};
use crate::files::fs::OpenError;
use crate::files::path::{self, Resolved};
use crate::http::conditional::{self, LastModified, Precondition};
use crate::http::range::{self, RangeRequest};
use crate::http::{encoding, mime};

use super::message::{FileBody, FileRef, Payload, Reply};
use super::request::Request;
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
    let (len, mtime, etag, last_modified) = (file.len, file.mtime, file.etag, file.last_modified);
    let answer = FileAnswer { file: FileRef::Cached(file), len, etag: etag.as_bytes(), mtime };
    answer_file(req, answer, reply, |reply, part| {
        if part == FilePart::Unsatisfiable {
            return;
        }
        if part == FilePart::Content {
            reply.fields.push("Content-Type", ctype.as_bytes());
        }
        push_validators(reply, Some(etag.as_bytes()), last_modified.as_ref());
        if let Some(secs) = settings.max_age {
            reply.fields.push_display("Cache-Control", format_args!("max-age={secs}"));
        }
        if settings.precompressed {
            reply.fields.push("Vary", b"Accept-Encoding");
        }
        if let (FilePart::Content, Some(enc)) = (part, coding) {
            reply.fields.push("Content-Encoding", enc.as_bytes());
        }
    });
}

/// A file about to answer a GET or HEAD, with what its preconditions and
/// ranges are weighed against.
pub(super) struct FileAnswer<'a> {
    pub file: FileRef,
    pub len: u64,
    /// The entity-tag sent with it, compared with If-None-Match and If-Range.
    pub etag: &'a [u8],
    /// The time sent as its Last-Modified, compared with If-Modified-Since
    /// and a date in If-Range.
    pub mtime: SystemTime,
}

/// Which reply [`answer_file`] makes, for its caller's header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FilePart {
    /// 200 or 206: the file, or a range of it, follows.
    Content,
    /// 304: the client's copy is current; the validators go with it.
    NotModified,
    /// 416: an error page, not the file.
    Unsatisfiable,
}

/// Answer a GET or HEAD with a file, as static files and handlers' file
/// replies both are: 304 when If-None-Match or If-Modified-Since says the
/// client's copy is current, 416 when no range asked for is satisfiable, 206
/// for one range (when If-Range, if any, still matches), else 200; with
/// Accept-Ranges and Content-Range. `fields` adds the caller's header fields
/// (the validators among them) right after the status is set, told which
/// reply it is.
pub(super) fn answer_file(
    req: &Request<'_>,
    answer: FileAnswer<'_>,
    reply: &mut Reply,
    fields: impl FnOnce(&mut Reply, FilePart),
) {
    let FileAnswer { file, len, etag, mtime } = answer;
    let inm = req.fields.get(b"if-none-match");
    let ims = req.fields.get(b"if-modified-since");
    if (inm.is_some() || ims.is_some())
        && conditional::evaluate(inm, ims, etag, mtime) == Precondition::NotModified
    {
        reply.start(304);
        fields(reply, FilePart::NotModified);
        // RFC 9110 8.6: a 304 may carry the Content-Length a 200 would have.
        reply.content_length = len;
        return;
    }

    let mut range = RangeRequest::Full;
    if let Some(r) = req.fields.get(b"range") {
        let current = req.fields.get(b"if-range").map_or(true, |v| conditional::if_range(v, etag, mtime));
        if current {
            range = range::parse_range(r, len);
        }
    }
    let (status, start, end) = match range {
        RangeRequest::Full => (200, 0, len),
        RangeRequest::Partial { start, end } => (206, start, end + 1),
        RangeRequest::Unsatisfiable => {
            reply.error(416);
            fields(reply, FilePart::Unsatisfiable);
            let mut cr = Vec::with_capacity(32);
            range::content_range_unsatisfied(&mut cr, len);
            reply.fields.push("Content-Range", &cr);
            return;
        }
    };
    reply.start(status);
    fields(reply, FilePart::Content);
    // A handler may have said so itself.
    if reply.fields.get("accept-ranges").is_none() {
        reply.fields.push("Accept-Ranges", b"bytes");
    }
    if status == 206 {
        let mut cr = Vec::with_capacity(48);
        range::content_range(&mut cr, start, end - 1, len);
        reply.fields.push("Content-Range", &cr);
    }
    reply.content_length = end - start;
    reply.payload = Payload::File(FileBody { file, offset: start, end });
}

/// Add `Last-Modified` and `ETag`, each when given.
pub(super) fn push_validators(reply: &mut Reply, etag: Option<&[u8]>, last_modified: Option<&LastModified>) {
    if let Some(date) = last_modified {
        reply.fields.push("Last-Modified", date.as_bytes());
    }
    if let Some(etag) = etag {
        reply.fields.push("ETag", etag);
    }
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::request::TestRequest;
    use super::*;

    /// A 50-byte file, open, removed from the directory at once.
    fn fifty_bytes(tag: &str) -> FileRef {
        let path = std::env::temp_dir().join(format!("oserver-statics-{}-{tag}", std::process::id()));
        std::fs::write(&path, (0..50u8).collect::<Vec<_>>()).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        FileRef::Owned(file)
    }

    /// 1994-11-06T08:49:37Z, the RFC's example date, and that date written out.
    const T: u64 = 784_111_777;
    const FIX: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const OLD: &str = "Sun, 06 Nov 1994 08:49:36 GMT";

    #[test]
    fn answer_file_weighs_preconditions_then_ranges() {
        use FilePart::*;
        type Case<'a> = (&'a [(&'a str, &'a str)], u16, FilePart, Option<(u64, u64)>, Option<&'a str>);
        let cases: &[Case] = &[
            (&[], 200, Content, Some((0, 50)), None),
            (&[("If-None-Match", "\"x\"")], 304, NotModified, None, None),
            (&[("If-None-Match", "W/\"x\", \"y\"")], 304, NotModified, None, None),
            (&[("If-Modified-Since", FIX)], 304, NotModified, None, None),
            (&[("If-Modified-Since", OLD)], 200, Content, Some((0, 50)), None),
            // If-None-Match decides alone.
            (&[("If-None-Match", "\"y\""), ("If-Modified-Since", FIX)], 200, Content, Some((0, 50)), None),
            (&[("Range", "bytes=10-19")], 206, Content, Some((10, 20)), Some("bytes 10-19/50")),
            (&[("Range", "bytes=-5")], 206, Content, Some((45, 50)), Some("bytes 45-49/50")),
            (&[("Range", "bytes=50-")], 416, Unsatisfiable, None, Some("bytes */50")),
            (&[("Range", "bytes=1-2,4-5")], 200, Content, Some((0, 50)), None),
            (
                &[("Range", "bytes=10-19"), ("If-Range", "\"x\"")],
                206,
                Content,
                Some((10, 20)),
                Some("bytes 10-19/50"),
            ),
            (
                &[("Range", "bytes=10-19"), ("If-Range", FIX)],
                206,
                Content,
                Some((10, 20)),
                Some("bytes 10-19/50"),
            ),
            (&[("Range", "bytes=10-19"), ("If-Range", "\"y\"")], 200, Content, Some((0, 50)), None),
            (&[("Range", "bytes=10-19"), ("If-Range", OLD)], 200, Content, Some((0, 50)), None),
            // A current copy wins over a range.
            (&[("Range", "bytes=50-"), ("If-None-Match", "\"x\"")], 304, NotModified, None, None),
        ];
        for (i, &(fields, status, part, body, content_range)) in cases.iter().enumerate() {
            let req = TestRequest::new("GET", fields);
            let answer =
                FileAnswer { file: fifty_bytes(&i.to_string()), len: 50, etag: b"\"x\"", mtime: at(T) };
            let mut reply = Reply::default();
            let mut told = None;
            answer_file(&req.req(), answer, &mut reply, |reply, p| {
                told = Some(p);
                reply.fields.push("X-Caller", b"1");
            });
            assert_eq!((reply.status, told), (status, Some(part)), "{fields:?}");
            assert_eq!(reply.fields.get("x-caller"), Some(&b"1"[..]), "{fields:?}");
            let range = reply.fields.get("content-range").map(|v| std::str::from_utf8(v).unwrap());
            assert_eq!(range, content_range, "{fields:?}");
            match (&reply.payload, body) {
                (Payload::File(f), Some((start, end))) => {
                    assert_eq!(
                        (f.offset, f.end, reply.content_length),
                        (start, end, end - start),
                        "{fields:?}"
                    );
                    assert_eq!(reply.fields.get("accept-ranges"), Some(&b"bytes"[..]), "{fields:?}");
                }
                // RFC 9110 8.6: the length a 200 would have.
                (Payload::Empty, None) if status == 304 => assert_eq!(reply.content_length, 50),
                // The error page.
                (Payload::Buffered, None) if status == 416 => {
                    assert_eq!(reply.fields.get("content-type"), Some(&b"text/html"[..]))
                }
                (p, _) => panic!("{fields:?}: {status} with {p:?}"),
            }
        }
    }

    #[test]
    fn answer_file_keeps_the_callers_accept_ranges() {
        let req = TestRequest::new("GET", &[]);
        let answer = FileAnswer { file: fifty_bytes("ar"), len: 50, etag: b"\"x\"", mtime: at(T) };
        let mut reply = Reply::default();
        answer_file(&req.req(), answer, &mut reply, |reply, _| reply.fields.push("Accept-Ranges", b"bytes"));
        assert_eq!(reply.fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(b"accept-ranges")).count(), 1);
    }

    #[test]
    fn validators_are_sent_as_an_http_date_and_the_tag() {
        let mut reply = Reply::default();
        let date = LastModified::new(at(T) + Duration::from_millis(500));
        push_validators(&mut reply, Some(b"\"x\""), date.as_ref());
        let got: Vec<_> = reply.fields.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
        let want =
            [(b"Last-Modified".to_vec(), FIX.as_bytes().to_vec()), (b"ETag".to_vec(), b"\"x\"".to_vec())];
        assert_eq!(got, want);
        let mut reply = Reply::default();
        push_validators(&mut reply, None, None);
        assert_eq!(reply.fields.iter().count(), 0);
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }
}
