//! Header fields as spans into a buffer: how a protocol hands a request's
//! fields to the responder without copying them, and how the responder hands
//! a reply's fields to the protocol that frames them.

use std::fmt::{self, Write as _};

/// Hard ceiling on the head size, whatever the limits says: positions are
/// stored as `u16` to keep the parser small, so the parser never looks past
/// offset 65535. (Larger `max_header_bytes` are clamped to this.)
pub const MAX_HEAD_BYTES: usize = u16::MAX as usize;

/// A byte range `start..end` into a request buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: u16,
    /// One past the last byte.
    pub end: u16,
}

impl Span {
    /// A span; both positions must fit in 16 bits (callers keep every
    /// position inside a head of at most 65,535 bytes).
    pub(crate) fn new(start: usize, end: usize) -> Span {
        Span { start: start as u16, end: end as u16 }
    }

    /// The bytes this span covers in `buf`, or an empty slice if `buf` is
    /// too short (it is not the buffer the span came from).
    pub fn of<'b>(&self, buf: &'b [u8]) -> &'b [u8] {
        buf.get(self.start as usize..self.end as usize).unwrap_or(&[])
    }
}

/// One header line, as spans into the buffer (value trimmed of OWS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeaderSpan {
    /// The field name.
    pub name: Span,
    /// The field value.
    pub value: Span,
}

impl HeaderSpan {
    /// Append a field's name and value to `buf`, back to back, and return
    /// their spans (for a copy of a request's fields, kept below
    /// MAX_HEAD_BYTES by the caller).
    pub(crate) fn append(buf: &mut Vec<u8>, name: &[u8], value: &[u8]) -> HeaderSpan {
        let start = buf.len();
        buf.extend_from_slice(name);
        let mid = buf.len();
        buf.extend_from_slice(value);
        HeaderSpan { name: Span::new(start, mid), value: Span::new(mid, buf.len()) }
    }
}

/// A request's header fields: spans into the buffer they arrived in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields<'b> {
    buf: &'b [u8],
    spans: &'b [HeaderSpan],
}

impl<'b> Fields<'b> {
    pub(crate) fn new(buf: &'b [u8], spans: &'b [HeaderSpan]) -> Fields<'b> {
        Fields { buf, spans }
    }

    /// Every field in order, as (name, value).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&'b [u8], &'b [u8])> + '_ {
        let buf = self.buf;
        self.spans.iter().map(move |h| (h.name.of(buf), h.value.of(buf)))
    }

    /// The first field with this name (ASCII case-insensitive).
    pub(crate) fn get(&self, name: &[u8]) -> Option<&'b [u8]> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }
}

/// A reply's header fields, in a buffer reused from reply to reply (so a
/// reply costs no allocation once the buffers have grown); fields that live
/// for the whole program (a handler's literals) are not copied at all.
#[derive(Debug, Default)]
pub(crate) struct FieldList {
    bytes: Vec<u8>,
    /// Per field, in order: where it is.
    entries: Vec<Entry>,
}

/// Where a field of a [`FieldList`] is.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// In `bytes`: where its name ends and where its value ends (the value
    /// starts where the name ends; the next field in `bytes` where the
    /// value ends).
    Held(u32, u32),
    /// Where it always is.
    Static(&'static str, &'static [u8]),
}

impl FieldList {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }

    /// Add a field; the caller has checked name and value.
    pub(crate) fn push(&mut self, name: &str, value: &[u8]) {
        self.bytes.extend_from_slice(name.as_bytes());
        let n = self.bytes.len() as u32;
        self.bytes.extend_from_slice(value);
        self.entries.push(Entry::Held(n, self.bytes.len() as u32));
    }

    /// Add a field that lives for the whole program, without a copy; the
    /// caller has checked name and value.
    pub(crate) fn push_static(&mut self, name: &'static str, value: &'static [u8]) {
        self.entries.push(Entry::Static(name, value));
    }

    /// Add a field whose value is formatted in place, without a String.
    pub(crate) fn push_display(&mut self, name: &str, value: impl fmt::Display) {
        self.bytes.extend_from_slice(name.as_bytes());
        let n = self.bytes.len() as u32;
        let _ = write!(ByteWriter(&mut self.bytes), "{value}");
        self.entries.push(Entry::Held(n, self.bytes.len() as u32));
    }

    /// Every field in order, as (name, value).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        let mut start = 0usize;
        self.entries.iter().map(move |&e| match e {
            Entry::Held(n, v) => {
                let (n, v) = (n as usize, v as usize);
                let field = (&self.bytes[start..n], &self.bytes[n..v]);
                start = v;
                field
            }
            Entry::Static(n, v) => (n.as_bytes(), v),
        })
    }

    /// The first field with this name (ASCII case-insensitive).
    pub(crate) fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// tchar from RFC 9110 §5.6.2: the bytes allowed in methods and field names.
static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        c += 1;
    }
    t
};

/// A token character (RFC 9110 5.6.2): what methods and field names are
/// made of. One table look-up: the parsers call it for every byte of a
/// name.
#[inline(always)]
pub(crate) fn is_tchar(c: u8) -> bool {
    TCHAR[c as usize]
}

/// A valid field name: one or more token characters.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    // Every byte is looked at, without a branch per byte: names are valid
    // (a handler's own), and short.
    !name.is_empty() && name.iter().fold(true, |ok, &b| ok & is_tchar(b))
}

/// A valid field value (RFC 9110 5.5): visible bytes, spaces and tabs (and
/// obs-text), not starting or ending with whitespace; no CR, LF, NUL or other
/// control byte, so a value can never split a head.
pub(crate) fn valid_value(v: &[u8]) -> bool {
    // Anything from SP up but DEL (obs-text included), and HTAB. Every
    // byte is looked at, without a branch per byte (a loop the compiler
    // vectorizes): values are valid, and the check runs on every one.
    let bad = |b: u8| (b < b' ' && b != b'\t') | (b == 0x7f);
    let ws = |b: Option<&u8>| matches!(b, Some(b' ' | b'\t'));
    !v.iter().fold(false, |any, &b| any | bad(b)) && !ws(v.first()) && !ws(v.last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_list_round_trips() {
        let mut l = FieldList::default();
        l.push("ETag", b"\"1-2\"");
        l.push_display("Cache-Control", format_args!("max-age={}", 60));
        l.push_static("Content-Type", b"text/plain");
        l.push("X-Empty", b"");
        l.push_static("X-Last", b"1");
        let all: Vec<_> = l.iter().collect();
        assert_eq!(
            all,
            vec![
                (&b"ETag"[..], &b"\"1-2\""[..]),
                (&b"Cache-Control"[..], &b"max-age=60"[..]),
                (&b"Content-Type"[..], &b"text/plain"[..]),
                (&b"X-Empty"[..], &b""[..]),
                (&b"X-Last"[..], &b"1"[..]),
            ]
        );
        assert_eq!(l.get("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(l.get("etag"), Some(&b"\"1-2\""[..]));
        l.clear();
        assert_eq!(l.iter().count(), 0);
    }

    #[test]
    fn names_and_values() {
        for good in ["Content-Type", "x", "X-A_b.c!#$%&'*+^`|~9"] {
            assert!(valid_name(good.as_bytes()), "{good}");
        }
        for bad in ["", "a b", "a:b", "a\r", "é", "a\0", "(x)"] {
            assert!(!valid_name(bad.as_bytes()), "{bad:?}");
        }
        for good in ["", "text/html", "a\tb", "q=\"x y\"", "caf\u{e9}"] {
            assert!(valid_value(good.as_bytes()), "{good:?}");
        }
        for bad in ["a\r\nb", "a\nb", "a\0", " lead", "trail\t", "\x7f", "\x01"] {
            assert!(!valid_value(bad.as_bytes()), "{bad:?}");
        }
    }
}
