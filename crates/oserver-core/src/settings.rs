//! The server's settings: one type, validated once, read by every layer.
//!
//! [`Settings`] holds every tunable number and switch; [`Settings::validate`]
//! checks each against the range it can work in, and
//! [`ServerBuilder::build`](crate::ServerBuilder::build) runs it, so a server
//! never starts with a value that would panic or break it later (a timeout
//! that overflows `Instant + Duration`, a send timeout of zero, a head limit
//! too small for any request). The `oserver` command fills a `Settings`
//! straight from its flags and validates it before it forks.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::http::fields::MAX_HEAD_BYTES;

/// Bounds on a request head. Each number is explained where it is defined.
///
/// Start from [`Limits::default`] and change fields (more limits may be
/// added, so the struct cannot be written out whole outside this crate).
///
/// # Example
///
/// ```
/// let mut limits = oserver_core::Limits::default();
/// limits.max_headers = 32;
/// let mut settings = oserver_core::Settings::default();
/// settings.limits = limits;
/// assert!(settings.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Limits {
    /// Longest request line accepted, CRLF excluded (414 beyond).
    pub max_request_line: usize,
    /// Longest whole head accepted, request line included (431 beyond).
    /// Values above [`MAX_HEAD_BYTES`](crate::parse::MAX_HEAD_BYTES) are treated as that.
    pub max_header_bytes: usize,
    /// Most header lines accepted (431 beyond). Values above
    /// [`MAX_HEADERS`](crate::parse::MAX_HEADERS) are treated as that.
    pub max_headers: usize,
}

impl Default for Limits {
    /// 8 KiB for the request line and 16 KiB for the head match what common
    /// servers accept (nginx and Apache use 8 KiB lines), which is far more
    /// than real clients send; 100 headers is httparse's and hyper's bound.
    fn default() -> Self {
        Limits { max_request_line: 8 * 1024, max_header_bytes: 16 * 1024, max_headers: 100 }
    }
}

/// Where access-log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessLog {
    /// Append to this file (opened with O_APPEND; reopened on request).
    File(PathBuf),
    /// Standard output.
    Stdout,
}

/// Longest timeout accepted: one day. Deadlines are `Instant + timeout`,
/// which panics on overflow; a day is far beyond any useful timeout and far
/// from any overflow.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Smallest `max_header_bytes` accepted. A browser's request head is 400 to
/// 1,500 bytes; below 1 KiB a server would answer 431 to ordinary clients.
pub const MIN_HEADER_BYTES: usize = 1024;

/// Most connections one event loop may hold. The kernel's default ceiling on
/// descriptors per process (`fs.nr_open`) is 1,048,576; a loop cannot hold
/// more sockets than that.
pub const MAX_CONNECTIONS: usize = 1 << 20;

/// Largest `max_body_bytes`: a body is held in memory whole until its handler
/// runs, so a connection can hold this much; 1 GiB is past any form or
/// upload a buffering handler should take (stream larger ones to a file).
pub const MAX_BODY_BYTES: u64 = 1 << 30;

/// Every setting of a server, with its allowed range.
///
/// Build one with [`Settings::default`] and change fields, then hand it to
/// [`ServerBuilder::settings`](crate::ServerBuilder::settings) (the builder's
/// individual setters change the same fields).
///
/// # Example
///
/// ```
/// use oserver_core::Settings;
/// use std::time::Duration;
///
/// let mut s = Settings::default();
/// s.keepalive_timeout = Duration::from_secs(65);
/// assert!(s.validate().is_ok());
/// s.send_timeout = Duration::ZERO;
/// assert_eq!(s.validate().unwrap_err().setting, "send_timeout");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The whole request head must arrive within this, counted from accept
    /// or from the first byte of a kept-alive connection's next request.
    /// 1 s to [`MAX_TIMEOUT`]; default 10 s.
    pub header_timeout: Duration,
    /// An idle keep-alive connection is closed after this. 0 turns
    /// keep-alive off (every response closes its connection, as nginx's
    /// `keepalive_timeout 0`); at most [`MAX_TIMEOUT`]; default 15 s.
    pub keepalive_timeout: Duration,
    /// A client that takes no byte of a response for this long is dropped.
    /// 1 s to [`MAX_TIMEOUT`]; default 30 s.
    pub send_timeout: Duration,
    /// How long a connection waits for a handler's late reply
    /// ([`Response::later`](crate::Response::later), a blocking route), or
    /// for the next piece of a streamed body, before it is closed (as
    /// nginx's `proxy_read_timeout`, also 60 s by default). 1 s to
    /// [`MAX_TIMEOUT`].
    pub reply_timeout: Duration,
    /// Longest graceful drain after a shutdown request. 0 (stop at once,
    /// cutting responses in flight) to [`MAX_TIMEOUT`]; default 10 s.
    pub shutdown_timeout: Duration,
    /// Responses on one connection before it is closed (the last one says
    /// `Connection: close`), as nginx's `keepalive_requests`; 0 is no limit.
    /// Default 1000 (nginx's): it bounds how long one client keeps one
    /// connection on one event loop.
    pub keepalive_requests: u32,
    /// `Connection: keep-alive` on an HTTP/1.1 answer whose connection
    /// stays open. HTTP/1.1 connections persist unless one side says
    /// `close` (RFC 9112 §9.3), so the field tells the client nothing it
    /// does not assume: off by default, an answer is 24 bytes shorter, as
    /// hyper, h2o and Go's net/http (Caddy) send. On, every HTTP/1.1 answer
    /// names its connection's fate, as nginx's do (the `oserver` command
    /// turns it on). Either way an HTTP/1.0 client that asked for
    /// keep-alive is told `keep-alive`, and a closing answer says `close`;
    /// HTTP/2 has no such field.
    pub keep_alive_field: bool,
    /// Request-line and head limits (414 and 431 beyond).
    /// `max_header_bytes` is [`MIN_HEADER_BYTES`] to 65,535 (the parser
    /// stores positions as 16-bit numbers); default 16 KiB.
    pub limits: Limits,
    /// Most open connections per event loop; at the cap new ones wait in
    /// the listen backlog. 1 to [`MAX_CONNECTIONS`]; default 10,000.
    pub max_connections: usize,
    /// Serve dotfiles (otherwise 404, except under `/.well-known/`).
    pub hidden: bool,
    /// Directory listings instead of 403 for directories without index.html.
    pub autoindex: bool,
    /// Serve `FILE.br` / `FILE.gz` beside `FILE` when the client accepts them.
    pub precompressed: bool,
    /// `Cache-Control: max-age=SECS` on file answers.
    pub max_age: Option<u32>,
    /// Follow symlinks that lead outside the root (otherwise 403).
    pub follow_symlinks: bool,
    /// Where the access log goes, if anywhere.
    pub access_log: Option<AccessLog>,
    /// Answer every plain-HTTP request with `308` to the same path and query
    /// over HTTPS on this port (`https://HOST[:PORT]/path?query`, the host
    /// from the request's Host header; the port left out when it is 443).
    pub redirect_https: Option<u16>,
    /// `Strict-Transport-Security: max-age=SECS` on every HTTPS answer.
    pub hsts: Option<u32>,
    /// HTTP/2: h2c by prior knowledge on plain ports, and h2 over TLS when
    /// the connection's ALPN chose `h2` (the TLS configuration decides
    /// whether it offers it). On by default, as in h2o and Caddy.
    pub http2: bool,
    /// The most request-body bytes read and held for a handler (a route may
    /// set its own, see `ServerBuilder::body_limit`); a larger body gets
    /// 413. 1 MiB, nginx's `client_max_body_size`. Bodies for the static
    /// files are not held: they are read and dropped.
    pub max_body_bytes: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            // nginx's client_header_timeout is 60 s; 10 s is ample for a real
            // client on any network and short enough to bound slowloris.
            header_timeout: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(15),
            send_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
            keepalive_requests: 1000,
            keep_alive_field: false,
            limits: Limits::default(),
            // 10,000 per loop: the C10k mark; beyond it raise RLIMIT_NOFILE too.
            max_connections: 10_000,
            hidden: false,
            autoindex: false,
            precompressed: false,
            max_age: None,
            follow_symlinks: false,
            access_log: None,
            redirect_https: None,
            hsts: None,
            http2: true,
            max_body_bytes: 1 << 20,
        }
    }
}

/// A setting outside the range it can work in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettingsError {
    /// The field of [`Settings`] (`send_timeout`, `limits.max_header_bytes`, ...).
    pub setting: &'static str,
    /// The value given, as text.
    pub value: String,
    /// What is allowed, e.g. `1 to 86400 seconds`.
    pub allowed: &'static str,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}: must be {}", self.setting, self.value, self.allowed)
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    /// Check every setting against its range.
    ///
    /// # Errors
    ///
    /// The first setting out of range, as a [`SettingsError`].
    pub fn validate(&self) -> Result<(), SettingsError> {
        let secs = |setting, d: Duration, min: Duration, allowed| {
            if d < min || d > MAX_TIMEOUT {
                let value =
                    if d.subsec_nanos() == 0 { format!("{} s", d.as_secs()) } else { format!("{d:?}") };
                return Err(SettingsError { setting, value, allowed });
            }
            Ok(())
        };
        let one = Duration::from_secs(1);
        secs("header_timeout", self.header_timeout, one, "1 to 86400 seconds")?;
        secs("keepalive_timeout", self.keepalive_timeout, Duration::ZERO, "0 (off) to 86400 seconds")?;
        secs("send_timeout", self.send_timeout, one, "1 to 86400 seconds")?;
        secs("reply_timeout", self.reply_timeout, one, "1 to 86400 seconds")?;
        secs("shutdown_timeout", self.shutdown_timeout, Duration::ZERO, "0 to 86400 seconds")?;
        let n = self.limits.max_header_bytes;
        if !(MIN_HEADER_BYTES..=MAX_HEAD_BYTES).contains(&n) {
            return Err(SettingsError {
                setting: "limits.max_header_bytes",
                value: n.to_string(),
                allowed: "1024 to 65535 bytes",
            });
        }
        if self.limits.max_request_line == 0 || self.limits.max_headers == 0 {
            return Err(SettingsError {
                setting: "limits",
                value: format!("{:?}", self.limits),
                allowed: "a request line and a header count of at least 1",
            });
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return Err(SettingsError {
                setting: "max_connections",
                value: self.max_connections.to_string(),
                allowed: "1 to 1048576",
            });
        }
        if self.max_body_bytes > MAX_BODY_BYTES {
            return Err(SettingsError {
                setting: "max_body_bytes",
                value: self.max_body_bytes.to_string(),
                allowed: "0 to 1073741824 bytes",
            });
        }
        Ok(())
    }

    /// Whether connections may be kept open between requests at all.
    pub(crate) fn keep_alive(&self) -> bool {
        !self.keepalive_timeout.is_zero()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn out_of_range_values_are_refused_by_name() {
        let huge = Duration::from_secs(u64::MAX);
        type Change = fn(&mut Settings);
        let table: &[(&str, Change)] = &[
            ("header_timeout", |s| s.header_timeout = Duration::from_secs(u64::MAX)),
            ("header_timeout", |s| s.header_timeout = Duration::ZERO),
            ("keepalive_timeout", |s| s.keepalive_timeout = Duration::from_secs(u64::MAX)),
            ("send_timeout", |s| s.send_timeout = Duration::ZERO),
            ("send_timeout", |s| s.send_timeout = Duration::from_secs(86_401)),
            ("reply_timeout", |s| s.reply_timeout = Duration::ZERO),
            ("shutdown_timeout", |s| s.shutdown_timeout = Duration::from_secs(u64::MAX)),
            ("limits.max_header_bytes", |s| s.limits.max_header_bytes = 10),
            ("limits.max_header_bytes", |s| s.limits.max_header_bytes = 65_536),
            ("max_connections", |s| s.max_connections = 0),
        ];
        assert!(huge > MAX_TIMEOUT);
        for (name, change) in table {
            let mut s = Settings::default();
            change(&mut s);
            let e = s.validate().unwrap_err();
            assert_eq!(e.setting, *name, "{e}");
        }
    }

    #[test]
    fn edges_that_work_are_accepted() {
        let mut s = Settings {
            keepalive_timeout: Duration::ZERO, // keep-alive off
            shutdown_timeout: Duration::ZERO,
            header_timeout: MAX_TIMEOUT,
            max_connections: 1,
            ..Settings::default()
        };
        s.limits.max_header_bytes = MIN_HEADER_BYTES;
        s.validate().unwrap();
        s.limits.max_header_bytes = MAX_HEAD_BYTES;
        s.validate().unwrap();
        assert!(!s.keep_alive());
    }
}
