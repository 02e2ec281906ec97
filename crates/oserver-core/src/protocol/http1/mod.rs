//! HTTP/1.1: the parser, the connection state machine, and the framing of
//! replies.

pub(crate) mod conn;
pub(crate) mod encode;
pub mod parse;

use conn::READ_CHUNK;
use parse::Parser;

/// What one event loop's HTTP/1 connections share: the read buffer every
/// read goes into first, and the parser that runs over it. A connection
/// keeps bytes of its own only while a head is incomplete or requests are
/// pipelined (`conn::Pending`).
pub(crate) struct Buffers {
    pub inbuf: Vec<u8>,
    pub parser: Parser,
}

impl Buffers {
    pub(crate) fn new() -> Buffers {
        Buffers { inbuf: vec![0; READ_CHUNK], parser: Parser::new() }
    }
}
