//! The access log: combined format, buffered per event loop, whole lines
//! written with O_APPEND.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;

use crate::http::push_u64;
use crate::settings::AccessLog;

/// Flush when the buffer holds this much, besides the once-a-second flush:
/// big enough that a busy loop writes rarely, well under the 64 KiB a single
/// write(2) to a regular file is commonly assumed atomic for.
const FLUSH_AT: usize = 32 * 1024;

pub(crate) struct Writer {
    target: AccessLog,
    file: Option<File>,
    buf: Vec<u8>,
}

/// The request line as logged.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RequestLine<'a> {
    /// A parsed request: method, target and version, e.g. `HTTP/1.1`.
    Parsed { method: &'a [u8], target: &'a [u8], version: &'static str },
    /// A request refused before it was parsed: its first line as received
    /// (nginx logs the same), at most [`RAW_LINE`] bytes.
    Raw(&'a [u8]),
}

/// Most bytes of an unparsable request line that are logged: enough to
/// recognise it, too few for one client to fill the log.
pub(crate) const RAW_LINE: usize = 1024;

/// One request, as the access log records it.
pub(crate) struct Entry<'a> {
    pub peer: SocketAddr,
    pub time: &'a [u8],
    pub request: RequestLine<'a>,
    pub status: u16,
    pub body_bytes: u64,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
}

impl Writer {
    pub(crate) fn open(target: AccessLog) -> io::Result<Writer> {
        let file = open_target(&target)?;
        Ok(Writer { target, file, buf: Vec::with_capacity(FLUSH_AT + 1024) })
    }

    /// `$remote_addr - $remote_user [$time_local] "$request" $status
    /// $body_bytes_sent "$http_referer" "$http_user_agent"` as nginx writes it.
    pub(crate) fn log(&mut self, e: &Entry<'_>) {
        let b = &mut self.buf;
        let _ = write!(b, "{}", e.peer.ip());
        b.extend_from_slice(b" - - [");
        b.extend_from_slice(e.time);
        b.extend_from_slice(b"] \"");
        match e.request {
            RequestLine::Parsed { method, target, version } => {
                escape(b, method);
                b.push(b' ');
                escape(b, target);
                b.push(b' ');
                b.extend_from_slice(version.as_bytes());
            }
            RequestLine::Raw(line) => escape(b, &line[..line.len().min(RAW_LINE)]),
        }
        b.extend_from_slice(b"\" ");
        push_u64(b, u64::from(e.status));
        b.push(b' ');
        push_u64(b, e.body_bytes);
        b.extend_from_slice(b" \"");
        field(b, e.referer);
        b.extend_from_slice(b"\" \"");
        field(b, e.user_agent);
        b.extend_from_slice(b"\"\n");
        if self.buf.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Write out every buffered line in one write (whole lines only).
    pub(crate) fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let res = match &mut self.file {
            Some(f) => f.write_all(&self.buf),
            None => io::stdout().lock().write_all(&self.buf),
        };
        if let Err(e) = res {
            log::error!("access log: {e}");
        }
        self.buf.clear();
    }

    /// Flush, then reopen the file at the configured path (logrotate).
    pub(crate) fn reopen(&mut self) {
        self.flush();
        match open_target(&self.target) {
            Ok(f) => self.file = f,
            Err(e) => log::error!("access log: reopen failed: {e}"),
        }
    }
}

fn open_target(t: &AccessLog) -> io::Result<Option<File>> {
    match t {
        AccessLog::Stdout => Ok(None),
        AccessLog::File(p) => OpenOptions::new().append(true).create(true).open(p).map(Some),
    }
}

fn field(b: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(v) if !v.is_empty() => escape(b, v),
        _ => b.push(b'-'),
    }
}

/// nginx escapes `"`, `\` and bytes outside printable ASCII as `\xHH`, so a
/// client cannot forge a line or a field.
fn escape(b: &mut Vec<u8>, v: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &c in v {
        if c == b'"' || c == b'\\' || !(0x20..0x7f).contains(&c) {
            b.extend_from_slice(&[b'\\', b'x', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
        } else {
            b.push(c);
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a Writer writes for these (request, status, bytes, user agent).
    fn written(tag: &str, entries: &[(RequestLine<'_>, u16, u64, Option<&[u8]>)]) -> String {
        let dir = std::env::temp_dir().join(format!("oserver-al-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        let mut w = Writer::open(AccessLog::File(path.clone())).unwrap();
        for &(request, status, body_bytes, user_agent) in entries {
            w.log(&Entry {
                peer: "127.0.0.1:5000".parse().unwrap(),
                time: b"21/Nov/2026:10:50:49 +0000",
                request,
                status,
                body_bytes,
                referer: None,
                user_agent,
            });
        }
        w.flush();
        let s = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        s
    }

    #[test]
    fn combined_line() {
        let get = RequestLine::Parsed { method: b"GET", target: b"/a\"b", version: "HTTP/1.1" };
        assert_eq!(
            written("combined", &[(get, 200, 42, Some(b"curl/8"))]),
            "127.0.0.1 - - [21/Nov/2026:10:50:49 +0000] \"GET /a\\x22b HTTP/1.1\" 200 42 \"-\" \"curl/8\"\n"
        );
    }

    #[test]
    fn refused_request_logs_its_raw_line_escaped() {
        let long = vec![b'a'; RAW_LINE + 500];
        let s = written(
            "raw",
            &[
                (RequestLine::Raw(b"GET /x HTTP/9\x01"), 400, 0, None),
                (RequestLine::Raw(&long), 400, 0, None),
            ],
        );
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "127.0.0.1 - - [21/Nov/2026:10:50:49 +0000] \"GET /x HTTP/9\\x01\" 400 0 \"-\" \"-\""
        );
        assert!(lines[1].contains(&"a".repeat(RAW_LINE)) && !lines[1].contains(&"a".repeat(RAW_LINE + 1)));
    }
}
