//! oserver-core used as a library, in process: handlers beside static files,
//! several event-loop threads, shutdown through the handle. No fork, no
//! binary: this suite belongs to the core crate (`cargo test -p oserver-core
//! --test library`) and talks to the server over TCP on 127.0.0.1 with the
//! helpers the end-to-end suite uses too.

mod api;
mod bodies;
mod later;
mod placement;
#[path = "../support/net.rs"]
mod support;
mod tls;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use oserver_core::{Body, Error, Request, Response, Server, ServerBuilder, Settings, ShutdownHandle, Stats};

use crate::support::{
    allowed_cpus, find, first_response, get, is_listening, parse_head, parse_responses, pin_this_thread, raw,
    repo_root, request, scratch_dir, temp_dir, wait_until, write_file, Client, End,
};

/// A server on a free port, running on a thread; stopped through its handle.
struct Running {
    addr: SocketAddr,
    /// The HTTPS address, when the builder asked for one.
    https: Option<SocketAddr>,
    handle: ShutdownHandle,
    thread: Option<thread::JoinHandle<Result<Stats, oserver_core::Error>>>,
}

impl Running {
    fn start(b: ServerBuilder) -> Running {
        let server: Server = b.bind("127.0.0.1:0".parse().unwrap()).build().expect("build");
        let (addr, https) = (server.local_addr(), server.https_addr());
        let handle = server.handle();
        let thread = Some(thread::spawn(move || server.run()));
        Running { addr, https, handle, thread }
    }

    fn stop(mut self) -> Stats {
        self.handle.shutdown();
        self.thread.take().unwrap().join().expect("loop thread").expect("run")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

fn health(req: &Request<'_>) -> Option<Response> {
    (req.path() == "/health").then(|| {
        Response::new(200).header("Content-Type", "application/json").body(b"{\"status\":\"ok\"}".to_vec())
    })
}

#[test]
fn custom_handler_answers() {
    let s = Running::start(ServerBuilder::new().root(repo_root()).handler("/health", health));
    let r = get(s.addr, "/health");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, b"{\"status\":\"ok\"}");
    assert_eq!(r.header("content-length"), Some("15"));
    assert!(r.header("date").is_some() && r.header("server").unwrap().starts_with("oserver/"));
    s.stop();
}

#[test]
fn handler_sees_query_headers_and_peer() {
    let s = Running::start(ServerBuilder::new().handler("/echo", |req: &Request<'_>| {
        let q = String::from_utf8_lossy(req.query().unwrap_or(b"")).into_owned();
        let ua = String::from_utf8_lossy(req.header("USER-AGENT").unwrap_or(b"")).into_owned();
        let body = format!(
            "{} {} q={q} ua={ua} local={}",
            req.method(),
            req.path(),
            req.peer_addr().ip().is_loopback()
        );
        Some(Response::new(200).header("Content-Type", "text/plain").body(body))
    }));
    let out = raw(
        s.addr,
        b"GET /echo/a%20b?x=1&y=%41 HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1\r\nConnection: close\r\n\r\n",
    );
    let r = &parse_responses(&out, false)[0];
    assert_eq!(String::from_utf8_lossy(&r.body), "GET /echo/a b q=x=1&y=%41 ua=probe/1 local=true");
    s.stop();
}

#[test]
fn declined_request_falls_through_to_static_files() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let s = Running::start(
        ServerBuilder::new()
            .root(repo_root())
            // Looks at everything under /httptest and answers nothing.
            .handler("/httptest", move |_: &Request<'_>| {
                seen.fetch_add(1, Ordering::SeqCst);
                None
            })
            .handler("/health", health),
    );
    let r = get(s.addr, "/httptest/dir2/page.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<html><body>Page Sample</body></html>\n");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "the handler was asked first");
    // A path no handler takes and no file matches.
    assert_eq!(get(s.addr, "/nothing-here").status, 404);
    s.stop();
}

#[test]
fn head_on_a_handler_has_headers_and_no_body() {
    let s = Running::start(ServerBuilder::new().handler("/health", health));
    let out = raw(
        s.addr,
        b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\nGET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    let text = String::from_utf8_lossy(&out);
    let head_end = text.find("\r\n\r\n").unwrap() + 4;
    let head = parse_responses(&out[..head_end], true);
    assert_eq!(head[0].status, 200);
    assert_eq!(head[0].header("content-length"), Some("15"));
    // Right after HEAD's blank line comes the GET's status line, not a body.
    assert!(text[head_end..].starts_with("HTTP/1.1 200"), "{text}");
    let get_r = &parse_responses(&out[head_end..], false)[0];
    assert_eq!(get_r.body, b"{\"status\":\"ok\"}");
    s.stop();
}

/// Handlers see every method; `route` picks methods (GET takes HEAD), and a
/// path its routes take with a method none does gets 405 with their methods
/// in Allow; the static files keep GET and HEAD.
#[test]
fn handlers_see_every_method_and_routes_pick_theirs() {
    let method =
        |req: &Request<'_>| Some(Response::new(200).body(format!("{} {}", req.method(), req.path())));
    let s = Running::start(
        ServerBuilder::new()
            .root(repo_root())
            .route(&["POST", "PUT"], "/api/items", method)
            .route(&["GET"], "/api/items", method)
            .handler("/any", method),
    );
    let ask = |m: &str, path: &str| {
        let req =
            format!("{m} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        let out = raw(s.addr, req.as_bytes());
        parse_responses(&out, m == "HEAD").remove(0)
    };
    for (m, path, status, body) in [
        ("POST", "/api/items", 200, "POST /api/items"),
        ("PUT", "/api/items/7", 200, "PUT /api/items/7"),
        ("GET", "/api/items", 200, "GET /api/items"),
        ("HEAD", "/api/items", 200, ""),
        ("DELETE", "/any/thing", 200, "DELETE /any/thing"),
        ("PATCH", "/any", 200, "PATCH /any"),
    ] {
        let r = ask(m, path);
        assert_eq!(
            (r.status, String::from_utf8_lossy(&r.body).into_owned()),
            (status, body.to_string()),
            "{m} {path}"
        );
    }
    let r = ask("DELETE", "/api/items");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, PUT, GET, HEAD"));
    // Not a route's path (a segment boundary): the static files, GET only.
    let r = ask("POST", "/api/itemsx");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    let r = ask("DELETE", "/httptest/test.html");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    assert_eq!(ask("GET", "/httptest/test.html").status, 200);
    // The same over HTTP/2 (h2c by prior knowledge, curl as the client).
    let curl = |m: &str, path: &str| {
        let out = std::process::Command::new("curl")
            .args(["-s", "--http2-prior-knowledge", "-X", m, "-d", "hi", "-D", "-", "-m", "10"])
            .arg(format!("http://{}{path}", s.addr))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = curl("PUT", "/api/items/7");
    assert!(out.starts_with("HTTP/2 200") && out.ends_with("PUT /api/items/7"), "{out}");
    let out = curl("DELETE", "/api/items");
    assert!(out.starts_with("HTTP/2 405") && out.contains("allow: POST, PUT, GET, HEAD\r\n"), "{out}");
    s.stop();
}

#[test]
fn handler_body_from_a_file() {
    let dir = temp_dir("libfile");
    let path = dir.join("report.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let p = path.clone();
    let s = Running::start(ServerBuilder::new().handler("/report", move |_: &Request<'_>| {
        let f = std::fs::File::open(&p).ok()?;
        Some(Response::new(200).header("Content-Type", "application/octet-stream").body(Body::File(f)))
    }));
    let r = get(s.addr, "/report");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("300000"));
    assert!(r.body == data, "body differs from the file");
    s.stop();
    std::fs::remove_dir_all(dir).ok();
}

/// A handler answering `/report` with `report.txt` (1000 bytes of letters),
/// with its own Content-Type and Cache-Control; `/ping` says `pong`; the
/// directory is also the static root, so `/report.txt` is the same file
/// served as a static file.
struct FileSite {
    server: Running,
    data: Vec<u8>,
    _dir: crate::support::Cleanup,
}

impl FileSite {
    fn start() -> FileSite {
        let (dir, cleanup) = scratch_dir("libfilecond");
        let data: Vec<u8> = (0..1000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let path = dir.join("report.txt");
        write_file(&path, &data);
        let server = Running::start(
            ServerBuilder::new()
                .root(&dir)
                .handler("/report", move |_: &Request<'_>| {
                    let f = std::fs::File::open(&path).ok()?;
                    Some(
                        Response::new(200)
                            .header("Content-Type", "text/x-report")
                            .header("Cache-Control", "no-cache")
                            .body(Body::File(f)),
                    )
                })
                .handler("/ping", |_: &Request<'_>| Some(Response::new(200).body("pong"))),
        );
        FileSite { server, data, _dir: cleanup }
    }

    /// One request to the handler's file with these extra header lines.
    fn ask(&self, method: &str, extra: &[&str]) -> crate::support::Response {
        let mut lines = extra.to_vec();
        lines.push("Connection: close");
        first_response(&raw(self.server.addr, &request(method, "/report", &lines)))
    }

    /// A request that must come back without a body: its head, and proof
    /// that the next response on the connection follows the head at once.
    fn ask_bodiless(&self, method: &str, extra: &[&str]) -> crate::support::Response {
        let mut bytes = request(method, "/report", extra);
        bytes.extend_from_slice(&request("GET", "/ping", &["Connection: close"]));
        let out = raw(self.server.addr, &bytes);
        let (head, used) = parse_head(&out).expect("a response head");
        let next = first_response(&out[used..]);
        assert_eq!(next.body, b"pong", "the next response follows the head");
        head
    }
}

#[test]
fn a_handlers_file_has_the_validators_a_static_file_has() {
    let site = FileSite::start();
    let r = site.ask("GET", &[]);
    assert_eq!(r.status, 200);
    assert!(r.body == site.data, "body differs from the file");
    assert_eq!(r.header("content-type"), Some("text/x-report"));
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let etag = r.header("etag").expect("ETag");
    let date = r.header("last-modified").expect("Last-Modified");
    assert!(crate::support::is_imf_fixdate(date), "{date}");
    // Computed as the static files compute them.
    let stat = get(site.server.addr, "/report.txt");
    assert_eq!(stat.status, 200);
    assert_eq!((stat.header("etag"), stat.header("last-modified")), (Some(etag), Some(date)));
}

#[test]
fn a_handlers_file_is_not_modified_for_a_current_copy() {
    let site = FileSite::start();
    let first = site.ask("GET", &[]);
    let etag = first.header("etag").expect("ETag");
    let date = first.header("last-modified").expect("Last-Modified");
    for condition in [format!("If-None-Match: {etag}"), format!("If-Modified-Since: {date}")] {
        let r = site.ask_bodiless("GET", &[&condition]);
        assert_eq!(r.status, 304, "{condition}");
        assert_eq!(r.header("etag"), Some(etag), "{condition}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{condition}");
    }
    // Another tag: the whole file.
    let r = site.ask("GET", &["If-None-Match: \"other\""]);
    assert_eq!((r.status, r.body.len()), (200, 1000));
}

#[test]
fn a_handlers_file_answers_ranges() {
    let site = FileSite::start();
    let r = site.ask("GET", &["Range: bytes=10-19"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(r.header("content-length"), Some("10"));
    assert_eq!(r.body, &site.data[10..20]);
    assert_eq!(r.header("content-type"), Some("text/x-report"));
    let etag = r.header("etag").expect("ETag").to_string();

    let r = site.ask("GET", &["Range: bytes=-5"]);
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 995-999/1000")));
    assert_eq!(r.body, &site.data[995..]);
    // If-Range with the current tag keeps the range; with another, the whole file.
    let r = site.ask("GET", &["Range: bytes=10-19", &format!("If-Range: {etag}")]);
    assert_eq!((r.status, r.body.as_slice()), (206, &site.data[10..20]));
    let r = site.ask("GET", &["Range: bytes=10-19", "If-Range: \"old\""]);
    assert_eq!((r.status, r.body.len()), (200, 1000));

    let r = site.ask("GET", &["Range: bytes=1000-"]);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
}

#[test]
fn a_handlers_file_on_head_has_the_headers_and_no_body() {
    let site = FileSite::start();
    let r = site.ask_bodiless("HEAD", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("1000"));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    assert!(r.header("etag").is_some() && r.header("last-modified").is_some(), "{r:?}");
    let r = site.ask_bodiless("HEAD", &["Range: bytes=10-19"]);
    assert_eq!((r.status, r.header("content-range")), (206, Some("bytes 10-19/1000")));
    assert_eq!(r.header("content-length"), Some("10"));
}

#[test]
fn a_handlers_file_answers_a_range_over_http2() {
    let site = FileSite::start();
    let out = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-H", "Range: bytes=10-19", "-D", "-", "-m", "10"])
        .arg(format!("http://{}/report", site.server.addr))
        .output()
        .expect("curl");
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.starts_with("HTTP/2 206"), "{out}");
    assert!(out.contains("content-range: bytes 10-19/1000\r\n"), "{out}");
    assert!(out.contains("content-type: text/x-report\r\n") && out.contains("etag: "), "{out}");
    assert!(out.ends_with(std::str::from_utf8(&site.data[10..20]).unwrap()), "{out}");
}

#[test]
fn several_threads_serve_at_once() {
    // Each loop records its thread, and we count distinct threads. Until a
    // second loop has served one, a handler holds its loop, so that the
    // other clients' connections can only be served by another loop.
    let threads_seen = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let seen = Arc::clone(&threads_seen);
    // Loops serving side by side meet within milliseconds; without them
    // every request waits here until this deadline, then goes on alone.
    let deadline = Instant::now() + Duration::from_secs(5);
    let s = Running::start(ServerBuilder::new().root(repo_root()).threads(4).handler(
        "/who",
        move |_: &Request<'_>| {
            seen.lock().unwrap().insert(thread::current().id());
            let left = deadline.saturating_duration_since(Instant::now());
            wait_until(left, || seen.lock().unwrap().len() >= 2);
            Some(Response::new(200).body("me"))
        },
    ));
    let addr = s.addr;
    let clients: Vec<_> = (0..16)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..10 {
                    assert_eq!(get(addr, "/who").body, b"me");
                    assert_eq!(get(addr, "/httptest/text..txt").body, b"hello");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let stats = s.stop();
    assert_eq!(stats.requests, 320);
    assert!(threads_seen.lock().unwrap().len() >= 2, "requests were served by more than one loop");
}

#[test]
fn shutdown_lets_a_response_in_flight_finish() {
    let dir = temp_dir("libdrain");
    let data: Vec<u8> = (0..(16u32 << 20)).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("big.bin"), &data).unwrap();
    let s = Running::start(ServerBuilder::new().root(&dir).shutdown_timeout(Duration::from_secs(20)));
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    // Read a little, then ask the server to stop while the rest is in flight.
    while got.len() < 1 << 20 {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    s.handle.shutdown();
    // Read nothing more until the loop is draining (it closes its listening
    // socket first): the rest of the body, far more than the socket buffers
    // hold, is still to be sent then. Waking the loop takes microseconds;
    // 5 s is slack for a loaded machine.
    let port = s.addr.port();
    assert!(wait_until(Duration::from_secs(5), || !is_listening(port)), "still listening after shutdown");
    loop {
        let n = c.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let r = &parse_responses(&got, false)[0];
    assert_eq!(r.status, 200);
    assert!(r.body == data, "body cut or corrupted: {} of {} bytes", r.body.len(), data.len());
    // The server closed the connection after the response and run() returned.
    s.stop();
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_panicking_handler_costs_its_request_only() {
    let s = Running::start(
        ServerBuilder::new()
            .root(repo_root())
            .handler("/boom", |_: &Request<'_>| -> Option<Response> { panic!("handler bug") }),
    );
    let out = raw(s.addr, b"GET /boom HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(parse_responses(&out, false)[0].status, 500);
    // The loop survived: other requests are still served.
    assert_eq!(get(s.addr, "/httptest/text..txt").body, b"hello");
    s.stop();
}

/// Two servers in this process, each one event loop, joined by a handoff:
/// A says it runs on a CPU no client uses, B on the client's CPU, so A hands
/// the connection to B at its first check that knows the client's CPU (after
/// response 1 or 2: a connection accepted with its request already queued
/// may not have an incoming CPU yet) and B serves the rest.
#[test]
fn handoff_moves_an_idle_connection_to_the_loop_on_the_clients_cpu() {
    use std::os::unix::net::UnixDatagram;
    // The client thread stays on one CPU, so its packets are processed there.
    let cpu = allowed_cpus()[0];
    let (a_in, a_tx) = UnixDatagram::pair().unwrap();
    let (b_in, b_tx) = UnixDatagram::pair().unwrap();
    let elsewhere = cpu + 1000;
    let a = oserver_core::Handoff::new(elsewhere, a_in, vec![(cpu, b_tx)]).unwrap();
    let b = oserver_core::Handoff::new(cpu, b_in, vec![(elsewhere, a_tx)]).unwrap();
    let a = Running::start(ServerBuilder::new().root(repo_root()).handoff(a));
    let b = Running::start(ServerBuilder::new().root(repo_root()).handoff(b));
    let want = std::fs::read(repo_root().join("httptest/test.html")).unwrap();
    let bodies = thread::spawn(move || {
        pin_this_thread(cpu);
        let mut c = Client::connect(a.addr);
        let mut bodies = Vec::new();
        for _ in 0..5 {
            c.send(b"GET /httptest/test.html HTTP/1.1\r\nHost: t\r\n\r\n");
            bodies.push(c.response(false).body);
        }
        (a, b, bodies)
    });
    let (a, b, bodies) = bodies.join().unwrap();
    assert!(bodies.iter().all(|got| *got == want));
    let (sa, sb) = (a.stop(), b.stop());
    assert_eq!((sa.handed_off, sa.taken), (1, 0), "A: {sa:?}");
    assert_eq!((sb.handed_off, sb.taken), (0, 1), "B: {sb:?}");
    assert!((1..=2).contains(&sa.requests), "A: {sa:?}");
    assert_eq!(sa.requests + sb.requests, 5, "A: {sa:?}, B: {sb:?}");
}

#[test]
fn a_handoff_needs_exactly_one_thread() {
    let (inbox, _tx) = std::os::unix::net::UnixDatagram::pair().unwrap();
    let h = oserver_core::Handoff::new(0, inbox, Vec::new()).unwrap();
    let built = ServerBuilder::new().bind("127.0.0.1:0".parse().unwrap()).threads(2).handoff(h).build();
    assert!(matches!(built, Err(oserver_core::Error::Config(_))), "{:?}", built.err());
}

// What a handler's Response may not do: frame the message itself, send a
// status a final response cannot have, or send a field that is not one.

/// Tries to frame its own answer: a wrong length, chunked, close, beside a
/// field that is fine.
fn framing_handler(_: &Request<'_>) -> Option<Response> {
    Some(
        Response::new(200)
            .header("Content-Length", "99")
            .header("Transfer-Encoding", "chunked")
            .header("Connection", "close")
            .header("X-Ok", "yes")
            .body("hello"),
    )
}

#[test]
fn a_handler_cannot_set_the_framing_headers() {
    let s = Running::start(ServerBuilder::new().handler("/frame", framing_handler));
    let mut c = Client::connect(s.addr);
    // The second answer on the same connection starts right where the
    // server's own Content-Length said the first one ended.
    for round in 1..=2 {
        c.send(&request("GET", "/frame", &[]));
        let r = c.response(false);
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.headers_all("content-length"), ["5"], "round {round}: {r:?}");
        assert_eq!(r.headers_all("transfer-encoding"), Vec::<&str>::new(), "round {round}: {r:?}");
        assert_eq!(r.headers_all("connection"), Vec::<&str>::new(), "round {round}: {r:?}");
        assert_eq!(r.header("x-ok"), Some("yes"), "round {round}: {r:?}");
        assert_eq!(r.body, b"hello", "round {round}");
    }
    assert!(c.pending().is_empty(), "bytes beyond the two answers: {:?}", c.pending());
    s.stop();
}

#[test]
fn a_handler_status_that_is_not_final_is_answered_500() {
    // The status comes from the query: /status?1000 answers Response::new(1000).
    let s = Running::start(ServerBuilder::new().handler("/status", |req: &Request<'_>| {
        let code = std::str::from_utf8(req.query()?).ok()?.parse().ok()?;
        Some(Response::new(code).header("X-Handler", "yes").body("from the handler"))
    }));
    let mut c = Client::connect(s.addr);
    for code in [1000, 101, 100, 600, 99] {
        c.send(&request("GET", &format!("/status?{code}"), &[]));
        let r = c.response(false);
        assert_eq!((r.status, r.reason.as_str()), (500, "Internal Server Error"), "for {code}: {r:?}");
        assert_eq!(r.header("x-handler"), None, "for {code}: the handler's answer was not sent");
        assert_eq!(r.header("connection"), None, "for {code}: kept, which HTTP/1.1 need not be told");
    }
    // A final status of the handler's own goes through, on the same
    // connection: every 500 above was framed right.
    c.send(&request("GET", "/status?201", &[]));
    let r = c.response(false);
    assert_eq!((r.status, r.reason.as_str()), (201, "Created"));
    assert_eq!(r.body, b"from the handler");
    s.stop();
}

#[test]
fn a_handler_field_that_is_not_valid_is_not_sent() {
    let s = Running::start(ServerBuilder::new().handler("/fields", |_: &Request<'_>| {
        Some(
            Response::new(200)
                .header("bad name", "x")
                .header("X-Ctl", "a\x01b")
                .header("X-Split", "a\r\nX-Injected: yes")
                .header("X-Ok", "yes")
                .body("hello"),
        )
    }));
    let out = raw(s.addr, &request("GET", "/fields", &["Connection: close"]));
    let head_end = find(&out, b"\r\n\r\n").unwrap_or_else(|| panic!("no head in {out:?}"));
    let head = String::from_utf8_lossy(&out[..head_end]);
    for dropped in ["bad name", "X-Ctl", "X-Split", "X-Injected", "\x01"] {
        assert!(!head.contains(dropped), "{dropped:?} was sent:\n{head}");
    }
    let r = first_response(&out);
    assert_eq!(r.header("x-ok"), Some("yes"));
    assert_eq!(r.body, b"hello");
    s.stop();
}

#[test]
fn a_handler_prefix_matches_whole_segments_only() {
    let (root, _cleanup) = scratch_dir("libroute");
    write_file(&root.join("api-notes.txt"), "static");
    let s = Running::start(ServerBuilder::new().root(&root).handler("/api", |req: &Request<'_>| {
        Some(Response::new(200).body(format!("handler {}", req.path())))
    }));
    for path in ["/api", "/api/", "/api/x"] {
        let r = get(s.addr, path);
        assert_eq!((r.status, r.text()), (200, format!("handler {path}")), "{path}");
    }
    // Beside the prefix, not below it: the static files answer.
    let r = get(s.addr, "/apiary");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = get(s.addr, "/api-notes.txt");
    assert_eq!((r.status, r.text()), (200, "static".to_string()));
    s.stop();
}

fn hello(_: &Request<'_>) -> Option<Response> {
    Some(Response::new(200).body("hello"))
}

#[test]
fn keepalive_requests_closes_after_that_many_responses() {
    let s = Running::start(ServerBuilder::new().keepalive_requests(2).handler("/", hello));
    let mut c = Client::connect(s.addr);
    c.send(&request("GET", "/", &[]));
    assert_eq!(c.response(false).header("connection"), None, "kept: HTTP/1.1 says nothing");
    c.send(&request("GET", "/", &[]));
    let r = c.response(false);
    assert_eq!((r.status, r.header("connection")), (200, Some("close")));
    let (rest, end) = c.finish(Duration::from_secs(5));
    assert_eq!((rest.as_slice(), end), (&b""[..], End::Eof), "the server closes after the 2nd response");
    assert_eq!(s.stop().requests, 2);
}

#[test]
fn keepalive_requests_0_never_closes_for_the_count() {
    // One more request than the default limit (1000) on one connection.
    let s = Running::start(ServerBuilder::new().keepalive_requests(0).handler("/", hello));
    let mut c = Client::connect(s.addr);
    for n in 1..=1001 {
        c.send(&request("GET", "/", &[]));
        let r = c.response(false);
        assert_eq!((r.status, r.header("connection")), (200, None), "response {n}");
    }
    assert_eq!(s.stop().requests, 1001);
}

#[test]
fn the_connection_field_by_default_and_with_keep_alive_field() {
    // The library's default says nothing on a kept HTTP/1.1 connection (as
    // hyper, h2o and Caddy); keep_alive_field(true) says keep-alive (as
    // nginx and the oserver command). HTTP/1.0 and closing answers say
    // theirs either way.
    for (on, kept_11) in [(false, None), (true, Some("keep-alive"))] {
        let s = Running::start(ServerBuilder::new().keep_alive_field(on).handler("/", hello));
        let mut c = Client::connect(s.addr);
        let steps: [(&[u8], Option<&str>); 3] = [
            (&request("GET", "/", &[]), kept_11),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", Some("keep-alive")),
            (&request("GET", "/", &["Connection: close"]), Some("close")),
        ];
        for (req, want) in steps {
            c.send(req);
            let r = c.response(false);
            let what = format!("keep_alive_field({on}): {}", String::from_utf8_lossy(req));
            assert_eq!((r.status, r.text().as_str()), (200, "hello"), "{what}");
            assert_eq!(r.headers_all("connection"), Vec::from_iter(want), "{what}");
        }
        let (rest, end) = c.finish(Duration::from_secs(5));
        assert_eq!(
            (rest.as_slice(), end),
            (&b""[..], End::Eof),
            "keep_alive_field({on}): closed after close"
        );
        s.stop();
    }
}

#[test]
fn build_refuses_settings_out_of_range() {
    let mut zero_header_timeout = Settings::default();
    zero_header_timeout.header_timeout = Duration::ZERO;
    let cases = [
        ("send_timeout", ServerBuilder::new().send_timeout(Duration::ZERO)),
        ("keepalive_timeout", ServerBuilder::new().keepalive_timeout(Duration::from_secs(u64::MAX))),
        ("limits.max_header_bytes", ServerBuilder::new().max_header_bytes(10)),
        ("max_connections", ServerBuilder::new().max_connections(0)),
        ("header_timeout", ServerBuilder::new().settings(zero_header_timeout)),
    ];
    for (setting, b) in cases {
        match b.bind("127.0.0.1:0".parse().unwrap()).build() {
            Err(Error::Settings(e)) => {
                assert_eq!(e.setting, setting, "{e}");
                assert!(Error::Settings(e).to_string().contains(setting));
            }
            Err(e) => panic!("{setting}: refused for another reason: {e}"),
            Ok(server) => panic!("{setting}: built a server on {}", server.local_addr()),
        }
    }
}

/// An echo of the request body, with its length, for the body tests.
fn echo(req: &Request<'_>) -> Option<Response> {
    Some(
        Response::new(200).body(
            format!("{} {}:", req.method(), req.body().len())
                .into_bytes()
                .into_iter()
                .chain(req.body().iter().copied())
                .collect::<Vec<u8>>(),
        ),
    )
}

/// A handler gets the request body whole: Content-Length or chunked, in one
/// piece or many, after `100 Continue` when the client asks; over the limit
/// (the server's or the route's) is 413 and the handler does not run; the
/// next request on the connection is served; the static files still drop
/// bodies.
#[test]
fn handlers_get_request_bodies() {
    let s = Running::start(
        ServerBuilder::new()
            .root(repo_root())
            .max_body_bytes(64)
            .route(&["POST", "PUT"], "/echo", echo)
            .route(&["POST"], "/big", echo)
            .body_limit(300_000),
    );
    let ask = |bytes: &[u8]| parse_responses(&raw(s.addr, bytes), false);
    // Content-Length, then a pipelined GET on the same connection.
    let r = ask(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhelloPUT /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].body, b"POST 5:hello");
    assert_eq!(r[1].body, b"PUT 0:");
    // Chunked, with an extension and a trailer.
    let r = ask(b"PUT /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n");
    assert_eq!(r[0].body, b"PUT 5:abcde");
    // Over the server's limit (64): 413, by length or as chunks arrive.
    let r = ask(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65\r\nConnection: close\r\n\r\n");
    assert_eq!(r[0].status, 413);
    let chunk = format!("{:x}\r\n{}\r\n", 70, "x".repeat(70));
    let r =
        ask(format!("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{chunk}0\r\n\r\n")
            .as_bytes());
    assert_eq!(r[0].status, 413);
    // A route's own limit.
    let big = "y".repeat(50_000);
    let r = ask(format!(
        "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
        big.len()
    )
    .as_bytes());
    assert_eq!(r[0].body, format!("POST 50000:{big}").as_bytes());
    // A malformed chunked body: 400.
    let r = ask(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    assert_eq!(r[0].status, 400);
    // The static files do not hold bodies: 405, body dropped, connection on.
    let r = ask(b"POST /httptest/test.html HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabcGET /httptest/test.html HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!((r[0].status, r[1].status), (405, 200));
    // The same over HTTP/2 (h2c, curl): DATA frames are the body, beyond
    // the first 64 KiB window too; over the limit, 413.
    let dir = temp_dir("h2-bodies");
    let file = dir.join("body");
    std::fs::write(&file, "z".repeat(200_000)).unwrap();
    let curl = |path: &str, data: &str| {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "--http2-prior-knowledge",
                "-m",
                "10",
                "-w",
                "\n%{http_code} %{http_version}",
                "--data-binary",
                data,
            ])
            .arg(format!("http://{}{path}", s.addr))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("/echo", "hello"), "POST 5:hello\n200 2");
    let at_file = format!("@{}", file.display());
    let out = curl("/big", &at_file);
    assert!(out.starts_with("POST 200000:zzz") && out.ends_with("\n200 2"), "{}", &out[..40.min(out.len())]);
    assert!(curl("/echo", &at_file).ends_with("\n413 2"));
    let _ = std::fs::remove_dir_all(&dir);
    s.stop();
}

/// A body in pieces, and `Expect: 100-continue`: the client waits for 100
/// before it sends the body.
#[test]
fn a_handler_body_arrives_in_pieces_and_after_100_continue() {
    use std::io::{Read, Write};
    let s = Running::start(ServerBuilder::new().route(&["POST"], "/echo", echo));
    let mut c = std::net::TcpStream::connect(s.addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
    let mut got = [0u8; 25];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HTTP/1.1 100 Continue\r\n\r\n");
    for piece in [&b"hel"[..], b"lo ", b"world"] {
        c.write_all(piece).unwrap();
        thread::sleep(Duration::from_millis(30));
    }
    let mut rest = Vec::new();
    let _ = c.read_to_end(&mut rest);
    let r = parse_responses(&rest, false);
    assert_eq!((r[0].status, &r[0].body[..]), (200, &b"POST 11:hello world"[..]));
    s.stop();
}

/// The `techempower` example (built by `cargo test` with the crate's other
/// examples): `/plaintext` and `/json` as the benchmark's rules ask, 16
/// pipelined at once; a bad argument is one line and exit 2.
#[test]
fn the_techempower_example_answers_plaintext_and_json() {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples").join("techempower");
    if !bin.exists() {
        // `cargo test` builds the examples; `cargo test --test library`
        // alone does not.
        let built = std::process::Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "oserver-core", "--example", "techempower"])
            .status()
            .unwrap();
        assert!(built.success() && bin.exists(), "{}", bin.display());
    }
    let bad = std::process::Command::new(&bin).args(["127.0.0.1:0", "zero"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&bad.stderr).lines().count(), 1);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = std::process::Command::new(&bin).args([addr.to_string().as_str(), "2"]).spawn().unwrap();
    assert!(wait_until(Duration::from_secs(10), || is_listening(port)), "example never listened");
    let mut reqs = Vec::new();
    for i in 0..16 {
        let path = if i % 2 == 0 { "/plaintext" } else { "/json" };
        reqs.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
    }
    reqs.extend_from_slice(b"GET /other HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let r = parse_responses(&raw(addr, &reqs), false);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.len(), 17);
    for (i, resp) in r.iter().take(16).enumerate() {
        assert_eq!(resp.status, 200);
        assert!(resp.header("server").is_some() && resp.header("date").is_some());
        if i % 2 == 0 {
            assert_eq!(
                (resp.header("content-type"), &resp.body[..]),
                (Some("text/plain"), &b"Hello, World!"[..])
            );
        } else {
            assert_eq!(
                (resp.header("content-type"), &resp.body[..]),
                (Some("application/json"), &br#"{"message":"Hello, World!"}"#[..])
            );
        }
    }
    assert_eq!(r[16].status, 404);
}
