//! `oserver`: the command-line front end of oserver-core.
//!
//! `main` parses the flags, turns them into a validated [`config::Config`]
//! (reading the TLS certificates, if any), binds the listening sockets,
//! then hands over to the master, which forks the workers and supervises
//! them. Nothing about HTTP lives here.
//!
//! Exit codes: 0 after a requested stop, 1 when the workers could not be
//! run, 2 for a usage or startup error (bad flag, root, port in use, an
//! unusable certificate or key).

mod args;
mod config;
mod master;
mod pidfile;
mod sched;
mod signals;
mod sockets;
mod tls;
mod worker;

use std::io::IsTerminal;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::ExitCode;
use std::{fmt, io};

use clap::Parser;
use log::info;

use crate::args::Args;
use crate::config::{Config, ConfigError};
use crate::pidfile::PidFile;
use crate::signals::SigSet;
use crate::sockets::Sockets;

/// Exit code for everything that goes wrong before the first fork.
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                e.exit();
            }
            // clap follows its error with usage and a hint; one line is
            // enough to say what is wrong, and `--help` has the rest.
            let text = e.to_string();
            eprintln!("oserver: {}", text.lines().next().unwrap_or("bad arguments"));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("oserver: error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// What can stop the server from starting.
#[derive(Debug)]
enum StartError {
    Config(ConfigError),
    Signals(io::Error),
    Bind(SocketAddr, io::Error),
    Server(oserver_core::Error),
    PidFile(PathBuf, io::Error),
    Handoff(io::Error),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(e) => e.fmt(f),
            StartError::Signals(e) => write!(f, "cannot block signals: {e}"),
            StartError::Bind(a, e) => write!(f, "cannot listen on {a}: {e}"),
            StartError::Server(e) => e.fmt(f),
            StartError::PidFile(p, e) => write!(f, "pid file {}: {e}", p.display()),
            StartError::Handoff(e) => write!(f, "--cpu-affinity: cannot create the handoff sockets: {e}"),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> Self {
        StartError::Config(e)
    }
}

fn run(args: Args) -> Result<u8, StartError> {
    let mut cfg = Config::from_args(args)?;
    init_logger(cfg.log_level);
    if let Some((_, https)) = &cfg.https {
        for w in &https.warnings {
            log::warn!("{w}");
        }
        for c in &https.certs {
            info!("https certificate {c}");
        }
    }
    // Blocked from here on and taken by the master's loop: a SIGTERM that
    // arrives during startup then stops the server properly instead of
    // killing the master by its default action. Workers inherit the mask.
    SigSet::of(&signals::MASTER).block().map_err(StartError::Signals)?;

    raise_fd_limit(cfg.settings.max_connections);
    let http = bind_listeners(cfg.addr, cfg.workers)?;
    let https = match &cfg.https {
        Some((addr, _)) => Some(bind_listeners(*addr, cfg.workers)?),
        None => None,
    };
    let addr = first_addr(&http, cfg.addr)?;
    let mut line = format!("listening on http://{addr}/");
    if let (Some(l), Some((a, _))) = (&https, &cfg.https) {
        let bound = first_addr(l, *a)?;
        line.push_str(&format!(" https://{bound}/"));
        cfg.redirect_to(bound.port());
    }
    let sockets: Vec<Sockets> = match https {
        None => http.into_iter().map(|http| Sockets { http, https: None }).collect(),
        Some(https) => {
            http.into_iter().zip(https).map(|(http, s)| Sockets { http, https: Some(s) }).collect()
        }
    };
    if let Some(first) = sockets.first() {
        dry_run(&cfg, first)?;
        match &cfg.affinity {
            Some(plan) => steer(plan, &cfg.placement, first),
            None if cfg.placement.starts_with("--") => info!("CPU placement off: {}", cfg.placement),
            None => info!("CPU placement off: {} (--cpu-affinity=on forces it)", cfg.placement),
        }
    }
    let mailboxes = match &cfg.affinity {
        Some(plan) if plan.steer => Some(sched::Mailboxes::new(&plan.cpus).map_err(StartError::Handoff)?),
        _ => None,
    };
    let pid_file = match &cfg.pid_file {
        Some(p) => {
            Some(PidFile::create(p, std::process::id()).map_err(|e| StartError::PidFile(p.clone(), e))?)
        }
        None => None,
    };
    info!("{line} root={} workers={}", cfg.root.display(), cfg.workers);
    let code = master::run(cfg, sockets, mailboxes);
    drop(pid_file);
    Ok(code)
}

/// The address the first socket got (the real port when `want` had 0).
fn first_addr(listeners: &[TcpListener], want: SocketAddr) -> Result<SocketAddr, StartError> {
    listeners.first().map_or(Ok(want), |l| l.local_addr()).map_err(|e| StartError::Bind(want, e))
}

/// Each connection is a descriptor, and each worker keeps up to about a
/// thousand files open in its cache, so the usual soft limit of 1024 would
/// cap a worker far below `--max-connections`. Raise the soft limit toward
/// the hard one (as nginx's worker_rlimit_nofile does); workers inherit it.
fn raise_fd_limit(max_connections: usize) {
    let want = (max_connections as u64).saturating_mul(2).saturating_add(2048);
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write `lim`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur >= want as libc::rlim_t {
            return;
        }
        lim.rlim_cur = (want as libc::rlim_t).min(lim.rlim_max);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            log::warn!("cannot raise the descriptor limit: {}", io::Error::last_os_error());
        }
    }
}

fn init_logger(level: log::LevelFilter) {
    let color =
        if io::stderr().is_terminal() { simplelog::ColorChoice::Auto } else { simplelog::ColorChoice::Never };
    // Fails only if a logger is already set, which nothing else does.
    let _ = simplelog::TermLogger::init(
        level,
        simplelog::Config::default(),
        simplelog::TerminalMode::Stderr,
        color,
    );
}

/// One SO_REUSEPORT socket per worker, all on one port. The kernel spreads
/// new connections over them evenly, and since the master holds them all,
/// a dead worker's queued connections wait for its replacement. A port
/// another server holds is refused (see `oserver_core::bind_listeners`).
fn bind_listeners(addr: SocketAddr, workers: usize) -> Result<Vec<TcpListener>, StartError> {
    oserver_core::bind_listeners(addr, workers).map_err(|e| StartError::Bind(addr, e))
}

/// CPU placement (`--cpu-affinity`, on or decided so for the reason `why`):
/// attach the program that sends each connection to the worker on its CPU,
/// to the plain and the HTTPS group. Without it the workers are still
/// pinned and the kernel's hash spreads connections, so a failure is worth
/// a warning only.
fn steer(plan: &sched::Plan, why: &str, first: &Sockets) {
    if !plan.steer {
        let cpus: std::collections::BTreeSet<_> = plan.cpus.iter().collect();
        log::warn!(
            "--cpu-affinity: {} workers share {} CPUs; connections are spread by hash, not by CPU",
            plan.cpus.len(),
            cpus.len()
        );
        return;
    }
    let mut groups = std::iter::once(&first.http).chain(&first.https);
    match groups.try_for_each(|l| sched::steer(l, &plan.cpus)) {
        Ok(()) => info!(
            "CPU placement on ({why}): workers pinned to CPUs {:?}; connections steered to the worker on their CPU \
             (--cpu-affinity=off turns it off)",
            plan.cpus
        ),
        Err(e) => {
            log::warn!("--cpu-affinity: cannot steer connections by CPU ({e}); workers are pinned only")
        }
    }
}

/// Build (but do not run) a server once in the master, so that whatever
/// the core rejects (a root it cannot open, an access log it cannot
/// create, a setting out of range) fails here, once, with exit code 2,
/// instead of in every worker after the fork. `build` starts no threads,
/// so the master stays single-threaded for its forks.
fn dry_run(cfg: &Config, sockets: &Sockets) -> Result<(), StartError> {
    let s = sockets.try_clone().map_err(|e| StartError::Bind(cfg.addr, e))?;
    cfg.server_builder(s).build().map(drop).map_err(StartError::Server)
}
