//! The HTTP/1 connection on its own: no event loop, no process. A real
//! loopback TCP pair stands in for the network; time is passed in, so
//! deadlines are checked exactly.

use std::io::{Read, Write};
use std::path::PathBuf;

use super::*;
use crate::protocol::test_support::{context, fixture_dir, loopback, send_all, tls_pair, Protect, TlsClient};
use crate::protocol::Ctx;
use crate::settings::AccessLog;
use crate::testing::{set_buffer, unread, xorshift};
use crate::transport::wait_readable;

mod any_requests;

struct Harness {
    cx: Ctx,
    conn: Conn,
    client: std::net::TcpStream,
    now: Instant,
    settings: Settings,
    dir: PathBuf,
    /// Bytes the client has read and not yet split into responses.
    got: Vec<u8>,
    /// The client's TLS, when the connection is over TLS: the socket then
    /// carries records, and `send` and `read_client` seal and open them.
    tls: Option<TlsClient>,
    /// When set, the connection moves as a handoff moves it, at random
    /// (this generator's) among the times `idle` says it may.
    mover: Option<u64>,
    /// Times it moved.
    moves: usize,
    /// It ended (closed, failed or became HTTP/2's): no more drives.
    ended: bool,
    /// Records sealed and not yet written: the tail `send_holding_back`
    /// kept, so that a turn can end in the middle of a record.
    held: Vec<u8>,
    /// When set, the connection's writes are gathered as an event loop with
    /// io_uring gathers them, and sent after each drive (see `gather`).
    outbox: Option<crate::transport::Outbox>,
    /// Set with `outbox`: its reads are made ahead of each drive, in a
    /// batch of its own.
    intake: Option<crate::transport::Intake>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A parsed response: status, headers (lower-case names), body.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn harness_with(change: impl FnOnce(&mut Settings)) -> Harness {
    harness_over(change, None)
}

/// As [`harness`], over TLS (1.2 when `tls12`, else 1.3), past its
/// handshake: a connection accepted here, or, with [`Protect::Moved`], one
/// handed over from another loop with its keys.
fn tls_harness(tls12: bool, protect: Protect) -> Harness {
    harness_over(|_| {}, Some((tls12, protect)))
}

/// A connection with `change`d settings, over plain TCP or, when `tls`
/// says so, over TLS (see [`tls_harness`]).
fn harness_over(change: impl FnOnce(&mut Settings), tls: Option<(bool, Protect)>) -> Harness {
    // big.bin: big enough that a client that does not read blocks the sender.
    let dir = fixture_dir("conn", 64 << 20);
    let mut settings = Settings::default();
    change(&mut settings);
    if let Some(AccessLog::File(p)) = &mut settings.access_log {
        *p = dir.join(&*p);
    }
    let cx = context(&dir, &settings);
    let (sock, peer, mut client) = loopback();
    let now = Instant::now();
    let (conn, tls) = match tls {
        None => (Conn::new(Transport::new(sock, None).unwrap(), peer, now, &settings), None),
        Some((tls12, protect)) => {
            let (io, tls) = tls_pair(sock, &mut client, tls12, b"http/1.1", protect);
            let conn = match protect {
                Protect::Rustls => Conn::new(io, peer, now, &settings),
                Protect::Moved => Conn::handed_over(io, peer, now, &settings, 0),
            };
            (conn, Some(tls))
        }
    };
    Harness {
        cx,
        conn,
        client,
        now,
        settings,
        dir,
        got: Vec::new(),
        tls,
        mover: None,
        moves: 0,
        ended: false,
        held: Vec::new(),
        outbox: None,
        intake: None,
    }
}

fn harness() -> Harness {
    harness_with(|_| {})
}

impl Harness {
    /// From now on the connection runs as on an event loop with io_uring:
    /// its writes wait in a batch, sent after each drive as the loop sends
    /// it at the end of a turn, with what a socket did not take handed
    /// back; and each drive first takes what a read made ahead for it got,
    /// as the loop reads for the connections an event woke.
    fn gather(&mut self) {
        let outbox = crate::transport::Outbox::new().expect("io_uring");
        let intake = crate::transport::Intake::new().expect("io_uring");
        self.conn.io.gather(&outbox);
        self.conn.io.read_from(&intake);
        self.outbox = Some(outbox);
        self.intake = Some(intake);
    }

    /// The client's receive buffer stays at 64 KiB (set before it grows by
    /// itself), so a client that reads late soon fills the socket; and no
    /// Nagle, whose wait for an ACK would slow each request it sends.
    fn small_client_buffer(&mut self) {
        set_buffer(std::os::fd::AsRawFd::as_raw_fd(&self.client), libc::SO_RCVBUF, 65536);
        self.client.set_nodelay(true).unwrap();
    }

    /// The client sends `bytes` (sealed in records, over TLS); the
    /// connection is told it is readable.
    fn send(&mut self, bytes: &[u8]) {
        self.send_holding_back(bytes, 0);
    }

    /// As [`send`](Harness::send), but over TLS the last `keep` bytes of
    /// the records (after what an earlier call kept) wait for the next
    /// call: records arrive cut anywhere.
    fn send_holding_back(&mut self, bytes: &[u8], keep: usize) {
        match &mut self.tls {
            None => send_all(&mut self.client, self.conn.fd(), bytes),
            Some(tls) => {
                let mut wire = std::mem::take(&mut self.held);
                wire.extend(tls.seal(bytes));
                self.held = wire.split_off(wire.len() - keep.min(wire.len()));
                send_all(&mut self.client, self.conn.fd(), &wire);
            }
        }
        self.conn.ready(true, false);
    }

    /// If the connection is idle as the event loop sees it, and the
    /// generator says so, move it as a handoff does: its transport out of
    /// the connection, TLS keys encoded and decoded, and a connection made
    /// anew around what arrives.
    fn maybe_move(&mut self) {
        use crate::transport::{Keys, Moving};
        let Some(state) = self.mover.as_mut() else { return };
        let Some(responses) = self.conn.idle() else { return };
        if xorshift(state) % 2 == 0 {
            return;
        }
        let (stand_in, peer, _) = loopback();
        let stand_in = Conn::new(Transport::new(stand_in, None).unwrap(), peer, self.now, &self.settings);
        let conn = std::mem::replace(&mut self.conn, stand_in);
        let peer = conn.peer();
        let moving = conn.into_transport().into_moving().expect("idle, so it can move");
        let keys = moving.keys.map(|k| {
            let mut encoded = [0u8; Keys::LEN];
            k.encode(&mut encoded);
            Keys::decode(&encoded).expect("keys decode")
        });
        let mut io = Transport::arrived(Moving { sock: moving.sock, keys });
        if let Some(o) = &self.outbox {
            io.gather(o);
        }
        if let Some(i) = &self.intake {
            io.read_from(i);
        }
        self.conn = Conn::handed_over(io, peer, self.now, &self.settings, responses);
        self.moves += 1;
    }

    /// What the client can read now, into `out` (opened, over TLS). True
    /// once the stream has ended.
    fn read_client(&mut self, out: &mut Vec<u8>) -> bool {
        if let Some(tls) = &mut self.tls {
            return tls.read(&mut self.client, out);
        }
        let mut buf = [0u8; 65536];
        loop {
            match self.client.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) => panic!("client read: {e}"),
            }
        }
    }

    fn drive(&mut self) -> Step {
        let step = self.try_drive().unwrap();
        if step == Step::Close {
            // As the event loop's close would: out goes what MSG_MORE held.
            self.conn.io.shutdown_write();
        }
        step
    }

    fn try_drive(&mut self) -> io::Result<Step> {
        // The loop's batch of reads, for this connection alone.
        if let Some(i) = &self.intake {
            self.conn.io.read_ahead();
            i.submit();
        }
        let Ctx { h1, exchange, draining, .. } = &mut self.cx;
        let step = self.conn.drive(h1, exchange, *draining, self.now);
        if let Some(i) = &self.intake {
            self.conn.io.keep();
            i.finish();
        }
        // The end of the loop's turn.
        if let Some(o) = &self.outbox {
            let mut unsent = Vec::new();
            o.send(&mut unsent);
            for (_, u) in unsent {
                match u {
                    crate::transport::Unsent::Rest(rest) => self.conn.io.unsent(rest),
                    crate::transport::Unsent::Failed(e) => return Err(e),
                }
            }
        }
        step
    }

    /// Everything the client can read now, split into whole responses.
    fn responses(&mut self) -> Vec<Resp> {
        self.responses_to(&[])
    }

    /// As `responses`, where the responses at the positions in `head` answer
    /// HEAD requests (no body, whatever Content-Length says).
    fn responses_to(&mut self, head_at: &[usize]) -> Vec<Resp> {
        let mut got = std::mem::take(&mut self.got);
        self.read_client(&mut got);
        self.got = got;
        let mut out = Vec::new();
        while let Some(end) = self.got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8(self.got[..end].to_vec()).unwrap();
            let mut lines = head.split("\r\n");
            let status = lines.next().unwrap()[9..12].parse().unwrap();
            let headers: Vec<(String, String)> = lines
                .map(|l| {
                    let (n, v) = l.split_once(": ").unwrap();
                    (n.to_ascii_lowercase(), v.to_string())
                })
                .collect();
            let len: usize = headers.iter().find(|(n, _)| n == "content-length").unwrap().1.parse().unwrap();
            let body_len = if status == 304 || head_at.contains(&out.len()) { 0 } else { len };
            if self.got.len() < end + 4 + body_len {
                break;
            }
            let body = self.got[end + 4..end + 4 + body_len].to_vec();
            self.got.drain(..end + 4 + body_len);
            out.push(Resp { status, headers, body });
        }
        out
    }

    fn state_name(&self) -> &'static str {
        match self.conn.state {
            State::Idle { fresh: true } => "idle (fresh)",
            State::Idle { fresh: false } => "idle",
            State::Reading { .. } => "reading",
            State::Writing { .. } => "writing",
            State::Closing => "closing",
            State::ToHttp2 { .. } => "to HTTP/2",
            State::Awaiting(_) => "awaiting",
        }
    }
}

const GET_A: &[u8] = b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut h = harness();
    h.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\nHEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /d HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.drive(), Step::Wait);
    let r = h.responses_to(&[2]);
    let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![200, 404, 200, 301]);
    assert_eq!(r[0].body, b"hello");
    assert!(r[2].body.is_empty(), "HEAD has no body");
    assert_eq!(r[2].header("content-length"), Some("5"));
    assert_eq!(r[3].header("location"), Some("/d/"));
    // HTTP/1.1 keeps the connection without saying so.
    assert!(r.iter().all(|r| r.header("connection").is_none()));
    assert_eq!(h.state_name(), "idle");
    assert!(h.conn.pending.is_none());
    assert_eq!(h.conn.idle(), Some(4));
}

/// Writes gathered for the loop's batch: a client that reads nothing fills
/// its socket, and the batch hands a connection back what did not go. Its
/// next pipelined answers wait behind those bytes, in the Writing state,
/// and every answer reaches the client whole and in order once it reads.
#[test]
fn pipelined_answers_wait_behind_what_the_batch_handed_back() {
    // No limit on requests per connection: it would close at 1,000.
    let mut h = harness_with(|s| s.keepalive_requests = 0);
    h.gather();
    // Small buffers on both sides.
    set_buffer(h.conn.fd(), libc::SO_SNDBUF, 4096);
    h.small_client_buffer();
    // Answered 200, 404, 200: an answer out of order shows.
    let three = [GET_A, b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", GET_A].concat();
    let mut asked = 0;
    // Three requests a turn, each turn's answers one run of the batch,
    // until the socket hands one back (a few hundred answers).
    while !h.conn.io.wants_write() {
        assert!(asked < 30_000, "the socket took {asked} answers");
        h.send(&three);
        asked += 3;
        assert_eq!(drive_to_wait(&mut h), Step::Wait);
    }
    assert_eq!(h.state_name(), "idle");
    // Pipelined requests while bytes wait: the first answer waits behind
    // them, and the next requests, read, wait for it.
    h.send(&three);
    asked += 3;
    assert_eq!(drive_to_wait(&mut h), Step::Wait);
    assert_eq!(h.state_name(), "writing");
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while got < asked {
        assert!(Instant::now() < deadline, "{got} answers of {asked}");
        for r in h.responses() {
            if got % 3 == 1 {
                assert_eq!(r.status, 404, "answer {got}");
            } else {
                assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]), "answer {got}");
            }
            got += 1;
        }
        drive_to_wait(&mut h);
    }
    assert_eq!(got, asked);
    assert_eq!(h.state_name(), "idle");
    assert!(!h.conn.io.wants_write());
}

#[test]
fn a_head_in_many_pieces_is_answered_once_and_its_timeout_is_not_extended() {
    let mut h = harness();
    let opened = h.now;
    for (i, b) in GET_A.iter().enumerate() {
        h.now = opened + Duration::from_millis(10 * i as u64);
        h.send(&[*b]);
        assert_eq!(h.drive(), Step::Wait);
        if i + 1 < GET_A.len() {
            assert!(h.responses().is_empty(), "answered after {i} bytes");
            assert_eq!(h.state_name(), "reading");
            // The first request's header timeout runs from accept.
            assert_eq!(h.conn.deadline(), opened + h.settings.header_timeout);
        }
    }
    let r = h.responses();
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].status, &r[0].body[..]), (200, &b"hello"[..]));

    // The next request on the kept-alive connection: its header timeout runs
    // from its first byte, and later bytes do not move it.
    let first = h.now + Duration::from_secs(3);
    h.now = first;
    h.send(b"GET /a.txt HT");
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.conn.deadline(), first + h.settings.header_timeout);
    h.now = first + Duration::from_secs(5);
    h.send(b"TP/1.1\r\nHost: x\r\n");
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.conn.deadline(), first + h.settings.header_timeout);
    h.send(b"\r\n");
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.responses().len(), 1);
}

#[test]
fn a_request_body_is_dropped_and_the_next_request_read_after_it() {
    let mut h = harness();
    // The body arrives in two pieces, the second with the next request.
    h.send(b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.conn.discard, 5);
    assert_eq!(h.conn.idle(), None, "body bytes are still owed");
    h.send(b"67890GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.drive(), Step::Wait);
    let r = h.responses();
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), vec![200, 200]);
    assert_eq!(h.conn.discard, 0);

    // A body and the next request in one piece (a POST gets 405 and the
    // connection stays usable).
    h.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nGETGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(h.drive(), Step::Wait);
    let r = h.responses();
    assert_eq!(r.iter().map(|r| r.status).collect::<Vec<_>>(), vec![405, 200]);
    assert_eq!(r[0].header("allow"), Some("GET, HEAD"));
}

#[test]
fn keep_alive_and_close_decisions() {
    // The Connection field with `keep_alive_field` off (the library's
    // default) and on (the `oserver` command's).
    type Field = [Option<&'static str>; 2];
    // HTTP/1.1 kept: said only when the setting asks.
    const KEPT: Field = [None, Some("keep-alive")];
    // HTTP/1.0 kept: it assumes a close, so it is always told.
    const KEPT_10: Field = [Some("keep-alive"); 2];
    const CLOSE: Field = [Some("close"); 2];
    // (request, settings change, draining, Connection field, state after)
    type Change = fn(&mut Settings);
    type Row<'a> = (&'a [u8], Change, bool, Field, &'a str);
    let keep: Change = |_| {};
    let table: &[Row] = &[
        (GET_A, keep, false, KEPT, "idle"),
        (b"GET /a.txt HTTP/1.0\r\n\r\n", keep, false, CLOSE, "closed"),
        (b"GET /a.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", keep, false, KEPT_10, "idle"),
        (b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", keep, false, CLOSE, "closed"),
        // An error the client asked to close on: drain what it still sends.
        (b"GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", keep, false, CLOSE, "closing"),
        // A chunked body is decoded and dropped: the connection goes on.
        (
            b"GET /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            keep,
            false,
            KEPT,
            "idle",
        ),
        (b"GET /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", keep, false, CLOSE, "closing"),
        (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", keep, false, CLOSE, "closing"),
        (b"GET /../x HTTP/1.1\r\nHost: x\r\n\r\n", keep, false, CLOSE, "closing"),
        (GET_A, |s| s.keepalive_timeout = Duration::ZERO, false, CLOSE, "closed"),
        (GET_A, |s| s.keepalive_requests = 1, false, CLOSE, "closed"),
        (GET_A, keep, true, CLOSE, "closed"),
        // A request followed by unread input, closing: linger.
        (b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /", keep, false, CLOSE, "closing"),
    ];
    for (req, change, draining, field, after) in table {
        for (on, connection) in [false, true].into_iter().zip(field) {
            let mut h = harness_with(|s| {
                change(s);
                s.keep_alive_field = on;
            });
            h.cx.draining = *draining;
            h.send(req);
            let step = h.drive();
            let r = h.responses();
            let what = format!("{} (keep_alive_field {on})", String::from_utf8_lossy(req));
            assert_eq!(r.len(), 1, "{what}");
            assert_eq!(r[0].header("connection"), *connection, "{what}");
            let state = if step == Step::Close { "closed" } else { h.state_name() };
            assert_eq!(state, *after, "{what}");
        }
    }
}

#[test]
fn the_last_allowed_response_says_close() {
    for (on, kept) in [(false, None), (true, Some("keep-alive"))] {
        let mut h = harness_with(|s| {
            s.keepalive_requests = 3;
            s.keep_alive_field = on;
        });
        h.send(&GET_A.repeat(2));
        assert_eq!(h.drive(), Step::Wait);
        h.send(GET_A);
        assert_eq!(h.drive(), Step::Close);
        let r = h.responses();
        let conn: Vec<_> = r.iter().map(|r| r.header("connection")).collect();
        assert_eq!(conn, vec![kept, kept, Some("close")], "keep_alive_field {on}");
    }
}

#[test]
fn each_state_has_its_deadline() {
    let mut h = harness();
    let s = h.settings.clone();
    let t0 = h.now;
    assert_eq!(h.conn.deadline(), t0 + s.header_timeout, "fresh: header timeout from accept");

    h.now = t0 + Duration::from_secs(1);
    h.send(GET_A);
    h.drive();
    assert_eq!(h.state_name(), "idle");
    assert_eq!(h.conn.deadline(), h.now + s.keepalive_timeout, "idle: keep-alive timeout");
    h.responses();

    // A download the client does not read blocks in Writing.
    h.now = t0 + Duration::from_secs(2);
    h.send(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n");
    // Each turn sends at most SEND_TURN; the socket buffers fill after a few.
    let mut turns = 0;
    while h.drive() == Step::Yield {
        turns += 1;
        assert!(turns < 100, "the client reads nothing: the socket must block");
    }
    assert_eq!(h.state_name(), "writing");
    assert!(h.conn.wants_write());
    assert_eq!(h.conn.deadline(), h.now + s.send_timeout, "writing: send timeout");
    // No progress: the deadline stays where it was.
    let stuck = h.conn.deadline();
    h.now = t0 + Duration::from_secs(4);
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.conn.deadline(), stuck);

    // A bad request: the error goes out, then the connection lingers.
    let mut h = harness();
    h.now = t0 + Duration::from_secs(7);
    h.send(b"BAD\x01\r\n\r\n");
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.state_name(), "closing");
    assert_eq!(h.conn.deadline(), h.now + LINGER, "closing: linger");
    assert_eq!(h.responses()[0].status, 400);
}

#[test]
fn one_turn_answers_a_bounded_number_of_requests() {
    let mut h = harness();
    let n = 3 * TURN_RESPONSES as usize + 5;
    h.send(&GET_A.repeat(n));
    let mut turns = 0;
    loop {
        turns += 1;
        match h.drive() {
            Step::Yield => assert!(turns < 10),
            Step::Wait => break,
            Step::Close | Step::Upgrade => panic!("closed or upgraded"),
        }
    }
    assert_eq!(turns, 4, "{n} requests, {TURN_RESPONSES} a turn");
    assert_eq!(h.responses().len(), n);
}

#[test]
fn a_closing_connection_drains_a_bounded_amount_per_turn() {
    let mut h = harness();
    h.send(b"BAD\x01\r\n\r\n");
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.state_name(), "closing");
    // The client sends more than a turn's worth; with it all waiting in the
    // socket, one turn reads TURN_READ and yields.
    socket2::SockRef::from(&*h.conn.io.socket()).set_recv_buffer_size(8 << 20).unwrap();
    let junk = vec![b'x'; 2 * TURN_READ];
    h.client.set_nonblocking(false).unwrap();
    let mut writer = h.client.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        let _ = writer.write_all(&junk);
    });
    let waited = Instant::now();
    while unread(h.conn.fd()) <= TURN_READ {
        assert!(waited.elapsed() < Duration::from_secs(5), "only {} queued", unread(h.conn.fd()));
        std::thread::sleep(Duration::from_millis(5));
    }
    h.conn.ready(true, false);
    assert_eq!(h.drive(), Step::Yield);
    while h.drive() == Step::Yield {}
    t.join().unwrap();
}

#[test]
fn refused_requests_reach_the_access_log() {
    let mut h = harness_with(|s| s.access_log = Some(AccessLog::File("access.log".into())));
    h.send(b"GET /x HTTP/1.1\r\nBad Header: y\r\n\r\n");
    assert_eq!(h.drive(), Step::Wait);
    assert_eq!(h.responses()[0].status, 400);
    h.cx.tick();
    let log = std::fs::read_to_string(h.dir.join("access.log")).unwrap();
    assert!(log.contains("\"GET /x HTTP/1.1\" 400 "), "{log}");
    assert_eq!(h.cx.requests(), 1);
}

#[test]
fn eof_mid_request_and_between_requests_closes() {
    let mut h = harness();
    h.send(b"GET /a.txt HTTP/1.1\r\n");
    assert_eq!(h.drive(), Step::Wait);
    h.client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_readable(h.conn.fd());
    h.conn.ready(true, true);
    assert_eq!(h.drive(), Step::Close);
    assert!(h.responses().is_empty());
}

#[test]
fn drain_closes_idle_connections_and_gives_fresh_ones_a_grace() {
    let mut h = harness();
    let grace = Duration::from_secs(1);
    assert!(!h.conn.drain(h.now, grace), "fresh: waits for its request");
    assert_eq!(h.conn.deadline(), h.now + grace);
    h.send(GET_A);
    h.drive();
    assert!(h.conn.drain(h.now, grace), "idle after a response: closes now");
}

#[test]
fn the_http2_preface_upgrades_even_in_pieces() {
    let mut h = harness();
    h.send(b"PRI * HT");
    assert_eq!(h.drive(), Step::Wait, "a beginning of the preface is not refused");
    assert!(h.responses().is_empty());
    h.send(b"TP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(h.drive(), Step::Upgrade);
    assert_eq!(h.state_name(), "to HTTP/2");
    // Turned off, the preface is a bad HTTP/1 request.
    let mut h = harness_with(|s| s.http2 = false);
    h.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    h.drive();
    assert_eq!(h.responses()[0].status, 400);
}

#[test]
fn a_body_expecting_100_continue_that_is_not_read_closes_the_connection() {
    let mut h = harness();
    h.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    h.drive();
    let r = h.responses();
    assert_eq!(r[0].status, 405);
    assert_eq!(r[0].header("connection"), Some("close"), "the next bytes may be the body or a request");
    // Without Expect the body is read and dropped, and the connection stays.
    let mut h = harness();
    h.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    h.drive();
    assert_eq!(h.responses()[0].header("connection"), None, "kept: HTTP/1.1 says nothing");
    h.send(&[&b"hello"[..], GET_A].concat());
    h.drive();
    assert_eq!(h.responses()[0].status, 200);
}

#[test]
fn a_chunked_body_is_dropped_and_the_next_request_served() {
    let mut h = harness();
    // The body, in two reads, hides a request that must not be answered.
    let body = b"GET /d/ HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut first = b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    first.extend_from_slice(format!("{:x};ext=1\r\n", body.len()).as_bytes());
    first.extend_from_slice(&body[..10]);
    h.send(&first);
    h.drive();
    let r = h.responses();
    assert_eq!((r.len(), r[0].status), (1, 405));
    assert_eq!(r[0].header("connection"), None, "kept: HTTP/1.1 says nothing");
    let mut rest = body[10..].to_vec();
    rest.extend_from_slice(b"\r\n0\r\nTrailer-Field: x\r\n\r\n");
    rest.extend_from_slice(GET_A);
    h.send(&rest);
    h.drive();
    let r = h.responses();
    assert_eq!(r.len(), 1, "only the request after the body");
    assert_eq!((r[0].status, &r[0].body[..]), (200, &b"hello"[..]));
    assert_eq!(h.state_name(), "idle");
}

#[test]
fn a_malformed_chunked_body_closes_the_connection() {
    let mut h = harness();
    h.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    h.drive();
    let r = h.responses();
    assert_eq!(r[0].status, 405);
    assert_eq!(r[0].header("connection"), Some("close"));
    // Malformed after the answer: the connection ends.
    let mut h = harness();
    h.send(b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    h.drive();
    assert_eq!(h.responses()[0].header("connection"), None, "kept: HTTP/1.1 says nothing");
    h.send(b"c\r\nnot-hex\r\n");
    assert_eq!(h.try_drive().map_err(|e| e.kind()), Err(io::ErrorKind::InvalidData));
}

/// Segments the socket `fd` has sent (`tcpi_segs_out` of TCP_INFO, at its
/// offset in Linux's `struct tcp_info`; libc has no glibc binding for it).
fn segs_out(fd: std::os::fd::RawFd) -> u32 {
    let mut info = [0u8; 256];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`.
    let rc = unsafe {
        libc::getsockopt(fd, libc::IPPROTO_TCP, libc::TCP_INFO, info.as_mut_ptr().cast(), &mut len)
    };
    assert_eq!(rc, 0, "TCP_INFO: {}", io::Error::last_os_error());
    assert!(len >= 140, "TCP_INFO too short: {len}");
    u32::from_ne_bytes(info[136..140].try_into().unwrap())
}

#[test]
fn a_whole_answer_before_a_close_leaves_with_the_fin_in_one_segment() {
    let close = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut h = harness();
    h.send(close);
    let before = segs_out(h.conn.fd());
    assert_eq!(h.try_drive().unwrap(), Step::Close);
    h.conn.io.shutdown_write();
    wait_readable(std::os::fd::AsRawFd::as_raw_fd(&h.client));
    let r = h.responses();
    assert_eq!((r.len(), r[0].status, r[0].header("connection")), (1, 200, Some("close")));
    assert_eq!(segs_out(h.conn.fd()) - before, 1, "answer and FIN in one segment");

    // Keep-alive: the answer leaves at once, nothing waits for a close.
    let mut h = harness();
    h.send(GET_A);
    let before = segs_out(h.conn.fd());
    h.drive();
    wait_readable(std::os::fd::AsRawFd::as_raw_fd(&h.client));
    assert_eq!(h.responses().len(), 1);
    assert_eq!(segs_out(h.conn.fd()) - before, 1);
}

/// One request of a generated conversation, and what answers it.
#[derive(Debug, Clone)]
enum Ask {
    Get(usize),
    Head(usize),
    /// Bytes from..=to of file `usize` (clamped to the file).
    Range(usize, u64, u64),
    Missing,
    /// A POST with a body of this many bytes: 405, the body skipped.
    Post(usize),
}

/// What an answer must carry besides its status.
enum Answer {
    /// Exactly these bytes.
    Body(Vec<u8>),
    /// No body, and this Content-Length (HEAD).
    Head(usize),
    /// An error page: any body.
    Page,
}

/// A conversation over one connection: pipelined requests (GET, HEAD,
/// ranges, a missing file, a POST with a body) that reach the server in
/// pieces cut anywhere, a send buffer that changes between turns, and a
/// client that reads late and sometimes not at all; the last request may
/// ask to close. Every answer comes back in order, whole, with its body
/// (or range of it) byte for byte, and the connection closes exactly when
/// asked to. When `gathered`, the connection's writes wait in a batch sent
/// after each drive, as an event loop with io_uring sends them (a small send
/// buffer then hands answers back to a connection that has more to answer),
/// and its reads are made ahead of each drive, as that loop reads.
fn conversation_case(sizes: &[u64], asks: &[Ask], close: bool, seed: u64, gathered: bool) {
    let mut h = harness();
    if gathered {
        h.gather();
    }
    // A client reading late fills the socket, and the batch hands answers
    // back.
    h.small_client_buffer();
    let mut rng = seed | 1;
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| ((j as usize * 7 + i * 13) % 251) as u8).collect())
        .collect();
    for (i, b) in bodies.iter().enumerate() {
        std::fs::write(h.dir.join(format!("p{i}.bin")), b).unwrap();
    }
    let mut wire = Vec::new();
    let mut want: Vec<(u16, Answer)> = Vec::new();
    for (k, ask) in asks.iter().enumerate() {
        let last = if close && k + 1 == asks.len() { "Connection: close\r\n" } else { "" };
        let line = |method: &str, path: &str, extra: &str| {
            format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}{last}\r\n").into_bytes()
        };
        match *ask {
            Ask::Get(f) => {
                wire.extend(line("GET", &format!("/p{f}.bin"), ""));
                want.push((200, Answer::Body(bodies[f].clone())));
            }
            Ask::Head(f) => {
                wire.extend(line("HEAD", &format!("/p{f}.bin"), ""));
                want.push((200, Answer::Head(bodies[f].len())));
            }
            Ask::Range(f, from, to) => {
                let size = bodies[f].len() as u64;
                let (from, to) = (from % size, (to % size).max(from % size));
                wire.extend(line("GET", &format!("/p{f}.bin"), &format!("Range: bytes={from}-{to}\r\n")));
                want.push((206, Answer::Body(bodies[f][from as usize..=to as usize].to_vec())));
            }
            Ask::Missing => {
                wire.extend(line("GET", "/not-here.bin", ""));
                want.push((404, Answer::Page));
            }
            Ask::Post(n) => {
                wire.extend(line("POST", "/p0.bin", &format!("Content-Length: {n}\r\n")));
                wire.extend((0..n).map(|i| b"GET / HTTP/1.1\r\n"[i % 16]));
                want.push((405, Answer::Page));
            }
        }
    }
    let (mut sent, mut got, mut closed) = (0, Vec::new(), false);
    let rooms = [4096, 16_384, 100_000, 1 << 20];
    let mut quiet = Instant::now();
    while got.len() < want.len() {
        assert!(
            quiet.elapsed() < Duration::from_secs(5),
            "stalled after {} answers of {}",
            got.len(),
            want.len()
        );
        if sent < wire.len() && xorshift(&mut rng) % 2 == 0 {
            let piece = (1 + xorshift(&mut rng) % 400) as usize;
            let end = (sent + piece).min(wire.len());
            h.send(&wire[sent..end]);
            sent = end;
        }
        set_buffer(h.conn.fd(), libc::SO_SNDBUF, rooms[(xorshift(&mut rng) % 4) as usize]);
        if !closed && drive_to_wait(&mut h) == Step::Close {
            assert!(close && sent == wire.len(), "closed after {} answers; close asked: {close}", got.len());
            closed = true;
        }
        if xorshift(&mut rng) % 4 == 0 {
            continue; // the client reads nothing this turn
        }
        let heads: Vec<usize> = (got.len()..want.len())
            .filter(|&i| matches!(want[i].1, Answer::Head(_)))
            .map(|i| i - got.len())
            .collect();
        let new = h.responses_to(&heads);
        if !new.is_empty() {
            quiet = Instant::now();
        } else {
            std::thread::sleep(Duration::from_micros(200));
        }
        got.extend(new);
    }
    assert_eq!(got.len(), want.len(), "answers: {:?}", got.iter().map(|r| r.status).collect::<Vec<_>>());
    for (i, (r, (status, answer))) in got.iter().zip(&want).enumerate() {
        assert_eq!(r.status, *status, "answer {i} to {:?}", asks[i]);
        match answer {
            Answer::Body(b) => assert!(r.body == *b, "answer {i} to {:?}: body differs", asks[i]),
            Answer::Head(len) => {
                assert!(r.body.is_empty());
                assert_eq!(r.header("content-length"), Some(len.to_string().as_str()), "HEAD {i}");
            }
            Answer::Page => {}
        }
        let says_close = r.header("connection") == Some("close");
        assert_eq!(says_close, close && i + 1 == want.len(), "answer {i}: Connection: close");
    }
    if close {
        // The server ends its side after the last answer: the client reads
        // the end of the stream (the connection then drains what the
        // client still sends, or is gone).
        if !closed {
            drive_to_wait(&mut h);
            assert_eq!(h.state_name(), "closing");
        }
        h.client.set_nonblocking(false).unwrap();
        h.client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(h.client.read(&mut [0u8; 64]).unwrap(), 0, "bytes after the last answer");
    } else {
        assert!(matches!(h.conn.state, State::Idle { .. }), "{}", h.state_name());
    }
}

/// Drive until the connection waits or closes.
fn drive_to_wait(h: &mut Harness) -> Step {
    loop {
        match h.drive() {
            Step::Yield => continue,
            s => return s,
        }
    }
}

fn ask() -> impl proptest::strategy::Strategy<Value = Ask> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (0..3usize).prop_map(Ask::Get),
        2 => (0..3usize).prop_map(Ask::Head),
        2 => (0..3usize, any::<u64>(), any::<u64>()).prop_map(|(f, a, b)| Ask::Range(f, a, b)),
        1 => Just(Ask::Missing),
        1 => (0..2000usize).prop_map(Ask::Post),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 32, ..Default::default() })]
    #[test]
    fn any_pipelined_conversation_in_any_pieces_is_answered_in_order_and_whole(
        sizes in proptest::collection::vec(
            proptest::prop_oneof![1..100u64, 60_000..140_000u64, 400_000..1_500_000u64],
            3,
        ),
        asks in proptest::collection::vec(ask(), 1..12),
        close: bool,
        seed: u64,
        gathered: bool,
    ) {
        conversation_case(&sizes, &asks, close, seed, gathered);
    }
}
