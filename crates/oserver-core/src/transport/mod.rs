//! Transports: moving bytes between a socket and a protocol. Plain TCP
//! (`plain`) and TLS (`tls`: rustls, or `records` for a connection that
//! moved here with its keys); a protocol never makes a system call on its
//! socket itself: it reads, writes and sends file ranges through
//! [`Transport`].

mod intake;
mod outbox;
mod plain;
mod records;
mod sys;
pub(crate) mod tickets;
mod tls;

use std::io;
use std::os::fd::RawFd;
use std::sync::Arc;

use mio::net::TcpStream;

pub(crate) use intake::{Intake, SLOTS as READ_BATCH};
pub(crate) use outbox::{Outbox, Unsent};
#[cfg(test)]
pub(crate) use plain::wait_readable;
pub(crate) use plain::{Plain, Recv};
pub(crate) use records::{wipe, Keys};
pub(crate) use sys::nonblocking;
pub(crate) use tls::Tls;

/// A connection on its way to another event loop: its socket and, for TLS,
/// the keys its records are protected with.
#[derive(Debug)]
pub(crate) struct Moving {
    pub sock: TcpStream,
    pub keys: Option<Keys>,
}

/// A connection's byte stream, plain or encrypted.
#[derive(Debug)]
pub(crate) enum Transport {
    Plain(Plain),
    Tls(Tls),
}

impl Transport {
    /// A plain connection, or a TLS one when `tls` is given.
    ///
    /// # Errors
    ///
    /// rustls cannot make a session from the configuration.
    pub(crate) fn new(
        sock: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> Result<Transport, rustls::Error> {
        let raw = Plain::new(sock);
        Ok(match tls {
            None => Transport::Plain(raw),
            Some(config) => Transport::Tls(Tls::new(raw, config)?),
        })
    }

    /// A connection that arrived from another loop, idle: TLS if keys came
    /// with it. Its readiness is unknown until the loop registers it.
    pub(crate) fn arrived(m: Moving) -> Transport {
        let raw = Plain::new(m.sock);
        let mut t = match m.keys {
            None => Transport::Plain(raw),
            Some(keys) => Transport::Tls(Tls::resume(raw, keys)),
        };
        t.wait_for_event();
        t
    }

    /// On a loop that gathers its sends (see [`Outbox`]): a plain
    /// connection's writes may wait for the end of the turn. A TLS one
    /// writes its records itself.
    pub(crate) fn gather(&mut self, batch: &Outbox) {
        if let Transport::Plain(p) = self {
            p.gather(batch);
        }
    }

    /// On a loop that reads ahead (see [`Intake`]): a plain connection's
    /// reads may be made for it in the loop's batch. A TLS one reads for
    /// itself.
    pub(crate) fn read_from(&mut self, intake: &Intake) {
        if let Transport::Plain(p) = self {
            p.read_from(intake);
        }
    }

    /// Queue a read in the loop's batch of reads, if this transport reads
    /// ahead and may have bytes (see [`Plain::read_ahead`]).
    pub(crate) fn read_ahead(&mut self) {
        if let Transport::Plain(p) = self {
            p.read_ahead();
        }
    }

    /// The loop's batch of reads ends: keep what the protocol did not take
    /// (see [`Plain::keep`]).
    pub(crate) fn keep(&mut self) {
        if let Transport::Plain(p) = self {
            p.keep();
        }
    }

    /// What the loop's batch could not send of this connection's bytes:
    /// they go first when the socket is writable.
    pub(crate) fn unsent(&mut self, rest: Vec<u8>) {
        self.raw_mut().unsent(rest);
    }

    /// Whether the stream could move to another loop now: for plain TCP,
    /// with no bytes waiting for the socket; for TLS, see [`Tls::movable`].
    pub(crate) fn movable(&self) -> bool {
        match self {
            Transport::Plain(p) => p.movable(),
            Transport::Tls(t) => t.movable(),
        }
    }

    /// The socket and what else the stream needs elsewhere; None when it was
    /// not [`movable`](Transport::movable) (the connection is then lost).
    pub(crate) fn into_moving(self) -> Option<Moving> {
        match self {
            Transport::Plain(p) => Some(Moving { sock: p.into_socket(), keys: None }),
            Transport::Tls(t) => {
                let (raw, keys) = t.into_keys()?;
                Some(Moving { sock: raw.into_socket(), keys: Some(keys) })
            }
        }
    }

    fn raw(&self) -> &Plain {
        match self {
            Transport::Plain(p) => p,
            Transport::Tls(t) => t.raw(),
        }
    }

    fn raw_mut(&mut self) -> &mut Plain {
        match self {
            Transport::Plain(p) => p,
            Transport::Tls(t) => t.raw_mut(),
        }
    }

    /// Note an event: readable, or the peer's end.
    pub(crate) fn ready(&mut self, readable: bool, hup: bool) {
        self.raw_mut().ready(readable, hup);
    }

    /// A recv may return something now: the socket may have bytes (no read
    /// has drained it since the last event), or, for TLS, the record layer
    /// holds plaintext or whole records it read earlier. The socket alone
    /// would not do: a read that drained it can bring several records, and
    /// no event comes for the ones still held.
    pub(crate) fn readable(&self) -> bool {
        match self {
            Transport::Plain(p) => p.readable(),
            Transport::Tls(t) => t.raw().readable() || t.buffered(),
        }
    }

    /// The peer has shut down its side.
    pub(crate) fn hup(&self) -> bool {
        self.raw().hup()
    }

    /// Forget readiness (a connection arriving from another loop).
    pub(crate) fn wait_for_event(&mut self) {
        self.raw_mut().wait_for_event();
    }

    /// Bytes of the stream into `buf`.
    pub(crate) fn recv(&mut self, buf: &mut [u8]) -> io::Result<Recv> {
        match self {
            Transport::Plain(p) => p.recv(buf),
            Transport::Tls(t) => t.recv(buf),
        }
    }

    /// Send what the transport takes of `buf` now; `more`: a file follows.
    pub(crate) fn send(&mut self, buf: &[u8], more: bool) -> io::Result<usize> {
        match self {
            Transport::Plain(p) => p.send(buf, more),
            Transport::Tls(t) => t.send(buf, more),
        }
    }

    /// Bytes the socket would take now (see [`sys::send_room`]), less
    /// what TLS may still hold for it (at most one file step of records):
    /// for a protocol choosing how much to prepare for one write, so that
    /// what a client does not read waits in the kernel's buffer rather than
    /// the connection's.
    pub(crate) fn send_room(&self) -> io::Result<usize> {
        let room = sys::send_room(self.fd())?;
        Ok(match self {
            Transport::Tls(t) if t.wants_write() => room.saturating_sub(tls::FILE_STEP),
            _ => room,
        })
    }

    /// Send up to `max` bytes of a file range, advancing `offset`; `scratch`
    /// is where TLS reads the file to encrypt it (plain TCP uses sendfile).
    pub(crate) fn send_file(
        &mut self,
        file: RawFd,
        offset: &mut u64,
        end: u64,
        max: u64,
        scratch: &mut Vec<u8>,
    ) -> io::Result<u64> {
        match self {
            Transport::Plain(p) => p.send_file(file, offset, end, max),
            Transport::Tls(t) => t.send_file(file, offset, end, max, scratch),
        }
    }

    /// Write out what the transport itself still holds. True when nothing is
    /// left.
    pub(crate) fn flush(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(p) => p.flush(),
            Transport::Tls(t) => t.flush(),
        }
    }

    /// As [`flush`](Transport::flush), and bytes gathered for the loop's
    /// batch go now too (see [`Outbox`]): before a close, when every byte
    /// must be in the kernel. True when nothing is left.
    pub(crate) fn flush_all(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(p) => p.flush_all(),
            Transport::Tls(t) => t.flush(),
        }
    }

    /// The transport holds bytes for the socket (TLS records, or what the
    /// loop's batch could not send).
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Transport::Plain(p) => p.wants_write(),
            Transport::Tls(t) => t.wants_write(),
        }
    }

    /// Before a close: TLS sends close_notify, so the client can tell the
    /// end of the stream from a cut one (best effort: a full socket loses
    /// it); plain TCP has nothing to say.
    pub(crate) fn finish(&mut self) {
        if let Transport::Tls(t) = self {
            t.close_notify();
        }
    }

    /// End our side of the stream.
    pub(crate) fn shutdown_write(&mut self) {
        match self {
            Transport::Plain(p) => p.shutdown_write(),
            Transport::Tls(t) => t.shutdown_write(),
        }
    }

    /// The TLS handshake chose HTTP/2 by ALPN.
    pub(crate) fn alpn_h2(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.alpn() == Some(b"h2"),
        }
    }

    /// Whether the stream is encrypted.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    pub(crate) fn fd(&self) -> RawFd {
        self.raw().fd()
    }

    /// The socket, for the event loop to register.
    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        self.raw_mut().socket()
    }
}
