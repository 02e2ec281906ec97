//! The foundation: methods, mapping, URLs, headers, Content-Types,
//! connections, large files, processes and the startup log.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::*;

const PAGE: &str = "<html><body>Page Sample</body></html>\n";
const INDEX: &str = "<html>Directory index file</html>\n";
const DEEP: &str = "bingo, you found it\n";

fn fixture(rel: &str) -> Vec<u8> {
    let p = repo_root().join("httptest").join(rel);
    fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn send_one(addr: std::net::SocketAddr, req: &[u8]) -> Response {
    first_response(&raw(addr, req))
}

// 1. Methods ---------------------------------------------------------------

#[test]
fn get_and_head_are_served() {
    let s = Oserver::start(&[]);
    let r = get(s.addr(), "/httptest/dir2/page.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), PAGE);

    let bytes = raw(s.addr(), &request("HEAD", "/httptest/dir2/page.html", &["Connection: close"]));
    let (r, used) = parse_one(&bytes, true).expect("a HEAD response");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), Some(PAGE.len() as u64));
    assert_eq!(used, bytes.len(), "HEAD response carried a body");
}

#[test]
fn other_methods_get_405_with_allow() {
    let s = Oserver::start(&[]);
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "FOO"] {
        let r = send_one(s.addr(), &request(method, "/httptest/dir2/page.html", &["Connection: close"]));
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
        assert!(!r.text().contains("Page Sample"), "{method} served the file");
    }
}

#[test]
fn head_has_exactly_the_headers_of_get_and_no_body() {
    let s = Oserver::start(&[]);
    let mut c = Client::connect(s.addr());
    let mut req = request("HEAD", "/httptest/dir2/page.html", &[]);
    req.extend(request("GET", "/httptest/dir2/page.html", &[]));
    c.send(&req);
    let head = c.response(true);
    // If HEAD had sent a body, these bytes would be its body, not a status line.
    let get = c.response(false);
    assert_eq!(head.status, 200);
    assert_eq!(get.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(get.text(), PAGE);
    assert_eq!(head.content_length(), Some(PAGE.len() as u64));
    let strip = |r: &Response| -> Vec<(String, String)> {
        r.headers
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("date"))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .collect()
    };
    assert_eq!(strip(&head), strip(&get));
    // Nothing else arrives: no stray body bytes after the GET.
    let (rest, _) = c.finish(Duration::from_millis(300));
    assert!(rest.is_empty(), "extra bytes: {:?}", String::from_utf8_lossy(&rest));
}

// 2. Mapping ---------------------------------------------------------------

#[test]
fn files_at_any_depth_and_directory_index() {
    let s = Oserver::start(&[]);
    let r = get(s.addr(), "/httptest/dir1/dir12/dir123/deep.txt");
    assert_eq!((r.status, r.text().as_str()), (200, DEEP));
    let r = get(s.addr(), "/httptest/dir2/");
    assert_eq!((r.status, r.text().as_str()), (200, INDEX));
    assert_eq!(r.header("content-type"), Some("text/html"));
}

#[test]
fn directory_without_index_is_forbidden() {
    let s = Oserver::start(&[]);
    assert_eq!(get(s.addr(), "/httptest/dir1/").status, 403);
    assert_eq!(get(s.addr(), "/httptest/dir1/dir12/").status, 403);
}

#[test]
fn missing_and_file_with_slash_are_404() {
    let s = Oserver::start(&[]);
    assert_eq!(get(s.addr(), "/httptest/nope.html").status, 404);
    assert_eq!(get(s.addr(), "/httptest/nodir/nope.html").status, 404);
    assert_eq!(get(s.addr(), "/httptest/dir2/page.html/").status, 404);
}

#[test]
fn directory_without_slash_redirects() {
    let s = Oserver::start(&[]);
    let r = get(s.addr(), "/httptest/dir2");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/httptest/dir2/"));
    let r = get(s.addr(), "/httptest/dir1/dir12");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/httptest/dir1/dir12/"));
}

/// The redirect's Location is built from the resolved path, encoded: no
/// target can make it `//host/...` or `/\host/...`, which a browser follows
/// to another host.
#[test]
fn directory_redirect_never_leaves_the_host() {
    let s = Oserver::start(&[]);
    let table: &[(&str, &str)] = &[
        ("//evil.com/..%2fhttptest", "/httptest/"),
        ("/\\evil.com/..%2fhttptest", "/httptest/"),
        ("//evil.com/../httptest", "/httptest/"),
        ("/httptest/./dir2", "/httptest/dir2/"),
        ("/httptest//dir2", "/httptest/dir2/"),
        ("/httptest/dir2?x=1", "/httptest/dir2/?x=1"),
    ];
    for (target, want) in table {
        let r = get(s.addr(), target);
        assert_eq!(r.status, 301, "{target}");
        let loc = r.header("location").unwrap_or_default();
        assert_eq!(loc, *want, "{target}");
        assert!(!loc.starts_with("//") && !loc.starts_with("/\\"), "{target}: {loc}");
    }
}

// 3. URLs ------------------------------------------------------------------

#[test]
fn query_and_fragment_are_ignored() {
    let s = Oserver::start(&[]);
    for path in [
        "/httptest/dir2/page.html?arg1=value&arg2=value",
        "/httptest/dir2/page.html?",
        "/httptest/dir2/page.html#frag",
        "/httptest/dir2/page.html?a=b#frag",
    ] {
        let r = get(s.addr(), path);
        assert_eq!((r.status, r.text().as_str()), (200, PAGE), "{path}");
    }
}

#[test]
fn percent_decoding_and_dots_in_names() {
    let s = Oserver::start(&[]);
    let r = get(s.addr(), "/httptest/space%20in%20name.txt");
    assert_eq!((r.status, r.text().as_str()), (200, "letters and spaces\n"));
    let r = get(s.addr(), "/httptest/dir2/%70%61%67%65%2e%68%74%6d%6c");
    assert_eq!((r.status, r.text().as_str()), (200, PAGE));
    let r = get(s.addr(), "/httptest/dir2/%70%61%67%65%2E%68%74%6D%6C");
    assert_eq!((r.status, r.text().as_str()), (200, PAGE), "upper-case hex");
    let r = get(s.addr(), "/httptest/text..txt");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
}

// 4. Root escape -----------------------------------------------------------

/// Targets that try to climb out of the root (also sent over HTTPS, see
/// `tls.rs`).
pub(crate) const ESCAPES: [&str; 6] = [
    "/httptest/../../../../etc/passwd",
    "/../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..%2f..%2f..%2fetc/passwd",
    "/httptest/..%2f..%2f..%2f..%2fetc/passwd",
    "/httptest/%2E%2E/%2E%2E/%2E%2E/%2E%2E/etc/passwd",
];

#[test]
fn cannot_escape_the_root() {
    let s = Oserver::start(&[]);
    for path in ESCAPES {
        let bytes = raw(s.addr(), &request("GET", path, &["Connection: close"]));
        let r = first_response(&bytes);
        assert!([400, 403, 404].contains(&r.status), "{path}: status {}", r.status);
        assert!(find(&bytes, b"root:").is_none(), "{path} leaked /etc/passwd");
    }
}

// 5. Headers on every response ---------------------------------------------

/// One request for each kind of answer, with its status (also sent over
/// HTTPS, see `tls.rs`).
pub(crate) const COMMON_CASES: [(&[u8], u16); 7] = [
    (b"GET /httptest/dir2/page.html HTTP/1.1\r\nHost: x\r\n\r\n", 200),
    (b"GET /httptest/dir2 HTTP/1.1\r\nHost: x\r\n\r\n", 301),
    (b"GET /httptest/dir1/ HTTP/1.1\r\nHost: x\r\n\r\n", 403),
    (b"GET /httptest/nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"POST /httptest/test.html HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET /httptest/test.html HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", 505),
];

#[test]
fn common_headers_on_every_response() {
    let s = Oserver::start(&[]);
    for (req, status) in &COMMON_CASES {
        let label = String::from_utf8_lossy(req).lines().next().unwrap_or("").to_string();
        let r = send_one(s.addr(), req);
        assert_eq!(r.status, *status, "{label}");
        let date = r.header("date").unwrap_or_else(|| panic!("{label}: no Date"));
        assert!(is_imf_fixdate(date), "{label}: Date {date:?}");
        let server = r.header("server").unwrap_or_default();
        assert!(server.starts_with("oserver/"), "{label}: Server {server:?}");
        let conn = r.header("connection").unwrap_or_default();
        assert!(
            conn.eq_ignore_ascii_case("keep-alive") || conn.eq_ignore_ascii_case("close"),
            "{label}: Connection {conn:?}"
        );
        assert_eq!(r.content_length(), Some(r.body.len() as u64), "{label}: Content-Length");
        if r.status == 200 {
            assert!(r.header("content-type").is_some(), "{label}: Content-Type");
        }
        if r.status >= 400 {
            assert!(r.text().contains("<html"), "{label}: error body {:?}", r.text());
        }
    }
}

// 6. Content-Types ---------------------------------------------------------

#[test]
fn content_types_of_the_classic_extensions() {
    let s = Oserver::start(&[]);
    for (file, ctype) in [
        ("test.html", "text/html"),
        ("style.css", "text/css"),
        ("script.js", "application/javascript"),
        ("image.jpg", "image/jpeg"),
        ("image.jpeg", "image/jpeg"),
        ("image.png", "image/png"),
        ("image.gif", "image/gif"),
        ("movie.swf", "application/x-shockwave-flash"),
        ("text..txt", "text/plain"),
    ] {
        let r = get(s.addr(), &format!("/httptest/{file}"));
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.header("content-type"), Some(ctype), "{file}");
        assert_eq!(r.body, fixture(file), "{file}");
    }
}

#[test]
fn content_types_from_the_table_and_unknown() {
    let (root, _cleanup) = scratch_dir("ctype");
    write_file(&root.join("x.pdf"), b"%PDF-1.4\n%%EOF\n");
    write_file(&root.join("x.zzqq"), b"whatever");
    let s = Oserver::start_in(&root, &[]);
    let r = get(s.addr(), "/x.pdf");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/pdf"));
    let r = get(s.addr(), "/x.zzqq");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
}

// 7. Connections -----------------------------------------------------------

#[test]
fn http11_keeps_the_connection_alive() {
    let s = Oserver::start(&[]);
    let mut c = Client::connect(s.addr());
    c.send(&request("GET", "/httptest/dir2/page.html", &[]));
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, PAGE));
    // Said, as the README promises for the command: it turns on the
    // library's keep_alive_field, whose default sends nothing here.
    assert!(r.connection_is("keep-alive"));
    // Idle and still open: a close would read as EOF.
    c.stream.set_nonblocking(true).unwrap();
    let idle = c.stream.peek(&mut [0u8; 1]);
    c.stream.set_nonblocking(false).unwrap();
    assert!(
        matches!(&idle, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "after a keep-alive response: {idle:?}"
    );
    c.send(&request("GET", "/httptest/text..txt", &[]));
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
}

#[test]
fn http10_closes_unless_keep_alive() {
    let s = Oserver::start(&[]);
    let mut c = Client::connect(s.addr());
    c.send(b"GET /httptest/text..txt HTTP/1.0\r\n\r\n");
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert!(r.connection_is("close"));
    let (rest, end) = c.finish(Duration::from_secs(3));
    assert_eq!((rest.len(), end), (0, End::Eof), "HTTP/1.0 not closed");

    let mut c = Client::connect(s.addr());
    c.send(b"GET /httptest/text..txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert!(r.connection_is("keep-alive"));
    c.send(b"GET /httptest/dir2/page.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, PAGE));
}

#[test]
fn connection_close_is_honoured() {
    let s = Oserver::start(&[]);
    let mut c = Client::connect(s.addr());
    c.send(&request("GET", "/httptest/text..txt", &["Connection: close"]));
    let r = c.response(false);
    assert_eq!(r.status, 200);
    assert!(r.connection_is("close"));
    let (rest, end) = c.finish(Duration::from_secs(3));
    assert_eq!((rest.len(), end), (0, End::Eof));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let s = Oserver::start(&[]);
    let mut req = request("GET", "/httptest/dir2/page.html", &[]);
    req.extend(request("GET", "/httptest/dir2/", &[]));
    req.extend(request("GET", "/httptest/text..txt", &["Connection: close"]));
    let bytes = raw(s.addr(), &req);
    let rs = parse_responses(&bytes, false);
    let bodies: Vec<String> = rs.iter().map(Response::text).collect();
    assert_eq!(bodies, [PAGE, INDEX, "hello"]);
}

/// Twenty connections, each sending a request and reading its answer five
/// times over, on a worker (`-w 1`) that is then stopped: its log.
fn twenty_connections_five_requests_each() -> String {
    let mut s = Oserver::start(&["-w", "1"]);
    let mut conns: Vec<Client> = (0..20).map(|_| Client::connect(s.addr())).collect();
    let req = request("GET", "/httptest/dir2/page.html", &[]);
    for _ in 0..5 {
        for c in &mut conns {
            c.send(&req);
        }
        for c in &mut conns {
            assert_eq!(c.response(false).text(), PAGE);
        }
    }
    drop(conns);
    s.signal(libc::SIGTERM);
    assert!(s.wait_exit(Duration::from_secs(10)).is_some());
    s.stderr_text()
}

/// The counters of a worker's stop line: writes gathered and the sends
/// that sent them, reads made ahead and the submissions that made them.
fn stop_counts(log: &str) -> [u64; 4] {
    let counts = log.lines().find_map(|l| {
        let (_, rest) = l.split_once(" taken), ")?;
        let (writes, rest) = rest.split_once(" writes gathered into ")?;
        let (sends, rest) = rest.split_once(" sends, ")?;
        let (reads, rest) = rest.split_once(" reads made ahead in ")?;
        let submissions = rest.split_once(" submissions")?.0;
        let n = |t: &str| t.parse::<u64>().ok();
        Some([n(writes)?, n(sends)?, n(reads)?, n(submissions)?])
    });
    counts.unwrap_or_else(|| panic!("no stop line with the counts: {log}"))
}

/// Answers written in one turn of a worker leave together at its end, in
/// one io_uring submission: the worker's stop line counts every answer as
/// gathered, and fewer system calls than answers when connections' requests
/// arrive together.
#[test]
fn answers_of_one_turn_leave_in_one_gathered_send() {
    let log = twenty_connections_five_requests_each();
    let [writes, sends, ..] = stop_counts(&log);
    assert_eq!(writes, 100, "every answer gathered: {log}");
    assert!(sends > 0 && sends < writes, "several answers per send: {log}");
}

/// Requests that wake a worker together are read together, in one
/// io_uring submission, before any is answered. The first request of each
/// connection is read at accept (it is there already: `TCP_DEFER_ACCEPT`);
/// the other 80 after an event, and so are the ends of the 20 streams.
#[test]
fn requests_that_arrive_together_are_read_in_one_submission() {
    let log = twenty_connections_five_requests_each();
    let [.., reads, submissions] = stop_counts(&log);
    assert!(reads >= 80, "every request after the first read ahead: {log}");
    assert!(submissions > 0 && submissions < reads, "several reads per submission: {log}");
}

#[test]
fn a_request_sent_one_byte_at_a_time() {
    let s = Oserver::start(&[]);
    let mut c = Client::connect(s.addr());
    for b in request("GET", "/httptest/dir2/page.html", &["X-Slow: yes"]) {
        c.send(&[b]);
        // A slow client is the point: a pause gives the server the time to
        // read each byte on its own instead of several at once.
        thread::sleep(Duration::from_millis(1));
    }
    let r = c.response(false);
    assert_eq!((r.status, r.text().as_str()), (200, PAGE));
}

#[test]
fn bare_lf_line_endings() {
    let s = Oserver::start(&[]);
    let r = send_one(s.addr(), b"GET /httptest/text..txt HTTP/1.1\nHost: x\nConnection: close\n\n");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
}

#[test]
fn half_requests_then_hang_up_do_not_hurt() {
    let s = Oserver::start(&[]);
    let worker = s.wait_workers(1, Duration::from_secs(5))[0];
    for junk in [&b"\n"[..], b"GET / HTTP/1.1\n", b"GET /httptest/te", b""] {
        let mut c = connect(s.addr());
        c.write_all(junk).expect("send");
        drop(c);
    }
    // The worker has taken each hang-up and closed its side: nothing of
    // them is left queued, open or unclosed (5 s is slack for a loaded
    // machine; it takes microseconds).
    let mut left = (Vec::new(), 0);
    let done = wait_until(Duration::from_secs(5), || {
        left = (connections_to(s.port), held_connections(worker));
        left == (Vec::new(), 0)
    });
    assert!(done, "connections left (in the kernel, held by the worker): {left:?}");
    let r = get(s.addr(), "/httptest/text..txt");
    assert_eq!((r.status, r.text().as_str()), (200, "hello"));
    assert_eq!(s.worker_pids(), [worker], "the worker was replaced");
}

// 8. Large file ------------------------------------------------------------

/// Over 4 GiB so a 32-bit length or offset anywhere breaks it. The file is
/// sparse (only the marker block is written) and the transfer is over
/// loopback: a few seconds.
#[test]
fn file_over_4_gib() {
    const SIZE: u64 = (4 << 30) + 4096;
    const MARKER: &[u8; 16] = b"END-OF-BIG-FILE!";
    let (root, _cleanup) = scratch_dir("big");
    sparse_file(&root.join("big.bin"), SIZE, &[(SIZE - MARKER.len() as u64, MARKER)]);
    let s = Oserver::start_in(&root, &[]);

    let bytes = raw(s.addr(), &request("HEAD", "/big.bin", &["Connection: close"]));
    let (r, used) = parse_one(&bytes, true).expect("HEAD response");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), Some(SIZE));
    assert_eq!(used, bytes.len());

    let mut c = connect(s.addr());
    c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    c.write_all(&request("GET", "/big.bin", &["Connection: close"])).expect("send");
    let mut buf = vec![0u8; 4 << 20];
    let mut got = Vec::new();
    let (head, head_len) = loop {
        let n = c.read(&mut buf).expect("read head");
        assert!(n > 0, "EOF before the head");
        got.extend_from_slice(&buf[..n]);
        if let Some(h) = parse_head(&got) {
            break h;
        }
    };
    assert_eq!(head.status, 200);
    assert_eq!(head.content_length(), Some(SIZE));
    let mut body = (got.len() - head_len) as u64;
    let mut tail = got[head_len..].to_vec();
    let started = Instant::now();
    loop {
        let n = match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => panic!("read after {body} body bytes: {e}"),
        };
        body += n as u64;
        if n >= MARKER.len() {
            tail.clear();
            tail.extend_from_slice(&buf[n - MARKER.len()..n]);
        } else {
            tail.extend_from_slice(&buf[..n]);
        }
        if tail.len() > MARKER.len() {
            tail.drain(..tail.len() - MARKER.len());
        }
    }
    assert_eq!(body, SIZE, "body length (after {:?})", started.elapsed());
    assert_eq!(&tail[..], &MARKER[..], "last bytes of the body");
}

// 9. Processes -------------------------------------------------------------

#[test]
fn two_workers_both_serving() {
    let s = Oserver::start(&["-w", "2"]);
    let workers = s.wait_workers(2, Duration::from_secs(5));
    assert_eq!(distinct(&workers), 2);
    for i in 0..200 {
        let r = get(s.addr(), "/httptest/test.html");
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(r.body.len(), 100, "request {i}");
    }
    assert_eq!(s.worker_pids(), workers, "a worker died or was replaced");
}

fn stops_on(sig: i32) {
    let mut s = Oserver::start(&["-w", "2"]);
    let workers = s.wait_workers(2, Duration::from_secs(5));
    assert_eq!(get(s.addr(), "/httptest/test.html").status, 200);
    let started = Instant::now();
    s.signal(sig);
    let status = s.wait_exit(Duration::from_secs(5));
    assert!(status.is_some(), "master still running 5 s after signal {sig}");
    let left = Duration::from_secs(5).saturating_sub(started.elapsed());
    let gone = wait_until(left, || workers.iter().all(|&w| !pid_alive(w)));
    assert!(gone, "workers {workers:?} outlived the master");
    assert!(group_members(s.pid()).is_empty(), "process group not empty");
}

#[test]
fn sigterm_stops_master_and_workers() {
    stops_on(libc::SIGTERM);
}

#[test]
fn sigint_stops_master_and_workers() {
    stops_on(libc::SIGINT);
}

#[test]
fn bad_arguments_exit_with_one_line_and_no_fork() {
    let repo = repo_root();
    let repo = repo.to_str().expect("utf-8 repo path");
    let file_root = format!("{repo}/Cargo.toml");
    // Held for the whole test so the port stays taken.
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("root missing", vec!["-r", "/nonexistent/oserver-e2e-root", "-p", "0", "-w", "1"]),
        ("root is a file", vec!["-r", &file_root, "-p", "0", "-w", "1"]),
        ("port in use", vec!["-r", repo, "-p", &port, "-w", "1"]),
        ("zero workers", vec!["-r", repo, "-p", "0", "-w", "0"]),
        ("bad host", vec!["-r", repo, "-p", "0", "-w", "1", "-s", "not-a-host"]),
        ("port out of range", vec!["-r", repo, "-p", "99999", "-w", "1"]),
    ];
    for (name, args) in cases {
        let (status, stderr, leftovers) = run_to_exit(&args, Duration::from_secs(5));
        let status = status.unwrap_or_else(|| panic!("{name}: still running after 5 s"));
        assert!(!status.success(), "{name}: exit status {status:?}");
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{name}: stderr {stderr:?}");
        assert!(!stderr.contains("listening on"), "{name}: {stderr:?}");
        assert!(!leftovers, "{name}: a process of its group outlived it");
    }
    drop(taken);
}

// 11. Logs -----------------------------------------------------------------

#[test]
fn startup_line_names_address_root_and_workers() {
    let s = Oserver::start(&[]);
    assert!(s.wait_stderr("workers=", Duration::from_secs(3)), "no workers= in {:?}", s.stderr_text());
    let log = s.stderr_text();
    assert!(log.contains(&format!("listening on http://127.0.0.1:{}/", s.port)), "{log}");
    assert!(log.contains(&repo_root().display().to_string()), "{log}");
    assert!(log.contains("workers=1"), "{log}");
}
