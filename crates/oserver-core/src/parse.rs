//! Incremental, strict HTTP/1.1 request-head parser (RFC 9112).
//!
//! INTERFACE STUB: the parser helper fills this in. Signatures are fixed; the
//! event loop is written against them.

/// Bounds on a request head. Each number is explained where it is defined.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest request line accepted, CRLF excluded (414 beyond).
    pub max_request_line: usize,
    /// Longest whole head accepted, request line included (431 beyond).
    pub max_header_bytes: usize,
    /// Most header lines accepted (431 beyond).
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_request_line: 8 * 1024, max_header_bytes: 16 * 1024, max_headers: 100 }
    }
}

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

/// A byte range `start..end` into the request buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u16,
    /// One past the last byte.
    pub end: u16,
}

/// One header line, as spans into the buffer (value trimmed of OWS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderSpan {
    /// The field name.
    pub name: Span,
    /// The field value.
    pub value: Span,
}

/// A resumable parser. Feed it the request buffer (which always starts at the
/// request's first byte and only grows at its end) each time more bytes arrive.
#[derive(Debug, Clone)]
pub struct Parser {
    _todo: (),
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
    pub fn headers(&self) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + '_ {
        let buf = self.buf;
        self.headers.iter().map(move |h| {
            (&buf[h.name.start as usize..h.name.end as usize], &buf[h.value.start as usize..h.value.end as usize])
        })
    }

    /// The first header with this name (ASCII case-insensitive).
    pub fn header(&self, name: &[u8]) -> Option<&'b [u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
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
        todo!()
    }

    /// Forget everything; ready for the next request.
    pub fn reset(&mut self) {
        todo!()
    }

    /// Continue parsing `buf` from where the last call stopped.
    pub fn parse(&mut self, buf: &[u8], limits: &Limits) -> Result<Status, ParseError> {
        let _ = (buf, limits);
        todo!()
    }

    /// The parsed head. Only meaningful after `parse` returned `Complete`, with
    /// the same buffer.
    pub fn head<'b>(&'b self, buf: &'b [u8]) -> RequestHead<'b> {
        let _ = buf;
        todo!()
    }
}
