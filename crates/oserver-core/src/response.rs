//! Rendering response heads: status line, common headers, error pages.

use std::time::SystemTime;

/// `Server:` value, fixed at compile time.
pub(crate) const SERVER: &str = concat!("oserver/", env!("CARGO_PKG_VERSION"));

/// The reason phrase for the status codes this server sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        414 => "URI Too Long",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// The current time as HTTP and access-log dates, refreshed at most once a
/// second by the event loop so no request formats a date.
pub(crate) struct Clock {
    secs: u64,
    /// IMF-fixdate, e.g. `Sat, 21 Nov 2026 10:50:49 GMT` (always 29 bytes).
    pub(crate) http: [u8; 29],
    /// Access-log time, e.g. `21/Nov/2026:10:50:49 +0000`.
    pub(crate) log: [u8; 26],
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let mut c = Clock { secs: u64::MAX, http: [b' '; 29], log: [b' '; 26] };
        c.refresh();
        c
    }

    /// Re-render if the second changed. Cheap when it did not.
    pub(crate) fn refresh(&mut self) {
        let now = SystemTime::now();
        let secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if secs == self.secs {
            return;
        }
        self.secs = secs;
        let s = httpdate::fmt_http_date(now);
        let n = s.len().min(29);
        self.http[..n].copy_from_slice(&s.as_bytes()[..n]);
        // "Sat, 21 Nov 2026 10:50:49 GMT" -> "21/Nov/2026:10:50:49 +0000"
        let b = s.as_bytes();
        if b.len() == 29 {
            let mut l = [0u8; 26];
            l[0..2].copy_from_slice(&b[5..7]);
            l[2] = b'/';
            l[3..6].copy_from_slice(&b[8..11]);
            l[6] = b'/';
            l[7..11].copy_from_slice(&b[12..16]);
            l[11] = b':';
            l[12..20].copy_from_slice(&b[17..25]);
            l[20..26].copy_from_slice(b" +0000");
            self.log = l;
        }
    }
}

/// Append a decimal number without going through `fmt`.
pub(crate) fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Writes a response head into a buffer.
pub(crate) struct Head<'o> {
    out: &'o mut Vec<u8>,
}

impl<'o> Head<'o> {
    /// Status line plus `Server` and `Date`.
    pub(crate) fn start(out: &'o mut Vec<u8>, status: u16, clock: &Clock) -> Head<'o> {
        out.extend_from_slice(b"HTTP/1.1 ");
        push_u64(out, u64::from(status));
        out.push(b' ');
        out.extend_from_slice(reason(status).as_bytes());
        out.extend_from_slice(b"\r\nServer: ");
        out.extend_from_slice(SERVER.as_bytes());
        out.extend_from_slice(b"\r\nDate: ");
        out.extend_from_slice(&clock.http);
        out.extend_from_slice(b"\r\n");
        Head { out }
    }

    pub(crate) fn header(&mut self, name: &str, value: &[u8]) -> &mut Self {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        self.out.extend_from_slice(value);
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// A header whose value is the concatenation of `parts`.
    pub(crate) fn header_parts(&mut self, name: &str, parts: &[&[u8]]) -> &mut Self {
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        for p in parts {
            self.out.extend_from_slice(p);
        }
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// A header whose value is formatted in place, without a String.
    pub(crate) fn header_display(&mut self, name: &str, value: impl std::fmt::Display) -> &mut Self {
        use std::io::Write;
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b": ");
        let _ = write!(self.out, "{value}");
        self.out.extend_from_slice(b"\r\n");
        self
    }

    /// `Content-Length`, `Connection` and the blank line.
    pub(crate) fn finish(self, content_length: u64, keep_alive: bool) {
        self.out.extend_from_slice(b"Content-Length: ");
        push_u64(self.out, content_length);
        self.out.extend_from_slice(if keep_alive {
            b"\r\nConnection: keep-alive\r\n\r\n".as_slice()
        } else {
            b"\r\nConnection: close\r\n\r\n".as_slice()
        });
    }
}

/// The short HTML body of an error page.
pub(crate) fn error_body(status: u16, out: &mut Vec<u8>) {
    let r = reason(status);
    out.extend_from_slice(b"<html><head><title>");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(r.as_bytes());
    out.extend_from_slice(b"</title></head><body><h1>");
    push_u64(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(r.as_bytes());
    out.extend_from_slice(b"</h1></body></html>\n");
}

/// Length of [`error_body`] for `status`, without rendering it.
pub(crate) fn error_body_len(status: u16) -> u64 {
    // Two copies of "NNN Reason" plus the fixed markup.
    let fixed = "<html><head><title></title></head><body><h1></h1></body></html>\n".len();
    (fixed + 2 * (4 + reason(status).len())) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_len_matches() {
        for s in [400, 403, 404, 405, 413, 414, 431, 500, 501, 505] {
            let mut v = Vec::new();
            error_body(s, &mut v);
            assert_eq!(v.len() as u64, error_body_len(s), "{s}");
        }
    }

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }

    #[test]
    fn clock_formats() {
        let c = Clock::new();
        let h = std::str::from_utf8(&c.http).unwrap();
        assert!(h.ends_with(" GMT"), "{h}");
        assert!(httpdate::parse_http_date(h).is_ok());
        let l = std::str::from_utf8(&c.log).unwrap();
        assert!(l.ends_with(" +0000") && l.as_bytes()[2] == b'/', "{l}");
    }
}
