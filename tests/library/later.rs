//! Replies from other threads and streamed bodies, over real TCP: HTTP/1.1
//! from raw sockets, HTTP/2 from curl.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use oserver_core::{BodySender, BodyStream, Later, Request, Response, ServerBuilder};

use crate::support::{connect, find, parse_responses, raw, repo_root, wait_until, Client, End};
use crate::Running;

/// curl over h2c: the body and `code version`, or the exit status.
fn curl_h2(addr: SocketAddr, path: &str, extra: &[&str]) -> (String, i32) {
    let out = std::process::Command::new("curl")
        .args(["-s", "--http2-prior-knowledge", "-m", "10", "-w", "\n%{http_code} %{http_version}"])
        .args(extra)
        .arg(format!("http://{addr}{path}"))
        .output()
        .expect("curl");
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

/// A handler that answers from a new thread after `ms` milliseconds.
fn later_after(ms: u64) -> impl Fn(&Request<'_>) -> Option<Response> + Send + Sync + 'static {
    move |req: &Request<'_>| {
        let (placeholder, later) = Response::later();
        let path = req.path().to_owned();
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(ms));
            later.send(Response::new(200).header("Content-Type", "text/plain").body(format!("late {path}")));
        });
        Some(placeholder)
    }
}

/// A late reply arrives from another thread; the loop serves others
/// meanwhile, and pipelined requests behind it are answered in order after
/// it, on the same connection.
#[test]
fn a_reply_from_another_thread_is_sent_and_keeps_the_order() {
    let s = Running::start(ServerBuilder::new().root(repo_root()).handler("/late", later_after(300)));
    let mut slow = Client::connect(s.addr);
    slow.send(b"GET /late/a HTTP/1.1\r\nHost: t\r\n\r\nGET /httptest/text..txt HTTP/1.1\r\nHost: t\r\n\r\n");
    // Another client is served while the first waits.
    let other = raw(s.addr, b"GET /httptest/text..txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(parse_responses(&other, false)[0].body, b"hello");
    assert!(slow.pending().is_empty(), "nothing before the late reply");
    let first = slow.response(false);
    assert_eq!((first.status, first.text().as_str()), (200, "late /late/a"));
    assert_eq!(first.header("connection"), None, "kept: HTTP/1.1 says nothing");
    assert_eq!(slow.response(false).body, b"hello", "the pipelined request, after the late one");
    // Over HTTP/2, two late streams on one connection.
    let (out, _) = curl_h2(s.addr, "/late/b", &[]);
    assert_eq!(out, "late /late/b\n200 2");
    s.stop();
}

/// A `Later` dropped without a reply (a worker that panicked or forgot)
/// answers 500; the connection and the loop go on.
#[test]
fn a_dropped_later_answers_500() {
    let s = Running::start(ServerBuilder::new().root(repo_root()).handler("/drop", |_: &Request<'_>| {
        let (placeholder, later) = Response::later();
        thread::spawn(move || {
            let _held: Later = later;
            panic!("worker bug (expected by the test)");
        });
        Some(placeholder)
    }));
    let mut c = Client::connect(s.addr);
    c.send(b"GET /drop HTTP/1.1\r\nHost: t\r\n\r\nGET /httptest/text..txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.response(false).status, 500);
    assert_eq!(c.response(false).body, b"hello");
    assert_eq!(curl_h2(s.addr, "/drop", &["-o", "/dev/null"]).0, "\n500 2");
    s.stop();
}

/// Blocking routes run on the pool: a sleeping handler does not stall the
/// loop (one loop thread here), a panic there is a 500, `None` is a 404,
/// and more requests than pool threads queue and are all answered.
#[test]
fn blocking_routes_run_on_the_pool() {
    let s = Running::start(
        ServerBuilder::new()
            .root(repo_root())
            .blocking_threads(2)
            .blocking_route(&["GET"], "/sleep", |req: &Request<'_>| {
                let ms: u64 = std::str::from_utf8(req.query().unwrap_or(b"0")).unwrap().parse().unwrap();
                thread::sleep(Duration::from_millis(ms));
                Some(Response::new(200).body(format!("slept {ms} on {}", thread::current().name().unwrap())))
            })
            .blocking_route(&["GET"], "/panic", |_: &Request<'_>| -> Option<Response> {
                panic!("blocking handler bug (expected by the test)")
            })
            .blocking_route(&["POST"], "/decline", |req: &Request<'_>| {
                // The body was copied for the pool.
                (req.body() != b"no").then(|| Response::new(200).body(req.body().to_vec()))
            }),
    );
    let mut slow = Client::connect(s.addr);
    slow.send(b"GET /sleep?1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    // Served while the pool thread sleeps, by the one loop thread.
    let r = parse_responses(
        &raw(s.addr, b"GET /httptest/text..txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
        false,
    );
    assert_eq!(r[0].body, b"hello");
    assert!(slow.pending().is_empty());
    let r = slow.response(false);
    assert!(r.text().starts_with("slept 1500 on oserver-blocking-"), "{}", r.text());
    // Six at once on two threads: all answered.
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let mut c = Client::connect(s.addr);
            c.send(b"GET /sleep?100 HTTP/1.1\r\nHost: t\r\n\r\n");
            c
        })
        .collect();
    for mut c in clients {
        assert_eq!(c.response(false).status, 200);
    }
    // (Not `raw`: its half-close would tell the server the client left.)
    let ask = |bytes: &[u8]| {
        let mut c = Client::connect(s.addr);
        c.send(bytes);
        vec![c.response(false)]
    };
    assert_eq!(ask(b"GET /panic HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")[0].status, 500);
    let r = ask(b"POST /decline HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nyes");
    assert_eq!((r[0].status, &r[0].body[..]), (200, &b"yes"[..]));
    let r = ask(b"POST /decline HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno");
    assert_eq!(r[0].status, 404);
    // HTTP/2: a pool reply, and a body copied for the pool.
    assert!(curl_h2(s.addr, "/sleep?10", &[]).0.ends_with("\n200 2"));
    assert_eq!(curl_h2(s.addr, "/decline", &["--data-binary", "h2 body"]).0, "h2 body\n200 2");
    s.stop();
}

/// A reply for a client that left is dropped quietly, and the worker can
/// see that the client left (`Later::is_gone`).
#[test]
fn a_late_reply_for_a_gone_client_is_dropped() {
    let parked: Arc<Mutex<Vec<Later>>> = Arc::default();
    let p = Arc::clone(&parked);
    let s = Running::start(ServerBuilder::new().handler("/park", move |_: &Request<'_>| {
        let (placeholder, later) = Response::later();
        p.lock().unwrap().push(later);
        Some(placeholder)
    }));
    let mut c = connect(s.addr);
    c.write_all(b"GET /park HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert!(wait_until(Duration::from_secs(5), || parked.lock().unwrap().len() == 1));
    assert!(!parked.lock().unwrap()[0].is_gone());
    drop(c);
    assert!(
        wait_until(Duration::from_secs(5), || parked.lock().unwrap()[0].is_gone()),
        "the connection closed when its client left"
    );
    let later = parked.lock().unwrap().pop().unwrap();
    later.send(Response::new(200).body("nobody reads this"));
    // The loop is fine.
    let (out, _) = curl_h2(s.addr, "/nothing", &["-o", "/dev/null"]);
    assert_eq!(out, "\n404 2");
    s.stop();
}

/// A late reply that never comes meets `reply_timeout`: the connection is
/// closed rather than held forever.
#[test]
fn a_reply_that_never_comes_meets_the_reply_timeout() {
    let parked: Arc<Mutex<Vec<Later>>> = Arc::default();
    let p = Arc::clone(&parked);
    let s = Running::start(ServerBuilder::new().reply_timeout(Duration::from_secs(1)).handler(
        "/never",
        move |_: &Request<'_>| {
            let (placeholder, later) = Response::later();
            p.lock().unwrap().push(later);
            Some(placeholder)
        },
    ));
    let mut c = Client::connect(s.addr);
    c.send(b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    let (got, end) = c.finish(Duration::from_secs(5));
    assert!(got.is_empty() && matches!(end, End::Eof | End::Reset), "{end:?} {got:?}");
    // The socket closes first, then the connection's state is dropped.
    assert!(wait_until(Duration::from_secs(5), || parked.lock().unwrap()[0].is_gone()));
    s.stop();
}

/// De-chunk an HTTP/1.1 chunked body; None if the framing is wrong or the
/// last chunk is missing.
fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(b, b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).ok()?, 16).ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return (b == b"\r\n").then_some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        if b.get(size..size + 2)? != b"\r\n" {
            return None;
        }
        b = &b[size + 2..];
    }
}

/// The head and the raw body of one response read to the close.
fn head_and_body(bytes: &[u8]) -> (String, &[u8]) {
    let end = find(bytes, b"\r\n\r\n").expect("a head");
    (String::from_utf8_lossy(&bytes[..end]).into_owned(), &bytes[end + 4..])
}

fn lines(n: usize) -> String {
    (0..n).map(|i| format!("line {i}\n")).collect()
}

/// Streamed bodies: chunked on HTTP/1.1 (and the connection stays open),
/// unframed on HTTP/1.0 (the close ends it), DATA on HTTP/2; from an
/// iterator and from a channel fed by another thread; HEAD gets the head
/// and the producer learns the client does not want the body.
#[test]
fn streamed_bodies_are_framed_per_protocol() {
    let head_gone = Arc::new(AtomicBool::new(false));
    let hg = Arc::clone(&head_gone);
    let s = Running::start(
        ServerBuilder::new()
            .route(&["GET"], "/iter", |_: &Request<'_>| {
                Some(Response::new(200).body(BodyStream::iter((0..50).map(|i| format!("line {i}\n")))))
            })
            .route(&["GET"], "/chan", move |_: &Request<'_>| {
                let (body, tx) = BodyStream::channel();
                let hg = Arc::clone(&hg);
                thread::spawn(move || {
                    for i in 0..50 {
                        if tx.send(format!("line {i}\n")).is_err() {
                            hg.store(true, Ordering::SeqCst);
                            return;
                        }
                        thread::sleep(Duration::from_millis(1));
                    }
                });
                Some(Response::new(200).header("Content-Type", "text/plain").body(body))
            }),
    );
    for path in ["/iter", "/chan"] {
        // HTTP/1.1: chunked, then the next request on the same connection.
        let mut c = connect(s.addr);
        let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\nGET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).unwrap();
        let mut all = Vec::new();
        let _ = c.read_to_end(&mut all);
        let (head, body) = head_and_body(&all);
        assert!(head.contains("Transfer-Encoding: chunked") && !head.contains("Content-Length"), "{head}");
        let second = find(body, b"HTTP/1.1 200").expect("the second response");
        assert_eq!(dechunk(&body[..second]).as_deref(), Some(lines(50).as_bytes()), "{path}");
        let (_, body2) = head_and_body(&body[second..]);
        assert_eq!(dechunk(body2).as_deref(), Some(lines(50).as_bytes()));
        // HTTP/1.0: no chunks; the close ends the body.
        let got = raw(s.addr, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
        let (head, body) = head_and_body(&got);
        assert!(!head.contains("Transfer-Encoding") && head.contains("Connection: close"), "{head}");
        assert_eq!(body, lines(50).as_bytes());
        // HTTP/2.
        let (out, _) = curl_h2(s.addr, path, &[]);
        assert_eq!(out, format!("{}\n200 2", lines(50)));
    }
    // HEAD: the head only; the producer is told nobody wants the body.
    let got = raw(s.addr, b"HEAD /chan HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let (head, body) = head_and_body(&got);
    assert!(head.starts_with("HTTP/1.1 200") && body.is_empty(), "{head} {body:?}");
    assert!(wait_until(Duration::from_secs(5), || head_gone.load(Ordering::SeqCst)));
    s.stop();
}

/// A producer that fails cuts the body short in a way the client sees:
/// HTTP/1.1 closes without the last chunk, HTTP/2 resets the stream.
#[test]
fn a_failed_producer_cuts_the_body_visibly() {
    let s = Running::start(ServerBuilder::new().route(&["GET"], "/fail", |_: &Request<'_>| {
        let (body, tx) = BodyStream::channel();
        thread::spawn(move || {
            let _ = tx.send("partial\n");
            thread::sleep(Duration::from_millis(50));
            tx.abort();
        });
        Some(Response::new(200).body(body))
    }));
    let got = raw(s.addr, b"GET /fail HTTP/1.1\r\nHost: t\r\n\r\n");
    let (_, body) = head_and_body(&got);
    assert_eq!(body, b"8\r\npartial\n\r\n", "the piece, then the close: no last chunk");
    assert!(dechunk(body).is_none());
    let (out, code) = curl_h2(s.addr, "/fail", &[]);
    assert_ne!(code, 0, "curl sees the stream reset: {out}");
    s.stop();
}

/// A response streaming `pieces` pieces of `piece` bytes from a thread
/// through a channel, counting in `sent` each piece the channel took.
fn counted_channel(sent: &Arc<AtomicUsize>, piece: usize, pieces: usize) -> Response {
    let (body, tx): (BodyStream, BodySender) = BodyStream::channel();
    let sent = Arc::clone(sent);
    thread::spawn(move || {
        for _ in 0..pieces {
            if tx.send(vec![b'c'; piece]).is_err() {
                return;
            }
            sent.fetch_add(1, Ordering::SeqCst);
        }
    });
    Response::new(200).body(body)
}

/// Back-pressure: a client that reads nothing holds the producer back. A
/// channel's sender blocks; an iterator is not pulled. Once the client
/// reads, the whole body arrives.
#[test]
fn a_slow_client_holds_the_producer_back() {
    const PIECE: usize = 16 * 1024;
    const PIECES: usize = 4096; // 64 MiB if nothing held it back
    let sent = Arc::new(AtomicUsize::new(0));
    let pulled = Arc::new(AtomicUsize::new(0));
    let (s1, p1) = (Arc::clone(&sent), Arc::clone(&pulled));
    let s = Running::start(
        ServerBuilder::new()
            .route(&["GET"], "/chan", move |_: &Request<'_>| Some(counted_channel(&s1, PIECE, PIECES)))
            .route(&["GET"], "/iter", move |_: &Request<'_>| {
                let p1 = Arc::clone(&p1);
                let it = (0..PIECES).map(move |_| {
                    p1.fetch_add(1, Ordering::SeqCst);
                    vec![b'i'; PIECE]
                });
                Some(Response::new(200).body(BodyStream::iter(it)))
            }),
    );
    for (path, count) in [("/chan", &sent), ("/iter", &pulled)] {
        let mut c = connect(s.addr);
        let _ = c.set_read_timeout(Some(Duration::from_secs(20)));
        c.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes()).unwrap();
        // Wait until the producer stops moving (socket buffers full).
        let mut last = usize::MAX;
        assert!(wait_until(Duration::from_secs(10), || {
            thread::sleep(Duration::from_millis(200));
            let now = count.load(Ordering::SeqCst);
            let still = now == last;
            last = now;
            still
        }));
        let held = count.load(Ordering::SeqCst);
        assert!(held < PIECES / 4, "{path}: {held} of {PIECES} pieces made for a client that reads nothing");
        let mut body = Vec::new();
        c.read_to_end(&mut body).unwrap();
        let (_, body) = head_and_body(&body);
        assert_eq!(body.len(), PIECE * PIECES, "{path}: every byte, once the client reads");
        assert_eq!(count.load(Ordering::SeqCst), PIECES);
    }
    s.stop();
}

/// A graceful stop waits for a reply in flight from another thread.
#[test]
fn a_graceful_stop_waits_for_a_late_reply() {
    let s = Running::start(ServerBuilder::new().handler("/late", later_after(500)));
    let mut c = Client::connect(s.addr);
    c.send(b"GET /late/x HTTP/1.1\r\nHost: t\r\n\r\n");
    thread::sleep(Duration::from_millis(100));
    let stopping = thread::spawn(move || s.stop());
    let r = c.response(false);
    assert_eq!(r.text(), "late /late/x");
    assert!(r.connection_is("close"), "the stop ends the connection after the reply");
    stopping.join().unwrap();
}

/// Back-pressure over HTTP/2: a client that reads slowly (curl limited to
/// 1 MB/s for 3 s) gets what flow control and the socket hold, and the
/// producer is held back to about that, far from the whole body.
#[test]
fn a_slow_http2_client_holds_the_producer_back() {
    const PIECE: usize = 16 * 1024;
    const PIECES: usize = 16 * 1024; // 256 MiB if nothing held it back
    let sent = Arc::new(AtomicUsize::new(0));
    let s1 = Arc::clone(&sent);
    let s = Running::start(
        ServerBuilder::new()
            .route(&["GET"], "/chan", move |_: &Request<'_>| Some(counted_channel(&s1, PIECE, PIECES))),
    );
    let (_, code) = curl_h2(s.addr, "/chan", &["-o", "/dev/null", "--limit-rate", "1M", "--max-time", "3"]);
    assert_eq!(code, 28, "curl stopped by its own time limit, the body unfinished");
    let made = sent.load(Ordering::SeqCst) * PIECE;
    // Curl's stream window (up to 32 MiB) and the socket buffers hold
    // what was sent ahead of its reading; the rest was never made.
    assert!(made < PIECES * PIECE / 4, "{} MiB of 256 made for a client that read ~3", made >> 20);
    s.stop();
}
