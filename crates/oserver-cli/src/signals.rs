//! Signals handled synchronously: they stay blocked and are taken with
//! `sigtimedwait` (the master) or read from a `signalfd` (a
//! worker's event loop), so no code runs in a signal handler and nothing
//! has to be async-signal-safe.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use libc::c_int;

/// What the master waits for.
pub const MASTER: [c_int; 6] =
    [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGUSR1];

/// What a worker takes through its signalfd (a worker has no children).
pub const WORKER: [c_int; 5] = [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGUSR1];

/// A set of signals.
#[derive(Clone, Copy)]
pub struct SigSet(libc::sigset_t);

impl SigSet {
    /// The set holding exactly `signals`.
    pub fn of(signals: &[c_int]) -> SigSet {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set; sigaddset only fails for
        // invalid signal numbers, and ours are libc constants.
        unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            for &s in signals {
                libc::sigaddset(set.as_mut_ptr(), s);
            }
            SigSet(set.assume_init())
        }
    }

    /// Block these signals in the calling thread (threads it creates and
    /// processes it forks inherit the mask).
    pub fn block(&self) -> io::Result<()> {
        self.mask(libc::SIG_BLOCK)
    }

    /// Unblock these signals in the calling thread.
    pub fn unblock(&self) -> io::Result<()> {
        self.mask(libc::SIG_UNBLOCK)
    }

    fn mask(&self, how: c_int) -> io::Result<()> {
        // SAFETY: valid set, no old mask requested.
        let rc = unsafe { libc::pthread_sigmask(how, &self.0, std::ptr::null_mut()) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// Wait at most `timeout` for one of these (blocked) signals; `None`
    /// when the time ran out or a stray signal interrupted the wait.
    pub fn wait_timeout(&self, timeout: Duration) -> io::Result<Option<c_int>> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(libc::time_t::MAX),
            // Below 10^9, so it fits a c_long everywhere.
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: valid set and timespec; the siginfo is not wanted.
        let sig = unsafe { libc::sigtimedwait(&self.0, std::ptr::null_mut(), &ts) };
        if sig >= 0 {
            return Ok(Some(sig));
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        }
    }
}

/// A non-blocking `signalfd` for a set of signals, which must stay blocked
/// in every thread: the signals wait in it until read, and it is readable
/// while one does.
pub struct SignalFd(OwnedFd);

impl SignalFd {
    /// A descriptor that takes `set`'s signals (close-on-exec).
    pub fn new(set: &SigSet) -> io::Result<SignalFd> {
        // SAFETY: valid set; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set.0, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nothing else owns.
        Ok(SignalFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The next pending signal, or `None` when there is none left.
    pub fn take(&self) -> io::Result<Option<c_int>> {
        let mut info = MaybeUninit::<libc::signalfd_siginfo>::uninit();
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: reads at most `size` bytes into `info`.
            let n = unsafe { libc::read(self.0.as_raw_fd(), info.as_mut_ptr().cast(), size) };
            if n == size as isize {
                // SAFETY: the kernel filled the whole record.
                let signo = unsafe { info.assume_init_ref() }.ssi_signo;
                return Ok(Some(signo as c_int));
            }
            if n >= 0 {
                // signalfd reads whole records only.
                return Err(io::Error::other(format!("signalfd read {n} bytes")));
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::WouldBlock => return Ok(None),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(e),
            }
        }
    }
}

impl AsRawFd for SignalFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// Send `sig` to `pid`. Errors are ignored: the only expected one is ESRCH
/// for a process that already exited, and callers only signal children they
/// have not reaped yet, so the pid cannot have been reused.
pub fn send(pid: libc::pid_t, sig: c_int) {
    // SAFETY: plain syscall.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The usual name of a signal, for log lines.
pub fn name(sig: c_int) -> &'static str {
    match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let table = [
            (libc::SIGKILL, "SIGKILL"),
            (libc::SIGTERM, "SIGTERM"),
            (libc::SIGSEGV, "SIGSEGV"),
            (libc::SIGHUP, "SIGHUP"),
            (libc::SIGRTMIN() + 1, "signal"),
        ];
        for (sig, want) in table {
            assert_eq!(name(sig), want);
        }
    }

    #[test]
    fn blocked_signal_is_taken_by_wait() {
        // Run on a fresh thread so the test harness's other threads keep
        // their masks; SIGUSR2 is not used by anything else in the tests.
        std::thread::spawn(|| {
            let set = SigSet::of(&[libc::SIGUSR2]);
            set.block().unwrap();
            assert_eq!(set.wait_timeout(Duration::from_millis(10)).unwrap(), None);
            // SAFETY: raise targets this thread, where SIGUSR2 is blocked.
            unsafe { libc::raise(libc::SIGUSR2) };
            assert_eq!(set.wait_timeout(Duration::from_secs(5)).unwrap(), Some(libc::SIGUSR2));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn signalfd_holds_blocked_signals_until_taken() {
        // Own thread and SIGUSR2, as above; raise targets the thread, and
        // a signalfd reads the signals pending for the thread that reads.
        std::thread::spawn(|| {
            let set = SigSet::of(&[libc::SIGUSR2]);
            set.block().unwrap();
            let fd = SignalFd::new(&set).unwrap();
            assert_eq!(fd.take().unwrap(), None, "nothing pending yet");
            // SAFETY: raise targets this thread, where SIGUSR2 is blocked.
            unsafe { libc::raise(libc::SIGUSR2) };
            assert_eq!(fd.take().unwrap(), Some(libc::SIGUSR2));
            assert_eq!(fd.take().unwrap(), None, "taken once");
        })
        .join()
        .unwrap();
    }
}
