//! Plain TCP: recv, send (with MSG_MORE when a file follows) and sendfile,
//! edge-triggered, with the socket's readiness kept beside it; on a loop
//! that gathers its sends (`outbox.rs`), a write may wait for the end of
//! the turn, and on one that reads ahead (`intake.rs`), a read takes what
//! the loop read for the connection before the socket's bytes.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

use mio::net::TcpStream;

use super::intake::{Intake, Taken, Ticket, SLOT};
use super::outbox::Outbox;
use super::sys::{nonblocking, send_some};

/// A TCP connection and what the event loop has told about its readiness.
#[derive(Debug)]
pub(crate) struct Plain {
    /// Declared before `sock`, so it is dropped (its bytes sent) while the
    /// socket is still open.
    out: Pending,
    sock: TcpStream,
    /// Readiness seen and not yet drained (edge-triggered: no new event
    /// comes until a read returns less than asked or would block).
    readable: bool,
    /// The peer shut down its side (or the socket has an error).
    hup: bool,
    /// The slot of the loop's batch of reads (`intake.rs`) that holds what
    /// it read for this connection, until the protocol takes it whole or
    /// the batch ends. 2 bytes, in what was padding.
    slot: Option<Ticket>,
    /// On a loop that reads ahead: its reads.
    intake: Option<Intake>,
    /// What the protocol had not taken of its slot when the batch ended.
    /// Boxed: 8 bytes in every connection's slot, for a rare case.
    kept: Option<Box<Kept>>,
}

/// What a connection kept of a read made ahead for it: the next reads
/// take it before the socket's bytes.
#[derive(Debug)]
enum Kept {
    /// The bytes not taken yet (never empty).
    Bytes(Vec<u8>),
    /// The read failed with this errno.
    Failed(i32),
}

/// What a read got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recv {
    /// This many bytes (at least one).
    Data(usize),
    /// Nothing now; readiness is spent.
    Blocked,
    /// The peer closed its side: no more bytes will come.
    Eof,
}

impl Plain {
    /// A connection fresh from accept (or from another loop): assumed
    /// readable, so whatever already arrived is read without waiting for an
    /// event (with TCP_DEFER_ACCEPT the request is usually there).
    pub(crate) fn new(sock: TcpStream) -> Plain {
        let out = Pending { batch: None, mark: 0, held: None, fd: sock.as_raw_fd() };
        Plain { out, sock, readable: true, hup: false, slot: None, intake: None, kept: None }
    }

    /// From now on, writes may wait in `batch` for the end of the loop's
    /// turn.
    pub(crate) fn gather(&mut self, batch: &Outbox) {
        self.out.batch = Some(batch.clone());
    }

    /// From now on, the loop may read for this connection ahead of driving
    /// it (see [`read_ahead`](Plain::read_ahead)).
    pub(crate) fn read_from(&mut self, intake: &Intake) {
        self.intake = Some(intake.clone());
    }

    /// Queue a read in the loop's batch of reads, if the socket may have
    /// bytes and nothing read ahead is waiting already. The read is made
    /// when the loop submits the batch; the connection's reads take its
    /// result first.
    pub(crate) fn read_ahead(&mut self) {
        if !self.readable || self.slot.is_some() || self.kept.is_some() {
            return;
        }
        self.slot = self.intake.as_ref().and_then(|i| i.queue(self.sock.as_raw_fd()));
    }

    /// The batch of reads is about to end: what the protocol did not take
    /// of this connection's slot moves into the connection, taken as a read
    /// would take it.
    pub(crate) fn keep(&mut self) {
        if self.slot.is_none() {
            return;
        }
        let mut rest = vec![0; SLOT];
        self.kept = match self.read_taken(&mut rest) {
            // The end of the stream: the socket says it again to the next
            // read. Nothing had arrived: the readiness is spent.
            None | Some(Ok(0)) => None,
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => None,
            Some(Ok(n)) => {
                rest.truncate(n);
                Some(Box::new(Kept::Bytes(rest)))
            }
            Some(Err(e)) => Some(Box::new(Kept::Failed(e.raw_os_error().unwrap_or(libc::EIO)))),
        };
    }

    /// Nothing read ahead waits in a slot or here.
    fn nothing_ahead(&self) -> bool {
        self.slot.is_none() && self.kept.is_none()
    }

    /// What the loop's batch could not send: it goes first when the socket
    /// is writable.
    pub(crate) fn unsent(&mut self, rest: Vec<u8>) {
        self.out.mark = 0;
        match &mut self.out.held {
            Some(held) => drop(held.splice(0..0, rest)),
            None => self.out.held = Some(Box::new(rest)),
        }
    }

    /// Bytes accepted from the protocol wait for the socket to take them.
    pub(crate) fn wants_write(&self) -> bool {
        self.out.held.is_some()
    }

    /// Nothing waits to be written, here or in the turn's batch: the socket
    /// could move to another loop.
    pub(crate) fn movable(&self) -> bool {
        self.out.held.is_none() && !self.out.queued() && self.nothing_ahead()
    }

    /// Note an event: readable, or the peer's end (which is readable too).
    pub(crate) fn ready(&mut self, readable: bool, hup: bool) {
        self.readable |= readable || hup;
        self.hup |= hup;
    }

    /// Bytes may be waiting (no read has drained the socket since the last
    /// event, or the loop read some ahead).
    pub(crate) fn readable(&self) -> bool {
        self.readable || !self.nothing_ahead()
    }

    /// The peer has shut down its side.
    pub(crate) fn hup(&self) -> bool {
        self.hup
    }

    /// Forget readiness, for a connection that arrived from another loop
    /// with nothing read: epoll reports what is there once it is registered.
    pub(crate) fn wait_for_event(&mut self) {
        self.readable = false;
    }

    /// Read into `buf` (EINTR retried).
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        if !self.readable() {
            return Ok(Recv::Blocked);
        }
        match io::Read::read(self, buf) {
            Ok(0) => Ok(Recv::Eof),
            Ok(n) => Ok(Recv::Data(n)),
            // Readiness is spent (the Read impl noted it).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Recv::Blocked),
            Err(e) => Err(e),
        }
    }

    /// Send as much of `buf` as the socket takes now. `more` tells the
    /// kernel a file body follows (MSG_MORE), so a small head and body share
    /// segments.
    ///
    /// On a loop that gathers sends, a write with nothing to follow goes into
    /// the turn's batch, and counts as sent.
    pub(crate) fn send(&mut self, buf: &[u8], more: bool) -> io::Result<usize> {
        let fd = self.fd();
        if !more && self.out.held.is_none() {
            if let Some(b) = &self.out.batch {
                if b.put(fd, buf, &mut self.out.mark) {
                    return Ok(buf.len());
                }
            }
        }
        if !self.out.settle()? {
            return Ok(0);
        }
        send_some(fd, buf, if more { libc::MSG_MORE } else { 0 })
    }

    /// sendfile(2) up to `max` bytes of the file `file` from `*offset` to
    /// `end`, advancing `offset`. Returns bytes sent; fewer than asked means
    /// the socket would block.
    ///
    /// # Errors
    ///
    /// The socket's, or `UnexpectedEof` when the file ends before `end` (it
    /// shrank while being sent: the promised length cannot be kept).
    pub(crate) fn send_file(&mut self, file: RawFd, offset: &mut u64, end: u64, max: u64) -> io::Result<u64> {
        if !self.out.settle()? {
            return Ok(0);
        }
        let fd = self.fd();
        let mut total = 0u64;
        while *offset < end && total < max {
            let want = (end - *offset).min(max - total).min(isize::MAX as u64) as usize;
            let mut off = *offset as libc::off64_t;
            // SAFETY: both descriptors are open; `off` is a valid pointer.
            let Some(n) = nonblocking(|| unsafe { libc::sendfile64(fd, file, &mut off, want) })? else {
                return Ok(total);
            };
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file truncated while sending"));
            }
            *offset += n as u64;
            total += n as u64;
        }
        Ok(total)
    }

    /// Send what the loop's batch could not send (see [`Plain::unsent`]),
    /// as far as the socket takes it: true when nothing is left that the
    /// connection must push itself. A run gathered this turn stays in the
    /// batch, which sends it at the end of the turn.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        if self.out.held.is_none() {
            return Ok(true);
        }
        // With bytes held, no run is in the batch (a write is gathered only
        // when nothing is held): settling sends the held bytes alone.
        self.out.settle()
    }

    /// As [`flush`](Plain::flush), and a run gathered this turn is taken
    /// back and sent too: for a protocol about to close, when every byte
    /// must be in the kernel. True when nothing is left.
    pub(crate) fn flush_all(&mut self) -> io::Result<bool> {
        self.out.settle()
    }

    /// Shut down our sending side: the peer reads the end of the response,
    /// then end of stream.
    pub(crate) fn shutdown_write(&mut self) {
        let _ = self.out.settle();
        let _ = self.sock.shutdown(Shutdown::Write);
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The socket, for the event loop to register.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// The socket itself, for a connection moving to another loop (which
    /// is [`movable`](Plain::movable): nothing is left to send).
    pub(crate) fn into_socket(self) -> TcpStream {
        let Plain { out, sock, .. } = self;
        drop(out);
        sock
    }
}

/// Bytes a protocol wrote that are not in the kernel yet: a run in the
/// loop's batch, or what the batch could not send. Small (a connection's
/// slot holds it): the bytes themselves are the batch's, or boxed.
#[derive(Debug)]
struct Pending {
    batch: Option<Outbox>,
    /// Written before anything in the batch, and not sent yet (never empty).
    /// Boxed: 8 bytes in every connection's slot rather than a Vec's 24,
    /// for a case that is rare (a full socket) and pays one more allocation.
    #[allow(clippy::box_collection)]
    held: Option<Box<Vec<u8>>>,
    /// The batch holding this connection's run (0: none); see `Outbox::put`.
    mark: u32,
    fd: RawFd,
}

impl Pending {
    /// This connection's run is in the batch being gathered.
    fn queued(&self) -> bool {
        self.batch.as_ref().is_some_and(|b| b.holds(self.mark))
    }

    /// Take the run back from the batch and send everything held, as far as
    /// the socket takes it: true when nothing is left.
    fn settle(&mut self) -> io::Result<bool> {
        if self.mark != 0 {
            if let Some(b) = &self.batch {
                // With a run in the batch nothing is held (a write is
                // gathered only then): what the socket does not take of the
                // run is all there is.
                let rest = b.take_back(self.fd, &mut self.mark)?;
                if !rest.is_empty() {
                    self.held = Some(Box::new(rest));
                    return Ok(false);
                }
            }
            self.mark = 0;
        }
        let Some(held) = &mut self.held else { return Ok(true) };
        let sent = send_some(self.fd, held, 0)?;
        held.drain(..sent);
        if held.is_empty() {
            self.held = None;
        }
        Ok(self.held.is_none())
    }
}

/// A connection closing with bytes in the turn's batch sends them itself,
/// as far as the socket takes them: its descriptor is about to be closed,
/// and could be reused before the batch goes out.
impl Drop for Pending {
    fn drop(&mut self) {
        let _ = self.settle();
    }
}

/// Raw reads (for `recv`, and for a layer above such as TLS): EINTR
/// retried; WouldBlock spends the readiness and is returned as the error it
/// is.
impl io::Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            if let Some(got) = self.read_taken(buf) {
                return got;
            }
        }
        loop {
            match self.sock.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Err(e);
                }
                Ok(n) if n > 0 && n < buf.len() && !self.hup => {
                    // A short read drained the socket: skip the read that
                    // would only return EAGAIN (TLS reads through here too).
                    // After the peer's FIN keep reading: the end of stream
                    // is news no event repeats.
                    self.readable = false;
                    return Ok(n);
                }
                r => return r,
            }
        }
    }
}

impl Plain {
    /// A read served from what the loop read ahead (see `intake.rs`), if
    /// it read any.
    fn read_taken(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        if let Some(ticket) = self.slot {
            let taken = self.intake.as_ref().and_then(|i| i.take(ticket, self.sock.as_raw_fd(), buf));
            return Some(match taken {
                Some(Taken::Bytes { n, last, short }) => {
                    if last {
                        self.slot = None;
                        // As a short read from the socket (see `read`).
                        if short && !self.hup {
                            self.readable = false;
                        }
                    }
                    Ok(n)
                }
                Some(Taken::Eof) => {
                    self.slot = None;
                    Ok(0)
                }
                Some(Taken::Failed(errno)) => {
                    self.slot = None;
                    if errno == libc::EAGAIN {
                        self.readable = false;
                    }
                    Err(io::Error::from_raw_os_error(errno))
                }
                None => {
                    // The batch ended and the connection kept nothing:
                    // the loop broke the module's rule. Its bytes are
                    // gone; end the connection rather than go on without
                    // them.
                    debug_assert!(false, "read ahead: the slot's batch ended before it was kept");
                    self.slot = None;
                    Err(io::Error::other("bytes read ahead were lost"))
                }
            });
        }
        let kept = self.kept.as_deref_mut()?;
        Some(match kept {
            Kept::Bytes(bytes) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if bytes.is_empty() {
                    self.kept = None;
                }
                Ok(n)
            }
            Kept::Failed(errno) => {
                let e = io::Error::from_raw_os_error(*errno);
                self.kept = None;
                Err(e)
            }
        })
    }
}

/// Raw writes for a layer above (TLS): no SIGPIPE; WouldBlock returned as
/// the error it is.
impl io::Write for Plain {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.send(buf, false)? {
            0 if !buf.is_empty() => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }

    /// Several buffers in one sendmsg (rustls hands its records over this
    /// way: four records, one system call).
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let fd = self.fd();
        // SAFETY: an all-zero msghdr is valid (no name, no control data).
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        // IoSlice is ABI-compatible with iovec on Unix; sendmsg only reads it.
        msg.msg_iov = bufs.as_ptr() as *mut libc::iovec;
        msg.msg_iovlen = bufs.len().min(MAX_IOV) as _;
        // SAFETY: `msg` points at `bufs`, valid for the call's duration.
        match nonblocking(|| unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) })? {
            Some(n) => Ok(n),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Buffers passed to one sendmsg: Linux's IOV_MAX.
const MAX_IOV: usize = 1024;

/// For tests over real sockets: wait (at most 2 s) until `fd` has bytes or
/// an end of stream to read.
#[cfg(test)]
pub(crate) fn wait_readable(fd: RawFd) {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, 2000) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pair() -> (Plain, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        (Plain::new(TcpStream::from_std(s)), client)
    }

    #[test]
    fn vectored_writes_send_every_buffer_in_order() {
        let (mut p, mut c) = pair();
        let bufs = [io::IoSlice::new(b"one "), io::IoSlice::new(b""), io::IoSlice::new(b"two")];
        assert_eq!(io::Write::write_vectored(&mut p, &bufs).unwrap(), 7);
        let mut got = [0u8; 7];
        io::Read::read_exact(&mut c, &mut got).unwrap();
        assert_eq!(&got, b"one two");
    }

    #[test]
    fn short_read_spends_readiness_and_eof_is_reported() {
        let (mut p, mut c) = pair();
        let mut buf = [0u8; 64];
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Blocked);
        assert!(!p.readable());
        // Not readable: no system call, even though bytes are waiting.
        c.write_all(b"hello").unwrap();
        wait_readable(p.fd());
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Blocked);
        p.ready(true, false);
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Data(5));
        assert!(!p.readable(), "a short read drains the socket");
        drop(c);
        wait_readable(p.fd());
        p.ready(false, true);
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Eof);
    }

    #[test]
    fn send_file_sends_the_range() {
        use std::io::Read as _;
        let (mut p, mut c) = pair();
        let path = std::env::temp_dir().join(format!("oserver-plain-{}", std::process::id()));
        std::fs::write(&path, b"0123456789").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        let mut off = 2;
        assert_eq!(p.send_file(f.as_raw_fd(), &mut off, 7, 1 << 20).unwrap(), 5);
        assert_eq!(off, 7);
        p.shutdown_write();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"23456");
        let mut off = 8;
        let err = p.send_file(f.as_raw_fd(), &mut off, 20, 1 << 20);
        assert!(err.is_err(), "past the file's end");
        std::fs::remove_file(path).unwrap();
    }
}
