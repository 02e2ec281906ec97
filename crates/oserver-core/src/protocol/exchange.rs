//! What every protocol's connections share on one loop: the exchange of a
//! request for a reply (the responder, the reply and output buffers reused
//! for every response, the clock, the access log), and the [`Step`] a
//! connection asks of the loop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::access_log::{Entry, RequestLine, Writer};
use crate::http::clock::Clock;
use crate::respond::{Reply, Request, Responder};
use crate::settings::Settings;
use crate::wake::{Mailbox, Wakeup};

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
    /// It changes protocol: replace it with [`Session::upgrade`]'s
    /// result and drive that.
    ///
    /// [`Session::upgrade`]: super::Session::upgrade
    Upgrade,
}

/// What one loop's connections share besides the protocol buffers: the
/// responder, the reply and output buffers reused for every response, the
/// clock and the access log.
pub(crate) struct Exchange {
    pub(crate) responder: Responder,
    pub(crate) reply: Reply,
    /// Head (and in-memory body) bytes of the response being framed.
    pub(crate) out: Vec<u8>,
    pub(crate) clock: Clock,
    pub(crate) log: Option<Writer>,
    /// Responses started (for [`Stats`](crate::Stats)).
    pub(crate) requests: u64,
    /// Where other threads name the connections they have news for (a late
    /// reply, a streamed body's next piece).
    pub(crate) mailbox: Arc<Mailbox>,
    /// The key of the connection being driven, set by the loop.
    pub(crate) key: usize,
}

impl Exchange {
    pub(crate) fn settings(&self) -> &Settings {
        self.responder.settings()
    }

    /// How another thread wakes the connection being driven.
    pub(crate) fn wakeup(&self) -> Wakeup {
        Wakeup::new(Arc::clone(&self.mailbox), self.key)
    }

    /// Ask the responder for `req`'s reply, into `self.reply`.
    pub(crate) fn respond(&mut self, req: &Request<'_>, now: Instant) {
        self.responder.respond(req, now, &mut self.reply);
    }

    /// Whether responses are logged: the fields only the log uses (Referer,
    /// User-Agent) are looked up only then.
    pub(crate) fn logging(&self) -> bool {
        self.log.is_some()
    }

    /// Count a response and write its access-log line. Inlined: without
    /// a log it is one addition, not a call with seven arguments.
    #[inline]
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
