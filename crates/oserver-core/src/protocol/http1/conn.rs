//! One HTTP/1.1 connection: a state machine that owns its data.
//!
//! ```text
//!            accept
//!              |
//!              v
//!   +-----> Idle --(first byte)--> Reading --(head complete)--> Writing
//!   |                                 |                           |
//!   |                           (bad request)              (sent: `then`)
//!   |                                 v                           |
//!   |                      Writing(then: Linger)     KeepAlive / Close / Linger
//!   |                                                   |         |       |
//!   +---------------------------------------------------+      closed  Closing
//!                                                          (EOF / timer) -> closed
//! ```
//!
//! Each state's function goes straight into the next state when it can,
//! without waiting for another poll; `drive` returns when the socket would
//! block, when the connection is done, or when its turn is used up.
//!
//! Three decisions live in one place each: what follows a request head (its
//! body: nothing, bytes to drop, or a chunked body to decode and drop) in
//! [`body_framing`]; what happens after a response in [`Conn::decide`]; when
//! the state's deadline falls in [`Conn::arm`], called as each state is
//! entered.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::chunked::Chunked;
use super::encode;
use super::parse::{ParseError, Parser, RequestHead, Status};
use crate::http::status;
use crate::protocol::access_log::{RequestLine, RAW_LINE};
use crate::protocol::exchange::{Exchange, Step};
use crate::protocol::http2::frame::PREFACE_LINE;
use crate::respond::handler::Awaited;
use crate::respond::stream::{BodyStream, Piece};
use crate::respond::{FileBody, Payload, Request, Version};
use crate::settings::Settings;
use crate::transport::{Recv, Transport};

/// Bytes read per read(2) into the loop's buffer. A request head is at most
/// 16 KiB by default; 64 KiB also takes a burst of pipelined requests in one
/// call.
pub(crate) const READ_CHUNK: usize = 64 * 1024;

/// The most one connection sends in one turn before the others get theirs, so
/// a big download cannot starve small requests on the same loop. 512 KiB is a
/// few socket buffers' worth: large enough that sendfile's per-call cost is
/// spread thin.
const SEND_TURN: u64 = 512 * 1024;

/// The most responses one connection gets in one turn. A client pipelining
/// thousands of small requests would otherwise hold the loop for as long as
/// it keeps the pipe full; 32 small responses take tens of microseconds.
const TURN_RESPONSES: u32 = 32;

/// Most bytes of pipelined responses held back to leave in one write: a
/// client that pipelines small requests gets their answers in one send(2)
/// per batch instead of one each (hyper and may_minihttp do the same), and
/// 64 KiB is about what one send to a fresh socket takes.
const BATCH: usize = 64 * 1024;

/// The most bytes one connection reads in one turn (request bodies being
/// dropped, a closing connection being drained): four reads of READ_CHUNK.
const TURN_READ: usize = 4 * READ_CHUNK;

/// Largest request body read and thrown away so the connection can stay open.
/// No request body is used yet; a static server is sent one only by mistake
/// (a form posted to it). 1 MiB covers those; beyond it the answer is 413
/// and the connection closes, which is cheaper than reading.
const MAX_DISCARD: u64 = 1 << 20;

/// Most bytes of a chunked body read off the wire while dropping it: its
/// decoded bytes are bounded by MAX_DISCARD, but chunk sizes and extensions
/// can make the wire form longer (a 4 KiB extension per byte of body); four
/// times MAX_DISCARD is more than any honest client's framing costs.
const MAX_CHUNKED_WIRE: u64 = 4 * MAX_DISCARD;

/// A chunked request body being dropped.
pub(crate) struct ChunkedDiscard {
    dec: Chunked,
    /// Bytes of it read off the wire so far.
    wire: u64,
}

impl ChunkedDiscard {
    fn new() -> Box<ChunkedDiscard> {
        Box::new(ChunkedDiscard { dec: Chunked::new(MAX_DISCARD), wire: 0 })
    }

    /// Decode and drop what `data` holds of the body: the bytes used, and
    /// whether the body is complete. A framing error, a body over
    /// MAX_DISCARD or a wire form over MAX_CHUNKED_WIRE is an error (the
    /// connection closes: the request was answered already).
    fn drop_from(&mut self, data: &[u8]) -> io::Result<(usize, bool)> {
        let mut sink = Vec::new();
        let p =
            self.dec.decode(data, &mut sink).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.wire += p.consumed as u64;
        if self.wire > MAX_CHUNKED_WIRE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "chunked body framing too long"));
        }
        Ok((p.consumed, p.done))
    }
}

/// How long a closing connection is drained before it is closed anyway.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// What one event loop's HTTP/1 connections share: the read buffer every
/// read goes into first, and the parser that runs over it. A connection
/// keeps bytes of its own only while a head is incomplete or requests are
/// pipelined (`Pending`).
pub(crate) struct Buffers {
    pub inbuf: Vec<u8>,
    pub parser: Parser,
}

impl Buffers {
    pub(crate) fn new() -> Buffers {
        Buffers { inbuf: vec![0; READ_CHUNK], parser: Parser::new() }
    }
}

/// Bytes received but not yet answered: a head that arrived in pieces, or
/// pipelined requests behind the one being answered. Boxed and only present
/// while needed, so an idle connection costs a few words.
pub(crate) struct Pending {
    buf: Vec<u8>,
    /// Where the unanswered bytes start: answered pipelined requests are
    /// skipped, not drained one by one (which moved the rest of a batch
    /// for every request), and dropped before more is read.
    start: usize,
    parser: Parser,
    /// The head in `buf` is complete and its body is being read for a
    /// handler, behind it.
    body: Option<BodyWait>,
}

impl Pending {
    fn new(buf: Vec<u8>, parser: Parser) -> Box<Pending> {
        Box::new(Pending { buf, start: 0, parser, body: None })
    }

    /// The bytes not answered yet.
    fn data(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drop the answered bytes from the buffer.
    fn compact(&mut self) {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }
}

/// A request body being read whole for a handler (see
/// `Responder::body_limit`), behind its head in `Pending::buf`.
pub(crate) struct BodyWait {
    head_len: usize,
    kind: BodyKind,
}

enum BodyKind {
    /// Content-Length bytes, kept raw behind the head.
    Length(usize),
    /// A chunked body: the bytes decoded so far (the raw bytes are dropped
    /// from the buffer as they are decoded).
    Chunked { dec: Chunked, decoded: Vec<u8> },
}

/// Where a body being read stands.
enum BodyState {
    /// Complete: it took this many of the bytes after the head.
    Complete { wire: usize },
    /// More is to come (a chunked body used every byte it was given).
    Partial,
    /// Over its route's limit: 413.
    TooLarge,
    /// A chunked framing error: 400.
    Bad,
}

impl BodyWait {
    /// Look at the bytes after the head (for a chunked body, those not
    /// decoded yet).
    fn advance(&mut self, after: &[u8]) -> BodyState {
        match &mut self.kind {
            BodyKind::Length(n) if after.len() >= *n => BodyState::Complete { wire: *n },
            BodyKind::Length(_) => BodyState::Partial,
            BodyKind::Chunked { dec, decoded } => match dec.decode(after, decoded) {
                Ok(p) if p.done => BodyState::Complete { wire: p.consumed },
                Ok(_) => BodyState::Partial,
                Err(super::chunked::ChunkedError::TooLarge) => BodyState::TooLarge,
                Err(_) => BodyState::Bad,
            },
        }
    }

    /// The body, once complete, given the buffer it sits behind.
    fn body<'b>(&'b self, buf: &'b [u8]) -> &'b [u8] {
        match &self.kind {
            BodyKind::Length(n) => &buf[self.head_len..self.head_len + n],
            BodyKind::Chunked { decoded, .. } => decoded,
        }
    }
}

/// A buffer that starts with a complete head, `len` bytes long, that
/// `parser` parsed.
#[derive(Clone, Copy)]
struct HeadAt<'b> {
    buf: &'b [u8],
    len: usize,
    parser: &'b Parser,
}

/// The HTTP version a head names.
fn version_of(head: &RequestHead<'_>) -> Version {
    if head.minor_version == 0 {
        Version::Http10
    } else {
        Version::Http11
    }
}

/// What `Conn::answer` did.
enum Answered {
    /// A response was started; where the next request starts in the buffer,
    /// when the connection stays open and more bytes follow.
    Done(Option<usize>),
    /// The body is being read for a handler: keep the first `keep` bytes of
    /// the buffer with this, and answer once it is complete.
    NeedBody(BodyWait, usize),
}

/// What happens to the connection once the response is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Then {
    /// Wait for the next request.
    KeepAlive,
    /// Close at once: the client sends nothing more.
    Close,
    /// Shut down our side and drain what the client still sends before
    /// closing, so it reads the response rather than a reset (nginx's
    /// lingering close): after an error, or with input left unread.
    Linger,
}

pub(crate) enum State {
    /// Waiting for the first byte of a request. `fresh`: no request has been
    /// answered on this connection yet (the header timeout runs from accept;
    /// otherwise the keep-alive timeout runs from the last response).
    Idle { fresh: bool },
    /// A head is arriving; the header timeout runs from `since` and is never
    /// extended by more bytes.
    Reading { since: Instant },
    /// Sending a response: the head (and an in-memory body) bytes the first
    /// write did not take, then the file range or the streamed body.
    Writing { buf: Vec<u8>, pos: usize, rest: Rest, then: Then },
    /// A handler answers later (from another thread): waiting for its
    /// reply, reading nothing more meanwhile.
    Awaiting(Box<Awaiting>),
    /// Our side is shut; reading and dropping what the client still sends.
    Closing,
    /// The client speaks HTTP/2 (its first bytes are the preface, or TLS
    /// chose `h2`): the session becomes an HTTP/2 one, given these bytes.
    ToHttp2 { start: Vec<u8> },
}

/// A request whose handler answers later, and what is needed to answer it
/// then: the head (for the reply to a file's validators, and the log) and
/// what was decided about the connection, but for the reply's part.
pub(crate) struct Awaiting {
    answer: Awaited,
    head: Vec<u8>,
    parser: Parser,
    facts: Facts,
    /// Answers to the requests before this one that the socket has not
    /// taken yet (a batch, see BATCH): they go first.
    unsent: Vec<u8>,
}

/// What a response sends after the bytes in `Writing::buf`.
pub(crate) enum Rest {
    Nothing,
    /// A range of a file, with sendfile (or pread for TLS).
    File(FileBody),
    /// A streamed body.
    Stream(Box<Outgoing>),
}

/// A streamed body going out.
pub(crate) struct Outgoing {
    body: BodyStream,
    /// Framed as chunks (HTTP/1.1); otherwise raw, ended by the close.
    chunked: bool,
    /// The producer has nothing yet (the deadline is then the reply
    /// timeout).
    waiting: bool,
    /// The end is framed: nothing more to take from `body`.
    ended: bool,
}

pub(crate) struct Conn {
    io: Transport,
    peer: SocketAddr,
    state: State,
    deadline: Instant,
    pending: Option<Box<Pending>>,
    /// Request-body bytes still to arrive and be dropped.
    discard: u64,
    /// A chunked request body still arriving, to be dropped.
    chunked: Option<Box<ChunkedDiscard>>,
    /// Responses completed (saturating): for `keepalive_requests` and the
    /// handoff's schedule.
    responses: u32,
}

/// What reading got.
enum Got {
    /// A response was started (the state is Writing).
    Answered,
    /// Nothing more to read now.
    Wait,
    /// Its turn is used up with bytes still to read.
    Yield,
    /// The client closed its side.
    End,
}

/// What writing got.
enum Sent {
    Done(Then),
    Blocked,
    /// Its share of the turn is sent.
    Turn,
}

/// Whether a connection's first bytes are HTTP/2's.
enum Http2Start {
    Yes,
    /// A beginning of the preface's first line, not yet whole.
    Maybe,
    No,
}

/// What follows a request head on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyFraming {
    None,
    /// Content-Length bytes, to be read and dropped.
    Discard(u64),
    /// More than MAX_DISCARD bytes: answered 413, and the connection closes.
    TooLarge,
    /// A chunked body: decoded as it arrives and dropped (at most
    /// MAX_DISCARD decoded bytes; past them, or at a framing error, the
    /// connection closes), so the connection can go on.
    Chunked,
}

/// How the body after `head` is framed, and what this server does with it.
pub(crate) fn body_framing(head: &RequestHead<'_>) -> BodyFraming {
    match (head.chunked, head.content_length) {
        (true, _) => BodyFraming::Chunked,
        (false, Some(n)) if n > MAX_DISCARD => BodyFraming::TooLarge,
        (false, Some(n)) if n > 0 => BodyFraming::Discard(n),
        _ => BodyFraming::None,
    }
}

/// What [`Conn::decide`] weighs about a request and its reply.
#[derive(Clone, Copy)]
struct Facts {
    /// The request allows keep-alive (its version and Connection header).
    keep_alive: bool,
    framing: BodyFraming,
    /// Input may follow that will not be read as a request (a body being
    /// dropped, pipelined requests).
    unread: bool,
    /// The responder found the request malformed.
    close: bool,
    status: u16,
    /// The body's end is the connection's close: a stream to an HTTP/1.0
    /// client, which cannot take chunks.
    unframed: bool,
}

/// Per-turn counters (see TURN_RESPONSES, TURN_READ, SEND_TURN).
#[derive(Default)]
struct Turn {
    responses: u32,
    read: usize,
}

impl Turn {
    fn spent(&self) -> bool {
        self.responses >= TURN_RESPONSES || self.read >= TURN_READ
    }
}

impl Conn {
    /// A connection fresh from accept.
    pub(crate) fn new(io: Transport, peer: SocketAddr, now: Instant, s: &Settings) -> Conn {
        let mut c = Conn {
            io,
            peer,
            state: State::Idle { fresh: true },
            deadline: now,
            pending: None,
            discard: 0,
            chunked: None,
            responses: 0,
        };
        c.arm(now, s);
        c
    }

    /// An idle kept-alive connection taken from another event loop, after
    /// `responses` responses there.
    pub(crate) fn handed_over(
        mut io: Transport,
        peer: SocketAddr,
        now: Instant,
        s: &Settings,
        responses: u32,
    ) -> Conn {
        io.wait_for_event();
        let mut c = Conn::new(io, peer, now, s);
        c.responses = responses;
        c.enter(State::Idle { fresh: false }, now, s);
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

    /// A response (or the transport's own records) is waiting for the
    /// socket to take more.
    pub(crate) fn wants_write(&self) -> bool {
        match &self.state {
            State::Writing { .. } => true,
            State::Awaiting(w) => !w.unsent.is_empty() || self.io.wants_write(),
            _ => self.io.wants_write(),
        }
    }

    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        self.io.socket()
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.io.fd()
    }

    /// Between requests with nothing read, buffered or owed: the
    /// connection could move to another loop. Its response count, if so.
    pub(crate) fn idle(&self) -> Option<u32> {
        let idle = matches!(self.state, State::Idle { fresh: false })
            && self.io.movable()
            && self.pending.is_none()
            && self.discard == 0
            && self.chunked.is_none()
            && !self.io.readable()
            && !self.io.hup();
        idle.then_some(self.responses)
    }

    /// Idle between requests with nothing unanswered or unsent: a graceful
    /// stop closes it.
    fn drain_now(&self) -> bool {
        matches!(self.state, State::Idle { fresh: false }) && self.pending.is_none() && !self.io.wants_write()
    }

    /// A graceful stop began: true to close now (idle between requests).
    /// A connection accepted a moment ago whose request is still on its way
    /// gets `grace` instead: the client did nothing wrong, and a restart must
    /// not reset it. Busy connections finish their response, then close.
    pub(crate) fn drain(&mut self, now: Instant, grace: Duration) -> bool {
        match self.state {
            // Not while answers wait for the socket (a full one, at the end
            // of a turn): they go first, then the connection closes (`run`).
            State::Idle { fresh: false } => self.drain_now(),
            State::Idle { fresh: true } if self.pending.is_none() => {
                self.deadline = self.deadline.min(now + grace);
                false
            }
            _ => false,
        }
    }

    /// Set the state and the deadline that comes with it.
    fn enter(&mut self, state: State, now: Instant, s: &Settings) {
        self.state = state;
        self.arm(now, s);
    }

    /// The deadline of the current state: the one place timeouts are chosen.
    /// Called as a state is entered, and again when a write makes progress
    /// (the send timeout counts from the last byte the client took).
    fn arm(&mut self, now: Instant, s: &Settings) {
        self.deadline = match self.state {
            // Entered once, at accept.
            State::Idle { fresh: true } => now + s.header_timeout,
            State::Idle { fresh: false } => now + s.keepalive_timeout,
            State::Reading { since } => since + s.header_timeout,
            State::Writing { rest: Rest::Stream(ref o), .. } if o.waiting => now + s.reply_timeout,
            State::Writing { .. } => now + s.send_timeout,
            State::Awaiting(_) => now + s.reply_timeout,
            State::Closing => now + LINGER,
            State::ToHttp2 { .. } => now,
        };
    }

    /// What happens after the response to a request: the one place that
    /// decides between keep-alive, close and lingering close.
    fn decide(&self, f: &Facts, draining: bool, s: &Settings) -> Then {
        let last = s.keepalive_requests != 0 && self.responses.saturating_add(1) >= s.keepalive_requests;
        let body_ok = matches!(f.framing, BodyFraming::None | BodyFraming::Discard(_) | BodyFraming::Chunked);
        if f.keep_alive && body_ok && !f.close && !f.unframed && !draining && s.keep_alive() && !last {
            Then::KeepAlive
        } else if f.status >= 400 || f.unread {
            Then::Linger
        } else {
            Then::Close
        }
    }

    /// Run the connection as far as it goes without blocking; then send the
    /// batch of pipelined answers still held (see `start_reply`).
    pub(crate) fn drive(
        &mut self,
        bufs: &mut Buffers,
        cx: &mut Exchange,
        draining: bool,
        now: Instant,
    ) -> io::Result<Step> {
        let step = self.run(bufs, cx, draining, now);
        if cx.out.is_empty() {
            return step;
        }
        let result = match step {
            Ok(step) => self.send_batch(cx, step, now),
            Err(e) => Err(e),
        };
        cx.out.clear();
        result
    }

    /// Send the answers held in `cx.out`; what the socket does not take
    /// waits in the state, ahead of anything else the connection sends.
    fn send_batch(&mut self, cx: &Exchange, step: Step, now: Instant) -> io::Result<Step> {
        // Before a close, MSG_MORE: the FIN leaves in the answers' last
        // segment, and the answers go now rather than with the loop's batch.
        let n = self.io.send(&cx.out, step == Step::Close)?;
        if n == cx.out.len() {
            return Ok(step);
        }
        let left = cx.out[n..].to_vec();
        match &mut self.state {
            // A late reply is awaited: its answer follows these.
            State::Awaiting(w) => w.unsent = left,
            // Waiting to read more (or the client closed its side): these
            // go out first, then the connection reads (or closes).
            _ => {
                debug_assert!(!matches!(self.state, State::Writing { .. } | State::Closing));
                let then = if step == Step::Close { Then::Close } else { Then::KeepAlive };
                self.enter(
                    State::Writing { buf: left, pos: 0, rest: Rest::Nothing, then },
                    now,
                    cx.settings(),
                );
            }
        }
        Ok(Step::Wait)
    }

    /// Run the connection as far as it goes without blocking.
    fn run(
        &mut self,
        bufs: &mut Buffers,
        cx: &mut Exchange,
        draining: bool,
        now: Instant,
    ) -> io::Result<Step> {
        let mut turn = Turn::default();
        // Bytes the transport could not write last time go first: TLS
        // records (a handshake message, a close_notify), or on plain TCP
        // what a full socket handed back from the loop's batch.
        if self.io.wants_write() && self.io.flush()? && draining && self.drain_now() {
            // What a full socket held at the stop is out: the connection was
            // idle (see `drain`), and closes now.
            return Ok(Step::Close);
        }
        loop {
            match self.state {
                State::Idle { .. } | State::Reading { .. } => {
                    match self.read_request(bufs, cx, draining, now, &mut turn)? {
                        // Idle again: a response held for the batch (see
                        // `start_reply`), done.
                        Got::Answered if matches!(self.state, State::Idle { .. }) => turn.responses += 1,
                        Got::Answered => {}
                        Got::Wait => return Ok(Step::Wait),
                        Got::Yield => return Ok(Step::Yield),
                        // Answers of this drive: `send_batch` sends them
                        // before the close, after what waits in the transport.
                        Got::End if !cx.out.is_empty() => return Ok(Step::Close),
                        Got::End => return self.close_when_sent(now, cx.settings()),
                    }
                }
                State::Awaiting(_) => {
                    if !self.await_reply(cx, draining, now)? {
                        // A client that hung up will not read the reply.
                        return Ok(if self.io.hup() { Step::Close } else { Step::Wait });
                    }
                    // As after `read_request`.
                    if matches!(self.state, State::Idle { .. }) {
                        turn.responses += 1;
                    }
                }
                State::Writing { .. } => match self.write(now, cx, &mut bufs.inbuf)? {
                    Sent::Blocked => return Ok(Step::Wait),
                    Sent::Turn => return Ok(Step::Yield),
                    Sent::Done(then) => {
                        turn.responses += 1;
                        self.responses = self.responses.saturating_add(1);
                        match then {
                            // A drain that began while this response was
                            // going out ends the connection here.
                            Then::KeepAlive if !draining => {
                                self.enter(State::Idle { fresh: false }, now, cx.settings())
                            }
                            Then::KeepAlive | Then::Close => {
                                self.io.finish();
                                return Ok(Step::Close);
                            }
                            Then::Linger => {
                                self.io.shutdown_write();
                                self.enter(State::Closing, now, cx.settings());
                            }
                        }
                    }
                },
                State::ToHttp2 { .. } => return Ok(Step::Upgrade),
                State::Closing => loop {
                    if turn.read >= TURN_READ {
                        return Ok(Step::Yield);
                    }
                    match self.io.recv(&mut bufs.inbuf)? {
                        Recv::Data(n) => turn.read += n,
                        Recv::Blocked => return Ok(Step::Wait),
                        Recv::Eof => return Ok(Step::Close),
                    }
                },
            }
        }
    }

    /// The client ended its side: close once every answer has left. One
    /// gathered for the loop's batch, or that a full socket handed back,
    /// goes now; what the socket does not take yet is waited for.
    fn close_when_sent(&mut self, now: Instant, s: &Settings) -> io::Result<Step> {
        if self.io.flush_all()? {
            return Ok(Step::Close);
        }
        self.enter(
            State::Writing { buf: Vec::new(), pos: 0, rest: Rest::Nothing, then: Then::Close },
            now,
            s,
        );
        Ok(Step::Wait)
    }

    /// Idle or Reading: answer what is buffered, read more, answer that.
    fn read_request(
        &mut self,
        bufs: &mut Buffers,
        cx: &mut Exchange,
        draining: bool,
        now: Instant,
        turn: &mut Turn,
    ) -> io::Result<Got> {
        // Bytes already here (pipelined) are answered before reading more.
        if self.pending.is_some() {
            if turn.spent() {
                return Ok(Got::Yield);
            }
            if self.parse_pending(cx, draining, now)? {
                return Ok(Got::Answered);
            }
        }
        loop {
            if !self.io.readable() {
                return Ok(Got::Wait);
            }
            if turn.spent() {
                return Ok(Got::Yield);
            }
            if let Some(p) = self.pending.as_mut() {
                p.compact();
                // A head needs little more than its limit; a body being read
                // for a handler takes whole reads.
                let room = match p.body {
                    Some(_) => READ_CHUNK,
                    None => READ_CHUNK.min(cx.settings().limits.max_header_bytes + 1024),
                };
                // Into the loop's buffer, then what came onto the partial
                // request's: growing that by `room` for each read would zero
                // `room` bytes a read, however few arrive (a TLS record can
                // carry one byte).
                let got = self.io.recv(&mut bufs.inbuf[..room]);
                if let Ok(Recv::Data(n)) = got {
                    p.buf.extend_from_slice(&bufs.inbuf[..n]);
                }
                match got? {
                    Recv::Data(n) => turn.read += n,
                    Recv::Blocked => return Ok(Got::Wait),
                    // EOF mid-request: nothing to answer.
                    Recv::Eof => return Ok(Got::End),
                }
                if self.parse_pending(cx, draining, now)? {
                    return Ok(Got::Answered);
                }
            } else {
                let n = match self.io.recv(&mut bufs.inbuf)? {
                    Recv::Data(n) => n,
                    Recv::Blocked => return Ok(Got::Wait),
                    Recv::Eof => return Ok(Got::End),
                };
                turn.read += n;
                if self.parse_fresh(bufs, cx, n, draining, now)? {
                    return Ok(Got::Answered);
                }
            }
        }
    }

    /// Whether the first bytes on a connection are HTTP/2's: its preface
    /// (prior knowledge), or anything after a TLS handshake that chose `h2`.
    /// The preface's first line may still be arriving (`Maybe`): HTTP/1's
    /// parser would refuse `PRI *` before the line is whole.
    #[inline]
    fn speaks_http2(&self, data: &[u8], s: &Settings) -> Http2Start {
        if !s.http2
            || self.responses != 0
            || !matches!(self.state, State::Idle { fresh: true } | State::Reading { .. })
        {
            return Http2Start::No;
        }
        if self.io.alpn_h2() || data.starts_with(PREFACE_LINE) {
            Http2Start::Yes
        } else if PREFACE_LINE.starts_with(data) {
            Http2Start::Maybe
        } else {
            Http2Start::No
        }
    }

    /// Give up the connection to HTTP/2: the transport, the peer, and the
    /// bytes already read (after [`Step::Upgrade`]).
    /// The transport, for a connection moving to another loop.
    pub(crate) fn into_transport(self) -> Transport {
        self.io
    }

    pub(crate) fn into_http2(self) -> (Transport, SocketAddr, Vec<u8>) {
        let start = match self.state {
            State::ToHttp2 { start } => start,
            _ => Vec::new(),
        };
        (self.io, self.peer, start)
    }

    /// Drop request-body bytes still owed from the front of `data`; the
    /// count dropped. A chunked body that turns out malformed or too long is
    /// an error: the connection closes.
    fn skip_body(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(c) = self.chunked.as_mut() {
            let (used, done) = c.drop_from(data)?;
            if done {
                self.chunked = None;
            }
            return Ok(used);
        }
        let d = self.discard.min(data.len() as u64) as usize;
        self.discard -= d as u64;
        Ok(d)
    }

    /// The first bytes of a request arrived and its head is not complete
    /// (or its body is being read for a handler): Idle becomes Reading. A
    /// head that arrived whole is answered at once and never waits here.
    fn head_started(&mut self, now: Instant, s: &Settings) {
        if let State::Idle { fresh } = self.state {
            // The first request's header timeout runs from accept (as its
            // deadline says: the drain's grace included).
            let since = if fresh { self.deadline.checked_sub(s.header_timeout).unwrap_or(now) } else { now };
            self.enter(State::Reading { since }, now, s);
        }
    }

    /// Handle `bufs.inbuf[..n]`, just read with nothing pending. True when a
    /// response was started.
    fn parse_fresh(
        &mut self,
        bufs: &mut Buffers,
        cx: &mut Exchange,
        n: usize,
        draining: bool,
        now: Instant,
    ) -> io::Result<bool> {
        let start = self.skip_body(&bufs.inbuf[..n])?;
        if start == n {
            return Ok(false);
        }
        let Buffers { inbuf, parser } = bufs;
        parser.reset();
        let limits = cx.settings().limits;
        let data = &inbuf[start..n];
        match self.speaks_http2(data, cx.settings()) {
            Http2Start::Yes => {
                self.state = State::ToHttp2 { start: data.to_vec() };
                return Ok(true);
            }
            Http2Start::Maybe => {
                self.head_started(now, cx.settings());
                self.pending = Some(Pending::new(data.to_vec(), Parser::new()));
                return Ok(false);
            }
            Http2Start::No => {}
        }
        match parser.parse(data, &limits) {
            Ok(Status::Complete(len)) => {
                match self.answer(cx, HeadAt { buf: data, len, parser }, draining, now, None)? {
                    Answered::Done(next) => {
                        if let Some(next) = next {
                            // Pipelined requests behind this one.
                            let buf = data[next..].to_vec();
                            self.pending = Some(Pending::new(buf, Parser::new()));
                        }
                        Ok(true)
                    }
                    Answered::NeedBody(wait, keep) => {
                        self.head_started(now, cx.settings());
                        let mut p = Pending::new(data[..keep].to_vec(), parser.clone());
                        p.body = Some(wait);
                        self.pending = Some(p);
                        Ok(false)
                    }
                }
            }
            Ok(Status::Partial) => {
                self.head_started(now, cx.settings());
                self.pending = Some(Pending::new(data.to_vec(), parser.clone()));
                Ok(false)
            }
            Err(e) => {
                self.reject(cx, e, data, now)?;
                Ok(true)
            }
        }
    }

    /// Handle the pending buffer (a partial head, or pipelined requests).
    fn parse_pending(&mut self, cx: &mut Exchange, draining: bool, now: Instant) -> io::Result<bool> {
        let Some(mut p) = self.pending.take() else { return Ok(false) };
        if self.discard > 0 || p.body.is_some() {
            // Those paths work on the whole buffer.
            p.compact();
        }
        if self.discard > 0 {
            let d = self.skip_body(&p.buf)?;
            p.buf.drain(..d);
            p.parser.reset();
        }
        if p.data().is_empty() {
            return Ok(false);
        }
        match self.speaks_http2(p.data(), cx.settings()) {
            Http2Start::Yes => {
                self.state = State::ToHttp2 { start: p.data().to_vec() };
                return Ok(true);
            }
            Http2Start::Maybe => {
                self.pending = Some(p);
                return Ok(false);
            }
            Http2Start::No => {}
        }
        if let Some(mut wait) = p.body.take() {
            return self.body_arrived(cx, p, &mut wait, draining, now);
        }
        let limits = cx.settings().limits;
        let Pending { buf, start, parser, .. } = &mut *p;
        match parser.parse(&buf[*start..], &limits) {
            Ok(Status::Complete(len)) => {
                let Pending { buf, start, parser, .. } = &*p;
                let at = HeadAt { buf: &buf[*start..], len, parser };
                match self.answer(cx, at, draining, now, None)? {
                    Answered::Done(next) => {
                        if let Some(next) = next {
                            // The requests behind this one stay in the same buffer.
                            p.start += next;
                            p.parser.reset();
                            self.pending = Some(p);
                        }
                        Ok(true)
                    }
                    Answered::NeedBody(wait, keep) => {
                        self.head_started(now, cx.settings());
                        p.compact();
                        p.buf.truncate(keep);
                        p.body = Some(wait);
                        self.pending = Some(p);
                        Ok(false)
                    }
                }
            }
            Ok(Status::Partial) => {
                self.head_started(now, cx.settings());
                self.pending = Some(p);
                Ok(false)
            }
            Err(e) => {
                self.reject(cx, e, p.data(), now)?;
                Ok(true)
            }
        }
    }

    /// More of a body being read for a handler arrived (in `p.buf`, behind
    /// the head): answer once it is whole. True when a response was started.
    fn body_arrived(
        &mut self,
        cx: &mut Exchange,
        mut p: Box<Pending>,
        wait: &mut BodyWait,
        draining: bool,
        now: Instant,
    ) -> io::Result<bool> {
        let head_len = wait.head_len;
        match wait.advance(&p.buf[head_len..]) {
            BodyState::Partial => {
                if matches!(wait.kind, BodyKind::Chunked { .. }) {
                    // Decoded: the raw bytes are not needed any more.
                    p.buf.truncate(head_len);
                }
                p.body = Some(std::mem::replace(wait, BodyWait { head_len, kind: BodyKind::Length(0) }));
                self.pending = Some(p);
                // The header timeout runs again from each piece of the body,
                // as nginx's client_body_timeout does between reads.
                self.enter(State::Reading { since: now }, now, cx.settings());
                Ok(false)
            }
            BodyState::Complete { wire } => {
                let Pending { buf, parser, .. } = &*p;
                let body = wait.body(buf);
                match self.answer(
                    cx,
                    HeadAt { buf, len: head_len, parser },
                    draining,
                    now,
                    Some((body, wire)),
                )? {
                    Answered::Done(Some(next)) => {
                        p.buf.drain(..next);
                        p.parser.reset();
                        self.pending = Some(p);
                    }
                    Answered::Done(None) | Answered::NeedBody(..) => {}
                }
                Ok(true)
            }
            BodyState::TooLarge => self.refuse_body(cx, &p, head_len, 413, now).map(|()| true),
            BodyState::Bad => self.refuse_body(cx, &p, head_len, 400, now).map(|()| true),
        }
    }

    /// A body being read for a handler cannot be taken: answer `status`,
    /// logged with the request's line, then a lingering close.
    fn refuse_body(
        &mut self,
        cx: &mut Exchange,
        p: &Pending,
        head_len: usize,
        status: u16,
        now: Instant,
    ) -> io::Result<()> {
        let head = p.parser.head(&p.buf[..head_len]);
        let version = version_of(&head);
        cx.reply.refuse(status);
        let line =
            RequestLine::Parsed { method: head.method, target: head.target, version: version.as_str() };
        cx.log(self.peer, line, status, cx.reply.content_length, None, None);
        self.start_reply(cx, Then::Linger, version, false, false, now)
    }

    /// `Expect: 100-continue`: the client waits for this before it sends the
    /// body a handler is about to read.
    fn send_continue(&mut self, expects: bool) -> io::Result<()> {
        const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
        if expects && self.io.send(CONTINUE, false)? < CONTINUE.len() {
            // 25 bytes into an empty socket buffer do not block.
            return Err(io::Error::new(io::ErrorKind::WouldBlock, "100 Continue not sent"));
        }
        Ok(())
    }

    /// Answer a malformed request: error page, then a lingering close. The
    /// access log gets the line as it arrived.
    fn reject(&mut self, cx: &mut Exchange, e: ParseError, data: &[u8], now: Instant) -> io::Result<()> {
        let status = e.status();
        log::debug!("{}: bad request ({status}): {e}", self.peer);
        self.pending = None;
        cx.reply.refuse(status);
        let line_end = memchr::memchr(b'\n', data).unwrap_or(data.len()).min(RAW_LINE);
        let line = &data[..line_end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        cx.log(self.peer, RequestLine::Raw(line), status, cx.reply.content_length, None, None);
        // The version is unknown: the answer is HTTP/1.1's, and says close.
        self.start_reply(cx, Then::Linger, Version::Http11, false, false, now)
    }

    /// A complete head (`at`): ask the responder, decide the connection's
    /// fate, and start sending. A handler's request body is read whole
    /// first (`ready` is the body and the bytes it took after the head, once
    /// read): until it is, `NeedBody`. Otherwise `Done`, with where the next
    /// request starts in the buffer when the connection stays open and more
    /// bytes follow (the caller keeps those).
    fn answer(
        &mut self,
        cx: &mut Exchange,
        at: HeadAt<'_>,
        draining: bool,
        now: Instant,
        ready: Option<(&[u8], usize)>,
    ) -> io::Result<Answered> {
        let HeadAt { buf, len: head_len, parser } = at;
        let head = parser.head(buf);
        let mut framing = body_framing(&head);
        // Only a request with a body may wait for 100 Continue.
        let expects = framing != BodyFraming::None
            && head.header(b"expect").is_some_and(|v| v.eq_ignore_ascii_case(b"100-continue"));
        // A body a handler takes is read whole first; `read` is how many
        // bytes after the head it took.
        let held: Vec<u8>;
        let mut body: &[u8] = &[];
        let mut read: Option<usize> = None;
        let mut bad_body = false;
        if let Some((b, wire)) = ready {
            body = b;
            read = Some(wire);
        } else if framing != BodyFraming::None {
            if let Some(limit) = cx.responder.body_limit(head.method, head.target) {
                let kind = match (head.chunked, head.content_length) {
                    (true, _) => Some(BodyKind::Chunked { dec: Chunked::new(limit), decoded: Vec::new() }),
                    (false, Some(n)) if n > limit => {
                        framing = BodyFraming::TooLarge;
                        None
                    }
                    (false, Some(n)) => Some(BodyKind::Length(n as usize)),
                    (false, None) => None,
                };
                if let Some(kind) = kind {
                    let mut wait = BodyWait { head_len, kind };
                    match wait.advance(&buf[head_len..]) {
                        BodyState::Complete { wire } => {
                            read = Some(wire);
                            match wait.kind {
                                BodyKind::Length(n) => body = &buf[head_len..head_len + n],
                                BodyKind::Chunked { decoded, .. } => {
                                    held = decoded;
                                    body = &held;
                                }
                            }
                        }
                        BodyState::Partial => {
                            self.send_continue(expects)?;
                            let keep = match wait.kind {
                                BodyKind::Length(_) => buf.len(),
                                BodyKind::Chunked { .. } => head_len,
                            };
                            return Ok(Answered::NeedBody(wait, keep));
                        }
                        BodyState::TooLarge => framing = BodyFraming::TooLarge,
                        BodyState::Bad => bad_body = true,
                    }
                }
            }
        }
        if read.is_some() {
            // Read whole for a handler, whatever its size next to what
            // would be dropped (MAX_DISCARD).
            framing = BodyFraming::None;
        }
        if bad_body {
            cx.reply.refuse(400);
        } else if framing == BodyFraming::TooLarge {
            cx.reply.refuse(413);
        } else {
            cx.respond(&self.request(&head, body), now);
        }
        // The body (if any) follows the head and is dropped; whatever
        // follows the body is the next request.
        let after = &buf[head_len..];
        let mut in_buf = 0;
        if let Some(wire) = read {
            // Read whole for the handler: nothing is owed.
            in_buf = wire;
            framing = BodyFraming::None;
        }
        match framing {
            // A chunked body that could not be decoded: it cannot be told
            // from what follows; the connection closes after the answer.
            _ if bad_body => in_buf = after.len(),
            BodyFraming::Discard(n) => {
                in_buf = n.min(after.len() as u64) as usize;
                self.discard = n - in_buf as u64;
            }
            BodyFraming::Chunked => {
                let mut c = ChunkedDiscard::new();
                match c.drop_from(after) {
                    Ok((used, done)) => {
                        in_buf = used;
                        if !done {
                            self.chunked = Some(c);
                        }
                    }
                    // Answer the head, then close: the body cannot be
                    // told from what follows it.
                    Err(_) => {
                        in_buf = after.len();
                        bad_body = true;
                    }
                }
            }
            BodyFraming::None | BodyFraming::TooLarge => {}
        }
        let rest = &buf[head_len + in_buf..];
        let owed = self.discard > 0 || self.chunked.is_some();
        let unread = bad_body || owed || !rest.is_empty();
        // A client that sent `Expect: 100-continue` waits for 100 before it
        // sends its body; answered without one, it may send the body or
        // not (RFC 9110 10.1.1), so the next bytes could be either: the
        // connection closes (lingering) instead of guessing.
        let facts = Facts {
            keep_alive: head.keep_alive && !(expects && owed),
            framing,
            unread,
            close: bad_body,
            status: 0,
            unframed: false,
        };
        // Where the next request starts, kept for after this one's reply.
        let next = (!rest.is_empty()).then_some(head_len + in_buf);
        if let Some(answer) = cx.reply.take_later() {
            let waiting = Awaiting {
                answer,
                head: buf[..head_len].to_vec(),
                parser: parser.clone(),
                facts,
                unsent: Vec::new(),
            };
            self.enter(State::Awaiting(Box::new(waiting)), now, cx.settings());
            return Ok(Answered::Done(next));
        }
        let then = self.reply_to(cx, &head, facts, draining, next.is_some(), now)?;
        Ok(Answered::Done(next.filter(|_| then == Then::KeepAlive)))
    }

    /// The responder's view of the request of `head`, with `body`.
    fn request<'a>(&self, head: &RequestHead<'a>, body: &'a [u8]) -> Request<'a> {
        Request {
            method: head.method,
            target: head.target,
            version: version_of(head),
            fields: head.fields(),
            peer: self.peer,
            secure: self.io.is_tls(),
            body,
        }
    }

    /// `cx.reply` answers the request of `head`: log it, decide the
    /// connection's fate, and start sending. `more`: pipelined requests
    /// follow (the answer may wait for theirs, see BATCH).
    fn reply_to(
        &mut self,
        cx: &mut Exchange,
        head: &RequestHead<'_>,
        mut facts: Facts,
        draining: bool,
        more: bool,
        now: Instant,
    ) -> io::Result<Then> {
        let version = version_of(head);
        let is_head = head.method == b"HEAD";
        let bodiless = is_head || status::is_bodiless(cx.reply.status);
        let body_bytes = if bodiless { 0 } else { cx.reply.content_length };
        let (referer, agent) = match cx.logging() {
            true => (head.header(b"referer"), head.header(b"user-agent")),
            false => (None, None),
        };
        let line =
            RequestLine::Parsed { method: head.method, target: head.target, version: version.as_str() };
        cx.log(self.peer, line, cx.reply.status, body_bytes, referer, agent);
        facts.status = cx.reply.status;
        facts.close |= cx.reply.close;
        let streams = cx.reply.streams();
        facts.unframed = streams && version == Version::Http10;
        let then = self.decide(&facts, draining, cx.settings());
        if then != Then::KeepAlive {
            self.discard = 0;
            self.chunked = None;
        }
        let more = more && then == Then::KeepAlive;
        self.start_reply(cx, then, version, bodiless, more, now)?;
        Ok(then)
    }

    /// Awaiting: if the handler's reply came, answer with it (true);
    /// otherwise keep waiting (false). The reply may be another `later`.
    fn await_reply(&mut self, cx: &mut Exchange, draining: bool, now: Instant) -> io::Result<bool> {
        let State::Awaiting(w) = &mut self.state else { return Ok(true) };
        if !w.unsent.is_empty() {
            // The answers before this one go first.
            let n = self.io.send(&w.unsent, false)?;
            w.unsent.drain(..n);
            if !w.unsent.is_empty() {
                return Ok(false);
            }
        }
        let Some(answer) = w.answer.poll(&cx.wakeup()) else { return Ok(false) };
        let State::Awaiting(w) = std::mem::replace(&mut self.state, State::Closing) else {
            return Ok(true);
        };
        let Awaiting { head: bytes, parser, facts, .. } = *w;
        let again = {
            let head = parser.head(&bytes);
            cx.responder.finish(&self.request(&head, &[]), answer, &mut cx.reply);
            cx.reply.take_later()
        };
        if let Some(answer) = again {
            let waiting = Awaiting { answer, head: bytes, parser, facts, unsent: Vec::new() };
            self.enter(State::Awaiting(Box::new(waiting)), now, cx.settings());
            return Ok(true);
        }
        let head = parser.head(&bytes);
        let more = self.pending.is_some();
        self.reply_to(cx, &head, facts, draining, more, now)?;
        Ok(true)
    }

    /// Frame `cx.reply`, the answer to a request of `version`, behind the
    /// batch in `cx.out` (if any) and send what the socket takes now; the
    /// rest waits in the Writing state. When `more` requests are pipelined
    /// behind this one, the connection stays open and the answer is in
    /// memory, it is not sent yet: it waits in `cx.out` for the answers to
    /// those (up to BATCH), and `drive` sends the batch before it returns.
    fn start_reply(
        &mut self,
        cx: &mut Exchange,
        then: Then,
        version: Version,
        bodiless: bool,
        more: bool,
        now: Instant,
    ) -> io::Result<()> {
        // A stream of unknown length goes in chunks to an HTTP/1.1 client;
        // an HTTP/1.0 one gets it unframed, ended by the close.
        let chunked = cx.reply.streams() && version == Version::Http11;
        let field = cx.settings().keep_alive_field;
        let connection = encode::Connection::after(then == Then::KeepAlive, version, field);
        let Exchange { out, reply, clock, .. } = cx;
        encode::head(out, clock, reply, connection, chunked);
        let mut rest = Rest::Nothing;
        // Every arm takes the payload, so none leaves it to the drop glue.
        match reply.take_payload() {
            p if bodiless => p.discard(),
            Payload::Bytes(b) => out.extend_from_slice(&b),
            // Small cached files leave with their head in one write.
            Payload::File(f) => match f.in_memory() {
                Some(bytes) => out.extend_from_slice(bytes),
                None => rest = Rest::File(f),
            },
            Payload::Stream(body) => {
                rest = Rest::Stream(Box::new(Outgoing { body, chunked, waiting: false, ended: false }))
            }
            p => {
                match p {
                    Payload::Buffered => out.extend_from_slice(&reply.bytes),
                    Payload::Static(b) => out.extend_from_slice(b),
                    // The connection answers only once the reply came.
                    Payload::Later(_) => debug_assert!(false, "a later reply is awaited, not framed"),
                    _ => {}
                }
                p.discard();
            }
        }
        // Held for the batch unless the transport holds bytes (TLS records,
        // or what a full socket handed back from the loop's batch): then the
        // answers go behind those now, as any answer does below, and what
        // the socket does not take waits in the Writing state.
        if more && matches!(rest, Rest::Nothing) && out.len() < BATCH && !self.io.wants_write() {
            // The response is done as far as the state machine goes. `more`
            // means the connection stays open: on to the next request (`run`
            // counts the response).
            self.responses = self.responses.saturating_add(1);
            // Idle already, nearly always (the request was pipelined
            // behind the last): set in place, without dropping a state.
            match &mut self.state {
                State::Idle { fresh } => *fresh = false,
                state => *state = State::Idle { fresh: false },
            }
            self.arm(now, cx.settings());
            // Rest::Nothing owns nothing: no call to the drop glue.
            std::mem::forget(rest);
            return Ok(());
        }
        // MSG_MORE when a file follows, and when this is the whole answer of
        // a connection that closes next: the close (or the lingering close's
        // shutdown) then sends the FIN in the answer's last segment, one
        // packet instead of two. Not for a stream, whose next piece may wait.
        let cork = match rest {
            Rest::File(_) => true,
            Rest::Nothing => then != Then::KeepAlive,
            Rest::Stream(_) => false,
        };
        let sent = self.io.send(out, cork);
        let buf = match sent {
            Ok(n) if n < out.len() => out[n..].to_vec(),
            _ => Vec::new(),
        };
        out.clear();
        sent?;
        self.enter(State::Writing { buf, pos: 0, rest, then }, now, cx.settings());
        Ok(())
    }

    /// Writing: the head bytes left, then the file or the stream, up to
    /// SEND_TURN, then whatever the transport still holds. `scratch` is
    /// where a TLS transport reads file pieces to encrypt.
    fn write(&mut self, now: Instant, cx: &Exchange, scratch: &mut Vec<u8>) -> io::Result<Sent> {
        let s = cx.settings();
        let State::Writing { buf, pos, rest, then } = &mut self.state else {
            return Ok(Sent::Blocked);
        };
        let then = *then;
        let mut progressed = false;
        let mut result = Sent::Done(then);
        if *pos < buf.len() {
            let n = self.io.send(&buf[*pos..], matches!(rest, Rest::File(_)))?;
            progressed = n > 0;
            *pos += n;
            if *pos < buf.len() {
                result = Sent::Blocked;
            }
        }
        if let (Sent::Done(_), Rest::File(body)) = (&result, &mut *rest) {
            let n = self.io.send_file(body.fd(), &mut body.offset, body.end, SEND_TURN, scratch)?;
            progressed |= n > 0;
            if body.offset < body.end {
                result = if n >= SEND_TURN { Sent::Turn } else { Sent::Blocked };
            }
        }
        let mut waiting = false;
        if let (Sent::Done(_), Rest::Stream(out)) = (&result, rest) {
            result = pump(&mut self.io, out, buf, pos, then, cx, &mut progressed)?;
            waiting = out.waiting;
        }
        if let Sent::Done(then) = result {
            // The last records wait in the transport (TLS), or the bytes a
            // full socket handed back. Before a close, an answer gathered
            // for the loop's batch goes now too.
            let out = if then == Then::KeepAlive { self.io.flush()? } else { self.io.flush_all()? };
            if !out {
                result = Sent::Blocked;
            }
        }
        if progressed || waiting {
            self.arm(now, s);
        }
        Ok(result)
    }
}

/// Send a streamed body's next pieces, each framed into `buf` (empty when
/// called) and sent, until the socket or the producer has to wait, the turn
/// is used, or the body ends. A piece the socket took in part stays in
/// `buf` from `pos`, and is sent before the next is taken: the producer is
/// never run ahead of the client.
fn pump(
    io: &mut Transport,
    out: &mut Outgoing,
    buf: &mut Vec<u8>,
    pos: &mut usize,
    then: Then,
    cx: &Exchange,
    progressed: &mut bool,
) -> io::Result<Sent> {
    let mut sent = 0u64;
    out.waiting = false;
    while !out.ended {
        if sent >= SEND_TURN {
            return Ok(Sent::Turn);
        }
        buf.clear();
        *pos = 0;
        match out.body.next(&cx.wakeup()) {
            Piece::Data(p) if out.chunked => encode::chunk(buf, Some(&p)),
            Piece::Data(p) => buf.extend_from_slice(&p),
            Piece::End => {
                out.ended = true;
                if out.chunked {
                    encode::chunk(buf, None);
                }
            }
            Piece::Wait => {
                out.waiting = true;
                return Ok(Sent::Blocked);
            }
            // The client must not take a cut body for a whole one: close
            // without the last chunk.
            Piece::Abort => return Err(io::Error::other("the streamed body's producer failed")),
        }
        let n = io.send(buf, false)?;
        *pos = n;
        sent += n as u64;
        *progressed |= n > 0;
        if n < buf.len() {
            return Ok(Sent::Blocked);
        }
    }
    Ok(Sent::Done(then))
}

#[cfg(test)]
mod tests;
