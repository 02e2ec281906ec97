//! The master process: forks the workers, then only supervises them.
//!
//! The master owns one listening socket per worker slot and port
//! (SO_REUSEPORT, one group for plain HTTP and one for HTTPS). A worker
//! inherits its slot's sockets; when it dies they stay open in the master,
//! so connections the kernel already queued on them wait for the
//! replacement instead of being reset.
//!
//! Signals stay blocked and are taken with `sigtimedwait`, so the loop
//! below is the only place anything happens; it wakes at least every
//! [`TICK`] for delayed respawns and kill deadlines.
//!
//! | signal          | master                                    | worker                  |
//! |-----------------|-------------------------------------------|-------------------------|
//! | SIGCHLD         | reap; respawn unexpected exits            | -                       |
//! | SIGTERM, SIGINT | SIGTERM to workers, wait, exit 0          | graceful drain, exit    |
//! | SIGQUIT         | SIGKILL to workers, reap, exit 0          | exit at once            |
//! | SIGHUP          | fork a new generation, SIGTERM the old    | ignored                 |
//! | SIGUSR1         | forward to workers                        | reopen the access log   |

use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use libc::{c_int, pid_t};
use log::{debug, error, info, warn};

use crate::config::Config;
use crate::sched::Mailboxes;
use crate::signals::{self, SigSet};
use crate::sockets::Sockets;
use crate::worker;

/// Longest sleep of the supervision loop: bounds how late a delayed
/// respawn or a backstop kill can be, at five cheap wake-ups a second.
const TICK: Duration = Duration::from_millis(200);
/// A worker that dies sooner than this after its start is probably failing
/// at startup; respawning it at once would be a fork loop.
const EARLY_DEATH: Duration = Duration::from_secs(1);
/// A worker that lived this long was healthy: its slot's delay is reset.
const STABLE: Duration = Duration::from_secs(10);
/// First respawn delay after an early death; doubles each time.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Cap of the respawn delay: a broken slot is retried every 5 s, slow
/// enough not to flood the log, fast enough to recover soon after a fix.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// Workers bound their drain by `--shutdown-timeout`; the master SIGKILLs
/// a worker that is still there this much later (a worker stuck in a
/// syscall or a bug must not keep the master from exiting).
const KILL_GRACE: Duration = Duration::from_secs(2);

/// Fork one worker per listener and supervise them until a stop signal.
/// Returns the master's exit code: 0 after a requested stop, 1 when the
/// workers could not be started.
pub fn run(cfg: Config, listeners: Vec<Sockets>, mailboxes: Option<Mailboxes>) -> u8 {
    let mut m = Master::new(cfg, listeners, mailboxes);
    for slot in 0..m.slots.len() {
        if let Err(e) = m.spawn(slot, true) {
            error!("cannot fork worker {slot}: {e}");
            m.begin_stop(1);
            return m.supervise();
        }
    }
    info!("workers started: {:?}", m.slot_pids());
    m.supervise()
}

struct Master {
    /// Its certificates are read again on SIGHUP.
    cfg: Config,
    /// One per slot; every worker inherits them all and closes the others.
    listeners: Vec<Sockets>,
    /// `--cpu-affinity`: the workers' handoff inboxes, held like the listeners.
    mailboxes: Option<Mailboxes>,
    slots: Vec<Slot>,
    /// Old workers told to drain (after SIGHUP); their exit is expected.
    retiring: Vec<Retiring>,
    state: State,
    pid: pid_t,
}

#[derive(Default)]
struct Slot {
    worker: Option<Worker>,
    /// Wait before the next respawn of this slot (grows on early deaths).
    delay: Duration,
    /// When the slot is empty: when to fork its next worker.
    respawn_at: Option<Instant>,
}

struct Worker {
    pid: pid_t,
    started: Instant,
    /// Forked at startup: its failing to build the server means the
    /// configuration is unusable, and the master gives up.
    initial: bool,
}

struct Retiring {
    pid: pid_t,
    kill_at: Instant,
    killed: bool,
}

#[derive(Clone, Copy)]
enum State {
    Running,
    /// Waiting for every worker to exit; SIGKILL them at `kill_at`.
    Stopping {
        kill_at: Instant,
        killed: bool,
        code: u8,
    },
}

impl Master {
    fn new(cfg: Config, listeners: Vec<Sockets>, mailboxes: Option<Mailboxes>) -> Master {
        Master {
            cfg,
            mailboxes,
            slots: listeners.iter().map(|_| Slot::default()).collect(),
            listeners,
            retiring: Vec::new(),
            state: State::Running,
            // SAFETY: plain syscall.
            pid: unsafe { libc::getpid() },
        }
    }

    /// Fork a worker into `slot`. The child never returns from here.
    fn spawn(&mut self, slot: usize, initial: bool) -> io::Result<pid_t> {
        // SAFETY: the master never starts a thread, so the child is a full
        // copy of a single-threaded process and may run any code.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            let listeners = std::mem::take(&mut self.listeners);
            let mailboxes = self.mailboxes.take();
            let (cfg, master) = (&self.cfg, self.pid);
            let code = panic::catch_unwind(AssertUnwindSafe(|| {
                worker::run(cfg, listeners, mailboxes, slot, master)
            }))
            .unwrap_or(worker::EXIT_PANIC);
            // SAFETY: ends the child without unwinding into master code or
            // running the master's destructors (pid file, ...).
            unsafe { libc::_exit(code) }
        }
        let s = &mut self.slots[slot];
        s.worker = Some(Worker { pid, started: Instant::now(), initial });
        s.respawn_at = None;
        Ok(pid)
    }

    fn slot_pids(&self) -> Vec<pid_t> {
        self.slots.iter().filter_map(|s| s.worker.as_ref().map(|w| w.pid)).collect()
    }

    /// Every worker not reaped yet, current and retiring: the only pids it
    /// is safe to signal (an unreaped child's pid cannot be reused).
    fn live(&self) -> Vec<pid_t> {
        let mut pids = self.slot_pids();
        pids.extend(self.retiring.iter().map(|r| r.pid));
        pids
    }

    fn signal_all(&self, sig: c_int) {
        for pid in self.live() {
            signals::send(pid, sig);
        }
    }

    fn supervise(&mut self) -> u8 {
        let set = SigSet::of(&signals::MASTER);
        loop {
            if let State::Stopping { code, .. } = self.state {
                if self.live().is_empty() {
                    return code;
                }
            }
            let now = Instant::now();
            let timeout = self.next_deadline().map_or(TICK, |d| d.saturating_duration_since(now).min(TICK));
            match set.wait_timeout(timeout) {
                Ok(Some(sig)) => self.on_signal(sig),
                Ok(None) => {}
                Err(e) => {
                    // Cannot happen with a valid set; without signals the
                    // master cannot supervise, so leave no worker behind.
                    error!("waiting for signals failed: {e}; killing workers");
                    self.signal_all(libc::SIGKILL);
                    self.reap_blocking();
                    return 1;
                }
            }
            // Reap after every wake-up, not only on SIGCHLD: several exits
            // can share one pending SIGCHLD.
            self.reap();
            self.respawn_due();
            self.enforce_kill_deadlines();
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let respawns = self.slots.iter().filter_map(|s| s.respawn_at);
        let kills = self.retiring.iter().filter(|r| !r.killed).map(|r| r.kill_at);
        let stop = match self.state {
            State::Stopping { kill_at, killed: false, .. } => Some(kill_at),
            _ => None,
        };
        respawns.chain(kills).chain(stop).min()
    }

    fn on_signal(&mut self, sig: c_int) {
        let name = signals::name(sig);
        match (sig, self.state) {
            (libc::SIGCHLD, _) => {}
            (libc::SIGTERM | libc::SIGINT, State::Running) => {
                info!(
                    "{name}: stopping gracefully (at most {}s)",
                    self.cfg.settings.shutdown_timeout.as_secs()
                );
                self.begin_stop(0);
            }
            (libc::SIGTERM | libc::SIGINT, State::Stopping { .. }) => {
                info!("{name}: already stopping (SIGQUIT stops at once)");
            }
            (libc::SIGQUIT, state) => {
                info!("{name}: stopping now");
                self.signal_all(libc::SIGKILL);
                let code = match state {
                    State::Stopping { code, .. } => code,
                    State::Running => 0,
                };
                self.state = State::Stopping { kill_at: Instant::now(), killed: true, code };
            }
            (libc::SIGHUP, State::Running) => self.restart(),
            (libc::SIGUSR1, _) => {
                info!("{name}: workers reopen the access log");
                self.signal_all(libc::SIGUSR1);
            }
            _ => debug!("{name} ignored while stopping"),
        }
    }

    /// Graceful stop: workers drain (bounded by --shutdown-timeout), the
    /// master waits for all of them, SIGKILLing stragglers as a backstop.
    fn begin_stop(&mut self, code: u8) {
        self.state = State::Stopping {
            kill_at: Instant::now() + self.cfg.settings.shutdown_timeout + KILL_GRACE,
            killed: false,
            code,
        };
        self.signal_all(libc::SIGTERM);
    }

    /// SIGHUP: a new generation first, on the same sockets, so no moment
    /// is without a worker accepting; then the old one drains.
    fn restart(&mut self) {
        // New workers serve the certificate files as they are now (renewed,
        // say); if they cannot be used, the workers there are keep serving.
        match self.cfg.reload_tls() {
            Ok(Some(https)) => {
                for w in &https.warnings {
                    log::warn!("SIGHUP: {w}");
                }
                for c in &https.certs {
                    info!("SIGHUP: https certificate {c}");
                }
            }
            Ok(None) => {}
            Err(e) => {
                error!("SIGHUP: certificates not reloaded, the current workers keep serving: {e}");
                return;
            }
        }
        let old = self.slot_pids();
        let mut new = Vec::with_capacity(self.slots.len());
        for slot in 0..self.slots.len() {
            self.slots[slot].worker = None;
            match self.spawn(slot, false) {
                Ok(pid) => new.push(pid),
                Err(e) => {
                    error!("cannot fork worker {slot}: {e}");
                    self.schedule_respawn(slot, Duration::ZERO);
                }
            }
        }
        let kill_at = Instant::now() + self.cfg.settings.shutdown_timeout + KILL_GRACE;
        for &pid in &old {
            signals::send(pid, libc::SIGTERM);
            self.retiring.push(Retiring { pid, kill_at, killed: false });
        }
        info!("SIGHUP: graceful restart: new workers {new:?}, old workers {old:?} draining");
    }

    /// Reap every exited child without blocking.
    fn reap(&mut self) {
        loop {
            let mut status: c_int = 0;
            // SAFETY: plain syscall with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid > 0 {
                self.on_exit(pid, status);
            } else if pid == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                // 0: children left but none exited; ECHILD: none left.
                return;
            }
        }
    }

    /// Wait for every child (after SIGKILL), for the error exit paths.
    fn reap_blocking(&mut self) {
        loop {
            let mut status: c_int = 0;
            // SAFETY: plain syscall with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid > 0 {
                self.on_exit(pid, status);
            } else if io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }

    fn on_exit(&mut self, pid: pid_t, status: c_int) {
        let how = describe(status);
        if let Some(i) = self.retiring.iter().position(|r| r.pid == pid) {
            self.retiring.swap_remove(i);
            info!("old worker {pid} {how}");
            return;
        }
        let found = self.slots.iter_mut().enumerate().find_map(|(i, s)| match &s.worker {
            Some(w) if w.pid == pid => s.worker.take().map(|w| (i, w)),
            _ => None,
        });
        let Some((slot, w)) = found else {
            debug!("unknown child {pid} {how}");
            return;
        };
        if let State::Stopping { .. } = self.state {
            info!("worker {pid} {how}");
            return;
        }
        let lived = w.started.elapsed();
        let setup_failed = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == worker::EXIT_SETUP;
        if w.initial && setup_failed {
            error!("worker {pid} could not start; stopping");
            self.begin_stop(1);
            return;
        }
        let delay = next_delay(self.slots[slot].delay, lived);
        let when = if delay.is_zero() { String::new() } else { format!(" in {delay:?}") };
        warn!("worker {pid} {how} after {lived:.1?}; respawning{when}");
        self.schedule_respawn(slot, delay);
    }

    fn schedule_respawn(&mut self, slot: usize, delay: Duration) {
        let s = &mut self.slots[slot];
        s.delay = delay;
        s.respawn_at = Some(Instant::now() + delay);
    }

    fn respawn_due(&mut self) {
        if !matches!(self.state, State::Running) {
            return;
        }
        let now = Instant::now();
        for slot in 0..self.slots.len() {
            let s = &self.slots[slot];
            if s.worker.is_some() || s.respawn_at.map_or(true, |t| t > now) {
                continue;
            }
            match self.spawn(slot, false) {
                Ok(pid) => info!("worker {pid} started in slot {slot}"),
                Err(e) => {
                    error!("cannot fork worker {slot}: {e}");
                    let delay = next_delay(self.slots[slot].delay, Duration::ZERO);
                    self.schedule_respawn(slot, delay);
                }
            }
        }
    }

    fn enforce_kill_deadlines(&mut self) {
        let now = Instant::now();
        for r in self.retiring.iter_mut().filter(|r| !r.killed) {
            if now >= r.kill_at {
                warn!("old worker {} did not drain in time; killing it", r.pid);
                signals::send(r.pid, libc::SIGKILL);
                r.killed = true;
            }
        }
        if let State::Stopping { kill_at, killed: false, code } = self.state {
            if now >= kill_at {
                warn!("workers {:?} did not stop in time; killing them", self.live());
                self.signal_all(libc::SIGKILL);
                self.state = State::Stopping { kill_at, killed: true, code };
            }
        }
    }
}

/// The wait before respawning a slot whose worker lived `lived`, given the
/// slot's previous wait: none after a healthy run, doubling from
/// [`FIRST_DELAY`] to [`MAX_DELAY`] while workers keep dying at startup.
fn next_delay(prev: Duration, lived: Duration) -> Duration {
    if lived >= STABLE {
        Duration::ZERO
    } else if lived < EARLY_DEATH {
        (prev * 2).clamp(FIRST_DELAY, MAX_DELAY)
    } else {
        prev
    }
}

/// A wait status as a log phrase: "exited with status 1", "was killed by
/// signal 9 (SIGKILL)".
fn describe(status: c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exited with status {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        let core = if libc::WCOREDUMP(status) { ", core dumped" } else { "" };
        format!("was killed by signal {sig} ({}{core})", signals::name(sig))
    } else {
        format!("changed state (wait status {status:#x})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn respawn_delay() {
        // (previous delay, lived, next delay)
        let table = [
            (ms(0), ms(60_000), ms(0)),    // healthy worker crashed: at once
            (ms(5000), ms(10_000), ms(0)), // lived long enough: reset
            (ms(0), ms(5), ms(100)),       // died at startup: start backing off
            (ms(100), ms(5), ms(200)),     // again: double
            (ms(1600), ms(5), ms(3200)),   //
            (ms(3200), ms(5), ms(5000)),   // capped
            (ms(5000), ms(5), ms(5000)),   //
            (ms(0), ms(3000), ms(0)),      // between: keep the delay
            (ms(800), ms(3000), ms(800)),  //
            (ms(0), ms(999), ms(100)),     // just under EARLY_DEATH
            (ms(0), ms(1000), ms(0)),      // just at it
        ];
        for (prev, lived, want) in table {
            assert_eq!(next_delay(prev, lived), want, "prev {prev:?} lived {lived:?}");
        }
    }

    #[test]
    fn wait_status_phrases() {
        // Encoded as the kernel does: exit code in bits 8..16, signal in
        // bits 0..7, 0x80 for a core dump.
        let table = [
            (0, "exited with status 0"),
            (3 << 8, "exited with status 3"),
            (9, "was killed by signal 9 (SIGKILL)"),
            (11 | 0x80, "was killed by signal 11 (SIGSEGV, core dumped)"),
            (0x137f, "changed state (wait status 0x137f)"), // stopped by SIGSTOP
        ];
        for (status, want) in table {
            assert_eq!(describe(status), want);
        }
    }
}
