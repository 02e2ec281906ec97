//! HTTP/2 (RFC 9113): h2 by ALPN over TLS, h2c by prior knowledge on a
//! plain port. `frame` is the wire format, `hpack` the header compression,
//! `conn` the connection's state machine; the responder is HTTP/1's.

pub(crate) mod conn;
pub(crate) mod frame;
mod hpack;
