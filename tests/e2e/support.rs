//! Test support: start the real `oserver` binary and watch its processes.
//! Talking to it (raw requests, the kept-open client, response parsing) is
//! in `tests/support/net.rs`, shared with the in-process library suite and
//! re-exported here.
//!
//! Every server runs in its own process group and the whole group is killed
//! with SIGKILL when the [`Oserver`] is dropped, so a failing test never
//! leaves workers behind.
// Not every test file uses every helper.
#![allow(dead_code)]

#[path = "../support/net.rs"]
mod net;

pub use net::*;

use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How long a server may take to print its `listening on` line. Generous
/// because the machine is shared and tests start servers in parallel.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `oserver` (master and its workers), killed on drop.
pub struct Oserver {
    /// The port it listens on (read from its `listening on` line).
    pub port: u16,
    /// The master process.
    pub child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
    stdout: Arc<Mutex<Vec<u8>>>,
}

/// How long the stderr reader may take to see the pipe close once the
/// whole process group is dead: the kernel closes it as the last holder
/// exits, so this is only slack for a loaded machine.
const PIPE_CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Flags `start_in` passes unless `extra_args` sets them itself: a repeated
/// flag is then never the test's problem, whatever the parser does with
/// repetitions.
const DEFAULTS: &[(&str, &str, &str)] =
    &[("-p", "--port", "0"), ("-w", "--workers", "1"), ("--log-level", "--log-level", "info")];

fn overrides(extra: &[&str], short: &str, long: &str) -> bool {
    extra.iter().any(|a| {
        *a == short
            || *a == long
            || a.starts_with(&format!("{long}="))
            || (short.len() == 2 && short != long && a.starts_with(short) && a.len() > 2)
    })
}

impl Oserver {
    /// Start `oserver -r <repo root> -p 0 -w 1 --log-level info` plus
    /// `extra_args`, and wait (at most 10 s, else panic) for it to listen.
    pub fn start(extra_args: &[&str]) -> Oserver {
        Oserver::start_in(&repo_root(), extra_args)
    }

    /// Like [`Oserver::start`] with another document root.
    pub fn start_in(root: &Path, extra_args: &[&str]) -> Oserver {
        Oserver::spawn(Oserver::command(root, extra_args))
    }

    /// Like [`Oserver::start_in`], with the descriptor limit (soft and hard)
    /// of the server's processes set to `limit` before it runs.
    pub fn start_with_fd_limit(root: &Path, extra_args: &[&str], limit: u64) -> Oserver {
        let mut cmd = Oserver::command(root, extra_args);
        // SAFETY: setrlimit is async-signal-safe, as pre_exec requires.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit { rlim_cur: limit as libc::rlim_t, rlim_max: limit as libc::rlim_t };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        Oserver::spawn(cmd)
    }

    fn command(root: &Path, extra_args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oserver"));
        if !overrides(extra_args, "-r", "--root") {
            cmd.arg("-r").arg(root);
        }
        for (short, long, value) in DEFAULTS {
            if !overrides(extra_args, short, long) {
                cmd.args([*long, *value]);
            }
        }
        cmd.args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        cmd
    }

    fn spawn(mut cmd: Command) -> Oserver {
        let mut child =
            cmd.spawn().unwrap_or_else(|e| panic!("spawn {}: {e}", env!("CARGO_BIN_EXE_oserver")));

        let stderr = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<SocketAddr>();
        let stderr_reader = child.stderr.take().map(|pipe| {
            let buf = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = Vec::new();
                let mut tx = Some(tx);
                loop {
                    line.clear();
                    match reader.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    let text = String::from_utf8_lossy(&line).into_owned();
                    // Kept before the start is reported, so the caller can
                    // read the line (its https:// address) at once.
                    lock(&buf).push_str(&text);
                    if let Some(addr) = listening_addr(&text) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                }
            })
        });
        if let Some(mut pipe) = child.stdout.take() {
            let buf = Arc::clone(&stdout);
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    lock(&buf).extend_from_slice(&chunk[..n]);
                }
            });
        }

        let addr = match rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let pid = child.id();
                // The pipe closing first usually means it exited: say how.
                let mut exited = None;
                wait_until(Duration::from_millis(500), || {
                    exited = child.try_wait().ok().flatten();
                    exited.is_some()
                });
                kill_group(pid);
                let _ = child.wait();
                // The group is gone, so the pipe closes: the reader ends
                // once it has collected the last lines.
                if let Some(reader) = &stderr_reader {
                    wait_until(PIPE_CLOSE_TIMEOUT, || reader.is_finished());
                }
                panic!(
                    "oserver did not print `listening on http://...` (timeout {START_TIMEOUT:?}, \
                     exit status {exited:?}); stderr:\n{}",
                    lock(&stderr)
                );
            }
        };
        Oserver { port: addr.port(), child, addr, stderr, stdout }
    }

    /// The address to connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The HTTPS address named in the `listening on` line (`--https-port`);
    /// panics when the line names none.
    pub fn https_addr(&self) -> SocketAddr {
        let text = self.stderr_text();
        let line = text.lines().find(|l| l.contains("listening on http://")).unwrap_or("");
        let after = line.find(" https://").map(|i| &line[i + " https://".len()..]);
        let hostport = after.and_then(|rest| rest.find('/').map(|end| &rest[..end]));
        hostport
            .and_then(|hp| hp.parse().ok())
            .unwrap_or_else(|| panic!("no https:// address in the start-up line; stderr:\n{text}"))
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stderr so far.
    pub fn stderr_text(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Everything written to stdout so far (the access log with `--access-log -`).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.stdout)).into_owned()
    }

    /// Wait until stderr contains `needle` (true) or `timeout` passes (false).
    pub fn wait_stderr(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.stderr_text().contains(needle))
    }

    /// Live children of the master (from `/proc/*/stat`), sorted.
    pub fn worker_pids(&self) -> Vec<u32> {
        children_of(self.pid())
    }

    /// Wait until the master has `n` live children; returns them (panics
    /// after `timeout` with what was seen).
    pub fn wait_workers(&self, n: usize, timeout: Duration) -> Vec<u32> {
        let mut seen = Vec::new();
        let ok = wait_until(timeout, || {
            seen = self.worker_pids();
            seen.len() == n
        });
        assert!(ok, "expected {n} workers, saw {seen:?}; stderr:\n{}", self.stderr_text());
        seen
    }

    /// Send a signal to the master.
    pub fn signal(&self, sig: i32) {
        signal(self.pid(), sig);
    }

    /// Wait (reaping) for the master to exit; `None` if still running after
    /// `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_child(&mut self.child, timeout)
    }
}

impl Drop for Oserver {
    fn drop(&mut self) {
        // The group we created at spawn (pgid == master pid): it also
        // reaches orphaned workers.
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

/// Send `sig` to process `pid` (panics if `kill` fails).
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: plain syscall.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", io::Error::last_os_error());
}

/// SIGKILL every process of group `pgid`, ignoring errors (it may be gone).
fn kill_group(pgid: u32) {
    // SAFETY: plain syscall on a group one of our helpers created.
    unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) };
}

/// Wait (reaping) for `child` to exit; `None` if still running after
/// `timeout`.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let mut status = None;
    wait_until(timeout, || {
        status = child.try_wait().unwrap_or_else(|e| panic!("wait for pid {}: {e}", child.id()));
        status.is_some()
    });
    status
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `listening on http://HOST:PORT/` -> the socket address.
fn listening_addr(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("listening on http://")? + "listening on http://".len()..];
    let hostport = &rest[..rest.find('/')?];
    hostport.parse().ok()
}

/// `(ppid, pgrp, state)` of a process from `/proc/<pid>/stat`.
fn proc_stat(pid: u32) -> Option<(u32, u32, char)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((ppid, pgrp, state))
}

fn all_pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Live (not zombie) children of `ppid`, sorted.
pub fn children_of(ppid: u32) -> Vec<u32> {
    let mut v: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&p| matches!(proc_stat(p), Some((pp, _, st)) if pp == ppid && st != 'Z'))
        .collect();
    v.sort_unstable();
    v
}

/// Live (not zombie) members of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&p| matches!(proc_stat(p), Some((_, g, st)) if g == pgid && st != 'Z'))
        .collect()
}

/// The state letter of a process (R, S, T, Z, ...), None if it is gone.
pub fn proc_state(pid: u32) -> Option<char> {
    proc_stat(pid).map(|(_, _, state)| state)
}

/// The process exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(st) if st != 'Z')
}

/// Whether any process, zombies included, is left in process group `pgid`
/// (stricter than an empty [`group_members`], which skips zombies).
pub fn group_exists(pgid: u32) -> bool {
    // SAFETY: signal 0 only checks existence and permission.
    let rc = unsafe { libc::kill(-(pgid as libc::pid_t), 0) };
    !(rc == -1 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH))
}

/// Inodes of the sockets a process holds (from `/proc/<pid>/fd`).
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let link = fs::read_link(e.ok()?.path()).ok()?;
        link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
    })
    .collect()
}

/// The listening TCP sockets a process holds.
pub fn listeners_of(pid: u32) -> Vec<TcpSocket> {
    let held = socket_inodes(pid);
    tcp_sockets().into_iter().filter(|t| t.state == tcp_state::LISTEN && held.contains(&t.inode)).collect()
}

/// How many sockets other than listening TCP ones a process holds: its
/// connections, including those the peer reset and it has not closed yet
/// (which have left the kernel's tables but not its descriptors).
pub fn held_connections(pid: u32) -> usize {
    let listening: Vec<u64> =
        tcp_sockets().iter().filter(|t| t.state == tcp_state::LISTEN).map(|t| t.inode).collect();
    socket_inodes(pid).iter().filter(|i| !listening.contains(i)).count()
}

/// Number of open descriptors of a process.
pub fn fd_count(pid: u32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}")).count()
}

/// Run `oserver` with exactly `args` (no defaults) in its own process
/// group, expecting it to exit by itself within `timeout`. Returns the exit
/// status (None if it had to be killed), stderr, and whether any process of
/// its group was still alive right after the master exited (a forked worker).
pub fn run_to_exit(args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oserver"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn oserver: {e}"));
    let pid = child.id();
    let mut err = String::new();
    let reader = child.stderr.take().map(|mut pipe| {
        thread::spawn(move || {
            let mut s = Vec::new();
            let _ = pipe.read_to_end(&mut s);
            String::from_utf8_lossy(&s).into_owned()
        })
    });
    let status = wait_child(&mut child, timeout);
    let leftovers = !group_members(pid).is_empty();
    kill_group(pid);
    let _ = child.wait();
    if let Some(h) = reader {
        err = h.join().unwrap_or_default();
    }
    (status, err, leftovers)
}

/// Longest a client tool may run (curl, openssl s_client, nghttp).
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether `tool` runs here; if not, print why the calling test skips.
pub fn have(tool: &str, test: &str) -> bool {
    let probe = if tool == "openssl" { "version" } else { "--version" };
    let found = Command::new(tool).arg(probe).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok();
    if !found {
        eprintln!("skipped {test}: `{tool}` is not installed");
    }
    found
}

/// Run a command to its end, at most `TOOL_TIMEOUT` (then panic).
pub fn run(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(out) => out.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            // SAFETY: plain syscall on the child we spawned (not yet reaped:
            // the waiting thread is still in wait).
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{what} still running after {TOOL_TIMEOUT:?}");
        }
    }
}
