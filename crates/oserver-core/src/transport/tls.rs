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
//! A connection moves to another event loop (see `runtime/handoff.rs`) as
//! its traffic keys: once the handshake is done and nothing is buffered
//! either way, [`Tls::into_keys`] takes them from rustls, and the loop that
//! receives them serves the connection with [`Records`] (`records.rs`), our
//! own record layer from then on. Kernel TLS would take over at the same
//! point, with the same keys given to `setsockopt(SOL_TLS)`; `send_file`
//! would then be plain sendfile again. This kernel has no TLS ULP, so that
//! path is not built.

use std::io::{self, Read, Write};
use std::os::fd::RawFd;
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};

use super::plain::{Plain, Recv};
use super::records::{Keys, Records};
use super::sys::pread;

/// Plaintext read and encrypted per step when sending a file: 64 KiB, four
/// full records (16 KiB is the most one carries), written out with one
/// writev instead of one write per record (3% faster on a 1 MB download
/// here); more would only grow what a connection holds while the socket is
/// full.
pub(crate) const FILE_STEP: usize = 64 * 1024;

/// A TLS connection: the TCP socket and its record layer.
#[derive(Debug)]
pub(crate) struct Tls {
    raw: Plain,
    /// Boxed: a session is about a kilobyte, and a plain connection's slot
    /// should not pay for it.
    session: Box<Session>,
}

/// Who protects the records.
#[derive(Debug)]
enum Session {
    /// rustls, from the handshake on.
    Rustls(Handshaken),
    /// Our record layer, for a connection that arrived from another loop
    /// with its keys.
    Records(Records),
}

/// A rustls session, and what deciding whether it can move needs.
#[derive(Debug)]
struct Handshaken {
    conn: ServerConnection,
    /// Where the ciphertext handed to rustls stands against record
    /// boundaries: keys can only move between whole records.
    edge: Edge,
    /// The last read left no plaintext in rustls.
    drained: bool,
    /// rustls has processed records since it last sealed ours. A client's
    /// TLS 1.3 KeyUpdate asking for ours makes rustls switch to its next key
    /// at once but hold its KeyUpdate back, sealed with the old key, until
    /// it next seals a record (`wants_write` does not show it): keys taken
    /// out then would lose it, and the client could read nothing more. So
    /// a connection moves only after it has sealed something since it last
    /// read (an idle keep-alive connection has: its response).
    read_since_sealed: bool,
    /// The configuration allows taking the keys out
    /// (`enable_secret_extraction`).
    extractable: bool,
}

/// Tracks record boundaries in a stream of TLS records by their headers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Edge {
    /// Header bytes of the next record seen so far (0 to 4).
    seen: usize,
    /// The length bytes of that header.
    len: [u8; 2],
    /// Body bytes of the current record still to come.
    left: usize,
}

impl Edge {
    fn feed(&mut self, mut b: &[u8]) {
        while let Some((&first, rest)) = b.split_first() {
            if self.left > 0 {
                let n = self.left.min(b.len());
                self.left -= n;
                b = &b[n..];
                continue;
            }
            if self.seen >= 3 {
                self.len[self.seen - 3] = first;
            }
            self.seen += 1;
            if self.seen == 5 {
                self.seen = 0;
                self.left = usize::from(u16::from_be_bytes(self.len));
            }
            b = rest;
        }
    }

    fn at_boundary(&self) -> bool {
        self.seen == 0 && self.left == 0
    }
}

/// The socket as rustls reads it, with the boundaries noted on the way.
struct Noting<'a> {
    raw: &'a mut Plain,
    edge: &'a mut Edge,
}

impl Read for Noting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.raw.read(buf)?;
        self.edge.feed(&buf[..n]);
        Ok(n)
    }
}

impl Tls {
    /// A fresh connection; the handshake starts with the client's first bytes.
    ///
    /// # Errors
    ///
    /// The configuration cannot make a session (rustls's own checks).
    pub(crate) fn new(raw: Plain, config: &Arc<ServerConfig>) -> Result<Tls, rustls::Error> {
        let conn = ServerConnection::new(Arc::clone(config))?;
        let h = Handshaken {
            conn,
            edge: Edge::default(),
            drained: false,
            read_since_sealed: false,
            extractable: config.enable_secret_extraction,
        };
        Ok(Tls { raw, session: Box::new(Session::Rustls(h)) })
    }

    /// A connection that arrived from another loop with its keys, between
    /// requests.
    pub(crate) fn resume(raw: Plain, keys: Keys) -> Tls {
        Tls { raw, session: Box::new(Session::Records(Records::new(keys))) }
    }

    /// Whether the connection could move now: its handshake done, nothing
    /// received and not yet read, nothing sealed and not yet written, and
    /// its keys allowed out.
    pub(crate) fn movable(&self) -> bool {
        match &*self.session {
            Session::Rustls(h) => {
                h.extractable
                    && h.drained
                    && !h.read_since_sealed
                    && h.edge.at_boundary()
                    && !h.conn.is_handshaking()
                    && !h.conn.wants_write()
            }
            Session::Records(r) => r.keys().is_some(),
        }
    }

    /// The socket and the keys, for the loop the connection moves to; None
    /// (and the connection lost) if it was not [`movable`](Tls::movable).
    pub(crate) fn into_keys(self) -> Option<(Plain, Keys)> {
        if !self.movable() {
            return None;
        }
        let keys = match *self.session {
            Session::Rustls(h) => {
                let version = h.conn.protocol_version()?;
                let secrets = h.conn.dangerous_extract_secrets().ok()?;
                Keys::from_rustls(version, &secrets)?
            }
            Session::Records(r) => r.keys()?.clone(),
        };
        Some((self.raw, keys))
    }

    /// Plaintext, or records to open, wait in the record layer: a recv
    /// returns them without the socket. For rustls, after a read that
    /// filled the caller's buffer (one that did not emptied it: rustls
    /// opens every whole record it read before handing out plaintext).
    pub(crate) fn buffered(&self) -> bool {
        match &*self.session {
            Session::Rustls(h) => !h.drained,
            Session::Records(r) => r.buffered(),
        }
    }

    pub(crate) fn raw(&self) -> &Plain {
        &self.raw
    }

    pub(crate) fn raw_mut(&mut self) -> &mut Plain {
        &mut self.raw
    }

    /// Plaintext into `buf`: what has been decrypted, else what the socket
    /// brings (handshake records are processed and answered on the way).
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match &mut *self.session {
            Session::Rustls(h) => {
                let got = h.recv(&mut self.raw, buf);
                // rustls's reader fills `buf` while it has plaintext, so a
                // short read emptied it.
                h.drained = match got {
                    Ok(Recv::Blocked) => true,
                    Ok(Recv::Data(n)) => n < buf.len(),
                    _ => false,
                };
                got
            }
            Session::Records(r) => r.recv(&mut self.raw, buf),
        }
    }

    /// Seal what the transport takes of `buf` and, unless `more` says a
    /// file follows, write its records out now. At most 64 KiB of records
    /// wait unwritten: when that is full, records go out to make room, and
    /// if the socket is full too the bytes taken so far are returned, fewer
    /// than `buf.len()`, as plain TCP's `send` does; the caller keeps the
    /// rest for the next writable event.
    pub(crate) fn send(&mut self, buf: &[u8], more: bool) -> io::Result<usize> {
        match &mut *self.session {
            Session::Rustls(h) => h.send(&mut self.raw, buf, more),
            Session::Records(r) => r.send(&mut self.raw, buf, more),
        }
    }

    /// Encrypt and send up to `max` bytes of `file` from `*offset` to `end`,
    /// FILE_STEP at a time, while the socket takes them. Returns the
    /// plaintext bytes consumed.
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
        match &mut *self.session {
            Session::Rustls(h) => h.send_file(&mut self.raw, file, offset, end, max, scratch),
            Session::Records(r) => r.send_file(&mut self.raw, file, offset, end, max),
        }
    }

    /// Write out the records held. True when none is left.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        match &mut *self.session {
            Session::Rustls(h) => h.flush(&mut self.raw),
            Session::Records(r) => r.flush(&mut self.raw),
        }
    }

    /// The protocol ALPN chose, once the handshake got that far (a
    /// connection that moved had finished with HTTP/1.1's).
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match &*self.session {
            Session::Rustls(h) => h.conn.alpn_protocol(),
            Session::Records(_) => None,
        }
    }

    /// Records are waiting for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        match &*self.session {
            Session::Rustls(h) => h.conn.wants_write(),
            Session::Records(r) => r.wants_write(),
        }
    }

    /// Send close_notify (written if the socket takes it).
    pub(crate) fn close_notify(&mut self) {
        match &mut *self.session {
            Session::Rustls(h) => {
                h.conn.send_close_notify();
                let _ = h.flush(&mut self.raw);
            }
            Session::Records(r) => r.close_notify(&mut self.raw),
        }
    }

    /// close_notify, then shut down our side.
    pub(crate) fn shutdown_write(&mut self) {
        self.close_notify();
        self.raw.shutdown_write();
    }
}

impl Handshaken {
    fn recv(&mut self, raw: &mut Plain, buf: &mut [u8]) -> io::Result<Recv> {
        loop {
            match self.conn.reader().read(buf) {
                // The peer's close_notify.
                Ok(0) => return Ok(Recv::Eof),
                Ok(n) => return Ok(Recv::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The peer closed the TCP connection without close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(Recv::Eof),
                Err(e) => return Err(e),
            }
            if !raw.readable() {
                return Ok(Recv::Blocked);
            }
            match self.conn.read_tls(&mut Noting { raw: &mut *raw, edge: &mut self.edge }) {
                Ok(0) => return Ok(Recv::Eof),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Recv::Blocked),
                Err(e) => return Err(e),
            }
            // (A KeyUpdate can only come after the handshake.)
            self.read_since_sealed |= !self.conn.is_handshaking();
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the peer why (the alert rustls queued), then give up.
                let _ = self.flush(raw);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            // Handshake messages to answer, or a ticket to send.
            self.flush(raw)?;
        }
    }

    fn send(&mut self, raw: &mut Plain, buf: &[u8], more: bool) -> io::Result<usize> {
        let mut taken = 0;
        while taken < buf.len() {
            let n = self.conn.writer().write(&buf[taken..])?;
            // Sealing puts a held-back KeyUpdate out first.
            self.read_since_sealed &= n == 0;
            taken += n;
            if taken < buf.len() && !self.flush(raw)? {
                return Ok(taken);
            }
        }
        if !more {
            self.flush(raw)?;
        }
        Ok(taken)
    }

    fn send_file(
        &mut self,
        raw: &mut Plain,
        file: RawFd,
        offset: &mut u64,
        end: u64,
        max: u64,
        scratch: &mut Vec<u8>,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        while self.flush(raw)? && *offset < end && total < max {
            let want = (end - *offset).min(max - total).min(FILE_STEP as u64) as usize;
            if scratch.len() < want {
                scratch.resize(want, 0);
            }
            let n = pread(file, &mut scratch[..want], *offset)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file truncated while sending"));
            }
            self.conn.writer().write_all(&scratch[..n])?;
            self.read_since_sealed = false;
            *offset += n as u64;
            total += n as u64;
        }
        Ok(total)
    }

    fn flush(&mut self, raw: &mut Plain) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(raw) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::Edge;

    #[test]
    fn record_boundaries_are_found_however_the_bytes_are_cut() {
        // Three records: bodies of 3, 0 and 300 bytes.
        let mut stream = vec![23, 3, 3, 0, 3, 1, 2, 3, 23, 3, 3, 0, 0, 23, 3, 3, 1, 44];
        stream.extend_from_slice(&[9; 300]);
        let boundaries = [0, 8, 13, stream.len()];
        for cut in 1..stream.len() {
            let mut e = Edge::default();
            e.feed(&stream[..cut]);
            assert_eq!(e.at_boundary(), boundaries.contains(&cut), "after {cut} bytes");
            e.feed(&stream[cut..]);
            assert!(e.at_boundary(), "after all, cut at {cut}");
        }
        let mut e = Edge::default();
        for b in &stream {
            e.feed(std::slice::from_ref(b));
        }
        assert!(e.at_boundary(), "a byte at a time");
    }
}
