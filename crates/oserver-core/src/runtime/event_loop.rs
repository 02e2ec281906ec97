//! One event loop: a mio `Poll`, the listener, a slab of connections, and the
//! timing wheel of their deadlines.
//!
//! Edge-triggered throughout (mio's rule): on each readiness event a
//! connection reads, writes and sends until the call would block; an event
//! for a token that is gone is ignored. Where the kernel has io_uring, the
//! connections one poll reported are read for first, together, and then
//! driven (`transport/intake.rs`). The loop knows a connection only as a
//! [`Session`]: it passes readiness in, drives it, and files its deadline.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::handoff::{self, Carried, Handoff};
use super::timer::{Timer, Timers, Wheel};
use super::{Control, Stats, Watch};
use crate::protocol::{Ctx, Origin, Session, Step};
use crate::transport::{Intake, Moving, Outbox, Transport, Unsent};

/// The embedder's descriptor (see `Server::watch`), registered by the server.
pub(crate) const WATCH: Token = Token(usize::MAX - 1);
pub(crate) const WAKER: Token = Token(usize::MAX - 2);
const HANDOFF: Token = Token(usize::MAX - 3);
/// Listener `i` has token `FIRST_LISTENER - i`; connections have their slab
/// keys, far below.
const FIRST_LISTENER: usize = usize::MAX - 4;
/// Room for this many listeners below FIRST_LISTENER (one plain, one TLS
/// today).
const MAX_LISTENERS: usize = 16;

/// A listening socket, and the TLS configuration of its connections if they
/// speak TLS.
pub(crate) struct Listener {
    pub sock: TcpListener,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

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

/// A connection and what the loop keeps about it.
struct Slot {
    session: Session,
    timer: Timer,
    /// In the epoll set (a connection answered and closed at accept never is).
    registered: bool,
    /// Registered for writable events too (after a write blocked once; kept
    /// from then on, to spare an epoll_ctl per response).
    write_interest: bool,
    /// Times this connection was handed to another event loop.
    moves: u8,
}

struct Slots(Slab<Slot>);

impl Timers for Slots {
    fn timer(&mut self, k: usize) -> Option<(&mut Timer, Instant)> {
        self.0.get_mut(k).map(|s| (&mut s.timer, s.session.deadline()))
    }
}

pub(crate) struct EventLoop {
    poll: Poll,
    /// Empty once a graceful stop began.
    listeners: Vec<Listener>,
    ctl: Arc<Control>,
    cx: Ctx,
    conns: Slots,
    /// Connections that yielded their turn with work left.
    ready: VecDeque<usize>,
    now: Instant,
    wheel: Wheel,
    /// Reused list of connections whose deadline passed.
    expired: Vec<usize>,
    /// Reused list of connections other threads woke.
    woken: Vec<usize>,
    /// Generation of the last admitted connection (see `Timer`).
    generation: u32,
    /// Connections wait in the backlog: at the cap, or out of descriptors.
    accept_paused: bool,
    accept_retry: Option<Instant>,
    /// Accept is failing for lack of descriptors (logged once).
    accept_failing: bool,
    draining: Option<Instant>,
    log_gen: usize,
    stats: Stats,
    /// Passing idle connections to the loop on their CPU (see `handoff.rs`).
    handoff: Option<Handoff>,
    /// The embedder's descriptor, already registered under `WATCH`.
    watch: Option<Watch>,
    /// Plain connections' writes of this turn, sent together at its end;
    /// None where the kernel has no io_uring for it (writes then go out as
    /// they are made).
    outbox: Option<Outbox>,
    /// Reused list of what the outbox could not send, by connection.
    unsent: Vec<(usize, Unsent)>,
    /// Connections that waited after a drive this turn: each may move to
    /// another loop once the turn's batch has gone (see `hand_off`).
    settled: Vec<usize>,
    /// Plain connections' reads, made for the connections an event woke in
    /// one submission before they are driven; None where the kernel has no
    /// io_uring for it (each connection then reads for itself).
    intake: Option<Intake>,
    /// Reused list of the connections this turn's events woke, to read
    /// for and drive.
    woke: Vec<usize>,
}

impl EventLoop {
    pub(crate) fn new(
        poll: Poll,
        mut listeners: Vec<Listener>,
        cx: Ctx,
        ctl: Arc<Control>,
        handoff: Option<Handoff>,
        watch: Option<Watch>,
    ) -> io::Result<EventLoop> {
        if listeners.len() > MAX_LISTENERS {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many listeners"));
        }
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(&mut l.sock, Token(FIRST_LISTENER - i), Interest::READABLE)?;
        }
        if let Some(h) = &handoff {
            let fd = h.inbox().as_raw_fd();
            poll.registry().register(&mut SourceFd(&fd), HANDOFF, Interest::READABLE)?;
        }
        let now = Instant::now();
        let outbox = match Outbox::new() {
            Ok(o) => Some(o),
            Err(e) => {
                log::debug!("io_uring: {e}; each write is its own system call");
                None
            }
        };
        let intake = match Intake::new() {
            Ok(i) => Some(i),
            Err(e) => {
                log::debug!("io_uring: {e}; each read is its own system call");
                None
            }
        };
        Ok(EventLoop {
            poll,
            listeners,
            log_gen: ctl.reopen.load(Ordering::Acquire),
            ctl,
            cx,
            conns: Slots(Slab::new()),
            ready: VecDeque::new(),
            now,
            wheel: Wheel::new(now),
            expired: Vec::new(),
            woken: Vec::new(),
            generation: 0,
            accept_paused: false,
            accept_retry: None,
            accept_failing: false,
            draining: None,
            stats: Stats::default(),
            handoff,
            watch,
            outbox,
            unsent: Vec::new(),
            settled: Vec::new(),
            intake,
            woke: Vec::new(),
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
            self.cx.refresh_clock();
            for ev in events.iter() {
                match ev.token() {
                    WAKER => {
                        self.control();
                        self.drive_woken();
                    }
                    HANDOFF => self.take_handed(),
                    WATCH => {
                        if let Some(on_ready) = &mut self.watch {
                            on_ready();
                        }
                        // What it asked of the handle, now rather than at
                        // the waker's event.
                        self.control();
                    }
                    Token(t) if t <= FIRST_LISTENER && t > FIRST_LISTENER - MAX_LISTENERS => {
                        self.accept(FIRST_LISTENER - t)
                    }
                    Token(k) => {
                        if let Some(s) = self.conns.0.get_mut(k) {
                            let hup = ev.is_read_closed() || ev.is_error();
                            s.session.ready(ev.is_readable() || hup, hup);
                            if self.intake.is_some() {
                                self.woke.push(k);
                            } else {
                                self.drive(k);
                            }
                        }
                    }
                }
            }
            self.read_and_drive_woke();
            // Connections that yielded go again, each once per turn.
            for _ in 0..self.ready.len() {
                if let Some(k) = self.ready.pop_front() {
                    if self.conns.0.contains(k) {
                        self.drive(k);
                    }
                }
            }
            if self.accept_paused && self.accept_retry.map_or(true, |t| self.now >= t) {
                self.accept_all();
            }
            self.send_gathered();
            self.hand_off_settled();
            if self.now >= self.wheel.next_due() {
                self.tick();
            }
            if let Some(deadline) = self.draining {
                if self.conns.0.is_empty() || self.now >= deadline {
                    break;
                }
            }
        }
        self.stats.requests = self.cx.requests();
        if let Some(o) = &self.outbox {
            (self.stats.gathered_writes, self.stats.gathered_sends) = o.counts();
        }
        if let Some(i) = &self.intake {
            (self.stats.reads_ahead, self.stats.read_submissions) = i.counts();
        }
        // Dropping the context flushes the access log.
        Ok(self.stats)
    }

    /// The connections this turn's events woke: read for them in batches of
    /// [`Intake`]'s size, one submission each, and drive each batch's
    /// connections, which take what was read before reading themselves;
    /// then each keeps what it did not take, and the batch's slots are free.
    /// A key may have closed since its event, or been taken by a connection
    /// accepted after; whichever is there is read for and driven.
    fn read_and_drive_woke(&mut self) {
        let Some(intake) = self.intake.clone() else { return };
        let woke = std::mem::take(&mut self.woke);
        for batch in woke.chunks(crate::transport::READ_BATCH) {
            for &k in batch {
                if let Some(s) = self.conns.0.get_mut(k) {
                    s.session.transport_mut().read_ahead();
                }
            }
            intake.submit();
            for &k in batch {
                if self.conns.0.contains(k) {
                    self.drive(k);
                }
            }
            for &k in batch {
                if let Some(s) = self.conns.0.get_mut(k) {
                    s.session.transport_mut().keep();
                }
            }
            intake.finish();
        }
        self.woke = woke;
        self.woke.clear();
    }

    /// The end of a turn: send what the connections wrote into the outbox.
    /// A connection whose socket did not take it all gets the rest back and
    /// waits to be writable; one whose send failed is closed.
    fn send_gathered(&mut self) {
        let Some(outbox) = &self.outbox else { return };
        if outbox.is_empty() {
            return;
        }
        outbox.send(&mut self.unsent);
        let mut unsent = std::mem::take(&mut self.unsent);
        for (k, u) in unsent.drain(..) {
            let Some(s) = self.conns.0.get_mut(k) else { continue };
            match u {
                Unsent::Rest(rest) => {
                    s.session.unsent(rest);
                    if !self.want_write(k) {
                        self.close(k);
                    }
                }
                Unsent::Failed(e) => {
                    log::debug!("{}: {e}", s.session.peer());
                    self.close(k);
                }
            }
        }
        self.unsent = unsent;
    }

    /// Connection `k` waits for its socket to take more: add writable
    /// interest if it has none. False if that failed (close it).
    fn want_write(&mut self, k: usize) -> bool {
        let s = &mut self.conns.0[k];
        if s.write_interest {
            return true;
        }
        s.write_interest = true;
        if s.registered {
            let both = Interest::READABLE | Interest::WRITABLE;
            if let Err(e) = self.poll.registry().reregister(s.session.socket(), Token(k), both) {
                log::debug!("{}: reregister: {e}", s.session.peer());
                return false;
            }
        }
        true
    }

    fn poll_timeout(&self) -> Duration {
        // Writes gathered after the turn's batch went (a connection accepted
        // when a close made room, in `send_gathered`, `hand_off_settled` or
        // `tick`) must not wait for the next event: another turn, at once.
        if !self.ready.is_empty() || self.outbox.as_ref().is_some_and(|o| !o.is_empty()) {
            return Duration::ZERO;
        }
        let mut t = self.wheel.next_due().saturating_duration_since(self.now);
        if let Some(r) = self.accept_retry {
            t = t.min(r.saturating_duration_since(self.now));
        }
        t
    }

    /// Once a second (each tick of the timer wheel): the protocols' own
    /// chores (the access log), and close the connections whose deadline
    /// passed.
    fn tick(&mut self) {
        self.cx.tick();
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.expire(self.now, &mut self.conns, &mut expired);
        for k in expired.drain(..) {
            log::debug!("{}: timed out", self.conns.0[k].session.peer());
            self.close(k);
        }
        self.expired = expired;
    }

    /// Drive the connections other threads woke (a handler's late reply, a
    /// streamed body's next piece). A key whose connection has gone, or
    /// was reused, costs one drive that finds nothing to do.
    fn drive_woken(&mut self) {
        let mut woken = std::mem::take(&mut self.woken);
        self.cx.woken(&mut woken);
        for k in woken.drain(..) {
            if self.conns.0.contains(k) {
                self.drive(k);
            }
        }
        self.woken = woken;
    }

    fn control(&mut self) {
        let gen = self.ctl.reopen.load(Ordering::Acquire);
        if gen != self.log_gen {
            self.log_gen = gen;
            self.cx.reopen_logs();
        }
        if self.ctl.shutdown.load(Ordering::Acquire) && self.draining.is_none() {
            self.begin_drain();
        }
    }

    /// Graceful stop: no new connections; each session decides whether it
    /// closes now (idle) or finishes what it is doing.
    fn begin_drain(&mut self) {
        // Answers of this turn go first: an idle connection is closed below.
        self.send_gathered();
        self.draining = Some(self.now + self.cx.settings().shutdown_timeout);
        self.cx.begin_drain();
        for mut l in self.listeners.drain(..) {
            let _ = self.poll.registry().deregister(&mut l.sock);
        }
        // Neither take connections from other loops nor pass any on. What
        // is in flight to this loop's inbox waits there for its successor.
        if let Some(h) = self.handoff.take() {
            let _ = self.poll.registry().deregister(&mut SourceFd(&h.inbox().as_raw_fd()));
        }
        self.accept_paused = false;
        self.accept_retry = None;
        let mut idle = Vec::new();
        for (k, s) in self.conns.0.iter_mut() {
            if s.session.drain(self.now, DRAIN_GRACE) {
                idle.push(k);
            } else {
                self.wheel.arm(k, &mut s.timer, s.session.deadline());
            }
        }
        for k in idle {
            self.close(k);
        }
    }

    /// After a pause (the connection cap, no descriptors, a full batch):
    /// every listener gets its turn again.
    fn accept_all(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept(i);
            if self.accept_paused {
                return;
            }
        }
    }

    /// Accept from listener `i`.
    fn accept(&mut self, i: usize) {
        self.accept_retry = None;
        self.accept_paused = false;
        for _ in 0..ACCEPT_BATCH {
            if self.conns.0.len() >= self.cx.settings().max_connections {
                // Stay out of accept until a connection closes (see close()).
                self.accept_paused = true;
                return;
            }
            let Some(listener) = self.listeners.get(i) else { return };
            match listener.sock.accept() {
                Ok((sock, peer)) => {
                    self.accept_failing = false;
                    self.stats.connections += 1;
                    let io = match Transport::new(sock, listener.tls.as_ref()) {
                        Ok(io) => io,
                        Err(e) => {
                            log::error!("{peer}: TLS session: {e}");
                            continue;
                        }
                    };
                    let k = self.admit(io, peer, Origin::Accepted);
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
        drop(self.conns.0.try_remove(k));
        if self.accept_paused
            && self.accept_retry.is_none()
            && self.conns.0.len() < self.cx.settings().max_connections
        {
            self.accept_all();
        }
    }

    /// Run connection `k` as far as it goes without blocking, then do what
    /// it asks: wait (with write interest if it is blocked writing), come
    /// back this turn, or close; and file its deadline.
    fn drive(&mut self, k: usize) {
        self.cx.driving(k);
        if let Some(o) = &self.outbox {
            o.driving(k);
        }
        let s = &mut self.conns.0[k];
        match s.session.drive(&mut self.cx, self.now) {
            Ok(Step::Wait) => {
                if s.session.wants_write() && !self.want_write(k) {
                    return self.close(k);
                }
                if self.handoff.is_some() {
                    self.settled.push(k);
                }
            }
            Ok(Step::Yield) => self.ready.push_back(k),
            Ok(Step::Close) => return self.close(k),
            Ok(Step::Upgrade) => return self.upgrade(k),
            Err(e) => {
                // A client fault (reset, vanished peer) ends that connection only.
                log::debug!("{}: {e}", s.session.peer());
                return self.close(k);
            }
        }
        let s = &mut self.conns.0[k];
        self.wheel.arm(k, &mut s.timer, s.session.deadline());
    }

    /// Connection `k` changes protocol: its session is replaced by the one
    /// it becomes (same socket, same slot), which runs at once.
    fn upgrade(&mut self, k: usize) {
        let Slot { session, timer, registered, write_interest, moves } = self.conns.0.remove(k);
        let session = session.upgrade(self.now, self.cx.settings());
        let slot = Slot { session, timer, registered, write_interest, moves };
        // The slab reuses the key just freed, so the socket's token and the
        // timer's entry stay right.
        let k2 = self.conns.0.insert(slot);
        debug_assert_eq!(k, k2);
        if k2 != k {
            let s = &mut self.conns.0[k2];
            let interest =
                if s.write_interest { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
            if let Err(e) = self.poll.registry().reregister(s.session.socket(), Token(k2), interest) {
                log::debug!("{}: reregister: {e}", s.session.peer());
                return self.close(k2);
            }
        }
        self.drive(k2);
    }

    /// The end of a turn, its batch sent: the connections that waited after
    /// a drive may move to another loop.
    fn hand_off_settled(&mut self) {
        let mut settled = std::mem::take(&mut self.settled);
        for k in settled.drain(..) {
            // A key may have closed since, or been taken by a connection
            // accepted after; `hand_off` looks at whichever is there.
            if self.conns.0.contains(k) {
                self.hand_off(k);
            }
        }
        // A burst of connections in one turn grows the list; keep what a
        // usual turn needs.
        settled.shrink_to(1024);
        self.settled = settled;
    }

    /// Between requests: if connection `k` is idle and due a check (see
    /// `handoff.rs`), and its packets now arrive on another loop's CPU, send
    /// it there (a TLS connection with its keys). True when it went: the
    /// slot is then gone.
    fn hand_off(&mut self, k: usize) -> bool {
        let Some(h) = self.handoff.as_ref() else { return false };
        let s = &self.conns.0[k];
        let Some(responses) = s.session.idle() else { return false };
        if s.moves >= handoff::MAX_MOVES || !handoff::due(responses) {
            return false;
        }
        let Some(to) = handoff::incoming_cpu(s.session.fd()).and_then(|cpu| h.peer_for(cpu)) else {
            return false;
        };
        // Taking a TLS connection's keys consumes its rustls session, so the
        // connection leaves its slot first; if the other loop cannot take
        // it, it comes back in as if handed to this one.
        let Slot { session, registered, write_interest, moves, .. } = self.conns.0.remove(k);
        let peer = session.peer();
        let Some(mut moving) = session.into_transport().and_then(Transport::into_moving) else {
            // `idle` said it could move; should that be wrong, the idle
            // connection is closed (its client retries on a new one).
            log::debug!("{peer}: handoff: its transport would not move");
            self.close(k);
            return true;
        };
        let carried = Carried { responses, moves: moves + 1 };
        match handoff::send(to, moving.sock.as_raw_fd(), carried, moving.keys.as_ref()) {
            Ok(true) => {
                // The socket now has a descriptor in the other loop too, so
                // closing ours would not take it out of this loop's epoll
                // set: do that first.
                if registered {
                    if let Err(e) = self.poll.registry().deregister(&mut moving.sock) {
                        log::error!("handoff: deregister: {e}");
                    }
                }
                self.stats.handed_off += 1;
                drop(moving);
                self.close(k);
                true
            }
            // Its inbox is full (or the send failed): keep serving here.
            sent => {
                if let Err(e) = sent {
                    log::debug!("handoff: {e}");
                }
                let origin = Origin::HandedOver { responses };
                let k2 = self.admit(Transport::arrived(moving), peer, origin);
                let s = &mut self.conns.0[k2];
                s.moves = moves;
                s.write_interest = write_interest;
                s.registered = registered;
                // The slab gives back the key just freed, so the socket's
                // token is still right (as in `upgrade`).
                debug_assert_eq!(k, k2);
                if k2 != k {
                    self.close(k2);
                    return true;
                }
                false
            }
        }
    }

    /// Take the connections other loops handed to this one. Each is idle and
    /// kept alive; bytes that already arrived are reported by epoll as soon
    /// as it is registered.
    fn take_handed(&mut self) {
        loop {
            let Some(h) = self.handoff.as_ref() else { return };
            let arrival = match handoff::recv(h.inbox()) {
                Ok(Some(got)) => got,
                Ok(None) => return,
                Err(e) => {
                    log::error!("handoff: receive: {e}");
                    return;
                }
            };
            if self.conns.0.len() >= self.cx.settings().max_connections {
                // Full: closing an idle keep-alive connection is allowed
                // (the client retries on a new one), and dropping it does.
                continue;
            }
            let std_sock = std::net::TcpStream::from(arrival.fd);
            let Ok(peer) = std_sock.peer_addr() else { continue };
            self.stats.taken += 1;
            let origin = Origin::HandedOver { responses: arrival.carried.responses };
            let moving = Moving { sock: TcpStream::from_std(std_sock), keys: arrival.keys };
            let k = self.admit(Transport::arrived(moving), peer, origin);
            self.conns.0[k].moves = arrival.carried.moves;
            self.enroll(k);
        }
    }

    /// A new connection (accepted, or taken from another loop) in the slab,
    /// its first deadline filed. Returns its key.
    fn admit(&mut self, mut io: Transport, peer: SocketAddr, origin: Origin) -> usize {
        if let Some(o) = &self.outbox {
            io.gather(o);
        }
        if let Some(i) = &self.intake {
            io.read_from(i);
        }
        self.generation = self.generation.wrapping_add(1);
        let session = Session::new(io, peer, origin, self.now, self.cx.settings());
        let timer = Timer::new(self.generation);
        let k =
            self.conns.0.insert(Slot { session, timer, registered: false, write_interest: false, moves: 0 });
        let s = &mut self.conns.0[k];
        self.wheel.arm(k, &mut s.timer, s.session.deadline());
        k
    }

    /// Put connection `k`, if it is still open, in the epoll set; one that
    /// cannot be registered is dropped. Writable interest only once a write
    /// has blocked: registering it up front would wake the loop once for
    /// nothing.
    fn enroll(&mut self, k: usize) {
        let Some(s) = self.conns.0.get_mut(k) else { return };
        let interest =
            if s.write_interest { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        match self.poll.registry().register(s.session.socket(), Token(k), interest) {
            Ok(()) => s.registered = true,
            Err(e) => {
                log::error!("register: {e}");
                self.conns.0.remove(k);
            }
        }
    }
}
