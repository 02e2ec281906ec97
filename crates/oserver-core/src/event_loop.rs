//! One event loop: a mio `Poll`, the listener, a slab of connections, and the
//! timing wheel of their timeouts.
//!
//! Edge-triggered throughout (mio's rule): on each readiness event, read,
//! write, accept and sendfile until the call would block; an event for a
//! token that is gone is ignored.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::access_log::{self, Writer};
use crate::cache::FileCache;
use crate::conn::{self, send_all, send_file, Conn, Pending, State, Step};
use crate::handoff::{self, Carried, Handoff};
use crate::parse::{Parser, Status};
use crate::respond::{self, Ctx, Reply, Scratch};
use crate::response::Clock;
use crate::server::{Control, Shared, Stats};
use crate::timer::Wheel;

const LISTENER: Token = Token(usize::MAX - 1);
pub(crate) const WAKER: Token = Token(usize::MAX - 2);
const HANDOFF: Token = Token(usize::MAX - 3);

/// Bytes read per read(2). A request head is at most 16 KiB by default; 64 KiB
/// also takes a burst of pipelined requests in one call.
const READ_CHUNK: usize = 64 * 1024;

/// The most one connection sends in one turn before the others get theirs, so
/// a big download cannot starve small requests on the same loop. 512 KiB is a
/// few socket buffers' worth: large enough that sendfile's per-call cost is
/// spread thin.
const SEND_TURN: u64 = 512 * 1024;

/// How long a closing connection is drained before it is closed anyway.
const LINGER: Duration = Duration::from_secs(2);

/// How long a connection accepted just before a graceful stop may take to send
/// its request.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Connections accepted (and served, see `accept`) in one go before the
/// connections already open get a turn: enough to empty a burst in a few
/// rounds, few enough that a flood of new clients cannot starve old ones.
const ACCEPT_BATCH: usize = 64;

/// When accept fails for lack of descriptors, wait this long before trying
/// again: short enough to resume quickly, long enough not to spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

pub(crate) struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    sh: Arc<Shared>,
    ctl: Arc<Control>,
    conns: Slab<Conn>,
    /// Connections that yielded their turn with work left.
    ready: VecDeque<usize>,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    parser: Parser,
    scratch: Scratch,
    cache: FileCache,
    clock: Clock,
    now: Instant,
    wheel: Wheel,
    /// Reused list of connections whose timeout fired.
    expired: Vec<usize>,
    /// Generation of the last accepted connection (see `Timer`).
    generation: u32,
    /// Connections wait in the backlog: at the cap, or out of descriptors.
    accept_paused: bool,
    accept_retry: Option<Instant>,
    /// Accept is failing for lack of descriptors (logged once).
    accept_failing: bool,
    draining: Option<Instant>,
    log: Option<Writer>,
    log_gen: usize,
    stats: Stats,
    /// Passing idle connections to the loop on their CPU (see `handoff.rs`).
    handoff: Option<Handoff>,
}

impl EventLoop {
    pub(crate) fn new(
        poll: Poll,
        listener: TcpListener,
        sh: Arc<Shared>,
        ctl: Arc<Control>,
        handoff: Option<Handoff>,
    ) -> io::Result<EventLoop> {
        let mut listener = listener;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        if let Some(h) = &handoff {
            let fd = h.inbox().as_raw_fd();
            poll.registry().register(&mut SourceFd(&fd), HANDOFF, Interest::READABLE)?;
        }
        let log = match &sh.cfg.access_log {
            Some(t) => Some(Writer::open(t.clone())?),
            None => None,
        };
        let now = Instant::now();
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            log_gen: ctl.reopen.load(Ordering::Acquire),
            sh,
            ctl,
            conns: Slab::new(),
            ready: VecDeque::new(),
            inbuf: vec![0; READ_CHUNK],
            out: Vec::with_capacity(4096),
            parser: Parser::new(),
            scratch: Scratch::default(),
            cache: FileCache::default(),
            clock: Clock::new(),
            now,
            wheel: Wheel::new(now),
            expired: Vec::new(),
            generation: 0,
            accept_paused: false,
            accept_retry: None,
            accept_failing: false,
            draining: None,
            log,
            stats: Stats::default(),
            handoff,
        })
    }

    pub(crate) fn run(mut self) -> io::Result<Stats> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            self.now = Instant::now();
            // Cheap unless the second changed; keeps Date exact to the second.
            self.clock.refresh();
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => self.control(),
                    HANDOFF => self.take_handed(),
                    Token(k) => {
                        if let Some(c) = self.conns.get_mut(k) {
                            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                                c.readable = true;
                            }
                            if ev.is_read_closed() || ev.is_error() {
                                c.hup = true;
                            }
                            self.drive(k);
                        }
                    }
                }
            }
            // Connections that yielded go again, each once per turn.
            for _ in 0..self.ready.len() {
                if let Some(k) = self.ready.pop_front() {
                    if self.conns.contains(k) {
                        self.drive(k);
                    }
                }
            }
            if self.accept_paused && self.accept_retry.map_or(true, |t| self.now >= t) {
                self.accept();
            }
            if self.now >= self.wheel.next_due() {
                self.tick();
            }
            if let Some(deadline) = self.draining {
                if self.conns.is_empty() || self.now >= deadline {
                    break;
                }
            }
        }
        // Dropping the loop flushes the access log (Writer's Drop).
        Ok(self.stats)
    }

    fn poll_timeout(&self) -> Duration {
        if !self.ready.is_empty() {
            return Duration::ZERO;
        }
        let mut t = self.wheel.next_due().saturating_duration_since(self.now);
        if let Some(r) = self.accept_retry {
            t = t.min(r.saturating_duration_since(self.now));
        }
        t
    }

    /// Once a second (each tick of the timer wheel): flush the access log and
    /// close the connections whose deadline passed.
    fn tick(&mut self) {
        if let Some(l) = self.log.as_mut() {
            l.flush();
        }
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.expire(self.now, &mut self.conns, &mut expired);
        for k in expired.drain(..) {
            log::debug!("{}: timed out", self.conns[k].peer);
            self.close(k);
        }
        self.expired = expired;
    }

    fn control(&mut self) {
        let gen = self.ctl.reopen.load(Ordering::Acquire);
        if gen != self.log_gen {
            self.log_gen = gen;
            if let Some(l) = self.log.as_mut() {
                l.reopen();
            }
        }
        if self.ctl.shutdown.load(Ordering::Acquire) && self.draining.is_none() {
            self.begin_drain();
        }
    }

    /// Graceful stop: no new connections; idle ones close now, busy ones
    /// after their response.
    fn begin_drain(&mut self) {
        self.draining = Some(self.now + self.sh.cfg.shutdown_timeout);
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        // Neither take connections from other loops nor pass any on. What
        // is in flight to this loop's inbox waits there for its successor.
        if let Some(h) = self.handoff.take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&h.inbox().as_raw_fd()));
        }
        self.accept_paused = false;
        self.accept_retry = None;
        // Idle keep-alive connections close now. One accepted a moment ago
        // whose request is still on its way gets a short grace instead: the
        // client did nothing wrong, and a restart must not reset it.
        let grace = self.now + DRAIN_GRACE;
        let mut idle = Vec::new();
        for (k, c) in self.conns.iter_mut() {
            if matches!(c.state, State::Reading { started: false }) && c.pending.is_none() {
                if c.served {
                    idle.push(k);
                } else if grace < c.timer.deadline {
                    self.wheel.arm(k, &mut c.timer, grace);
                }
            }
        }
        for k in idle {
            self.close(k);
        }
    }

    fn accept(&mut self) {
        self.accept_retry = None;
        self.accept_paused = false;
        for _ in 0..ACCEPT_BATCH {
            if self.conns.len() >= self.sh.cfg.max_connections {
                // Stay out of accept until a connection closes (see close()).
                self.accept_paused = true;
                return;
            }
            let Some(listener) = self.listener.as_ref() else { return };
            match listener.accept() {
                Ok((sock, peer)) => {
                    self.accept_failing = false;
                    self.stats.connections += 1;
                    let k = self.admit(sock, peer, self.sh.cfg.header_timeout);
                    // The listener defers accept until the request has
                    // arrived (TCP_DEFER_ACCEPT), so serve it right away: a
                    // connection-per-request client is answered and closed
                    // without ever entering the epoll set.
                    self.drive(k);
                    self.enroll(k);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    match e.raw_os_error() {
                        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS)
                        | Some(libc::ENOMEM) => {
                            // Once per episode at warn; retries at debug.
                            if self.accept_failing {
                                log::debug!("accept: {e}; pausing {ACCEPT_BACKOFF:?}");
                            } else {
                                log::warn!("accept: {e}; pausing {ACCEPT_BACKOFF:?} between tries");
                                self.accept_failing = true;
                            }
                            self.accept_paused = true;
                            self.accept_retry = Some(self.now + ACCEPT_BACKOFF);
                            return;
                        }
                        // The peer gave up while queued: ECONNABORTED and friends.
                        _ => {
                            log::debug!("accept: {e}");
                            continue;
                        }
                    }
                }
            }
        }
        // A full batch: more may be queued, and no new edge will say so.
        // Come back right after the connections already open had a turn.
        self.accept_paused = true;
        self.accept_retry = Some(self.now);
    }

    fn close(&mut self, k: usize) {
        // Closing the descriptor removes it from the epoll set (it is not
        // duplicated; a connection handed to another loop was taken out
        // first), so no epoll_ctl(DEL) is spent on it.
        drop(self.conns.try_remove(k));
        if self.accept_paused && self.accept_retry.is_none() && self.conns.len() < self.sh.cfg.max_connections
        {
            self.accept();
        }
    }

    /// Run connection `k`'s state machine as far as it goes without blocking.
    fn drive(&mut self, k: usize) {
        match self.step(k) {
            Ok(Step::Wait) => {}
            Ok(Step::Yield) => self.ready.push_back(k),
            Ok(Step::Close) => self.close(k),
            Err(e) => {
                // A client fault (reset, vanished peer) ends that connection only.
                log::debug!("{}: {e}", self.conns.get(k).map(|c| c.peer.to_string()).unwrap_or_default());
                self.close(k);
            }
        }
    }

    fn step(&mut self, k: usize) -> io::Result<Step> {
        loop {
            let c = &mut self.conns[k];
            match c.state {
                State::Reading { .. } => {
                    if !self.read_request(k)? {
                        return Ok(if self.conns[k].readable { Step::Close } else { Step::Wait });
                    }
                    // A reply was started; fall through to writing it.
                }
                State::Writing { .. } => match self.write(k)? {
                    Step::Close => {
                        // Response complete, no keep-alive. After an error the
                        // client may still be sending: shut down our side and
                        // drain, so it reads the answer rather than a reset
                        // (nginx's lingering close). Otherwise just close.
                        let c = &mut self.conns[k];
                        if !c.linger {
                            return Ok(Step::Close);
                        }
                        c.start_closing();
                        self.wheel.arm(k, &mut c.timer, self.now + LINGER);
                    }
                    Step::Wait => {
                        if matches!(self.conns[k].state, State::Reading { .. }) {
                            if self.hand_off(k) {
                                return Ok(Step::Close);
                            }
                            continue; // keep-alive: next request
                        }
                        return Ok(Step::Wait);
                    }
                    Step::Yield => return Ok(Step::Yield),
                },
                State::Closing => {
                    // Drop whatever still arrives; close on EOF.
                    loop {
                        match c.read(&mut self.inbuf) {
                            Ok(0) => return Ok(Step::Close),
                            Ok(_) => continue,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                                c.readable = false;
                                return Ok(Step::Wait);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
        }
    }

    /// Reading state. Returns Ok(true) when a reply was started (state is now
    /// Writing), Ok(false) when it must wait for more bytes — with
    /// `readable` still set meaning the peer closed (the caller closes).
    fn read_request(&mut self, k: usize) -> io::Result<bool> {
        // Bytes already here (pipelined) are answered before reading more.
        if self.conns[k].pending.is_some() && self.process_pending(k)? {
            return Ok(true);
        }
        loop {
            let c = &mut self.conns[k];
            if !c.readable {
                return Ok(false);
            }
            let Conn { sock, pending, readable, .. } = c;
            if let Some(p) = pending.as_mut() {
                // Read straight into the partial request's buffer.
                let len = p.buf.len();
                p.buf.resize(len + READ_CHUNK.min(self.sh.cfg.limits.max_header_bytes + 1024), 0);
                let n = match conn::read(sock, &mut p.buf[len..]) {
                    Ok(n) => n,
                    Err(e) => {
                        p.buf.truncate(len);
                        if e.kind() == io::ErrorKind::WouldBlock {
                            *readable = false;
                            return Ok(false);
                        }
                        return Err(e);
                    }
                };
                p.buf.truncate(len + n);
                if n == 0 {
                    // EOF mid-request: nothing to answer.
                    return Ok(false);
                }
                if self.process_pending(k)? {
                    return Ok(true);
                }
            } else {
                let n = match c.read(&mut self.inbuf) {
                    Ok(0) => return Ok(false),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        c.readable = false;
                        return Ok(false);
                    }
                    Err(e) => return Err(e),
                };
                if n < self.inbuf.len() && !c.hup {
                    // A short read drained the socket: no read that would
                    // only return EAGAIN. (After the peer's FIN, keep
                    // reading: the end of stream is news no event repeats.)
                    c.readable = false;
                }
                if self.process_fresh(k, n)? {
                    return Ok(true);
                }
                if !self.conns[k].readable {
                    return Ok(false);
                }
            }
        }
    }

    /// Handle `inbuf[..n]`, the first bytes of a request (no pending state).
    fn process_fresh(&mut self, k: usize, n: usize) -> io::Result<bool> {
        let mut start = 0;
        let c = &mut self.conns[k];
        if c.discard > 0 {
            let d = c.discard.min(n as u64) as usize;
            c.discard -= d as u64;
            start = d;
        }
        if start == n {
            return Ok(false);
        }
        if let State::Reading { started: false } = c.state {
            c.state = State::Reading { started: true };
            self.wheel.arm(k, &mut c.timer, self.now + self.sh.cfg.header_timeout);
        }
        self.parser.reset();
        let data = &self.inbuf[start..n];
        match self.parser.parse(data, &self.sh.cfg.limits) {
            Ok(Status::Complete(len)) => {
                self.answer(k, Source::Fresh { start, len, end: n })?;
                Ok(true)
            }
            Ok(Status::Partial) => {
                let buf = data.to_vec();
                let parser = self.parser.clone();
                self.conns[k].pending = Some(Box::new(Pending { buf, parser }));
                Ok(false)
            }
            Err(e) => {
                self.reject(k, e.status(), e)?;
                Ok(true)
            }
        }
    }

    /// Handle the pending buffer (a partial head, or pipelined requests).
    fn process_pending(&mut self, k: usize) -> io::Result<bool> {
        let c = &mut self.conns[k];
        let Some(p) = c.pending.as_mut() else { return Ok(false) };
        if c.discard > 0 {
            let d = c.discard.min(p.buf.len() as u64) as usize;
            c.discard -= d as u64;
            p.buf.drain(..d);
            p.parser.reset();
        }
        if p.buf.is_empty() {
            c.pending = None;
            return Ok(false);
        }
        if let State::Reading { started: false } = c.state {
            c.state = State::Reading { started: true };
            self.wheel.arm(k, &mut c.timer, self.now + self.sh.cfg.header_timeout);
        }
        match p.parser.parse(&p.buf, &self.sh.cfg.limits) {
            Ok(Status::Complete(len)) => {
                self.answer(k, Source::Pending { len })?;
                Ok(true)
            }
            Ok(Status::Partial) => Ok(false),
            Err(e) => {
                self.reject(k, e.status(), e)?;
                Ok(true)
            }
        }
    }

    /// Answer a malformed request: error page, `Connection: close`.
    fn reject(&mut self, k: usize, status: u16, why: impl std::fmt::Debug) -> io::Result<()> {
        log::debug!("{}: bad request ({status}): {why:?}", self.conns[k].peer);
        self.out.clear();
        let reply = respond::error(&self.clock, status, false, false, &mut self.out);
        self.stats.requests += 1;
        let c = &mut self.conns[k];
        c.pending = None;
        c.linger = true;
        c.start_reply(&self.out, reply)?;
        self.wheel.arm(k, &mut c.timer, self.now + self.sh.cfg.send_timeout);
        Ok(())
    }

    /// A complete head is in `src`: render the reply and start sending it.
    fn answer(&mut self, k: usize, src: Source) -> io::Result<()> {
        let c = &mut self.conns[k];
        let pending = c.pending.take();
        let (buf, head_len, parser): (&[u8], usize, &Parser) = match (src, &pending) {
            (Source::Fresh { start, len, end }, _) => (&self.inbuf[start..end], len, &self.parser),
            (Source::Pending { len }, Some(p)) => (&p.buf[..], len, &p.parser),
            (Source::Pending { .. }, None) => return Ok(()),
        };
        let head = parser.head(buf);
        self.out.clear();
        let mut cx = Ctx {
            sh: &self.sh,
            clock: &self.clock,
            scratch: &mut self.scratch,
            cache: &mut self.cache,
            now: self.now,
            peer: c.peer,
            draining: self.draining.is_some(),
        };
        let reply: Reply = respond::respond(&mut cx, &head, &mut self.out);
        self.stats.requests += 1;
        if let Some(log) = self.log.as_mut() {
            log.log(&access_log::Entry {
                peer: c.peer,
                time: &self.clock.log,
                request_line: (head.method, head.target, head.minor_version),
                status: reply.status,
                body_bytes: reply.body_bytes,
                referer: head.header(b"referer"),
                user_agent: head.header(b"user-agent"),
            });
        }
        // The request body (if any) follows the head and is dropped.
        let body = head.content_length.unwrap_or(0);
        let keep = reply.keep_alive;
        // Whatever follows the head and body is the next request.
        let after = buf.len() - head_len;
        let in_buf_body = body.min(after as u64) as usize;
        let rest = &buf[head_len + in_buf_body..];
        c.discard = body - in_buf_body as u64;
        let unread = head.chunked || c.discard > 0 || !rest.is_empty();
        let next = if keep && !rest.is_empty() {
            match pending {
                Some(mut p) => {
                    p.buf.drain(..head_len + in_buf_body);
                    p.parser.reset();
                    Some(p)
                }
                None => Some(Box::new(Pending { buf: rest.to_vec(), parser: Parser::new() })),
            }
        } else {
            None
        };
        // Closing with unread input makes the kernel send a reset, which can
        // destroy the response in the client's buffer. So drain first when
        // input may still come: after an error, or when a body or further
        // requests are left. A plain `Connection: close` request closes at once.
        c.linger = !keep && (reply.status >= 400 || unread);
        c.pending = next;
        c.served = true;
        c.start_reply(&self.out, reply)?;
        self.wheel.arm(k, &mut c.timer, self.now + self.sh.cfg.send_timeout);
        Ok(())
    }

    /// Writing state: push out the head buffer, then the file.
    /// Returns Wait when blocked (or when done with keep-alive: state is
    /// Reading again), Close when done without keep-alive, Yield when its
    /// turn is used up.
    fn write(&mut self, k: usize) -> io::Result<Step> {
        let now = self.now;
        let send_timeout = self.sh.cfg.send_timeout;
        let c = &mut self.conns[k];
        let fd = c.fd();
        let State::Writing { buf, pos, file, keep_alive } = &mut c.state else {
            return Ok(Step::Wait);
        };
        let mut blocked = false;
        if *pos < buf.len() {
            let n = send_all(fd, &buf[*pos..], file.is_some())?;
            if n > 0 {
                self.wheel.arm(k, &mut c.timer, now + send_timeout);
            }
            *pos += n;
            blocked = *pos < buf.len();
        }
        if let (false, Some(body)) = (blocked, file.as_mut()) {
            let n = send_file(fd, body, SEND_TURN)?;
            if n > 0 {
                self.wheel.arm(k, &mut c.timer, now + send_timeout);
            }
            if body.offset < body.end {
                if n >= SEND_TURN {
                    return Ok(Step::Yield);
                }
                blocked = true;
            }
        }
        if blocked {
            if !c.write_interest {
                c.write_interest = true;
                if c.registered {
                    let both = Interest::READABLE | Interest::WRITABLE;
                    self.poll.registry().reregister(&mut c.sock, Token(k), both)?;
                }
            }
            return Ok(Step::Wait);
        }
        // Response complete.
        if !*keep_alive || self.draining.is_some() {
            return Ok(Step::Close);
        }
        c.state = State::Reading { started: false };
        c.responses = c.responses.saturating_add(1);
        self.wheel.arm(k, &mut c.timer, now + self.sh.cfg.keepalive_timeout);
        Ok(Step::Wait)
    }

    /// Between requests: if connection `k` is idle and due a check (see
    /// `handoff.rs`), and its packets now arrive on another loop's CPU, send
    /// it there. True when it went: the caller then closes this loop's
    /// descriptor (the other loop has its own).
    fn hand_off(&mut self, k: usize) -> bool {
        let Some(h) = self.handoff.as_ref() else { return false };
        let c = &mut self.conns[k];
        let idle = c.pending.is_none() && !c.readable && !c.hup && c.discard == 0;
        if !idle || c.moves >= handoff::MAX_MOVES || !handoff::due(c.responses) {
            return false;
        }
        let Some(peer) = handoff::incoming_cpu(c.fd()).and_then(|cpu| h.peer_for(cpu)) else {
            return false;
        };
        let carried = Carried { responses: c.responses, moves: c.moves + 1 };
        match handoff::send(peer, c.fd(), carried) {
            Ok(true) => {}
            Ok(false) => return false, // its inbox is full: keep serving here
            Err(e) => {
                log::debug!("handoff: {e}");
                return false;
            }
        }
        // The socket now has a descriptor in the other loop too, so closing
        // ours would not take it out of this loop's epoll set: do that first.
        if c.registered {
            if let Err(e) = self.poll.registry().deregister(&mut c.sock) {
                log::error!("handoff: deregister: {e}");
            }
            c.registered = false;
        }
        self.stats.handed_off += 1;
        true
    }

    /// Take the connections other loops handed to this one. Each is idle and
    /// kept alive; bytes that already arrived are reported by epoll as soon
    /// as it is registered.
    fn take_handed(&mut self) {
        loop {
            let Some(h) = self.handoff.as_ref() else { return };
            let (fd, carried) = match handoff::recv(h.inbox()) {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => {
                    log::error!("handoff: receive: {e}");
                    return;
                }
            };
            if self.conns.len() >= self.sh.cfg.max_connections {
                // Full: closing an idle keep-alive connection is allowed
                // (the client retries on a new one), and dropping `fd` does.
                continue;
            }
            let std_sock = std::net::TcpStream::from(fd);
            let Ok(peer) = std_sock.peer_addr() else { continue };
            self.stats.taken += 1;
            let k = self.admit(TcpStream::from_std(std_sock), peer, self.sh.cfg.keepalive_timeout);
            let c = &mut self.conns[k];
            c.served = true;
            c.readable = false;
            c.responses = carried.responses;
            c.moves = carried.moves;
            self.enroll(k);
        }
    }

    /// A new connection (accepted, or taken from another loop) in the slab,
    /// its first deadline `timeout` from now. Returns its key.
    fn admit(&mut self, sock: TcpStream, peer: std::net::SocketAddr, timeout: Duration) -> usize {
        self.generation = self.generation.wrapping_add(1);
        let k = self.conns.insert(Conn::new(sock, peer, self.generation, self.now));
        self.wheel.arm(k, &mut self.conns[k].timer, self.now + timeout);
        k
    }

    /// Put connection `k`, if it is still open, in the epoll set; one that
    /// cannot be registered is dropped.
    fn enroll(&mut self, k: usize) {
        if let Some(c) = self.conns.get_mut(k) {
            if let Err(e) = register(&self.poll, c, k) {
                log::error!("register: {e}");
                self.conns.remove(k);
            }
        }
    }
}

/// Add a new connection to the epoll set. Writable interest only once a write
/// has blocked: registering it up front would wake the loop once for nothing.
fn register(poll: &Poll, c: &mut Conn, k: usize) -> io::Result<()> {
    let interest =
        if c.write_interest { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
    poll.registry().register(&mut c.sock, Token(k), interest)?;
    c.registered = true;
    Ok(())
}

/// Where the bytes of a complete head are.
enum Source {
    /// In the loop's read buffer at `start..end`, head `len` bytes long.
    Fresh { start: usize, len: usize, end: usize },
    /// In the connection's pending buffer, head `len` bytes long.
    Pending { len: usize },
}
