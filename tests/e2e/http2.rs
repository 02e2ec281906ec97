//! HTTP/2 end to end: the real binary, h2c by prior knowledge on the plain
//! port and h2 by ALPN on the HTTPS port, spoken by the raw frame client of
//! `h2wire.rs` (which checks every frame against the frame size and the
//! flow-control windows it announced) and by real clients (curl, nghttp,
//! openssl s_client), which are skipped, saying so, when not installed.
//!
//! The limits each get a test that plays the attack (rapid reset,
//! CONTINUATION flood, HPACK bomb, a SETTINGS/PING flood from a client that
//! never reads, a window that never opens, more than 100 streams) and checks
//! the server cuts it off while another connection to the same worker is
//! still served. The protocol errors each get the error code RFC 9113 names
//! for them; what a client may send (padding, PRIORITY, unknown frame types)
//! is taken; malformed requests are refused on their own stream.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oserver_core::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::certs::Ca;
use crate::h2wire::{
    code, code_name, continuation, data, flag, headers, hpack, kind, ping, rst_stream, setting,
    window_update, Frame, Reply, H2, MAX_FRAME, PREFACE,
};
use crate::support::{have, run};
use crate::support::{
    parse_one, raw, read_to_end, repo_root, scratch_dir, tcp_sockets, tcp_state, wait_until, write_file,
    Cleanup, End, Oserver,
};

/// Longest any single wait for the server's answer.
const WAIT: Duration = Duration::from_secs(5);

fn fixture(name: &str) -> Vec<u8> {
    let p = repo_root().join("httptest").join(name);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A fresh connection to `srv` serves a GET: the worker is still serving.
fn still_serves(srv: &Oserver, when: &str) {
    let mut h2 = H2::start(srv.addr(), &[]);
    let id = h2.request("GET", "/httptest/test.html", &[]);
    let r = h2.try_response(id, WAIT);
    let r = r.unwrap_or_else(|e| panic!("{when}: another connection is not served: {e}{}", h2.trace()));
    assert_eq!(r.status, 200, "{when}");
    assert_eq!(r.body, fixture("test.html"), "{when}");
}

/// The server's end of the connection from client port `client`, if the
/// kernel still tracks it (TIME_WAIT skipped).
fn server_side(server_port: u16, client: u16) -> Option<crate::support::TcpSocket> {
    tcp_sockets()
        .into_iter()
        .find(|t| t.local_port == server_port && t.remote_port == client && t.state != tcp_state::TIME_WAIT)
}

/// Whether the server has closed its end (it left ESTABLISHED, or is gone).
fn server_closed(server_port: u16, client: u16) -> bool {
    server_side(server_port, client).map_or(true, |t| t.state != tcp_state::ESTABLISHED)
}

/// Connection errors: `frames` sent after the handshake get a GOAWAY with
/// `want`, then the connection closes; the worker serves on.
fn connection_error(frames: &[Frame], want: u32, what: &str) {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    // The server may close before reading all of it.
    let _ = h2.try_send(frames);
    let g = h2.expect_goaway(WAIT);
    assert_eq!(
        g.error_code(),
        Some(want),
        "{what}: GOAWAY with {} wanted, got {g:?}{}",
        code_name(want),
        h2.trace()
    );
    let end = h2.drain(WAIT);
    assert!(
        matches!(end, End::Eof | End::Reset),
        "{what}: still open after the GOAWAY ({end:?}){}",
        h2.trace()
    );
    still_serves(&srv, what);
}

/// Headers an HTTP/2 response must not carry (RFC 9113 §8.2.2).
const CONNECTION_SPECIFIC: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"];

fn assert_h2_head(r: &Reply, what: &str) {
    assert_eq!(r.raw_head.first().map(|(n, _)| n.as_str()), Some(":status"), "{what}: {:?}", r.raw_head);
    for (name, _) in &r.raw_head {
        assert!(!name.bytes().any(|b| b.is_ascii_uppercase()), "{what}: uppercase name {name:?}");
        assert!(!CONNECTION_SPECIFIC.contains(&name.as_str()), "{what}: connection-specific {name:?}");
    }
    let pseudo = r.raw_head.iter().filter(|(n, _)| n.starts_with(':')).count();
    assert_eq!(pseudo, 1, "{what}: only :status is a response pseudo-header: {:?}", r.raw_head);
}

// -------------------------------------------------------------- h2c basics

#[test]
fn h2c_prior_knowledge_serves_a_file_with_its_validators() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let r = h2.get("/httptest/test.html");
    let small = fixture("test.html");
    assert_eq!(r.status, 200, "{r:?}");
    assert_h2_head(&r, "GET test.html");
    assert_eq!(r.body, small);
    assert_eq!(r.header("content-length"), Some(small.len().to_string().as_str()));
    assert_eq!(r.header("content-type"), Some("text/html"));
    assert!(r.header("etag").is_some_and(|e| e.starts_with('"') && e.ends_with('"')), "{r:?}");
    assert!(r.header("last-modified").is_some_and(crate::support::is_imf_fixdate), "{r:?}");
    assert!(r.header("date").is_some_and(crate::support::is_imf_fixdate), "{r:?}");
    // The connection stays open for more streams; a 404 is an answer too.
    let r = h2.get("/httptest/no/such/file");
    assert_eq!(r.status, 404, "{r:?}");
    assert_h2_head(&r, "404");
    assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()), "{r:?}");
    let r = h2.get("/httptest/space%20in%20name.txt");
    assert_eq!(r.body, fixture("space in name.txt"));
    assert!(h2.goaways.is_empty(), "{}", h2.trace());
}

#[test]
fn server_settings_are_announced_and_ours_acknowledged() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[(setting::ENABLE_PUSH, 0)]);
    let trace = h2.trace();
    assert_eq!(h2.server_setting(setting::MAX_CONCURRENT_STREAMS), Some(100), "{trace}");
    assert_eq!(h2.server_setting(setting::MAX_HEADER_LIST_SIZE), Some(16384), "{trace}");
    // Defaults may be left out.
    assert!(matches!(h2.server_setting(setting::MAX_FRAME_SIZE), None | Some(16384)), "{trace}");
    assert!(matches!(h2.server_setting(setting::INITIAL_WINDOW_SIZE), None | Some(65535)), "{trace}");
    // A server may only turn push off (RFC 9113 §6.5.2).
    assert!(matches!(h2.server_setting(setting::ENABLE_PUSH), None | Some(0)), "{trace}");
    let acked = h2.wait_for(WAIT, |f| f.kind == kind::SETTINGS && f.has(flag::ACK));
    assert!(acked.is_ok() || h2.settings_acks > 0, "our SETTINGS were not acknowledged{}", h2.trace());

    let srv = Oserver::start(&["--max-header-bytes", "4096"]);
    let h2 = H2::start(srv.addr(), &[]);
    assert_eq!(h2.server_setting(setting::MAX_HEADER_LIST_SIZE), Some(4096), "{}", h2.trace());
}

#[test]
fn large_file_arrives_whole_in_frames_within_the_limits() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    // The client checks each frame's size and window as it arrives; it
    // opens the windows again as it reads.
    let id = h2.request("GET", "/httptest/large.html", &[]);
    let r = h2.try_response(id, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}{}", h2.trace()));
    let large = fixture("large.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some(large.len().to_string().as_str()));
    assert_eq!(r.body.len(), large.len());
    assert!(r.body == large, "large.html differs over HTTP/2");
    // Fifteen windows' worth: the server waited for the WINDOW_UPDATEs
    // (the client fails the test on any DATA beyond a window).
    assert!(r.data_frames.iter().all(|&n| n <= MAX_FRAME), "{:?}", r.data_frames);
}

#[test]
fn streams_are_multiplexed_on_one_connection() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let files = ["test.html", "style.css", "script.js", "image.png", "large.html"];
    let mut frames = Vec::new();
    let mut ids = Vec::new();
    for (i, name) in files.iter().enumerate() {
        let id = 1 + 2 * i as u32;
        frames.push(headers(id, hpack::request("GET", "http", &format!("/httptest/{name}"), &[]), true));
        ids.push(id);
    }
    // Every request in one write: the server has all five open at once.
    h2.try_send(&frames).expect("send");
    for (id, name) in ids.iter().zip(files) {
        let r = h2
            .try_response(*id, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("{name}: {e}{}", h2.trace()));
        assert_eq!(r.status, 200, "{name}");
        assert!(r.body == fixture(name), "{name} differs");
    }
}

#[test]
fn head_has_the_headers_and_no_body() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let id = h2.request("HEAD", "/httptest/large.html", &[]);
    let r = h2.response(id);
    assert_eq!(r.status, 200, "{r:?}");
    assert_h2_head(&r, "HEAD");
    assert_eq!(r.header("content-length"), Some("1000000"));
    assert!(r.body.is_empty(), "HEAD sent {} body bytes", r.body.len());
    // END_STREAM on the HEADERS, or one empty DATA with it.
    assert!(r.data_frames.iter().all(|&n| n == 0) && r.data_frames.len() <= 1, "{:?}", r.data_frames);
}

#[test]
fn conditional_and_range_requests() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let large = fixture("large.html");
    let first = h2.get("/httptest/large.html");
    let etag = first.header("etag").expect("etag").to_string();
    let last_modified = first.header("last-modified").expect("last-modified").to_string();

    let id = h2.request("GET", "/httptest/large.html", &[("if-none-match", &etag)]);
    let r = h2.response(id);
    assert_eq!(r.status, 304, "{r:?}");
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert!(r.body.is_empty(), "a 304 has no body");
    let id = h2.request("GET", "/httptest/large.html", &[("if-modified-since", &last_modified)]);
    assert_eq!(h2.response(id).status, 304);
    let id = h2.request("GET", "/httptest/large.html", &[("if-none-match", "\"other\"")]);
    assert_eq!(h2.response(id).status, 200);

    let id = h2.request("GET", "/httptest/large.html", &[("range", "bytes=100000-100099")]);
    let r = h2.response(id);
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.header("content-range"), Some(format!("bytes 100000-100099/{}", large.len()).as_str()));
    assert_eq!(r.header("content-length"), Some("100"));
    assert_eq!(r.body, &large[100_000..100_100]);
    let id = h2.request("GET", "/httptest/large.html", &[("range", "bytes=-70000")]);
    let r = h2.try_response(id, Duration::from_secs(10)).unwrap_or_else(|e| panic!("{e}{}", h2.trace()));
    assert_eq!(r.status, 206);
    assert!(r.body == large[large.len() - 70_000..], "suffix range differs");
    let id = h2.request("GET", "/httptest/large.html", &[("range", "bytes=2000000-")]);
    let r = h2.response(id);
    assert_eq!(r.status, 416, "{r:?}");
    assert_eq!(r.header("content-range"), Some(format!("bytes */{}", large.len()).as_str()));
}

#[test]
fn precompressed_variant_follows_accept_encoding() {
    let (root, _clean) = scratch_dir("h2-precomp");
    let plain = fixture("script.js");
    write_file(&root.join("a.js"), &plain);
    write_file(&root.join("a.js.gz"), b"pretend gzip bytes of a.js");
    write_file(&root.join("a.js.br"), b"pretend brotli");
    let srv = Oserver::start_in(&root, &["--precompressed"]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let cases: &[(Option<&str>, Option<&str>, &[u8])] = &[
        (Some("gzip, br"), Some("br"), b"pretend brotli"),
        (Some("gzip"), Some("gzip"), b"pretend gzip bytes of a.js"),
        (None, None, &plain),
    ];
    for &(accept, encoding, body) in cases {
        let extra: Vec<(&str, &str)> = accept.map(|a| ("accept-encoding", a)).into_iter().collect();
        let id = h2.request("GET", "/a.js", &extra);
        let r = h2.response(id);
        assert_eq!(r.status, 200, "{accept:?}: {r:?}");
        assert_eq!(r.header("content-encoding"), encoding, "{accept:?}");
        assert_eq!(r.body, body, "{accept:?}");
        assert_eq!(r.header("content-length"), Some(body.len().to_string().as_str()), "{accept:?}");
        assert_eq!(r.header("content-type"), Some("application/javascript"), "{accept:?}");
        assert!(
            r.header("vary").is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
            "{r:?}"
        );
    }
}

#[test]
fn autoindex_lists_a_directory() {
    let srv = Oserver::start(&["--autoindex"]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let r = h2.get("/httptest/noindex/");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{r:?}");
    let page = r.text();
    for name in ["a.txt", "b.txt", "sub/"] {
        assert!(page.contains(&format!("href=\"{name}\"")), "{name} not listed:\n{page}");
    }
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    assert_eq!(h2.get("/httptest/noindex/").status, 403, "without --autoindex");
}

#[test]
fn post_to_a_static_file_is_405_and_the_connection_goes_on() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let id = h2.request("POST", "/httptest/test.html", &[]);
    let r = h2.response(id);
    assert_eq!(r.status, 405, "{r:?}");
    assert!(r.header("allow").is_some_and(|a| a.contains("GET")), "{r:?}");
    // With a body in DATA frames.
    let id = h2.next_stream_id();
    let block = hpack::request("POST", "http", "/httptest/test.html", &[("content-length", "11")]);
    h2.send(&headers(id, block, false));
    h2.send(&data(id, b"hello", false));
    h2.send(&data(id, b" world", true));
    assert_eq!(h2.response(id).status, 405);
    assert_eq!(h2.get("/httptest/test.html").status, 200);
}

/// Request bodies are flow-controlled: the server gives the window back as
/// it takes the bytes in, so uploads far over 65535 bytes go through on one
/// connection. A body still coming 1 MiB after its answer went out is cut
/// off with RST_STREAM NO_ERROR, and the connection goes on.
#[test]
fn request_bodies_are_flow_controlled_and_given_back() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let body = vec![b'u'; 300_000];
    for _ in 0..2 {
        let id = h2.next_stream_id();
        let block = hpack::request("POST", "http", "/httptest/test.html", &[("content-length", "300000")]);
        h2.send(&headers(id, block, false));
        h2.send_body(id, &body, true, WAIT).unwrap_or_else(|e| panic!("stream {id}: {e}{}", h2.trace()));
        assert_eq!(h2.response(id).status, 405);
    }
    // Far more than the answer waits for.
    let id = h2.next_stream_id();
    let block = hpack::request("POST", "http", "/httptest/test.html", &[("content-length", "4000000")]);
    h2.send(&headers(id, block, false));
    let sent = h2.send_body(id, &vec![b'x'; 4_000_000], true, WAIT);
    let e = sent.expect_err("4 MB sent after the answer");
    assert!(e.starts_with("reset with NO_ERROR"), "stream {id}: {e}{}", h2.trace());
    assert_eq!(h2.reply(id).map(|r| r.status), Ok(405), "{}", h2.trace());
    assert!(h2.goaways.is_empty(), "{}", h2.trace());
    assert_eq!(h2.get("/httptest/test.html").status, 200);
}

/// `"GET /path HTTP/2.0" STATUS BYTES` in the access log.
#[test]
fn access_log_says_http2() {
    let (logs, _clean) = scratch_dir("h2-log");
    let log = logs.join("access.log");
    let mut srv = Oserver::start(&["--access-log", log.to_str().unwrap()]);
    let mut h2 = H2::start(srv.addr(), &[]);
    assert_eq!(h2.get("/httptest/test.html").status, 200);
    let id =
        h2.request("GET", "/httptest/nothing.here", &[("user-agent", "h2wire/1"), ("referer", "http://r/")]);
    assert_eq!(h2.response(id).status, 404);
    // A malformed request (an uppercase field name) is reset, and logged
    // as HTTP/1 logs a request it refuses: 400.
    h2.request("GET", "/httptest/bad.case", &[("X-Upper", "1")]);
    assert_eq!(h2.get("/httptest/test.html").status, 200);
    drop(h2);
    // A graceful stop flushes the buffered lines.
    srv.signal(libc::SIGTERM);
    let status = srv.wait_exit(Duration::from_secs(15)).expect("master still running after SIGTERM");
    assert!(status.success(), "{status}");
    let text = fs::read_to_string(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    let len = fixture("test.html").len();
    assert!(lines[0].contains(&format!("\"GET /httptest/test.html HTTP/2.0\" 200 {len} ")), "{}", lines[0]);
    assert!(lines[1].contains("\"GET /httptest/nothing.here HTTP/2.0\" 404 "), "{}", lines[1]);
    assert!(lines[1].ends_with("\"http://r/\" \"h2wire/1\""), "{}", lines[1]);
    assert!(lines[2].contains("\"GET /httptest/bad.case HTTP/2.0\" 400 0 "), "{}", lines[2]);
}

/// Status, headers (but Date and the connection's own) and body are those
/// of HTTP/1.1 for each kind of answer.
#[test]
fn the_same_answers_as_over_http1() {
    let srv = Oserver::start(&["--max-age", "60"]);
    let etag = crate::support::get(srv.addr(), "/httptest/large.html").header("etag").unwrap().to_string();
    let inm = format!("If-None-Match: {etag}");
    let cases: &[(&str, &str, &[&str])] = &[
        ("GET", "/httptest/test.html", &[]),
        ("GET", "/httptest/image.png", &[]),
        ("GET", "/httptest/no/such", &[]),
        ("GET", "/httptest/noindex/", &[]),
        ("GET", "/httptest/dir2/", &[]),
        ("GET", "/httptest/dir2", &[]),
        ("GET", "/httptest/dotted/.hidden.txt", &[]),
        ("GET", "/httptest/../Cargo.toml", &[]),
        ("GET", "/httptest/%2e%2e/%2e%2e/etc/passwd", &[]),
        ("GET", "/httptest/large.html", &["Range: bytes=100-199"]),
        ("GET", "/httptest/large.html", &["Range: bytes=5-1,9-3"]),
        ("GET", "/httptest/large.html", &[&inm]),
        ("HEAD", "/httptest/style.css", &[]),
        ("POST", "/httptest/style.css", &[]),
        ("DELETE", "/httptest/style.css", &[]),
    ];
    let skip = |n: &str| n == "date" || CONNECTION_SPECIFIC.contains(&n);
    let mut h2 = H2::start(srv.addr(), &[]);
    for (method, path, extra) in cases {
        let what = format!("{method} {path} {extra:?}");
        let mut lines = vec!["Connection: close"];
        lines.extend_from_slice(extra);
        let head_only = *method == "HEAD" || extra.iter().any(|e| e.starts_with("If-None-Match"));
        let bytes = raw(srv.addr(), &crate::support::request(method, path, &lines));
        let one = parse_one(&bytes, head_only).unwrap_or_else(|| panic!("{what}: no HTTP/1.1 answer")).0;
        let pairs: Vec<(String, String)> = extra
            .iter()
            .map(|e| e.split_once(": ").unwrap())
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect();
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let id = h2.request(method, path, &refs);
        let two = h2.response(id);
        assert_h2_head(&two, &what);
        assert_eq!(two.status, one.status, "{what}");
        let mut want: Vec<(String, String)> = one
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
            .filter(|(n, _)| !skip(n))
            .collect();
        let mut got: Vec<(String, String)> = two.headers.iter().filter(|(n, _)| !skip(n)).cloned().collect();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{what}");
        assert!(two.body == one.body, "{what}: bodies differ");
    }
}

// ------------------------------------------------------------ flow control

#[test]
fn a_small_stream_window_bounds_the_data_sent() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[(setting::INITIAL_WINDOW_SIZE, 1000)]);
    h2.auto_window = false;
    let id = h2.request("GET", "/httptest/large.html", &[]);
    // The client fails the test on any DATA beyond the window.
    h2.wait_data(id, 1000);
    assert_eq!(h2.reply(id).unwrap().status, 200);
    // Nothing more comes while the window is shut.
    assert_eq!(h2.drain(Duration::from_millis(500)), End::Timeout, "{}", h2.trace());
    assert_eq!(h2.streams[&id].data.len(), 1000);
    h2.send(&window_update(id, 5000));
    h2.wait_data(id, 6000);
    assert_eq!(h2.drain(Duration::from_millis(500)), End::Timeout, "{}", h2.trace());
    assert_eq!(h2.streams[&id].data.len(), 6000);
    assert!(h2.streams[&id].data == fixture("large.html")[..6000], "the first 6000 bytes differ");
}

#[test]
fn the_connection_window_bounds_the_data_sent() {
    let srv = Oserver::start(&[]);
    // Streams may take 1 MiB, the connection only its first 65535 bytes.
    let mut h2 = H2::start(srv.addr(), &[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]);
    h2.auto_window = false;
    let a = h2.request("GET", "/httptest/large.html", &[]);
    let b = h2.request("GET", "/httptest/large.html", &[]);
    let total = |h2: &H2| h2.streams[&a].data.len() + h2.streams[&b].data.len();
    let until = |h2: &mut H2, n: usize| {
        let deadline = Instant::now() + WAIT;
        while total(h2) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(end) = h2.next_frame(left) {
                panic!("{} of {n} bytes ({end:?}){}", total(h2), h2.trace());
            }
        }
    };
    until(&mut h2, 65_535);
    assert_eq!(h2.drain(Duration::from_millis(500)), End::Timeout, "{}", h2.trace());
    assert_eq!(total(&h2), 65_535);
    h2.send(&window_update(0, 100_000));
    until(&mut h2, 165_535);
    assert_eq!(h2.drain(Duration::from_millis(500)), End::Timeout, "{}", h2.trace());
    assert_eq!(total(&h2), 165_535);
    // Open it for the rest: both complete.
    h2.send(&window_update(0, 2_000_000));
    let large = fixture("large.html");
    for id in [a, b] {
        let r = h2.try_response(id, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}{}", h2.trace()));
        assert!(r.body == large, "stream {id} differs");
    }
}

/// SETTINGS_INITIAL_WINDOW_SIZE sent later changes the window of the
/// streams already open (RFC 9113 §6.9.2).
#[test]
fn a_new_initial_window_size_applies_to_open_streams() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[(setting::INITIAL_WINDOW_SIZE, 0)]);
    h2.auto_window = false;
    let id = h2.request("GET", "/httptest/large.html", &[]);
    let r = h2.try_response(id, Duration::from_millis(500));
    assert!(r.is_err(), "a response with a window of 0: {r:?}");
    assert_eq!(h2.streams[&id].data.len(), 0);
    h2.send(&crate::h2wire::settings(&[(setting::INITIAL_WINDOW_SIZE, 3000)]));
    h2.wait_data(id, 3000);
    assert_eq!(h2.drain(Duration::from_millis(500)), End::Timeout, "{}", h2.trace());
    assert_eq!(h2.streams[&id].data.len(), 3000);
    assert!(h2.settings_acks >= 2, "the new SETTINGS were not acknowledged{}", h2.trace());
}

/// A client that raises SETTINGS_MAX_FRAME_SIZE may get bigger DATA
/// frames, never bigger than it said.
#[test]
fn a_larger_max_frame_size_is_respected() {
    let srv = Oserver::start(&[]);
    let mut h2 =
        H2::start(srv.addr(), &[(setting::MAX_FRAME_SIZE, 20_000), (setting::INITIAL_WINDOW_SIZE, 1 << 20)]);
    h2.send(&window_update(0, 1 << 20));
    let id = h2.request("GET", "/httptest/large.html", &[]);
    let r = h2.try_response(id, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}{}", h2.trace()));
    assert!(r.body == fixture("large.html"), "large.html differs");
    assert!(r.data_frames.iter().all(|&n| n <= 20_000), "{:?}", r.data_frames);
}

// ---------------------------------------------------------- limits, attacks

/// 110 streams for the 1 MB page with a window of 16 bytes each stay open;
/// the server allows 100 and refuses the rest, and takes a new one once one
/// has closed.
#[test]
fn streams_beyond_100_are_refused() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[(setting::INITIAL_WINDOW_SIZE, 16)]);
    h2.auto_window = false;
    let ids: Vec<u32> = (0..110).map(|i| 1 + 2 * i).collect();
    let frames: Vec<Frame> = ids
        .iter()
        .map(|&id| headers(id, hpack::request("GET", "http", "/httptest/large.html", &[]), true))
        .collect();
    h2.try_send(&frames).expect("send");
    let settled = |h2: &H2| {
        ids.iter().all(|id| h2.streams.get(id).is_some_and(|s| s.reset.is_some() || !s.blocks.is_empty()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !settled(&h2) {
        let left = deadline.saturating_duration_since(Instant::now());
        if let Err(end) = h2.next_frame(left) {
            panic!("not every stream answered or reset ({end:?}){}", h2.trace());
        }
    }
    let answered: Vec<u32> = ids.iter().copied().filter(|id| !h2.streams[id].blocks.is_empty()).collect();
    let refused: Vec<u32> =
        ids.iter().copied().filter(|id| h2.streams[id].reset == Some(code::REFUSED_STREAM)).collect();
    assert_eq!(answered, ids[..100], "the first 100 are served{}", h2.trace());
    assert_eq!(refused, ids[100..], "the rest get REFUSED_STREAM{}", h2.trace());
    assert!(h2.goaways.is_empty(), "{}", h2.trace());
    // One closes; a new stream is taken (and its window opened as it
    // reads, so it completes).
    h2.send(&rst_stream(ids[0], code::CANCEL));
    h2.auto_window = true;
    let id = h2.next_stream_id();
    h2.send(&headers(id, hpack::request("GET", "http", "/httptest/test.html", &[]), true));
    let r = h2.response(id);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, fixture("test.html"));
}

/// CVE-2023-44487: streams opened and cancelled at once, 1000 times.
#[test]
fn rapid_reset_gets_enhance_your_calm() {
    let srv = Oserver::start(&[]);
    let mut bystander = H2::start(srv.addr(), &[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let block = hpack::request("GET", "http", "/httptest/test.html", &[]);
    let mut sent = 0;
    'flood: for batch in 0..50u32 {
        let mut frames = Vec::new();
        for i in 0..20 {
            let id = 1 + 2 * (batch * 20 + i);
            frames.push(headers(id, block.clone(), true));
            frames.push(rst_stream(id, code::CANCEL));
        }
        if h2.try_send(&frames).is_err() {
            break;
        }
        sent += 20;
        // Take in what came back, stopping at a GOAWAY.
        while let Ok(f) = h2.next_frame(Duration::from_millis(1)) {
            if f.kind == kind::GOAWAY {
                break 'flood;
            }
        }
        if h2.end.is_some() {
            break;
        }
    }
    let g = h2.expect_goaway(WAIT);
    assert!(
        g.is_goaway(code::ENHANCE_YOUR_CALM),
        "GOAWAY ENHANCE_YOUR_CALM wanted after {sent} resets, got {g:?}{}",
        h2.trace()
    );
    let end = h2.drain(WAIT);
    assert!(matches!(end, End::Eof | End::Reset), "still open after the GOAWAY ({end:?}){}", h2.trace());
    // The connection opened before the flood is served as usual.
    let r = bystander.get("/httptest/test.html");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, fixture("test.html"));
    still_serves(&srv, "after a rapid reset");
}

/// A client that cancels many downloads, but fewer than half the streams
/// it opens (a browser leaving pages), is served on: past 100 resets is
/// not enough to be taken for a rapid-reset attack.
#[test]
fn a_client_that_cancels_some_streams_is_served_on() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let small = hpack::request("GET", "http", "/httptest/test.html", &[]);
    let large = hpack::request("GET", "http", "/httptest/large.html", &[]);
    let mut resets = 0;
    for round in 0..15 {
        let mut frames = Vec::new();
        let mut wanted = Vec::new();
        let mut id = h2.next_stream_id();
        for _ in 0..10 {
            frames.push(headers(id, small.clone(), true));
            wanted.push(id);
            id += 2;
        }
        // 8 of every 18 streams: 120 resets in all, 44% of the streams.
        for _ in 0..8 {
            frames.push(headers(id, large.clone(), true));
            frames.push(rst_stream(id, code::CANCEL));
            resets += 1;
            id += 2;
        }
        h2.try_send(&frames).expect("send");
        for id in wanted {
            let r = h2
                .try_response(id, WAIT)
                .unwrap_or_else(|e| panic!("round {round}, stream {id}: {e}{}", h2.trace()));
            assert_eq!(r.status, 200);
        }
    }
    assert!(resets > 100, "{resets}");
    assert!(h2.goaways.is_empty(), "{resets} resets of {} streams{}", h2.next_stream_id() / 2, h2.trace());
    assert_eq!(h2.get("/httptest/style.css").status, 200);
}

/// HEADERS without END_HEADERS, then CONTINUATION frames without end. The
/// client sends one 16 KiB frame at a time and waits until the server has
/// read it, so what it counts is what the server took in.
#[test]
fn continuation_flood_is_cut_off() {
    const LIMIT: usize = 1 << 20;
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let client = h2.local_port();
    h2.send(&Frame::new(
        kind::HEADERS,
        flag::END_STREAM,
        1,
        hpack::request("GET", "http", "/httptest/test.html", &[]),
    ));
    let one = hpack::literal("x-flood", &[b'f'; 100]);
    let piece: Vec<u8> = one.iter().copied().cycle().take(one.len() * (MAX_FRAME / one.len())).collect();
    let mut sent = 0;
    while sent < LIMIT {
        if h2.try_send(&[continuation(1, piece.clone(), false)]).is_err() {
            break;
        }
        sent += piece.len();
        // Until the server has read it (or closed, or stopped reading).
        wait_until(Duration::from_secs(2), || {
            server_side(srv.port, client).map_or(true, |t| t.rx_queue == 0)
        });
        if h2.next_frame(Duration::from_millis(1)).is_ok_and(|f| f.kind == kind::GOAWAY) || h2.end.is_some() {
            break;
        }
        if server_side(srv.port, client).is_some_and(|t| t.rx_queue > 0) {
            // Not read for 2 s: the server stopped reading; it must close.
            break;
        }
    }
    let g = h2.expect_goaway(WAIT);
    let end = h2.drain(WAIT);
    assert!(matches!(end, End::Eof | End::Reset), "still open after the GOAWAY ({end:?}){}", h2.trace());
    assert!(sent < LIMIT, "the server read {sent} bytes of one header block ({g:?}){}", h2.trace());
    assert!(h2.streams.get(&1).map_or(true, |s| s.blocks.is_empty()), "stream 1 was answered{}", h2.trace());
    still_serves(&srv, "after a CONTINUATION flood");
}

/// The most memory the process has held (VmHWM), in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or_else(|| panic!("{status}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line}"))
}

/// Clients that allow frames of up to 16 MiB, open every window and read
/// nothing: the worker still frames their answers in batches, so each holds
/// at most one batch of it, not the whole file in one frame (as it did: a
/// small answer "fit in one frame" up to the client's frame size).
#[test]
fn clients_allowing_huge_frames_that_read_nothing_do_not_hold_whole_files_in_the_worker() {
    const CLIENTS: u64 = 4;
    const SIZE: u64 = 12 << 20;
    let (root, _cleanup) = scratch_dir("hugeframes");
    // Larger than what the kernel's socket buffers take off the worker.
    fs::File::create(root.join("big.bin")).unwrap().set_len(SIZE).unwrap();
    let srv = Oserver::start_in(&root, &[]);
    let worker = srv.wait_workers(1, WAIT)[0];
    let mut warm = H2::start(srv.addr(), &[]);
    assert_eq!(warm.get("/missing").status, 404);
    let before = peak_kib(worker);
    let max = (1u32 << 31) - 1;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let mut c = H2::start(
            srv.addr(),
            &[(setting::MAX_FRAME_SIZE, (1 << 24) - 1), (setting::INITIAL_WINDOW_SIZE, max)],
        );
        c.auto_window = false;
        c.send(&window_update(0, max - 65_535));
        let id = c.request("GET", "/big.bin", &[]);
        clients.push((c, id));
    }
    // Served in order: once a new connection is answered, so are they.
    let mut last = H2::start(srv.addr(), &[]);
    assert_eq!(last.get("/missing").status, 404);
    let grown = peak_kib(worker).saturating_sub(before);
    assert!(
        grown < SIZE / 1024,
        "the worker's peak memory grew {grown} KiB with {CLIENTS} unread downloads of {} KiB",
        SIZE / 1024
    );
    // And the downloads are under way: one of them reads on.
    let (c, id) = &mut clients[0];
    c.wait_data(*id, 4 << 20);
}

/// One ~4000-byte field put in the dynamic table, then referenced 12000
/// times in the same block: 16 KB on the wire, 48 MB decoded. The server
/// answers without holding the decoded list (its peak memory stays far
/// below it) and the connection lives on.
#[test]
fn hpack_bomb_gets_431_and_the_connection_lives() {
    const REFS: usize = 12_000;
    let srv = Oserver::start(&[]);
    let worker = srv.wait_workers(1, WAIT)[0];
    let mut h2 = H2::start(srv.addr(), &[]);
    assert_eq!(h2.get("/httptest/test.html").status, 200);
    let before = peak_kib(worker);
    let mut block = hpack::request("GET", "http", "/httptest/test.html", &[]);
    block.extend(hpack::literal_indexed("x-bomb", &[b'b'; 4000]));
    for _ in 0..REFS {
        block.extend(hpack::indexed(62));
    }
    assert!(block.len() <= MAX_FRAME);
    let id = h2.next_stream_id();
    h2.send(&headers(id, block, true));
    match h2.try_response(id, WAIT) {
        Ok(r) => assert_eq!(r.status, 431, "{r:?}"),
        Err(e) => assert!(h2.streams[&id].reset.is_some(), "stream {id}: {e}{}", h2.trace()),
    }
    let grown = peak_kib(worker).saturating_sub(before);
    assert!(
        grown < 16 << 10,
        "the worker's peak memory grew by {grown} KiB for a {} MB header list",
        REFS * 4 / 1000
    );
    assert!(h2.goaways.is_empty(), "the connection is kept{}", h2.trace());
    let r = h2.get("/httptest/test.html");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, fixture("test.html"));
    // The server's table kept the field: one reference to it is a request
    // of a fair size.
    let id = h2.next_stream_id();
    let mut block = hpack::request("GET", "http", "/httptest/style.css", &[]);
    block.extend(hpack::indexed(62));
    h2.send(&headers(id, block, true));
    let r = h2.response(id);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, fixture("style.css"));
    still_serves(&srv, "after an HPACK bomb");
}

/// PINGs and SETTINGS, each asking for an answer, from a client that never
/// reads: the answers back up, the server stops reading and drops the
/// connection once the send timeout has passed.
#[test]
fn settings_and_ping_flood_from_a_client_that_never_reads_is_dropped() {
    const CAP: usize = 256 << 20;
    let srv = Oserver::start(&["--send-timeout", "2"]);
    let h2 = H2::start(srv.addr(), &[]);
    let client = h2.local_port();
    let mut chunk = Vec::new();
    for i in 0..1000u64 {
        chunk.extend(ping(i.to_be_bytes()).bytes());
        chunk.extend(crate::h2wire::settings(&[]).bytes());
    }
    let sock: &TcpStream = h2.tcp();
    sock.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut sock = sock.try_clone().expect("clone");
    let mut sent = 0;
    let stalled = loop {
        if sent >= CAP {
            break false;
        }
        match std::io::Write::write_all(&mut sock, &chunk) {
            Ok(()) => sent += chunk.len(),
            // A write blocked for 1 s (the server stopped reading), or the
            // server closed.
            Err(_) => break true,
        }
    };
    assert!(stalled, "the server read {sent} bytes of PING and SETTINGS while its answers went unread");
    still_serves(&srv, "during the flood");
    let closed = wait_until(Duration::from_secs(10), || server_closed(srv.port, client));
    assert!(closed, "the server kept the flooding connection 10 s with a 2 s send timeout");
    still_serves(&srv, "after the flood");
}

/// A peer that announces a window of 0 and never opens it is dropped after
/// the send timeout, like an HTTP/1 client that never reads.
#[test]
fn a_window_that_never_opens_is_dropped_after_the_send_timeout() {
    let srv = Oserver::start(&["--send-timeout", "2"]);
    let mut h2 = H2::start(srv.addr(), &[(setting::INITIAL_WINDOW_SIZE, 0)]);
    h2.auto_window = false;
    let id = h2.request("GET", "/httptest/large.html", &[]);
    let started = Instant::now();
    still_serves(&srv, "while the window is shut");
    let end = h2.drain(Duration::from_secs(10));
    assert!(
        matches!(end, End::Eof | End::Reset),
        "still open {:?} after the request, with a 2 s send timeout ({end:?}){}",
        started.elapsed(),
        h2.trace()
    );
    assert!(h2.streams[&id].data.is_empty(), "{}", h2.trace());
    still_serves(&srv, "after the drop");
}

/// A header list over `--max-header-bytes`, sent as HEADERS and
/// CONTINUATION, gets 431 (or a reset) on its stream; one under it, split
/// the same way, is served.
#[test]
fn header_blocks_across_continuation_and_the_header_list_limit() {
    let srv = Oserver::start(&["--max-header-bytes", "4096"]);
    let mut h2 = H2::start(srv.addr(), &[]);
    assert_eq!(h2.server_setting(setting::MAX_HEADER_LIST_SIZE), Some(4096));
    let split = |h2: &mut H2, id: u32, block: Vec<u8>| {
        let pieces: Vec<Vec<u8>> = block.chunks(1000).map(<[u8]>::to_vec).collect();
        let last = pieces.len() - 1;
        let mut frames = vec![Frame::new(kind::HEADERS, flag::END_STREAM, id, pieces[0].clone())];
        for (i, p) in pieces.into_iter().enumerate().skip(1) {
            frames.push(continuation(id, p, i == last));
        }
        h2.try_send(&frames).expect("send");
    };
    let mut fair = hpack::request("GET", "http", "/httptest/test.html", &[]);
    fair.extend(hpack::literal("x-fair", &[b'f'; 2500]));
    split(&mut h2, 1, fair);
    let r = h2.response(1);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, fixture("test.html"));

    let mut big = hpack::request("GET", "http", "/httptest/test.html", &[]);
    big.extend(hpack::literal("x-big", &[b'b'; 5000]));
    split(&mut h2, 3, big);
    match h2.try_response(3, WAIT) {
        Ok(r) => assert_eq!(r.status, 431, "{r:?}"),
        Err(e) => assert!(h2.streams[&3].reset.is_some(), "stream 3: {e}{}", h2.trace()),
    }
    assert!(h2.goaways.is_empty(), "{}", h2.trace());
    assert_eq!(h2.get("/httptest/style.css").status, 200);
}

/// Requests RFC 9113 §8.2 and §8.3 call malformed are refused on their
/// stream (RST_STREAM PROTOCOL_ERROR, or a 400), and the connection goes on.
#[test]
fn malformed_requests_are_refused_on_their_stream() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let with = |extra: &[(&str, &str)]| hpack::request("GET", "http", "/httptest/test.html", extra);
    let mut no_path = vec![0x82, 0x86];
    no_path.extend(hpack::literal_name(1, b"localhost"));
    let mut no_method = vec![0x86, 0x84];
    no_method.extend(hpack::literal_name(1, b"localhost"));
    let mut pseudo_after = vec![0x82, 0x86];
    pseudo_after.extend(hpack::literal("x-a", b"1"));
    pseudo_after.push(0x84);
    let mut twice = with(&[]);
    twice.push(0x84);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("an uppercase name", with(&[("X-Upper", "1")])),
        ("connection: keep-alive", with(&[("connection", "keep-alive")])),
        ("transfer-encoding", with(&[("transfer-encoding", "chunked")])),
        ("te: gzip", with(&[("te", "gzip")])),
        ("an unknown pseudo-header", with(&[(":protocol-x", "1")])),
        ("no :path", no_path),
        ("no :method", no_method),
        ("a pseudo-header after a field", pseudo_after),
        (":path twice", twice),
    ];
    for (what, block) in cases {
        let id = h2.next_stream_id();
        h2.send(&headers(id, block, true));
        match h2.try_response(id, WAIT) {
            Ok(r) => assert_eq!(r.status, 400, "{what}: {r:?}"),
            Err(e) => {
                assert_eq!(h2.streams[&id].reset, Some(code::PROTOCOL_ERROR), "{what}: {e}{}", h2.trace())
            }
        }
    }
    assert!(h2.goaways.is_empty(), "{}", h2.trace());
    // te: trailers is the one allowed value.
    let id = h2.request("GET", "/httptest/test.html", &[("te", "trailers")]);
    assert_eq!(h2.response(id).status, 200);
}

/// What a client may send and the server must take: padding, priority
/// information, PRIORITY frames, frames of an unknown type.
#[test]
fn padding_priority_and_unknown_frames_are_accepted() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    // PRIORITY on a stream not open yet, and an unknown type on stream 0.
    h2.send(&Frame::new(kind::PRIORITY, 0, 1, [0, 0, 0, 0, 15]));
    h2.send(&Frame::new(0xfa, 0x5, 0, b"ignore me".to_vec()));
    // HEADERS padded, with priority fields.
    let mut payload = vec![7];
    payload.extend([0x80, 0, 0, 0, 31]);
    payload.extend(hpack::request("GET", "http", "/httptest/test.html", &[]));
    payload.extend([0; 7]);
    h2.send(&Frame::new(
        kind::HEADERS,
        flag::END_STREAM | flag::END_HEADERS | flag::PADDED | flag::PRIORITY,
        1,
        payload,
    ));
    let r = h2.response(1);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, fixture("test.html"));
    // A padded DATA frame as a request body.
    let block = hpack::request("POST", "http", "/httptest/test.html", &[("content-length", "4")]);
    h2.send(&headers(3, block, false));
    h2.send(&Frame::new(
        kind::DATA,
        flag::END_STREAM | flag::PADDED,
        3,
        [3, b'b', b'o', b'd', b'y', 0, 0, 0],
    ));
    assert_eq!(h2.response(3).status, 405);
    assert!(h2.goaways.is_empty(), "{}", h2.trace());
    assert_eq!(h2.get("/httptest/style.css").status, 200);
}

// --------------------------------------------------------- protocol errors

#[test]
fn data_on_stream_0_is_a_protocol_error() {
    connection_error(&[data(0, b"hello", false)], code::PROTOCOL_ERROR, "DATA on stream 0");
}

#[test]
fn headers_on_stream_0_is_a_protocol_error() {
    let block = hpack::request("GET", "http", "/httptest/test.html", &[]);
    connection_error(&[headers(0, block, true)], code::PROTOCOL_ERROR, "HEADERS on stream 0");
}

#[test]
fn headers_on_an_even_stream_is_a_protocol_error() {
    let block = hpack::request("GET", "http", "/httptest/test.html", &[]);
    connection_error(&[headers(2, block, true)], code::PROTOCOL_ERROR, "HEADERS on stream 2");
}

#[test]
fn a_frame_over_16384_bytes_is_a_frame_size_error() {
    let base = hpack::request("GET", "http", "/httptest/test.html", &[]);
    // A literal sized so the block is one byte over the limit.
    let block = (0..32)
        .map(|slack| {
            let mut b = base.clone();
            b.extend(hpack::literal("x-pad", &vec![b'p'; MAX_FRAME - base.len() - slack]));
            b
        })
        .find(|b| b.len() == MAX_FRAME + 1)
        .expect("a block of 16385 bytes");
    connection_error(&[headers(1, block, true)], code::FRAME_SIZE_ERROR, "HEADERS of 16385 bytes");
}

#[test]
fn window_update_of_0_on_the_connection_is_a_protocol_error() {
    connection_error(&[window_update(0, 0)], code::PROTOCOL_ERROR, "WINDOW_UPDATE +0 on stream 0");
}

#[test]
fn a_connection_window_over_2_31_is_a_flow_control_error() {
    // 65535 + (2^31 - 1) does not fit.
    connection_error(
        &[window_update(0, 0x7fff_ffff)],
        code::FLOW_CONTROL_ERROR,
        "connection window overflow",
    );
}

#[test]
fn a_stream_window_over_2_31_resets_the_stream() {
    let srv = Oserver::start(&[]);
    // The connection window (65535) runs out first: the stream's stays open.
    let mut h2 = H2::start(srv.addr(), &[(setting::INITIAL_WINDOW_SIZE, 1 << 20)]);
    h2.auto_window = false;
    let id = h2.request("GET", "/httptest/large.html", &[]);
    h2.wait_data(id, 65_535);
    h2.send(&window_update(id, 0x7fff_ffff));
    let f = h2
        .wait_for(WAIT, |f| (f.kind == kind::RST_STREAM && f.stream == id) || f.kind == kind::GOAWAY)
        .unwrap_or_else(|end| panic!("no RST_STREAM ({end:?}){}", h2.trace()));
    assert_eq!(f.error_code(), Some(code::FLOW_CONTROL_ERROR), "{f:?}{}", h2.trace());
    assert_eq!(f.kind, kind::RST_STREAM, "a stream error, not the connection's{}", h2.trace());
}

#[test]
fn invalid_hpack_is_a_compression_error() {
    // Index 300: beyond the static table, and the dynamic one is empty.
    let mut block = vec![0x82, 0x86];
    block.extend(hpack::indexed(300));
    connection_error(&[headers(1, block, true)], code::COMPRESSION_ERROR, "HPACK index 300");
}

#[test]
fn a_table_size_update_over_the_limit_is_a_compression_error() {
    // The server never raised SETTINGS_HEADER_TABLE_SIZE from 4096.
    let mut block = Vec::new();
    hpack::int(5, 0x20, 8192, &mut block);
    block.extend(hpack::request("GET", "http", "/httptest/test.html", &[]));
    connection_error(&[headers(1, block, true)], code::COMPRESSION_ERROR, "table size update to 8192");
}

#[test]
fn data_on_a_closed_stream_is_stream_closed() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let r = h2.get("/httptest/test.html");
    assert_eq!(r.status, 200);
    h2.send(&data(1, b"late", true));
    let f = h2
        .wait_for(WAIT, |f| (f.kind == kind::RST_STREAM && f.stream == 1) || f.kind == kind::GOAWAY)
        .unwrap_or_else(|end| panic!("no RST_STREAM nor GOAWAY ({end:?}){}", h2.trace()));
    assert_eq!(f.error_code(), Some(code::STREAM_CLOSED), "{f:?}{}", h2.trace());
}

#[test]
fn ping_is_answered_with_the_same_bytes() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::start(srv.addr(), &[]);
    let opaque = *b"h2-ping!";
    h2.send(&ping(opaque));
    let ack = h2
        .wait_for(WAIT, |f| f.kind == kind::PING)
        .unwrap_or_else(|end| panic!("no PING answer ({end:?}){}", h2.trace()));
    assert!(ack.has(flag::ACK), "{ack:?}");
    assert_eq!(ack.stream, 0);
    assert_eq!(ack.payload, opaque);
    // An ACK is not answered.
    h2.send(&Frame::new(kind::PING, flag::ACK, 0, *b"not-mine"));
    assert_eq!(h2.get("/httptest/test.html").status, 200);
    assert_eq!(h2.ping_acks, [opaque.to_vec()], "{}", h2.trace());
}

/// Only the exact preface starts HTTP/2: a connection whose preface is off
/// by one byte is closed without being served as HTTP/2 (an HTTP/1 error
/// answer, or a GOAWAY PROTOCOL_ERROR, may come first).
#[test]
fn only_the_exact_preface_starts_http2() {
    let srv = Oserver::start(&[]);
    let mut good = H2::start(srv.addr(), &[]);
    assert_eq!(good.get("/httptest/test.html").status, 200);
    let after = {
        let mut v = crate::h2wire::settings(&[]).bytes();
        v.extend(headers(1, hpack::request("GET", "http", "/httptest/test.html", &[]), true).bytes());
        v
    };
    for bad in [
        &b"PRI * HTTP/2.0\r\n\r\nSN\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\n\n",
        b"PRI * HTTP/2.1\r\n\r\nSM\r\n\r\n",
    ] {
        assert_eq!(bad.len(), PREFACE.len());
        let what = String::from_utf8_lossy(bad).escape_debug().to_string();
        let mut s = crate::support::connect(srv.addr());
        let _ = std::io::Write::write_all(&mut s, bad);
        let _ = std::io::Write::write_all(&mut s, &after);
        let (got, end) = read_to_end(&mut s, WAIT);
        assert!(matches!(end, End::Eof | End::Reset), "{what}: still open ({end:?})");
        if got.starts_with(b"HTTP/1.") {
            let status = &got[9..12];
            assert!(status[0] == b'4' || status[0] == b'5', "{what}: {:?}", String::from_utf8_lossy(&got));
            continue;
        }
        let mut at = 0;
        while let Some((f, used)) = Frame::parse(&got[at..]) {
            at += used;
            assert!(f.kind == kind::SETTINGS || f.is_goaway(code::PROTOCOL_ERROR), "{what}: served: {f:?}");
        }
        assert_eq!(at, got.len(), "{what}: not frames: {:?}", String::from_utf8_lossy(&got));
    }
}

/// The preface in as many TCP segments as it has bytes, each read by the
/// server before the next is sent: still HTTP/2 (the server must not decide
/// on a prefix, as "PRI * HTTP" is also the start of an HTTP/1 request).
#[test]
fn the_preface_may_arrive_one_byte_at_a_time() {
    // Each byte waits for the server to read the one before (a scan of
    // /proc/net/tcp): on a loaded machine the 24 take seconds, so the
    // header timeout, which this test is not about, is set well above.
    let srv = Oserver::start(&["--header-timeout", "120"]);
    let mut h2 = H2::connect(srv.addr());
    let client = h2.local_port();
    for (i, b) in PREFACE.iter().enumerate() {
        h2.send_raw(&[*b]);
        let read = wait_until(WAIT, || server_side(srv.port, client).is_some_and(|t| t.rx_queue == 0));
        assert!(read, "the server did not read byte {i} of the preface");
        if server_closed(srv.port, client) {
            let mut s = h2.tcp().try_clone().expect("clone");
            let (got, _) = read_to_end(&mut s, WAIT);
            panic!(
                "closed after {:?}, having sent {:?}",
                String::from_utf8_lossy(&PREFACE[..=i]),
                String::from_utf8_lossy(&got)
            );
        }
    }
    h2.send(&crate::h2wire::settings(&[]));
    let first =
        h2.next_frame(WAIT).unwrap_or_else(|end| panic!("nothing after the preface ({end:?}){}", h2.trace()));
    assert!(first.kind == kind::SETTINGS && !first.has(flag::ACK), "{first:?}{}", h2.trace());
    assert_eq!(h2.get("/httptest/test.html").status, 200);
}

/// Idle connections and unfinished header blocks meet the same timeouts as
/// over HTTP/1: `--keepalive-timeout` and `--header-timeout`.
#[test]
fn idle_connections_and_unfinished_header_blocks_time_out() {
    let srv = Oserver::start(&["--keepalive-timeout", "1", "--header-timeout", "1"]);
    // Served, then idle.
    let mut idle = H2::start(srv.addr(), &[]);
    assert_eq!(idle.get("/httptest/test.html").status, 200);
    // Never a request.
    let mut silent = H2::start(srv.addr(), &[]);
    // A header block that never ends.
    let mut slow = H2::start(srv.addr(), &[]);
    let block = hpack::request("GET", "http", "/httptest/test.html", &[]);
    slow.send(&Frame::new(kind::HEADERS, flag::END_STREAM, 1, block));
    for (what, h2) in
        [("idle after a request", &mut idle), ("no request", &mut silent), ("unfinished block", &mut slow)]
    {
        let end = h2.drain(Duration::from_secs(8));
        assert!(
            matches!(end, End::Eof | End::Reset),
            "{what}: open 8 s with 1 s timeouts ({end:?}){}",
            h2.trace()
        );
    }
    assert!(slow.streams[&1].blocks.is_empty(), "{}", slow.trace());
    still_serves(&srv, "after the timeouts");
}

/// The preface must be followed by SETTINGS (RFC 9113 §3.4).
#[test]
fn a_preface_not_followed_by_settings_is_a_protocol_error() {
    let srv = Oserver::start(&[]);
    let mut h2 = H2::connect(srv.addr());
    h2.send_raw(PREFACE);
    h2.send(&ping(*b"12345678"));
    let g = h2.expect_goaway(WAIT);
    assert!(g.is_goaway(code::PROTOCOL_ERROR), "{g:?}{}", h2.trace());
    let end = h2.drain(WAIT);
    assert!(matches!(end, End::Eof | End::Reset), "{end:?}{}", h2.trace());
}

// ------------------------------------------------------------ graceful stop

/// Send `sig` to the master while a download waits on a small window: the
/// client gets GOAWAY NO_ERROR naming that stream, a stream opened after it
/// is not served, the download completes once the window opens, then the
/// connection closes.
fn download_across(srv: &Oserver, sig: i32, name: &str) {
    let mut h2 = H2::start(srv.addr(), &[(setting::INITIAL_WINDOW_SIZE, 1000)]);
    h2.auto_window = false;
    let id = h2.request("GET", "/httptest/large.html", &[]);
    h2.wait_data(id, 1000);
    srv.signal(sig);
    let signalled = Instant::now();
    h2.wait_for(WAIT, |f| f.is_goaway(code::NO_ERROR) && f.last_stream() == Some(id))
        .unwrap_or_else(|end| panic!("{name}: no GOAWAY NO_ERROR last={id} ({end:?}){}", h2.trace()));
    // A stream the client opens before it has read the GOAWAY, and goes on
    // with: its body, a window for it, trailers. All of it is ignored (its
    // DATA or trailers were once a connection error that cut the download).
    let late = h2.next_stream_id();
    h2.send(&headers(late, hpack::request("POST", "http", "/httptest/test.html", &[]), false));
    h2.send(&data(late, b"a body", false));
    h2.send(&window_update(late, 1000));
    h2.send(&headers(late, hpack::literal("x-trailer", b"1"), true));
    h2.auto_window = true;
    h2.send(&window_update(0, 1_000_000));
    h2.send(&window_update(id, 1_000_000));
    let r = h2.try_response(id, Duration::from_secs(20)).unwrap_or_else(|e| {
        let got = h2.streams[&id].data.len();
        panic!(
            "{name}: {e}, {got} bytes, {:?} after the signal{}server stderr:\n{}",
            signalled.elapsed(),
            h2.trace(),
            srv.stderr_text()
        )
    });
    assert!(r.body == fixture("large.html"), "{name}: the body differs ({} bytes)", r.body.len());
    let end = h2.drain(WAIT);
    assert!(
        matches!(end, End::Eof | End::Reset),
        "{name}: still open once the stream is done ({end:?}){}",
        h2.trace()
    );
    assert!(
        h2.streams[&late].blocks.is_empty(),
        "{name}: stream {late}, opened after the GOAWAY, was served{}",
        h2.trace()
    );
}

#[test]
fn sigterm_sends_goaway_and_lets_the_stream_in_flight_finish() {
    // A shutdown timeout far above what the download takes on a loaded
    // machine: this is about the GOAWAY and the stream, not that timeout.
    let mut srv = Oserver::start(&["--shutdown-timeout", "60"]);
    download_across(&srv, libc::SIGTERM, "SIGTERM");
    let status = srv.wait_exit(Duration::from_secs(15)).expect("master still running after SIGTERM");
    assert!(status.success(), "{status}");
}

/// SIGHUP replaces the worker: the old one drains its HTTP/2 connection
/// like a stop, the new one serves new connections.
#[test]
fn sighup_sends_goaway_and_a_new_worker_serves() {
    let srv = Oserver::start(&["--shutdown-timeout", "60"]);
    let old = srv.wait_workers(1, WAIT);
    download_across(&srv, libc::SIGHUP, "SIGHUP");
    let replaced = wait_until(WAIT, || {
        let now = srv.worker_pids();
        now.len() == 1 && !now.contains(&old[0])
    });
    assert!(replaced, "worker {old:?} not replaced: {:?}\n{}", srv.worker_pids(), srv.stderr_text());
    still_serves(&srv, "after SIGHUP");
}

// ---------------------------------------------------------- real clients, TLS

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(out.status.success(), "{what}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A certificate for `a.test` from a CA of the test's, in files.
struct Certs {
    dir: PathBuf,
    _cleanup: Cleanup,
    ca_pem: String,
}

impl Certs {
    fn new(tag: &str) -> Certs {
        let (dir, cleanup) = scratch_dir(tag);
        let root = Ca::root("oserver h2 test root");
        let leaf = root.leaf(&["a.test"]);
        write_file(&dir.join("ca.pem"), &root.cert_pem);
        write_file(&dir.join("a.crt"), &leaf.chain_pem);
        write_file(&dir.join("a.key"), &leaf.key_pem);
        Certs { dir, _cleanup: cleanup, ca_pem: root.cert_pem }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("UTF-8 temp path").to_string()
    }

    /// The server flags, `extra` after them.
    fn start(&self, root: &Path, extra: &[&str]) -> Oserver {
        let (crt, key) = (self.path("a.crt"), self.path("a.key"));
        let mut args = vec!["--https-port", "0", "--tls-cert", &crt, "--tls-key", &key];
        args.extend_from_slice(extra);
        Oserver::start_in(root, &args)
    }

    /// curl with the CA, `a.test` mapped to 127.0.0.1 on `https`.
    fn curl(&self, https: SocketAddr, args: &[&str]) -> Output {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "15", "--cacert"]).arg(self.path("ca.pem"));
        cmd.arg("--resolve").arg(format!("a.test:{}:127.0.0.1", https.port()));
        run(cmd.args(args))
    }

    /// `openssl s_client` to `https` with the CA and `-alpn alpn`; all it printed.
    fn s_client(&self, https: SocketAddr, alpn: &str) -> String {
        let out = run(Command::new("openssl")
            .args(["s_client", "-connect", &https.to_string(), "-servername", "a.test", "-CAfile"])
            .arg(self.path("ca.pem"))
            .args(["-alpn", alpn]));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// A TLS connection offering `alpn`, handshake done.
    fn rustls(
        &self,
        https: SocketAddr,
        alpn: &[&[u8]],
    ) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM")).expect("CA");
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("a.test").unwrap()).unwrap();
        let mut sock = crate::support::connect(https);
        conn.complete_io(&mut sock).expect("TLS handshake");
        rustls::StreamOwned::new(conn, sock)
    }
}

#[test]
fn curl_with_prior_knowledge_gets_http2() {
    if !have("curl", "curl_with_prior_knowledge_gets_http2") {
        return;
    }
    let srv = Oserver::start(&[]);
    let (dir, _clean) = scratch_dir("h2-curl");
    // One curl per file: curl 7.88 (Debian 12) fails a second transfer on
    // a reused prior-knowledge connection whatever the server (curl#10634,
    // fixed in 7.89).
    for name in ["test.html", "large.html", "image.png", "space in name.txt"] {
        let url = format!("http://127.0.0.1:{}/httptest/{}", srv.port, name.replace(' ', "%20"));
        let file = dir.join("body");
        let out = run(Command::new("curl")
            .args(["-sS", "--max-time", "15", "--http2-prior-knowledge", "-w", "%{http_version}", "-o"])
            .arg(&file)
            .arg(&url));
        assert_eq!(String::from_utf8_lossy(&ok(out, name)), "2", "{name}");
        assert!(fs::read(&file).unwrap() == fixture(name), "{name} differs");
    }
    let url = format!("http://127.0.0.1:{}/httptest/test.html", srv.port);
    let head = ok(
        run(Command::new("curl").args([
            "-sS",
            "--max-time",
            "15",
            "--http2-prior-knowledge",
            "-D",
            "-",
            "-o",
            "/dev/null",
            &url,
        ])),
        "curl -D",
    );
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    for line in head.lines().skip(1).filter(|l| !l.is_empty()) {
        let name = line.split(':').next().unwrap_or_default();
        assert_eq!(name, name.to_ascii_lowercase(), "{head}");
        assert!(!CONNECTION_SPECIFIC.contains(&name), "{head}");
    }
}

#[test]
fn h2_by_alpn_over_tls_with_curl_and_openssl() {
    if !have("curl", "h2_by_alpn_over_tls") || !have("openssl", "h2_by_alpn_over_tls") {
        return;
    }
    let certs = Certs::new("h2-tls-curl");
    let srv = certs.start(&repo_root(), &[]);
    let https = srv.https_addr();
    let url = |name: &str| format!("https://a.test:{}/httptest/{name}", https.port());
    let (dir, _clean) = scratch_dir("h2-tls-out");
    for name in ["test.html", "large.html", "style.css"] {
        let file = dir.join("body");
        let out = certs
            .curl(https, &["--http2", "-w", "%{http_version}", "-o", file.to_str().unwrap(), &url(name)]);
        assert_eq!(String::from_utf8_lossy(&ok(out, name)), "2", "{name}");
        assert!(fs::read(&file).unwrap() == fixture(name), "{name} differs over h2");
    }
    // HTTP/1.1 still, for a client that asks for it.
    let out =
        certs.curl(https, &["--http1.1", "-w", "%{http_version}", "-o", "/dev/null", &url("test.html")]);
    assert_eq!(String::from_utf8_lossy(&ok(out, "--http1.1")), "1.1");
    let text = certs.s_client(https, "h2,http/1.1");
    assert!(text.contains("ALPN protocol: h2"), "{text}");
    let text = certs.s_client(https, "http/1.1");
    assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
}

#[test]
fn raw_frames_over_tls_after_alpn_h2() {
    let certs = Certs::new("h2-tls-raw");
    let srv = certs.start(&repo_root(), &[]);
    let tls = certs.rustls(srv.https_addr(), &[b"h2", b"http/1.1"]);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"h2"[..]));
    let mut h2 = H2::over(tls);
    h2.handshake(&[]);
    assert_eq!(h2.server_setting(setting::MAX_CONCURRENT_STREAMS), Some(100), "{}", h2.trace());
    let r = h2.get("/httptest/test.html");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body, fixture("test.html"));
    let id = h2.request("GET", "/httptest/large.html", &[]);
    let r = h2.try_response(id, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}{}", h2.trace()));
    assert!(r.body == fixture("large.html"), "large.html differs over h2");
    // A client that offers only http/1.1 gets it.
    let tls = certs.rustls(srv.https_addr(), &[b"http/1.1"]);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

/// Over TLS too, a peer whose window never opens is dropped after the send
/// timeout, and one that floods PINGs without reading stops being read and
/// is dropped.
#[test]
fn over_tls_a_shut_window_and_a_ping_flood_meet_the_send_timeout() {
    let certs = Certs::new("h2-tls-limits");
    let srv = certs.start(&repo_root(), &["--send-timeout", "2"]);
    let https = srv.https_addr();

    let mut shut = H2::over(certs.rustls(https, &[b"h2"]));
    shut.handshake(&[(setting::INITIAL_WINDOW_SIZE, 0)]);
    shut.auto_window = false;
    let id = shut.request("GET", "/httptest/large.html", &[]);
    let end = shut.drain(Duration::from_secs(10));
    assert!(
        matches!(end, End::Eof | End::Reset),
        "shut window: open 10 s with a 2 s send timeout ({end:?}){}",
        shut.trace()
    );
    assert!(shut.streams[&id].data.is_empty());

    let mut flood = H2::over(certs.rustls(https, &[b"h2"]));
    flood.handshake(&[]);
    let client = flood.local_port();
    let mut chunk = Vec::new();
    for i in 0..1000u64 {
        chunk.extend(ping(i.to_be_bytes()).bytes());
    }
    let tls = flood.io_mut();
    tls.sock.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut sent = 0usize;
    // Plaintext in, records out, never a read.
    let stalled = loop {
        if sent >= 256 << 20 {
            break false;
        }
        if std::io::Write::write_all(&mut tls.conn.writer(), &chunk).is_err() {
            break true;
        }
        let mut failed = false;
        while tls.conn.wants_write() {
            if tls.conn.write_tls(&mut tls.sock).is_err() {
                failed = true;
                break;
            }
        }
        if failed {
            break true;
        }
        sent += chunk.len();
    };
    assert!(stalled, "the server read {sent} bytes of PINGs over TLS while its answers went unread");
    let closed = wait_until(Duration::from_secs(10), || server_closed(https.port(), client));
    assert!(closed, "the server kept the flooding TLS connection 10 s with a 2 s send timeout");
    still_serves(&srv, "after the TLS floods");
}

#[test]
fn nghttp_fetches_a_page_and_its_assets_over_h2c_and_h2() {
    if !have("nghttp", "nghttp_fetches_a_page_and_its_assets") {
        return;
    }
    let (root, _clean) = scratch_dir("h2-nghttp");
    for name in ["style.css", "script.js", "image.png", "large.html"] {
        write_file(&root.join(name), fixture(name));
    }
    write_file(
        &root.join("page.html"),
        "<!DOCTYPE html>\n<html><head><link rel=\"stylesheet\" href=\"/style.css\">\
         <script src=\"/script.js\"></script></head>\n<body><img src=\"/image.png\"></body></html>\n",
    );
    let certs = Certs::new("h2-nghttp-certs");
    let srv = certs.start(&root, &[]);
    let https = srv.https_addr();
    for base in [format!("http://127.0.0.1:{}", srv.port), format!("https://127.0.0.1:{}", https.port())] {
        let out =
            run(Command::new("nghttp").args(["-n", "-v", "-a", "-t", "15", &format!("{base}/page.html")]));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "nghttp {base}: {}\n{text}", String::from_utf8_lossy(&out.stderr));
        for path in ["/page.html", "/style.css", "/script.js", "/image.png"] {
            assert!(text.contains(&format!(":path: {path}\n")), "{base}: {path} not requested:\n{text}");
        }
        assert_eq!(text.matches(":status: 200\n").count(), 4, "{base}:\n{text}");
        // The body, byte for byte (nghttp writes it to stdout without -n).
        let out = run(Command::new("nghttp").args(["-t", "15", &format!("{base}/large.html")]));
        assert!(out.status.success(), "nghttp {base}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            out.stdout == fixture("large.html"),
            "{base}: large.html differs ({} bytes)",
            out.stdout.len()
        );
    }
}

/// `--no-http2`: the preface on the plain port is not HTTP/2, and ALPN
/// offers only http/1.1.
#[test]
fn no_http2_turns_off_h2c_and_h2() {
    let certs = Certs::new("h2-off");
    let srv = certs.start(&repo_root(), &["--no-http2"]);
    let https = srv.https_addr();
    let mut bytes = PREFACE.to_vec();
    bytes.extend(crate::h2wire::settings(&[]).bytes());
    bytes.extend(headers(1, hpack::request("GET", "http", "/httptest/test.html", &[]), true).bytes());
    let mut s = crate::support::connect(srv.addr());
    let _ = std::io::Write::write_all(&mut s, &bytes);
    let (got, end) = read_to_end(&mut s, WAIT);
    assert!(matches!(end, End::Eof | End::Reset), "still open ({end:?})");
    let text = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || text.starts_with("HTTP/1.1 4") || text.starts_with("HTTP/1.1 5"), "{text:?}");
    // The HTTPS port: http/1.1 for a client offering both.
    let tls = certs.rustls(https, &[b"h2", b"http/1.1"]);
    assert_eq!(tls.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    if have("openssl", "no_http2 (openssl part)") {
        let text = certs.s_client(https, "h2,http/1.1");
        assert!(text.contains("ALPN protocol: http/1.1"), "{text}");
        // h2 alone: no protocol in common.
        let text = certs.s_client(https, "h2");
        assert!(text.contains("alert no application protocol"), "{text}");
    }
    if have("curl", "no_http2 (curl part)") {
        let url = format!("https://a.test:{}/httptest/test.html", https.port());
        let out = certs.curl(https, &["--http2", "-w", "%{http_version}", "-o", "/dev/null", &url]);
        assert_eq!(String::from_utf8_lossy(&ok(out, "curl --http2")), "1.1");
    }
    // Plain HTTP/1.1 is served as ever.
    assert_eq!(crate::support::get(srv.addr(), "/httptest/test.html").status, 200);
}
