//! Transports: moving bytes between a socket and a protocol. Plain TCP now
//! (`plain`); TLS will sit beside it. A protocol never makes a system call on
//! its socket itself: it reads, writes and sends file ranges through here.

mod plain;
mod sys;

pub(crate) use plain::{Plain, Recv};
pub(crate) use sys::nonblocking;
