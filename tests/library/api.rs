//! The `api` example (crates/oserver-core/examples/api.rs), run as its own
//! process and asked over real TCP by curl and raw sockets.
//!
//! The example's doc comment is the contract: the echo, the blocking pool,
//! streamed bodies, files answered as static files are, 405s, and its exit
//! code. HTTP/1.1 specifics go over raw sockets; HTTP/2 (h2c with prior
//! knowledge) through curl and nghttp.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{
    connect, find, is_imf_fixdate, is_listening, parse_head, read_to_end, scratch_dir, sparse_file,
    tcp_sockets, tcp_state, wait_until, write_file, Cleanup, End, Response,
};

/// How long one exchange may take before a test fails: generous for a
/// debug build on a loaded machine; no test waits this long when it passes.
const WAIT: Duration = Duration::from_secs(20);

/// Static files in the example's ROOT: two whose names start with `api`
/// (they must not be taken for API routes) and an ordinary one.
const APIARY: &[u8] = b"bees live here\n";
const API2: &[u8] = b"not version two of anything\n";
const HELLO: &[u8] = b"hello";

/// The example's own limits, from its doc comment.
const MAX_BODY: usize = 8 << 20;
const MAX_LINES: usize = 100_000;

/// The `api` example binary, built when it is missing or older than the
/// core's sources or its own (`cargo test --test library` alone does not
/// build examples, and one built before a change to the core would run
/// the old code). Not built every time: a `cargo build` of the example
/// resolves features apart from the test build and would rebuild the core.
fn api_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let bin = exe.parent().unwrap().parent().unwrap().join("examples").join("api");
        let core = Path::new(env!("CARGO_MANIFEST_DIR"));
        let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
        let newest = newest_file(&core.join("src")).max(newest_file(&core.join("examples")));
        let stale = match built {
            Some(b) => newest.is_some_and(|n| n > b),
            None => true,
        };
        if stale {
            let ok = Command::new(env!("CARGO"))
                .args(["build", "-q", "-p", "oserver-core", "--example", "api"])
                .status()
                .unwrap();
            assert!(ok.success() && bin.exists(), "{}", bin.display());
        }
        bin
    })
}

/// When the newest file under `dir` was last changed.
fn newest_file(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let t = if e.path().is_dir() {
            newest_file(&e.path())
        } else {
            e.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(t);
    }
    newest
}

/// The example running on a free port over a scratch ROOT holding
/// `apiary`, `api2` and `hello.txt`; killed and reaped on drop.
struct Api {
    addr: SocketAddr,
    child: Child,
    _root: Cleanup,
}

impl Api {
    fn start() -> Api {
        let (root, cleanup) = scratch_dir("api");
        write_file(&root.join("apiary"), APIARY);
        write_file(&root.join("api2"), API2);
        write_file(&root.join("hello.txt"), HELLO);
        // The port is free when asked for, but another process may take it
        // before the example binds it (then the example exits): try again.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut child = Command::new(api_bin())
                .arg(addr.to_string())
                .arg(&root)
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", api_bin().display()));
            let exited = |c: &mut Child| !matches!(c.try_wait(), Ok(None));
            wait_until(WAIT, || is_listening(port) || exited(&mut child));
            if !exited(&mut child) && is_listening(port) {
                return Api { addr, child, _root: cleanup };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("the api example never listened");
    }

    fn conn(&self) -> Conn {
        Conn::open(self.addr)
    }

    /// One request on a fresh connection (the request should say
    /// `Connection: close`) and its response. Not `support::raw`: its
    /// half-close tells the server the client left, and a reply from the
    /// blocking pool would be dropped.
    fn ask(&self, request: &[u8]) -> Response {
        let mut c = self.conn();
        c.send(request);
        c.response(false)
    }

    /// curl over h2c with prior knowledge, `WAIT` at most: the last
    /// response's status and fields (names lower case) and its body. Panics
    /// if no HTTP/2 response came back at all.
    fn curl_h2(&self, path: &str, args: &[&str]) -> Response {
        let secs = WAIT.as_secs().to_string();
        let out = Command::new("curl")
            // -s without -S: stderr holds the dumped header blocks only.
            .args(["-s", "--http2-prior-knowledge", "-m", &secs, "-D", "/dev/stderr"])
            .args(args)
            .arg(format!("http://{}{path}", self.addr))
            .output()
            .expect("run curl");
        let heads = String::from_utf8_lossy(&out.stderr);
        let block = heads.trim_end().rsplit("\r\n\r\n").next().unwrap_or_default();
        let mut lines = block.lines();
        let status = lines
            .next()
            .and_then(|l| l.strip_prefix("HTTP/2 "))
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| {
                panic!("curl {path} {args:?}: no HTTP/2 response ({}): {heads:?}", out.status)
            });
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Response { status, reason: String::new(), headers, body: out.stdout }
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Killed, the example cannot remove its upload directory itself.
        let store = std::env::temp_dir().join(format!("oserver-api-{}", self.child.id()));
        let _ = std::fs::remove_dir_all(store);
    }
}

/// A kept-open HTTP/1.1 connection whose reader frames bodies by
/// Content-Length or chunked encoding (decoded, framing checked), with
/// `WAIT` as the deadline of every read.
struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let s = connect(addr);
        s.set_write_timeout(Some(WAIT)).unwrap();
        let _ = s.set_nodelay(true);
        Conn { s, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Read until `parse` finds what it wants at the start of the buffer;
    /// that, with the bytes it used consumed.
    fn read_until<T>(&mut self, what: &str, mut parse: impl FnMut(&[u8]) -> Option<(T, usize)>) -> T {
        let deadline = Instant::now() + WAIT;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some((found, used)) = parse(&self.buf) {
                self.buf.drain(..used);
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {what} within {WAIT:?}; got {}", shown(&self.buf));
            self.s.set_read_timeout(Some(left)).unwrap();
            match self.s.read(&mut chunk) {
                Ok(0) => panic!("the connection closed before {what}; got {}", shown(&self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => panic!("reading {what}: {e}; got {}", shown(&self.buf)),
            }
        }
    }

    /// A response head alone.
    fn head(&mut self) -> Response {
        self.read_until("a response head", parse_head)
    }

    /// The next response, its body by Content-Length or chunked (none for
    /// HEAD, 1xx, 204, 304).
    fn response(&mut self, head_only: bool) -> Response {
        self.read_until("a response", |b| {
            let (mut r, head) = parse_head(b)?;
            if head_only || r.status < 200 || r.status == 204 || r.status == 304 {
                return Some((r, head));
            }
            let (body, used) = if is_chunked(&r) {
                dechunk(&b[head..])?
            } else {
                let n = r.content_length().unwrap_or(0) as usize;
                (b.get(head..head + n)?.to_vec(), n)
            };
            r.body = body;
            Some((r, head + used))
        })
    }

    /// Whether anything (bytes or the end) has arrived and not been read,
    /// without waiting for it.
    fn has_pending(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        self.s.set_nonblocking(true).unwrap();
        let peeked = self.s.peek(&mut [0u8; 1]);
        self.s.set_nonblocking(false).unwrap();
        match peeked {
            Ok(_) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => panic!("peek: {e}"),
        }
    }
}

/// The start of `bytes` for a failure message.
fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(600)]))
}

fn is_chunked(r: &Response) -> bool {
    r.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
}

/// One chunk at the start of `b`: its data (empty for the last chunk) and
/// the bytes it used, through the CRLF after the data (after the blank line
/// for the last chunk: this server sends no trailers). None if incomplete;
/// panics on bad framing.
fn chunk(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let eol = find(b, b"\r\n")?;
    let line = String::from_utf8_lossy(&b[..eol]);
    let size = line.split(';').next().unwrap_or_default();
    let size = usize::from_str_radix(size, 16).unwrap_or_else(|_| panic!("bad chunk-size line {line:?}"));
    let data = b.get(eol + 2..eol + 2 + size + 2)?;
    assert_eq!(&data[size..], b"\r\n", "a chunk of {size} bytes not followed by CRLF: {}", shown(b));
    Some((data[..size].to_vec(), eol + 2 + size + 2))
}

/// A whole chunked body at the start of `b`, decoded, and the bytes it
/// used; None if incomplete; panics on bad framing.
fn dechunk(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (data, used) = chunk(&b[at..])?;
        at += used;
        if data.is_empty() {
            return Some((body, at));
        }
        body.extend_from_slice(&data);
    }
}

/// What `/api/stream?n=K` sends.
fn lines(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| format!("line {i}\n").into_bytes()).collect()
}

/// `n` pseudo-random bytes (xorshift): every byte value, CR and LF too.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// `POST /api/echo` with a Content-Length body and `Connection: close`.
fn post_echo(extra: &str, body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /api/echo HTTP/1.1\r\nHost: t\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// A request without a body, `Connection: close`.
fn plain(method: &str, target: &str, extra: &str) -> Vec<u8> {
    format!("{method} {target} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n").into_bytes()
}

// ---- 1. POST /api/echo ----

/// The body comes back with the request's Content-Type, or
/// `application/octet-stream` without one; chunked bodies (extensions,
/// trailers) are echoed as their decoded bytes.
#[test]
fn echo_returns_the_body_and_its_content_type() {
    let api = Api::start();
    let r = api.ask(&post_echo("Content-Type: text/x-test; charset=latin1\r\n", b"hello\r\nworld"));
    assert_eq!((r.status, &r.body[..]), (200, &b"hello\r\nworld"[..]));
    assert_eq!(r.header("content-type"), Some("text/x-test; charset=latin1"));
    let r = api.ask(&post_echo("", b"\x00\xffbytes"));
    assert_eq!((r.status, &r.body[..]), (200, &b"\x00\xffbytes"[..]));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let r = api.ask(
        b"POST /api/echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\
          Connection: close\r\n\r\n5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n",
    );
    assert_eq!((r.status, r.text().as_str()), (200, "hello, world"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    // Over HTTP/2.
    let r = api.curl_h2("/api/echo", &["--data-binary", "h2 body", "-H", "Content-Type: text/x-h2"]);
    assert_eq!((r.status, r.text().as_str(), r.header("content-type")), (200, "h2 body", Some("text/x-h2")));
    // (`-H 'Content-Type:'` keeps curl from adding its form type.)
    let r = api.curl_h2("/api/echo", &["--data-binary", "bare", "-H", "Content-Type:"]);
    assert_eq!((r.status, r.text().as_str()), (200, "bare"));
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
}

/// `Expect: 100-continue`: the interim response comes before the client
/// sends any of the body, then the echo.
#[test]
fn echo_answers_100_continue_before_the_body_is_sent() {
    let api = Api::start();
    let mut c = api.conn();
    c.send(b"POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n");
    let interim = c.head();
    assert_eq!((interim.status, interim.headers.len()), (100, 0), "{interim:?}");
    assert!(!c.has_pending());
    c.send(b"hello world");
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "hello world"));
    // The connection goes on.
    c.send(&post_echo("", b"again"));
    assert_eq!(c.response(false).body, b"again");
}

/// 5 MB of random bytes come back exactly, over HTTP/1.1 and HTTP/2.
#[test]
fn echo_returns_a_5_mb_body_exactly() {
    let api = Api::start();
    let data = noise(5_000_000);
    let mut c = api.conn();
    c.send(&post_echo("", &data));
    let r = c.response(false);
    assert_eq!((r.status, r.content_length()), (200, Some(data.len() as u64)));
    assert!(r.body == data, "HTTP/1.1: the echo differs from what was sent");
    let (dir, _cleanup) = scratch_dir("api-echo");
    let file = dir.join("noise");
    write_file(&file, &data);
    let r =
        api.curl_h2("/api/echo", &["--data-binary", &format!("@{}", file.display()), "-H", "Content-Type:"]);
    assert_eq!(r.status, 200);
    assert!(r.body == data, "HTTP/2: {} bytes came back, not the {} sent", r.body.len(), data.len());
}

/// One byte over 8 MiB is 413, as soon as the head says so; the server
/// serves the next connection.
#[test]
fn echo_refuses_a_body_over_8_mib_and_keeps_serving() {
    let api = Api::start();
    let mut c = api.conn();
    c.send(
        format!("POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\nabc", MAX_BODY + 1)
            .as_bytes(),
    );
    assert_eq!(c.response(false).status, 413);
    let r = api.ask(&plain("GET", "/hello.txt", ""));
    assert_eq!((r.status, &r.body[..]), (200, HELLO));
    let r = api.ask(&post_echo("", b"still here"));
    assert_eq!((r.status, &r.body[..]), (200, &b"still here"[..]));
    // Over HTTP/2, DATA frames past the limit.
    let (dir, _cleanup) = scratch_dir("api-413");
    let file = dir.join("big");
    sparse_file(&file, MAX_BODY as u64 + 1, &[]);
    let r = api.curl_h2("/api/echo", &["--data-binary", &format!("@{}", file.display())]);
    assert_eq!(r.status, 413);
    assert_eq!(api.curl_h2("/api/echo", &["--data-binary", "after"]).body, b"after");
}

// ---- 2. GET /api/slow ----

/// `slept N`; an `ms` that is missing, not a number or over 30,000 is 400.
#[test]
fn slow_sleeps_and_refuses_a_bad_ms() {
    let api = Api::start();
    let r = api.ask(&plain("GET", "/api/slow?ms=50", ""));
    assert_eq!((r.status, r.text().as_str()), (200, "slept 50"));
    assert_eq!(api.curl_h2("/api/slow?ms=20", &[]).text(), "slept 20");
    for bad in ["", "?ms=", "?ms=abc", "?ms=-1", "?ms=30001", "?ms=1.5", "?n=5"] {
        let r = api.ask(&plain("GET", &format!("/api/slow{bad}"), ""));
        assert_eq!(r.status, 400, "/api/slow{bad}");
    }
    assert_eq!(api.curl_h2("/api/slow?ms=x", &[]).status, 400);
}

/// While a 1.5 s sleep runs on the pool, a static file and the echo are
/// answered: their responses are complete while the slow one has not begun.
#[test]
fn slow_does_not_hold_up_other_requests() {
    let api = Api::start();
    let mut slow = api.conn();
    slow.send(b"GET /api/slow?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = api.ask(&plain("GET", "/apiary", ""));
    assert_eq!((r.status, &r.body[..]), (200, APIARY));
    let r = api.ask(&post_echo("", b"quick"));
    assert_eq!((r.status, &r.body[..]), (200, &b"quick"[..]));
    assert!(!slow.has_pending(), "the slow reply came before the quick ones");
    let r = slow.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "slept 1500"));
    // The same on one HTTP/2 connection (nghttp, two streams): the file's
    // response comes first though it was asked second.
    let secs = WAIT.as_secs().to_string();
    let out = Command::new("nghttp")
        .args(["-v", "-t", &secs])
        .arg(format!("http://{}/api/slow?ms=1500", api.addr))
        .arg(format!("http://{}/apiary", api.addr))
        .output()
        .expect("run nghttp");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nghttp: {}\n{log}", out.status);
    let stream_of = |path: &str| {
        let at = log.find(&format!(":path: {path}\n")).unwrap_or_else(|| panic!("{path} not sent:\n{log}"));
        let sent = log[..at].rfind("send HEADERS frame").unwrap();
        let id = &log[sent..at];
        let id = &id[id.find("stream_id=").unwrap() + 10..];
        id[..id.find('>').unwrap()].to_owned()
    };
    let status_at = |id: &str| {
        log.find(&format!("recv (stream_id={id}) :status: 200"))
            .unwrap_or_else(|| panic!("no 200 on stream {id}:\n{log}"))
    };
    let (slow_id, file_id) = (stream_of("/api/slow?ms=1500"), stream_of("/apiary"));
    assert!(status_at(&file_id) < status_at(&slow_id), "the slow stream held the file back:\n{log}");
    assert!(log.contains("slept 1500"), "{log}");
}

/// 20 sleeps at once, more than the pool's threads: all answered.
#[test]
fn slow_answers_20_at_once() {
    let api = Api::start();
    let mut conns: Vec<Conn> = (0..20).map(|_| api.conn()).collect();
    for c in &mut conns {
        c.send(b"GET /api/slow?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    for c in &mut conns {
        let r = c.response(false);
        assert_eq!((r.status, r.text().as_str()), (200, "slept 200"));
    }
}

// ---- 3. GET /api/stream ----

/// HTTP/1.1: chunked, no Content-Length, the lines as framed; the
/// connection then serves the next request. HTTP/1.0: neither, and the
/// server closes at the end. HTTP/2: the lines, no content-length. A K over
/// 100,000 is 400.
#[test]
fn stream_is_chunked_over_1_1_closed_over_1_0_and_framed_over_h2() {
    let api = Api::start();
    let mut c = api.conn();
    c.send(b"GET /api/stream?n=5 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert!(is_chunked(&r) && r.header("content-length").is_none(), "{:?}", r.headers);
    assert_eq!(r.body, lines(5));
    c.send(b"GET /apiary HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response(false);
    assert_eq!((r.status, &r.body[..]), (200, APIARY), "the request after a stream");
    c.send(b"GET /api/stream?n=0 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response(false);
    assert!(r.status == 200 && r.body.is_empty() && is_chunked(&r), "{r:?}");
    c.send(b"GET /api/stream?n=3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response(false).body, lines(3), "a stream after a stream");

    let mut s = connect(api.addr);
    s.write_all(b"GET /api/stream?n=4 HTTP/1.0\r\n\r\n").unwrap();
    let (got, end) = read_to_end(&mut s, WAIT);
    assert_eq!(end, End::Eof, "HTTP/1.0: the end of the body is the end of the connection");
    let (r, head) = parse_head(&got).unwrap_or_else(|| panic!("no head: {}", shown(&got)));
    assert_eq!(r.status, 200);
    assert!(r.header("transfer-encoding").is_none() && r.header("content-length").is_none(), "{r:?}");
    assert_eq!(&got[head..], &lines(4)[..]);

    let r = api.curl_h2("/api/stream?n=7", &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("content-length").is_none(), "{:?}", r.headers);
    assert_eq!(r.body, lines(7));

    for bad in ["", "?n=", "?n=100001", "?n=200000", "?n=x", "?n=3&delay=10001", "?n=3&delay=x"] {
        let r = api.ask(&plain("GET", &format!("/api/stream{bad}"), ""));
        assert_eq!(r.status, 400, "/api/stream{bad}");
    }
    assert_eq!(api.curl_h2("/api/stream?n=100001", &[]).status, 400);
}

/// With a delay, each line is sent when it is made: the first is readable
/// while the next is still a second away; all three come in the end.
#[test]
fn stream_with_a_delay_sends_each_line_when_it_is_made() {
    let api = Api::start();
    let mut c = api.conn();
    c.send(b"GET /api/stream?n=3&delay=1000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.head();
    assert!(head.status == 200 && is_chunked(&head), "{head:?}");
    let first = c.read_until("the first chunk", chunk);
    assert_eq!(first, b"line 0\n");
    assert!(!c.has_pending(), "line 1 is a second away and already here");
    // Lines sent without the delay would be here by now (the loop writes
    // them at once); with it, line 1 is still 800 ms away.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!c.has_pending(), "line 1 is 800 ms away and already here");
    let rest = c.read_until("the rest of the body", dechunk);
    assert_eq!(rest, b"line 1\nline 2\n");
    // Over HTTP/2.
    let r = api.curl_h2("/api/stream?n=3&delay=50", &[]);
    assert_eq!((r.status, r.body), (200, lines(3)));
}

/// A client that reads nothing for a while, then everything: six streams
/// of 100,000 lines pipelined on one connection (9.5 MB, more than the
/// kernel buffers between the two: the server has to hold back and resume)
/// all come whole, in order. Over HTTP/2, nghttp with a 4 KiB stream window
/// holds the server back by flow control.
#[test]
fn stream_to_a_slow_reader_loses_nothing() {
    const STREAMS: usize = 6;
    let api = Api::start();
    let mut c = api.conn();
    let one = format!("GET /api/stream?n={MAX_LINES} HTTP/1.1\r\nHost: t\r\n");
    let mut reqs = format!("{one}\r\n").repeat(STREAMS - 1);
    reqs.push_str(&format!("{one}Connection: close\r\n\r\n"));
    c.send(reqs.as_bytes());
    // Not a wait for anything: the reader's pause, for the server to fill
    // the socket and have to hold the rest back.
    std::thread::sleep(Duration::from_secs(1));
    // Had the kernel taken all of it, the server would be done and closing.
    let me = c.s.local_addr().unwrap().port();
    let server_side =
        tcp_sockets().into_iter().find(|t| t.local_port == api.addr.port() && t.remote_port == me);
    assert_eq!(
        server_side.map(|t| t.state),
        Some(tcp_state::ESTABLISHED),
        "the server was not held back: the kernel buffered all {STREAMS} streams"
    );
    // Read to the end first, then decode once (decoding as it comes would
    // rescan the growing buffer for every small read).
    let (got, end) = read_to_end(&mut c.s, WAIT);
    assert_eq!(end, End::Eof, "after {} bytes", got.len());
    let want = lines(MAX_LINES);
    let mut at = 0;
    for i in 0..STREAMS {
        let (r, head) =
            parse_head(&got[at..]).unwrap_or_else(|| panic!("no head {i}: {}", shown(&got[at..])));
        assert!(r.status == 200 && is_chunked(&r), "{i}: {r:?}");
        let (body, used) = dechunk(&got[at + head..]).unwrap_or_else(|| panic!("body {i} incomplete"));
        assert!(body == want, "body {i}: {} bytes, not {}", body.len(), want.len());
        at += head + used;
    }
    assert_eq!(at, got.len(), "bytes after the last response: {}", shown(&got[at..]));

    let secs = WAIT.as_secs().to_string();
    let out = Command::new("nghttp")
        .args(["-w", "12", "-W", "14", "-t", &secs])
        .arg(format!("http://{}/api/stream?n={MAX_LINES}", api.addr))
        .output()
        .expect("run nghttp");
    assert!(out.status.success(), "nghttp: {} {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout == want, "HTTP/2: {} bytes, not {}", out.stdout.len(), want.len());
}

// ---- 4. /api/files/NAME ----

/// PUT, then GET as a static file is answered (validators, 304, ranges,
/// HEAD), then DELETE and 404.
#[test]
fn files_are_stored_served_as_files_and_deleted() {
    let api = Api::start();
    let data = noise(1000);
    let mut put =
        b"PUT /api/files/notes HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n"
            .to_vec();
    put.extend_from_slice(&data);
    assert_eq!(api.ask(&put).status, 201);

    let r = api.ask(&plain("GET", "/api/files/notes", ""));
    assert_eq!(r.status, 200);
    assert!(r.body == data, "the stored file differs");
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("last-modified").is_some_and(is_imf_fixdate), "{:?}", r.headers);
    let etag = r.header("etag").expect("an ETag").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2, "{etag}");

    let r = api.ask(&plain("GET", "/api/files/notes", &format!("If-None-Match: {etag}\r\n")));
    assert!(r.status == 304 && r.body.is_empty(), "{r:?}");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    let r = api.ask(&plain("GET", "/api/files/notes", "If-None-Match: \"other\"\r\n"));
    assert_eq!(r.status, 200);

    let r = api.ask(&plain("GET", "/api/files/notes", "Range: bytes=2-5\r\n"));
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 2-5/1000")));
    assert_eq!(r.body, &data[2..6]);

    // HEAD: the headers, and no body before the next response.
    let mut c = api.conn();
    c.send(b"HEAD /api/files/notes HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.response(true);
    assert_eq!((r.status, r.content_length(), r.header("etag")), (200, Some(1000), Some(etag.as_str())));
    c.send(b"GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response(false).body, HELLO, "the response after HEAD");

    let r = api.ask(&plain("DELETE", "/api/files/notes", ""));
    assert!(r.status == 204 && r.body.is_empty(), "{r:?}");
    assert_eq!(api.ask(&plain("GET", "/api/files/notes", "")).status, 404);
    assert_eq!(api.ask(&plain("DELETE", "/api/files/notes", "")).status, 404);
}

/// Over HTTP/2: PUT, GET with a range, DELETE.
#[test]
fn files_over_h2_answer_a_range() {
    let api = Api::start();
    let (dir, _cleanup) = scratch_dir("api-files-h2");
    let file = dir.join("upload");
    let data = noise(5000);
    write_file(&file, &data);
    assert_eq!(api.curl_h2("/api/files/h2note", &["-T", &file.display().to_string()]).status, 201);
    let r = api.curl_h2("/api/files/h2note", &["-r", "2-5"]);
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 2-5/5000")));
    assert_eq!(r.body, &data[2..6]);
    let r = api.curl_h2("/api/files/h2note", &[]);
    assert!(r.status == 200 && r.body == data && r.header("etag").is_some(), "{:?}", r.headers);
    assert_eq!(api.curl_h2("/api/files/h2note", &["-X", "DELETE"]).status, 204);
    assert_eq!(api.curl_h2("/api/files/h2note", &[]).status, 404);
}

/// A name holding `/` or `..`, as sent or percent-encoded, is 400 (not the
/// file the normalised path would name).
#[test]
fn files_refuse_names_with_slashes_or_dot_dot() {
    let api = Api::start();
    for target in ["/api/files/../x", "/api/files/a%2Fb", "/api/files/%2e%2e", "/api/files/%2E%2e%2fx"] {
        let r = api.ask(&plain("GET", target, ""));
        assert_eq!(r.status, 400, "GET {target}");
    }
    // (`/api/files/../apiary` is `/apiary` once normalised: a file that exists.)
    assert_eq!(api.ask(&plain("GET", "/api/files/../apiary", "")).status, 400);
    for target in ["/api/files/..%2Fescape", "/api/files/../escape", "/api/files/a%2fb"] {
        let mut put =
            format!("PUT {target} HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\n")
                .into_bytes();
        put.extend_from_slice(b"bad");
        assert_eq!(api.ask(&put).status, 400, "PUT {target}");
    }
    assert_eq!(api.curl_h2("/api/files/a%2Fb", &[]).status, 400);
    assert_eq!(api.curl_h2("/api/files/../apiary", &["--path-as-is"]).status, 400);
}

// ---- 5. 405 and paths beside /api ----

/// The methods of `Allow`, sorted.
fn allowed(r: &Response) -> Vec<&str> {
    let mut v: Vec<&str> = r.header("allow").unwrap_or_default().split(',').map(str::trim).collect();
    v.sort_unstable();
    v
}

/// Other methods on the API's paths: 405 and `Allow`.
#[test]
fn other_methods_are_405_with_allow() {
    let api = Api::start();
    let r = api.ask(&plain("PATCH", "/api/files/x", ""));
    assert_eq!((r.status, allowed(&r)), (405, vec!["DELETE", "GET", "HEAD", "PUT"]));
    let r = api.ask(&plain("GET", "/api/echo", ""));
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    let r = api.curl_h2("/api/files/x", &["-X", "PATCH"]);
    assert_eq!((r.status, allowed(&r)), (405, vec!["DELETE", "GET", "HEAD", "PUT"]));
    let r = api.curl_h2("/api/echo", &[]);
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    // `OPTIONS *` names no path a route could take: 405 from the static
    // files, as without handlers (it was a 400 once there were routes).
    let r = api.ask(&plain("OPTIONS", "*", ""));
    assert_eq!(r.status, 405);
}

/// `/apiary` and `/api2` are not under `/api`: static files from ROOT.
#[test]
fn apiary_and_api2_are_static_files() {
    let api = Api::start();
    for (path, content) in [("/apiary", APIARY), ("/api2", API2)] {
        let r = api.ask(&plain("GET", path, ""));
        assert_eq!((r.status, &r.body[..]), (200, content), "{path}");
        assert!(r.header("etag").is_some(), "{path}: a static file has an ETag");
        let r = api.curl_h2(path, &[]);
        assert_eq!((r.status, &r.body[..]), (200, content), "{path} over HTTP/2");
    }
    // A static file takes no body: the echo's POST is not theirs.
    let r = api.ask(b"POST /apiary HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx");
    assert_eq!(r.status, 405);
}

// ---- 6. The command line ----

/// Run the example with `args`, killed if it has not exited within `WAIT`.
fn run_briefly(args: &[&str]) -> Output {
    let mut child =
        Command::new(api_bin()).args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    if !wait_until(WAIT, || !matches!(child.try_wait(), Ok(None))) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("api {args:?} is still running after {WAIT:?}");
    }
    child.wait_with_output().unwrap()
}

/// Missing arguments or a bad address: exit 2, one line on stderr.
#[test]
fn bad_arguments_exit_2_with_one_line() {
    let (root, _cleanup) = scratch_dir("api-args");
    let root = root.display().to_string();
    for args in
        [&[][..], &["127.0.0.1:0"], &["nonsense", &root], &["127.0.0.1", &root], &["localhost:80", &root]]
    {
        let out = run_briefly(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "api {args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "api {args:?}: {err:?}");
        assert!(err.ends_with('\n') && out.stdout.is_empty(), "api {args:?}");
    }
}
