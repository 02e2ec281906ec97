//! Test support shared by every suite that talks to a server over TCP,
//! whether it runs as the `oserver` binary (`tests/e2e`) or in process
//! (`tests/library`): raw requests and a kept-open client, response parsing,
//! scratch directories, CPU placement of the test's own threads.
//!
//! Included with `#[path]` by each suite: nothing here may name the binary
//! (`CARGO_BIN_EXE_oserver` exists only for the CLI crate's tests).
// Not every test file uses every helper.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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
    let dir = std::env::temp_dir().join(format!("oserver-test-{tag}-{}-{n}-{nanos}", std::process::id()));
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
        // The poll interval, not a wait for anything.
        thread::sleep(Duration::from_millis(10));
    }
}

/// A TCP state as the kernel's tables (`/proc/net/tcp`) number it.
pub mod tcp_state {
    pub const ESTABLISHED: u8 = 0x01;
    pub const TIME_WAIT: u8 = 0x06;
    pub const CLOSE_WAIT: u8 = 0x08;
    pub const LISTEN: u8 = 0x0A;
}

/// One socket of the kernel's TCP tables, for waiting on what a server did
/// to a connection (accepted it, closed it, stopped listening) instead of
/// sleeping until it probably did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSocket {
    pub local_port: u16,
    pub remote_port: u16,
    /// See [`tcp_state`].
    pub state: u8,
    /// A listening socket: connections waiting in its accept queue; any
    /// other: bytes received and not read yet.
    pub rx_queue: u32,
    /// 0 for a connection no process holds (queued, or closed and lingering).
    pub inode: u64,
}

/// Every TCP socket of this network namespace, IPv4 and IPv6.
pub fn tcp_sockets() -> Vec<TcpSocket> {
    let hex_port = |addr: &str| u16::from_str_radix(addr.rsplit(':').next()?, 16).ok();
    let parse = |line: &str| -> Option<TcpSocket> {
        // sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
        let f: Vec<&str> = line.split_whitespace().collect();
        Some(TcpSocket {
            local_port: hex_port(f.get(1)?)?,
            remote_port: hex_port(f.get(2)?)?,
            state: u8::from_str_radix(f.get(3)?, 16).ok()?,
            rx_queue: u32::from_str_radix(f.get(4)?.split_once(':')?.1, 16).ok()?,
            inode: f.get(9)?.parse().ok()?,
        })
    };
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .flat_map(|text| text.lines().skip(1).filter_map(parse).collect::<Vec<_>>())
        .collect()
}

/// Server-side sockets of connections to `port` that the kernel still
/// tracks (queued, open, or closed by the client and not yet by the
/// server); TIME_WAIT leftovers, possibly of an earlier server on the same
/// port, are skipped.
pub fn connections_to(port: u16) -> Vec<TcpSocket> {
    tcp_sockets()
        .into_iter()
        .filter(|t| t.local_port == port && t.state != tcp_state::LISTEN && t.state != tcp_state::TIME_WAIT)
        .collect()
}

/// Whether some socket listens on `port`.
pub fn is_listening(port: u16) -> bool {
    tcp_sockets().iter().any(|t| t.local_port == port && t.state == tcp_state::LISTEN)
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
