//! What the responder gives: a reply (status, header fields, payload) for
//! the protocol to frame.

use std::fs::File;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;

use super::handler::Awaited;
use super::stream::BodyStream;
use crate::files::cache::OpenFile;
use crate::http::fields::FieldList;
use crate::http::{push_u64, status};

/// A file to send: from the open-file cache, or a handler's own.
#[derive(Debug)]
pub(crate) enum FileRef {
    Cached(Rc<OpenFile>),
    Owned(File),
}

/// The byte range `offset..end` of a file, still to be sent.
#[derive(Debug)]
pub(crate) struct FileBody {
    pub file: FileRef,
    pub offset: u64,
    pub end: u64,
}

impl FileBody {
    pub(crate) fn fd(&self) -> RawFd {
        match &self.file {
            FileRef::Cached(f) => f.file.as_raw_fd(),
            FileRef::Owned(f) => f.as_raw_fd(),
        }
    }

    /// Fill `pieces` with the range's next bytes, in order (from memory,
    /// else with preadv), and advance. A file that ends early is an error.
    pub(crate) fn read_vectored(&mut self, pieces: &mut [std::io::IoSliceMut<'_>]) -> std::io::Result<()> {
        let total: usize = pieces.iter().map(|p| p.len()).sum();
        if let Some(bytes) = self.in_memory() {
            let mut at = 0;
            for p in pieces.iter_mut() {
                let n = p.len();
                p.copy_from_slice(&bytes[at..at + n]);
                at += n;
            }
            self.offset += total as u64;
            return Ok(());
        }
        let fd = self.fd();
        // IoSliceMut is ABI-compatible with iovec on Unix.
        let iov = pieces.as_ptr().cast::<libc::iovec>();
        let count = pieces.len() as libc::c_int;
        // SAFETY: `iov` points at `count` valid, writable buffers.
        let n = loop {
            let n = unsafe { libc::preadv64(fd, iov, count, self.offset as libc::off64_t) };
            if n >= 0 {
                break n as usize;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        // A short read (rare for a regular file): the rest piece by piece.
        let mut done = 0;
        let file = match &self.file {
            FileRef::Cached(f) => &f.file,
            FileRef::Owned(f) => f,
        };
        for p in pieces.iter_mut() {
            let len = p.len();
            if done + len > n {
                let from = n.saturating_sub(done);
                std::os::unix::fs::FileExt::read_exact_at(
                    file,
                    &mut p[from..],
                    self.offset + (done + from) as u64,
                )?;
            }
            done += len;
        }
        self.offset += total as u64;
        Ok(())
    }

    /// The range's bytes when the file is held in memory (small cached
    /// files), so the protocol can send them with the head in one write.
    pub(crate) fn in_memory(&self) -> Option<&[u8]> {
        match &self.file {
            FileRef::Cached(f) => f.small.as_deref()?.get(self.offset as usize..self.end as usize),
            FileRef::Owned(_) => None,
        }
    }
}

/// A reply's body.
#[derive(Debug, Default)]
pub(crate) enum Payload {
    /// No body.
    #[default]
    Empty,
    /// The bytes in [`Reply::bytes`] (error pages: no allocation per reply).
    Buffered,
    /// Owned bytes (a handler's, a listing).
    Bytes(Vec<u8>),
    /// Bytes that live for the whole program.
    Static(&'static [u8]),
    /// A range of a file.
    File(FileBody),
    /// A body of unknown length, produced piece by piece (no
    /// Content-Length: HTTP/1.1 frames it chunked).
    Stream(BodyStream),
    /// No reply yet: a handler answers later, and the protocol waits for
    /// it, then asks [`Responder::finish`](super::Responder::finish) to make
    /// it the reply. Nothing else of the reply is set.
    Later(Awaited),
}

impl Payload {
    /// Drop it, without a call to the drop glue for the payloads that have
    /// nothing to drop (Empty, Buffered, Static): most of them, and a reply
    /// drops one or two.
    #[inline(always)]
    pub(crate) fn discard(self) {
        if matches!(self, Payload::Empty | Payload::Buffered | Payload::Static(_)) {
            std::mem::forget(self);
        }
    }
}

/// The responder's answer. One per loop, reused: `start` keeps the buffers.
#[derive(Debug, Default)]
pub(crate) struct Reply {
    pub status: u16,
    /// Header fields besides the framing ones (Date, Server,
    /// Content-Length, Connection, Transfer-Encoding), which the protocol owns.
    pub fields: FieldList,
    pub payload: Payload,
    /// The Content-Length of this reply. For GET it is the payload's length;
    /// a 304 carries the length a 200 would have (RFC 9110 8.6) and no body.
    pub content_length: u64,
    /// The request was malformed: answer, then close the connection.
    pub close: bool,
    /// Backing store for [`Payload::Buffered`].
    pub bytes: Vec<u8>,
}

impl Reply {
    pub(crate) fn start(&mut self, status: u16) {
        self.status = status;
        self.fields.clear();
        self.set_payload(Payload::Empty);
        self.content_length = 0;
        self.close = false;
        self.bytes.clear();
    }

    /// Replace the payload (see [`Payload::discard`]).
    #[inline(always)]
    pub(crate) fn set_payload(&mut self, payload: Payload) {
        std::mem::replace(&mut self.payload, payload).discard();
    }

    /// Whether the reply has a Content-Length field. RFC 9110 8.6: never in
    /// a 1xx or 204; in a 304 only as the length a 200 would have (static
    /// files send it, a handler's 304 has none).
    pub(crate) fn sends_length(&self) -> bool {
        !(self.status < 200
            || self.status == 204
            || (self.status == 304 && self.content_length == 0)
            || self.streams())
    }

    /// The body is a stream, of unknown length.
    pub(crate) fn streams(&self) -> bool {
        matches!(self.payload, Payload::Stream(_))
    }

    /// A handler answers later: the reply to wait for.
    pub(crate) fn take_later(&mut self) -> Option<Awaited> {
        if !matches!(self.payload, Payload::Later(_)) {
            return None;
        }
        match std::mem::take(&mut self.payload) {
            Payload::Later(a) => Some(a),
            other => {
                self.payload = other;
                None
            }
        }
    }

    /// Take the payload out, leaving the reply empty of it.
    pub(crate) fn take_payload(&mut self) -> Payload {
        std::mem::take(&mut self.payload)
    }

    /// The payload's bytes when they are in memory.
    #[cfg(test)]
    pub(crate) fn body_bytes(&self) -> Option<&[u8]> {
        match &self.payload {
            Payload::Empty => Some(&[]),
            Payload::Buffered => Some(&self.bytes),
            Payload::Bytes(b) => Some(b),
            Payload::Static(b) => Some(b),
            Payload::File(f) => f.in_memory(),
            Payload::Stream(_) | Payload::Later(_) => None,
        }
    }

    /// An error (or redirect) page for `status`: a short HTML body. A 405
    /// is the static files' (`Allow: GET, HEAD`).
    pub(crate) fn error(&mut self, status: u16) {
        self.page(status, (status == 405).then_some(b"GET, HEAD"));
    }

    /// 405 with the methods that are allowed, as an `Allow` value.
    pub(crate) fn not_allowed(&mut self, allow: &[u8]) {
        self.page(405, Some(allow));
    }

    /// The error page for `status`, with `Allow` when given.
    fn page(&mut self, status: u16, allow: Option<&[u8]>) {
        self.start(status);
        self.fields.push("Content-Type", b"text/html");
        if let Some(allow) = allow {
            self.fields.push("Allow", allow);
        }
        error_page(status, &mut self.bytes);
        self.content_length = self.bytes.len() as u64;
        self.set_payload(Payload::Buffered);
    }

    /// An error page for a malformed request: the connection closes after it.
    pub(crate) fn refuse(&mut self, status: u16) {
        self.error(status);
        self.close = true;
    }
}

/// The short HTML body of an error page.
fn error_page(status: u16, out: &mut Vec<u8>) {
    let r = status::reason(status);
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
