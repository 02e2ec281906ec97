//! oserver-core: an embeddable, event-driven HTTP/1.1 and HTTP/2 server of
//! static files and handlers, plain or over TLS.
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
//! - Static files answer `GET` and `HEAD` (other methods get 405 with
//!   `Allow: GET, HEAD`); [`Handler`]s see every method and the request body
//!   ([`Request::body`]), routed by path prefix and, with
//!   [`ServerBuilder::route`], by method.
//! - A handler need not answer at once: it can answer later from any thread
//!   ([`Response::later`]), run on a blocking pool
//!   ([`ServerBuilder::blocking_route`]), or stream its body from an
//!   iterator or another thread ([`Body::Stream`], [`BodyStream`]).
//! - HTTP/1.1 and HTTP/2 (h2 by ALPN over TLS, h2c by prior knowledge; see
//!   [`Settings::http2`]); HTTPS with rustls ([`ServerBuilder::https`]).
//! - `/dir/` serves `dir/index.html`; `/dir` redirects to `/dir/`; nothing
//!   outside the root is served (paths are resolved before any file-system
//!   call and opened with `openat2(RESOLVE_BENEATH)`).
//! - Validators and 304s, byte ranges, precompressed `.br`/`.gz` variants,
//!   directory listings, `Cache-Control` (see [`ServerBuilder`]).
//! - Strict parsing with limits and timeouts against hostile clients
//!   (see [`Settings`]).
//!
//! # Examples
//!
//! In `crates/oserver-core/examples`, each run from the workspace root:
//!
//! - `cargo run --release -p oserver-core --example hello -- 127.0.0.1:8081 httptest`:
//!   a JSON health endpoint beside static files.
//! - `cargo run --release -p oserver-core --example threads -- 127.0.0.1:8082 httptest 4 10`:
//!   one server on 4 event-loop threads, stopped gracefully after 10 s
//!   from another thread through its [`ShutdownHandle`].
//! - `cargo run --release -p oserver-core --example techempower -- 127.0.0.1:8080 2`:
//!   TechEmpower's `/plaintext` and `/json` on 2 threads, with no document
//!   root, the loops placed on CPUs ([`ServerBuilder::cpu_placement`]) and
//!   under `SCHED_BATCH` ([`ServerBuilder::sched_batch`]).
//! - `cargo run --release -p oserver-core --example api -- 127.0.0.1:8080 ./public`:
//!   an API beside static files: every method, request bodies, a slow
//!   handler on the blocking pool, streamed bodies, files a handler serves
//!   with static-file semantics (ETag, ranges, 304), 405 with `Allow`.
//! - `cargo run --release -p oserver-core --example conformance -- 127.0.0.1:8080 ROOT`:
//!   the server the httpwg conformance suite runs against
//!   (`benches/conformance/httpwg.sh --server library`): static files and a
//!   `POST` handler on every path.
//!
//! # Layers
//!
//! A request flows one way, and each layer imports only the ones below it:
//!
//! - **runtime** (private): the mio event loop per thread, accept, the
//!   waker, the timing wheel, the [`Handoff`] between loops, and
//!   [`placement`] (pinning, `SCHED_BATCH`, steering connections by CPU;
//!   public for the `oserver` command). It sees a connection only as a
//!   protocol session.
//! - **protocol** (private): HTTP/1.1 ([`parse`] is its request-head
//!   parser, public only for the benchmark and the fuzz target, not a
//!   stable API) and HTTP/2 (frames, HPACK), each a connection state
//!   machine that frames replies; the access log.
//! - **transport** (private): bytes between a socket and a protocol (plain
//!   TCP: recv, send, sendfile; TLS with rustls).
//! - **respond** (private): from a protocol-independent request to a reply,
//!   through the [`Handler`]s and then the static files.
//! - **files** and **http** (private): `files` turns a target into a safe
//!   relative path, opens it beneath the root and lists a directory; `http`
//!   holds pure functions of HTTP semantics (validators and 304s, ranges,
//!   content codings, media types).
//! - [`Settings`] (one validated type for every layer) and [`Server`], the
//!   public face that builds and runs the rest.
#![deny(missing_docs)]

mod files;
mod http;
mod protocol;
mod respond;
mod runtime;
mod server;
mod settings;
#[cfg(test)]
mod testing;
mod transport;
mod wake;

pub use protocol::http1::parse;
pub use respond::handler::Later;
pub use respond::handler::{Body, Handler, Request, Response};
pub use respond::stream::{BodySender, BodyStream, Gone, CHANNEL_BYTES};
pub use runtime::handoff::Handoff;
pub use runtime::placement;
pub use runtime::Stats;
/// The rustls this crate is built with, for [`ServerBuilder::https`].
pub use rustls;
pub use server::{bind_listener, bind_listeners, Error, Server, ServerBuilder, ShutdownHandle};
pub use settings::{
    AccessLog, Limits, Settings, SettingsError, MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_TIMEOUT,
    MIN_HEADER_BYTES,
};
pub use transport::tickets::TicketKeys;
