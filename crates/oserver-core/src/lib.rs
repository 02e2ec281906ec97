//! oserver-core: an embeddable, event-driven HTTP/1.1 static file server.
//!
//! Serve a directory from your own program, beside handlers for dynamic
//! answers, without an async runtime: one [mio] event loop per thread, one
//! connection state machine per socket, an incremental parser, and file
//! bodies sent with sendfile(2).
//!
//! ```
//! use oserver_core::{Response, ServerBuilder};
//!
//! let server = ServerBuilder::new()
//!     .bind("127.0.0.1:0".parse().unwrap())
//!     .root(".")                       // static files: the fallback
//!     .handler("/health", |_req: &oserver_core::Request<'_>| {
//!         Some(Response::new(200).header("Content-Type", "application/json").body("{\"ok\":true}"))
//!     })
//!     .build()?;
//! println!("listening on http://{}/", server.local_addr());
//!
//! // Stop it from another thread (here: at once, so the example ends).
//! let handle = server.handle();
//! std::thread::spawn(move || handle.shutdown());
//! let stats = server.run()?;
//! println!("{} requests served", stats.requests);
//! # Ok::<(), oserver_core::Error>(())
//! ```
//!
//! # What it does
//!
//! - `GET` and `HEAD`; any other method gets 405 with `Allow: GET, HEAD`.
//! - `/dir/` serves `dir/index.html`; `/dir` redirects to `/dir/`; nothing
//!   outside the root is served (paths are resolved before any file-system
//!   call and opened with `openat2(RESOLVE_BENEATH)`).
//! - Validators and 304s, byte ranges, precompressed `.br`/`.gz` variants,
//!   directory listings, `Cache-Control` (see [`ServerBuilder`]).
//! - Strict parsing with limits and timeouts against hostile clients
//!   (see [`parse`]).
//!
//! # Modules
//!
//! [`parse`] is the request-head parser, [`path`] turns a target into a safe
//! relative path, [`fs`] opens it beneath the root, [`mime`] names its type,
//! [`conditional`], [`range`], [`encoding`] and [`autoindex`] implement the
//! HTTP features of the static path. The event loop and the connection state
//! machine are private; [`Server`] runs them.
#![deny(missing_docs)]

mod access_log;
pub mod autoindex;
mod cache;
pub mod conditional;
mod conn;
pub mod encoding;
mod event_loop;
pub mod fs;
mod handler;
mod handoff;
pub mod mime;
pub mod parse;
pub mod path;
pub mod range;
mod respond;
mod response;
mod server;
mod statics;
mod timer;

pub use handler::{Body, Handler, Request, Response};
pub use handoff::Handoff;
pub use server::{bind_listener, AccessLog, Error, Server, ServerBuilder, ShutdownHandle, Stats};
