//! TLS over TCP with rustls: the same moves as plain TCP (recv, send, send a
//! file range), with the record layer in between.
//!
//! Reads pull ciphertext from the socket into rustls only when no plaintext
//! is left, and push out whatever the handshake produced. Writes hand
//! plaintext to rustls and write its records out until the socket is full;
//! what the socket did not take waits in rustls and `flush` sends it on the
//! next writable event. A file range is read with pread, 64 KiB (four
//! records) at a time, into the loop's buffer and encrypted from there, and
//! no more is encrypted while the socket is full: a connection never holds
//! more than about 64 KiB of ciphertext besides what the kernel holds.
//!
//! Kernel TLS could later take over a session after the handshake (rustls
//! hands out the traffic secrets with `dangerous_extract_secrets`, and
//! `setsockopt(TCP_ULP, "tls")` installs them): `send_file` would then be
//! plain sendfile again. This kernel has no TLS ULP, so that path is not
//! built.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use super::plain::{Plain, Recv};

/// Plaintext read and encrypted per step when sending a file: 64 KiB, four
/// full records (16 KiB is the most one carries), written out with one
/// writev instead of one write per record (3% faster on a 1 MB download
/// here); more would only grow what a connection holds while the socket is
/// full.
pub(crate) const FILE_STEP: usize = 64 * 1024;

/// A TLS connection: the TCP socket and the rustls session on it.
#[derive(Debug)]
pub(crate) struct Tls {
    raw: Plain,
    /// Boxed: a session is about a kilobyte, and a plain connection's slot
    /// should not pay for it.
    session: Box<ServerConnection>,
}

impl Tls {
    /// A fresh connection; the handshake starts with the client's first bytes.
    ///
    /// # Errors
    ///
    /// The configuration cannot make a session (rustls's own checks).
    pub(crate) fn new(raw: Plain, config: &Arc<ServerConfig>) -> Result<Tls, rustls::Error> {
        Ok(Tls { raw, session: Box::new(ServerConnection::new(Arc::clone(config))?) })
    }

    pub(crate) fn raw(&self) -> &Plain {
        &self.raw
    }

    pub(crate) fn raw_mut(&mut self) -> &mut Plain {
        &mut self.raw
    }

    /// Plaintext into `buf`: what rustls has decrypted, else what the socket
    /// brings (handshake records are processed and answered on the way).
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        loop {
            match self.session.reader().read(buf) {
                // The peer's close_notify.
                Ok(0) => return Ok(Recv::Eof),
                Ok(n) => return Ok(Recv::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the TCP connection without close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Recv::Eof),
                Err(e) => return Err(e),
            }
            if !self.raw.readable() {
                return Ok(Recv::Blocked);
            }
            match self.session.read_tls(&mut self.raw) {
                Ok(0) => return Ok(Recv::Eof),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Recv::Blocked),
                Err(e) => return Err(e),
            }
            if let Err(e) = self.session.process_new_packets() {
                // Tell the peer why (the alert rustls queued), then give up.
                let _ = self.flush();
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages to answer, or a ticket to send.
            self.flush()?;
        }
    }

    /// Hand rustls what it takes of `buf` and, unless `more` says a file
    /// follows, write its records out now. rustls holds at most 64 KiB of
    /// records not yet written (its buffer limit): when that is full, its
    /// records go out to make room, and if the socket is full too the bytes
    /// taken so far are returned, fewer than `buf.len()`, as plain TCP's
    /// `send` does; the caller keeps the rest for the next writable event.
    pub(crate) fn send(&mut self, buf: &[u8], more: bool) -> io::Result<usize> {
        let mut taken = 0;
        while taken < buf.len() {
            taken += self.session.writer().write(&buf[taken..])?;
            if taken < buf.len() && !self.flush()? {
                return Ok(taken);
            }
        }
        if !more {
            self.flush()?;
        }
        Ok(taken)
    }

    /// Encrypt and send up to `max` bytes of `file` from `*offset` to `end`,
    /// FILE_STEP at a time through `scratch`, while the socket takes them.
    /// Returns the plaintext bytes consumed.
    ///
    /// # Errors
    ///
    /// The socket's or the file's, or `UnexpectedEof` when the file ends
    /// before `end`.
    pub(crate) fn send_file(
        &mut self,
        file: RawFd,
        offset: &mut u64,
        end: u64,
        max: u64,
        scratch: &mut Vec<u8>,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        while self.flush()? && *offset < end && total < max {
            let want = (end - *offset).min(max - total).min(FILE_STEP as u64) as usize;
            if scratch.len() < want {
                scratch.resize(want, 0);
            }
            let n = pread(file, &mut scratch[..want], *offset)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file truncated while sending"));
            }
            self.session.writer().write_all(&scratch[..n])?;
            *offset += n as u64;
            total += n as u64;
        }
        Ok(total)
    }

    /// Write out the records rustls holds. True when none is left.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        while self.session.wants_write() {
            match self.session.write_tls(&mut self.raw) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The protocol ALPN chose, once the handshake got that far.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        self.session.alpn_protocol()
    }

    /// Records are waiting for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// close_notify, then shut down our side.
    pub(crate) fn shutdown_write(&mut self) {
        self.session.send_close_notify();
        let _ = self.flush();
        self.raw.shutdown_write();
    }
}

/// pread(2), EINTR retried.
fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::pread64(fd, buf.as_mut_ptr().cast(), buf.len(), offset as libc::off64_t) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
