//! HTTP/1.1: the parser, the connection state machine, and the framing of
//! replies.

pub(crate) mod chunked;
pub(crate) mod conn;
pub(crate) mod encode;
pub mod parse;
