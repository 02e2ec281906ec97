//! One client connection: a state machine that owns its data.
//!
//! ```text
//!            accept
//!              |
//!              v
//!   +----> Reading --(head complete)--> Writing --(sent, keep-alive)--+
//!   |          |                          |                          |
//!   |      (bad request)              (sent, close)                  |
//!   |          v                          v                          |
//!   |      Writing(close) ---------->  Closing --(EOF / timer)--> closed
//!   +----------------------------------------------------------------+
//! ```
//!
//! Each state's function goes straight into the next state when it can,
//! without waiting for another poll; it returns when the socket would block.

use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::net::TcpStream;

use crate::parse::Parser;
use crate::respond::{FileBody, Reply};
use crate::timer::Timer;

/// Bytes received but not yet answered: a head that arrived in pieces, or
/// pipelined requests behind the one being answered. Boxed and only present
/// while needed, so an idle connection costs a few words.
pub(crate) struct Pending {
    pub buf: Vec<u8>,
    pub parser: Parser,
}

pub(crate) enum State {
    /// Waiting for (the rest of) a request head.
    Reading {
        /// Some byte of this request has arrived (header timeout applies,
        /// not keep-alive).
        started: bool,
    },
    /// Sending a response.
    Writing {
        /// Head (and in-memory body) bytes not yet sent; empty when they all
        /// went out in the first write.
        buf: Vec<u8>,
        pos: usize,
        file: Option<FileBody>,
        keep_alive: bool,
    },
    /// Write side shut after a `Connection: close` response; reading and
    /// dropping what the client still sends, so it reads our response rather
    /// than a reset.
    Closing,
}

pub(crate) struct Conn {
    pub sock: TcpStream,
    pub peer: SocketAddr,
    pub state: State,
    /// The current state's timeout (set through `Wheel::arm`).
    pub timer: Timer,
    /// Request-body bytes still to be read and dropped.
    pub discard: u64,
    pub pending: Option<Box<Pending>>,
    /// Readiness seen and not yet drained (edge-triggered).
    pub readable: bool,
    /// The peer shut down its side (or the socket has an error).
    pub hup: bool,
    /// At least one response was started on this connection.
    pub served: bool,
    /// Close with shutdown-and-drain rather than at once (after an error).
    pub linger: bool,
    /// Wants writable events too (after a write blocked once).
    pub write_interest: bool,
    /// In the epoll set (a connection answered and closed at accept never is).
    pub registered: bool,
    /// Responses completed on this connection (saturating), for the handoff
    /// check's schedule.
    pub responses: u32,
    /// Times this connection was handed to another event loop.
    pub moves: u8,
}

/// What the event loop does with a connection after driving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Wait for the next event.
    Wait,
    /// It used its share of this turn and can continue: come back after the
    /// other ready connections.
    Yield,
    /// Done: drop it (closing the socket).
    Close,
}

impl Conn {
    /// A new connection; the caller arms its first deadline.
    pub(crate) fn new(sock: TcpStream, peer: SocketAddr, generation: u32, now: Instant) -> Conn {
        Conn {
            sock,
            peer,
            state: State::Reading { started: false },
            timer: Timer::new(generation, now),
            discard: 0,
            pending: None,
            readable: true,
            hup: false,
            served: false,
            linger: false,
            write_interest: false,
            registered: false,
            responses: 0,
            moves: 0,
        }
    }

    pub(crate) fn fd(&self) -> i32 {
        self.sock.as_raw_fd()
    }

    /// Read into `buf`, retrying on EINTR. `Ok(0)` is end of stream.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read(&mut self.sock, buf)
    }

    /// Start sending `reply`, whose head (and in-memory body) is in `head`.
    /// Tries to send at once; whatever does not go out is copied into the
    /// connection.
    pub(crate) fn start_reply(&mut self, head: &[u8], reply: Reply) -> io::Result<()> {
        let more = reply.file.is_some();
        let sent = send_all(self.fd(), head, more)?;
        let buf = if sent < head.len() { head[sent..].to_vec() } else { Vec::new() };
        self.state = State::Writing { buf, pos: 0, file: reply.file, keep_alive: reply.keep_alive };
        Ok(())
    }

    /// Enter Closing: shut down our side so the client sees EOF after the
    /// response, keep reading until it closes or the timer fires.
    pub(crate) fn start_closing(&mut self) {
        let _ = self.sock.shutdown(Shutdown::Write);
        self.state = State::Closing;
    }
}

/// Read from `sock` into `buf`, retrying on EINTR. `Ok(0)` is end of stream.
/// (A free function so a caller holding another field of the connection can
/// use it.)
pub(crate) fn read(sock: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match sock.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Send as much of `buf` as the socket takes now. `more` tells the kernel a
/// file body follows (MSG_MORE), so a small head and body share segments.
pub(crate) fn send_all(fd: i32, buf: &[u8], more: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if more { libc::MSG_MORE } else { 0 };
    let mut sent = 0;
    while sent < buf.len() {
        let rest = &buf[sent..];
        // SAFETY: `rest` is a valid, initialised slice for the call's duration.
        match nonblocking(|| unsafe { libc::send(fd, rest.as_ptr().cast(), rest.len(), flags) })? {
            Some(n) => sent += n,
            None => return Ok(sent),
        }
    }
    Ok(sent)
}

/// Run a raw non-blocking system call that returns a count or -1 with errno:
/// `Ok(Some(count))`, `Ok(None)` when it would block, retried on EINTR.
pub(crate) fn nonblocking(mut call: impl FnMut() -> isize) -> io::Result<Option<usize>> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}

/// sendfile(2) up to `max` bytes of `body` to the socket, advancing its offset.
/// Returns bytes sent; 0 means the socket would block.
pub(crate) fn send_file(fd: i32, body: &mut FileBody, max: u64) -> io::Result<u64> {
    let mut total = 0u64;
    while body.offset < body.end && total < max {
        let want = (body.end - body.offset).min(max - total).min(isize::MAX as u64) as usize;
        let mut off = body.offset as libc::off64_t;
        let file = body.file.fd();
        // SAFETY: both descriptors are open; `off` is a valid pointer.
        let Some(n) = nonblocking(|| unsafe { libc::sendfile64(fd, file, &mut off, want) })? else {
            return Ok(total);
        };
        if n == 0 {
            // The file shrank under us: the promised length can't be kept.
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file truncated while sending"));
        }
        body.offset += n as u64;
        total += n as u64;
    }
    Ok(total)
}
