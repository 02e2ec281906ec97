//! Incremental, strict HTTP/1.1 request-head parser (RFC 9112).
//!
//! The connection keeps one [`Parser`] while a request head is arriving and
//! calls [`Parser::parse`] with the whole buffer every time bytes are added.
//! The parser remembers its state and position, so every byte is examined
//! once however the head is split across reads. It allocates nothing: the
//! result is a set of offsets into the caller's buffer, read back through
//! [`Parser::head`].
//!
//! This module is public (as `oserver_core::parse`) only so that the parser
//! benchmark (`benches/parse.rs`) and the fuzz target (`fuzz/`) can reach the
//! parser from outside the crate. It is not a stable API: an embedder never
//! needs it (each connection parses its own requests), and it may change in
//! any release.
//!
//! Every byte is validated as it arrives, so garbage is refused at the first
//! offending byte rather than at the end of a line: a TLS ClientHello (first
//! byte `0x16`) fails after one byte, a NUL in a header after that byte.
//!
//! # How it is fast
//!
//! - Complete lines go through straight-line fast paths
//!   (`fast_request_line`, `fast_header_lines`) that keep no state; a line
//!   that is incomplete or anything but plainly valid is left to a byte-exact
//!   state machine, which also produces every error. So a line may be read
//!   twice within one call, but no call goes back over bytes an earlier call
//!   consumed.
//! - Scans test 16 bytes at once (SSE2 on x86-64, which every x86-64 CPU
//!   has; a plain loop elsewhere) and pick the first stopping byte from a bit
//!   mask, with no branch per byte.
//! - A header line's end is searched for from the line's start, in parallel
//!   with the name, so each line waits only on the previous line's end
//!   rather than on a chain of name, whitespace and value scans. That chain
//!   of dependent loads, not the instruction count, is what bounds a parser
//!   like this one.
//!
//! # Choices
//!
//! Where RFC 9112 leaves room, this parser takes the strict side:
//!
//! - **Empty lines before the request line** are skipped (RFC 9112 §2.2 asks
//!   servers to ignore at least one, since some clients send a CRLF after a
//!   POST body). They count towards the header byte limit. Any other
//!   whitespace before the method is a 400.
//! - **Line endings**: CRLF or a bare LF everywhere (§2.2 allows accepting
//!   LF); a CR not followed by LF is a 400 wherever it appears.
//! - **obs-fold** (a header line starting with SP or HTAB) is a 400; §5.2
//!   allows either rejecting or unfolding, and nothing we serve needs it.
//!   Whitespace at the start of the first header line is a 400 too (§2.2).
//! - **Request target**: origin-form (`/...`), absolute-form with an `http`
//!   or `https` scheme (case-insensitive) and a non-empty authority, or
//!   asterisk-form (`*`) for `OPTIONS` only. Authority-form (`CONNECT`) and
//!   other schemes are a 400. Only visible ASCII is allowed; non-ASCII must
//!   be percent-encoded. Percent-escapes are checked by the path module.
//! - **Version**: `HTTP/` digits `.` digits. 1.0 and 1.1 are accepted; any
//!   other well-formed version (`HTTP/2.0`, `HTTP/1.32`) is a 505, anything
//!   else (`http/1.1`, `HTTP/1.1x`) a 400.
//! - **Content-Length** must be plain decimal digits that fit in a `u64`.
//!   A list (`5, 5`) is a 400 even when the members agree; repeated
//!   Content-Length *headers* are accepted only when their values agree.
//! - **Transfer-Encoding**: only a single header with exactly `chunked`
//!   (case-insensitive) is implemented, anything else is a 501. It is a 400
//!   together with Content-Length (request smuggling, §6.1) and in HTTP/1.0
//!   requests (§6.1: a 1.0 message with it is "faulty").
//! - **Host**: required in HTTP/1.1, at most once (§3.2 of RFC 9112).
//!   The value may be empty; it is not checked further here.
//! - **Limits**: a request line longer than `max_request_line` is a 414 as
//!   soon as its first byte past the limit arrives; a head longer than
//!   `max_header_bytes` (clamped to [`MAX_HEAD_BYTES`]) or with more than
//!   `max_headers` lines (clamped to [`MAX_HEADERS`]) is a 431. Should
//!   `max_request_line` exceed `max_header_bytes`, a long request line is a
//!   431.
//!
//! # Example
//!
//! ```
//! use oserver_core::parse::{Limits, Parser, Status};
//!
//! let limits = Limits::default();
//! let mut parser = Parser::new();
//! let req = b"GET /index.html HTTP/1.1\r\nHost: example.com\r\n\r\n";
//! assert_eq!(parser.parse(&req[..10], &limits), Ok(Status::Partial));
//! assert_eq!(parser.parse(req, &limits), Ok(Status::Complete(req.len())));
//! let head = parser.head(req);
//! assert_eq!(head.target, b"/index.html");
//! assert_eq!(head.host, Some(&b"example.com"[..]));
//! assert!(head.keep_alive);
//! ```

pub use crate::http::fields::MAX_HEAD_BYTES;
pub use crate::settings::Limits;

/// Hard ceiling on the number of header lines, whatever [`Limits`] says. It
/// sizes the parser's span array: 100 spans of 8 bytes keep the parser under
/// 1 KiB, and 100 is more than any browser sends (they send 10 to 20).
pub const MAX_HEADERS: usize = 100;

/// Result of feeding bytes to the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The head is complete and valid; it is this many bytes long (terminating
    /// blank line included). Bytes after it are the body or the next request.
    Complete(usize),
    /// More bytes are needed.
    Partial,
}

/// Why a request head was rejected. Each maps to one status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// Malformed syntax (400). The str says which rule, for the debug log.
    BadRequest(&'static str),
    /// Request line longer than the limit (414).
    UriTooLong,
    /// Header section too large or too many lines (431).
    HeaderTooLarge,
    /// Well-formed version other than HTTP/1.0 and HTTP/1.1 (505).
    VersionNotSupported,
    /// Transfer-Encoding other than exactly `chunked` (501).
    NotImplemented,
}

impl ParseError {
    /// The status code this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::BadRequest(_) => 400,
            ParseError::UriTooLong => 414,
            ParseError::HeaderTooLarge => 431,
            ParseError::VersionNotSupported => 505,
            ParseError::NotImplemented => 501,
        }
    }
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::BadRequest(why) => write!(f, "bad request: {why}"),
            ParseError::UriTooLong => f.write_str("request line too long"),
            ParseError::HeaderTooLarge => f.write_str("request header section too large"),
            ParseError::VersionNotSupported => f.write_str("HTTP version not supported"),
            ParseError::NotImplemented => f.write_str("transfer coding not implemented"),
        }
    }
}

impl std::error::Error for ParseError {}

use crate::http::fields::{is_tchar, Fields, HeaderSpan, Span};
use crate::http::parse_decimal;

/// Where the parser stands. Each state names the thing the next byte belongs
/// to; `Scan::pos` is that byte's offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the request line; empty lines are skipped here.
    Start,
    /// Skipped a CR before the request line; an LF must follow.
    StartLf,
    /// Inside the method.
    Method,
    /// Inside the request target.
    Target,
    /// Inside the version; `Scan::ver` says how far.
    Version,
    /// After the CR ending the request line; an LF must follow.
    RequestLineLf,
    /// At the first byte of a header line or of the final empty line.
    LineStart,
    /// Inside a header name.
    Name,
    /// After the colon, skipping whitespace before the value.
    ValueStart,
    /// Inside a header value.
    Value,
    /// After the CR ending a header line; an LF must follow.
    ValueLf,
    /// After the CR of the final empty line; an LF must follow.
    EndLf,
    /// The head is complete; `Scan::pos` is its length.
    Done,
    /// The head was rejected; every later call reports `Scan::error`.
    Failed,
}

impl State {
    /// Past the request line.
    fn in_header_section(self) -> bool {
        matches!(
            self,
            State::LineStart | State::Name | State::ValueStart | State::Value | State::ValueLf | State::EndLf
        )
    }
}

/// How [`Parser::fast_header_lines`] ended.
enum Fast {
    /// At the end of the head.
    Done(Status),
    /// At the start of a line it left to the state machine.
    Stopped(usize),
}

/// Progress through `HTTP/<major>.<minor>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Version {
    /// 0..=4: that many bytes of `HTTP/` seen; 5: in the major digits;
    /// 6: in the minor digits.
    stage: u8,
    major: u8,
    minor: u8,
    major_digits: u8,
    minor_digits: u8,
}

impl Version {
    /// A well-formed version that we speak: exactly `1.0` or `1.1`.
    fn supported(&self) -> bool {
        self.major_digits == 1 && self.minor_digits == 1 && self.major == 1 && self.minor <= 1
    }
}

/// Everything but the header array; resetting for the next request only
/// rewrites this.
#[derive(Debug, Clone, Copy)]
struct Scan {
    state: State,
    /// Offset of the next byte to examine.
    pos: u16,
    /// Start of the request line (after any skipped empty lines).
    line_start: u16,
    method_end: u16,
    target: Span,
    ver: Version,
    /// Start of the header name being read.
    name_start: u16,
    /// The colon after the name being read.
    name_end: u16,
    /// First byte of the value being read (after leading whitespace).
    value_start: u16,
    nheaders: u8,
    host: Option<Span>,
    content_length: Option<u64>,
    /// Number of Transfer-Encoding headers.
    te_count: u8,
    /// The last Transfer-Encoding value was exactly `chunked`.
    te_chunked: bool,
    conn_close: bool,
    conn_keep_alive: bool,
    keep_alive: bool,
    /// Why the head was rejected, once `state` is `Failed`.
    error: Option<ParseError>,
}

impl Scan {
    const fn new() -> Scan {
        Scan {
            state: State::Start,
            pos: 0,
            line_start: 0,
            method_end: 0,
            target: Span { start: 0, end: 0 },
            ver: Version { stage: 0, major: 0, minor: 0, major_digits: 0, minor_digits: 0 },
            name_start: 0,
            name_end: 0,
            value_start: 0,
            nheaders: 0,
            host: None,
            content_length: None,
            te_count: 0,
            te_chunked: false,
            conn_close: false,
            conn_keep_alive: false,
            keep_alive: false,
            error: None,
        }
    }
}

/// A resumable parser. Feed it the request buffer (which always starts at the
/// request's first byte and only grows at its end) each time more bytes arrive.
#[derive(Debug, Clone)]
pub struct Parser {
    s: Scan,
    headers: [HeaderSpan; MAX_HEADERS],
}

/// A parsed, validated request head; fields borrow from the buffer.
#[derive(Debug)]
pub struct RequestHead<'b> {
    /// Method token, e.g. `GET`.
    pub method: &'b [u8],
    /// The request target exactly as sent.
    pub target: &'b [u8],
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor_version: u8,
    /// Value of the Content-Length header, if any (validated).
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked` was sent.
    pub chunked: bool,
    /// Whether the connection may stay open after the response, from the
    /// version and the Connection header.
    pub keep_alive: bool,
    /// The Host header value, if any.
    pub host: Option<&'b [u8]>,
    buf: &'b [u8],
    headers: &'b [HeaderSpan],
}

impl<'b> RequestHead<'b> {
    /// Every header in order, as (name, value).
    pub fn headers(&self) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + 'b {
        let buf = self.buf;
        self.headers.iter().map(move |h| (h.name.of(buf), h.value.of(buf)))
    }

    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&'b [u8]> {
        self.fields().get(name)
    }

    /// The header fields, as the responder reads them.
    pub(crate) fn fields(&self) -> Fields<'b> {
        Fields::new(self.buf, self.headers)
    }
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// A parser at the start of a request.
    pub fn new() -> Self {
        Parser { s: Scan::new(), headers: [HeaderSpan::default(); MAX_HEADERS] }
    }

    /// Forget everything; ready for the next request.
    pub fn reset(&mut self) {
        // The spans past `nheaders` are never read, so they need no clearing.
        self.s = Scan::new();
    }

    /// Continue parsing `buf` from where the last call stopped.
    ///
    /// `buf` must start at the request's first byte and contain at least the
    /// bytes of the previous call. After `Complete(n)`, bytes from `n` on are
    /// never looked at; later calls return the same result, as they do after
    /// an error.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] as soon as a byte makes the head invalid, a limit in
    /// `limits` is exceeded, or (once the head is complete) its headers
    /// contradict each other.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Status, ParseError> {
        match self.s.state {
            State::Done => return Ok(Status::Complete(self.s.pos as usize)),
            State::Failed => {
                return Err(self.s.error.unwrap_or(bad("parser used after an error")));
            }
            _ => {}
        }
        // Only look at the bytes the head may occupy: this enforces the size
        // limit and keeps every offset within u16.
        let max_head = limits.max_header_bytes.min(MAX_HEAD_BYTES);
        let view = buf.get(..max_head).unwrap_or(buf);
        let result = match self.run(view, limits) {
            Ok(Status::Partial) if buf.len() > view.len() => Err(ParseError::HeaderTooLarge),
            other => other,
        };
        if let Err(e) = result {
            self.s.state = State::Failed;
            self.s.error = Some(e);
        }
        result
    }

    /// The parsed head. Only meaningful after `parse` returned `Complete`, with
    /// the same buffer.
    pub fn head<'b>(&'b self, buf: &'b [u8]) -> RequestHead<'b> {
        let s = &self.s;
        RequestHead {
            method: Span { start: s.line_start, end: s.method_end }.of(buf),
            target: s.target.of(buf),
            minor_version: s.ver.minor,
            content_length: s.content_length,
            chunked: s.te_count > 0,
            keep_alive: s.keep_alive,
            host: s.host.map(|h| h.of(buf)),
            buf,
            headers: self.headers.get(..s.nheaders as usize).unwrap_or(&[]),
        }
    }

    /// The state machine. `b` is the buffer cut to the head size limit.
    fn run(&mut self, b: &[u8], limits: &Limits) -> Result<Status, ParseError> {
        // State and position live in locals while running.
        let mut p = self.s.pos as usize;
        let mut state = self.s.state;

        if state == State::Start {
            if let Some(end) = self.fast_request_line(b, p, limits) {
                p = end;
                state = State::LineStart;
            }
        }
        // The request line, when the fast path declined it: a plain state
        // loop.
        while !state.in_header_section() {
            match state {
                State::Start => match b.get(p) {
                    None => return self.partial(p, state),
                    Some(b'\n') => p += 1,
                    Some(b'\r') => {
                        p += 1;
                        state = State::StartLf;
                    }
                    Some(&c) if is_tchar(c) => {
                        self.s.line_start = p as u16;
                        p += 1;
                        state = State::Method;
                    }
                    Some(b' ' | b'\t') => return Err(bad("whitespace before the request line")),
                    Some(_) => return Err(bad("invalid byte in method")),
                },
                State::StartLf => match b.get(p) {
                    None => return self.partial(p, state),
                    Some(b'\n') => {
                        p += 1;
                        state = State::Start;
                    }
                    Some(_) => return Err(bad("CR without LF")),
                },
                State::Method => {
                    let line = b.get(..self.request_line_end(limits)).unwrap_or(b);
                    let Some(end) = find_non_token(line, p) else {
                        p = line.len();
                        match b.get(p) {
                            None => return self.partial(p, state),
                            Some(b'\r' | b'\n') => return Err(bad("request line without target")),
                            Some(_) => return Err(ParseError::UriTooLong),
                        }
                    };
                    p = end;
                    match line.get(p) {
                        Some(b' ') => {
                            self.s.method_end = p as u16;
                            p += 1;
                            self.s.target = Span::new(p, p);
                            state = State::Target;
                        }
                        Some(b'\r' | b'\n') => return Err(bad("request line without target")),
                        _ => return Err(bad("invalid byte in method")),
                    }
                }
                State::Target => {
                    let method = Span { start: self.s.line_start, end: self.s.method_end }.of(b);
                    let start = self.s.target.start as usize;
                    let target = |end| b.get(start..end).unwrap_or(&[]);
                    let line = b.get(..self.request_line_end(limits)).unwrap_or(b);
                    let Some(end) = find_non_vchar(line, p) else {
                        p = line.len();
                        check_target(method, target(p), false)?;
                        match b.get(p) {
                            None => return self.partial(p, state),
                            Some(b'\r' | b'\n') => return Err(bad("request line without version")),
                            Some(_) => return Err(ParseError::UriTooLong),
                        }
                    };
                    p = end;
                    let c = line.get(p).copied().unwrap_or(0);
                    check_target(method, target(p), c == b' ')?;
                    match c {
                        b' ' => {
                            self.s.target.end = p as u16;
                            p += 1;
                            state = State::Version;
                        }
                        b'\r' | b'\n' => return Err(bad("request line without version")),
                        _ => return Err(bad("invalid byte in request target")),
                    }
                }
                State::Version => {
                    let line_end = self.request_line_end(limits);
                    if self.s.ver.stage == 0 && p + 8 <= line_end {
                        // Nearly every request says HTTP/1.1 or HTTP/1.0.
                        if let Some(&[b'H', b'T', b'T', b'P', b'/', b'1', b'.', m @ (b'0' | b'1')]) =
                            b.get(p..).and_then(|r| r.first_chunk::<8>())
                        {
                            self.s.ver = Version {
                                stage: 6,
                                major: 1,
                                minor: m - b'0',
                                major_digits: 1,
                                minor_digits: 1,
                            };
                            p += 8;
                        }
                    }
                    let Some(&c) = b.get(p) else {
                        return self.partial(p, state);
                    };
                    if p >= line_end && c != b'\r' && c != b'\n' {
                        return Err(ParseError::UriTooLong);
                    }
                    let ver = &mut self.s.ver;
                    match ver.stage {
                        0..=4 => {
                            if Some(&c) != b"HTTP/".get(ver.stage as usize) {
                                return Err(bad("malformed HTTP version"));
                            }
                            ver.stage += 1;
                        }
                        5 => match c {
                            b'0'..=b'9' => {
                                ver.major = ver.major.saturating_mul(10).saturating_add(c - b'0');
                                ver.major_digits = ver.major_digits.saturating_add(1);
                            }
                            b'.' if ver.major_digits > 0 => ver.stage = 6,
                            _ => return Err(bad("malformed HTTP version")),
                        },
                        _ => match c {
                            b'0'..=b'9' => {
                                ver.minor = ver.minor.saturating_mul(10).saturating_add(c - b'0');
                                ver.minor_digits = ver.minor_digits.saturating_add(1);
                            }
                            b'\r' | b'\n' if ver.minor_digits > 0 => {
                                if !ver.supported() {
                                    return Err(ParseError::VersionNotSupported);
                                }
                                state = if c == b'\r' { State::RequestLineLf } else { State::LineStart };
                            }
                            b' ' => return Err(bad("junk after the HTTP version")),
                            _ => return Err(bad("malformed HTTP version")),
                        },
                    }
                    p += 1;
                }
                State::RequestLineLf => match b.get(p) {
                    None => return self.partial(p, state),
                    Some(b'\n') => {
                        p += 1;
                        state = State::LineStart;
                    }
                    Some(_) => return Err(bad("CR without LF")),
                },
                _ => return Err(bad("parser used after the end of the head")),
            }
        }

        // Header lines: one pass of this loop reads one line, in straight
        // code without a dispatch on the state. A call that resumes in the
        // middle of a line enters at the step where the last one stopped.
        let max_headers = limits.max_headers.min(MAX_HEADERS);
        loop {
            if state == State::LineStart {
                match self.fast_header_lines(b, p, max_headers)? {
                    Fast::Done(status) => return Ok(status),
                    Fast::Stopped(at) => p = at,
                }
                match b.get(p) {
                    None => return self.partial(p, state),
                    Some(&c) if is_tchar(c) => {
                        if self.s.nheaders as usize >= max_headers {
                            return Err(ParseError::HeaderTooLarge);
                        }
                        self.s.name_start = p as u16;
                        p += 1;
                        state = State::Name;
                    }
                    Some(b'\n') => return self.finish(p + 1),
                    Some(b'\r') => {
                        p += 1;
                        state = State::EndLf;
                    }
                    Some(b' ' | b'\t') => return Err(bad("header line starts with whitespace (obs-fold)")),
                    Some(b':') => return Err(bad("empty header name")),
                    Some(_) => return Err(bad("invalid byte in header name")),
                }
            }
            if state == State::Name {
                let Some(end) = find_non_token(b, p) else {
                    return self.partial(b.len(), state);
                };
                p = end;
                match b.get(p) {
                    Some(b':') => {
                        self.s.name_end = p as u16;
                        p += 1;
                        state = State::ValueStart;
                    }
                    Some(b' ' | b'\t') => return Err(bad("whitespace between header name and colon")),
                    Some(b'\r' | b'\n') => return Err(bad("header line without colon")),
                    _ => return Err(bad("invalid byte in header name")),
                }
            }
            if state == State::ValueStart {
                let rest = b.get(p..).unwrap_or(&[]);
                let Some(i) = rest.iter().position(|&c| c != b' ' && c != b'\t') else {
                    return self.partial(b.len(), state);
                };
                p += i;
                self.s.value_start = p as u16;
                state = State::Value;
            }
            if state == State::Value {
                let Some(end) = find_value_end(b, p) else {
                    return self.partial(b.len(), state);
                };
                p = end;
                let c = b.get(p).copied().unwrap_or(0);
                if c != b'\r' && c != b'\n' {
                    return Err(bad("control byte in header value"));
                }
                let name = Span { start: self.s.name_start, end: self.s.name_end };
                self.end_header(b, name, self.s.value_start as usize, p)?;
                p += 1;
                state = if c == b'\n' { State::LineStart } else { State::ValueLf };
            }
            if state == State::ValueLf || state == State::EndLf {
                match b.get(p) {
                    None => return self.partial(p, state),
                    Some(b'\n') if state == State::EndLf => return self.finish(p + 1),
                    Some(b'\n') => {
                        p += 1;
                        state = State::LineStart;
                    }
                    Some(_) => return Err(bad("CR without LF")),
                }
            }
        }
    }

    /// The fast path for a request line that has arrived whole and is
    /// plainly valid: straight code, no state kept. Returns where the header
    /// section starts, having recorded the line, or `None` (having recorded
    /// nothing) to leave the line to the state machine, which also produces
    /// every error: results do not depend on which path read a line. The
    /// property tests check that, comparing whole and split input.
    #[inline]
    fn fast_request_line(&mut self, b: &[u8], p: usize, limits: &Limits) -> Option<usize> {
        // As in `fast_header_lines`, the line end is searched for from the
        // start, so that the header lines need not wait for the scans of
        // the method and the target.
        let line_end = find_value_end(b, p)?;
        let next = match b.get(line_end) {
            Some(b'\r') if b.get(line_end + 1) == Some(&b'\n') => line_end + 2,
            Some(b'\n') => line_end + 1,
            _ => return None,
        };
        let target_end = line_end.checked_sub(9)?;
        let minor = match b.get(target_end..line_end)? {
            b" HTTP/1.1" => 1,
            b" HTTP/1.0" => 0,
            _ => return None,
        };
        let method_end = find_non_token(b, p)?;
        if method_end == p || b.get(method_end) != Some(&b' ') {
            return None;
        }
        if find_non_vchar(b, method_end + 1)? != target_end {
            return None;
        }
        if line_end - p > limits.max_request_line {
            return None;
        }
        let method = b.get(p..method_end)?;
        check_target(method, b.get(method_end + 1..target_end)?, true).ok()?;
        self.s.line_start = p as u16;
        self.s.method_end = method_end as u16;
        self.s.target = Span::new(method_end + 1, target_end);
        self.s.ver = Version { stage: 6, major: 1, minor, major_digits: 1, minor_digits: 1 };
        Some(next)
    }

    /// The fast path for header lines that have arrived whole and are
    /// plainly valid, from `p` at the start of a line. Stops at the first
    /// line that is not, to leave it to the state machine (see
    /// [`Parser::fast_request_line`]).
    #[inline]
    fn fast_header_lines(&mut self, b: &[u8], mut p: usize, max_headers: usize) -> Result<Fast, ParseError> {
        loop {
            let line = p;
            match b.get(p) {
                Some(&c) if is_tchar(c) => {}
                Some(b'\n') => return self.finish(p + 1).map(Fast::Done),
                Some(b'\r') if b.get(p + 1) == Some(&b'\n') => {
                    return self.finish(p + 2).map(Fast::Done);
                }
                _ => return Ok(Fast::Stopped(line)),
            }
            if self.s.nheaders as usize >= max_headers {
                return Ok(Fast::Stopped(line));
            }
            // The line's end is searched for from its start, not from the
            // value: the next line then waits only for this one search,
            // while the name and value are checked alongside. (The first
            // control byte ends the line; a valid name has none.)
            let Some(value_end) = find_value_end(b, p) else {
                return Ok(Fast::Stopped(line));
            };
            let Some(name_end) = find_name_end(b, p + 1) else {
                return Ok(Fast::Stopped(line));
            };
            if b.get(name_end) != Some(&b':') {
                return Ok(Fast::Stopped(line));
            }
            let mut value_start = name_end + 1;
            // Nearly always a single space.
            if b.get(value_start) == Some(&b' ') {
                value_start += 1;
            }
            while let Some(b' ' | b'\t') = b.get(value_start) {
                value_start += 1;
            }
            let next = match b.get(value_end) {
                Some(b'\r') if b.get(value_end + 1) == Some(&b'\n') => value_end + 2,
                Some(b'\n') => value_end + 1,
                _ => return Ok(Fast::Stopped(line)),
            };
            self.end_header(b, Span::new(line, name_end), value_start, value_end)?;
            p = next;
        }
    }

    /// Out of bytes: remembers where to go on.
    fn partial(&mut self, p: usize, state: State) -> Result<Status, ParseError> {
        self.s.pos = p as u16;
        self.s.state = state;
        Ok(Status::Partial)
    }

    /// Offset of the first byte past the request line's length limit: only
    /// its CR or LF may be there. Any other byte there is refused at once,
    /// without waiting for the line end, and the same way however the line
    /// was split.
    fn request_line_end(&self, limits: &Limits) -> usize {
        (self.s.line_start as usize).saturating_add(limits.max_request_line)
    }

    /// Records the header whose value ends at `end` (the CR or LF) and
    /// applies the per-header rules.
    #[inline(always)]
    fn end_header(&mut self, b: &[u8], name: Span, value_start: usize, end: usize) -> Result<(), ParseError> {
        let mut vend = end;
        while vend > value_start && matches!(b.get(vend - 1), Some(b' ' | b'\t')) {
            vend -= 1;
        }
        let value = Span::new(value_start, vend);
        let Some(slot) = self.headers.get_mut(self.s.nheaders as usize) else {
            // LineStart checked the count against MAX_HEADERS.
            return Err(ParseError::HeaderTooLarge);
        };
        *slot = HeaderSpan { name, value };
        self.s.nheaders += 1;
        // Only four names matter here. Their lengths and first letters
        // rule out nearly every other header with one branch.
        const fn key(len: usize, first: u8) -> u32 {
            (len as u32) << 8 | (first | 0x20) as u32
        }
        const HOST: u32 = key(4, b'h');
        const CONNECTION: u32 = key(10, b'c');
        const CONTENT_LENGTH: u32 = key(14, b'c');
        const TRANSFER_ENCODING: u32 = key(17, b't');
        let len = name.end.wrapping_sub(name.start) as usize;
        let k = key(len, b.get(name.start as usize).copied().unwrap_or(0));
        if (k == HOST) | (k == CONNECTION) | (k == CONTENT_LENGTH) | (k == TRANSFER_ENCODING) {
            self.special_header(name.of(b), value, value.of(b))?;
        }
        Ok(())
    }

    /// Applies the rules for Host, Connection, Content-Length and
    /// Transfer-Encoding, if `name` is one of them.
    fn special_header(&mut self, name: &[u8], value: Span, v: &[u8]) -> Result<(), ParseError> {
        if name_is(name, b"host") {
            if self.s.host.is_some() {
                return Err(bad("more than one Host header"));
            }
            self.s.host = Some(value);
        } else if name_is(name, b"connection") {
            // Nearly always one token, which the value (trimmed of OWS
            // already) then is. `name_is` fits a value too: the one byte
            // besides `-` that it takes for `-` is CR, never in a value.
            if name_is(v, b"keep-alive") {
                self.s.conn_keep_alive = true;
                return Ok(());
            }
            for token in v.split(|&c| c == b',') {
                let token = trim_ows(token);
                if token.eq_ignore_ascii_case(b"close") {
                    self.s.conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    self.s.conn_keep_alive = true;
                }
            }
        } else if name_is(name, b"content-length") {
            let Some(n) = parse_decimal(v) else {
                return Err(bad("invalid Content-Length"));
            };
            if self.s.content_length.is_some_and(|old| old != n) {
                return Err(bad("conflicting Content-Length headers"));
            }
            self.s.content_length = Some(n);
        } else if name_is(name, b"transfer-encoding") {
            self.s.te_count = self.s.te_count.saturating_add(1);
            self.s.te_chunked = v.eq_ignore_ascii_case(b"chunked");
        }
        Ok(())
    }

    /// The empty line ending the head has been read; `len` is the head's
    /// length. Applies the rules that involve several headers.
    fn finish(&mut self, len: usize) -> Result<Status, ParseError> {
        let s = &mut self.s;
        let http11 = s.ver.minor == 1;
        if http11 && s.host.is_none() {
            return Err(bad("HTTP/1.1 request without Host"));
        }
        if s.te_count > 0 {
            if !http11 {
                return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
            }
            if s.content_length.is_some() {
                return Err(bad("both Transfer-Encoding and Content-Length"));
            }
            if s.te_count > 1 || !s.te_chunked {
                return Err(ParseError::NotImplemented);
            }
        }
        s.keep_alive = if http11 { !s.conn_close } else { s.conn_keep_alive && !s.conn_close };
        s.pos = len as u16;
        s.state = State::Done;
        Ok(Status::Complete(len))
    }
}

fn bad(why: &'static str) -> ParseError {
    ParseError::BadRequest(why)
}

/// The bytes a scan stops at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Not a tchar: ends a method or a header name.
    NonToken,
    /// Outside VCHAR (0x21..=0x7e): ends a request target.
    NonVchar,
    /// A control byte other than HTAB, or DEL: ends a header value (CR or
    /// LF) or makes it invalid. obs-text (0x80 and up) is allowed.
    ValueEnd,
    /// Not a letter, a digit or `-`, which is what header names nearly
    /// always are: a cheaper test than NonToken's, which takes over where
    /// it stops at another byte (see [`find_name_end`]).
    NameEnd,
}

impl Stop {
    /// Whether the scan stops at `c`: the definition the block tests must
    /// agree with. (x86-64 uses it in tests only.)
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    #[inline(always)]
    fn at(self, c: u8) -> bool {
        match self {
            Stop::NonToken => !is_tchar(c),
            Stop::NonVchar => !(0x21..=0x7e).contains(&c),
            Stop::ValueEnd => (c < 0x20 && c != b'\t') || c == 0x7f,
            Stop::NameEnd => !(c.is_ascii_alphanumeric() || c == b'-'),
        }
    }
}

/// Bit `i` set where the scan stops at `block[i]`.
#[inline(always)]
fn stop_mask(block: &[u8; 16], stop: Stop) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        sse2::stop_mask(block, stop)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        block.iter().enumerate().fold(0, |m, (i, &c)| m | u32::from(stop.at(c)) << i)
    }
}

/// SSE2 is part of every x86-64 CPU, so this needs no detection at run
/// time. Sixteen bytes are compared at once and the result is one bit per
/// byte, so a scan costs one branch per sixteen bytes and none per byte.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use super::Stop;
    use std::arch::x86_64::*;

    #[inline(always)]
    pub(super) fn stop_mask(block: &[u8; 16], stop: Stop) -> u32 {
        // SAFETY: the load reads the 16 bytes `block` refers to, and has no
        // alignment requirement. The other intrinsics only compute on
        // registers, and SSE2 is enabled on every x86-64 target.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr().cast());
            let splat = |c: u8| _mm_set1_epi8(c as i8);
            let eq = |c: u8| _mm_cmpeq_epi8(v, splat(c));
            // lo <= byte <= hi: shift the range down to 0..=hi-lo, then an
            // unsigned minimum tells whether the byte is within it.
            let within_of = |x: __m128i, lo: u8, hi: u8| {
                let d = _mm_sub_epi8(x, splat(lo));
                _mm_cmpeq_epi8(_mm_min_epu8(d, splat(hi - lo)), d)
            };
            let within = |lo: u8, hi: u8| within_of(v, lo, hi);
            let bits = |m: __m128i| _mm_movemask_epi8(m) as u32;
            match stop {
                Stop::NonVchar => !bits(within(0x21, 0x7e)) & 0xffff,
                Stop::ValueEnd => {
                    let ctl = _mm_andnot_si128(eq(b'\t'), within(0x00, 0x1f));
                    bits(_mm_or_si128(ctl, eq(0x7f)))
                }
                Stop::NameEnd => {
                    // Setting bit 5 maps upper-case letters onto lower-case
                    // ones, and nothing else onto a letter.
                    let letter = within_of(_mm_or_si128(v, splat(0x20)), b'a', b'z');
                    let ok = _mm_or_si128(_mm_or_si128(letter, within(b'0', b'9')), eq(b'-'));
                    !bits(ok) & 0xffff
                }
                Stop::NonToken => {
                    // tchar is VCHAR minus the delimiters "(),/:;<=>?@[\]{}.
                    let delimiters = _mm_or_si128(
                        _mm_or_si128(
                            _mm_or_si128(eq(b'"'), within(b'(', b')')),
                            _mm_or_si128(eq(b','), eq(b'/')),
                        ),
                        _mm_or_si128(
                            _mm_or_si128(within(b':', b'@'), within(b'[', b']')),
                            _mm_or_si128(eq(b'{'), eq(b'}')),
                        ),
                    );
                    let token = _mm_andnot_si128(delimiters, within(0x21, 0x7e));
                    !bits(token) & 0xffff
                }
            }
        }
    }
}

/// Offset in `b` of the first byte at or after `from` that `stop` stops
/// at, sixteen bytes at a time.
#[inline(always)]
fn find(b: &[u8], from: usize, stop: Stop) -> Option<usize> {
    // One length test a block.
    let mut rest = b.get(from..)?;
    let mut at = from;
    while let Some((block, tail)) = rest.split_first_chunk::<16>() {
        let m = stop_mask(block, stop);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize);
        }
        at += 16;
        rest = tail;
    }
    if rest.is_empty() {
        return None;
    }
    // Fewer than 16 bytes are left: test the last 16 of `b`, ignoring those
    // before `at`. Only a buffer shorter than that needs a copy, padded with
    // bytes no scan stops at.
    let (block, start) = match b.len().checked_sub(16) {
        Some(start) => (*b.get(start..)?.first_chunk::<16>()?, start),
        None => {
            let mut block = [b'a'; 16];
            block.get_mut(..b.len())?.copy_from_slice(b);
            (block, 0)
        }
    };
    // `at - start` is below 16.
    let m = stop_mask(&block, stop) >> (at - start);
    (m != 0).then(|| at + m.trailing_zeros() as usize)
}

/// Offset of the first byte at or after `from` that is not a tchar.
#[inline]
fn find_non_token(b: &[u8], from: usize) -> Option<usize> {
    find(b, from, Stop::NonToken)
}

/// Offset of the first byte at or after `from` that is not a tchar, for a
/// header name: letters, digits and `-` are tested first, with the cheaper
/// NameEnd; a name with other token bytes (`_`, `.`, ...) is scanned on
/// from there with NonToken.
#[inline]
fn find_name_end(b: &[u8], from: usize) -> Option<usize> {
    let end = find(b, from, Stop::NameEnd)?;
    match b.get(end) {
        Some(&c) if is_tchar(c) => find_non_token(b, end),
        _ => Some(end),
    }
}

/// Offset of the first byte at or after `from` outside VCHAR (0x21..=0x7e),
/// the bytes allowed in a request target.
#[inline]
fn find_non_vchar(b: &[u8], from: usize) -> Option<usize> {
    find(b, from, Stop::NonVchar)
}

/// Offset of the first byte at or after `from` that cannot be in a header
/// value: a control byte other than HTAB, or DEL. (obs-text, 0x80 and up,
/// is allowed.) The line's CR or LF is such a byte.
#[inline]
fn find_value_end(b: &[u8], from: usize) -> Option<usize> {
    find(b, from, Stop::ValueEnd)
}

/// Checks the request target `t`, sent with `method`, as far as it has
/// arrived (`complete`: up to its terminating space).
fn check_target(method: &[u8], t: &[u8], complete: bool) -> Result<(), ParseError> {
    match t.first() {
        None if complete => Err(bad("empty request target (doubled space)")),
        None | Some(b'/') => Ok(()),
        Some(b'*') if method != b"OPTIONS" => Err(bad("asterisk-form target without OPTIONS")),
        Some(b'*') if t.len() > 1 => Err(bad("junk after asterisk-form target")),
        Some(b'*') => Ok(()),
        Some(_) => check_absolute_prefix(t, complete),
    }
}

/// Checks that `t` is (so far) `http://` or `https://` followed by a
/// non-empty authority. Letters in the scheme may be in any case.
fn check_absolute_prefix(t: &[u8], complete: bool) -> Result<(), ParseError> {
    for scheme in [&b"http://"[..], b"https://"] {
        let n = t.len().min(scheme.len());
        let (Some(have), Some(want)) = (t.get(..n), scheme.get(..n)) else {
            continue;
        };
        if !have.eq_ignore_ascii_case(want) {
            continue;
        }
        return match t.get(scheme.len()) {
            Some(b'/') => Err(bad("absolute-form target without authority")),
            None if complete => Err(bad("absolute-form target without authority")),
            _ => Ok(()),
        };
    }
    Err(bad("request target is neither origin-form nor http(s) absolute-form"))
}

/// Whether the header name `name` is `lower` (lower-case letters and `-`),
/// ignoring case. Setting bit 5 lower-cases a letter, and maps no other
/// token byte onto a letter or `-`. All bytes are compared, without an early
/// exit, and `lower`'s length is a constant: the compiler turns it into a
/// few word compares.
#[inline(always)]
fn name_is<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    let Ok(name) = <&[u8; N]>::try_from(name) else { return false };
    name.iter().zip(lower).fold(true, |same, (&c, &l)| same & (c | 0x20 == l))
}

/// Strips SP and HTAB from both ends.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits =
        Limits { max_request_line: 8 * 1024, max_header_bytes: 16 * 1024, max_headers: 100 };

    /// Everything a head exposes, owned, so results can be compared.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        method: Vec<u8>,
        target: Vec<u8>,
        minor_version: u8,
        content_length: Option<u64>,
        chunked: bool,
        keep_alive: bool,
        host: Option<Vec<u8>>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    }

    fn owned(h: &RequestHead<'_>) -> Owned {
        Owned {
            method: h.method.to_vec(),
            target: h.target.to_vec(),
            minor_version: h.minor_version,
            content_length: h.content_length,
            chunked: h.chunked,
            keep_alive: h.keep_alive,
            host: h.host.map(<[u8]>::to_vec),
            headers: h.headers().map(|(n, v)| (n.to_vec(), v.to_vec())).collect(),
        }
    }

    type Outcome = Result<(Status, Option<Owned>), ParseError>;

    fn outcome(p: &Parser, buf: &[u8], r: Result<Status, ParseError>) -> Outcome {
        r.map(|st| match st {
            Status::Complete(_) => (st, Some(owned(&p.head(buf)))),
            Status::Partial => (st, None),
        })
    }

    fn one_shot(buf: &[u8], limits: &Limits) -> Outcome {
        let mut p = Parser::new();
        let r = p.parse(buf, limits);
        outcome(&p, buf, r)
    }

    /// Feeds `buf` growing to each of `cuts` in turn, then whole. Checks
    /// that once a result is final it stays so.
    fn fed(buf: &[u8], cuts: &[usize], limits: &Limits) -> Outcome {
        let mut p = Parser::new();
        let mut last: Option<Result<Status, ParseError>> = None;
        for &cut in cuts.iter().chain(std::iter::once(&buf.len())) {
            let r = p.parse(&buf[..cut.min(buf.len())], limits);
            if let Some(prev) = last {
                if prev != Ok(Status::Partial) {
                    assert_eq!(prev, r, "a final result changed");
                }
            }
            last = Some(r);
        }
        let r = last.unwrap_or(Ok(Status::Partial));
        outcome(&p, buf, r)
    }

    fn byte_at_a_time(buf: &[u8], limits: &Limits) -> Outcome {
        let cuts: Vec<usize> = (0..=buf.len()).collect();
        fed(buf, &cuts, limits)
    }

    fn parse_ok(buf: &[u8]) -> Owned {
        match one_shot(buf, &LIMITS) {
            Ok((Status::Complete(n), Some(h))) => {
                assert_eq!(n, buf.len(), "head length of {:?}", String::from_utf8_lossy(buf));
                h
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    fn err(buf: &[u8]) -> ParseError {
        match one_shot(buf, &LIMITS) {
            Err(e) => e,
            other => panic!("{:?}: expected an error, got {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    const CURL: &[u8] =
        b"GET /index.html HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
    const BROWSER: &[u8] = b"GET /static/app.js?v=3 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=abc123; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
If-None-Match: \"5f3a-1b2c\"\r\n\
Sec-Fetch-Dest: script\r\n\r\n";

    fn valid_requests() -> Vec<&'static [u8]> {
        vec![
            CURL,
            BROWSER,
            b"GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET HTTPS://Example.COM HTTP/1.1\r\nHost: example.com\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.0\nUser-Agent: x\n\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nHost: a\n\r\n",
            b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
            b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces: \t a b \t \r\n\r\n",
        ]
    }

    #[test]
    fn curl_request() {
        let h = parse_ok(CURL);
        assert_eq!(h.method, b"GET");
        assert_eq!(h.target, b"/index.html");
        assert_eq!(h.minor_version, 1);
        assert_eq!(h.host.as_deref(), Some(&b"localhost:8080"[..]));
        assert!(h.keep_alive);
        assert_eq!(h.content_length, None);
        assert!(!h.chunked);
        assert_eq!(h.headers.len(), 3);
        assert_eq!(h.headers[1], (b"User-Agent".to_vec(), b"curl/8.5.0".to_vec()));
    }

    #[test]
    fn browser_request() {
        let h = parse_ok(BROWSER);
        assert_eq!(h.target, b"/static/app.js?v=3");
        assert_eq!(h.headers.len(), 11);
        assert_eq!(h.headers[3].1, b"en-US,en;q=0.5");
        assert_eq!(h.headers[9].1, b"\"5f3a-1b2c\"");
        let mut p = Parser::new();
        assert_eq!(p.parse(BROWSER, &LIMITS), Ok(Status::Complete(BROWSER.len())));
        let head = p.head(BROWSER);
        assert_eq!(head.header(b"accept-encoding"), Some(&b"gzip, deflate, br"[..]));
        assert_eq!(head.header(b"COOKIE"), Some(&b"session=abc123; theme=dark"[..]));
        assert_eq!(head.header(b"x-missing"), None);
    }

    #[test]
    fn other_valid_forms() {
        let h = parse_ok(b"GET http://example.com/a?b=c HTTP/1.1\r\nHost: example.com\r\n\r\n");
        assert_eq!(h.target, b"http://example.com/a?b=c");
        let h = parse_ok(b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!((h.minor_version, h.keep_alive, h.host), (0, false, None));
        let h = parse_ok(b"GET / HTTP/1.1\nHost: a\n\n");
        assert_eq!(h.headers, vec![(b"Host".to_vec(), b"a".to_vec())]);
        let h = parse_ok(b"\r\n\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.method, b"GET");
        let h = parse_ok(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
        assert_eq!(h.target, b"*");
        let h = parse_ok(b"POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\ncontent-length: 05\r\n\r\n");
        assert_eq!(h.content_length, Some(5));
        let h = parse_ok(b"POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n");
        assert!(h.chunked);
        let h = parse_ok(b"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces: \t a b \t \r\n\r\n");
        assert_eq!(h.headers[1], (b"X-Empty".to_vec(), b"".to_vec()));
        assert_eq!(h.headers[2], (b"X-Spaces".to_vec(), b"a b".to_vec()));
        let h = parse_ok(b"GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n");
        assert_eq!(h.headers[1].1, b"caf\xc3\xa9");
        let h = parse_ok(b"GET / HTTP/1.1\r\nHost:\r\n\r\n");
        assert_eq!(h.host.as_deref(), Some(&b""[..]));
    }

    #[test]
    fn keep_alive() {
        let cases: &[(&[u8], bool)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, CLOSE\r\n\r\n", false),
            (b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: foo ,keep-alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\n\r\n", true),
            // Bytes one bit from `-` or a letter are not them.
            (b"GET / HTTP/1.0\r\nConnection: keep_alive\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep\talive\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep\xadalive\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: keep-alivE\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-aliv\xc5\r\n\r\n", false),
        ];
        for &(req, want) in cases {
            assert_eq!(parse_ok(req).keep_alive, want, "{:?}", String::from_utf8_lossy(req));
        }
    }

    /// One malformed head per rule, with the error it must produce.
    #[test]
    fn malformed() {
        use ParseError::*;
        let bad = BadRequest("");
        let cases: &[(&[u8], ParseError)] = &[
            // Request line.
            (b"\x16\x03\x01\x02\x00", bad),
            (b" GET / HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"\tGET / HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET /  HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/1.1\rHost: a\r\n\r\n", bad),
            (b"GET/ HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"G(T / HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET\r\n\r\n", bad),
            (b"GET /\r\n\r\n", bad),
            (b"GET / \r\n\r\n", bad),
            (b"GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET /a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET http:/a HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET http:// HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET http:///a HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"CONNECT a.com:443 HTTP/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET / http/1.1\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/1!\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/1.1x\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/1.\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/1\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/.1\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/1.1 junk\r\nHost: a\r\n\r\n", bad),
            (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/1.32\r\nHost: a\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/3.0\r\nHost: a\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", VersionNotSupported),
            (b"GET / HTTP/01.1\r\nHost: a\r\n\r\n", VersionNotSupported),
            // Header lines.
            (b"GET / HTTP/1.1\r\n Host: a\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\tc\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost : a\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX(y): b\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX\xc3\xa9: b\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nX: ab\r\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\n\rX", bad),
            (b"GET / HTTP/1.1\r\nHost: a\x0b\r\n\r\n", bad),
            // Semantics.
            (b"GET / HTTP/1.1\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", bad),
            (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", NotImplemented),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", NotImplemented),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", NotImplemented),
            (
                b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                NotImplemented,
            ),
            (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", bad),
            (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", bad),
            (b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", bad),
        ];
        for &(req, want) in cases {
            let got = err(req);
            let same = match (got, want) {
                (BadRequest(_), BadRequest(_)) => true,
                _ => got == want,
            };
            assert!(same, "{:?}: got {got:?}, want {want:?}", String::from_utf8_lossy(req));
            // Split feeding must reject it the same way.
            assert_eq!(byte_at_a_time(req, &LIMITS).err(), Some(got));
        }
    }

    #[test]
    fn parser_is_small() {
        // A connection holds one while a request is partial.
        assert!(std::mem::size_of::<Parser>() <= 1024, "{}", std::mem::size_of::<Parser>());
    }

    #[test]
    fn status_codes() {
        assert_eq!(ParseError::BadRequest("x").status(), 400);
        assert_eq!(ParseError::UriTooLong.status(), 414);
        assert_eq!(ParseError::HeaderTooLarge.status(), 431);
        assert_eq!(ParseError::VersionNotSupported.status(), 505);
        assert_eq!(ParseError::NotImplemented.status(), 501);
        assert_eq!(ParseError::BadRequest("why").to_string(), "bad request: why");
    }

    #[test]
    fn limits() {
        let long_target = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(9000));
        assert_eq!(err(long_target.as_bytes()), ParseError::UriTooLong);

        // Exactly at the request line limit passes, one more byte does not.
        let small = Limits { max_request_line: 20, ..LIMITS };
        let line = |n: usize| format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(n));
        let fits = line(20 - "GET / HTTP/1.1".len());
        assert!(matches!(one_shot(fits.as_bytes(), &small), Ok((Status::Complete(_), _))));
        let over = line(21 - "GET / HTTP/1.1".len());
        assert_eq!(one_shot(over.as_bytes(), &small).err(), Some(ParseError::UriTooLong));
        assert_eq!(byte_at_a_time(over.as_bytes(), &small).err(), Some(ParseError::UriTooLong));

        let big_header = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "b".repeat(17000));
        assert_eq!(err(big_header.as_bytes()), ParseError::HeaderTooLarge);

        // The head may be exactly max_header_bytes long.
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let exact = Limits { max_header_bytes: req.len(), ..LIMITS };
        assert_eq!(one_shot(req, &exact).map(|r| r.0), Ok(Status::Complete(req.len())));
        let short = Limits { max_header_bytes: req.len() - 1, ..LIMITS };
        assert_eq!(one_shot(req, &short).err(), Some(ParseError::HeaderTooLarge));
        assert_eq!(byte_at_a_time(req, &short).err(), Some(ParseError::HeaderTooLarge));
        // ... and the body after it does not count.
        let with_body = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99\r\n\r\nbody bytes";
        let exact = Limits { max_header_bytes: with_body.len() - 10, ..LIMITS };
        let r = one_shot(with_body, &exact).map(|r| r.0);
        assert_eq!(r, Ok(Status::Complete(with_body.len() - 10)));

        // Endless empty lines before the request line.
        assert_eq!(err(&b"\r\n".repeat(9000)), ParseError::HeaderTooLarge);

        let many = |n: usize| {
            let mut r = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
            for i in 1..n {
                r.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
            }
            r.extend_from_slice(b"\r\n");
            r
        };
        assert_eq!(parse_ok(&many(100)).headers.len(), 100);
        assert_eq!(err(&many(101)), ParseError::HeaderTooLarge);
        let ten = Limits { max_headers: 10, ..LIMITS };
        assert!(one_shot(&many(10), &ten).is_ok());
        assert_eq!(one_shot(&many(11), &ten).err(), Some(ParseError::HeaderTooLarge));
        // Limits above the hard ceilings are clamped, not trusted.
        let huge = Limits { max_request_line: usize::MAX, max_header_bytes: usize::MAX, max_headers: 1000 };
        assert_eq!(one_shot(&many(101), &huge).err(), Some(ParseError::HeaderTooLarge));
        let mut giant = b"GET /".to_vec();
        giant.resize(70_000, b'a');
        assert_eq!(one_shot(&giant, &huge).err(), Some(ParseError::HeaderTooLarge));
    }

    #[test]
    fn early_rejection() {
        let mut p = Parser::new();
        assert!(matches!(p.parse(b"\x16", &LIMITS), Err(ParseError::BadRequest(_))));
        // The error sticks.
        assert!(matches!(p.parse(b"\x16\x03\x01", &LIMITS), Err(ParseError::BadRequest(_))));

        for prefix in
            [&b"GE\x00"[..], b"GET /a\x00", b"GET / HTTP/1.1\r\nHost: a\x00", b"GET / HTTP/1.1\r\nHo\x00"]
        {
            let mut p = Parser::new();
            let r = p.parse(prefix, &LIMITS);
            assert!(matches!(r, Err(ParseError::BadRequest(_))), "{prefix:?}: {r:?}");
        }
        for prefix in
            [&b"GET / HTTP/1.1\r\nHost: a\rx"[..], b"GET / HTTP/1.1\rx", b"GET / HTTPS", b"GET / HTTP/1.1 "]
        {
            let mut p = Parser::new();
            let r = p.parse(prefix, &LIMITS);
            assert!(matches!(r, Err(ParseError::BadRequest(_))), "{prefix:?}: {r:?}");
        }

        let mut line = b"GET /".to_vec();
        line.resize(9 * 1024, b'a');
        assert_eq!(Parser::new().parse(&line, &LIMITS), Err(ParseError::UriTooLong));
        // Also when it trickles in.
        let mut p = Parser::new();
        let mut result = Ok(Status::Partial);
        for chunk_end in (1000..=line.len()).step_by(1000).chain([line.len()]) {
            result = p.parse(&line[..chunk_end], &LIMITS);
            if result.is_err() {
                assert!(chunk_end > LIMITS.max_request_line);
                break;
            }
        }
        assert_eq!(result, Err(ParseError::UriTooLong));
    }

    #[test]
    fn bytes_after_the_head_are_ignored() {
        let mut buf = CURL.to_vec();
        buf.extend_from_slice(b"\x00\x16garbage GET / HTTP/9.9\r\n");
        let mut p = Parser::new();
        assert_eq!(p.parse(&buf, &LIMITS), Ok(Status::Complete(CURL.len())));
        assert_eq!(owned(&p.head(&buf)), parse_ok(CURL));
    }

    #[test]
    fn pipelined_with_reset() {
        let mut buf = Vec::new();
        for r in valid_requests() {
            buf.extend_from_slice(r);
        }
        let mut p = Parser::new();
        let mut rest = &buf[..];
        for want in valid_requests() {
            let Ok(Status::Complete(n)) = p.parse(rest, &LIMITS) else { panic!("{want:?}") };
            assert_eq!(owned(&p.head(rest)), parse_ok(want));
            rest = &rest[n..];
            p.reset();
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn every_prefix_is_partial() {
        for req in valid_requests() {
            let whole = parse_ok(req);
            for i in 0..req.len() {
                let mut p = Parser::new();
                assert_eq!(p.parse(&req[..i], &LIMITS), Ok(Status::Partial), "{req:?} cut at {i}");
                let r = p.parse(req, &LIMITS);
                let want = Ok((Status::Complete(req.len()), Some(whole.clone())));
                assert_eq!(outcome(&p, req, r), want);
            }
        }
    }

    #[test]
    fn byte_at_a_time_equals_one_shot() {
        for req in valid_requests() {
            assert_eq!(byte_at_a_time(req, &LIMITS), one_shot(req, &LIMITS));
        }
    }

    #[test]
    fn short_buffer_does_not_panic() {
        // Misuse: a buffer shorter than the previous one.
        let mut p = Parser::new();
        assert_eq!(p.parse(b"GET / HT", &LIMITS), Ok(Status::Partial));
        assert_eq!(p.parse(b"GE", &LIMITS), Ok(Status::Partial));
        let _ = p.head(b"");
    }

    #[test]
    fn scanners_find_the_first_match() {
        // Every length around the 16-byte blocks, every start, every spot.
        for len in 0..40 {
            for from in 0..=len {
                let clean = vec![b'a'; len];
                assert_eq!(find_non_vchar(&clean, from), None);
                assert_eq!(find_value_end(&clean, from), None);
                assert_eq!(find_non_token(&clean, from), None);
                for at in 0..len {
                    for bad in
                        [0u8, b' ', b'\t', b'\r', b':', 0x7f, 0x80, 0xff, b'_', b'-', b'@', b'`', b'[', b'/']
                    {
                        let mut s = clean.clone();
                        s[at] = bad;
                        // A later match too, to check the order.
                        if at + 1 < len {
                            s[at + 1] = 0x01;
                        }
                        let first = |stops: bool| {
                            let later = (at + 1 < len).then_some(at + 1);
                            if at < from {
                                later.filter(|&l| l >= from)
                            } else if stops {
                                Some(at)
                            } else {
                                later
                            }
                        };
                        let vchar = (0x21..=0x7e).contains(&bad);
                        assert_eq!(find_non_vchar(&s, from), first(!vchar), "{s:?} {from}");
                        let value_ok = bad == b'\t' || (0x20..=0x7e).contains(&bad) || bad >= 0x80;
                        assert_eq!(find_value_end(&s, from), first(!value_ok), "{s:?} {from}");
                        assert_eq!(find_non_token(&s, from), first(!is_tchar(bad)), "{s:?} {from}");
                        assert_eq!(find_name_end(&s, from), first(!is_tchar(bad)), "{s:?} {from}");
                    }
                }
            }
        }
        // The block tests agree with the definitions, for every byte in
        // every position.
        for stop in [Stop::NonToken, Stop::NonVchar, Stop::ValueEnd, Stop::NameEnd] {
            for c in 0..=255u8 {
                for i in 0..16 {
                    let mut block = [b'a'; 16];
                    block[i] = c;
                    let want = if stop.at(c) { 1 << i } else { 0 };
                    assert_eq!(stop_mask(&block, stop), want, "{stop:?} {c:#x} at {i}");
                }
            }
        }
        for c in 0..=255u8 {
            let token = c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
            assert_eq!(Stop::NonToken.at(c), !token, "{c:#x}");
        }
    }

    // ---- property tests ----

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    /// A generated valid request with the headers it should yield.
    #[derive(Debug, Clone)]
    struct Gen {
        bytes: Vec<u8>,
        method: String,
        target: String,
        minor: u8,
        headers: Vec<(String, String)>,
    }

    fn valid_request() -> impl Strategy<Value = Gen> {
        let header =
            (token(), "[ \t]{0,2}", "[!-~]([ -~\t\u{80}-\u{ff}]{0,20}[!-~])?", "[ \t]{0,2}", any::<bool>());
        (
            0usize..3,
            token(),
            prop_oneof![
                "/[A-Za-z0-9/._~%?=&-]{0,40}",
                "[hH][tT][tT][pP][sS]?://[a-z0-9.]{1,10}(/[a-z0-9]{0,10})?"
            ],
            0u8..2,
            "[ -~]{0,20}",
            prop::collection::vec(header, 0..12),
            any::<bool>(),
        )
            .prop_map(|(blank, method, target, minor, host, headers, lf)| {
                let eol = |lf: bool| if lf { "\n" } else { "\r\n" };
                let host = host.trim_matches([' ', '\t']).to_string();
                let mut s = "\r\n".repeat(blank);
                s += &format!("{method} {target} HTTP/1.{minor}{}", eol(lf));
                let mut expect = Vec::new();
                if minor == 1 {
                    s += &format!("Host: {host}{}", eol(lf));
                    expect.push(("Host".to_string(), host));
                }
                for (name, ows1, value, ows2, lf) in headers {
                    // Skip names the semantic rules would look at.
                    let lower = name.to_ascii_lowercase();
                    if ["host", "content-length", "transfer-encoding"].contains(&lower.as_str()) {
                        continue;
                    }
                    s += &format!("{name}:{ows1}{value}{ows2}{}", eol(lf));
                    expect.push((name, value));
                }
                s += eol(lf);
                // Values use chars up to U+00FF to stand for bytes 0x80..=0xff.
                let bytes = s.chars().map(|c| c as u32 as u8).collect();
                let headers = expect
                    .into_iter()
                    .map(|(n, v)| (n, v.chars().map(|c| c as u32 as u8 as char).collect()))
                    .collect();
                Gen { bytes, method, target, minor, headers }
            })
    }

    /// Bytes that are often almost a request: a valid one with a few bytes
    /// changed, inserted or cut, or plain random bytes.
    fn messy_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            (valid_request(), prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4)).prop_map(
                |(g, edits)| {
                    let mut b = g.bytes;
                    for (at, byte, kind) in edits {
                        let at = at % (b.len() + 1);
                        match kind {
                            0 if at < b.len() => b[at] = byte,
                            1 => b.insert(at, byte),
                            _ => b.truncate(at),
                        }
                    }
                    b
                }
            ),
        ]
    }

    proptest! {
        // No regression files: failures print their minimal input instead.
        #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_bytes_any_splits(buf in messy_bytes(), cuts in prop::collection::vec(any::<usize>(), 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (buf.len() + 1)).collect();
            cuts.sort_unstable();
            let small = Limits { max_request_line: 40, max_header_bytes: 120, max_headers: 4 };
            for limits in [LIMITS, small] {
                let whole = one_shot(&buf, &limits);
                if let Ok((Status::Complete(n), _)) = whole {
                    prop_assert!(n <= buf.len());
                }
                prop_assert_eq!(fed(&buf, &cuts, &limits), whole);
            }
        }

        #[test]
        fn valid_request_any_split(g in valid_request()) {
            let buf = &g.bytes;
            let whole = parse_ok(buf);
            prop_assert_eq!(whole.method.as_slice(), g.method.as_bytes());
            prop_assert_eq!(whole.target.as_slice(), g.target.as_bytes());
            prop_assert_eq!(whole.minor_version, g.minor);
            let want: Vec<(Vec<u8>, Vec<u8>)> = g
                .headers
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.chars().map(|c| c as u32 as u8).collect()))
                .collect();
            prop_assert_eq!(&whole.headers, &want);
            for i in 0..buf.len() {
                let mut p = Parser::new();
                prop_assert_eq!(p.parse(&buf[..i], &LIMITS), Ok(Status::Partial));
                let r = p.parse(buf, &LIMITS);
                prop_assert_eq!(r, Ok(Status::Complete(buf.len())));
                prop_assert_eq!(&owned(&p.head(buf)), &whole);
            }
            prop_assert_eq!(byte_at_a_time(buf, &LIMITS), Ok((Status::Complete(buf.len()), Some(whole))));
        }
    }
}
