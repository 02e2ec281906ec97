//! A worker process: what a forked child runs. It serves its slot's
//! listening sockets (plain HTTP, and HTTPS when configured) with one
//! oserver-core event loop, which also reads the worker's signals from a
//! `signalfd` and turns them into calls on the server's `ShutdownHandle`.
//! So a worker is one thread: a second one (a signal thread, say) would
//! share the file table, and then every socket call takes and drops a
//! reference on its file (2.4% of a worker's CPU with 5,000 connections,
//! 1.3% with 100, measured with `benches/load.sh`).

use std::io::Write;

use log::{debug, error, info, warn};
use oserver_core::ShutdownHandle;

use crate::config::Config;
use crate::sched::{self, Mailboxes};
use crate::signals::{self, SigSet, SignalFd};
use crate::sockets::Sockets;

/// Exit code: the worker ran and stopped (signal, drain finished).
pub const EXIT_OK: i32 = 0;
/// Exit code: the event loop failed while serving.
pub const EXIT_RUNTIME: i32 = 1;
/// Exit code: the server could not be built (root, access log, setting).
/// The master treats it as fatal for the first workers, because no respawn
/// can fix a configuration error.
pub const EXIT_SETUP: i32 = 3;
/// Exit code: the worker panicked (debug builds; release builds abort).
pub const EXIT_PANIC: i32 = 101;

/// Run a worker. `listeners` are all the master's sockets (inherited by
/// fork); the worker keeps `listeners[slot]` and closes the rest so a dead
/// slot's sockets are held only by the master and its replacement.
///
/// Returns the exit code; the caller `_exit`s with it and never returns
/// into master code.
pub fn run(
    cfg: &Config,
    listeners: Vec<Sockets>,
    mailboxes: Option<Mailboxes>,
    slot: usize,
    master: libc::pid_t,
) -> i32 {
    // If the master dies, even by SIGKILL, the kernel sends us SIGTERM and
    // we drain and exit. The master may have died before prctl took
    // effect: then we are already reparented and must leave on our own.
    // SAFETY: plain syscalls.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if libc::getppid() != master {
            return EXIT_OK;
        }
    }
    // `nth` drops the sockets before `slot`, the iterator the ones after.
    let Some(sockets) = listeners.into_iter().nth(slot) else {
        error!("worker slot {slot} has no listener");
        return EXIT_SETUP;
    };
    // The master blocked SIGCHLD for sigtimedwait; a worker has no use for
    // the block and libraries that spawn helpers expect it unblocked. The
    // other signals stay blocked and wait in the signalfd below, which the
    // event loop reads.
    if let Err(e) = SigSet::of(&[libc::SIGCHLD]).unblock() {
        error!("worker: cannot unblock SIGCHLD: {e}");
    }
    let pid = std::process::id();
    if let Some(cpu) = cfg.affinity.as_ref().and_then(|p| p.cpu(slot)) {
        match sched::pin(cpu) {
            Ok(()) => debug!("worker {pid} pinned to CPU {cpu}"),
            Err(e) => warn!("worker {pid}: cannot pin to CPU {cpu}: {e}"),
        }
    }
    if cfg.sched_batch {
        if let Err(e) = sched::batch() {
            warn!("worker {pid}: cannot switch to SCHED_BATCH: {e}");
        }
    }

    let mut builder = cfg.server_builder(sockets);
    if let Some(m) = mailboxes {
        match m.into_handoff(slot) {
            Ok(h) => builder = builder.handoff(h),
            Err(e) => warn!("worker {pid}: no connection handoff: {e}"),
        }
    }
    let mut server = match builder.build() {
        Ok(s) => s,
        Err(e) => {
            error!("worker {pid}: {e}");
            return EXIT_SETUP;
        }
    };
    let handle = server.handle();
    let watched = SignalFd::new(&SigSet::of(&signals::WORKER))
        .map_err(oserver_core::Error::Io)
        .and_then(|fd| server.watch(fd, move |fd| on_signals(fd, &handle)));
    if let Err(e) = watched {
        error!("worker {pid}: cannot take signals through a signalfd: {e}");
        return EXIT_SETUP;
    }
    debug!("worker {pid} serving slot {slot}");

    let code = match server.run() {
        Ok(stats) => {
            info!(
                "worker {pid} stopped: {} requests, {} connections ({} handed to other workers, {} taken), \
                 {} writes gathered into {} sends, {} reads made ahead in {} submissions",
                stats.requests,
                stats.connections,
                stats.handed_off,
                stats.taken,
                stats.gathered_writes,
                stats.gathered_sends,
                stats.reads_ahead,
                stats.read_submissions
            );
            EXIT_OK
        }
        Err(e) => {
            error!("worker {pid}: {e}");
            EXIT_RUNTIME
        }
    };
    // `_exit` skips std's flush of the stdout buffer (`--access-log -`).
    let _ = std::io::stdout().flush();
    code
}

/// Turn the pending signals into server actions; the event loop calls this
/// each time the signalfd becomes readable, until the worker stops.
fn on_signals(fd: &mut SignalFd, handle: &ShutdownHandle) {
    loop {
        match fd.take() {
            Ok(Some(libc::SIGTERM | libc::SIGINT)) => handle.shutdown(),
            Ok(Some(libc::SIGUSR1)) => handle.reopen_logs(),
            // Immediate stop: connections are cut, nothing is drained.
            // SAFETY: ends the process without running anything else.
            Ok(Some(libc::SIGQUIT)) => unsafe { libc::_exit(EXIT_OK) },
            // SIGHUP is the master's business (a terminal hangup reaches the
            // whole process group); the master replaces us with SIGTERM.
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(e) => {
                error!("worker: reading signals failed: {e}");
                return;
            }
        }
    }
}
