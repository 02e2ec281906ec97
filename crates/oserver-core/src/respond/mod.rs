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
pub(crate) mod later;
mod message;
pub(crate) mod pool;
mod request;
mod site;
mod statics;
pub(crate) mod stream;

use std::borrow::Cow;
use std::fs::File;
#[cfg(panic = "unwind")]
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Instant;

use crate::files::cache::{self, FileCache};
use crate::files::path;
use crate::http::conditional::LastModified;
use crate::http::{fields, status};
use crate::settings::Settings;

use handler::Body;
use handler::{Answer, Later};
pub(crate) use message::{FileBody, FileRef, Payload, Reply};
use pool::OwnedRequest;
pub(crate) use request::{Request, Version};
pub(crate) use site::{Route, Site};
use statics::FilePart;

/// One loop's responder: the shared site plus what it reuses per request.
pub(crate) struct Responder {
    site: Arc<Site>,
    cache: FileCache,
    /// The resolved relative path of the request being answered.
    path: Vec<u8>,
    /// The same path as a decoded URL path, for handlers.
    url: String,
    checked: Checked,
}

impl Responder {
    pub(crate) fn new(site: Arc<Site>) -> Responder {
        Responder {
            site,
            cache: FileCache::default(),
            path: Vec::new(),
            url: String::new(),
            checked: Checked::default(),
        }
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.site.settings
    }

    /// Answer `req` into `reply`. A reply whose payload is
    /// [`Payload::Later`] is not one yet: the protocol waits for it, then
    /// calls [`Responder::finish`].
    pub(crate) fn respond(&mut self, req: &Request<'_>, now: Instant, reply: &mut Reply) {
        match (req.secure, self.site.settings.redirect_https) {
            (false, Some(port)) => redirect_https(req, port, reply),
            _ => {
                self.answer(req, now, reply);
                self.hsts(req, reply);
            }
        }
    }

    /// A late reply came (see [`Payload::Later`]): make it the reply to
    /// `req` (its head; the body was the handler's already).
    pub(crate) fn finish(&mut self, req: &Request<'_>, answer: Answer, reply: &mut Reply) {
        match answer {
            Answer::Response(resp) => from_handler(req, resp, reply, &mut self.checked),
            Answer::Error(status) => reply.error(status),
        }
        self.hsts(req, reply);
    }

    /// `--hsts`: the header on every answer over HTTPS (but a reply still
    /// to come).
    #[inline]
    fn hsts(&self, req: &Request<'_>, reply: &mut Reply) {
        if let (true, Some(secs)) = (req.secure, self.site.settings.hsts) {
            if !matches!(reply.payload, Payload::Later(_)) {
                reply.fields.push_display("Strict-Transport-Security", format_args!("max-age={secs}"));
            }
        }
    }

    /// Where the URL path handlers see for `target` is. A normal path is
    /// its own (and no file path is worked out: only the static files need
    /// one); any other is decoded and resolved, the file path into
    /// `self.path` and the URL path into `self.url`.
    #[inline]
    fn handler_path<'t>(&mut self, target: &path::Target<'t>) -> Result<HandlerPath<'t>, path::PathError> {
        if let Some(url) = target.normal {
            return Ok(HandlerPath::Normal(url));
        }
        let resolved = path::resolve(target.raw_path, &mut self.path)?;
        path::decoded_url(&self.path, resolved.trailing_slash, &mut self.url);
        Ok(HandlerPath::Resolved(resolved))
    }

    /// Whether a handler route takes this method and target, and if so the
    /// most request-body bytes it takes: the protocol then reads the body
    /// before asking for the reply. None: the request goes to the static
    /// files, and its body is dropped.
    pub(crate) fn body_limit(&mut self, method: &[u8], target: &[u8]) -> Option<u64> {
        if self.site.routes.is_empty() {
            return None;
        }
        let t = path::split_target(target).ok()?;
        let at = self.handler_path(&t).ok()?;
        let url = at.url(&self.url);
        let route = self.site.routes.iter().find(|r| r.matches(url) && r.allows(method))?;
        Some(route.max_body.unwrap_or(self.site.settings.max_body_bytes))
    }

    /// The site's answer: method, path, handlers, static files.
    fn answer(&mut self, req: &Request<'_>, now: Instant, reply: &mut Reply) {
        let is_get_or_head = req.method == b"GET" || req.method == b"HEAD";
        if !is_get_or_head && (self.site.routes.is_empty() || req.target == b"*") {
            // Only handlers take other methods, and none a path can name
            // takes `OPTIONS *` (the parser allows `*` only for OPTIONS):
            // the static files refuse it, with or without handlers.
            return reply.error(405);
        }
        let target = match path::split_target(req.target) {
            Ok(t) => t,
            Err(_) => return reply.refuse(400),
        };
        // Worked out for the handlers, if they needed it; the static files
        // need it in any case.
        let mut resolved = None;
        if !self.site.routes.is_empty() {
            let at = match self.handler_path(&target) {
                Ok(at) => at,
                Err(e) => {
                    log::debug!("{}: {e}", req.peer);
                    return reply.refuse(400);
                }
            };
            if let HandlerPath::Resolved(r) = at {
                resolved = Some(r);
            }
            let url = at.url(&self.url);
            let hreq = handler::Request { req, path: url, query: target.query };
            // Methods of the routes whose path matched but not the method:
            // if none answers, the request gets 405 with these in Allow.
            let mut allow: Vec<&str> = Vec::new();
            for route in &self.site.routes {
                if !route.matches(url) {
                    continue;
                }
                if !route.allows(req.method) {
                    for m in route.methods.iter().flatten() {
                        if !allow.contains(&m.as_str()) {
                            allow.push(m);
                        }
                        if m == "GET" && !allow.contains(&"HEAD") {
                            allow.push("HEAD");
                        }
                    }
                    continue;
                }
                if route.blocking {
                    return self.to_pool(route, &hreq, reply);
                }
                match run_handler(route, &hreq) {
                    Ok(Some(resp)) => return from_handler(req, resp, reply, &mut self.checked),
                    Ok(None) => {}
                    Err(Panicked) => {
                        log::error!("{}: handler for {} panicked on {url}", req.peer, route.prefix);
                        return reply.error(500);
                    }
                }
            }
            if !allow.is_empty() {
                return reply.not_allowed(allow.join(", ").as_bytes());
            }
        }
        if !is_get_or_head {
            // The static files take GET and HEAD only.
            return reply.error(405);
        }
        let resolved = match resolved {
            Some(r) => r,
            None => match path::resolve(target.raw_path, &mut self.path) {
                Ok(r) => r,
                Err(e) => {
                    log::debug!("{}: {e}", req.peer);
                    return reply.refuse(400);
                }
            },
        };
        let mut cx = statics::Cx {
            site: &self.site,
            cache: &mut self.cache,
            path: &mut self.path,
            peer: req.peer,
            now,
        };
        statics::serve(&mut cx, req, target.query, resolved, reply);
    }

    /// A blocking route's request goes to the pool; the reply comes later.
    fn to_pool(&self, route: &Route, hreq: &handler::Request<'_>, reply: &mut Reply) {
        let (later, awaited) = Later::new();
        match &self.site.pool {
            Some(pool) => {
                let owned = OwnedRequest::new(hreq.req, hreq.path, hreq.query);
                pool.run(Arc::clone(&route.handler), owned, later);
            }
            None => {
                log::error!("blocking route {} without a pool", route.prefix);
                drop(later); // answers 500
            }
        }
        reply.start(200);
        reply.payload = Payload::Later(awaited);
    }
}

/// A handler panicked (see [`run_handler`]).
struct Panicked;

/// Run `route`'s handler on the loop. A panicking handler costs its request
/// a 500, not the loop and every other connection on it, where panics
/// unwind. Built with `panic = "abort"` (this workspace's release profile)
/// a panic ends the process whatever is done here, so the handler is called
/// straight, without catch_unwind's copy of the response it returns.
fn run_handler(route: &Route, hreq: &handler::Request<'_>) -> Result<Option<handler::Response>, Panicked> {
    #[cfg(panic = "unwind")]
    return panic::catch_unwind(AssertUnwindSafe(|| route.handler.handle(hreq))).map_err(|_| Panicked);
    #[cfg(not(panic = "unwind"))]
    Ok(route.handler.handle(hreq))
}

/// Where a request's URL path for the handlers is (see
/// [`Responder::handler_path`]).
enum HandlerPath<'t> {
    /// The raw path, which is already normal.
    Normal(&'t str),
    /// In the responder's `url`, made from the resolved path.
    Resolved(path::Resolved),
}

impl<'a> HandlerPath<'a> {
    /// The URL path; `resolved` is the responder's `url`.
    fn url(&self, resolved: &'a str) -> &'a str {
        match self {
            HandlerPath::Normal(url) => url,
            HandlerPath::Resolved(_) => resolved,
        }
    }
}

/// `--redirect-https`: `308` to the same path and query over HTTPS. The host
/// comes from the Host header, and only when it is a valid host (a name,
/// IPv4 or bracketed IPv6, with an optional port, which is dropped): nothing
/// in the target can choose where the client goes.
fn redirect_https(req: &Request<'_>, port: u16, reply: &mut Reply) {
    let host = req.fields.get(b"host").and_then(host_without_port);
    let (Some(host), Ok(target)) = (host, path::split_target(req.target)) else {
        return reply.refuse(400);
    };
    let mut location = Vec::with_capacity(16 + host.len() + req.target.len());
    location.extend_from_slice(b"https://");
    location.extend_from_slice(host);
    if port != 443 {
        location.push(b':');
        crate::http::push_u64(&mut location, u64::from(port));
    }
    location.extend_from_slice(target.raw_path);
    if let Some(q) = target.query {
        location.push(b'?');
        location.extend_from_slice(q);
    }
    reply.error(308);
    reply.fields.push("Location", &location);
}

/// The host part of a Host header value, if the value is a valid host
/// (RFC 3986 reg-name of letters, digits, `-` and `.`; IPv4; or an IPv6
/// literal in brackets), with an optional `:port` of digits.
fn host_without_port(v: &[u8]) -> Option<&[u8]> {
    let (host, port) = match v.first() {
        Some(b'[') => {
            let end = v.iter().position(|&b| b == b']')?;
            let inner = &v[1..end];
            let ok =
                !inner.is_empty() && inner.iter().all(|b| b.is_ascii_hexdigit() || matches!(b, b':' | b'.'));
            (ok.then_some(&v[..=end])?, &v[end + 1..])
        }
        _ => {
            let end = v.iter().position(|&b| b == b':').unwrap_or(v.len());
            let name = &v[..end];
            let ok = !name.is_empty()
                && name.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'))
                && !name.starts_with(b".")
                && !name.starts_with(b"-");
            (ok.then_some(name)?, &v[end..])
        }
    };
    match port {
        [] => Some(host),
        [b':', digits @ ..]
            if !digits.is_empty() && digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit) =>
        {
            Some(host)
        }
        _ => None,
    }
}

/// Header fields a handler may not set: the protocol frames the reply, and
/// two framings on one kept-alive connection would let a client read one
/// response as two (or two as one). `Date` and `Server` are written once.
const FRAMING: [&str; 7] =
    ["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "date", "server"];

/// Whether a handler's field may be sent: not a framing field (see
/// [`FRAMING`]), a valid name and a valid value. A field that may not is
/// logged.
fn field_allowed(name: &str, value: &str) -> bool {
    if FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f)) {
        log::warn!("handler set {name}, which the server writes itself: dropped");
        return false;
    }
    if !fields::valid_name(name.as_bytes()) || !fields::valid_value(value.as_bytes()) {
        log::warn!("handler header {name:?}: {value:?} is not a valid field: dropped");
        return false;
    }
    true
}

/// Where a literal field is, as addresses and lengths: name, value.
type Place = [usize; 4];

/// Handlers' literal fields that [`field_allowed`] took, by where they
/// are: a `&'static str` is never changed nor freed, so a field made of two
/// that passed once passes every time, and a handler sets the same few
/// literals on every response. A fixed table, a slot per place's hash: a
/// field whose slot another took is checked again (and takes it back).
#[derive(Default)]
pub(crate) struct Checked {
    /// Zero where empty: no str is at address 0. 16 slots (512 bytes a
    /// loop) hold the few literal fields a site's handlers set, with room
    /// for collisions; a miss costs only the check it would have cost.
    slots: [Place; 16],
}

impl Checked {
    /// [`field_allowed`], once per literal field.
    fn allows(&mut self, field: &handler::Field) -> bool {
        let (Cow::Borrowed(n), Cow::Borrowed(v)) = field else {
            let (name, value) = field;
            return field_allowed(name, value);
        };
        let place = [n.as_ptr() as usize, n.len(), v.as_ptr() as usize, v.len()];
        // Fibonacci hashing: the top 4 bits of the product pick one of 16.
        let key = place[0] as u64 ^ (place[2] as u64).rotate_left(32);
        let slot = (key.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 60) as usize;
        if self.slots[slot] == place {
            return true;
        }
        let ok = field_allowed(n, v);
        if ok {
            self.slots[slot] = place;
        }
        ok
    }
}

/// Turn a handler's [`handler::Response`] into a reply: a status that is not
/// a final one (1xx, or not three digits) is a 500; framing headers and
/// invalid fields are dropped (and logged); the body's length is known here.
/// A file answering a GET or HEAD with 200 gets what a static file gets (see
/// [`file_reply`]).
fn from_handler(req: &Request<'_>, resp: handler::Response, reply: &mut Reply, checked: &mut Checked) {
    let handler::Response { status, headers, body, later } = resp;
    if let Some(awaited) = later {
        reply.start(200);
        reply.payload = Payload::Later(awaited);
        return;
    }
    if !status::is_final(status) {
        log::error!("handler answered with status {status}, not a final status (200-599): 500 instead");
        return reply.error(500);
    }
    let (payload, len) = match body {
        Body::File(f) if status == 200 && (req.method == b"GET" || req.method == b"HEAD") => {
            // Checked on the way into the reply (a file reply's list is
            // kept whole: it is consulted for validators).
            let fields: Vec<(&str, &str)> =
                headers.iter().filter(|f| checked.allows(f)).map(|(n, v)| (n.as_ref(), v.as_ref())).collect();
            return file_reply(req, f, &fields, reply);
        }
        Body::Empty => (Payload::Empty, 0),
        Body::Bytes(b) => {
            let n = b.len() as u64;
            (Payload::Bytes(b), n)
        }
        Body::Static(b) => (Payload::Static(b), b.len() as u64),
        Body::Stream(s) => (Payload::Stream(s), 0),
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
    reply.start(status);
    if !status::is_bodiless(status) {
        reply.set_payload(payload);
        reply.content_length = len;
    }
    for field in headers.iter() {
        if !checked.allows(field) {
            continue;
        }
        match field {
            // Literals, nearly always: not copied.
            (Cow::Borrowed(n), Cow::Borrowed(v)) => reply.fields.push_static(n, v.as_bytes()),
            (name, value) => reply.fields.push(name, value.as_bytes()),
        }
    }
    headers.discard();
}

/// A handler's 200 file reply to GET or HEAD, answered as a static file is
/// (304, 206, 416, Accept-Ranges, sendfile), with the handler's fields. The
/// validators are the file's, computed as the static files' are, except
/// where the handler set its own `ETag` or `Last-Modified`: those are sent
/// and compared instead. A `Last-Modified` that is not an HTTP-date cannot
/// be compared with anything: it is dropped (and logged) for the file's.
/// A 304 keeps every field of the handler's; a 416 is the server's error
/// page, so the handler's `Content-*` fields, which describe the file, are
/// not sent with it.
fn file_reply(req: &Request<'_>, file: File, fields: &[(&str, &str)], reply: &mut Reply) {
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => {
            log::error!("handler file: {e}");
            return reply.error(500);
        }
    };
    let (len, file_mtime, file_etag) = cache::validators(&meta);
    let own = |name: &str| fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, v)| v);
    let own_etag = own("etag");
    let own_date = own("last-modified").and_then(|v| match httpdate::parse_http_date(v) {
        Ok(t) => Some(t),
        Err(_) => {
            log::warn!("handler set Last-Modified {v:?}, which is not an HTTP-date: the file's instead");
            None
        }
    });
    let keep = |name: &str| own_date.is_some() || !name.eq_ignore_ascii_case("last-modified");
    let answer = statics::FileAnswer {
        file: FileRef::Owned(file),
        len,
        etag: own_etag.map_or(file_etag.as_bytes(), str::as_bytes),
        mtime: own_date.unwrap_or(file_mtime),
    };
    statics::answer_file(req, answer, reply, |reply, part| {
        if part == FilePart::Unsatisfiable {
            push_fields(reply, fields, |n| keep(n) && !starts_with_ignore_case(n, "content-"));
            return;
        }
        push_fields(reply, fields, keep);
        statics::push_validators(
            reply,
            own_etag.is_none().then_some(file_etag.as_bytes()),
            own_date.is_none().then(|| LastModified::new(file_mtime)).flatten().as_ref(),
        );
    });
}

/// Add the handler's (checked) fields whose names `keep` takes.
fn push_fields(reply: &mut Reply, fields: &[(&str, &str)], keep: impl Fn(&str) -> bool) {
    for &(name, value) in fields {
        if keep(name) {
            reply.fields.push(name, value.as_bytes());
        }
    }
}

fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use httpdate::HttpDate;

    use super::request::TestRequest;
    use super::*;
    use crate::http::conditional::ETag;

    fn get() -> TestRequest {
        TestRequest::new("GET", &[])
    }

    #[test]
    fn only_a_valid_host_makes_a_redirect() {
        let table: &[(&str, Option<&str>)] = &[
            ("example.com", Some("example.com")),
            ("example.com:8080", Some("example.com")),
            ("127.0.0.1:80", Some("127.0.0.1")),
            ("[::1]:8080", Some("[::1]")),
            ("[::1]", Some("[::1]")),
            ("", None),
            ("evil.com/x", None),
            ("evil.com@good.com", None),
            ("a b", None),
            ("example.com:", None),
            ("example.com:80:80", None),
            ("example.com:12345678", None),
            (".evil", None),
            ("[::1", None),
            ("[zz]", None),
            ("\\evil.com", None),
        ];
        for (value, want) in table {
            let got = host_without_port(value.as_bytes()).map(|h| std::str::from_utf8(h).unwrap());
            assert_eq!(got, *want, "{value:?}");
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
        from_handler(&get().req(), resp, &mut reply, &mut Checked::default());
        assert_eq!(reply.status, 200);
        let names: Vec<_> = reply.fields.iter().map(|(n, _)| n.to_vec()).collect();
        assert_eq!(names, vec![b"X-Ok".to_vec()]);
        assert_eq!(reply.content_length, 5);
        assert_eq!(reply.body_bytes(), Some(&b"hello"[..]));
    }

    #[test]
    fn literal_fields_are_checked_once_and_bad_ones_every_time() {
        let mut checked = Checked::default();
        // More literals than the table has slots: some take others' slots.
        let names: Vec<&'static str> = (0..40).map(|i| &*format!("X-{i}").leak()).collect();
        for _ in 0..3 {
            let mut resp = handler::Response::new(200)
                .header("X-Ok", "yes")
                .header("Connection", "close")
                .header("X-Bad", "a\r\nb")
                .header(String::from("X-Owned"), String::from("1"))
                .header(String::from("X-Split"), String::from("a\nb"));
            for &n in &names {
                resp = resp.header(n, "v");
            }
            let mut reply = Reply::default();
            from_handler(&get().req(), resp, &mut reply, &mut checked);
            let got: Vec<_> =
                reply.fields.iter().map(|(n, _)| String::from_utf8(n.to_vec()).unwrap()).collect();
            let mut want = vec!["X-Ok".to_string(), "X-Owned".to_string()];
            want.extend(names.iter().map(|n| n.to_string()));
            assert_eq!(got, want);
        }
    }

    #[test]
    fn handler_statuses_that_are_not_final_become_500() {
        for s in [100, 101, 199, 600, 1000, 0] {
            let mut reply = Reply::default();
            from_handler(
                &get().req(),
                handler::Response::new(s).body("x"),
                &mut reply,
                &mut Checked::default(),
            );
            assert_eq!(reply.status, 500, "{s}");
        }
        let mut reply = Reply::default();
        from_handler(
            &get().req(),
            handler::Response::new(204).body("ignored"),
            &mut reply,
            &mut Checked::default(),
        );
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

    /// A 100-byte file with a known modification time, open and already
    /// removed; and the validators a static file of it would get.
    fn hundred_bytes(tag: &str) -> (File, String, String) {
        let path = std::env::temp_dir().join(format!("oserver-respond-{}-{tag}", std::process::id()));
        std::fs::write(&path, (0..100u8).collect::<Vec<_>>()).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        file.set_modified(mtime).unwrap();
        std::fs::remove_file(&path).unwrap();
        let etag = ETag::new(mtime, 100).to_string();
        (file, etag, HttpDate::from(mtime).to_string())
    }

    /// Answer `method` with `fields` by a handler's 200 file reply, plus `extra` handler fields.
    fn file_reply_to(method: &'static str, fields: &[(&str, &str)], resp: handler::Response) -> Reply {
        let mut reply = Reply::default();
        from_handler(&TestRequest::new(method, fields).req(), resp, &mut reply, &mut Checked::default());
        reply
    }

    fn field<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
        reply.fields.get(name).map(|v| std::str::from_utf8(v).unwrap())
    }

    fn count(reply: &Reply, name: &str) -> usize {
        reply.fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).count()
    }

    #[test]
    fn a_handlers_file_gets_what_a_static_file_gets() {
        let (_, etag, date) = hundred_bytes("probe");
        let inm = etag.as_str();
        type Case<'a> = (&'static str, &'a [(&'a str, &'a str)], u16, Option<(u64, u64)>, Option<&'a str>);
        let cases: &[Case] = &[
            ("GET", &[], 200, Some((0, 100)), None),
            ("HEAD", &[], 200, Some((0, 100)), None),
            ("GET", &[("If-None-Match", inm)], 304, None, None),
            ("HEAD", &[("If-None-Match", inm)], 304, None, None),
            ("GET", &[("If-Modified-Since", &date)], 304, None, None),
            ("GET", &[("If-None-Match", "\"other\"")], 200, Some((0, 100)), None),
            ("GET", &[("Range", "bytes=10-19")], 206, Some((10, 20)), Some("bytes 10-19/100")),
            ("HEAD", &[("Range", "bytes=10-19")], 206, Some((10, 20)), Some("bytes 10-19/100")),
            (
                "GET",
                &[("Range", "bytes=10-19"), ("If-Range", inm)],
                206,
                Some((10, 20)),
                Some("bytes 10-19/100"),
            ),
            ("GET", &[("Range", "bytes=10-19"), ("If-Range", "\"old\"")], 200, Some((0, 100)), None),
            ("GET", &[("Range", "bytes=100-")], 416, None, Some("bytes */100")),
        ];
        for (i, &(method, fields, status, body, content_range)) in cases.iter().enumerate() {
            let (file, etag, date) = hundred_bytes(&i.to_string());
            let resp = handler::Response::new(200)
                .header("Content-Type", "application/octet-stream")
                .header("Cache-Control", "max-age=60")
                .body(Body::File(file));
            let reply = file_reply_to(method, fields, resp);
            let what = format!("{method} {fields:?}");
            assert_eq!(reply.status, status, "{what}");
            assert_eq!(field(&reply, "cache-control"), Some("max-age=60"), "{what}");
            assert_eq!(field(&reply, "content-range"), content_range, "{what}");
            if status == 416 {
                // The error page: not the file, so not the file's type.
                assert_eq!(field(&reply, "content-type"), Some("text/html"), "{what}");
                assert!(matches!(reply.payload, Payload::Buffered), "{what}");
                continue;
            }
            assert_eq!(field(&reply, "content-type"), Some("application/octet-stream"), "{what}");
            assert_eq!(field(&reply, "etag"), Some(etag.as_str()), "{what}");
            assert_eq!(field(&reply, "last-modified"), Some(date.as_str()), "{what}");
            match (&reply.payload, body) {
                (Payload::File(f), Some((start, end))) => {
                    assert_eq!((f.offset, f.end, reply.content_length), (start, end, end - start), "{what}");
                    assert_eq!(field(&reply, "accept-ranges"), Some("bytes"), "{what}");
                }
                (Payload::Empty, None) => assert_eq!((status, reply.content_length), (304, 100), "{what}"),
                (p, _) => panic!("{what}: {status} with {p:?}"),
            }
        }
    }

    #[test]
    fn a_handlers_own_validators_replace_the_computed_ones() {
        let (file, etag, date) = hundred_bytes("own-etag");
        let resp = handler::Response::new(200).header("ETag", "\"v2\"").body(Body::File(file));
        let reply = file_reply_to("GET", &[("If-None-Match", "\"v2\"")], resp);
        assert_eq!(reply.status, 304);
        assert_eq!((count(&reply, "etag"), field(&reply, "etag")), (1, Some("\"v2\"")));
        // The other validator is still the file's.
        assert_eq!(field(&reply, "last-modified"), Some(date.as_str()));
        // The computed tag no longer matches.
        let (file, ..) = hundred_bytes("own-etag-2");
        let resp = handler::Response::new(200).header("ETag", "\"v2\"").body(Body::File(file));
        assert_eq!(file_reply_to("GET", &[("If-None-Match", &etag)], resp).status, 200);
        // If-Range compares the handler's tag too.
        let (file, ..) = hundred_bytes("own-etag-3");
        let resp = handler::Response::new(200).header("ETag", "\"v2\"").body(Body::File(file));
        let reply = file_reply_to("GET", &[("Range", "bytes=0-0"), ("If-Range", "\"v2\"")], resp);
        assert_eq!(reply.status, 206);

        let own_date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let (file, etag, _) = hundred_bytes("own-date");
        let resp = handler::Response::new(200).header("Last-Modified", own_date).body(Body::File(file));
        let reply = file_reply_to("GET", &[("If-Modified-Since", own_date)], resp);
        assert_eq!(reply.status, 304);
        assert_eq!((count(&reply, "last-modified"), field(&reply, "last-modified")), (1, Some(own_date)));
        assert_eq!(field(&reply, "etag"), Some(etag.as_str()));
        // The file's own, newer date is not what is compared.
        let (file, _, date) = hundred_bytes("own-date-2");
        let resp = handler::Response::new(200).header("Last-Modified", own_date).body(Body::File(file));
        let reply = file_reply_to("GET", &[("Range", "bytes=0-0"), ("If-Range", &date)], resp);
        assert_eq!(reply.status, 200);

        // Not an HTTP-date: the file's is sent and compared.
        let (file, _, date) = hundred_bytes("bad-date");
        let resp = handler::Response::new(200).header("Last-Modified", "yesterday").body(Body::File(file));
        let reply = file_reply_to("GET", &[("If-Modified-Since", &date)], resp);
        assert_eq!(reply.status, 304);
        assert_eq!(
            (count(&reply, "last-modified"), field(&reply, "last-modified")),
            (1, Some(date.as_str()))
        );
    }

    #[test]
    fn a_handlers_416_keeps_its_fields_but_not_the_files_description() {
        let (file, ..) = hundred_bytes("416");
        let resp = handler::Response::new(200)
            .header("Content-Type", "video/mp4")
            .header("Content-Disposition", "attachment")
            .header("Access-Control-Allow-Origin", "*")
            .body(Body::File(file));
        let reply = file_reply_to("GET", &[("Range", "bytes=500-")], resp);
        assert_eq!(reply.status, 416);
        assert_eq!(field(&reply, "access-control-allow-origin"), Some("*"));
        assert_eq!(field(&reply, "content-type"), Some("text/html"));
        assert_eq!((count(&reply, "content-type"), field(&reply, "content-disposition")), (1, None));
    }

    #[test]
    fn a_handlers_file_is_sent_as_is_for_other_methods_and_statuses() {
        for (method, status) in [("POST", 200), ("PUT", 200), ("GET", 203), ("GET", 404), ("HEAD", 500)] {
            let (file, etag, _) = hundred_bytes(&format!("{method}-{status}"));
            let resp = handler::Response::new(status).body(Body::File(file));
            let fields = [("Range", "bytes=10-19"), ("If-None-Match", etag.as_str())];
            let reply = file_reply_to(method, &fields, resp);
            assert_eq!(reply.status, status, "{method} {status}");
            assert_eq!(reply.fields.iter().count(), 0, "{method} {status}");
            match &reply.payload {
                Payload::File(f) => assert_eq!((f.offset, f.end, reply.content_length), (0, 100, 100)),
                p => panic!("{method} {status}: {p:?}"),
            }
        }
    }
}
