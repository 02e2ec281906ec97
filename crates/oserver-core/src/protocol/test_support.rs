//! What the HTTP/1 and HTTP/2 connection tests share: a site on a scratch
//! directory with its loop context, a real loopback TCP pair, and a client
//! write that returns once the bytes have arrived.

use std::io::Write;
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
