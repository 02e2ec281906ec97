//! What the responder takes: a protocol-independent request, borrowed from
//! the protocol's buffers.

use std::net::SocketAddr;

use crate::http::fields::Fields;

/// The HTTP version a request came in, for handlers and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Http10,
    Http11,
    Http2,
}

impl Version {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
        }
    }
}

/// A request as the responder sees it, borrowed from the protocol's buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'a> {
    pub method: &'a [u8],
    /// The target exactly as sent.
    pub target: &'a [u8],
    pub version: Version,
    pub fields: Fields<'a>,
    pub peer: SocketAddr,
    /// It came over TLS (`https`).
    pub secure: bool,
    /// The request body, read for a handler (see `Responder::body_limit`);
    /// empty for everything else (the protocol drops those bodies).
    pub body: &'a [u8],
}

/// A request for unit tests: a method and header fields, kept in the
/// buffer and spans a protocol would hand over.
#[cfg(test)]
pub(crate) struct TestRequest {
    method: &'static str,
    buf: Vec<u8>,
    spans: Vec<crate::http::fields::HeaderSpan>,
}

#[cfg(test)]
impl TestRequest {
    pub(crate) fn new(method: &'static str, fields: &[(&str, &str)]) -> TestRequest {
        use crate::http::fields::HeaderSpan;
        let (mut buf, mut spans) = (Vec::new(), Vec::new());
        for (name, value) in fields {
            spans.push(HeaderSpan::append(&mut buf, name.as_bytes(), value.as_bytes()));
        }
        TestRequest { method, buf, spans }
    }

    pub(crate) fn req(&self) -> Request<'_> {
        Request {
            method: self.method.as_bytes(),
            target: b"/",
            version: Version::Http11,
            fields: Fields::new(&self.buf, &self.spans),
            peer: SocketAddr::from(([127, 0, 0, 1], 1)),
            secure: false,
            body: &[],
        }
    }
}
