//! The public face: builder, server, shutdown handle.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::{fmt, io, thread};

use mio::unix::SourceFd;
use mio::{Interest, Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use crate::files::fs::Root;
use crate::protocol::Ctx;
use crate::respond::handler::Handler;
use crate::respond::pool::Pool;
use crate::respond::{Route, Site};
use crate::runtime::event_loop::{EventLoop, Listener, WAKER, WATCH};
use crate::runtime::handoff::Handoff;
use crate::runtime::placement::{self, Mailboxes, Plan};
use crate::runtime::{Control, Stats, Watch};
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
    /// with several threads (or with [`ServerBuilder::cpu_placement`],
    /// which makes the loops' handoffs itself).
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

/// `n` SO_REUSEPORT listeners on one port (see [`bind_listener`]), bound in
/// order, so that the `i`-th is index `i` of the reuseport group (what
/// [`placement::steer`] relies on). With port 0 the first gets a port from
/// the kernel and the others join it. With a fixed port, a plain bind is
/// tried first and closed again: SO_REUSEPORT lets any socket of the same
/// user join a port, so a second server started on it by mistake would
/// otherwise bind fine and take part of the traffic.
///
/// # Errors
///
/// The port is taken, or any failure of [`bind_listener`].
pub fn bind_listeners(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpListener>> {
    if addr.port() != 0 {
        drop(TcpListener::bind(addr)?);
    }
    let first = bind_listener(addr, true)?;
    let addr = first.local_addr()?;
    let mut listeners = Vec::with_capacity(n);
    listeners.push(first);
    for _ in 1..n {
        listeners.push(bind_listener(addr, true)?);
    }
    Ok(listeners)
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
    cpu_placement: bool,
    sched_batch: bool,
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
            cpu_placement: false,
            sched_batch: false,
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
    /// Place the event loops on CPUs (off by default), as the `oserver`
    /// command's `--cpu-affinity` places its workers (README, "CPU
    /// placement"; the mechanism is in [`placement`]):
    ///
    /// - With no more [`threads`](Self::threads) than CPUs this process may
    ///   use: loop `i` pins itself to the `i`-th allowed CPU. Each address
    ///   given by [`bind`](Self::bind) or [`https`](Self::https) gets one
    ///   SO_REUSEPORT listener per loop (see [`bind_listeners`]), and the
    ///   group a program that hands each new connection to the loop on the
    ///   CPU that processed its SYN. The loops pass idle keep-alive
    ///   connections whose client moved to another CPU to the loop there
    ///   (a [`Handoff`] each, made here). A listener of the caller's
    ///   ([`listener`](Self::listener), [`https_listener`](Self::https_listener))
    ///   is shared by the loops as without placement and not steered; the
    ///   handoffs still apply.
    /// - With more threads than CPUs: the loops are pinned round-robin,
    ///   connections are neither steered nor handed off, and a warning says
    ///   so.
    /// - With one thread and a [`handoff`](Self::handoff) of the caller's,
    ///   the loop is pinned to the handoff's CPU. A handoff of the caller's
    ///   with several threads is an [`Error::Config`].
    ///
    /// With placement or [`sched_batch`](Self::sched_batch) on,
    /// [`Server::run`] runs every loop on a thread of its own, so the
    /// calling thread keeps its CPUs and policy. The blocking pool is
    /// started at `build`, unpinned.
    ///
    /// The risk: steering follows the CPU that processed the SYN. Behind a
    /// single-queue NIC without RPS one CPU processes every packet, and
    /// every connection would pile onto one loop: leave this off there.
    /// Loopback is safe (packets are processed on the client's CPU), as is a
    /// NIC with several receive queues or RPS.
    pub fn cpu_placement(mut self, on: bool) -> Self {
        self.cpu_placement = on;
        self
    }
    /// Run each event loop under `SCHED_BATCH` (off by default; see
    /// [`placement::batch`]): a loop woken by a request does not preempt
    /// the task on its CPU, and answers several requests from one wakeup
    /// when it runs. More throughput where CPUs are shared (with a load
    /// generator, other services); the first answer of a loop sharing a
    /// busy CPU comes a little later. Usually goes with
    /// [`cpu_placement`](Self::cpu_placement), as `--sched-batch` does in
    /// the `oserver` command (README, "CPU placement").
    pub fn sched_batch(mut self, on: bool) -> Self {
        self.sched_batch = on;
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
        if self.cpu_placement && self.handoff.is_some() && self.threads != 1 {
            return Err(Error::Config(
                "cpu_placement makes the loops' handoffs itself: a handoff of your own needs one thread",
            ));
        }
        if self.handoff.is_some() && self.threads != 1 {
            return Err(Error::Config("a handoff needs exactly one thread"));
        }
        let plan = match self.cpu_placement {
            false => None,
            true => Some(placement_plan(self.threads, self.handoff.as_ref())?),
        };
        // Loops on CPUs of their own, several: each address gets a listener
        // per loop, and each loop a handoff to the others.
        let grouped = plan.as_ref().is_some_and(|p| p.steer) && self.threads > 1;
        let threads = self.threads;
        let open = |listen: Listen| -> Result<(Vec<TcpListener>, SocketAddr, bool), Error> {
            let (ls, steered) = match listen {
                Listen::Addr(a) if grouped => {
                    (bind_listeners(a, threads).map_err(|e| Error::Bind(a, e))?, true)
                }
                Listen::Addr(a) => (vec![bind_listener(a, false).map_err(|e| Error::Bind(a, e))?], false),
                Listen::Listener(l) => (vec![l], false),
            };
            let addr = ls[0].local_addr().map_err(Error::Io)?;
            for l in &ls {
                l.set_nonblocking(true).map_err(|e| Error::Bind(addr, e))?;
            }
            Ok((ls, addr, steered))
        };
        let (listeners, addr, steered) =
            open(self.listen.ok_or(Error::Config("no address or listener given"))?)?;
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
        if let Some(plan) = &plan {
            let groups: Vec<&TcpListener> = std::iter::once((&listeners, steered))
                .chain(https.as_ref().map(|((l, _, s), _)| (l, *s)))
                .filter(|(_, s)| *s)
                .map(|(l, _)| &l[0])
                .collect();
            log_placement(plan, threads, &groups);
        }
        // The loops' handoffs: the caller's for its one loop, or one each
        // when every loop has a CPU of its own.
        let mut handoffs: Vec<Option<Handoff>> = (0..threads).map(|_| None).collect();
        match (self.handoff, &plan) {
            (Some(h), _) => handoffs[0] = Some(h),
            (None, Some(plan)) if grouped => {
                let mail = Mailboxes::new(&plan.cpus).map_err(Error::Io)?;
                for (i, h) in handoffs.iter_mut().enumerate() {
                    *h = Some(mail.handoff(i).map_err(Error::Io)?);
                }
            }
            _ => {}
        }
        // Each loop gets its own listener of a steered group, or a
        // descriptor of the one shared socket.
        let per_loop = |ls: &[TcpListener], i: usize| -> Result<mio::net::TcpListener, Error> {
            let l = ls.get(i).unwrap_or(&ls[0]);
            Ok(mio::net::TcpListener::from_std(l.try_clone().map_err(Error::Io)?))
        };
        let mut loops = Vec::with_capacity(threads);
        let mut wakers = Vec::with_capacity(threads);
        for (i, handoff) in handoffs.into_iter().enumerate() {
            let poll = Poll::new().map_err(Error::Io)?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(Error::Io)?);
            let mailbox = Mailbox::new(Arc::clone(&waker));
            wakers.push(waker);
            let mut ls = vec![Listener { sock: per_loop(&listeners, i)?, tls: None }];
            if let Some(((l, _, _), config)) = &https {
                ls.push(Listener { sock: per_loop(l, i)?, tls: Some(Arc::clone(config)) });
            }
            let cpu = plan.as_ref().and_then(|p| p.cpu(i));
            loops.push(Part { poll, listeners: ls, mailbox, handoff, cpu, watch: None });
        }
        let https_addr = https.map(|((_, a, _), _)| a);
        let pool = match self.routes.iter().any(|r| r.blocking) {
            true => Some(Pool::new(self.blocking_threads).map_err(Error::Io)?),
            false => None,
        };
        let site = Arc::new(Site { settings: self.settings, root, routes: self.routes, pool });
        let control = Arc::new(Control::new(wakers));
        let own_threads = plan.is_some() || self.sched_batch;
        Ok(Server { addr, https_addr, loops, site, control, batch: self.sched_batch, own_threads })
    }
}

/// Where the loops run with [`ServerBuilder::cpu_placement`]: one allowed
/// CPU each, round-robin beyond; a caller's handoff names its loop's CPU.
fn placement_plan(threads: usize, handoff: Option<&Handoff>) -> Result<Plan, Error> {
    if let Some(h) = handoff {
        return Ok(Plan { cpus: vec![h.cpu()], steer: false });
    }
    let allowed = placement::allowed_cpus().map_err(Error::Io)?;
    Ok(Plan::new(threads, &allowed))
}

/// Attach the steering program to each group in `groups` (one socket of
/// each), and say in one line where the loops run. A group that cannot be
/// steered is still served, by hash, so that is a warning only.
fn log_placement(plan: &Plan, threads: usize, groups: &[&TcpListener]) {
    if threads == 1 {
        log::info!("cpu_placement: the event loop pinned to CPU {:?}", plan.cpus);
        return;
    }
    if !plan.steer {
        log::warn!(
            "cpu_placement: {threads} event loops on fewer CPUs: pinned round-robin to CPUs {:?}; \
             connections spread by hash, not by CPU, and not handed off",
            plan.cpus
        );
        return;
    }
    match groups.iter().try_for_each(|l| placement::steer(l, &plan.cpus)) {
        Err(e) => log::warn!(
            "cpu_placement: event loops pinned to CPUs {:?}; cannot steer connections by CPU ({e}), \
             the kernel's hash spreads them",
            plan.cpus
        ),
        Ok(()) if groups.is_empty() => log::info!(
            "cpu_placement: event loops pinned to CPUs {:?}; connections not steered (the listener is the \
             caller's), idle ones handed to the loop on their CPU",
            plan.cpus
        ),
        Ok(()) => log::info!(
            "cpu_placement: event loops pinned to CPUs {:?}; connections steered to the loop on their CPU",
            plan.cpus
        ),
    }
}

/// One event loop's parts, made at `build` and started by `run`.
struct Part {
    poll: Poll,
    listeners: Vec<Listener>,
    mailbox: Arc<Mailbox>,
    handoff: Option<Handoff>,
    /// The CPU the loop's thread pins itself to (`cpu_placement`).
    cpu: Option<usize>,
    /// The first loop's only: see [`Server::watch`].
    watch: Option<Watch>,
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
    loops: Vec<Part>,
    site: Arc<Site>,
    control: Arc<Control>,
    /// Each loop's thread switches to SCHED_BATCH.
    batch: bool,
    /// Every loop on a thread of its own (placement or SCHED_BATCH change
    /// the thread, and the caller's is left as it was).
    own_threads: bool,
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

    /// Watch a descriptor of yours in the first event loop: each time
    /// `source` becomes readable, `on_ready` runs on that loop's thread
    /// with it, until [`Server::run`] returns. The loop is edge-triggered,
    /// so `on_ready` must read until the read would block, and `source`
    /// must be non-blocking. The server owns `source` from now on and
    /// closes it when it stops.
    ///
    /// For events that must reach the server without a thread of their
    /// own: the `oserver` command's workers take their signals from a
    /// `signalfd` this way and stay single-threaded, because a second
    /// thread shares the file table and makes every socket call take and
    /// drop a reference to its file. `on_ready` runs between connections'
    /// turns: what it does, the connections wait for.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if the server already watches a descriptor,
    /// [`Error::Io`] if the loop cannot watch this one.
    ///
    /// # Example
    ///
    /// Stop the server when a byte arrives on a socket:
    ///
    /// ```
    /// use oserver_core::ServerBuilder;
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    ///
    /// let mut server = ServerBuilder::new().bind("127.0.0.1:0".parse().unwrap()).build()?;
    /// let (mut tx, rx) = UnixStream::pair()?;
    /// rx.set_nonblocking(true)?;
    /// let handle = server.handle();
    /// server.watch(rx, move |rx| {
    ///     let mut buf = [0u8; 64];
    ///     while let Ok(n @ 1..) = rx.read(&mut buf) {
    ///         if buf[..n].contains(&b'q') {
    ///             handle.shutdown();
    ///         }
    ///     }
    /// })?;
    /// tx.write_all(b"q")?;
    /// server.run()?; // returns once the byte has been read
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn watch<S>(
        &mut self,
        mut source: S,
        mut on_ready: impl FnMut(&mut S) + Send + 'static,
    ) -> Result<(), Error>
    where
        S: AsRawFd + Send + 'static,
    {
        let first = self.loops.first_mut().ok_or(Error::Config("no event loop"))?;
        if first.watch.is_some() {
            return Err(Error::Config("a server watches one descriptor of yours"));
        }
        let fd = source.as_raw_fd();
        first.poll.registry().register(&mut SourceFd(&fd), WATCH, Interest::READABLE).map_err(Error::Io)?;
        first.watch = Some(Box::new(move || on_ready(&mut source)));
        Ok(())
    }

    /// Run the event loop(s) until shut down: the first on this thread, the
    /// others (see [`ServerBuilder::threads`]) on threads of their own.
    /// With [`ServerBuilder::cpu_placement`] or
    /// [`ServerBuilder::sched_batch`] every loop runs on a thread of its own
    /// (which pins itself, or switches its policy, before it serves) and
    /// this thread waits for them.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if polling itself fails (never for a client's fault) or
    /// the access log cannot be opened.
    pub fn run(self) -> Result<Stats, Error> {
        let batch = self.batch;
        // Each loop is built on its own thread: its open-file cache is not Send.
        let start = move |p: Part, site: Arc<Site>, ctl: Arc<Control>| {
            if let Some(cpu) = p.cpu {
                if let Err(e) = placement::pin(cpu) {
                    log::warn!("cpu_placement: cannot pin an event loop to CPU {cpu}: {e}");
                }
            }
            if batch {
                if let Err(e) = placement::batch() {
                    log::warn!("sched_batch: cannot switch an event loop to SCHED_BATCH: {e}");
                }
            }
            let cx = Ctx::new(site, p.mailbox)?;
            EventLoop::new(p.poll, p.listeners, cx, ctl, p.handoff, p.watch).and_then(EventLoop::run)
        };
        let mut parts = self.loops.into_iter();
        let first = match self.own_threads {
            true => None,
            false => Some(parts.next().ok_or(Error::Config("no event loop"))?),
        };
        let skip = usize::from(first.is_some());
        let threads: Vec<_> = parts
            .enumerate()
            .map(|(i, p)| {
                let (site, ctl) = (Arc::clone(&self.site), Arc::clone(&self.control));
                thread::Builder::new()
                    .name(format!("oserver-loop-{}", i + skip))
                    .spawn(move || start(p, site, ctl))
            })
            .collect::<Result<_, _>>()
            .map_err(|e| {
                // Stop the loops already started.
                self.control.stop();
                Error::Io(e)
            })?;
        let mut total = match first {
            Some(p) => start(p, Arc::clone(&self.site), Arc::clone(&self.control)).map_err(Error::Io),
            None => Ok(Stats::default()),
        };
        if total.is_err() {
            // One loop failed: stop the others rather than leave them running.
            self.control.stop();
        }
        for t in threads {
            let r = t.join().unwrap_or_else(|_| Err(io::Error::other("event loop panicked")));
            match (&mut total, r) {
                (Ok(s), Ok(r)) => s.add(&r),
                (Ok(_), Err(e)) => {
                    // On their own threads, a failed loop stops the others here.
                    self.control.stop();
                    total = Err(Error::Io(e));
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The socket (its inode) behind each loop's listener `which`.
    fn sockets(s: &Server, which: usize) -> Vec<u64> {
        s.loops
            .iter()
            .map(|p| {
                // SAFETY: fstat writes only into `st`.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                assert_eq!(unsafe { libc::fstat(p.listeners[which].sock.as_raw_fd(), &mut st) }, 0);
                st.st_ino
            })
            .collect()
    }

    fn local() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn a_watched_descriptor_runs_its_closure_on_the_loop_until_the_server_stops() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let mut s = ServerBuilder::new().bind(local()).threads(2).build().unwrap();
        let (mut tx, rx) = UnixStream::pair().unwrap();
        rx.set_nonblocking(true).unwrap();
        let (handle, seen) = (s.handle(), Arc::new(AtomicUsize::new(0)));
        let counted = Arc::clone(&seen);
        s.watch(rx, move |rx| {
            let mut buf = [0u8; 4];
            // Reads until it would block, as an edge-triggered loop needs:
            // all five bytes arrive in one event or more, never lost.
            while let Ok(n @ 1..) = rx.read(&mut buf) {
                counted.fetch_add(n, Ordering::SeqCst);
                if buf[..n].contains(&b'q') {
                    handle.shutdown();
                }
            }
        })
        .unwrap();
        let (extra, _) = UnixStream::pair().unwrap();
        match s.watch(extra, |_| {}) {
            Err(Error::Config(why)) => assert!(why.contains("one descriptor"), "{why}"),
            other => panic!("a second watch: {:?}", other.err()),
        }
        let running = thread::spawn(move || s.run());
        tx.write_all(b"abcd").unwrap();
        tx.write_all(b"q").unwrap();
        running.join().unwrap().unwrap();
        assert_eq!(seen.load(Ordering::SeqCst), 5);
    }

    #[test]
    fn without_placement_the_loops_share_one_listener_and_the_callers_thread() {
        let s = ServerBuilder::new().bind(local()).threads(3).build().unwrap();
        let ino = sockets(&s, 0);
        assert!(ino.iter().all(|&i| i == ino[0]), "{ino:?}");
        assert!(s.loops.iter().all(|p| p.cpu.is_none() && p.handoff.is_none()));
        assert!(!s.own_threads);
    }

    #[test]
    fn placement_binds_a_listener_per_loop_on_one_port_each_with_a_cpu_and_a_handoff() {
        let allowed = placement::allowed_cpus().unwrap();
        if allowed.len() < 2 {
            eprintln!("skipped: {} allowed CPU(s), placement needs 2", allowed.len());
            return;
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let tls =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], der)
                .unwrap();
        let tls = Arc::new(tls);
        let s = ServerBuilder::new()
            .bind(local())
            .https(local(), tls)
            .threads(2)
            .cpu_placement(true)
            .build()
            .unwrap();
        for which in [0, 1] {
            let ino = sockets(&s, which);
            assert_ne!(ino[0], ino[1], "listener {which}: a socket each");
            let ports: Vec<u16> =
                s.loops.iter().map(|p| p.listeners[which].sock.local_addr().unwrap().port()).collect();
            assert_eq!(ports[0], ports[1]);
        }
        assert_eq!(
            s.loops.iter().map(|p| p.cpu).collect::<Vec<_>>(),
            vec![Some(allowed[0]), Some(allowed[1])]
        );
        assert!(s.loops.iter().all(|p| p.handoff.is_some()));
        assert!(s.own_threads);
    }

    #[test]
    fn placement_with_a_callers_listener_shares_it_and_more_loops_than_cpus_wrap() {
        let allowed = placement::allowed_cpus().unwrap();
        let l = bind_listener(local(), false).unwrap();
        let s = ServerBuilder::new().listener(l).threads(allowed.len()).cpu_placement(true).build().unwrap();
        let ino = sockets(&s, 0);
        assert!(ino.iter().all(|&i| i == ino[0]), "{ino:?}");
        assert_eq!(s.loops.iter().map(|p| p.cpu.unwrap()).collect::<Vec<_>>(), allowed);
        assert_eq!(s.loops.iter().all(|p| p.handoff.is_some()), allowed.len() > 1);

        let n = allowed.len() + 1;
        let s = ServerBuilder::new().bind(local()).threads(n).cpu_placement(true).build().unwrap();
        let ino = sockets(&s, 0);
        assert!(ino.iter().all(|&i| i == ino[0]), "{ino:?}");
        assert_eq!(s.loops[n - 1].cpu, Some(allowed[0]));
        assert!(s.loops.iter().all(|p| p.handoff.is_none()));
    }

    #[test]
    fn a_handoff_of_ones_own_with_placement_needs_one_thread() {
        let (inbox, _tx) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let h = Handoff::new(7, inbox, Vec::new()).unwrap();
        let built = ServerBuilder::new().bind(local()).threads(2).cpu_placement(true).handoff(h).build();
        match built {
            Err(Error::Config(why)) => assert!(why.contains("cpu_placement"), "{why}"),
            other => panic!("{:?}", other.err()),
        }
        let (inbox, _tx) = std::os::unix::net::UnixDatagram::pair().unwrap();
        let h = Handoff::new(7, inbox, Vec::new()).unwrap();
        let s = ServerBuilder::new().bind(local()).cpu_placement(true).handoff(h).build().unwrap();
        assert_eq!(s.loops[0].cpu, Some(7), "pinned where the handoff says");
    }
}
