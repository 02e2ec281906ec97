//! Protocols: turning a transport's bytes into requests for the responder
//! and framing its replies: HTTP/1.1 (`http1`) and HTTP/2 (`http2`), each a
//! [`Session`] variant. Every connection starts as HTTP/1; one whose first
//! bytes are the HTTP/2 preface, or whose TLS handshake chose `h2`, is
//! upgraded in place (the event loop only sees [`Step::Upgrade`]).
//!
//! The event loop sees a connection only through [`Session`]: readiness
//! and time in (`ready`, `drive`), and out what it wants next (wait, more
//! turns, close; write interest; the next deadline). It knows nothing of
//! HTTP.
//!
//! Inside, imports run one way: `session` (what the loop sees) uses the
//! protocols (`http1`, `http2`), which use `exchange` (what every protocol's
//! connections share: the responder, the reply buffers, the clock, the
//! access log).

pub(crate) mod access_log;
pub(crate) mod exchange;
pub(crate) mod http1;
pub(crate) mod http2;
mod session;
#[cfg(test)]
pub(crate) mod test_support;

pub(crate) use exchange::Step;
pub(crate) use session::{Ctx, Origin, Session};
