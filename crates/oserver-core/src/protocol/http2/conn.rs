//! One HTTP/2 connection (RFC 9113): a sans-io state machine over a
//! [`Transport`], driven by the same event loop as HTTP/1.
//!
//! ```text
//!   Preface --(client preface)--> Open --(drain / peer's GOAWAY)--> GoingAway
//!      |                           |                                   |
//!      +------(connection error: GOAWAY with its code)--> Closing      |
//!                                                           |  (streams done)
//!                                                        closed <------+
//! ```
//!
//! Every request is answered as soon as its header block is complete: the
//! responder runs, the HEADERS frame goes into the output buffer, and a body
//! that fits the windows and one frame goes with it. Longer bodies stay in a
//! [`Stream`] and go out as DATA frames, round-robin over the open streams
//! (no priorities: RFC 9113 deprecates the tree, and the `priority` header
//! of RFC 9218 is not used), within the connection's and each stream's
//! window and the peer's frame size.
//!
//! One buffer holds what is to be written. While it holds more than
//! [`OUT_LIMIT`] nothing more is read, so a client that sends PINGs or
//! SETTINGS and never reads stops being read from, and the send timeout
//! ends it. A request a handler route takes is held, its header list
//! copied, until its body (DATA, up to the route's limit) is whole; other
//! requests are answered at once, and their bodies are counted, given back
//! to the connection's window, and dropped (the stream is reset with
//! NO_ERROR after MAX_DISCARD).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::frame::{self, ConnError, ErrorCode, Head};
use super::hpack::{self, Decoder, Fields};
use crate::http::fields::Fields as RequestFields;
use crate::http::{decimal, status, SERVER};
use crate::protocol::access_log::RequestLine;
use crate::protocol::exchange::{Exchange, Step};
use crate::respond::handler::Awaited;
use crate::respond::stream::{BodyStream, Piece};
use crate::respond::{FileBody, Payload, Request, Version};
use crate::settings::Settings;
use crate::transport::{Recv, Transport};
use crate::wake::Wakeup;

/// Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS):
/// 100, as nginx, h2o and the RFC's suggested minimum. Each open stream
/// holds at most its response's remaining body (a file reference, or the
/// bytes of a listing or a handler's reply).
pub(crate) const MAX_STREAMS: usize = 100;

/// Output produced before it is written: DATA frames are added until this
/// much is waiting, so one write takes four full frames' worth. Also the
/// most one stream adds in one round (one preadv of a file), so a large
/// body does not hold up the others.
const OUT_BATCH: usize = 64 * 1024;

/// More output produced before it is written when the socket has room for
/// it (see `Conn::batch`): one write of 512 KiB where there were eight of
/// 64. Each write hands the client data to wake up for, and a client that
/// wakes eight times per 512 KiB costs itself and the server more than one
/// that wakes once: h2load against a 1 MB file over h2c on loopback, the
/// server's CPU a response went from 276 - 284 µs to 231 - 236, the
/// client's from 250 - 258 to 220 - 231 (2026-12-01, alternating runs).
/// The socket's room bounds it, and what the socket still does not take
/// beyond [`OUT_BATCH`] is taken back (`Conn::take_back`), so a client
/// that stops reading leaves at most OUT_BATCH here, as before. As much as
/// one turn sends (SEND_TURN).
const OUT_BATCH_MAX: usize = SEND_TURN;

/// Output waiting to be written past which the connection stops reading:
/// every frame a client sends can make an answer (a PING its ACK, a request
/// its HEADERS), and a client that does not read must not grow this buffer.
const OUT_LIMIT: usize = 128 * 1024;

/// Largest encoded header block (HEADERS and its CONTINUATION frames)
/// accepted, as a multiple of the header-list limit: HPACK can make a block
/// longer than the list it encodes (Huffman codes of up to 30 bits for
/// rare bytes), but not four times longer. Past it the connection is closed
/// (ENHANCE_YOUR_CALM): the CONTINUATION flood.
const BLOCK_FACTOR: usize = 4;

/// Streams the client may reset before the connection is judged a rapid
/// reset attack (CVE-2023-44487), if it also reset at least half of those
/// it opened. A browser cancels a few; an attacker opens and resets
/// thousands to make the server start work it never has to send.
const MAX_RESETS: u32 = 100;

/// Responses started in one turn, as TURN_RESPONSES for HTTP/1; the frames
/// after them wait for the next turn.
const TURN_STREAMS: u32 = 128;

/// Request-body bytes one connection holds for handlers before it stops
/// opening windows for more: past it only the oldest held stream gets its
/// window back (so one body always completes and frees its bytes), and the
/// others wait. Without it a client could hold a route's limit on each of
/// its 100 streams (800 MiB on one connection for a route that takes
/// 8 MiB), where HTTP/1 holds one body per connection. With it a
/// connection holds at most this, plus a stream window (64 KiB) for each
/// other held stream, plus the oldest's limit.
const HELD_BUDGET: usize = 4 << 20;

/// Request-body bytes read and dropped on a stream already answered before
/// it is reset with NO_ERROR: as HTTP/1's MAX_DISCARD, enough for a form
/// posted by mistake.
const MAX_DISCARD: u64 = 1 << 20;

/// Bytes read in one turn.
const TURN_READ: usize = 256 * 1024;

/// Bytes of DATA produced in one turn, as SEND_TURN for HTTP/1.
const SEND_TURN: usize = 512 * 1024;

/// Bytes read at once into the connection's own buffer while a frame is
/// incomplete.
const READ_PIECE: usize = 16 * 1024 + frame::HEAD_LEN;

/// How long a connection closing after an error is drained.
const LINGER: Duration = Duration::from_secs(2);

/// Recently closed streams remembered, to tell a frame on a closed stream
/// (STREAM_CLOSED, or ignored after our RST_STREAM) from one on a stream
/// that never existed.
const CLOSED_MEMORY: usize = 16;

/// What one loop's HTTP/2 connections share: the decoded fields of the
/// header block being answered, and the block being encoded.
#[derive(Default)]
pub(crate) struct Buffers {
    fields: Fields,
    block: Vec<u8>,
    /// An output buffer lent to whichever connection is writing, so idle
    /// connections keep none (see `Conn::drive`).
    spare: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the client's preface.
    Preface,
    Open,
    /// GOAWAY sent (a graceful stop): the streams under way finish, no new
    /// one starts, then the connection closes.
    GoingAway,
    /// A connection error: GOAWAY is going out, then the connection closes.
    Closing,
}

/// One stream's DATA in a large batch: `n` body bytes, framed at
/// `out[at..end]`.
struct Produced {
    id: u32,
    at: usize,
    end: usize,
    n: usize,
}

/// A response body still to send.
enum Body {
    Bytes { bytes: Vec<u8>, pos: usize },
    Static { bytes: &'static [u8], pos: usize },
    File(FileBody),
    Stream(Box<Streamed>),
}

/// A streamed body: the piece being sent, and how the producer ended.
struct Streamed {
    src: BodyStream,
    piece: Vec<u8>,
    pos: usize,
    /// Some(true): ended; Some(false): the producer failed (the stream is
    /// reset, so the client knows the body is cut short).
    end: Option<bool>,
}

impl Body {
    /// Bytes that can be sent now (of a stream: of the piece in hand).
    fn remaining(&self) -> u64 {
        match self {
            Body::Bytes { bytes, pos } => (bytes.len() - pos) as u64,
            Body::Static { bytes, pos } => (bytes.len() - pos) as u64,
            Body::File(f) => f.end - f.offset,
            Body::Stream(st) => (st.piece.len() - st.pos) as u64,
        }
    }

    /// Whether sending `n` more bytes ends the body.
    fn ends_with(&self, n: u64) -> bool {
        match self {
            Body::Stream(st) => st.end == Some(true) && n == self.remaining(),
            _ => n == self.remaining(),
        }
    }

    /// Whether there is something to send (for a stream: bytes, or its
    /// end).
    fn ready(&self) -> bool {
        match self {
            Body::Stream(st) => st.pos < st.piece.len() || st.end.is_some(),
            _ => true,
        }
    }

    /// A stream whose piece is all sent takes the next one, if the
    /// producer has it.
    fn refill(&mut self, wake: &Wakeup) {
        let Body::Stream(st) = self else { return };
        if st.pos < st.piece.len() || st.end.is_some() {
            return;
        }
        match st.src.next(wake) {
            Piece::Data(p) => {
                st.piece = p;
                st.pos = 0;
            }
            Piece::Wait => {}
            Piece::End => st.end = Some(true),
            Piece::Abort => st.end = Some(false),
        }
    }

    /// Step back `n` bytes: they were framed but will be framed again.
    fn unsend(&mut self, n: usize) {
        match self {
            Body::Bytes { pos, .. } | Body::Static { pos, .. } => *pos -= n,
            Body::File(f) => f.offset -= n as u64,
            Body::Stream(st) => st.pos -= n,
        }
    }

    /// Fill `pieces` with the next bytes, in order. A file that has shrunk
    /// is an error (the stream is reset).
    fn fill(&mut self, pieces: &mut [IoSliceMut<'_>]) -> io::Result<()> {
        let (bytes, pos) = match self {
            Body::Bytes { bytes, pos } => (&bytes[..], pos),
            Body::Static { bytes, pos } => (*bytes, pos),
            Body::Stream(st) => (&st.piece[..], &mut st.pos),
            Body::File(f) => return f.read_vectored(pieces),
        };
        for p in pieces {
            let n = p.len();
            p.copy_from_slice(&bytes[*pos..*pos + n]);
            *pos += n;
        }
        Ok(())
    }
}

/// An open stream: a response still going out, or a request body still
/// arriving.
struct Stream {
    id: u32,
    /// How much DATA this server may still send on it.
    window: i64,
    /// How much DATA the client may still send on it.
    recv_window: i64,
    /// The client sent END_STREAM (half-closed, remote).
    remote_done: bool,
    /// What is left of the response body; None once sent.
    body: Option<Body>,
    /// The request's Content-Length, and the DATA received so far.
    expect: Option<u64>,
    received: u64,
    /// A request a handler takes, waiting for its whole body before it is
    /// answered.
    held: Option<Box<Held>>,
    /// A request whose handler answers later: waiting for its reply.
    waiting: Option<Box<Waiting>>,
}

impl Stream {
    /// A stream whose request is answered, or being answered: not yet
    /// closed by our side.
    fn answering(&self) -> bool {
        self.body.is_some() || self.waiting.is_some()
    }

    /// It waits on the application (a late reply, a stream's next piece),
    /// not on the client: the reply timeout applies, not the send timeout.
    fn waits_on_app(&self) -> bool {
        self.waiting.is_some() || self.body.as_ref().is_some_and(|b| !b.ready())
    }

    /// `produce` can do something for it now: DATA within its window and
    /// the connection's (`conn_window`), or the end of a streamed body
    /// (an empty DATA frame with END_STREAM, or a reset for a producer that
    /// failed), which no window holds back (RFC 9113 6.9.1).
    fn can_send(&self, conn_window: i64) -> bool {
        self.body
            .as_ref()
            .is_some_and(|b| b.ready() && (b.remaining() == 0 || (self.window > 0 && conn_window > 0)))
    }
}

/// A request whose reply comes later, and its header list, to frame the
/// reply and answer a file's validators then.
struct Waiting {
    answer: Awaited,
    fields: Fields,
}

/// A request held for its body: its header list (the loop's is reused by
/// the next block) and the body so far, up to `limit`.
struct Held {
    fields: Fields,
    body: Vec<u8>,
    limit: u64,
}

/// What `Conn::respond` answers: a header list, the body read for a
/// handler, or a status to refuse it with.
#[derive(Clone, Copy)]
struct Asked<'a> {
    f: &'a Fields,
    body: &'a [u8],
    refuse: Option<u16>,
    /// The stream's send window: the peer's initial one for a new
    /// stream; for a held one, as the client moved it meanwhile.
    window: i64,
}

/// The most DATA frames one `put_data` writes: OUT_BATCH over the smallest
/// frame size.
const MAX_PIECES: usize = OUT_BATCH / frame::DEFAULT_MAX_FRAME as usize;

/// `n` bytes of `body` on stream `id` as DATA frames of at most `max_frame`
/// bytes, the last with END_STREAM if `end`: the frame headers written in
/// place and the payloads read straight behind them (a file with one
/// preadv). On error nothing is added.
fn put_data(
    out: &mut Vec<u8>,
    body: &mut Body,
    id: u32,
    n: usize,
    max_frame: usize,
    end: bool,
) -> io::Result<()> {
    debug_assert!(n <= OUT_BATCH);
    let at = out.len();
    let frames = n.div_ceil(max_frame).max(1);
    out.resize(at + n + frames * frame::HEAD_LEN, 0);
    let mut pieces: [IoSliceMut<'_>; MAX_PIECES] = std::array::from_fn(|_| IoSliceMut::new(&mut []));
    let mut rest = &mut out[at..];
    let mut left = n;
    for (k, piece) in pieces.iter_mut().enumerate().take(frames) {
        let len = left.min(max_frame);
        left -= len;
        let flags = if end && k + 1 == frames { frame::END_STREAM } else { 0 };
        let (h, r) = rest.split_at_mut(frame::HEAD_LEN);
        h.copy_from_slice(&frame::head_bytes(len, frame::DATA, flags, id));
        let (p, r) = r.split_at_mut(len);
        *piece = IoSliceMut::new(p);
        rest = r;
    }
    let result = body.fill(&mut pieces[..frames]);
    if result.is_err() {
        out.truncate(at);
    }
    result
}

/// An encoded header block as HEADERS, and CONTINUATION frames if it is
/// longer than the peer's frame size.
fn put_headers(out: &mut Vec<u8>, block: &[u8], id: u32, end_stream: bool, max_frame: usize) {
    let mut pieces = block.chunks(max_frame).peekable();
    let mut kind = frame::HEADERS;
    let mut flags = if end_stream { frame::END_STREAM } else { 0 };
    if block.is_empty() {
        frame::put_head(out, 0, kind, flags | frame::END_HEADERS, id);
    }
    while let Some(piece) = pieces.next() {
        if pieces.peek().is_none() {
            flags |= frame::END_HEADERS;
        }
        frame::put_head(out, piece.len(), kind, flags, id);
        out.extend_from_slice(piece);
        kind = frame::CONTINUATION;
        flags = 0;
    }
}

/// What reading got.
enum Read {
    /// Bytes were read or frames handled.
    Progress,
    /// Nothing more to read now (or nothing may be read now).
    Idle,
    /// The client closed its side.
    Eof,
}

#[derive(Default)]
struct Turn {
    responses: u32,
    read: usize,
    sent: usize,
}

pub(crate) struct Conn {
    io: Transport,
    peer: SocketAddr,
    phase: Phase,
    deadline: Instant,
    /// When the current wait began: the last byte written or window opened
    /// (send timeout), the last stream finished (idle timeout), accept
    /// (preface), the error (closing).
    since: Instant,
    /// Received bytes not yet handled: a partial frame, or frames left for
    /// the next turn.
    input: Vec<u8>,
    /// Frames to write, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
    /// The DATA a large batch put at the end of `out`, in order, while it
    /// may still be taken back (see `take_back`).
    produced: Vec<Produced>,
    streams: Vec<Stream>,
    /// The highest stream id the client has opened.
    last_stream: u32,
    /// After our GOAWAY: the highest stream the client opened anyway, not
    /// having read it yet. Such streams are ignored with all their frames
    /// (RFC 9113 6.8); only a stream above this one is idle.
    ignored_to: u32,
    /// Recently closed streams, and whether this server reset them.
    closed: [(u32, bool); CLOSED_MEMORY],
    closed_next: usize,
    /// The connection's send window, and the DATA the client may still send.
    send_window: i64,
    recv_window: i64,
    /// The peer's SETTINGS.
    peer_window: i64,
    peer_max_frame: u32,
    /// The peer lowered its table size: the next block starts with a size
    /// update.
    table_update: bool,
    decoder: Decoder,
    /// A header block that continues in CONTINUATION frames.
    block: Option<Box<Block>>,
    /// The client's first frame must be SETTINGS.
    got_settings: bool,
    opened: u32,
    resets: u32,
    goaway_sent: bool,
    /// Our side is shut down (closing).
    shut: bool,
    /// Streams waiting for a late reply, as of the last look (see
    /// `collect`); more only means a needless look.
    awaiting: usize,
    /// A stream held for its body was not given its window back (see
    /// HELD_BUDGET): look again once bodies leave.
    held_starved: bool,
}

struct Block {
    stream: u32,
    end_stream: bool,
    /// The PRIORITY flag named the stream itself as its parent.
    self_dependent: bool,
    bytes: Vec<u8>,
}

impl Conn {
    /// A connection whose first bytes, `start`, are already read (the
    /// preface, or part of it). Our SETTINGS go out first.
    pub(crate) fn new(io: Transport, peer: SocketAddr, start: &[u8], now: Instant, s: &Settings) -> Conn {
        let mut out = Vec::with_capacity(64);
        frame::put_settings(
            &mut out,
            &[
                (frame::SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS as u32),
                (frame::SETTINGS_MAX_HEADER_LIST_SIZE, s.limits.max_header_bytes as u32),
                (frame::SETTINGS_ENABLE_PUSH, 0),
            ],
        );
        let mut c = Conn {
            io,
            peer,
            phase: Phase::Preface,
            deadline: now,
            since: now,
            input: start.to_vec(),
            out,
            out_pos: 0,
            produced: Vec::new(),
            streams: Vec::new(),
            last_stream: 0,
            ignored_to: 0,
            closed: [(0, false); CLOSED_MEMORY],
            closed_next: 0,
            send_window: frame::DEFAULT_WINDOW,
            recv_window: frame::DEFAULT_WINDOW,
            peer_window: frame::DEFAULT_WINDOW,
            peer_max_frame: frame::DEFAULT_MAX_FRAME,
            table_update: false,
            decoder: Decoder::new(),
            block: None,
            got_settings: false,
            opened: 0,
            resets: 0,
            goaway_sent: false,
            shut: false,
            awaiting: 0,
            held_starved: false,
        };
        c.arm(s);
        c
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn ready(&mut self, readable: bool, hup: bool) {
        self.io.ready(readable, hup);
    }

    /// Its transport, for the loop to hand back what its batch of sends
    /// could not send.
    pub(crate) fn transport_mut(&mut self) -> &mut Transport {
        &mut self.io
    }

    pub(crate) fn wants_write(&self) -> bool {
        self.unsent() > 0 || self.io.wants_write()
    }

    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        self.io.socket()
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.io.fd()
    }

    fn unsent(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// The deadline of the current wait: the one place timeouts are chosen.
    fn arm(&mut self, s: &Settings) {
        self.deadline = match self.phase {
            Phase::Preface => self.since + s.header_timeout,
            Phase::Closing => self.since + LINGER,
            _ if self.streams.iter().any(Stream::waits_on_app) => {
                self.since + s.reply_timeout.max(s.send_timeout)
            }
            _ if !self.streams.is_empty() || self.unsent() > 0 => self.since + s.send_timeout,
            _ => self.since + s.keepalive_timeout,
        };
    }

    /// A graceful stop began: GOAWAY naming the last stream this server
    /// will answer; the streams under way finish, then the connection
    /// lingers closed (see `linger`). True to close now: only before the
    /// preface, when there is nothing to say GOAWAY on.
    pub(crate) fn drain(&mut self, now: Instant) -> bool {
        if self.phase == Phase::Preface {
            return true;
        }
        self.go_away(ErrorCode::NoError);
        // Best effort: the loop drives it again on its next event.
        let _ = self.send_out(&mut Turn::default());
        if self.streams.is_empty() && self.unsent() == 0 {
            self.linger(now);
        }
        false
    }

    /// Everything is sent: shut our side and read what the client still
    /// sends until it closes (or LINGER passes). Closing at once with its
    /// WINDOW_UPDATEs unread would make the kernel reset the connection and
    /// drop the last DATA still in the socket buffer.
    fn linger(&mut self, now: Instant) {
        self.phase = Phase::Closing;
        self.since = now;
        self.deadline = now + LINGER;
        if !self.shut {
            self.shut = true;
            self.io.shutdown_write();
        }
    }

    /// Queue GOAWAY (once): NO_ERROR starts a graceful end, any other code
    /// closes the connection once it is written.
    fn go_away(&mut self, code: ErrorCode) {
        if code != ErrorCode::NoError {
            self.phase = Phase::Closing;
            self.streams.clear();
            self.input = Vec::new();
        } else if self.phase == Phase::Open {
            self.phase = Phase::GoingAway;
        }
        if !self.goaway_sent {
            self.goaway_sent = true;
            frame::put_goaway(&mut self.out, self.last_stream, code);
        }
    }

    /// Run the connection as far as it goes without blocking.
    pub(crate) fn drive(
        &mut self,
        rbuf: &mut [u8],
        bufs: &mut Buffers,
        cx: &mut Exchange,
        draining: bool,
        now: Instant,
    ) -> io::Result<Step> {
        if draining && !self.goaway_sent {
            if self.phase == Phase::Preface {
                return Ok(Step::Close);
            }
            self.go_away(ErrorCode::NoError);
        }
        if self.out.capacity() == 0 {
            // Borrow the loop's spare output buffer (see the end).
            self.out = std::mem::take(&mut bufs.spare);
        }
        let mut turn = Turn::default();
        let step = loop {
            if self.awaiting > 0 {
                self.collect(bufs, cx, now);
            }
            let before = (turn.read, turn.sent, self.unsent());
            let blocked = !self.send_out(&mut turn)?;
            if self.phase == Phase::Closing {
                if blocked {
                    break Step::Wait;
                }
                // GOAWAY is out: drain what the client still sends, briefly,
                // so it reads the GOAWAY rather than a reset.
                if !self.shut {
                    self.shut = true;
                    self.io.shutdown_write();
                }
                match self.discard_input(rbuf, &mut turn)? {
                    Read::Eof => break Step::Close,
                    Read::Progress if turn.read >= TURN_READ => break Step::Yield,
                    Read::Progress => continue,
                    Read::Idle => break Step::Wait,
                }
            }
            if self.unsent() < OUT_LIMIT && (!self.input.is_empty() || self.io.readable()) {
                if turn.read >= TURN_READ || turn.responses >= TURN_STREAMS {
                    break Step::Yield;
                }
                match self.read(rbuf, bufs, cx, now, &mut turn)? {
                    Read::Eof => break Step::Close,
                    Read::Progress => continue,
                    Read::Idle => {}
                }
            }
            if !blocked && self.unsent() == 0 && self.sendable(cx) {
                if turn.sent >= SEND_TURN {
                    break Step::Yield;
                }
                if self.produce() {
                    self.since = now;
                }
            }
            if (turn.read, turn.sent, self.unsent()) == before {
                break Step::Wait;
            }
        };
        if turn.sent > 0 && self.streams.is_empty() && self.phase != Phase::Closing {
            // With no stream waiting, a write is progress (the idle timeout
            // runs from the last one); with streams, only their DATA is (see
            // `produce`), so a peer that never opens its window, or never
            // reads, meets the send timeout however many PINGs it sends.
            self.since = now;
        }
        if self.out.is_empty() {
            // Nothing waits to be written: the buffer goes back to the loop,
            // so an idle connection holds none and a busy one does not grow
            // a fresh one every turn.
            bufs.spare = std::mem::take(&mut self.out);
        } else {
            // The socket did not take a large batch: take back what is
            // beyond one small batch (1,000 stalled downloads held 279 -
            // 314 KiB each in the workers without this: under the kernel's
            // TCP memory pressure a socket takes less than its room).
            self.take_back();
            if self.out.capacity() > OUT_LIMIT {
                // Keep only what is unsent, and the large buffer goes
                // back to the loop: a client that stops reading holds what
                // it did not take, not the batch's whole buffer.
                let unsent = self.out[self.out_pos..].to_vec();
                let mut large = std::mem::replace(&mut self.out, unsent);
                self.out_pos = 0;
                large.clear();
                bufs.spare = large;
            }
        }
        // A batch can be taken back only within the turn that made it.
        self.produced = Vec::new();
        let done = self.streams.is_empty() && self.unsent() == 0 && !self.io.wants_write();
        if self.phase == Phase::GoingAway && done {
            self.linger(now);
            return Ok(Step::Yield);
        }
        self.arm(cx.settings());
        Ok(step)
    }

    /// Write the output buffer. True when all of it (and whatever the
    /// transport held) is written.
    fn send_out(&mut self, turn: &mut Turn) -> io::Result<bool> {
        while self.out_pos < self.out.len() {
            if !self.io.flush()? {
                return Ok(false);
            }
            // Over TLS the transport takes what rustls's buffer holds (64
            // KiB, four records written out with one writev) and says how
            // much, as plain TCP does when the socket fills.
            let n = self.io.send(&self.out[self.out_pos..], false)?;
            self.out_pos += n;
            turn.sent += n;
            if n == 0 {
                return Ok(false);
            }
        }
        if self.out.capacity() > OUT_BATCH_MAX * 2 {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        self.produced.clear();
        if self.streams.is_empty() && self.streams.capacity() > 0 {
            // Nothing waits: an idle connection keeps no stream list.
            self.streams = Vec::new();
        }
        self.out_pos = 0;
        self.io.flush()
    }

    /// Some stream has body bytes it may send now. Streamed bodies whose
    /// piece is all sent take their next one first: only now, when the
    /// socket has taken everything, so no producer runs ahead of the client.
    fn sendable(&mut self, cx: &Exchange) -> bool {
        if self.streams.iter().any(|s| matches!(s.body, Some(Body::Stream(_)))) {
            let wake = cx.wakeup();
            for s in &mut self.streams {
                if let Some(b) = s.body.as_mut() {
                    b.refill(&wake);
                }
            }
        }
        let conn_window = self.send_window;
        self.streams.iter().any(|s| s.can_send(conn_window))
    }

    /// How much DATA to produce for the next write: OUT_BATCH, or up to
    /// OUT_BATCH_MAX when the streams have more than that to send now and
    /// the socket has room for it. Asking the socket costs a system call,
    /// so it is asked only then: small answers never pay for it.
    fn batch(&self) -> usize {
        let mut want = 0u64;
        for s in &self.streams {
            if let Some(b) = s.body.as_ref().filter(|b| b.ready()) {
                want += b.remaining().min(s.window.max(0) as u64);
            }
        }
        let want = want.min(self.send_window.max(0) as u64);
        if want <= OUT_BATCH as u64 {
            return OUT_BATCH;
        }
        match self.io.send_room() {
            Ok(room) => room.min(want as usize).clamp(OUT_BATCH, OUT_BATCH_MAX),
            Err(_) => OUT_BATCH,
        }
    }

    /// DATA frames, round-robin over the streams, until the batch is queued
    /// or the windows are shut. A stream's share of a round is what the
    /// windows allow, up to OUT_BATCH (four frames, one read of a file);
    /// then it goes to the back of the line. True if any was made.
    fn produce(&mut self) -> bool {
        let max_frame = self.peer_max_frame as usize;
        let batch = self.batch();
        // In a large batch a stream's last piece may only come first (when
        // it ends its stream it cannot be taken back, see `take_back`); met
        // later, it ends the batch and goes first in the next.
        let large = batch > OUT_BATCH;
        let mut any = false;
        while self.unsent() < batch {
            let conn_window = self.send_window;
            let Some(i) = self.streams.iter().position(|s| s.can_send(conn_window)) else {
                break;
            };
            let mut s = self.streams.remove(i);
            let Some(body) = s.body.as_mut() else {
                self.streams.push(s);
                continue;
            };
            if let Body::Stream(st) = body {
                if st.end == Some(false) {
                    log::debug!("{}: stream {}: the body's producer failed", self.peer, s.id);
                    frame::put_rst(&mut self.out, s.id, ErrorCode::Internal);
                    self.remember_closed(s.id, true);
                    continue;
                }
            }
            let left = body.remaining();
            let room = (batch - self.unsent()).min(OUT_BATCH) as i64;
            // None when only the body's end is left (or the windows are
            // shut, which then holds back nothing but that end).
            let n = (left as i64).min(s.window).min(self.send_window).min(room).max(0) as usize;
            let last = body.ends_with(n as u64);
            if large && last && any {
                self.streams.push(s);
                break;
            }
            let at = self.out.len();
            if let Err(e) = put_data(&mut self.out, body, s.id, n, max_frame, last) {
                log::debug!("{}: stream {}: {e}", self.peer, s.id);
                frame::put_rst(&mut self.out, s.id, ErrorCode::Internal);
                self.remember_closed(s.id, true);
                continue;
            }
            s.window -= n as i64;
            self.send_window -= n as i64;
            if large && !last {
                self.produced.push(Produced { id: s.id, at, end: self.out.len(), n });
            }
            any = true;
            if last {
                s.body = None;
                if s.remote_done {
                    self.remember_closed(s.id, false);
                    continue;
                }
                // The request body is still coming: the stream stays
                // (half-closed, local) until it ends.
            }
            self.streams.push(s);
        }
        any
    }

    /// The socket took only part of a large batch: take back its DATA
    /// from the end while more than OUT_BATCH is unsent, each piece to its
    /// stream (the body's position and both windows), to be framed again
    /// when the socket has room. Frames queued after the batch (answers'
    /// HEADERS, acknowledgements) stay, moved up: none of them belongs to a
    /// stream whose DATA they pass (a stream's last piece, and its reset,
    /// are never taken back). Stops at a piece the socket has begun to take.
    fn take_back(&mut self) {
        while self.unsent() > OUT_BATCH {
            let Some(p) = self.produced.last() else { break };
            if p.at < self.out_pos {
                break;
            }
            let Some(s) = self.streams.iter_mut().find(|s| s.id == p.id) else { break };
            let Some(body) = s.body.as_mut() else { break };
            body.unsend(p.n);
            s.window += p.n as i64;
            self.send_window += p.n as i64;
            self.out.drain(p.at..p.end);
            self.produced.pop();
        }
    }

    /// Forget stream `i` (closed), remembering its id.
    fn close_stream(&mut self, i: usize, reset_by_us: bool) {
        let s = self.streams.swap_remove(i);
        self.remember_closed(s.id, reset_by_us);
    }

    fn remember_closed(&mut self, id: u32, reset_by_us: bool) {
        self.closed[self.closed_next] = (id, reset_by_us);
        self.closed_next = (self.closed_next + 1) % CLOSED_MEMORY;
    }

    /// What is remembered of a closed stream: Some(reset by us).
    fn was_closed(&self, id: u32) -> Option<bool> {
        self.closed.iter().find(|(c, _)| *c == id && id != 0).map(|(_, r)| *r)
    }

    /// The highest stream id the client has used: streams above it are idle.
    fn highest_seen(&self) -> u32 {
        self.last_stream.max(self.ignored_to)
    }

    fn stream(&mut self, id: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.id == id)
    }

    /// Closing: read and drop what the client still sends.
    fn discard_input(&mut self, rbuf: &mut [u8], turn: &mut Turn) -> io::Result<Read> {
        match self.io.recv(rbuf)? {
            Recv::Data(n) => {
                turn.read += n;
                Ok(Read::Progress)
            }
            Recv::Blocked => Ok(Read::Idle),
            Recv::Eof => Ok(Read::Eof),
        }
    }

    /// Handle the input held back, else read and handle more.
    fn read(
        &mut self,
        rbuf: &mut [u8],
        bufs: &mut Buffers,
        cx: &mut Exchange,
        now: Instant,
        turn: &mut Turn,
    ) -> io::Result<Read> {
        if !self.input.is_empty() {
            let input = std::mem::take(&mut self.input);
            let used = self.handle(&input, bufs, cx, now, turn);
            if self.phase == Phase::Closing {
                return Ok(Read::Progress);
            }
            self.input = input;
            self.input.drain(..used);
            if self.input.is_empty() {
                // An idle connection keeps no buffer.
                self.input = Vec::new();
            }
            if used > 0 {
                return Ok(Read::Progress);
            }
            // An incomplete frame: read the rest after it, through the
            // loop's buffer (growing `input` by READ_PIECE for each read
            // would zero that much a read, however few bytes arrive).
            if !self.io.readable() {
                return Ok(Read::Idle);
            }
            let piece = READ_PIECE.min(rbuf.len());
            let got = self.io.recv(&mut rbuf[..piece]);
            if let Ok(Recv::Data(n)) = got {
                self.input.extend_from_slice(&rbuf[..n]);
            }
            return Ok(match got? {
                Recv::Data(n) => {
                    turn.read += n;
                    Read::Progress
                }
                Recv::Blocked => Read::Idle,
                Recv::Eof => Read::Eof,
            });
        }
        let n = match self.io.recv(rbuf)? {
            Recv::Data(n) => n,
            Recv::Blocked => return Ok(Read::Idle),
            Recv::Eof => return Ok(Read::Eof),
        };
        turn.read += n;
        let used = self.handle(&rbuf[..n], bufs, cx, now, turn);
        if self.phase != Phase::Closing && used < n {
            self.input = rbuf[used..n].to_vec();
        }
        Ok(Read::Progress)
    }

    /// Handle the frames at the start of `data`; the bytes used. Stops at
    /// an incomplete frame, when the turn's responses are spent, or when
    /// the output is full. A connection error queues GOAWAY and ends it.
    fn handle(
        &mut self,
        data: &[u8],
        bufs: &mut Buffers,
        cx: &mut Exchange,
        now: Instant,
        turn: &mut Turn,
    ) -> usize {
        let mut pos = 0;
        if self.phase == Phase::Preface {
            let n = data.len().min(frame::PREFACE.len());
            if data[..n] != frame::PREFACE[..n] {
                log::debug!("{}: not an HTTP/2 preface", self.peer);
                self.go_away(ErrorCode::Protocol);
                return data.len();
            }
            if n < frame::PREFACE.len() {
                return 0;
            }
            self.phase = Phase::Open;
            self.since = now;
            pos = n;
        }
        while self.phase != Phase::Closing {
            let rest = &data[pos..];
            if rest.len() < frame::HEAD_LEN {
                break;
            }
            let head = Head::parse(rest);
            if head.len > frame::DEFAULT_MAX_FRAME {
                self.fail(ConnError::new(ErrorCode::FrameSize, "frame larger than SETTINGS_MAX_FRAME_SIZE"));
                return data.len();
            }
            let end = frame::HEAD_LEN + head.len as usize;
            if rest.len() < end {
                break;
            }
            if turn.responses >= TURN_STREAMS || self.unsent() >= OUT_LIMIT {
                break;
            }
            let payload = &rest[frame::HEAD_LEN..end];
            pos += end;
            if let Err(e) = self.frame(head, payload, bufs, cx, now, turn) {
                self.fail(e);
                return data.len();
            }
        }
        self.grant_held();
        pos
    }

    fn fail(&mut self, e: ConnError) {
        log::debug!("{}: HTTP/2 connection error {:?}: {}", self.peer, e.code, e.why);
        self.go_away(e.code);
        self.since = Instant::now();
    }

    /// One frame.
    fn frame(
        &mut self,
        head: Head,
        payload: &[u8],
        bufs: &mut Buffers,
        cx: &mut Exchange,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<(), ConnError> {
        if let Some(b) = &self.block {
            if head.kind != frame::CONTINUATION || head.stream != b.stream {
                return Err(ConnError::new(ErrorCode::Protocol, "header block interrupted"));
            }
        }
        if !self.got_settings {
            if head.kind != frame::SETTINGS || head.has(frame::ACK) {
                return Err(ConnError::new(ErrorCode::Protocol, "first frame not SETTINGS"));
            }
            self.got_settings = true;
        }
        match head.kind {
            frame::DATA => self.on_data(head, payload, &mut bufs.block, cx, now),
            frame::HEADERS => self.on_headers(head, payload, bufs, cx, now, turn),
            frame::PRIORITY => self.on_priority(head, payload),
            frame::RST_STREAM => self.on_rst(head, payload),
            frame::SETTINGS => self.on_settings(head, payload),
            frame::PUSH_PROMISE => Err(ConnError::new(ErrorCode::Protocol, "PUSH_PROMISE from a client")),
            frame::PING => self.on_ping(head, payload),
            frame::GOAWAY => self.on_goaway(head),
            frame::WINDOW_UPDATE => self.on_window_update(head, payload),
            frame::CONTINUATION => self.on_continuation(head, payload, bufs, cx, now, turn),
            // Unknown frame types are ignored (RFC 9113 4.1).
            _ => Ok(()),
        }
    }

    fn on_data(
        &mut self,
        head: Head,
        payload: &[u8],
        block: &mut Vec<u8>,
        cx: &mut Exchange,
        now: Instant,
    ) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(ConnError::new(ErrorCode::Protocol, "DATA on stream 0"));
        }
        // The whole frame counts against the windows, padding included.
        let len = payload.len() as i64;
        self.recv_window -= len;
        if self.recv_window < 0 {
            return Err(ConnError::new(ErrorCode::FlowControl, "DATA beyond the connection window"));
        }
        if self.recv_window < frame::DEFAULT_WINDOW / 2 {
            // The bytes are not kept: give the window back.
            refill(&mut self.out, 0, &mut self.recv_window);
        }
        let content = frame::unpad(&head, payload)?;
        let Some(i) = self.stream(head.stream) else {
            return self.on_closed_stream(head.stream, "DATA");
        };
        // Only a stream held for its body needs the connection's count.
        let (held_bytes, oldest_held) = if self.streams[i].held.is_some() { self.held() } else { (0, None) };
        let s = &mut self.streams[i];
        if s.remote_done {
            frame::put_rst(&mut self.out, head.stream, ErrorCode::StreamClosed);
            self.close_stream(i, true);
            return Ok(());
        }
        s.recv_window -= len;
        s.received += content.len() as u64;
        let over = s.expect.is_some_and(|e| s.received > e);
        let short = head.has(frame::END_STREAM) && s.expect.is_some_and(|e| s.received != e);
        let code = if s.recv_window < 0 {
            Some(ErrorCode::FlowControl)
        } else if over || short {
            Some(ErrorCode::Protocol)
        } else {
            None
        };
        if let Some(code) = code {
            frame::put_rst(&mut self.out, head.stream, code);
            self.close_stream(i, true);
            return Ok(());
        }
        if let Some(held) = s.held.as_mut() {
            if held.body.len() as u64 + content.len() as u64 > held.limit {
                self.answer_held(i, Some(413), block, cx, now);
                return Ok(());
            }
            held.body.extend_from_slice(content);
            if head.has(frame::END_STREAM) {
                self.answer_held(i, None, block, cx, now);
                return Ok(());
            }
        }
        if head.has(frame::END_STREAM) {
            s.remote_done = true;
            if !s.answering() {
                self.close_stream(i, false);
            }
        } else if s.received > MAX_DISCARD && !s.answering() && s.held.is_none() {
            // Answered, and the body is not used: enough of it was read to
            // let the client see the answer (RFC 9113 8.1 lets a server
            // stop it with NO_ERROR).
            frame::put_rst(&mut self.out, head.stream, ErrorCode::NoError);
            self.close_stream(i, true);
        } else if s.recv_window < frame::DEFAULT_WINDOW / 2 {
            let over = s.held.is_some()
                && held_bytes + content.len() >= HELD_BUDGET
                && oldest_held != Some(head.stream);
            if over {
                self.held_starved = true;
            } else {
                refill(&mut self.out, head.stream, &mut s.recv_window);
            }
        }
        Ok(())
    }

    /// The request-body bytes held for handlers, and the oldest stream
    /// holding some.
    fn held(&self) -> (usize, Option<u32>) {
        let mut bytes = 0;
        let mut oldest = None;
        for s in &self.streams {
            if let Some(h) = &s.held {
                bytes += h.body.len();
                oldest = Some(oldest.map_or(s.id, |o: u32| o.min(s.id)));
            }
        }
        (bytes, oldest)
    }

    /// Give the streams held for their bodies the windows they were denied
    /// (see HELD_BUDGET), oldest first, while the bytes held stay under the
    /// budget; the oldest always.
    fn grant_held(&mut self) {
        if !self.held_starved {
            return;
        }
        self.held_starved = false;
        let (mut bytes, oldest) = self.held();
        let mut starved: Vec<u32> = self
            .streams
            .iter()
            .filter(|s| s.held.is_some() && s.recv_window < frame::DEFAULT_WINDOW / 2)
            .map(|s| s.id)
            .collect();
        starved.sort_unstable();
        for id in starved {
            if bytes >= HELD_BUDGET && Some(id) != oldest {
                self.held_starved = true;
                continue;
            }
            let Some(i) = self.stream(id) else { continue };
            bytes += refill(&mut self.out, id, &mut self.streams[i].recv_window);
        }
    }

    /// Stream `i` held its request for the body: answer it now, with the
    /// body (the client's END_STREAM came), or with `refuse` (413: the body
    /// passed the limit; the rest of it is then dropped as it comes).
    fn answer_held(
        &mut self,
        i: usize,
        refuse: Option<u16>,
        block: &mut Vec<u8>,
        cx: &mut Exchange,
        now: Instant,
    ) {
        let s = self.streams.swap_remove(i);
        let Some(held) = s.held else { return };
        // The stream's window as the client has moved it while the body
        // came (WINDOW_UPDATE, SETTINGS), not the initial one.
        let asked = Asked { f: &held.fields, body: &held.body, refuse, window: s.window };
        self.respond(s.id, refuse.is_none(), asked, block, cx, now);
    }

    /// A frame that needs an open stream came for one that is not open.
    fn on_closed_stream(&mut self, id: u32, what: &'static str) -> Result<(), ConnError> {
        if id > self.highest_seen() {
            log::debug!("{}: {what} on idle stream {id}", self.peer);
            return Err(ConnError::new(ErrorCode::Protocol, "frame on an idle stream"));
        }
        if id > self.last_stream {
            // A stream opened after our GOAWAY: ignored.
            return Ok(());
        }
        match self.was_closed(id) {
            // Frames the client sent before it saw our RST_STREAM.
            Some(true) => Ok(()),
            _ => {
                frame::put_rst(&mut self.out, id, ErrorCode::StreamClosed);
                Ok(())
            }
        }
    }

    fn on_headers(
        &mut self,
        head: Head,
        payload: &[u8],
        bufs: &mut Buffers,
        cx: &mut Exchange,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<(), ConnError> {
        if head.stream == 0 || head.stream % 2 == 0 {
            return Err(ConnError::new(ErrorCode::Protocol, "HEADERS on stream 0 or an even stream"));
        }
        let mut fragment = frame::unpad(&head, payload)?;
        let mut self_dependent = false;
        if head.has(frame::PRIORITY_FLAG) {
            if fragment.len() < 5 {
                return Err(ConnError::new(ErrorCode::FrameSize, "HEADERS too short for its priority"));
            }
            let parent =
                u32::from_be_bytes([fragment[0], fragment[1], fragment[2], fragment[3]]) & 0x7fff_ffff;
            self_dependent = parent == head.stream;
            fragment = &fragment[5..];
        }
        let block = Block {
            stream: head.stream,
            end_stream: head.has(frame::END_STREAM),
            self_dependent,
            bytes: Vec::new(),
        };
        if head.has(frame::END_HEADERS) {
            return self.on_block(&block, fragment, bufs, cx, now, turn);
        }
        let mut block = Box::new(block);
        block.bytes.extend_from_slice(fragment);
        self.check_block_size(block.bytes.len(), cx.settings())?;
        self.block = Some(block);
        Ok(())
    }

    fn check_block_size(&self, len: usize, s: &Settings) -> Result<(), ConnError> {
        if len > s.limits.max_header_bytes * BLOCK_FACTOR {
            return Err(ConnError::new(ErrorCode::EnhanceYourCalm, "header block too large"));
        }
        Ok(())
    }

    fn on_continuation(
        &mut self,
        head: Head,
        payload: &[u8],
        bufs: &mut Buffers,
        cx: &mut Exchange,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<(), ConnError> {
        let Some(mut block) = self.block.take() else {
            return Err(ConnError::new(ErrorCode::Protocol, "CONTINUATION without HEADERS"));
        };
        block.bytes.extend_from_slice(payload);
        self.check_block_size(block.bytes.len(), cx.settings())?;
        if !head.has(frame::END_HEADERS) {
            self.block = Some(block);
            return Ok(());
        }
        let bytes = std::mem::take(&mut block.bytes);
        self.on_block(&block, &bytes, bufs, cx, now, turn)
    }

    /// A complete header block: a request, or a request's trailers.
    fn on_block(
        &mut self,
        b: &Block,
        bytes: &[u8],
        bufs: &mut Buffers,
        cx: &mut Exchange,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<(), ConnError> {
        let limit = cx.settings().limits.max_header_bytes;
        // Decoded whatever becomes of the stream, so the table stays in step.
        self.decoder.decode(bytes, &mut bufs.fields, limit)?;
        let id = b.stream;
        if let Some(i) = self.stream(id) {
            // Trailers: they must end the stream and carry no pseudo-field.
            let f = &bufs.fields;
            let pseudo =
                f.method.is_some() || f.path.is_some() || f.scheme.is_some() || f.authority.is_some();
            let s = &mut self.streams[i];
            if s.remote_done {
                frame::put_rst(&mut self.out, id, ErrorCode::StreamClosed);
                self.close_stream(i, true);
            } else if !b.end_stream || pseudo || s.expect.is_some_and(|e| e != s.received) {
                frame::put_rst(&mut self.out, id, ErrorCode::Protocol);
                self.close_stream(i, true);
            } else if s.held.is_some() {
                self.answer_held(i, None, &mut bufs.block, cx, now);
            } else {
                s.remote_done = true;
                if !s.answering() {
                    self.close_stream(i, false);
                }
            }
            return Ok(());
        }
        if id > self.last_stream && id <= self.ignored_to {
            // Trailers of a stream opened after our GOAWAY: ignored too.
            return Ok(());
        }
        if id <= self.highest_seen() {
            return Err(match self.was_closed(id) {
                Some(_) => ConnError::new(ErrorCode::StreamClosed, "HEADERS on a closed stream"),
                None => ConnError::new(ErrorCode::Protocol, "stream id not above the last one"),
            });
        }
        if self.phase != Phase::Open {
            // After GOAWAY, new streams are ignored (RFC 9113 6.8).
            self.ignored_to = id;
            return Ok(());
        }
        self.last_stream = id;
        self.opened = self.opened.saturating_add(1);
        let f = &mut bufs.fields;
        f.finish_request();
        let refused = if b.self_dependent {
            Some(ErrorCode::Protocol)
        } else if f.malformed.is_some() {
            log::debug!("{}: stream {id}: malformed request: {}", self.peer, f.malformed.unwrap_or(""));
            Some(ErrorCode::Protocol)
        } else if self.streams.len() >= MAX_STREAMS {
            Some(ErrorCode::RefusedStream)
        } else {
            None
        };
        if let Some(code) = refused {
            if code == ErrorCode::Protocol {
                // A malformed request is logged as HTTP/1 logs one it
                // refuses: status 400, with what it named (nginx does the
                // same). A refused stream is not a request yet.
                let f = &bufs.fields;
                let method = f.method();
                let target = f.path();
                let line = RequestLine::Parsed { method, target, version: Version::Http2.as_str() };
                cx.log(self.peer, line, 400, 0, None, None);
            }
            frame::put_rst(&mut self.out, id, code);
            self.remember_closed(id, true);
            return Ok(());
        }
        turn.responses += 1;
        self.since = now;
        let Buffers { fields: f, block, .. } = bufs;
        let mut refuse = None;
        if !b.end_stream {
            let method = f.method();
            let path = f.path();
            if let Some(limit) = cx.responder.body_limit(method, path) {
                if f.content_length.is_some_and(|n| n > limit) {
                    refuse = Some(413);
                } else {
                    // A handler takes the body: answer once it is whole.
                    let held = Held { fields: f.clone(), body: Vec::new(), limit };
                    self.streams.push(Stream {
                        id,
                        window: self.peer_window,
                        recv_window: frame::DEFAULT_WINDOW,
                        remote_done: false,
                        body: None,
                        expect: f.content_length,
                        received: 0,
                        held: Some(Box::new(held)),
                        waiting: None,
                    });
                    return Ok(());
                }
            }
        }
        let asked = Asked { f, body: &[], refuse, window: self.peer_window };
        self.respond(id, b.end_stream, asked, block, cx, now);
        Ok(())
    }

    /// Answer the request in `bufs.fields` on stream `id`.
    fn respond(
        &mut self,
        id: u32,
        remote_done: bool,
        asked: Asked<'_>,
        block: &mut Vec<u8>,
        cx: &mut Exchange,
        now: Instant,
    ) {
        let (f, window) = (asked.f, asked.window);
        if let Some(status) = asked.refuse {
            cx.reply.error(status);
        } else if f.too_large {
            cx.reply.error(431);
        } else {
            cx.respond(&self.request(f, asked.body), now);
            if let Some(answer) = cx.reply.take_later() {
                // `collect` looks at it on the drive loop's next round
                // (a read that answered a request always makes one), so
                // the reply's thread learns whom to wake.
                let waiting = Waiting { answer, fields: f.clone() };
                self.streams.push(Stream {
                    id,
                    window,
                    recv_window: frame::DEFAULT_WINDOW,
                    remote_done,
                    body: None,
                    expect: f.content_length,
                    received: 0,
                    held: None,
                    waiting: Some(Box::new(waiting)),
                });
                self.awaiting += 1;
                return;
            }
        }
        self.send_reply(id, remote_done, window, f, block, cx);
    }

    /// The responder's view of the request in `f`, with `body`.
    fn request<'a>(&self, f: &'a Fields, body: &'a [u8]) -> Request<'a> {
        Request {
            method: f.method(),
            target: f.path(),
            version: Version::Http2,
            fields: RequestFields::new(&f.bytes, &f.spans),
            peer: self.peer,
            secure: self.io.is_tls(),
            body,
        }
    }

    /// Streams waiting for a late reply whose reply came: answer them.
    fn collect(&mut self, bufs: &mut Buffers, cx: &mut Exchange, now: Instant) {
        let wake = cx.wakeup();
        let mut i = 0;
        let mut waiting = 0;
        while i < self.streams.len() {
            let answer = match &self.streams[i].waiting {
                Some(w) => w.answer.poll(&wake),
                None => None,
            };
            let Some(answer) = answer else {
                waiting += usize::from(self.streams[i].waiting.is_some());
                i += 1;
                continue;
            };
            let s = self.streams.swap_remove(i);
            let Some(w) = s.waiting else { continue };
            let f = &w.fields;
            cx.responder.finish(&self.request(f, &[]), answer, &mut cx.reply);
            if let Some(answer) = cx.reply.take_later() {
                // Another later: wait again (looked at when the loop
                // reaches it, at the end of the list).
                let w = Waiting { answer, fields: w.fields };
                self.streams.push(Stream { waiting: Some(Box::new(w)), ..s });
                continue;
            }
            self.since = now;
            self.send_reply(s.id, s.remote_done, s.window, f, &mut bufs.block, cx);
        }
        self.awaiting = waiting;
    }

    /// Frame `cx.reply` for the request `f` on stream `id`: log it, the
    /// HEADERS, and the body (at once when it fits, else the stream keeps
    /// it for `produce`). `window` is the stream's send window.
    fn send_reply(
        &mut self,
        id: u32,
        remote_done: bool,
        window: i64,
        f: &Fields,
        block: &mut Vec<u8>,
        cx: &mut Exchange,
    ) {
        let method = f.method();
        let target = f.path();
        let fields = RequestFields::new(&f.bytes, &f.spans);
        let is_head = method == b"HEAD";
        let bodiless = is_head || status::is_bodiless(cx.reply.status);
        let body_bytes = if bodiless { 0 } else { cx.reply.content_length };
        let (referer, agent) = match cx.logging() {
            true => (fields.get(b"referer"), fields.get(b"user-agent")),
            false => (None, None),
        };
        let line = RequestLine::Parsed { method, target, version: Version::Http2.as_str() };
        cx.log(self.peer, line, cx.reply.status, body_bytes, referer, agent);
        // The header block.
        let Exchange { reply, clock, .. } = cx;
        block.clear();
        if std::mem::take(&mut self.table_update) {
            hpack::put_table_size(block, 0);
        }
        hpack::put_status(block, reply.status);
        hpack::put_field(block, b"server", SERVER.as_bytes());
        hpack::put_field(block, b"date", &clock.http);
        for (name, value) in reply.fields.iter() {
            hpack::put_field(block, name, value);
        }
        if reply.sends_length() {
            let mut digits = [0u8; 20];
            let n = decimal(reply.content_length, &mut digits);
            hpack::put_field(block, b"content-length", n);
        }
        let body = match reply.take_payload() {
            _ if bodiless => None,
            Payload::Empty => None,
            Payload::Buffered => Some(Body::Bytes { bytes: reply.bytes.clone(), pos: 0 }),
            Payload::Bytes(b) => Some(Body::Bytes { bytes: b, pos: 0 }),
            Payload::Static(b) => Some(Body::Static { bytes: b, pos: 0 }),
            Payload::File(f) => Some(Body::File(f)),
            Payload::Stream(src) => {
                Some(Body::Stream(Box::new(Streamed { src, piece: Vec::new(), pos: 0, end: None })))
            }
            // Waited for in `respond`, never framed.
            Payload::Later(_) => None,
        }
        .filter(|b| matches!(b, Body::Stream(_)) || b.remaining() > 0);
        put_headers(&mut self.out, block, id, body.is_none(), self.peer_max_frame as usize);
        let expect = f.content_length;
        let Some(mut body) = body else {
            if remote_done {
                self.remember_closed(id, false);
            } else {
                // Answered; the request body is still coming.
                self.streams.push(Stream {
                    id,
                    window,
                    recv_window: frame::DEFAULT_WINDOW,
                    remote_done,
                    body: None,
                    expect,
                    received: 0,
                    held: None,
                    waiting: None,
                });
            }
            return;
        };
        let len = body.remaining();
        // One frame of at most OUT_BATCH: a peer's frame size may be 16
        // MiB, and a whole large file must not be read into one frame.
        let fits =
            len as i64 <= window.min(self.send_window).min(self.peer_max_frame as i64).min(OUT_BATCH as i64);
        let streamed = matches!(body, Body::Stream(_));
        if fits && remote_done && !streamed && self.unsent() < OUT_BATCH {
            // The common case: the whole body in one frame, right now.
            if put_data(&mut self.out, &mut body, id, len as usize, self.peer_max_frame as usize, true)
                .is_ok()
            {
                self.send_window -= len as i64;
                self.remember_closed(id, false);
                return;
            }
            frame::put_rst(&mut self.out, id, ErrorCode::Internal);
            self.remember_closed(id, true);
            return;
        }
        self.streams.push(Stream {
            id,
            window,
            recv_window: frame::DEFAULT_WINDOW,
            remote_done,
            body: Some(body),
            expect,
            received: 0,
            held: None,
            waiting: None,
        });
    }

    fn on_priority(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream == 0 {
            return Err(ConnError::new(ErrorCode::Protocol, "PRIORITY on stream 0"));
        }
        if payload.len() != 5 {
            frame::put_rst(&mut self.out, head.stream, ErrorCode::FrameSize);
            return Ok(());
        }
        let parent = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff;
        if parent == head.stream {
            frame::put_rst(&mut self.out, head.stream, ErrorCode::Protocol);
        }
        // Otherwise ignored: no priority tree (RFC 9113 5.3.2).
        Ok(())
    }

    fn on_rst(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if payload.len() != 4 {
            return Err(ConnError::new(ErrorCode::FrameSize, "RST_STREAM not 4 bytes"));
        }
        if head.stream == 0 || head.stream > self.highest_seen() {
            return Err(ConnError::new(ErrorCode::Protocol, "RST_STREAM on stream 0 or an idle stream"));
        }
        if let Some(i) = self.stream(head.stream) {
            self.close_stream(i, false);
        }
        self.resets = self.resets.saturating_add(1);
        if self.resets > MAX_RESETS && self.resets.saturating_mul(2) >= self.opened {
            return Err(ConnError::new(ErrorCode::EnhanceYourCalm, "rapid reset"));
        }
        Ok(())
    }

    fn on_settings(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(ConnError::new(ErrorCode::Protocol, "SETTINGS on a stream"));
        }
        if head.has(frame::ACK) {
            if !payload.is_empty() {
                return Err(ConnError::new(ErrorCode::FrameSize, "SETTINGS ACK with a payload"));
            }
            return Ok(());
        }
        if payload.len() % 6 != 0 {
            return Err(ConnError::new(ErrorCode::FrameSize, "SETTINGS not a multiple of 6 bytes"));
        }
        for s in payload.chunks_exact(6) {
            let id = u16::from_be_bytes([s[0], s[1]]);
            let value = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
            match id {
                frame::SETTINGS_HEADER_TABLE_SIZE => {
                    self.table_update |= (value as usize) < hpack::TABLE_SIZE
                }
                frame::SETTINGS_ENABLE_PUSH if value > 1 => {
                    return Err(ConnError::new(ErrorCode::Protocol, "ENABLE_PUSH not 0 or 1"));
                }
                frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                    let value = i64::from(value);
                    if value > frame::MAX_WINDOW {
                        return Err(ConnError::new(ErrorCode::FlowControl, "INITIAL_WINDOW_SIZE too large"));
                    }
                    let delta = value - self.peer_window;
                    self.peer_window = value;
                    for st in &mut self.streams {
                        st.window += delta;
                        if st.window > frame::MAX_WINDOW {
                            return Err(ConnError::new(ErrorCode::FlowControl, "stream window overflow"));
                        }
                    }
                }
                frame::SETTINGS_MAX_FRAME_SIZE => {
                    if !(frame::DEFAULT_MAX_FRAME..=frame::MAX_FRAME_LIMIT).contains(&value) {
                        return Err(ConnError::new(ErrorCode::Protocol, "MAX_FRAME_SIZE out of range"));
                    }
                    self.peer_max_frame = value;
                }
                // MAX_CONCURRENT_STREAMS limits pushes (never sent);
                // MAX_HEADER_LIST_SIZE is advisory; others are unknown.
                _ => {}
            }
        }
        frame::put_settings_ack(&mut self.out);
        Ok(())
    }

    fn on_ping(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(ConnError::new(ErrorCode::Protocol, "PING on a stream"));
        }
        if payload.len() != 8 {
            return Err(ConnError::new(ErrorCode::FrameSize, "PING not 8 bytes"));
        }
        if !head.has(frame::ACK) {
            frame::put_ping_ack(&mut self.out, payload);
        }
        Ok(())
    }

    fn on_goaway(&mut self, head: Head) -> Result<(), ConnError> {
        if head.stream != 0 {
            return Err(ConnError::new(ErrorCode::Protocol, "GOAWAY on a stream"));
        }
        // The client opens no more streams and closes when it is done; the
        // connection serves on until then (the idle timeout ends it if the
        // client does not).
        Ok(())
    }

    fn on_window_update(&mut self, head: Head, payload: &[u8]) -> Result<(), ConnError> {
        if payload.len() != 4 {
            return Err(ConnError::new(ErrorCode::FrameSize, "WINDOW_UPDATE not 4 bytes"));
        }
        let inc =
            i64::from(u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]) & 0x7fff_ffff);
        if head.stream == 0 {
            if inc == 0 {
                return Err(ConnError::new(ErrorCode::Protocol, "WINDOW_UPDATE of 0"));
            }
            self.send_window += inc;
            if self.send_window > frame::MAX_WINDOW {
                return Err(ConnError::new(ErrorCode::FlowControl, "connection window overflow"));
            }
            return Ok(());
        }
        if head.stream > self.highest_seen() {
            return Err(ConnError::new(ErrorCode::Protocol, "WINDOW_UPDATE on an idle stream"));
        }
        let Some(i) = self.stream(head.stream) else { return Ok(()) };
        let s = &mut self.streams[i];
        s.window += inc;
        let code = if inc == 0 {
            Some(ErrorCode::Protocol)
        } else if s.window > frame::MAX_WINDOW {
            Some(ErrorCode::FlowControl)
        } else {
            None
        };
        if let Some(code) = code {
            frame::put_rst(&mut self.out, head.stream, code);
            self.close_stream(i, true);
        }
        Ok(())
    }
}

/// Give a receive window (the connection's, stream 0, or a stream's) back
/// up to the default with one WINDOW_UPDATE; returns the increment.
fn refill(out: &mut Vec<u8>, id: u32, window: &mut i64) -> usize {
    let inc = frame::DEFAULT_WINDOW - *window;
    *window = frame::DEFAULT_WINDOW;
    frame::put_window_update(out, id, inc as u32);
    inc as usize
}

#[cfg(test)]
mod tests;
