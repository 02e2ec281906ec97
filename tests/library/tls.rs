//! HTTPS from the library: a TLS listener beside the plain one, a private CA
//! made at test time, and a rustls client on real TCP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use oserver_core::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use oserver_core::rustls::{self, ClientConfig, ClientConnection, RootCertStore, ServerConfig, StreamOwned};
use oserver_core::ServerBuilder;

use crate::support::{parse_responses, repo_root};
use crate::Running;

/// A CA, and a server configuration for `localhost` signed by it.
struct Pki {
    ca: CertificateDer<'static>,
    server: Arc<ServerConfig>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "oserver test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let mut server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Pki { ca: ca.der().clone(), server: Arc::new(server) }
}

fn client(pki: &Pki, addr: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let mut config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    connect_with(config, addr)
}

/// A TLS connection to `localhost` at `addr` with `config`.
fn connect_with(config: ClientConfig, addr: SocketAddr) -> StreamOwned<ClientConnection, TcpStream> {
    let conn = ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    StreamOwned::new(conn, sock)
}

fn https_server(pki: &Pki) -> (Running, SocketAddr) {
    let b =
        ServerBuilder::new().root(repo_root()).https("127.0.0.1:0".parse().unwrap(), Arc::clone(&pki.server));
    let s = Running::start(b);
    let addr = s.https.expect("an HTTPS address");
    (s, addr)
}

/// Read until `n` whole responses are in (HEAD answers at the positions in
/// `head`), or the stream ends.
fn read_responses(c: &mut impl Read, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    while parse_responses(&got, false).len() < n {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => panic!("read: {e} after {} bytes", got.len()),
        }
    }
    got
}

#[test]
fn https_serves_small_and_large_files_on_one_connection() {
    let pki = pki();
    let (s, addr) = https_server(&pki);
    let mut c = client(&pki, addr);
    c.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    c.write_all(b"GET /httptest/large.html HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    c.write_all(b"GET /httptest/large.html HTTP/1.1\r\nHost: localhost\r\nRange: bytes=100-199\r\nConnection: close\r\n\r\n").unwrap();
    let got = read_responses(&mut c, 3);
    let r = parse_responses(&got, false);
    assert_eq!(r.len(), 3);
    assert_eq!(c.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
    let small = std::fs::read(repo_root().join("httptest/test.html")).unwrap();
    let large = std::fs::read(repo_root().join("httptest/large.html")).unwrap();
    assert_eq!((r[0].status, &r[0].body), (200, &small));
    assert_eq!(r[1].status, 200);
    assert!(r[1].body == large, "the large page arrives byte-exact over TLS");
    assert_eq!((r[2].status, &r[2].body[..]), (206, &large[100..200]));
    assert!(r[2].connection_is("close"));
    // The close is a TLS one: close_notify, then the end (rustls calls an
    // end without it an error).
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).expect("close_notify before the end");
    assert!(rest.is_empty());
    let stats = s.stop();
    assert_eq!(stats.requests, 3);
}

#[test]
fn plain_http_on_the_https_port_is_closed_and_the_server_serves_on() {
    let pki = pki();
    let (s, addr) = https_server(&pki);
    let mut plain = TcpStream::connect(addr).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut rest = Vec::new();
    // A TLS alert at most, then the end: never a hang.
    let _ = plain.read_to_end(&mut rest);
    assert!(!rest.starts_with(b"HTTP/1.1 200"), "{rest:?}");
    let mut c = client(&pki, addr);
    c.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let r = parse_responses(&read_responses(&mut c, 1), false);
    assert_eq!(r[0].status, 200);
    // The plain listener serves beside it.
    let p = crate::support::get(s.addr, "/httptest/test.html");
    assert_eq!(p.status, 200);
}

#[test]
fn a_client_hello_one_byte_at_a_time_completes() {
    let pki = pki();
    let (_s, addr) = https_server(&pki);
    // A client whose socket hands the server one byte per write.
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let mut conn =
        ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    for b in &hello {
        sock.write_all(std::slice::from_ref(b)).unwrap();
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut stream = rustls::Stream::new(&mut conn, &mut sock);
    stream
        .write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let r = parse_responses(&read_responses(&mut stream, 1), false);
    assert_eq!(r[0].status, 200);
}

#[test]
fn plain_requests_are_redirected_to_https_by_their_host_and_https_answers_carry_hsts() {
    let pki = pki();
    let https: SocketAddr = "127.0.0.1:0".parse().unwrap();
    // Bind first, so the redirect can name the real port.
    let l = oserver_core::bind_listener(https, false).unwrap();
    let port = l.local_addr().unwrap().port();
    let b = ServerBuilder::new()
        .root(repo_root())
        .https_listener(l, Arc::clone(&pki.server))
        .redirect_https(Some(port))
        .hsts(Some(600));
    let s = Running::start(b);
    let table: &[(&[u8], u16, Option<String>)] = &[
        (
            b"GET /httptest/test.html?a=1 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
            308,
            Some(format!("https://localhost:{port}/httptest/test.html?a=1")),
        ),
        // The target's host plays no part; the Host header's does.
        (
            b"POST http://evil.com/x HTTP/1.1\r\nHost: good.example\r\nContent-Length: 0\r\n\r\n",
            308,
            Some(format!("https://good.example:{port}/x")),
        ),
        (
            b"GET //evil.com/x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
            308,
            Some(format!("https://[::1]:{port}//evil.com/x")),
        ),
        (b"GET /x HTTP/1.1\r\nHost: evil.com/x\r\n\r\n", 400, None),
        (b"GET /x HTTP/1.0\r\n\r\n", 400, None),
    ];
    for (req, status, location) in table {
        let r = crate::support::first_response(&crate::support::raw(s.addr, req));
        let what = String::from_utf8_lossy(req);
        assert_eq!(r.status, *status, "{what}");
        assert_eq!(r.header("location").map(str::to_string), *location, "{what}");
        assert_eq!(r.header("strict-transport-security"), None, "no HSTS over plain HTTP: {what}");
    }
    let mut c = client(&pki, s.https.unwrap());
    c.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\n\r\nGET /nope HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let r = parse_responses(&read_responses(&mut c, 2), false);
    assert_eq!((r[0].status, r[1].status), (200, 404));
    for r in &r {
        assert_eq!(r.header("strict-transport-security"), Some("max-age=600"));
    }
}

/// Two servers (as two workers would be) with configurations sharing one
/// `TicketKeys`: a ticket from the first resumes on the second. With keys of
/// their own, it does not.
#[test]
fn a_ticket_from_one_server_resumes_on_another_sharing_the_keys() {
    use oserver_core::rustls::HandshakeKind;
    use oserver_core::TicketKeys;

    let pki = pki();
    let with_keys = |keys: &TicketKeys| {
        let mut config = (*pki.server).clone();
        config.ticketer = keys.ticketer();
        Arc::new(config)
    };
    let shared = TicketKeys::new().unwrap();
    let start = |config: Arc<ServerConfig>| {
        Running::start(ServerBuilder::new().root(repo_root()).https("127.0.0.1:0".parse().unwrap(), config))
    };
    let (a, b) = (start(with_keys(&shared)), start(with_keys(&shared)));
    let c = start(with_keys(&TicketKeys::new().unwrap()));

    // One client configuration, so one session cache, for every connection.
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let config = Arc::new(ClientConfig::builder().with_root_certificates(roots).with_no_client_auth());
    let fetch = |addr: SocketAddr| {
        let conn =
            ClientConnection::new(Arc::clone(&config), ServerName::try_from("localhost").unwrap()).unwrap();
        let sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut s = StreamOwned::new(conn, sock);
        s.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert_eq!(parse_responses(&got, false)[0].status, 200);
        s.conn.handshake_kind()
    };
    assert_eq!(fetch(a.https.unwrap()), Some(HandshakeKind::Full));
    assert_eq!(fetch(b.https.unwrap()), Some(HandshakeKind::Resumed), "a's ticket opens on b");
    assert_eq!(fetch(c.https.unwrap()), Some(HandshakeKind::Full), "c has keys of its own");
}

/// Garbage on the HTTPS port is closed at once; a handshake that stops
/// half-way is closed by the header timeout, which covers the handshake.
#[test]
fn garbage_and_truncated_handshakes_are_closed_promptly() {
    use std::time::Instant;

    let pki = pki();
    let b = ServerBuilder::new()
        .root(repo_root())
        .header_timeout(Duration::from_secs(1))
        .https("127.0.0.1:0".parse().unwrap(), Arc::clone(&pki.server));
    let s = Running::start(b);
    let addr = s.https.unwrap();

    let mut garbage = TcpStream::connect(addr).unwrap();
    garbage.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    garbage.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x00, 0x13, 0x37]).unwrap();
    garbage.write_all(&[0x42; 64]).unwrap();
    let mut rest = Vec::new();
    let _ = garbage.read_to_end(&mut rest);
    assert!(t0.elapsed() < Duration::from_secs(1), "garbage took {:?} to be closed", t0.elapsed());

    // Half a ClientHello, then silence.
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let config = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let mut conn =
        ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap()).unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    let mut truncated = TcpStream::connect(addr).unwrap();
    truncated.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    truncated.write_all(&hello[..hello.len() / 2]).unwrap();
    let mut rest = Vec::new();
    let _ = truncated.read_to_end(&mut rest);
    let took = t0.elapsed();
    // The wheel has one-second slots: due at 1 s, fired by 2 s.
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "closed after {took:?}");
    assert!(rest.is_empty(), "nothing is sent to a half ClientHello: {rest:?}");
}

/// Two servers, each one event loop with an HTTPS listener, joined by a
/// handoff as in `handoff_moves_an_idle_connection_to_the_loop_on_the_clients_cpu`:
/// a TLS connection to A moves to B with its record keys, over TLS 1.3 and
/// TLS 1.2, and B serves the rest of it, through its close_notify. With
/// `enable_secret_extraction` off, the connection stays on A.
#[test]
fn a_tls_connection_moves_with_its_keys_when_the_configuration_allows() {
    use std::os::unix::net::UnixDatagram;

    use crate::support::{allowed_cpus, pin_this_thread};

    let pki = pki();
    let want = std::fs::read(repo_root().join("httptest/test.html")).unwrap();
    let cpu = allowed_cpus()[0];
    for (extract, version) in
        [(true, &rustls::version::TLS13), (true, &rustls::version::TLS12), (false, &rustls::version::TLS13)]
    {
        let mut config = (*pki.server).clone();
        config.enable_secret_extraction = extract;
        let config = Arc::new(config);
        let (a_in, a_tx) = UnixDatagram::pair().unwrap();
        let (b_in, b_tx) = UnixDatagram::pair().unwrap();
        let elsewhere = cpu + 1000;
        let start = |h| {
            Running::start(
                ServerBuilder::new()
                    .root(repo_root())
                    .https("127.0.0.1:0".parse().unwrap(), Arc::clone(&config))
                    .handoff(h),
            )
        };
        let a = start(oserver_core::Handoff::new(elsewhere, a_in, vec![(cpu, b_tx)]).unwrap());
        let b = start(oserver_core::Handoff::new(cpu, b_in, vec![(elsewhere, a_tx)]).unwrap());
        let mut roots = RootCertStore::empty();
        roots.add(pki.ca.clone()).unwrap();
        let client = ClientConfig::builder_with_protocol_versions(&[version])
            .with_root_certificates(roots)
            .with_no_client_auth();
        let addr = a.https.unwrap();
        let (bodies, tail) = std::thread::spawn(move || {
            pin_this_thread(cpu);
            let mut c = connect_with(client, addr);
            let mut bodies = Vec::new();
            for i in 0..5 {
                let close = if i == 4 { "Connection: close\r\n" } else { "" };
                let req = format!("GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\n{close}\r\n");
                c.write_all(req.as_bytes()).unwrap();
                if i < 4 {
                    bodies.push(parse_responses(&read_responses(&mut c, 1), false).remove(0).body);
                }
            }
            // The last answer, then the end: rustls calls an end without
            // close_notify an error.
            let mut tail = Vec::new();
            let end = c.read_to_end(&mut tail).map(|_| ());
            (bodies, (tail, end))
        })
        .join()
        .unwrap();
        let (tail, end) = tail;
        assert!(bodies.iter().all(|got| *got == want), "{version:?}");
        assert_eq!(parse_responses(&tail, false)[0].body, want, "{version:?}");
        end.unwrap_or_else(|e| panic!("{version:?}: the end was not a clean close_notify: {e}"));
        let (sa, sb) = (a.stop(), b.stop());
        if extract {
            assert_eq!((sa.handed_off, sb.taken), (1, 1), "{version:?}: A {sa:?}, B {sb:?}");
            assert_eq!(sa.requests + sb.requests, 5);
            assert!(sb.requests >= 3, "B served the rest: {sb:?}");
        } else {
            assert_eq!((sa.handed_off, sb.taken, sa.requests), (0, 0, 5), "stays on A: {sa:?}");
        }
    }
}

/// When the other loop's inbox is full, a TLS connection whose keys were
/// already taken from rustls stays on this loop, carried on by our own
/// record layer: every answer arrives, and so does the close_notify.
#[test]
fn a_tls_connection_that_cannot_be_handed_over_stays_and_is_served() {
    use std::os::unix::net::UnixDatagram;

    use crate::support::{allowed_cpus, pin_this_thread};

    let pki = pki();
    let want = std::fs::read(repo_root().join("httptest/test.html")).unwrap();
    let cpu = allowed_cpus()[0];
    let mut config = (*pki.server).clone();
    config.enable_secret_extraction = true;
    let (a_in, _a_tx) = UnixDatagram::pair().unwrap();
    // The other loop's inbox, never read, filled to the brim.
    let (_b_in, b_tx) = UnixDatagram::pair().unwrap();
    let filler = b_tx.try_clone().unwrap();
    filler.set_nonblocking(true).unwrap();
    while filler.send(b"x").is_ok() {}
    let a = Running::start(
        ServerBuilder::new()
            .root(repo_root())
            .https("127.0.0.1:0".parse().unwrap(), Arc::new(config))
            .handoff(oserver_core::Handoff::new(cpu + 1000, a_in, vec![(cpu, b_tx)]).unwrap()),
    );
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let client = ClientConfig::builder().with_root_certificates(roots).with_no_client_auth();
    let addr = a.https.unwrap();
    let (bodies, end) = std::thread::spawn(move || {
        pin_this_thread(cpu);
        let mut c = connect_with(client, addr);
        let mut bodies = Vec::new();
        for _ in 0..8 {
            c.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
            bodies.push(parse_responses(&read_responses(&mut c, 1), false).remove(0).body);
        }
        c.write_all(b"GET /httptest/test.html HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut tail = Vec::new();
        let end = c.read_to_end(&mut tail).map(|_| parse_responses(&tail, false).remove(0).body);
        (bodies, end)
    })
    .join()
    .unwrap();
    assert!(bodies.iter().all(|got| *got == want));
    assert_eq!(end.expect("a clean close_notify"), want);
    let s = a.stop();
    assert_eq!((s.handed_off, s.taken, s.requests), (0, 0, 9), "{s:?}");
}
