//! Any sequence of requests, in any pieces: GET, HEAD, absolute-form,
//! `OPTIONS *`, HTTP/1.0 with and without keep-alive, bodies by
//! Content-Length and chunked (with extensions and trailers), `Expect:
//! 100-continue`, heads over the limit and lines of any bytes. A sequence
//! sends some of its messages corrupted (a byte changed, bytes cut or put
//! in) and the rest as they are.
//!
//! Whatever arrives, the connection never panics, keeps its buffers within
//! their limits, and writes only whole HTTP/1.1 responses, each framed by
//! its Content-Length; after one that says `Connection: close` nothing
//! more, and the end of the stream. It ends the connection only after such
//! a response, or when a request body it is dropping turns out malformed.
//! Unless it ended, it still serves: a request after the sequence is
//! answered. And the sequence uncorrupted is answered request by request
//! in order, each with the status and body it asks for, and the connection
//! ends exactly after the first request that asks for it (or that a server
//! must end it after).

use std::os::fd::AsRawFd;

use proptest::prelude::*;

use super::*;
use crate::protocol::test_support::{channel_body, context_with_routes, handler_routes, streamed_body};
use crate::testing::{unread, unsent};

/// One message the client sends.
#[derive(Debug, Clone)]
enum Msg {
    /// GET `PATHS[path]`; HTTP/1.0 when `v10` (kept alive if `keep`);
    /// `Connection: close` when `close`.
    Get {
        path: usize,
        v10: bool,
        keep: bool,
        close: bool,
    },
    Head,
    Absolute,
    OptionsStar,
    /// A POST with a body of this many bytes by Content-Length.
    Post(usize),
    /// A POST with a chunked body of these chunk sizes, an extension on
    /// each chunk when `ext`, and a trailer field when `trailer`.
    Chunked {
        sizes: Vec<usize>,
        ext: bool,
        trailer: bool,
    },
    /// A GET with a body by Content-Length.
    GetBody(usize),
    /// A POST with `Expect: 100-continue` and its body.
    Expect(usize),
    /// A header line longer than the head limit.
    LongHead,
    /// A line of any bytes.
    Line(Vec<u8>),
    /// A POST to the echo handler, its body by Content-Length or in chunks.
    Echo {
        body: Vec<u8>,
        chunked: bool,
    },
    /// A GET (HEAD when `head`) for a handler of `HANDLERS`.
    Handler {
        which: usize,
        head: bool,
    },
}

/// The handlers [`Msg::Handler`] asks: a reply from another thread, a
/// body streamed from an iterator, and one from another thread.
const HANDLERS: [&str; 3] = ["/later", "/stream", "/chan"];

/// Paths a GET asks for, and the status each gets.
const PATHS: [(&str, u16); 3] = [("/a.txt", 200), ("/missing", 404), ("/d", 301)];

/// What a message must get when nothing corrupted it: a status, the body
/// when it is known, and whether the connection must end after it (None:
/// it may, or may not).
struct Want {
    status: u16,
    body: Option<Vec<u8>>,
    close: Option<bool>,
}

impl Msg {
    fn bytes(&self) -> Vec<u8> {
        let body = |n: usize| (0..n).map(|i| b"GET /a.txt HTTP/1.1\r\n"[i % 21]).collect::<Vec<u8>>();
        match self {
            Msg::Get { path, v10, keep, close } => {
                let mut m =
                    format!("GET {} HTTP/1.{}\r\nHost: x\r\n", PATHS[*path].0, if *v10 { 0 } else { 1 });
                if *v10 && *keep {
                    m.push_str("Connection: keep-alive\r\n");
                }
                if *close {
                    m.push_str("Connection: close\r\n");
                }
                m.push_str("\r\n");
                m.into_bytes()
            }
            Msg::Head => b"HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Msg::Absolute => b"GET http://x/a.txt HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Msg::OptionsStar => b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            Msg::Post(n) | Msg::GetBody(n) | Msg::Expect(n) => {
                let method = if matches!(self, Msg::GetBody(_)) { "GET" } else { "POST" };
                let expect = if matches!(self, Msg::Expect(_)) { "Expect: 100-continue\r\n" } else { "" };
                let mut m =
                    format!("{method} /a.txt HTTP/1.1\r\nHost: x\r\nContent-Length: {n}\r\n{expect}\r\n")
                        .into_bytes();
                m.extend(body(*n));
                m
            }
            Msg::Chunked { sizes, ext, trailer } => {
                let mut m = b"POST /a.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for &n in sizes.iter().filter(|&&n| n > 0) {
                    m.extend(format!("{n:x}{}\r\n", if *ext { ";a=b" } else { "" }).into_bytes());
                    m.extend(body(n));
                    m.extend(b"\r\n");
                }
                m.extend(b"0\r\n");
                if *trailer {
                    m.extend(b"X-Trailer: t\r\n");
                }
                m.extend(b"\r\n");
                m
            }
            Msg::LongHead => {
                let mut m = b"GET /a.txt HTTP/1.1\r\nHost: x\r\nX-Long: ".to_vec();
                m.extend(vec![b'l'; 20_000]);
                m.extend(b"\r\n\r\n");
                m
            }
            Msg::Line(b) => {
                let mut m = b.clone();
                m.extend(b"\r\n");
                m
            }
            Msg::Echo { body, chunked: false } => {
                let mut m =
                    format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len())
                        .into_bytes();
                m.extend_from_slice(body);
                m
            }
            Msg::Echo { body, chunked: true } => {
                let mut m = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for piece in body.chunks(700) {
                    m.extend(format!("{:x}\r\n", piece.len()).into_bytes());
                    m.extend_from_slice(piece);
                    m.extend(b"\r\n");
                }
                m.extend(b"0\r\n\r\n");
                m
            }
            Msg::Handler { which, head } => {
                let method = if *head { "HEAD" } else { "GET" };
                format!("{method} {} HTTP/1.1\r\nHost: x\r\n\r\n", HANDLERS[*which]).into_bytes()
            }
        }
    }

    /// What an uncorrupted message gets; None for a line of any bytes,
    /// which may be a request, empty lines before one, or an error.
    fn want(&self) -> Option<Want> {
        let w = |status, body: Option<&[u8]>, close| {
            Some(Want { status, body: body.map(<[u8]>::to_vec), close: Some(close) })
        };
        match self {
            Msg::Get { path, v10, keep, close } => {
                let body = (*path == 0).then_some(&b"hello"[..]);
                w(PATHS[*path].1, body, *close || (*v10 && !*keep))
            }
            Msg::Head => w(200, Some(b""), false),
            Msg::Absolute | Msg::GetBody(_) => w(200, Some(b"hello"), false),
            Msg::OptionsStar | Msg::Post(_) | Msg::Chunked { .. } => w(405, None, false),
            // A body not read with the head is not read at all: the next
            // bytes may be it or a request, so the connection ends. One
            // that came with the head is dropped, and it goes on.
            Msg::Expect(_) => Some(Want { status: 405, body: None, close: None }),
            Msg::LongHead => w(431, None, true),
            Msg::Line(_) => None,
            Msg::Echo { body, .. } => {
                Some(Want { status: 200, body: Some(body.clone()), close: Some(false) })
            }
            Msg::Handler { head: true, .. } => w(200, Some(b""), false),
            Msg::Handler { which, head: false } => {
                let body = match which {
                    0 => b"late".to_vec(),
                    1 => streamed_body(),
                    _ => channel_body(),
                };
                Some(Want { status: 200, body: Some(body), close: Some(false) })
            }
        }
    }
}

/// A corruption: at a position (a share of the message's length), change
/// a byte, cut bytes out, or put bytes in.
#[derive(Debug, Clone)]
enum Hurt {
    Change(u16, u8),
    Cut(u16, u16),
    Put(u16, Vec<u8>),
}

impl Hurt {
    fn apply(&self, m: &mut Vec<u8>) {
        let at = |share: u16, len: usize| share as usize * len / (u16::MAX as usize + 1);
        match self {
            Hurt::Change(p, b) => {
                let i = at(*p, m.len());
                m[i] = *b;
            }
            Hurt::Cut(p, n) => {
                let i = at(*p, m.len());
                let end = (i + 1 + *n as usize % 8).min(m.len());
                m.drain(i..end);
            }
            Hurt::Put(p, b) => {
                let i = at(*p, m.len());
                m.splice(i..i, b.iter().copied());
            }
        }
    }
}

/// A response the client read.
#[derive(Debug)]
struct Got {
    status: u16,
    close: bool,
    body: Vec<u8>,
}

/// The framed body at the start of `b`: chunks (extensions and trailers
/// allowed) decoded, and the bytes they took; None until it is whole.
fn dechunk(b: &[u8]) -> Option<(Vec<u8>, usize)> {
    let (mut out, mut at) = (Vec::new(), 0);
    loop {
        let eol = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&b[at..eol]).expect("a chunk size line");
        let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16).expect("a chunk size");
        at = eol + 2;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let eol = at + b[at..].windows(2).position(|w| w == b"\r\n")?;
                let empty = eol == at;
                at = eol + 2;
                if empty {
                    return Some((out, at));
                }
            }
        }
        if b.len() < at + size + 2 {
            return None;
        }
        out.extend_from_slice(&b[at..at + size]);
        assert_eq!(&b[at + size..at + size + 2], b"\r\n", "a chunk's end");
        at += size + 2;
    }
}

/// Split `buf` into whole responses, checking their framing: a status
/// line, fields, and a body framed by Content-Length or chunks, or ended
/// by the close (`eof`: the stream has ended); none for 1xx, 204, 304, or
/// a HEAD's answer (the answers `head` names, or one followed at once by
/// the next response).
fn split_responses(buf: &mut Vec<u8>, out: &mut Vec<Got>, head: &dyn Fn(usize) -> bool, eof: bool) {
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut fields);
        let head_len = match r.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return,
            Err(e) => {
                panic!("not a response ({e}): {:?}", String::from_utf8_lossy(&buf[..buf.len().min(200)]))
            }
        };
        assert_eq!(r.version, Some(1), "an HTTP/1.1 status line");
        let status = r.code.unwrap();
        let field = |name: &str| {
            r.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.to_vec())
        };
        let close = field("connection").is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
        let chunked = field("transfer-encoding").is_some_and(|v| v == b"chunked");
        let len = field("content-length").map(|v| std::str::from_utf8(&v).unwrap().parse::<usize>().unwrap());
        assert!(!(chunked && len.is_some()), "both Content-Length and chunks");
        let after = &buf[head_len..];
        if after.len() < 7 && b"HTTP/1.".starts_with(after) && !after.is_empty() {
            return; // the next response, or a body: more will tell
        }
        let bodiless = status < 200
            || status == 204
            || status == 304
            || head(out.len())
            || after.starts_with(b"HTTP/1.");
        let (body, used) = if bodiless {
            (Vec::new(), 0)
        } else if chunked {
            match dechunk(after) {
                Some(b) => b,
                None => return,
            }
        } else if let Some(len) = len {
            if after.len() < len {
                return;
            }
            (after[..len].to_vec(), len)
        } else {
            // Unframed (a stream to an HTTP/1.0 client): ended by the close.
            assert!(close, "{status} without a length, chunks or Connection: close");
            if !eof {
                return;
            }
            (after.to_vec(), after.len())
        };
        buf.drain(..head_len + used);
        if status >= 200 {
            out.push(Got { status, close, body });
        }
    }
}

/// How a conversation ended, as the event loop would see it.
#[derive(Debug, PartialEq)]
enum End {
    Open,
    /// The connection asked to be closed, or failed (a malformed body
    /// being dropped).
    Closed,
}

/// Drive until the connection waits or ends, checking its buffers; read
/// what it wrote.
fn turn(
    h: &mut Harness,
    got: &mut Vec<Got>,
    raw: &mut Vec<u8>,
    eof: &mut bool,
    head: &dyn Fn(usize) -> bool,
) -> End {
    let limit = 4 * READ_CHUNK + h.settings.limits.max_header_bytes;
    let mut end = End::Open;
    // As epoll would: bytes that arrived late (loopback drops tiny
    // segments past the receive buffer's memory and sends them again) make
    // the socket readable again.
    if unread(h.conn.fd()) > 0 {
        h.conn.ready(true, false);
    }
    // The event loop drives a connection no more once it ended.
    for _ in 0..if h.ended { 0 } else { 1000 } {
        let step = h.try_drive();
        if let Some(p) = &h.conn.pending {
            assert!(p.buf.capacity() <= limit, "{} bytes pending", p.buf.capacity());
        }
        match step {
            Ok(Step::Yield) => continue,
            Ok(Step::Wait) => {
                // Where the event loop may hand an idle connection to
                // another loop.
                h.maybe_move();
                break;
            }
            // The preface of HTTP/2 (a line of any bytes can be it): the
            // connection is HTTP/2's from here.
            Ok(Step::Upgrade) => {
                end = End::Closed;
                h.ended = true;
                break;
            }
            Ok(Step::Close) | Err(_) => {
                if let Err(e) = &step {
                    assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
                }
                h.conn.io.shutdown_write();
                end = End::Closed;
                h.ended = true;
                break;
            }
        }
    }
    let had = raw.len();
    let ended = h.read_client(raw);
    assert!(!*eof || raw.len() == had, "bytes after the end of the stream");
    *eof |= ended;
    let before = got.len();
    split_responses(raw, got, head, *eof);
    if let Some(i) = got.iter().position(|g| g.close) {
        assert!(got.len() == i + 1 && raw.is_empty(), "bytes after Connection: close");
    }
    assert!(got.len() >= before);
    end
}

/// The connection's wire: plain TCP, or TLS (1.2 when the flag says so)
/// with its records protected by rustls or, after a move, by ours.
type Wire = Option<(bool, Protect)>;

/// The connection over plain TCP, its writes sent as they are made and its
/// reads made by itself, or (`gathered`) as an event loop with io_uring
/// makes them: reads ahead of each drive, and writes in a batch after it.
fn any_requests_case(msgs: &[(Msg, Option<Hurt>)], cuts: &[usize], valid: bool, gathered: bool) {
    any_requests_case_keyed(msgs, cuts, valid, None, None, None, gathered)
}

/// As [`any_requests_case`]; over TLS 1.3 the client may update its keys
/// once, before the piece that starts `key_update` (a share of the
/// sequence's bytes) in. rustls follows; our record layer, having no
/// traffic secret, cannot and ends the connection. With `mover`, the
/// connection moves as a handoff moves it, at random among the times it
/// is idle as the event loop sees it, and must answer as if it had not.
fn any_requests_case_keyed(
    msgs: &[(Msg, Option<Hurt>)],
    cuts: &[usize],
    valid: bool,
    wire_kind: Wire,
    key_update: Option<u16>,
    mover: Option<u64>,
    gathered: bool,
) {
    let mut h = match wire_kind {
        None => harness(),
        Some((tls12, protect)) => tls_harness(tls12, protect),
    };
    if gathered {
        h.gather();
    }
    h.mover = mover.map(|seed| seed | 1);
    h.cx = context_with_routes(&h.dir, &h.settings, handler_routes());
    let mut wire = Vec::new();
    let mut hurt = false;
    for (m, damage) in msgs {
        let mut b = m.bytes();
        if let (false, Some(d)) = (valid, damage) {
            d.apply(&mut b);
            hurt = true;
        }
        wire.extend(b);
    }
    let (mut got, mut raw, mut eof) = (Vec::new(), Vec::new(), false);
    // Which answers are to HEAD requests, when each message gets one:
    // nothing corrupted, no line of any bytes.
    let known = !hurt && msgs.iter().all(|(m, _)| !matches!(m, Msg::Line(_)));
    let heads: Vec<bool> =
        msgs.iter().map(|(m, _)| matches!(m, Msg::Head | Msg::Handler { head: true, .. })).collect();
    let head = |i: usize| known && heads.get(i) == Some(&true);
    let (mut at, mut cut, mut end) = (0, 0, End::Open);
    let mut update_at = key_update.map(|share| share as usize * wire.len() / (u16::MAX as usize + 1));
    // A key update our record layer cannot follow: the connection ends
    // there, if it moved before (set when the update is sent).
    let mut cut_short = false;
    while at < wire.len() && end == End::Open && !eof {
        let n = cuts[cut % cuts.len()].clamp(1, wire.len() - at);
        cut += 1;
        if update_at.is_some_and(|u| u <= at) {
            h.tls.as_mut().expect("over TLS").update_keys();
            update_at = None;
            cut_short = h.moves > 0 || matches!(wire_kind, Some((_, Protect::Moved)));
        }
        // Over TLS, up to 47 bytes of the records wait for the next
        // piece: a turn may end inside a record.
        h.send_holding_back(&wire[at..at + n], cuts[cut % cuts.len()] % 48);
        at += n;
        end = turn(&mut h, &mut got, &mut raw, &mut eof, &head);
    }
    if !h.held.is_empty() && end == End::Open && !eof {
        h.send(b"");
        end = turn(&mut h, &mut got, &mut raw, &mut eof, &head);
    }
    // What is left: the answers the socket still holds, and the close.
    let mut quiet = 0;
    for _ in 0..5000 {
        let had = raw.len();
        if turn(&mut h, &mut got, &mut raw, &mut eof, &head) == End::Closed {
            end = End::Closed;
        }
        // Still going: a reply or a write under way, or bytes the client
        // sent that have not arrived yet (loopback sends again what it
        // dropped, after a while).
        let busy = !h.ended
            && (matches!(h.state_name(), "awaiting" | "writing")
                || unsent(h.client.as_raw_fd()) > 0
                || unread(h.conn.fd()) > 0);
        if eof || (end == End::Open && raw.is_empty() && !busy) {
            break;
        }
        // Bytes the client cannot frame yet (a HEAD's answer it could not
        // tell from a GET's, after a corrupted message), and nothing under
        // way: nothing more is coming.
        quiet = if busy || raw.len() != had { 0 } else { quiet + 1 };
        if quiet == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let asked_close = got.iter().any(|g| g.close);
    if asked_close {
        assert!(eof, "the stream does not end after Connection: close");
    }
    if eof {
        // Ended, or closing: our side shut, what the client still sends
        // drained for a while.
        let closing = h.state_name() == "closing";
        assert!(end == End::Closed || closing, "the client read the end of a connection still open");
        end = End::Closed;
    }
    if cut_short {
        assert_eq!(end, End::Closed, "our record layer followed a key update");
        return;
    }
    if !hurt && msgs.iter().all(|(m, _)| m.want().is_some()) {
        // Each answered in order; the first that must end the connection
        // is the last answered.
        let wants: Vec<Want> = msgs.iter().map(|(m, _)| m.want().unwrap()).collect();
        let ends = |i: usize, w: &Want| w.close.unwrap_or_else(|| got.get(i).is_some_and(|g| g.close));
        let last = wants.iter().enumerate().position(|(i, w)| ends(i, w)).unwrap_or(wants.len() - 1);
        assert_eq!(got.len(), last + 1, "answers {:?}", got.iter().map(|g| g.status).collect::<Vec<_>>());
        for (i, (g, w)) in got.iter().zip(&wants).enumerate() {
            assert_eq!(g.status, w.status, "answer {i} to {:?}", msgs[i].0);
            if let Some(b) = &w.body {
                assert!(g.body == *b, "answer {i} to {:?}: {} bytes of {}", msgs[i].0, g.body.len(), b.len());
            }
            if let Some(close) = w.close {
                assert_eq!(g.close, close, "answer {i} to {:?}: Connection: close", msgs[i].0);
            }
        }
        assert_eq!(end == End::Closed, ends(last, &wants[last]), "ended");
    }
    if end == End::Closed || eof {
        return;
    }
    // Still serving, unless a request is still arriving (a corrupted one
    // that waits for more head or body): send one more request after an
    // empty line; a head still open ends there, and whatever it was gets
    // its answer, the probe too unless that one ends the connection.
    let probe = b"\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n";
    if valid || !hurt {
        let before = got.len();
        h.send(probe);
        for _ in 0..200 {
            turn(&mut h, &mut got, &mut raw, &mut eof, &head);
            if got.len() > before {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let g = got.last().filter(|_| got.len() > before).expect("the request after the sequence");
        assert_eq!((g.status, &g.body[..]), (200, &b"hello"[..]));
    }
}

fn msg() -> impl Strategy<Value = Msg> {
    prop_oneof![
        6 => (0..PATHS.len(), proptest::bool::weighted(0.15), any::<bool>(), proptest::bool::weighted(0.05))
            .prop_map(|(path, v10, keep, close)| Msg::Get { path, v10, keep, close }),
        2 => Just(Msg::Head),
        1 => Just(Msg::Absolute),
        1 => Just(Msg::OptionsStar),
        2 => (0usize..3000).prop_map(Msg::Post),
        2 => (proptest::collection::vec(0usize..2000, 0..4), any::<bool>(), any::<bool>())
            .prop_map(|(sizes, ext, trailer)| Msg::Chunked { sizes, ext, trailer }),
        1 => (0usize..100).prop_map(Msg::GetBody),
        1 => (1usize..100).prop_map(Msg::Expect),
        1 => Just(Msg::LongHead),
        1 => proptest::collection::vec(any::<u8>(), 0..30).prop_map(Msg::Line),
        2 => (proptest::collection::vec(any::<u8>(), 0..3000), any::<bool>())
            .prop_map(|(body, chunked)| Msg::Echo { body, chunked }),
        3 => (0..HANDLERS.len(), proptest::bool::weighted(0.2)).prop_map(|(which, head)| Msg::Handler { which, head }),
    ]
}

fn hurt() -> impl Strategy<Value = Hurt> {
    prop_oneof![
        (any::<u16>(), any::<u8>()).prop_map(|(p, b)| Hurt::Change(p, b)),
        (any::<u16>(), any::<u16>()).prop_map(|(p, n)| Hurt::Cut(p, n)),
        (any::<u16>(), proptest::collection::vec(any::<u8>(), 1..6)).prop_map(|(p, b)| Hurt::Put(p, b)),
    ]
}

/// A sequence of messages, some to be corrupted.
fn msgs() -> impl Strategy<Value = Vec<(Msg, Option<Hurt>)>> {
    proptest::collection::vec((msg(), proptest::option::weighted(0.15, hurt())), 1..16)
}

/// The sizes the client's writes take in turn (MAX: all that is left).
fn cuts() -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(prop_oneof![1usize..20, 20usize..3_000, Just(usize::MAX)], 1..8)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
    #[test]
    fn any_requests_in_any_pieces_get_whole_responses_bounded_buffers_and_a_clean_end(
        msgs in msgs(),
        cuts in cuts(),
        gathered in any::<bool>(),
    ) {
        any_requests_case(&msgs, &cuts, false, gathered);
    }

    #[test]
    fn the_same_requests_uncorrupted_are_answered_in_order_and_end_exactly_when_asked(
        msgs in msgs(),
        cuts in cuts(),
        gathered in any::<bool>(),
    ) {
        any_requests_case(&msgs, &cuts, true, gathered);
    }

    /// The same over TLS: every piece the client writes is its own record
    /// (down to one byte of plaintext), protected by rustls or, after the
    /// keys moved, by our record layer, in TLS 1.2 and 1.3; in 1.3 the
    /// client may update its keys; and the connection may move whenever
    /// it is idle.
    #[test]
    fn the_same_over_tls_whoever_protects_the_records(
        msgs in msgs(),
        cuts in cuts(),
        valid in any::<bool>(),
        tls12 in any::<bool>(),
        moved in any::<bool>(),
        key_update in proptest::option::weighted(0.2, any::<u16>()),
        mover in proptest::option::of(any::<u64>()),
    ) {
        let protect = if moved { Protect::Moved } else { Protect::Rustls };
        // TLS 1.2 has no key update.
        let key_update = key_update.filter(|_| !tls12);
        any_requests_case_keyed(&msgs, &cuts, valid, Some((tls12, protect)), key_update, mover, false);
    }

    /// Over plain TCP, the connection moved between loops whenever it is
    /// idle and the generator says so, on io_uring or not: answered
    /// exactly as if it had not.
    #[test]
    fn the_same_moved_between_loops_whenever_idle(
        msgs in msgs(),
        cuts in cuts(),
        valid in any::<bool>(),
        mover in any::<u64>(),
        gathered in any::<bool>(),
    ) {
        any_requests_case_keyed(&msgs, &cuts, valid, None, None, Some(mover), gathered);
    }
}
