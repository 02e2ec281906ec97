//! The public face: builder, server, shutdown handle.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::{fmt, io, thread};

use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::files::fs::Root;
use crate::protocol::Ctx;
use crate::respond::handler::Handler;
use crate::respond::pool::Pool;
use crate::respond::{Route, Site};
use crate::runtime::event_loop::{EventLoop, Listener, WAKER};
use crate::runtime::handoff::Handoff;
use crate::runtime::{Control, Stats};
use crate::settings::{AccessLog, Settings, SettingsError};
use crate::wake::Mailbox;

/// Errors from building or running a server.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The root is missing or not a directory.
    Root(PathBuf, io::Error),
    /// Binding or configuring the listener failed.
    Bind(SocketAddr, io::Error),
    /// Opening the access log failed.
    AccessLog(PathBuf, io::Error),
    /// The event loop failed (poll itself, not a connection).
    Io(io::Error),
    /// A setting is out of range (see [`Settings::validate`]).
    Settings(SettingsError),
    /// The builder was used wrongly: no listener, zero threads, a handoff
    /// with several threads.
    Config(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Root(p, e) => write!(f, "root {}: {e}", p.display()),
            Error::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
            Error::AccessLog(p, e) => write!(f, "access log {}: {e}", p.display()),
            Error::Io(e) => write!(f, "event loop: {e}"),
            Error::Settings(e) => write!(f, "invalid setting: {e}"),
            Error::Config(s) => write!(f, "invalid server: {s}"),
        }
    }
}

impl std::error::Error for Error {}

/// Listen backlog. The kernel caps it at net.core.somaxconn (4096 on current
/// kernels); 1024 absorbs a burst of connects while workers are busy or being
/// replaced.
const BACKLOG: i32 = 1024;

/// TCP_DEFER_ACCEPT timeout: the default header timeout, so a client that
/// connects and stays silent is dropped no sooner than it would have been.
const DEFER_ACCEPT_SECS: libc::c_int = 10;

/// Bind a listening socket the way the server wants it: backlog 1024,
/// SO_REUSEADDR, TCP_NODELAY set on the listener so accepted sockets inherit
/// it, and SO_REUSEPORT when asked (one socket per worker).
///
/// # Errors
///
/// Any failure of socket(2), setsockopt(2), bind(2) or listen(2).
pub fn bind_listener(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    if reuse_port {
        sock.set_reuse_port(true)?;
    }
    sock.set_nodelay(true)?;
    // Wake accept only once the client's first bytes are in (or after
    // DEFER_ACCEPT_SECS, when the kernel hands the connection over anyway and
    // the header timeout applies). Saves a poll round trip per connection.
    let secs: libc::c_int = DEFER_ACCEPT_SECS;
    // SAFETY: a valid socket and a c_int option value of the right size.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&secs as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    sock.bind(&addr.into())?;
    sock.listen(BACKLOG)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

enum Listen {
    Addr(SocketAddr),
    Listener(TcpListener),
}

/// Configures a [`Server`].
///
/// # Example
///
/// ```
/// use oserver_core::ServerBuilder;
///
/// let server = ServerBuilder::new()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .root(".")
///     .build()
///     .expect("build");
/// let handle = server.handle();
/// let t = std::thread::spawn(move || server.run());
/// handle.shutdown();
/// t.join().unwrap().expect("run");
/// ```
pub struct ServerBuilder {
    listen: Option<Listen>,
    https: Option<(Listen, Arc<rustls::ServerConfig>)>,
    root: Option<PathBuf>,
    threads: usize,
    settings: Settings,
    routes: Vec<Route>,
    handoff: Option<Handoff>,
    /// Threads of the blocking pool (started only if a route needs it).
    blocking_threads: usize,
}

/// Blocking-pool threads by default: enough that a few slow handlers at once
/// do not queue behind each other, few enough to cost little (each thread
/// reserves its stack but touches a few pages).
const BLOCKING_THREADS: usize = 16;

impl Default for ServerBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerBuilder {
    /// A builder with the defaults: no listener yet, no root, one thread,
    /// timeouts 10 s (head), 15 s (keep-alive), 30 s (send), 10 s (shutdown),
    /// 16 KiB heads, 10,000 connections per loop.
    pub fn new() -> Self {
        ServerBuilder {
            listen: None,
            https: None,
            root: None,
            threads: 1,
            settings: Settings::default(),
            routes: Vec::new(),
            handoff: None,
            blocking_threads: BLOCKING_THREADS,
        }
    }
    /// Listen on this address (bound at `build`, backlog 1024).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.listen = Some(Listen::Addr(addr));
        self
    }
    /// Use an already bound listener.
    pub fn listener(mut self, l: TcpListener) -> Self {
        self.listen = Some(Listen::Listener(l));
        self
    }
    /// Also serve HTTPS on this address (bound at `build`), with this rustls
    /// configuration: its certificates (or certificate resolver), versions,
    /// ALPN protocols (give `http/1.1`) and session resumption are the
    /// embedder's. The plain listener keeps serving beside it.
    pub fn https(mut self, addr: SocketAddr, config: Arc<rustls::ServerConfig>) -> Self {
        self.https = Some((Listen::Addr(addr), config));
        self
    }
    /// Also serve HTTPS on an already bound listener (see [`https`](Self::https)).
    pub fn https_listener(mut self, l: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        self.https = Some((Listen::Listener(l), config));
        self
    }
    /// Serve static files from this directory. Without a root, requests no
    /// handler answers get 404.
    pub fn root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.root = Some(dir.into());
        self
    }
    /// Follow symlinks that lead outside the root (off by default: 403).
    pub fn follow_symlinks(mut self, on: bool) -> Self {
        self.settings.follow_symlinks = on;
        self
    }
    /// Serve dotfiles (off by default: 404, except under `/.well-known/`).
    pub fn hidden(mut self, on: bool) -> Self {
        self.settings.hidden = on;
        self
    }
    /// Directory listings instead of 403 for directories without index.html.
    pub fn autoindex(mut self, on: bool) -> Self {
        self.settings.autoindex = on;
        self
    }
    /// Serve `FILE.br` / `FILE.gz` beside `FILE` when the client accepts them.
    pub fn precompressed(mut self, on: bool) -> Self {
        self.settings.precompressed = on;
        self
    }
    /// Add `Cache-Control: max-age=SECS` to file answers.
    pub fn max_age(mut self, secs: Option<u32>) -> Self {
        self.settings.max_age = secs;
        self
    }
    /// The whole request head must arrive within this (from accept or the end
    /// of the previous response's idle time).
    pub fn header_timeout(mut self, d: Duration) -> Self {
        self.settings.header_timeout = d;
        self
    }
    /// Idle keep-alive connections are closed after this.
    pub fn keepalive_timeout(mut self, d: Duration) -> Self {
        self.settings.keepalive_timeout = d;
        self
    }
    /// A client that takes no byte for this long is dropped.
    pub fn send_timeout(mut self, d: Duration) -> Self {
        self.settings.send_timeout = d;
        self
    }
    /// Longest graceful drain after [`ShutdownHandle::shutdown`].
    pub fn shutdown_timeout(mut self, d: Duration) -> Self {
        self.settings.shutdown_timeout = d;
        self
    }
    /// Largest request head in bytes (431 beyond). Default 16 KiB.
    pub fn max_header_bytes(mut self, n: usize) -> Self {
        self.settings.limits.max_header_bytes = n;
        self
    }
    /// Most open connections per event loop; at the cap new ones wait in the
    /// listen backlog.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.settings.max_connections = n;
        self
    }
    /// Write an access log in nginx's combined format.
    pub fn access_log(mut self, log: Option<AccessLog>) -> Self {
        self.settings.access_log = log;
        self
    }
    /// Pass idle keep-alive connections to the event loop on the CPU their
    /// packets arrive on, and take such connections from other loops (see
    /// [`Handoff`]). Needs exactly one thread: the handoff belongs to the one
    /// event loop, which the embedder has pinned to the handoff's CPU.
    ///
    /// A TLS connection moves with its record keys, and only if its
    /// `rustls::ServerConfig` has `enable_secret_extraction` set; the
    /// receiving loop then protects its records itself (AES-GCM or
    /// ChaCha20-Poly1305 with ring). Without it, TLS connections stay where
    /// they were accepted. HTTP/2 connections never move.
    pub fn handoff(mut self, h: Handoff) -> Self {
        self.handoff = Some(h);
        self
    }
    /// Number of event-loop threads [`Server::run`] uses (default 1).
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = n;
        self
    }
    /// Route requests whose decoded path is `prefix` or lies below it, on a
    /// segment boundary (`/api` takes `/api` and `/api/x`, not `/apiary`),
    /// to `handler`, before the static files, whatever the method. Handlers
    /// are tried in the order added.
    pub fn handler(mut self, prefix: impl Into<String>, handler: impl Handler) -> Self {
        self.routes.push(Route::new(prefix.into(), Box::new(handler)));
        self
    }
    /// The most request-body bytes a handler gets (see
    /// [`Settings::max_body_bytes`]); larger bodies are answered 413.
    pub fn max_body_bytes(mut self, n: u64) -> Self {
        self.settings.max_body_bytes = n;
        self
    }
    /// The body limit of the route added last (by [`handler`](Self::handler)
    /// or [`route`](Self::route)), instead of the server's.
    pub fn body_limit(mut self, n: u64) -> Self {
        if let Some(r) = self.routes.last_mut() {
            r.max_body = Some(n);
        }
        self
    }
    /// As [`handler`](Self::handler), for these methods only (a route for
    /// `GET` takes `HEAD` too). A request whose path a route takes but
    /// whose method none does is answered 405, with `Allow` listing the
    /// methods of those routes.
    ///
    /// ```
    /// use oserver_core::{Request, Response, ServerBuilder};
    ///
    /// let builder = ServerBuilder::new().route(&["POST", "PUT"], "/api/items", |_: &Request<'_>| {
    ///     Some(Response::new(201).body("stored\n"))
    /// });
    /// ```
    pub fn route(mut self, methods: &[&str], prefix: impl Into<String>, handler: impl Handler) -> Self {
        let methods = methods.iter().map(|m| (*m).to_owned()).collect();
        self.routes.push(Route::for_methods(methods, prefix.into(), Box::new(handler)));
        self
    }
    /// As [`route`](Self::route), but the handler runs on the blocking pool
    /// (see [`blocking_threads`](Self::blocking_threads)), not on the event
    /// loop: it may sleep, wait on a lock or a database, or read a slow
    /// disk while the loop serves every other connection. The request
    /// (head and body) is copied for it; its connection waits for the
    /// reply, up to [`Settings::reply_timeout`]. Returning `None` answers
    /// 404 (nothing is left to fall through to); a panic answers 500.
    ///
    /// ```
    /// use oserver_core::{Request, Response, ServerBuilder};
    ///
    /// let builder = ServerBuilder::new().blocking_route(&["GET"], "/report", |_: &Request<'_>| {
    ///     std::thread::sleep(std::time::Duration::from_millis(20)); // slow work
    ///     Some(Response::new(200).body("done\n"))
    /// });
    /// ```
    pub fn blocking_route(
        mut self,
        methods: &[&str],
        prefix: impl Into<String>,
        handler: impl Handler,
    ) -> Self {
        self = self.route(methods, prefix, handler);
        if let Some(r) = self.routes.last_mut() {
            r.blocking = true;
        }
        self
    }
    /// Threads of the blocking pool that runs
    /// [`blocking_route`](Self::blocking_route)s, shared by every event
    /// loop; default 16. Started at `build` only if there is such a route.
    /// Requests beyond it wait in a queue.
    pub fn blocking_threads(mut self, n: usize) -> Self {
        self.blocking_threads = n;
        self
    }
    /// How long a late reply or a streamed body's next piece may take (see
    /// [`Settings::reply_timeout`]).
    pub fn reply_timeout(mut self, d: Duration) -> Self {
        self.settings.reply_timeout = d;
        self
    }
    /// Answer every plain-HTTP request with a `308` to HTTPS on `port`
    /// (see [`Settings::redirect_https`]).
    pub fn redirect_https(mut self, port: Option<u16>) -> Self {
        self.settings.redirect_https = port;
        self
    }
    /// HTTP/2 on or off (see [`Settings::http2`]). Over TLS it also needs
    /// `h2` in the `rustls::ServerConfig`'s `alpn_protocols`, ahead of
    /// `http/1.1`.
    pub fn http2(mut self, on: bool) -> Self {
        self.settings.http2 = on;
        self
    }
    /// `Strict-Transport-Security: max-age=SECS` on HTTPS answers.
    pub fn hsts(mut self, secs: Option<u32>) -> Self {
        self.settings.hsts = secs;
        self
    }
    /// Replace every setting at once (the setters above change single ones).
    /// Checked by [`build`](Self::build).
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }
    /// Responses on one connection before it is closed; 0 is no limit.
    /// Default 1000 (see [`Settings::keepalive_requests`]).
    pub fn keepalive_requests(mut self, n: u32) -> Self {
        self.settings.keepalive_requests = n;
        self
    }
    /// Send `Connection: keep-alive` on HTTP/1.1 answers whose connection
    /// stays open (off by default: HTTP/1.1 assumes it, see
    /// [`Settings::keep_alive_field`]). Closing answers say `close`, and an
    /// HTTP/1.0 client is told `keep-alive`, either way. On, answers are
    /// as nginx's and the `oserver` command's.
    pub fn keep_alive_field(mut self, on: bool) -> Self {
        self.settings.keep_alive_field = on;
        self
    }

    /// Build the server: bind (if an address was given), open the root,
    /// create the event loops.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] for a setting out of range, [`Error::Config`]
    /// for a missing listener or zero threads, [`Error::Bind`],
    /// [`Error::Root`], [`Error::AccessLog`] as named.
    pub fn build(self) -> Result<Server, Error> {
        self.settings.validate().map_err(Error::Settings)?;
        if self.threads == 0 {
            return Err(Error::Config("threads must be at least 1"));
        }
        if self.blocking_threads == 0 {
            return Err(Error::Config("blocking_threads must be at least 1"));
        }
        if self.handoff.is_some() && self.threads != 1 {
            return Err(Error::Config("a handoff needs exactly one thread"));
        }
        let open = |listen: Listen| -> Result<(TcpListener, SocketAddr), Error> {
            let l = match listen {
                Listen::Addr(a) => bind_listener(a, false).map_err(|e| Error::Bind(a, e))?,
                Listen::Listener(l) => l,
            };
            let addr = l.local_addr().map_err(Error::Io)?;
            l.set_nonblocking(true).map_err(|e| Error::Bind(addr, e))?;
            Ok((l, addr))
        };
        let (listener, addr) = open(self.listen.ok_or(Error::Config("no address or listener given"))?)?;
        let https = match self.https {
            None => None,
            Some((listen, config)) => Some((open(listen)?, config)),
        };
        let root = match self.root {
            None => None,
            Some(p) => {
                Some(Root::new(&p, self.settings.follow_symlinks).map_err(|e| Error::Root(p.clone(), e))?)
            }
        };
        if let Some(AccessLog::File(p)) = &self.settings.access_log {
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(p)
                .map_err(|e| Error::AccessLog(p.clone(), e))?;
        }
        // Each loop gets a descriptor of each listening socket.
        let mut loops = Vec::with_capacity(self.threads);
        let mut wakers = Vec::with_capacity(self.threads);
        for _ in 0..self.threads {
            let poll = Poll::new().map_err(Error::Io)?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(Error::Io)?);
            let mailbox = Mailbox::new(Arc::clone(&waker));
            wakers.push(waker);
            let mut listeners = vec![Listener {
                sock: mio::net::TcpListener::from_std(listener.try_clone().map_err(Error::Io)?),
                tls: None,
            }];
            if let Some(((l, _), config)) = &https {
                listeners.push(Listener {
                    sock: mio::net::TcpListener::from_std(l.try_clone().map_err(Error::Io)?),
                    tls: Some(Arc::clone(config)),
                });
            }
            loops.push((poll, listeners, mailbox));
        }
        let https_addr = https.map(|((_, a), _)| a);
        let pool = match self.routes.iter().any(|r| r.blocking) {
            true => Some(Pool::new(self.blocking_threads).map_err(Error::Io)?),
            false => None,
        };
        let site = Arc::new(Site { settings: self.settings, root, routes: self.routes, pool });
        let control = Arc::new(Control::new(wakers));
        Ok(Server { addr, https_addr, loops, site, control, handoff: self.handoff })
    }
}

/// A configured server, ready to run.
///
/// # Example
///
/// Serve a directory on two event-loop threads until another thread stops it:
///
/// ```
/// use oserver_core::ServerBuilder;
/// use std::io::{Read, Write};
///
/// let server = ServerBuilder::new()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .root(env!("CARGO_MANIFEST_DIR"))
///     .threads(2)
///     .build()?;
/// let addr = server.local_addr();
/// let handle = server.handle();
/// let running = std::thread::spawn(move || server.run());
///
/// let mut c = std::net::TcpStream::connect(addr).unwrap();
/// c.write_all(b"GET /Cargo.toml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
/// let mut answer = String::new();
/// c.read_to_string(&mut answer).unwrap();
/// assert!(answer.starts_with("HTTP/1.1 200 OK"));
///
/// handle.shutdown();
/// let stats = running.join().unwrap()?;
/// assert_eq!(stats.requests, 1);
/// # Ok::<(), oserver_core::Error>(())
/// ```
pub struct Server {
    addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    loops: Vec<(Poll, Vec<Listener>, Arc<Mailbox>)>,
    site: Arc<Site>,
    control: Arc<Control>,
    /// For the one event loop (checked at build).
    handoff: Option<Handoff>,
}

impl Server {
    /// The address it listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address it serves HTTPS on, if it does.
    pub fn https_addr(&self) -> Option<SocketAddr> {
        self.https_addr
    }

    /// A handle that stops the server from any thread.
    pub fn handle(&self) -> ShutdownHandle {
        ShutdownHandle { control: Arc::clone(&self.control) }
    }

    /// Run the event loop(s) until shut down: the first on this thread, the
    /// others (see [`ServerBuilder::threads`]) on threads of their own.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if polling itself fails (never for a client's fault) or
    /// the access log cannot be opened.
    pub fn run(self) -> Result<Stats, Error> {
        // Each loop is built on its own thread: its open-file cache is not Send.
        let start = |(poll, l, mailbox): (Poll, Vec<Listener>, Arc<Mailbox>),
                     site: Arc<Site>,
                     ctl: Arc<Control>,
                     handoff: Option<Handoff>| {
            let cx = Ctx::new(site, mailbox)?;
            EventLoop::new(poll, l, cx, ctl, handoff).and_then(EventLoop::run)
        };
        let mut parts = self.loops.into_iter();
        let first = parts.next().ok_or(Error::Config("no event loop"))?;
        let threads: Vec<_> = parts
            .enumerate()
            .map(|(i, p)| {
                let (site, ctl) = (Arc::clone(&self.site), Arc::clone(&self.control));
                thread::Builder::new()
                    .name(format!("oserver-loop-{}", i + 1))
                    .spawn(move || start(p, site, ctl, None))
            })
            .collect::<Result<_, _>>()
            .map_err(Error::Io)?;
        let mut total =
            start(first, Arc::clone(&self.site), Arc::clone(&self.control), self.handoff).map_err(Error::Io);
        if total.is_err() {
            // One loop failed: stop the others rather than leave them running.
            self.control.stop();
        }
        for t in threads {
            let r = t.join().unwrap_or_else(|_| Err(io::Error::other("event loop panicked")));
            match (&mut total, r) {
                (Ok(s), Ok(r)) => s.add(&r),
                (Ok(_), Err(e)) => total = Err(Error::Io(e)),
                _ => {}
            }
        }
        total
    }
}

/// Stops a running server, or asks it to reopen its log, from any thread.
///
/// `Send + Sync + Clone`: hand copies to a signal thread, a watchdog, a test.
///
/// # Example
///
/// ```
/// use oserver_core::ServerBuilder;
/// use std::time::Duration;
///
/// let server = ServerBuilder::new().bind("127.0.0.1:0".parse().unwrap()).build()?;
/// let handle = server.handle();
/// let stopper = handle.clone();
/// std::thread::spawn(move || {
///     std::thread::sleep(Duration::from_millis(50));
///     stopper.shutdown(); // graceful: responses in flight finish first
/// });
/// server.run()?; // returns once stopped
/// # Ok::<(), oserver_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ShutdownHandle {
    control: Arc<Control>,
}

impl ShutdownHandle {
    /// Graceful stop: stop accepting, finish responses in flight, close idle
    /// connections; [`Server::run`] returns when the last connection is done
    /// or the shutdown timeout has passed.
    pub fn shutdown(&self) {
        self.control.stop();
    }

    /// Reopen the access log file at its configured path (after logrotate
    /// renamed it). Lines buffered so far go to the old file first.
    pub fn reopen_logs(&self) {
        self.control.reopen_logs();
    }
}

impl fmt::Debug for ShutdownHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShutdownHandle").finish_non_exhaustive()
    }
}
