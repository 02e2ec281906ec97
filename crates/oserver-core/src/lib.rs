//! oserver-core: an embeddable, event-driven HTTP/1.1 static file server.
#![deny(missing_docs)]

mod access_log;
pub mod autoindex;
pub mod conditional;
mod conn;
pub mod encoding;
mod event_loop;
pub mod fs;
mod handler;
pub mod mime;
pub mod parse;
pub mod path;
pub mod range;
mod respond;
mod response;
mod server;
mod statics;

pub use handler::{Body, Handler, Request, Response};
pub use server::{bind_listener, AccessLog, Error, Server, ServerBuilder, ShutdownHandle, Stats};
