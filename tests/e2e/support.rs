//! Test support: start the real `oserver` binary, talk raw bytes to it, parse
//! what comes back.
//!
//! Every server runs in its own process group and the whole group is killed
//! with SIGKILL when the [`Oserver`] is dropped, so a failing test never
//! leaves workers behind.
// Not every test file uses every helper.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to print its `listening on` line. Generous
/// because the machine is shared and tests start servers in parallel.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Default read timeout of the helpers that read "to EOF": long enough for a
/// loaded machine, short enough that a hung server fails the test quickly.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The CPUs this test process may use (its affinity mask), ascending.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set), 0);
        (0..libc::CPU_SETSIZE as usize).filter(|&c| libc::CPU_ISSET(c, &set)).collect()
    }
}

/// Pin the calling thread to `cpu`.
pub fn pin_this_thread(cpu: usize) {
    // SAFETY: as above; CPU_SET is given a CPU below CPU_SETSIZE or panics.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set), 0);
    }
}

/// The repository root: the document root of the default test server, so
/// fixtures are reached as `/httptest/...`.
pub fn repo_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    here.canonicalize().unwrap_or(here)
}

/// A fresh, empty directory under the system temp dir, unique per process,
/// call and instant. Callers that put big files there remove it themselves
/// (see [`Cleanup`], or [`scratch_dir`] for both at once).
pub fn temp_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("oserver-e2e-{tag}-{}-{n}-{nanos}", std::process::id()));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

/// Removes a directory tree when dropped (also when the test panics).
pub struct Cleanup(pub PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A fresh [`temp_dir`] and the guard that removes it: keep the guard alive
/// for as long as the directory is used.
pub fn scratch_dir(tag: &str) -> (PathBuf, Cleanup) {
    let dir = temp_dir(tag);
    (dir.clone(), Cleanup(dir))
}

/// Write `data` to `path`, creating its parent directories (panics with the
/// path on error).
pub fn write_file(path: &Path, data: impl AsRef<[u8]>) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Create a sparse file of `len` bytes, zero but for `marks` (offset,
/// bytes): only the pages holding a mark take disk space, so a file of
/// several GiB costs next to nothing.
pub fn sparse_file(path: &Path, len: u64, marks: &[(u64, &[u8])]) {
    let fail = |what: &str, e: io::Error| -> ! { panic!("{what} {}: {e}", path.display()) };
    let mut f = fs::File::create(path).unwrap_or_else(|e| fail("create", e));
    f.set_len(len).unwrap_or_else(|e| fail("set_len of", e));
    for &(offset, bytes) in marks {
        f.seek(SeekFrom::Start(offset)).unwrap_or_else(|e| fail("seek in", e));
        f.write_all(bytes).unwrap_or_else(|e| fail("write a mark into", e));
    }
}

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
        if let Some(pipe) = child.stderr.take() {
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
                    if let Some(addr) = listening_addr(&text) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr);
                        }
                    }
                    lock(&buf).push_str(&text);
                }
            });
        }
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
                // Give the reader thread a moment to collect the last lines.
                thread::sleep(Duration::from_millis(100));
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

/// Poll `cond` every 10 ms until it holds (true) or `timeout` passes (false).
/// The last poll may come up to one interval after the deadline, so the
/// interval is kept short.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
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

/// Connect with read and write timeouts of 5 s and TCP_NODELAY.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, READ_TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = s.set_read_timeout(Some(READ_TIMEOUT));
    let _ = s.set_write_timeout(Some(READ_TIMEOUT));
    let _ = s.set_nodelay(true);
    s
}

/// Send `bytes`, half-close the write side, read to EOF (5 s timeout).
/// Whatever arrived before an error or the timeout is returned.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    // A server may answer and close before reading everything: a failed write
    // is not the test's concern here, the response is.
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let (data, _) = read_to_end(&mut s, READ_TIMEOUT);
    data
}

/// How a read-to-the-end finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Orderly close (read returned 0).
    Eof,
    /// ECONNRESET (or EPIPE / ECONNABORTED).
    Reset,
    /// The deadline passed with the connection still open.
    Timeout,
    /// Any other error.
    Other(io::ErrorKind),
}

/// Read until EOF, an error, or `timeout` from now.
pub fn read_to_end(s: &mut TcpStream, timeout: Duration) -> (Vec<u8>, End) {
    let mut out = Vec::new();
    let end = read_into(s, &mut out, timeout, usize::MAX);
    (out, end)
}

/// Read into `out` until EOF, error, `timeout`, or `out` holds `limit` bytes
/// (then `End::Timeout` is returned too: the connection is still open).
fn read_into(s: &mut TcpStream, out: &mut Vec<u8>, timeout: Duration, limit: usize) -> End {
    let deadline = Instant::now() + timeout;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if out.len() >= limit {
            return End::Timeout;
        }
        let now = Instant::now();
        if now >= deadline {
            return End::Timeout;
        }
        let _ = s.set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))));
        match s.read(&mut chunk) {
            Ok(0) => return End::Eof,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) => match e.kind() {
                io::ErrorKind::Interrupted => {}
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return End::Timeout,
                io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => return End::Reset,
                k => return End::Other(k),
            },
        }
    }
}

/// One parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (by Content-Length; empty for HEAD).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of a header (name case-insensitive), in order.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The body as (lossy) text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Content-Length parsed, if present and numeric.
    pub fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// Whether the Connection header is `token` (case-insensitive), e.g.
    /// `close` or `keep-alive`.
    pub fn connection_is(&self, token: &str) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case(token))
    }
}

/// Parse the head of a response at the start of `bytes`: the response
/// without body and the head's length, or None if the head is incomplete.
/// Panics on something that is not an HTTP/1.x response head.
pub fn parse_head(bytes: &[u8]) -> Option<(Response, usize)> {
    let end = find(bytes, b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..end - 4]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    assert!(version == "HTTP/1.1" || version == "HTTP/1.0", "not a status line: {status_line:?}");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {status_line:?}"));
    let reason = parts.next().unwrap_or_default().to_string();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or_else(|| panic!("bad header line {l:?} in\n{head}"));
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    Some((Response { status, reason, headers, body: Vec::new() }, end))
}

/// Parse one complete response at the start of `bytes`; returns it and the
/// bytes it used, or None if incomplete. The body is framed by
/// Content-Length (absent = empty); `head_only` (HEAD) means no body.
pub fn parse_one(bytes: &[u8], head_only: bool) -> Option<(Response, usize)> {
    let (mut resp, head_len) = parse_head(bytes)?;
    let len = if head_only { 0 } else { resp.content_length().unwrap_or(0) as usize };
    let body = bytes.get(head_len..head_len.checked_add(len)?)?;
    resp.body = body.to_vec();
    Some((resp, head_len + len))
}

/// Parse as many complete pipelined responses as `bytes` holds.
pub fn parse_responses(bytes: &[u8], head_only: bool) -> Vec<Response> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match parse_one(&bytes[at..], head_only) {
            Some((r, used)) => {
                out.push(r);
                at += used;
            }
            None => break,
        }
    }
    out
}

/// `GET path HTTP/1.1` with Host and `Connection: close`; the response
/// (panics if none came back).
pub fn get(addr: SocketAddr, path: &str) -> Response {
    let bytes = raw(addr, &request("GET", path, &["Connection: close"]));
    parse_one(&bytes, false)
        .unwrap_or_else(|| {
            panic!("no complete response to GET {path}; got {:?}", String::from_utf8_lossy(&bytes))
        })
        .0
}

/// The first complete response in `bytes` (panics with the bytes if none).
pub fn first_response(bytes: &[u8]) -> Response {
    parse_one(bytes, false)
        .unwrap_or_else(|| {
            panic!("no complete response in {:?}", String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]))
        })
        .0
}

/// Byte-string search.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A kept-open connection that reads responses one at a time, keeping
/// whatever arrives beyond the current response for the next one.
pub struct Client {
    /// The socket.
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connect (5 s timeouts, TCP_NODELAY).
    pub fn connect(addr: SocketAddr) -> Client {
        Client { stream: connect(addr), buf: Vec::new() }
    }

    /// Write all of `bytes` (panics on error).
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap_or_else(|e| panic!("send: {e}"));
    }

    /// Read the next response within `timeout`; on failure the way the
    /// stream ended and the unparsed bytes.
    pub fn try_response(&mut self, head_only: bool, timeout: Duration) -> Result<Response, (End, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((r, used)) = parse_one(&self.buf, head_only) {
                self.buf.drain(..used);
                return Ok(r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let before = self.buf.len();
            // Read whatever is there (at least one chunk) and try again.
            let end = read_into(&mut self.stream, &mut self.buf, left, before + 1);
            if self.buf.len() == before || end != End::Timeout {
                if let Some((r, used)) = parse_one(&self.buf, head_only) {
                    self.buf.drain(..used);
                    return Ok(r);
                }
                return Err((end, std::mem::take(&mut self.buf)));
            }
        }
    }

    /// The next response (5 s timeout), panicking with context otherwise.
    pub fn response(&mut self, head_only: bool) -> Response {
        self.try_response(head_only, READ_TIMEOUT).unwrap_or_else(|(end, rest)| {
            panic!(
                "no complete response ({end:?}); got {:?}",
                String::from_utf8_lossy(&rest[..rest.len().min(2000)])
            )
        })
    }

    /// Read what remains until the stream ends or `timeout`: bytes not yet
    /// consumed as responses, and how it ended.
    pub fn finish(&mut self, timeout: Duration) -> (Vec<u8>, End) {
        let mut rest = std::mem::take(&mut self.buf);
        let end = read_into(&mut self.stream, &mut rest, timeout, usize::MAX);
        (rest, end)
    }

    /// Bytes received but not consumed yet.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

/// A request for `path` with Host and optional extra header lines (each
/// without CRLF).
pub fn request(method: &str, path: &str, extra: &[&str]) -> Vec<u8> {
    let mut s = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for h in extra {
        s.push_str(h);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The month names of HTTP and log dates.
pub const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Check the `IMF-fixdate` shape, e.g. `Sat, 21 Nov 2026 10:50:49 GMT`.
pub fn is_imf_fixdate(s: &str) -> bool {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let b = s.as_bytes();
    if b.len() != 29 || !s.is_ascii() {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().unwrap_or(99);
    DAYS.contains(&&s[0..3])
        && &s[3..5] == ", "
        && digits(5..7)
        && (1..=31).contains(&num(5..7))
        && b[7] == b' '
        && MONTHS.contains(&&s[8..11])
        && b[11] == b' '
        && digits(12..16)
        && b[16] == b' '
        && digits(17..19)
        && num(17..19) < 24
        && b[19] == b':'
        && digits(20..22)
        && num(20..22) < 60
        && b[22] == b':'
        && digits(23..25)
        && num(23..25) < 61
        && &s[25..] == " GMT"
}

/// Distinct values, for tests that count things.
pub fn distinct<T: std::hash::Hash + Eq + Clone>(v: &[T]) -> usize {
    v.iter().cloned().collect::<HashSet<T>>().len()
}
