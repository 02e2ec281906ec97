//! Plain TCP: recv, send (with MSG_MORE when a file follows) and sendfile,
//! edge-triggered, with the socket's readiness kept beside it.

use std::io;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, RawFd};

use mio::net::TcpStream;

use super::sys::nonblocking;

/// A TCP connection and what the event loop has told about its readiness.
#[derive(Debug)]
pub(crate) struct Plain {
    sock: TcpStream,
    /// Readiness seen and not yet drained (edge-triggered: no new event
    /// comes until a read returns less than asked or would block).
    readable: bool,
    /// The peer shut down its side (or the socket has an error).
    hup: bool,
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
        Plain { sock, readable: true, hup: false }
    }

    /// Note an event: readable, or the peer's end (which is readable too).
    pub(crate) fn ready(&mut self, readable: bool, hup: bool) {
        self.readable |= readable || hup;
        self.hup |= hup;
    }

    /// Bytes may be waiting (no read has drained the socket since the last
    /// event).
    pub(crate) fn readable(&self) -> bool {
        self.readable
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
        if !self.readable {
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
    pub(crate) fn send(&mut self, buf: &[u8], more: bool) -> io::Result<usize> {
        let fd = self.fd();
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

    /// sendfile(2) up to `max` bytes of the file `file` from `*offset` to
    /// `end`, advancing `offset`. Returns bytes sent; fewer than asked means
    /// the socket would block.
    ///
    /// # Errors
    ///
    /// The socket's, or `UnexpectedEof` when the file ends before `end` (it
    /// shrank while being sent: the promised length cannot be kept).
    pub(crate) fn send_file(&mut self, file: RawFd, offset: &mut u64, end: u64, max: u64) -> io::Result<u64> {
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

    /// Nothing is buffered here: every byte `send` accepted is in the kernel.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        Ok(true)
    }

    /// Shut down our sending side: the peer reads the end of the response,
    /// then end of stream.
    pub(crate) fn shutdown_write(&mut self) {
        let _ = self.sock.shutdown(Shutdown::Write);
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The socket, for the event loop to register.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        &mut self.sock
    }

    /// The socket itself, for a connection moving to another loop.
    pub(crate) fn into_socket(self) -> TcpStream {
        self.sock
    }
}

/// Raw reads (for `recv`, and for a layer above such as TLS): EINTR
/// retried; WouldBlock spends the readiness and is returned as the error it
/// is.
impl io::Read for Plain {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
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
