//! Builder, server and shutdown handle. STUB of the public API (bodies come later).

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;
use std::{fmt, io};

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// Append to this file (opened with O_APPEND; reopened on request).
    File(PathBuf),
    /// Standard output.
    Stdout,
}

/// Errors from building or running a server.
#[derive(Debug)]
pub enum Error {
    /// The root is missing or not a directory.
    Root(PathBuf, io::Error),
    /// Binding or configuring the listener failed.
    Bind(SocketAddr, io::Error),
    /// Opening the access log failed.
    AccessLog(PathBuf, io::Error),
    /// The event loop failed (poll itself, not a connection).
    Io(io::Error),
    /// A setting is out of range.
    Config(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Root(p, e) => write!(f, "root {}: {e}", p.display()),
            Error::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Error::AccessLog(p, e) => write!(f, "access log {}: {e}", p.display()),
            Error::Io(e) => write!(f, "event loop: {e}"),
            Error::Config(s) => write!(f, "invalid setting: {s}"),
        }
    }
}

impl std::error::Error for Error {}

/// Counters a server returns when it stops.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Connections accepted.
    pub connections: u64,
    /// Responses sent.
    pub requests: u64,
}

/// Bind a listening socket the way the server wants it: backlog 1024,
/// SO_REUSEADDR, TCP_NODELAY inherited by accepted sockets, and optionally
/// SO_REUSEPORT (one socket per worker).
pub fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let _ = (addr, reuse_port);
    todo!()
}

/// Configures a [`Server`].
#[derive(Default)]
pub struct ServerBuilder {
    _todo: (),
}

impl ServerBuilder {
    /// A builder with the defaults.
    pub fn new() -> Self {
        todo!()
    }
    /// Listen on this address (bound at `build`).
    pub fn bind(self, addr: SocketAddr) -> Self { let _ = addr; todo!() }
    /// Use an already bound listener.
    pub fn listener(self, l: TcpListener) -> Self { let _ = l; todo!() }
    /// Serve static files from this directory.
    pub fn root(self, dir: impl Into<PathBuf>) -> Self { let _ = dir.into(); todo!() }
    /// Follow symlinks that lead outside the root (off by default: 403).
    pub fn follow_symlinks(self, on: bool) -> Self { let _ = on; todo!() }
    /// Serve dotfiles (off by default: 404).
    pub fn hidden(self, on: bool) -> Self { let _ = on; todo!() }
    /// Directory listings instead of 403.
    pub fn autoindex(self, on: bool) -> Self { let _ = on; todo!() }
    /// Serve FILE.br / FILE.gz when accepted.
    pub fn precompressed(self, on: bool) -> Self { let _ = on; todo!() }
    /// `Cache-Control: max-age=SECS` on file answers.
    pub fn max_age(self, secs: Option<u32>) -> Self { let _ = secs; todo!() }
    /// Whole request head must arrive within this.
    pub fn header_timeout(self, d: Duration) -> Self { let _ = d; todo!() }
    /// Idle keep-alive connections are closed after this.
    pub fn keepalive_timeout(self, d: Duration) -> Self { let _ = d; todo!() }
    /// A client that reads nothing for this long is dropped.
    pub fn send_timeout(self, d: Duration) -> Self { let _ = d; todo!() }
    /// Longest graceful drain after `ShutdownHandle::shutdown`.
    pub fn shutdown_timeout(self, d: Duration) -> Self { let _ = d; todo!() }
    /// Largest request head (431 beyond).
    pub fn max_header_bytes(self, n: usize) -> Self { let _ = n; todo!() }
    /// Most open connections per event loop.
    pub fn max_connections(self, n: usize) -> Self { let _ = n; todo!() }
    /// Write an access log in the combined format.
    pub fn access_log(self, log: Option<AccessLog>) -> Self { let _ = log; todo!() }
    /// Number of event-loop threads `run` uses (default 1).
    pub fn threads(self, n: usize) -> Self { let _ = n; todo!() }
    /// Build the server: bind (if an address was given), open the root.
    pub fn build(self) -> Result<Server, Error> { todo!() }
}

/// A configured server, ready to run.
pub struct Server {
    _todo: (),
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> { todo!() }
    /// A handle that stops the server from any thread.
    pub fn handle(&self) -> ShutdownHandle { todo!() }
    /// Run the event loop(s) on this thread until shut down.
    pub fn run(self) -> Result<Stats, Error> { todo!() }
}

/// Stops a running server, from any thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    _todo: (),
}

impl ShutdownHandle {
    /// Stop accepting, finish responses in flight, close idle connections,
    /// then return from `run` (at most the shutdown timeout later).
    pub fn shutdown(&self) { todo!() }
    /// Reopen the access log file (after logrotate renamed it).
    pub fn reopen_logs(&self) { todo!() }
}
