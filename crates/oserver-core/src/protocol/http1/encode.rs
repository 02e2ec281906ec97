//! HTTP/1.1 framing of a reply: the status line, `Server` and `Date`, the
//! reply's fields, then the framing headers this protocol owns
//! (`Content-Length`, `Connection`).

use crate::http::clock::Clock;
use crate::http::{push_u64, status, SERVER};
use crate::respond::Reply;

/// Append `reply`'s head to `out`. `keep_alive` is the connection's fate,
/// decided by the connection (see `conn::Conn::decide`).
pub(crate) fn head(out: &mut Vec<u8>, clock: &Clock, reply: &Reply, keep_alive: bool) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_u64(out, u64::from(reply.status));
    out.push(b' ');
    out.extend_from_slice(status::reason(reply.status).as_bytes());
    out.extend_from_slice(b"\r\nServer: ");
    out.extend_from_slice(SERVER.as_bytes());
    out.extend_from_slice(b"\r\nDate: ");
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
    }
    out.extend_from_slice(if keep_alive {
        b"Connection: keep-alive\r\n\r\n".as_slice()
    } else {
        b"Connection: close\r\n\r\n".as_slice()
    });
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
        head(&mut out, &clock, &reply, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 404 Not Found\r\nServer: oserver/"), "{text}");
        assert!(text.contains("\r\nContent-Type: text/html\r\n"));
        assert!(text
            .ends_with(&format!("Content-Length: {}\r\nConnection: keep-alive\r\n\r\n", reply.bytes.len())));
        let mut out = Vec::new();
        head(&mut out, &clock, &reply, false);
        assert!(out.ends_with(b"\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn no_content_length_where_rfc_9110_forbids_it() {
        let clock = Clock::new();
        for (status, len, want) in [(204, 0, false), (304, 0, false), (304, 120, true), (200, 0, true)] {
            let mut reply = Reply::default();
            reply.error(status);
            reply.content_length = len;
            let mut out = Vec::new();
            head(&mut out, &clock, &reply, true);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.contains("Content-Length"), want, "{status}: {text}");
        }
    }
}
