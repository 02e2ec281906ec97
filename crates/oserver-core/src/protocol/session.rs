//! The one interface the event loop has to a connection, whatever its
//! protocol, and what a loop's protocols share.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::access_log::Writer;
use super::exchange::{Exchange, Step};
use super::{http1, http2};
use crate::http::clock::Clock;
use crate::respond::{Reply, Responder, Site};
use crate::settings::Settings;
use crate::transport::Transport;
use crate::wake::Mailbox;

/// How a connection came to this loop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// Accepted here.
    Accepted,
    /// Handed over by another loop, idle, after this many responses.
    HandedOver { responses: u32 },
}

/// One connection, whatever its protocol.
// The HTTP/1 variant is most connections, so it is kept inline (boxing it
// would cost every connection an allocation); `a_session_stays_small`
// bounds its size instead.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Session {
    Http1(http1::conn::Conn),
    /// Boxed: an HTTP/2 connection holds its windows, its HPACK table and
    /// its streams, which a plain HTTP/1 slot should not pay for.
    Http2(Box<http2::conn::Conn>),
}

impl Session {
    pub(crate) fn new(
        io: Transport,
        peer: SocketAddr,
        origin: Origin,
        now: Instant,
        s: &Settings,
    ) -> Session {
        use http1::conn::Conn;
        Session::Http1(match origin {
            Origin::Accepted => Conn::new(io, peer, now, s),
            Origin::HandedOver { responses } => Conn::handed_over(io, peer, now, s, responses),
        })
    }

    /// An event arrived: the socket is readable, or the peer hung up.
    pub(crate) fn ready(&mut self, readable: bool, hup: bool) {
        match self {
            Session::Http1(c) => c.ready(readable, hup),
            Session::Http2(c) => c.ready(readable, hup),
        }
    }

    /// Run as far as it goes without blocking. An error ends this
    /// connection only (the caller closes it).
    pub(crate) fn drive(&mut self, cx: &mut Ctx, now: Instant) -> io::Result<Step> {
        match self {
            Session::Http1(c) => c.drive(&mut cx.h1, &mut cx.exchange, cx.draining, now),
            // HTTP/2 reads into the same loop buffer HTTP/1 does.
            Session::Http2(c) => c.drive(&mut cx.h1.inbuf, &mut cx.h2, &mut cx.exchange, cx.draining, now),
        }
    }

    /// After [`Step::Upgrade`]: the session in its new protocol (an HTTP/1
    /// connection whose client speaks HTTP/2 becomes an HTTP/2 one).
    pub(crate) fn upgrade(self, now: Instant, s: &Settings) -> Session {
        match self {
            Session::Http1(c) => {
                let (io, peer, start) = c.into_http2();
                Session::Http2(Box::new(http2::conn::Conn::new(io, peer, &start, now, s)))
            }
            other => other,
        }
    }

    /// When this connection times out, unless something happens first.
    pub(crate) fn deadline(&self) -> Instant {
        match self {
            Session::Http1(c) => c.deadline(),
            Session::Http2(c) => c.deadline(),
        }
    }

    /// It waits for the socket to take more bytes (after `drive` said Wait).
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Session::Http1(c) => c.wants_write(),
            Session::Http2(c) => c.wants_write(),
        }
    }

    /// What the loop's batch of sends could not send of this connection's
    /// bytes (see `transport::Outbox`): they go first when the socket is
    /// writable, which [`wants_write`](Session::wants_write) now says.
    pub(crate) fn unsent(&mut self, rest: Vec<u8>) {
        self.transport_mut().unsent(rest);
    }

    /// Its transport, for the loop's batches of reads and sends.
    pub(crate) fn transport_mut(&mut self) -> &mut Transport {
        match self {
            Session::Http1(c) => c.transport_mut(),
            Session::Http2(c) => c.transport_mut(),
        }
    }

    /// Idle between requests with nothing buffered: may move to another
    /// loop. Its response count, if so.
    pub(crate) fn idle(&self) -> Option<u32> {
        match self {
            Session::Http1(c) => c.idle(),
            // An HTTP/2 connection's HPACK table and streams live here.
            Session::Http2(_) => None,
        }
    }

    /// The transport of a connection that was [`idle`](Session::idle), to
    /// move to another loop; None for one that cannot move.
    pub(crate) fn into_transport(self) -> Option<Transport> {
        match self {
            Session::Http1(c) => Some(c.into_transport()),
            Session::Http2(_) => None,
        }
    }

    /// A graceful stop began: true to close it now.
    pub(crate) fn drain(&mut self, now: Instant, grace: Duration) -> bool {
        match self {
            Session::Http1(c) => c.drain(now, grace),
            Session::Http2(c) => c.drain(now),
        }
    }

    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        match self {
            Session::Http1(c) => c.socket(),
            Session::Http2(c) => c.socket(),
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Session::Http1(c) => c.fd(),
            Session::Http2(c) => c.fd(),
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        match self {
            Session::Http1(c) => c.peer(),
            Session::Http2(c) => c.peer(),
        }
    }
}

/// Everything one event loop's protocols share.
pub(crate) struct Ctx {
    pub(crate) h1: http1::conn::Buffers,
    pub(crate) h2: http2::conn::Buffers,
    pub(crate) exchange: Exchange,
    /// A graceful stop is under way: no connection is kept alive.
    pub(crate) draining: bool,
}

impl Ctx {
    /// # Errors
    ///
    /// The access log cannot be opened.
    pub(crate) fn new(site: Arc<Site>, mailbox: Arc<Mailbox>) -> io::Result<Ctx> {
        let log = match &site.settings.access_log {
            Some(t) => Some(Writer::open(t.clone())?),
            None => None,
        };
        Ok(Ctx {
            h1: http1::conn::Buffers::new(),
            h2: http2::conn::Buffers::default(),
            exchange: Exchange {
                responder: Responder::new(site),
                reply: Reply::default(),
                out: Vec::with_capacity(4096),
                clock: Clock::new(),
                log,
                requests: 0,
                mailbox,
                key: 0,
            },
            draining: false,
        })
    }

    pub(crate) fn settings(&self) -> &Settings {
        self.exchange.settings()
    }

    /// After each poll: keep `Date` exact to the second (cheap unless the
    /// second changed).
    pub(crate) fn refresh_clock(&mut self) {
        self.exchange.clock.refresh();
    }

    /// Once a second: write out the buffered access-log lines.
    pub(crate) fn tick(&mut self) {
        if let Some(l) = self.exchange.log.as_mut() {
            l.flush();
        }
    }

    pub(crate) fn reopen_logs(&mut self) {
        if let Some(l) = self.exchange.log.as_mut() {
            l.reopen();
        }
    }

    /// The connection about to be driven: its key is what another thread
    /// names to wake it (see `crate::wake`).
    pub(crate) fn driving(&mut self, key: usize) {
        self.exchange.key = key;
    }

    /// The connections other threads have news for, since the last call.
    pub(crate) fn woken(&self, into: &mut Vec<usize>) {
        self.exchange.mailbox.take(into);
    }

    pub(crate) fn begin_drain(&mut self) {
        self.draining = true;
    }

    /// Responses started so far.
    pub(crate) fn requests(&self) -> u64 {
        self.exchange.requests
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every open connection costs a slab slot of the loop's; an idle one
    /// costs nothing more (its buffers are the loop's). The session is most
    /// of the slot, so it stays small: an HTTP/2 connection is boxed, and
    /// states and bodies that only some connections need (a late reply, a
    /// stream, a partial head) are boxed too.
    #[test]
    fn a_session_stays_small() {
        let size = std::mem::size_of::<Session>();
        eprintln!("a session: {size} bytes");
        // 184 before late replies and streams. The transport's part in the
        // loop's batch of sends (`transport/outbox.rs`: its handle, its mark,
        // what a full socket handed back) added 24 bytes to a plain
        // connection: 208 in a debug build, 192 in a release one, where the
        // layout puts 16 of them in what was padding. Its part in the loop's
        // reads ahead (`transport/intake.rs`: its handle, what it kept of a
        // read, and its slot, in padding) added 16 more: 224 and 208.
        assert!(size <= 224, "a session grew to {size} bytes (224 with the batches of sends and reads)");
    }
}
