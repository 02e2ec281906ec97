//! oserver-core: an embeddable, event-driven HTTP/1.1 static file server.
#![deny(missing_docs)]

pub mod autoindex;
pub mod conditional;
pub mod encoding;
pub mod fs;
pub mod mime;
pub mod parse;
pub mod path;
pub mod range;
mod server;

pub use server::{bind_listener, AccessLog, Error, Server, ServerBuilder, ShutdownHandle, Stats};
