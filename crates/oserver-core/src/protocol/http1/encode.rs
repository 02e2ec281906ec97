//! HTTP/1.1 framing of a reply: the status line, `Server` and `Date`, the
//! reply's fields, then the framing headers this protocol owns
//! (`Content-Length` or `Transfer-Encoding`, `Connection` where the
//! version's default is not what happens, or where the settings ask for it).

use crate::http::clock::Clock;
use crate::http::{push_u64, server, status};
use crate::respond::{Reply, Version};

/// The status line's end, the Server field and the Date field's name: the
/// same bytes in every head.
const SERVER_LINE: &[u8] = concat!("\r\nServer: ", server!(), "\r\nDate: ").as_bytes();

/// The `Connection` field of a head: what the connection does after the
/// response, decided by the connection (see `conn::Conn::decide`), as the
/// client's version needs to be told (or the settings want said).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Connection {
    /// It stays open, which HTTP/1.1 assumes (RFC 9112 §9.3): no field, as
    /// hyper, h2o and may_minihttp do: 24 bytes less an answer.
    Persists,
    /// It stays open and says so: `Connection: keep-alive`. An HTTP/1.0
    /// client, which assumes it closes, needs it; an HTTP/1.1 one gets it
    /// when [`Settings::keep_alive_field`](crate::Settings::keep_alive_field)
    /// is on.
    KeepAlive,
    /// It closes: `Connection: close`.
    Close,
}

impl Connection {
    /// The field for a connection that stays open (`keep_alive`) or not,
    /// after an answer to a request of `version`; `field` is
    /// [`Settings::keep_alive_field`](crate::Settings::keep_alive_field).
    pub(crate) fn after(keep_alive: bool, version: Version, field: bool) -> Connection {
        match (keep_alive, version, field) {
            (false, _, _) => Connection::Close,
            (true, Version::Http10, _) | (true, _, true) => Connection::KeepAlive,
            (true, _, false) => Connection::Persists,
        }
    }
}

/// Append `reply`'s head to `out`, with the `connection` field; `chunked`:
/// the body is a stream sent in chunks (see [`chunk`]).
pub(crate) fn head(out: &mut Vec<u8>, clock: &Clock, reply: &Reply, connection: Connection, chunked: bool) {
    // A status is three digits (the responder sees to it): written as such.
    let s = reply.status;
    match common_start(s) {
        Some(start) => out.extend_from_slice(start),
        None => {
            let digits = [b'0' + (s / 100 % 10) as u8, b'0' + (s / 10 % 10) as u8, b'0' + (s % 10) as u8];
            out.extend_from_slice(b"HTTP/1.1 ");
            out.extend_from_slice(&digits);
            out.push(b' ');
            out.extend_from_slice(status::reason(s).as_bytes());
            out.extend_from_slice(SERVER_LINE);
        }
    }
    out.extend_from_slice(&clock.http);
    out.extend_from_slice(b"\r\n");
    for (name, value) in reply.fields.iter() {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if reply.sends_length() {
        out.extend_from_slice(b"Content-Length: ");
        push_u64(out, reply.content_length);
        out.extend_from_slice(b"\r\n");
    } else if chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    }
    out.extend_from_slice(match connection {
        Connection::Persists => b"\r\n".as_slice(),
        Connection::KeepAlive => b"Connection: keep-alive\r\n\r\n".as_slice(),
        Connection::Close => b"Connection: close\r\n\r\n".as_slice(),
    });
}

/// One piece of a streamed body as a chunk (`piece` is never empty: an
/// empty chunk ends the body), or the last chunk when `piece` is None.
pub(crate) fn chunk(out: &mut Vec<u8>, piece: Option<&[u8]>) {
    match piece {
        Some(p) => {
            debug_assert!(!p.is_empty());
            let mut digits = [0u8; 16];
            let mut at = digits.len();
            let mut n = p.len();
            loop {
                at -= 1;
                digits[at] = b"0123456789abcdef"[n & 15];
                n >>= 4;
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[at..]);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(p);
            out.extend_from_slice(b"\r\n");
        }
        None => out.extend_from_slice(b"0\r\n\r\n"),
    }
}

/// The start of a head up to the Date field's value (the status line, the
/// Server field), made at compile time for the statuses most answers have:
/// one copy instead of five and the status's digits.
fn common_start(status: u16) -> Option<&'static [u8]> {
    macro_rules! start {
        ($code:literal, $reason:literal) => {
            concat!("HTTP/1.1 ", $code, " ", $reason, "\r\nServer: ", server!(), "\r\nDate: ").as_bytes()
        };
    }
    Some(match status {
        200 => start!("200", "OK"),
        204 => start!("204", "No Content"),
        206 => start!("206", "Partial Content"),
        304 => start!("304", "Not Modified"),
        404 => start!("404", "Not Found"),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_has_status_line_fields_and_framing() {
        let clock = Clock::new();
        let mut reply = Reply::default();
        reply.error(404);
        let mut out = Vec::new();
        head(&mut out, &clock, &reply, Connection::Persists, false);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\nServer: oserver/"), "{text}");
        assert!(text.contains("\r\nContent-Type: text/html\r\n"));
        // The Connection field's bytes: the next test.
        assert!(text.ends_with(&format!("\r\nContent-Length: {}\r\n\r\n", reply.bytes.len())), "{text}");
    }

    #[test]
    fn http_1_1_is_told_the_connection_stays_only_when_the_setting_asks() {
        use Connection::*;
        use Version::*;
        // (keep_alive, version, keep_alive_field) -> the field, its bytes.
        let table = [
            (true, Http11, false, Persists, "\r\n\r\n"),
            (true, Http11, true, KeepAlive, "\r\nConnection: keep-alive\r\n\r\n"),
            (true, Http10, false, KeepAlive, "\r\nConnection: keep-alive\r\n\r\n"),
            (true, Http10, true, KeepAlive, "\r\nConnection: keep-alive\r\n\r\n"),
            (false, Http11, false, Close, "\r\nConnection: close\r\n\r\n"),
            (false, Http11, true, Close, "\r\nConnection: close\r\n\r\n"),
            (false, Http10, false, Close, "\r\nConnection: close\r\n\r\n"),
            (false, Http10, true, Close, "\r\nConnection: close\r\n\r\n"),
        ];
        let clock = Clock::new();
        let mut reply = Reply::default();
        reply.error(404);
        let length = format!("\r\nContent-Length: {}", reply.bytes.len());
        for (keep_alive, version, field, want, end) in table {
            let what = format!("{keep_alive} {version:?} {field}");
            let connection = Connection::after(keep_alive, version, field);
            assert_eq!(connection, want, "{what}");
            let mut out = Vec::new();
            head(&mut out, &clock, &reply, connection, false);
            let text = String::from_utf8(out).unwrap();
            // The field, if any, is the head's last, right after the length.
            assert!(text.ends_with(&format!("{length}{end}")), "{what}: {text}");
            assert_eq!(text.matches("Connection").count(), usize::from(want != Persists), "{what}: {text}");
        }
    }

    #[test]
    fn common_starts_are_what_the_status_makes() {
        let mut common = 0;
        for s in 100..=599 {
            let Some(start) = common_start(s) else { continue };
            common += 1;
            let want = format!("HTTP/1.1 {s} {}\r\nServer: {}\r\nDate: ", status::reason(s), server!());
            assert_eq!(std::str::from_utf8(start), Ok(want.as_str()));
        }
        assert_eq!(common, 5);
    }

    #[test]
    fn no_content_length_where_rfc_9110_forbids_it() {
        let clock = Clock::new();
        for (status, len, want) in [(204, 0, false), (304, 0, false), (304, 120, true), (200, 0, true)] {
            let mut reply = Reply::default();
            reply.error(status);
            reply.content_length = len;
            let mut out = Vec::new();
            head(&mut out, &clock, &reply, Connection::Persists, false);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.contains("Content-Length"), want, "{status}: {text}");
        }
    }

    #[test]
    fn chunks_are_hex_sized_and_the_last_is_empty() {
        let mut out = Vec::new();
        chunk(&mut out, Some(b"hello"));
        chunk(&mut out, Some(&[b'x'; 300]));
        chunk(&mut out, None);
        let mut want = b"5\r\nhello\r\n12c\r\n".to_vec();
        want.extend_from_slice(&[b'x'; 300]);
        want.extend_from_slice(b"\r\n0\r\n\r\n");
        assert_eq!(out, want);
        // The server's own chunked decoder reads it back.
        let mut dec = super::super::chunked::Chunked::new(1 << 20);
        let mut body = Vec::new();
        let p = dec.decode(&out, &mut body).unwrap();
        assert!(p.done);
        assert_eq!(body.len(), 305);
    }

    #[test]
    fn a_stream_is_chunked_and_has_no_length() {
        let clock = Clock::new();
        let mut reply = Reply::default();
        reply.start(200);
        reply.payload = crate::respond::Payload::Stream(crate::respond::stream::BodyStream::iter(vec!["x"]));
        let mut out = Vec::new();
        head(&mut out, &clock, &reply, Connection::Persists, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\nTransfer-Encoding: chunked\r\n") && !text.contains("Content-Length"));
        let mut out = Vec::new();
        head(&mut out, &clock, &reply, Connection::Close, false);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Transfer-Encoding") && !text.contains("Content-Length"), "{text}");
    }
}
