//! HTTPS end to end: the real binary with `--https-port`, certificates from
//! a CA the test makes (`certs.rs`), and real clients: curl `--cacert` for
//! HTTP features over TLS, `openssl s_client` for SNI, ALPN and versions, a
//! rustls client for what the tools cannot do (a ClientHello one byte at a
//! time). A test that needs curl or openssl skips, saying so, when the tool
//! is not installed.
//!
//! Every server here has two certificates, both issued by an intermediate
//! (so the chain is sent and checked): `a.test` (the first, the default)
//! and `b.test` with `*.wild.test`.

use std::fs;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use oserver_core::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::certs::Ca;
use crate::support::{
    connect, parse_head, parse_one, read_to_end, repo_root, run_to_exit, scratch_dir, wait_until, write_file,
    Cleanup, End, Oserver, Response,
};
use crate::support::{have, run};

/// Names the tests reach the server by; curl maps each to 127.0.0.1.
const NAMES: &[&str] = &["a.test", "b.test", "x.wild.test", "x.y.wild.test", "unknown.test"];

/// The certificate files of a test server.
struct Files {
    dir: PathBuf,
    _cleanup: Cleanup,
    /// The root CA's certificate, for the clients.
    ca: PathBuf,
    ca_pem: String,
    /// The intermediate that signed the leaves, for new ones.
    inter: Ca,
}

impl Files {
    fn new(tag: &str) -> Files {
        let (dir, cleanup) = scratch_dir(tag);
        let root = Ca::root("oserver test root");
        let ca = dir.join("ca.pem");
        write_file(&ca, &root.cert_pem);
        let inter = root.intermediate("oserver test intermediate");
        for (name, names) in [("a", &["a.test"][..]), ("b", &["b.test", "*.wild.test"])] {
            let leaf = inter.leaf(names);
            write_file(&dir.join(format!("{name}.crt")), &leaf.chain_pem);
            write_file(&dir.join(format!("{name}.key")), &leaf.key_pem);
        }
        Files { dir, _cleanup: cleanup, ca, ca_pem: root.cert_pem, inter }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().expect("UTF-8 temp path").to_string()
    }

    /// The flags for both certificates, `a` first.
    fn flags(&self) -> Vec<String> {
        let mut v = vec!["--https-port".to_string(), "0".to_string()];
        for name in ["a", "b"] {
            v.extend(["--tls-cert".to_string(), self.path(&format!("{name}.crt"))]);
            v.extend(["--tls-key".to_string(), self.path(&format!("{name}.key"))]);
        }
        v
    }
}

/// A running server with HTTPS beside plain HTTP.
struct Site {
    srv: Oserver,
    https: SocketAddr,
    files: Files,
}

impl Site {
    fn start(tag: &str, extra: &[&str]) -> Site {
        let files = Files::new(tag);
        let flags = files.flags();
        let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        let srv = Oserver::start(&args);
        let https = srv.https_addr();
        Site { srv, https, files }
    }

    fn url(&self, name: &str, path: &str) -> String {
        format!("https://{name}:{}{path}", self.https.port())
    }

    /// `curl -sS --http1.1 --cacert CA --resolve NAME:PORT:127.0.0.1 ...
    /// ARGS`: HTTP/1.1 over TLS, unless ARGS ask for another version (HTTP/2
    /// over TLS is tested in http2.rs).
    fn curl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--http1.1", "--max-time", "15", "--cacert"]).arg(&self.files.ca);
        for name in NAMES {
            cmd.arg("--resolve").arg(format!("{name}:{}:127.0.0.1", self.https.port()));
        }
        run(cmd.args(args))
    }

    /// curl that must succeed; its stdout.
    fn curl_ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self.curl(args);
        assert!(
            out.status.success(),
            "curl {args:?}: {}\n{}\nserver stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.srv.stderr_text()
        );
        out.stdout
    }

    /// `openssl s_client` against the HTTPS port with the test CA; all it
    /// printed.
    fn s_client(&self, args: &[&str]) -> String {
        let out = run(Command::new("openssl")
            .args(["s_client", "-connect", &self.https.to_string(), "-CAfile"])
            .arg(&self.files.ca)
            .args(args));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

fn fixture(name: &str) -> Vec<u8> {
    let p = repo_root().join("httptest").join(name);
    fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The response head curl printed with `-D -` (the last one, after any 1xx).
fn head_of(curl_out: &[u8]) -> Response {
    let text = String::from_utf8_lossy(curl_out);
    let last = text.rfind("HTTP/").unwrap_or_else(|| panic!("no response head in {text:?}"));
    parse_head(&curl_out[last..]).unwrap_or_else(|| panic!("unparsable head {text:?}")).0
}

#[test]
fn get_files_over_https() {
    if !have("curl", "get_files_over_https") {
        return;
    }
    let site = Site::start("tls-get", &[]);
    // A small file, with the response head.
    let out = site.curl_ok(&["-D", "-", &site.url("a.test", "/httptest/test.html")]);
    let head = head_of(&out);
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.header("Content-Type"), Some("text/html"));
    let small = fixture("test.html");
    assert_eq!(head.content_length(), Some(small.len() as u64));
    assert!(out.ends_with(&small), "body differs: {:?}", String::from_utf8_lossy(&out));
    // The 1 MB page, byte for byte (many records, pread from the file).
    let body = site.curl_ok(&[&site.url("a.test", "/httptest/large.html")]);
    let large = fixture("large.html");
    assert_eq!(body.len(), large.len());
    assert!(body == large, "large.html differs over TLS");
    // A 404 is an answer like any other.
    let out = site.curl(&["-o", "/dev/null", "-w", "%{http_code}", &site.url("a.test", "/no/such/file")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    // Plain HTTP keeps working beside it.
    let plain = crate::support::get(site.srv.addr(), "/httptest/test.html");
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, small);
}

#[test]
fn range_conditional_and_head_over_https() {
    if !have("curl", "range_conditional_and_head_over_https") {
        return;
    }
    let site = Site::start("tls-features", &[]);
    let url = site.url("a.test", "/httptest/large.html");
    let large = fixture("large.html");

    let out = site.curl_ok(&["-D", "-", "-r", "100000-100099", &url]);
    let head = head_of(&out);
    assert_eq!(head.status, 206, "{head:?}");
    assert_eq!(head.header("Content-Range"), Some(format!("bytes 100000-100099/{}", large.len()).as_str()));
    assert!(out.ends_with(&large[100_000..100_100]), "range body differs");
    // A suffix range across the end of the file.
    let tail = site.curl_ok(&["-r", "-70000", &url]);
    assert!(tail == large[large.len() - 70_000..], "suffix range differs");

    let head = head_of(&site.curl_ok(&["-D", "-", "-o", "/dev/null", &url]));
    let etag = head.header("ETag").expect("ETag").to_string();
    let out = site.curl_ok(&["-D", "-", "-H", &format!("If-None-Match: {etag}"), &url]);
    let not_modified = head_of(&out);
    assert_eq!(not_modified.status, 304, "{not_modified:?}");
    assert_eq!(not_modified.header("ETag"), Some(etag.as_str()));
    assert!(String::from_utf8_lossy(&out).ends_with("\r\n\r\n"), "a 304 has no body");

    // HEAD: GET's headers, no body.
    let out = site.curl_ok(&["-I", &url]);
    let head = head_of(&out);
    assert_eq!(head.status, 200);
    assert_eq!(head.content_length(), Some(large.len() as u64));
    assert!(String::from_utf8_lossy(&out).ends_with("\r\n\r\n"), "HEAD sent a body");
}

#[test]
fn keep_alive_over_https() {
    if !have("curl", "keep_alive_over_https") {
        return;
    }
    let site = Site::start("tls-keepalive", &[]);
    let (a, b) = (site.url("a.test", "/httptest/test.html"), site.url("a.test", "/httptest/style.css"));
    let dir = &site.files.dir;
    let (fa, fb) = (dir.join("one"), dir.join("two"));
    let out = site.curl_ok(&[
        "-w",
        "%{num_connects}\n",
        &a,
        "-o",
        fa.to_str().unwrap(),
        &b,
        "-o",
        fb.to_str().unwrap(),
    ]);
    // One connection for the first URL, none for the second: it was reused.
    assert_eq!(String::from_utf8_lossy(&out), "1\n0\n");
    assert_eq!(fs::read(&fa).unwrap(), fixture("test.html"));
    assert_eq!(fs::read(&fb).unwrap(), fixture("style.css"));
}

#[test]
fn certificate_by_sni() {
    if !have("curl", "certificate_by_sni") || !have("openssl", "certificate_by_sni") {
        return;
    }
    let site = Site::start("tls-sni", &[]);
    // What openssl sees: the subject for each name, the chain verified up to
    // the root (so the intermediate was sent), and ALPN.
    let table: &[(&[&str], &str)] = &[
        (&["-servername", "a.test"], "a.test"),
        (&["-servername", "b.test"], "b.test"),
        (&["-servername", "x.wild.test"], "b.test"),
        // Two labels below the wildcard, an unknown name, no SNI: the first.
        (&["-servername", "x.y.wild.test"], "a.test"),
        (&["-servername", "unknown.test"], "a.test"),
        (&["-noservername"], "a.test"),
    ];
    for (args, subject) in table {
        let mut all = args.to_vec();
        all.extend(["-alpn", "http/1.1"]);
        let out = site.s_client(&all);
        assert!(out.contains(&format!("subject=CN = {subject}\n")), "{args:?} wanted {subject}:\n{out}");
        assert!(out.contains("Verify return code: 0 (ok)"), "{args:?}:\n{out}");
        assert!(out.contains("ALPN protocol: http/1.1"), "{args:?}:\n{out}");
    }
    // TLS 1.2 and 1.3 both; a client offering only a protocol the server
    // does not speak is refused (no protocol in common) rather than
    // silently given HTTP/1.1. h2 alone is served (see http2.rs).
    for (flag, version) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let out = site.s_client(&["-servername", "b.test", flag]);
        assert!(out.contains(&format!("New, {version}, Cipher is ")), "{flag}:\n{out}");
        assert!(out.contains("subject=CN = b.test\n"), "{flag}:\n{out}");
    }
    let out = site.s_client(&["-servername", "a.test", "-alpn", "spdy/3"]);
    assert!(out.contains("alert no application protocol"), "{out}");
    let out = site.s_client(&["-servername", "a.test", "-alpn", "h2"]);
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    // http/1.1 is preferred; http/1.0 alone (curl --http1.0) is served too.
    let out = site.s_client(&["-servername", "a.test", "-alpn", "http/1.0,http/1.1"]);
    assert!(out.contains("ALPN protocol: http/1.1"), "{out}");
    let out =
        site.curl(&["--http1.0", "-D", "-", "-o", "/dev/null", &site.url("a.test", "/httptest/test.html")]);
    assert!(out.status.success(), "curl --http1.0: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stdout.starts_with(b"HTTP/1.1 200 "), "{}", String::from_utf8_lossy(&out.stdout));

    // curl verifies each name against what it is given.
    for name in ["a.test", "b.test", "x.wild.test"] {
        let out =
            site.curl(&["-o", "/dev/null", "-w", "%{http_code}", &site.url(name, "/httptest/test.html")]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "{name}");
    }
    // Not covered by `*.wild.test`: gets a.test's certificate, which curl refuses.
    let out = site.curl(&["-o", "/dev/null", &site.url("x.y.wild.test", "/httptest/test.html")]);
    assert_eq!(out.status.code(), Some(60), "curl: {}", String::from_utf8_lossy(&out.stderr));
}

/// A rustls client trusting the test CA, offering http/1.1.
fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA PEM")).expect("CA");
    let mut config =
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Read one response from a TLS stream (the request asked to close).
fn tls_response(tls: &mut impl Read) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some((r, _)) = parse_one(&buf, false) {
            return r;
        }
        match tls.read(&mut chunk) {
            Ok(0) => panic!("EOF before a whole response: {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&buf)),
        }
    }
}

#[test]
fn client_hello_one_byte_at_a_time() {
    let site = Site::start("tls-trickle", &[]);
    let config = client_config(&site.files.ca_pem);
    let mut conn =
        rustls::ClientConnection::new(config, ServerName::try_from("b.test").unwrap()).expect("client");
    let mut hello = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut hello).expect("ClientHello");
    }
    assert!(hello.len() > 100, "a ClientHello of {} bytes", hello.len());
    let mut sock = connect(site.https);
    // TCP_NODELAY (set by `connect`) and a pause: one segment per byte.
    for b in &hello {
        sock.write_all(std::slice::from_ref(b)).expect("write a byte");
        thread::sleep(Duration::from_millis(2));
    }
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: b.test\r\nConnection: close\r\n\r\n")
        .expect("request");
    let r = tls_response(&mut tls);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, fixture("test.html"));
    assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
}

#[test]
fn plain_http_to_the_https_port_is_closed() {
    // A short header timeout: it also bounds the handshake.
    let site = Site::start("tls-plain", &["--header-timeout", "2"]);
    let workers = site.srv.wait_workers(1, Duration::from_secs(5));
    for request in [
        &b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\n\r\n"[..],
        b"\x00\x00\x00\x00\x00\x00\x00\x00",
    ] {
        let mut s = connect(site.https);
        s.write_all(request).expect("write");
        let started = Instant::now();
        let (data, end) = read_to_end(&mut s, Duration::from_secs(5));
        let waited = started.elapsed();
        // A clean close (FIN, not a reset), at once, after at most a TLS
        // alert record (type 21): never a plain-text answer.
        assert_eq!(end, End::Eof, "{request:?}: after {waited:?}, {data:?}");
        assert!(waited < Duration::from_secs(1), "{request:?}: closed after {waited:?}");
        assert!(data.is_empty() || data[0] == 21, "{request:?}: {:?}", String::from_utf8_lossy(&data));
    }
    // A handshake record that announces more than ever comes is not wrong,
    // only slow: the header timeout closes it.
    let mut s = connect(site.https);
    s.write_all(b"\x16\x03\x01\x40\x00\x01").expect("write");
    let started = Instant::now();
    let (data, end) = read_to_end(&mut s, Duration::from_secs(8));
    let waited = started.elapsed();
    assert!(matches!(end, End::Eof | End::Reset), "truncated handshake: {end:?} after {waited:?}");
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(5), "closed after {waited:?}");
    assert!(!data.starts_with(b"HTTP/"), "{:?}", String::from_utf8_lossy(&data));
    // The worker is the same one and still serves both ports.
    assert_eq!(site.srv.worker_pids(), workers);
    let mut sock = connect(site.https);
    let mut conn = rustls::ClientConnection::new(
        client_config(&site.files.ca_pem),
        ServerName::try_from("a.test").unwrap(),
    )
    .expect("client");
    let mut tls = rustls::Stream::new(&mut conn, &mut sock);
    tls.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(tls_response(&mut tls).status, 200);
    assert_eq!(crate::support::get(site.srv.addr(), "/httptest/test.html").status, 200);
    assert!(!site.srv.stderr_text().contains("panicked"), "{}", site.srv.stderr_text());
}

#[test]
fn sighup_and_stop_keep_https() {
    if !have("curl", "sighup_and_stop_keep_https") {
        return;
    }
    let mut site = Site::start("tls-hup", &["-w", "2"]);
    let url = site.url("b.test", "/httptest/test.html");
    let old = site.srv.wait_workers(2, Duration::from_secs(5));
    site.curl_ok(&["-o", "/dev/null", &url]);
    site.srv.signal(libc::SIGHUP);
    // The old generation drains and exits; the new one holds the sockets.
    let drained =
        wait_until(Duration::from_secs(15), || site.srv.stderr_text().matches("old worker").count() >= 2);
    assert!(drained, "old workers still there:\n{}", site.srv.stderr_text());
    let new = site.srv.wait_workers(2, Duration::from_secs(5));
    assert!(new.iter().all(|p| !old.contains(p)), "old {old:?}, now {new:?}");
    for _ in 0..4 {
        assert_eq!(site.curl_ok(&[&url]), fixture("test.html"));
    }
    site.srv.signal(libc::SIGTERM);
    let status = site.srv.wait_exit(Duration::from_secs(15)).expect("master still running after SIGTERM");
    assert!(status.success(), "{status}");
}

#[test]
fn expired_certificate_is_served_with_a_warning() {
    let (dir, _cleanup) = scratch_dir("tls-expired");
    let ca = Ca::root("oserver test root");
    let leaf = ca.leaf_valid(&["old.test"], (2020, 2021));
    let (crt, key) = (dir.join("old.crt"), dir.join("old.key"));
    write_file(&crt, &leaf.chain_pem);
    write_file(&key, &leaf.key_pem);
    let srv = Oserver::start(&[
        "--https-port",
        "0",
        "--tls-cert",
        crt.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let text = srv.stderr_text();
    let warning = text.lines().find(|l| l.contains("expired on")).unwrap_or_else(|| panic!("{text}"));
    assert!(warning.contains("[WARN]") && warning.contains("old.crt"), "{warning}");
    // Served anyway: the handshake completes, and a client that checks
    // dates refuses it for that reason.
    let mut sock = connect(srv.https_addr());
    let mut conn =
        rustls::ClientConnection::new(client_config(&ca.cert_pem), ServerName::try_from("old.test").unwrap())
            .expect("client");
    let e = conn.complete_io(&mut sock).expect_err("an expired certificate");
    assert!(e.to_string().contains("expired"), "{e}");
}

/// Run the binary with `args` after the root and ports; it must exit 2
/// with one line naming `want` on stderr, leaving no process behind.
fn exits_2(args: &[&str], want: &str) {
    let root = repo_root();
    let mut all = vec!["-r", root.to_str().unwrap(), "-p", "0", "-w", "1"];
    all.extend_from_slice(args);
    let (status, stderr, leftovers) = run_to_exit(&all, Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{args:?}: {status:?}\n{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(stderr.starts_with("oserver: error: ") && stderr.contains(want), "{args:?}: {stderr}");
    assert!(!leftovers, "{args:?}: a process was left behind");
}

#[test]
fn startup_errors_exit_2_with_one_line() {
    let files = Files::new("tls-errors");
    let (a_crt, a_key, b_key) = (files.path("a.crt"), files.path("a.key"), files.path("b.key"));
    let missing = files.path("missing.key");
    exits_2(&["--https-port", "0", "--tls-cert", &a_crt, "--tls-key", &missing], "missing.key");
    exits_2(&["--https-port", "0", "--tls-cert", &a_crt, "--tls-key", &b_key], "does not match");
    exits_2(&["--tls-cert", &a_crt, "--tls-key", &a_key], "need --https-port");
    exits_2(&["--https-port", "0"], "--https-port needs --tls-cert");
    exits_2(&["--https-port", "0", "--tls-cert", &a_crt, "--tls-cert", &a_crt, "--tls-key", &a_key], "pairs");
    exits_2(&["--https-port", "0", "--tls-cert", &a_key, "--tls-key", &a_key], "no certificate");
    exits_2(&["--redirect-https"], "--redirect-https needs --https-port");
    exits_2(&["--hsts", "60"], "--hsts needs --https-port");
    // The happy path of the same helper's command line does start.
    assert!(Path::new(&a_crt).exists());
}

/// `--redirect-https` sends plain requests to HTTPS by their Host header,
/// `--hsts` marks HTTPS answers, and curl follows the redirect to the file.
#[test]
fn redirect_to_https_and_hsts() {
    if !have("curl", "redirect_to_https_and_hsts") {
        return;
    }
    let site = Site::start("tls-redirect", &["--redirect-https", "--hsts", "31536000"]);
    let port = site.https.port();
    let r = crate::support::raw(
        site.srv.addr(),
        b"GET http://evil.example/httptest/test.html?x=1 HTTP/1.1\r\nHost: a.test:8080\r\nConnection: close\r\n\r\n",
    );
    let r = crate::support::first_response(&r);
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some(format!("https://a.test:{port}/httptest/test.html?x=1").as_str()));
    assert_eq!(r.header("strict-transport-security"), None);
    // A Host that is not a host gets no redirect.
    let bad = crate::support::raw(
        site.srv.addr(),
        b"GET / HTTP/1.1\r\nHost: a.test/evil\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(crate::support::first_response(&bad).status, 400);
    // curl from plain HTTP to the file over HTTPS.
    let plain = format!("http://a.test:{}/httptest/test.html", site.srv.addr().port());
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "15", "-L", "-D", "-", "--cacert"]).arg(&site.files.ca);
    cmd.arg("--resolve").arg(format!("a.test:{port}:127.0.0.1"));
    cmd.arg("--resolve").arg(format!("a.test:{}:127.0.0.1", site.srv.addr().port()));
    let out = run(cmd.arg(&plain));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(text.contains(" 308 ") && text.contains("strict-transport-security: max-age=31536000"), "{text}");
    assert!(out.stdout.ends_with(&fixture("test.html")));
}

/// Session tickets open on every worker: the master makes the ticket secret
/// before it forks. One client session cache, many connections spread over
/// two workers by the kernel: after the first, every handshake resumes. (With
/// a secret per worker, about half would land on a worker that cannot open
/// the ticket and do a full handshake.)
#[test]
fn tickets_resume_on_every_worker() {
    // Placement off: the kernel's hash, not the client's CPU, picks the worker.
    let site = Site::start("tls-tickets", &["-w", "2", "--cpu-affinity=off"]);
    let config = client_config(&site.files.ca_pem);
    let mut kinds = Vec::new();
    let mut workers = std::collections::HashSet::new();
    for _ in 0..16 {
        let conn =
            rustls::ClientConnection::new(Arc::clone(&config), ServerName::try_from("a.test").unwrap())
                .unwrap();
        let sock = std::net::TcpStream::connect(site.https).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let local = sock.local_addr().unwrap().port();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
        assert_eq!(tls_response(&mut tls).status, 200);
        // Which worker holds the server's end of this connection: the
        // socket whose remote port is ours, found by inode in its descriptors.
        let theirs: Vec<u64> = crate::support::tcp_sockets()
            .iter()
            .filter(|t| t.remote_port == local && t.local_port == site.https.port())
            .map(|t| t.inode)
            .collect();
        workers.extend(
            site.srv
                .worker_pids()
                .into_iter()
                .filter(|&w| crate::support::socket_inodes(w).iter().any(|i| theirs.contains(i))),
        );
        kinds.push(tls.conn.handshake_kind());
    }
    assert_eq!(kinds[0], Some(rustls::HandshakeKind::Full));
    assert!(
        kinds[1..].iter().all(|k| *k == Some(rustls::HandshakeKind::Resumed)),
        "every later handshake resumes: {kinds:?}"
    );
    assert_eq!(workers.len(), 2, "the connections reached both workers");
}

/// SIGHUP reads the certificate files again: new workers serve the renewed
/// certificate. Files that do not load leave the current workers serving,
/// with one line in the log.
#[test]
fn sighup_reloads_certificates_and_keeps_serving_when_they_are_bad() {
    if !have("openssl", "sighup_reloads_certificates") {
        return;
    }
    let site = Site::start("tls-reload", &["-w", "2"]);
    let served = |site: &Site| site.s_client(&["-servername", "a.test"]);
    let old_workers = site.srv.wait_workers(2, Duration::from_secs(5));
    // Renewal: a new certificate and key in the same files.
    let renewed = site.files.inter.leaf(&["a.test"]);
    assert!(!served(&site).contains(renewed.cert_pem.trim()));
    write_file(Path::new(&site.files.path("a.crt")), &renewed.chain_pem);
    write_file(Path::new(&site.files.path("a.key")), &renewed.key_pem);
    site.srv.signal(libc::SIGHUP);
    let replaced = wait_until(Duration::from_secs(15), || {
        let now = site.srv.worker_pids();
        now.len() == 2 && now.iter().all(|p| !old_workers.contains(p))
    });
    assert!(replaced, "workers not replaced:\n{}", site.srv.stderr_text());
    let out = served(&site);
    assert!(out.contains(renewed.cert_pem.trim()), "the renewed certificate is served:\n{out}");
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");

    // A key that is not the certificate's: no restart, the workers serve on.
    let workers = site.srv.worker_pids();
    write_file(Path::new(&site.files.path("a.key")), &site.files.inter.leaf(&["a.test"]).key_pem);
    site.srv.signal(libc::SIGHUP);
    let logged =
        wait_until(Duration::from_secs(5), || site.srv.stderr_text().contains("certificates not reloaded"));
    assert!(logged, "{}", site.srv.stderr_text());
    let line = site.srv.stderr_text().lines().filter(|l| l.contains("certificates not reloaded")).count();
    assert_eq!(line, 1);
    assert_eq!(site.srv.worker_pids(), workers, "the workers stay");
    assert!(served(&site).contains(renewed.cert_pem.trim()));
}

/// 500 handshakes abandoned half-way (half a ClientHello, then a close or a
/// reset) leave no descriptor behind in the worker.
#[test]
fn aborted_handshakes_leak_no_descriptor() {
    let site = Site::start("tls-aborted", &["-w", "1"]);
    let worker = site.srv.wait_workers(1, Duration::from_secs(5))[0];
    let config = client_config(&site.files.ca_pem);
    let mut hello = Vec::new();
    rustls::ClientConnection::new(Arc::clone(&config), ServerName::try_from("a.test").unwrap())
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    // The worker counted once it has answered: counted as soon as it exists,
    // it may not have opened its own descriptors yet (a loaded run saw 7,
    // then 10 for good, and failed).
    let sock = std::net::TcpStream::connect(site.https).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn =
        rustls::ClientConnection::new(Arc::clone(&config), ServerName::try_from("a.test").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(tls_response(&mut tls).status, 200);
    drop(tls);
    // Its side of that connection closes as it answers; give it a moment.
    std::thread::sleep(Duration::from_millis(200));
    let before = crate::support::fd_count(worker);
    for i in 0..500 {
        let mut s = std::net::TcpStream::connect(site.https).unwrap();
        s.write_all(&hello[..hello.len() / 2]).unwrap();
        if i % 2 == 0 {
            // A reset instead of a FIN: SO_LINGER with a zero timeout.
            use std::os::fd::AsRawFd;
            let l = libc::linger { l_onoff: 1, l_linger: 0 };
            // SAFETY: a valid socket and a linger struct of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    s.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&l as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0);
        }
        drop(s);
    }
    let settled = wait_until(Duration::from_secs(10), || crate::support::fd_count(worker) <= before);
    assert!(settled, "worker holds {} descriptors, {before} before", crate::support::fd_count(worker));
    // And it still serves.
    let sock = std::net::TcpStream::connect(site.https).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let conn = rustls::ClientConnection::new(config, ServerName::try_from("a.test").unwrap()).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n").unwrap();
    assert_eq!(tls_response(&mut tls).status, 200);
}

/// The plain suite's request tables sent over both: over HTTPS every answer
/// is the plain one (status, every header but Date, body), for each kind of
/// answer, the root escapes, ranges, validators, HEAD and a precompressed
/// variant.
#[test]
fn the_same_answers_over_https_as_over_http() {
    let site = Site::start("tls-same", &["--precompressed", "--max-age", "60"]);
    let config = client_config(&site.files.ca_pem);
    let mut requests: Vec<Vec<u8>> = crate::basics::COMMON_CASES.iter().map(|(r, _)| r.to_vec()).collect();
    requests.extend(
        crate::basics::ESCAPES.iter().map(|p| format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes()),
    );
    let etag =
        crate::support::get(site.srv.addr(), "/httptest/large.html").header("etag").unwrap().to_string();
    for extra in [
        "Range: bytes=100-199".to_string(),
        "Range: bytes=2000000-".to_string(),
        format!("If-None-Match: {etag}"),
        "Accept-Encoding: gzip, br".to_string(),
    ] {
        requests
            .push(format!("GET /httptest/large.html HTTP/1.1\r\nHost: x\r\n{extra}\r\n\r\n").into_bytes());
    }
    requests.push(b"HEAD /httptest/dir2/page.html HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
    let without_date = |r: &Response| {
        r.headers.iter().filter(|(n, _)| !n.eq_ignore_ascii_case("date")).cloned().collect::<Vec<_>>()
    };
    for req in &requests {
        let label = String::from_utf8_lossy(req).lines().take(3).collect::<Vec<_>>().join(" | ");
        // A HEAD answer and a 304 carry a Content-Length but no body.
        let head_only = req.starts_with(b"HEAD") || crate::support::find(req, b"If-None-Match").is_some();
        let plain = crate::support::parse_one(&crate::support::raw(site.srv.addr(), req), head_only)
            .unwrap_or_else(|| panic!("{label}: no plain answer"))
            .0;
        let conn =
            rustls::ClientConnection::new(Arc::clone(&config), ServerName::try_from("a.test").unwrap())
                .unwrap();
        let sock = std::net::TcpStream::connect(site.https).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, sock);
        tls.write_all(req).unwrap();
        let secure = if head_only { tls_head(&mut tls) } else { tls_response(&mut tls) };
        assert_eq!(secure.status, plain.status, "{label}");
        assert_eq!(without_date(&secure), without_date(&plain), "{label}");
        assert!(secure.body == plain.body, "{label}: bodies differ");
    }
}

/// One response head (a HEAD answer: no body follows).
fn tls_head(tls: &mut impl Read) -> Response {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((r, _)) = parse_one(&buf, true) {
            return r;
        }
        match tls.read(&mut chunk) {
            Ok(0) => panic!("EOF before a whole head: {:?}", String::from_utf8_lossy(&buf)),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// `--cpu-affinity` over HTTPS: TLS connections steered to the worker on
/// CPU a whose client thread then moves to CPU b are handed to the worker on
/// b with their record keys (one TLS 1.3, one TLS 1.2), and go on being
/// served byte-exact there, through a clean close_notify at the end.
#[test]
fn cpu_affinity_hands_tls_connections_to_the_worker_on_their_clients_new_cpu() {
    use crate::sched::{cpus_of, holder_of, server_socket_inode, two_cpus};
    use crate::support::pin_this_thread;

    let Some([a, b]) = two_cpus("TLS handoff") else { return };
    let mut site = Site::start("tls-handoff", &["-w", "2", "--cpu-affinity"]);
    let workers = site.srv.wait_workers(2, Duration::from_secs(5));
    let port = site.https.port();
    let ca = CertificateDer::from_pem_slice(site.files.ca_pem.as_bytes()).expect("CA PEM");
    let client = |version: &'static rustls::SupportedProtocolVersion| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).expect("CA");
        let config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[version])
                .expect("version")
                .with_root_certificates(roots)
                .with_no_client_auth();
        let conn =
            rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("a.test").unwrap()).unwrap();
        let sock = connect(site.https);
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rustls::StreamOwned::new(conn, sock)
    };
    let request = |c: &mut rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>| {
        c.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
        let r = tls_response(c);
        assert_eq!(r.status, 200);
        assert_eq!(r.body, fixture("test.html"));
    };
    let holder = |c: &rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>| {
        let inode = server_socket_inode(port, c.sock.local_addr().unwrap().port()).expect("server socket");
        cpus_of(holder_of(inode, &workers).expect("a worker holds it"))
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_this_thread(a);
                let mut conns = vec![client(&rustls::version::TLS13), client(&rustls::version::TLS12)];
                for c in &mut conns {
                    request(c);
                    assert_eq!(holder(c), vec![a], "steered to CPU {a}'s worker first");
                }
                pin_this_thread(b);
                // Checks come after the 1st, 2nd, 4th, 8th... response.
                for _ in 0..8 {
                    for c in &mut conns {
                        request(c);
                    }
                }
                for mut c in conns {
                    assert_eq!(holder(&c), vec![b], "followed its client to CPU {b}");
                    let version = c.conn.protocol_version();
                    // Two requests in two records, written together: the
                    // worker that took the connection reads both in one go,
                    // and must answer the one its record layer still holds
                    // when the socket has nothing more to say.
                    let req = b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\n\r\n";
                    c.conn.writer().write_all(req).unwrap();
                    c.conn.writer().write_all(req).unwrap();
                    while c.conn.wants_write() {
                        c.conn.write_tls(&mut c.sock).unwrap();
                    }
                    let (mut buf, mut chunk) = (Vec::new(), [0u8; 16 * 1024]);
                    for i in 0..2 {
                        let (r, used) = loop {
                            if let Some(got) = parse_one(&buf, false) {
                                break got;
                            }
                            match c.read(&mut chunk) {
                                Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                                r => panic!("{version:?}: answer {i} of two pipelined in two records: {r:?}"),
                            }
                        };
                        assert_eq!((r.status, &r.body), (200, &fixture("test.html")), "{version:?}");
                        buf.drain(..used);
                    }
                    c.write_all(
                        b"GET /httptest/test.html HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
                    )
                    .unwrap();
                    let mut rest = Vec::new();
                    // rustls calls an end without close_notify an error.
                    c.read_to_end(&mut rest).unwrap_or_else(|e| panic!("{version:?}: {e}"));
                    assert_eq!(
                        parse_one(&rest, false).expect("the last answer").0.body,
                        fixture("test.html")
                    );
                }
            })
            .join()
            .unwrap()
    });
    site.srv.signal(libc::SIGTERM);
    assert!(site.srv.wait_exit(Duration::from_secs(10)).is_some());
    let log = site.srv.stderr_text();
    assert!(log.contains("(2 handed to other workers, 0 taken)"), "{log}");
    assert!(log.contains("(0 handed to other workers, 2 taken)"), "{log}");
}
