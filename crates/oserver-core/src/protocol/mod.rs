//! Protocols: turning a transport's bytes into requests for the responder
//! and framing its replies. HTTP/1.1 (`http1`) now; HTTP/2 will sit beside
//! it as another [`Session`] variant.
//!
//! The event loop sees a connection only through [`Session`]: readiness
//! and time in (`ready`, `drive`), and out what it wants next (wait, more
//! turns, close; write interest; the next deadline). It knows nothing of
//! HTTP.

pub(crate) mod access_log;
pub(crate) mod http1;

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use crate::http::clock::Clock;
use crate::respond::{Reply, Request, Responder, Site};
use crate::settings::Settings;
use crate::transport::Plain;
use access_log::{Entry, RequestLine, Writer};

/// What the event loop does with a connection after driving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Wait for the next event (or the deadline).
    Wait,
    /// It used its share of this turn and can continue: come back after the
    /// other ready connections.
    Yield,
    /// Done: drop it (closing the socket).
    Close,
}

/// How a connection came to this loop.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Origin {
    /// Accepted here.
    Accepted,
    /// Handed over by another loop, idle, after this many responses.
    HandedOver { responses: u32 },
}

/// One connection, whatever its protocol.
pub(crate) enum Session {
    Http1(http1::conn::Conn),
}

impl Session {
    pub(crate) fn new(io: Plain, peer: SocketAddr, origin: Origin, now: Instant, s: &Settings) -> Session {
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
        }
    }

    /// Run as far as it goes without blocking. An error ends this
    /// connection only (the caller closes it).
    pub(crate) fn drive(&mut self, cx: &mut Ctx, now: Instant) -> io::Result<Step> {
        match self {
            Session::Http1(c) => c.drive(&mut cx.h1, &mut cx.exchange, cx.draining, now),
        }
    }

    /// When this connection times out, unless something happens first.
    pub(crate) fn deadline(&self) -> Instant {
        match self {
            Session::Http1(c) => c.deadline(),
        }
    }

    /// It waits for the socket to take more bytes (after `drive` said Wait).
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Session::Http1(c) => c.wants_write(),
        }
    }

    /// Idle between requests with nothing buffered: may move to another
    /// loop. Its response count, if so.
    pub(crate) fn idle(&self) -> Option<u32> {
        match self {
            Session::Http1(c) => c.idle(),
        }
    }

    /// A graceful stop began: true to close it now.
    pub(crate) fn drain(&mut self, now: Instant, grace: Duration) -> bool {
        match self {
            Session::Http1(c) => c.drain(now, grace),
        }
    }

    pub(crate) fn socket(&mut self) -> &mut TcpStream {
        match self {
            Session::Http1(c) => c.socket(),
        }
    }

    pub(crate) fn fd(&self) -> RawFd {
        match self {
            Session::Http1(c) => c.fd(),
        }
    }

    pub(crate) fn peer(&self) -> SocketAddr {
        match self {
            Session::Http1(c) => c.peer(),
        }
    }
}

/// What one loop's connections share besides the protocol buffers: the
/// responder, the reply and output buffers reused for every response, the
/// clock and the access log.
pub(crate) struct Exchange {
    responder: Responder,
    pub(crate) reply: Reply,
    /// Head (and in-memory body) bytes of the response being framed.
    pub(crate) out: Vec<u8>,
    pub(crate) clock: Clock,
    log: Option<Writer>,
    /// Responses started (for [`Stats`](crate::Stats)).
    pub(crate) requests: u64,
}

impl Exchange {
    pub(crate) fn settings(&self) -> &Settings {
        self.responder.settings()
    }

    /// Ask the responder for `req`'s reply, into `self.reply`.
    pub(crate) fn respond(&mut self, req: &Request<'_>, now: Instant) {
        self.responder.respond(req, now, &mut self.reply);
    }

    /// Count a response and write its access-log line.
    pub(crate) fn log(
        &mut self,
        peer: SocketAddr,
        request: RequestLine<'_>,
        status: u16,
        body_bytes: u64,
        referer: Option<&[u8]>,
        user_agent: Option<&[u8]>,
    ) {
        self.requests += 1;
        if let Some(log) = self.log.as_mut() {
            log.log(&Entry { peer, time: &self.clock.log, request, status, body_bytes, referer, user_agent });
        }
    }
}

/// Everything one event loop's protocols share.
pub(crate) struct Ctx {
    h1: http1::Buffers,
    exchange: Exchange,
    /// A graceful stop is under way: no connection is kept alive.
    draining: bool,
}

impl Ctx {
    /// # Errors
    ///
    /// The access log cannot be opened.
    pub(crate) fn new(site: Arc<Site>) -> io::Result<Ctx> {
        let log = match &site.settings.access_log {
            Some(t) => Some(Writer::open(t.clone())?),
            None => None,
        };
        Ok(Ctx {
            h1: http1::Buffers::new(),
            exchange: Exchange {
                responder: Responder::new(site),
                reply: Reply::default(),
                out: Vec::with_capacity(4096),
                clock: Clock::new(),
                log,
                requests: 0,
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

    pub(crate) fn begin_drain(&mut self) {
        self.draining = true;
    }

    /// Responses started so far.
    pub(crate) fn requests(&self) -> u64 {
        self.exchange.requests
    }
}
