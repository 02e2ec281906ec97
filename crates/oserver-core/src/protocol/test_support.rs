//! What the HTTP/1 and HTTP/2 connection tests share: a site on a scratch
//! directory with its loop context, a real loopback TCP pair, and a client
//! write that returns once the bytes have arrived.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::files::fs::Root;
use crate::protocol::Ctx;
use crate::respond::Site;
use crate::settings::Settings;
use crate::transport::wait_readable;

/// A scratch directory named after `tag`, holding `a.txt` ("hello"), a
/// directory `d/`, and `big.bin`: `big` bytes, sparse (no disk), larger than
/// any socket buffer or window.
pub(crate) fn fixture_dir(tag: &str, big: u64) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("oserver-{tag}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(dir.join("d")).unwrap();
    std::fs::write(dir.join("a.txt"), b"hello").unwrap();
    std::fs::File::create(dir.join("big.bin")).unwrap().set_len(big).unwrap();
    dir
}

/// A loop context serving `dir` with `settings`.
pub(crate) fn context(dir: &std::path::Path, settings: &Settings) -> Ctx {
    context_with_routes(dir, settings, Vec::new())
}

/// As [`context`], with handler routes before the files.
pub(crate) fn context_with_routes(
    dir: &std::path::Path,
    settings: &Settings,
    routes: Vec<crate::respond::Route>,
) -> Ctx {
    let root = Root::new(dir, false).unwrap();
    let site = Site { settings: settings.clone(), root: Some(root), routes, pool: None };
    Ctx::new(Arc::new(site), crate::wake::Mailbox::detached()).unwrap()
}

/// The body `/stream` sends: 40 pieces of 997 bytes, from an iterator.
pub(crate) fn streamed_body() -> Vec<u8> {
    (0..40u8).flat_map(|i| vec![b'A' + i % 26; 997]).collect()
}

/// The body `/chan` sends: 8 pieces of 1,500 bytes, from another thread.
pub(crate) fn channel_body() -> Vec<u8> {
    (0..8u8).flat_map(|i| vec![b'a' + i; 1500]).collect()
}

/// Handler routes for the connection tests (GET, and POST for `/echo`):
/// `/echo` answers with the request's body, `/later` answers "late" from
/// another thread a moment later, `/stream` streams [`streamed_body`] from
/// an iterator and `/chan` [`channel_body`] from another thread.
pub(crate) fn handler_routes() -> Vec<crate::respond::Route> {
    use crate::respond::Route;
    use crate::{BodyStream, Request, Response};
    let get = || vec!["GET".to_string()];
    let echo = |req: &Request<'_>| Some(Response::new(200).body(req.body().to_vec()));
    let later = |_: &Request<'_>| {
        let (placeholder, later) = Response::later();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(1));
            later.send(Response::new(200).body("late"));
        });
        Some(placeholder)
    };
    let stream = |_: &Request<'_>| {
        let pieces = (0..40u8).map(|i| vec![b'A' + i % 26; 997]);
        Some(Response::new(200).body(BodyStream::iter(pieces)))
    };
    let chan = |_: &Request<'_>| {
        let (body, tx) = BodyStream::channel();
        std::thread::spawn(move || {
            for i in 0..8u8 {
                if tx.send(vec![b'a' + i; 1500]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_micros(300));
            }
        });
        Some(Response::new(200).body(body))
    };
    vec![
        Route::for_methods(get(), "/chan".into(), Box::new(chan)),
        Route::for_methods(vec!["GET".into(), "POST".into()], "/echo".into(), Box::new(echo)),
        Route::for_methods(get(), "/later".into(), Box::new(later)),
        Route::for_methods(get(), "/stream".into(), Box::new(stream)),
    ]
}

/// A connected loopback pair: the server's non-blocking socket (with
/// TCP_NODELAY, as accepted sockets inherit from the listener: without it
/// Nagle holds a second small response until the first is acked), its
/// peer's address, and the non-blocking client.
pub(crate) fn loopback() -> (TcpStream, SocketAddr, std::net::TcpStream) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (sock, peer) = l.accept().unwrap();
    sock.set_nonblocking(true).unwrap();
    sock.set_nodelay(true).unwrap();
    client.set_nonblocking(true).unwrap();
    (TcpStream::from_std(sock), peer, client)
}

/// The client writes `bytes`; returns once the server socket `fd` holds at
/// least that many unread bytes (loopback delivers in the background: a
/// second write could otherwise land after the connection read the first
/// and found the socket empty). At most 2 s.
pub(crate) fn send_all(client: &mut std::net::TcpStream, fd: RawFd, bytes: &[u8]) {
    if bytes.is_empty() {
        return; // nothing to wait for
    }
    client.set_nonblocking(false).unwrap();
    client.write_all(bytes).unwrap();
    client.set_nonblocking(true).unwrap();
    wait_readable(fd);
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if crate::testing::unread(fd) >= bytes.len() || Instant::now() > deadline {
            return;
        }
        std::thread::yield_now();
    }
}

/// Who protects a TLS connection's records on the server's side.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Protect {
    /// rustls, which made the handshake.
    Rustls,
    /// Our record layer, after the keys moved as a handoff moves them
    /// (taken from rustls, encoded, decoded).
    Moved,
}

/// The server's TLS transport on `sock` past its handshake with a rustls
/// client on `client` (TLS 1.2 when `tls12`, else 1.3, offering `alpn`),
/// and that client. With [`Protect::Moved`] the connection then carries
/// on as one that arrived from another loop.
pub(crate) fn tls_pair(
    sock: TcpStream,
    client: &mut std::net::TcpStream,
    tls12: bool,
    alpn: &[u8],
    protect: Protect,
) -> (crate::transport::Transport, TlsClient) {
    use crate::transport::{Keys, Moving, Recv, Transport};
    use std::os::fd::AsRawFd;
    let (config, ca) = crate::testing::tls_server_config();
    let mut io = Transport::new(sock, Some(&config)).unwrap();
    let mut tls = TlsClient::new(&ca, tls12, alpn);
    for _ in 0..10 {
        let wire = tls.seal(b"");
        if !wire.is_empty() {
            send_all(client, io.fd(), &wire);
            io.ready(true, false);
        }
        // The server's side answers the handshake as it reads.
        assert_eq!(io.recv(&mut [0u8; 64]).unwrap(), Recv::Blocked, "in the handshake");
        if !tls.is_handshaking() && wire.is_empty() {
            break;
        }
        if tls.is_handshaking() {
            wait_readable(client.as_raw_fd());
            let mut plain = Vec::new();
            assert!(!tls.read(client, &mut plain) && plain.is_empty(), "in the handshake");
        }
    }
    assert!(!tls.is_handshaking(), "the handshake did not finish");
    if let Protect::Moved = protect {
        let moving = io.into_moving().expect("movable after the handshake");
        let mut encoded = [0u8; Keys::LEN];
        moving.keys.as_ref().expect("keys").encode(&mut encoded);
        io = Transport::arrived(Moving { sock: moving.sock, keys: Keys::decode(&encoded) });
    }
    (io, tls)
}

/// The client's end of TLS in the connection tests: rustls over the test's
/// socket, which stays the harness's own (the bytes on it are records).
pub(crate) struct TlsClient {
    conn: rustls::ClientConnection,
}

impl TlsClient {
    /// A client that trusts `ca`, offering ALPN `alpn`, and TLS 1.2 only
    /// when `tls12` (1.3 otherwise).
    pub(crate) fn new(
        ca: &rustls::pki_types::CertificateDer<'static>,
        tls12: bool,
        alpn: &[u8],
    ) -> TlsClient {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone()).unwrap();
        let version = if tls12 { &rustls::version::TLS12 } else { &rustls::version::TLS13 };
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![alpn.to_vec()];
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        TlsClient { conn: rustls::ClientConnection::new(Arc::new(config), name).unwrap() }
    }

    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Start a TLS 1.3 key update: the records after it use new keys.
    pub(crate) fn update_keys(&mut self) {
        self.conn.refresh_traffic_keys().unwrap();
    }

    /// Seal `plain` (none: only what the handshake has to say) into the
    /// records to write.
    pub(crate) fn seal(&mut self, plain: &[u8]) -> Vec<u8> {
        let (mut wire, mut at) = (Vec::new(), 0);
        loop {
            // rustls takes up to its buffer's limit at a time.
            at += io::Write::write(&mut self.conn.writer(), &plain[at..]).unwrap();
            while self.conn.wants_write() {
                self.conn.write_tls(&mut wire).unwrap();
            }
            if at == plain.len() {
                return wire;
            }
        }
    }

    /// Read what `sock` holds now, adding the plaintext to `out`. True once
    /// the stream ended (close_notify, or the TCP end without one). A
    /// record the server got wrong fails the test.
    pub(crate) fn read(&mut self, sock: &mut std::net::TcpStream, out: &mut Vec<u8>) -> bool {
        let mut buf = [0u8; 16384];
        loop {
            let tcp_end = match self.conn.read_tls(sock) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => panic!("client read: {e}"),
            };
            self.conn.process_new_packets().expect("the server's records");
            loop {
                match io::Read::read(&mut self.conn.reader(), &mut buf) {
                    Ok(0) => return true,
                    Ok(n) => out.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return true,
                    Err(e) => panic!("client read: {e}"),
                }
            }
            if tcp_end {
                return true;
            }
        }
    }
}
