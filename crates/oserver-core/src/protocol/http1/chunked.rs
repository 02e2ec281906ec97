//! Sans-io decoder for chunked request bodies (RFC 9112 §7.1).
//!
//! The connection keeps one [`Chunked`] while a chunked body is arriving and
//! hands it each piece of input as it is read, whatever its boundaries: a
//! piece may end inside a hex size, between a CR and its LF, or anywhere in
//! the data. The decoder keeps only a small state between calls and appends
//! body bytes to a `Vec` the caller owns, so the only memory that grows is
//! that `Vec`, and never past the limit given to [`Chunked::new`].
//!
//! # Choices
//!
//! Where RFC 9112 leaves room, this decoder takes the strict side, because a
//! body's framing decides where the next request starts: any difference
//! between how a proxy in front of us and we read it is a way to smuggle a
//! request past the proxy.
//!
//! - **Line endings** are CRLF only. A bare LF, or a CR followed by anything
//!   but LF, is [`ChunkedError::BadLineEnd`]. (The head parser accepts a bare
//!   LF as §2.2 permits; inside the body we do not, since a bare LF read as a
//!   line end by one side and as data by the other is the classic desync.)
//! - **chunk-size** is one or more hex digits and nothing else: no sign, no
//!   `0x`, no whitespace before it. At most 16 digits, leading zeros
//!   included.
//! - **Extensions** (§7.1.1) follow the grammar exactly, BWS included:
//!   `5 ; name = value` and `5;name="quoted \" value"` are accepted,
//!   whitespace after the size that is not followed by `;` is not. They are
//!   checked and then ignored.
//! - **Data** must be followed by exactly CRLF; anything else means the size
//!   did not match the data and is [`ChunkedError::BadLineEnd`].
//! - **Trailers** (§7.1.2) are read and dropped: each line must be a token
//!   name, a colon, and any value without CR or LF; obs-fold is refused.
//!
//! Errors are sticky: once `decode` fails, every later call returns the same
//! error.

use crate::http::fields::is_tchar;

/// Most hex digits in a chunk-size. 16 hex digits are 64 bits, so every
/// size up to `u64::MAX` fits and the arithmetic can never overflow; more
/// digits are either an overflow or leading zeros no client needs.
const MAX_SIZE_DIGITS: u8 = 16;

/// Most bytes in a size line, extensions included, CRLF excluded. Real
/// clients send no extensions, so a line is a handful of bytes; 4 KiB leaves
/// room for any plausible extension while bounding how much a client can
/// send per chunk without the body making progress.
const MAX_SIZE_LINE: u32 = 4096;

/// Most bytes in the trailer section, every line's CRLF and the final empty
/// line included. 16 KiB matches the default limit on the request head
/// (`Limits::max_header_bytes`), which is the same kind of data; trailers are
/// dropped, so this bounds only what a client can make us read for nothing.
const MAX_TRAILER_BYTES: u32 = 16 * 1024;

/// Why a chunked body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkedError {
    /// The size line is malformed: no hex digit, a byte that is neither a
    /// hex digit, an extension nor the line end, or a malformed extension.
    BadSize,
    /// The chunk-size has more than 16 hex digits.
    SizeTooLong,
    /// A line did not end in CRLF (a bare LF, a CR without LF), or chunk
    /// data was not followed by exactly CRLF.
    BadLineEnd,
    /// The size line (with extensions) is longer than 4096 bytes.
    LineTooLong,
    /// A trailer line is not `name: value` with a token name.
    BadTrailer,
    /// The trailer section is longer than 16 KiB.
    TrailersTooLong,
    /// The body is larger than the limit.
    TooLarge,
}

impl std::fmt::Display for ChunkedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkedError::BadSize => "malformed chunk size line",
            ChunkedError::SizeTooLong => "chunk size has more than 16 hex digits",
            ChunkedError::BadLineEnd => "chunked body line not ended by CRLF",
            ChunkedError::LineTooLong => "chunk size line too long",
            ChunkedError::BadTrailer => "malformed trailer field",
            ChunkedError::TrailersTooLong => "trailer section too large",
            ChunkedError::TooLarge => "request body too large",
        })
    }
}

impl std::error::Error for ChunkedError {}

/// What one call to [`Chunked::decode`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Input bytes used. All of them unless `done`.
    pub consumed: usize,
    /// The body is complete, final CRLF included.
    pub done: bool,
}

/// Where the decoder stands: each state names what the next byte belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In the chunk-size; `digits` read so far (0 at the line's start).
    Size { digits: u8, size: u64 },
    /// In a size line after the size. `size` is kept for the line's end.
    Line { at: Ext, size: u64 },
    /// After the CR ending a size line; LF must follow.
    SizeLf { size: u64 },
    /// In chunk data; this many bytes to go.
    Data { left: u64 },
    /// After chunk data; CR must follow.
    DataCr,
    /// After chunk data and its CR; LF must follow.
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// In a trailer field name.
    TrailerName,
    /// In a trailer field value (after the colon).
    TrailerValue,
    /// After the CR ending a trailer line; LF must follow.
    TrailerLf,
    /// After the CR of the final empty line; LF must follow.
    EndLf,
    /// The body is complete.
    Done,
    /// The body was refused with this error.
    Failed(ChunkedError),
}

/// Position inside the extensions of a size line:
/// `*( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] )`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ext {
    /// Whitespace after the size or a value: only more of it or `;` may follow.
    Bws,
    /// After `;` (and any whitespace): a name must start.
    BeforeName,
    /// In a name; the line may end here.
    Name,
    /// Whitespace after a name: `=` or `;` must follow.
    AfterName,
    /// After `=` (and any whitespace): a value must start.
    BeforeValue,
    /// In a token value; the line may end here.
    Token,
    /// In a quoted-string value.
    Quoted,
    /// After a backslash in a quoted-string.
    QuotedPair,
    /// Right after a quoted-string's closing quote; the line may end here.
    AfterQuoted,
}

/// Decodes one chunked body incrementally.
#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    state: State,
    /// Most decoded bytes accepted.
    limit: u64,
    /// Decoded bytes so far; never above `limit`.
    len: u64,
    /// Bytes of the current size line so far, CRLF excluded.
    line_len: u32,
    /// Bytes of the trailer section so far.
    trailer_len: u32,
}

impl Chunked {
    /// A decoder at the start of a body that accepts at most `limit` decoded
    /// bytes.
    pub(crate) fn new(limit: u64) -> Chunked {
        Chunked { state: State::Size { digits: 0, size: 0 }, limit, len: 0, line_len: 0, trailer_len: 0 }
    }

    /// Decoded body bytes so far.
    #[cfg(test)]
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Decode from `input` (bytes as they arrived; may end anywhere, even
    /// mid-CRLF or mid-hex), appending body bytes to `out`.
    ///
    /// Returns how many input bytes were used and whether the body (last
    /// chunk and trailers, up to the final CRLF) is complete. Until it is, all
    /// of `input` is used. When done, bytes after `consumed` belong to the
    /// next request (pipelining) and are not touched; later calls use nothing
    /// and report done again.
    ///
    /// # Errors
    ///
    /// A [`ChunkedError`] at the first byte that makes the body invalid or
    /// exceeds a limit; later calls return the same error. Body bytes before
    /// that byte have been appended to `out`. A chunk whose size would take
    /// the body past the limit is refused as soon as its size line ends,
    /// before any of its data is appended.
    pub(crate) fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Progress, ChunkedError> {
        let result = self.run(input, out);
        if let Err(e) = result {
            self.state = State::Failed(e);
        }
        result
    }

    fn run(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<Progress, ChunkedError> {
        let mut p = 0;
        loop {
            // Chunk data is the bulk of a body: copy it in one piece rather
            // than going through the byte loop.
            if let State::Data { left } = self.state {
                let rest = input.get(p..).unwrap_or_default();
                // `take` fits in usize because it is at most `rest.len()`.
                let take = left.min(rest.len() as u64) as usize;
                out.extend_from_slice(rest.get(..take).unwrap_or_default());
                self.len += take as u64;
                p += take;
                let left = left - take as u64;
                self.state = if left == 0 { State::DataCr } else { State::Data { left } };
            }
            match self.state {
                State::Done => return Ok(Progress { consumed: p, done: true }),
                State::Failed(e) => return Err(e),
                _ => {}
            }
            let Some(&c) = input.get(p) else {
                return Ok(Progress { consumed: p, done: false });
            };
            p += 1;
            self.state = self.step(c)?;
        }
    }

    /// The state after byte `c`; never called in `Data`, `Done` or `Failed`.
    fn step(&mut self, c: u8) -> Result<State, ChunkedError> {
        if matches!(self.state, State::Size { .. } | State::Line { .. }) {
            match c {
                b'\n' => return Err(ChunkedError::BadLineEnd),
                b'\r' => {}
                _ => {
                    self.line_len += 1;
                    if self.line_len > MAX_SIZE_LINE {
                        return Err(ChunkedError::LineTooLong);
                    }
                }
            }
        }
        if matches!(
            self.state,
            State::TrailerStart | State::TrailerName | State::TrailerValue | State::TrailerLf | State::EndLf
        ) {
            self.trailer_len += 1;
            if self.trailer_len > MAX_TRAILER_BYTES {
                return Err(ChunkedError::TrailersTooLong);
            }
        }
        let next = match self.state {
            State::Size { digits, size } => {
                if let Some(d) = hex_value(c) {
                    if digits == MAX_SIZE_DIGITS {
                        return Err(ChunkedError::SizeTooLong);
                    }
                    // At most 16 digits, so this cannot overflow: the top
                    // four bits are still zero before the shift.
                    State::Size { digits: digits + 1, size: (size << 4) | u64::from(d) }
                } else if digits == 0 {
                    return Err(ChunkedError::BadSize);
                } else {
                    match c {
                        b'\r' => State::SizeLf { size },
                        b';' => State::Line { at: Ext::BeforeName, size },
                        b' ' | b'\t' => State::Line { at: Ext::Bws, size },
                        _ => return Err(ChunkedError::BadSize),
                    }
                }
            }
            State::Line { at, size } => match ext_step(at, c) {
                Some(Some(at)) => State::Line { at, size },
                Some(None) => State::SizeLf { size },
                None => return Err(ChunkedError::BadSize),
            },
            State::SizeLf { size } => {
                if c != b'\n' {
                    return Err(ChunkedError::BadLineEnd);
                }
                self.line_len = 0;
                if size == 0 {
                    State::TrailerStart
                } else if size > self.limit - self.len {
                    return Err(ChunkedError::TooLarge);
                } else {
                    State::Data { left: size }
                }
            }
            State::DataCr if c == b'\r' => State::DataLf,
            State::DataLf if c == b'\n' => State::Size { digits: 0, size: 0 },
            State::DataCr | State::DataLf => return Err(ChunkedError::BadLineEnd),
            State::TrailerStart => match c {
                b'\r' => State::EndLf,
                b'\n' => return Err(ChunkedError::BadLineEnd),
                c if is_tchar(c) => State::TrailerName,
                _ => return Err(ChunkedError::BadTrailer),
            },
            State::TrailerName => match c {
                b':' => State::TrailerValue,
                b'\n' => return Err(ChunkedError::BadLineEnd),
                c if is_tchar(c) => State::TrailerName,
                _ => return Err(ChunkedError::BadTrailer),
            },
            State::TrailerValue => match c {
                b'\r' => State::TrailerLf,
                b'\n' => return Err(ChunkedError::BadLineEnd),
                _ => State::TrailerValue,
            },
            State::TrailerLf if c == b'\n' => State::TrailerStart,
            State::EndLf if c == b'\n' => State::Done,
            State::TrailerLf | State::EndLf => return Err(ChunkedError::BadLineEnd),
            // `run` never steps in these; staying put keeps that harmless.
            State::Data { .. } | State::Done | State::Failed(_) => self.state,
        };
        Ok(next)
    }
}

/// The next position in a size line's extensions after byte `c`:
/// `Some(Some(at))` to go on, `Some(None)` at the CR ending the line, `None`
/// if `c` is not allowed there.
fn ext_step(at: Ext, c: u8) -> Option<Option<Ext>> {
    let ws = c == b' ' || c == b'\t';
    let next = match at {
        Ext::Bws if ws => Ext::Bws,
        Ext::Bws if c == b';' => Ext::BeforeName,
        Ext::BeforeName if ws => Ext::BeforeName,
        Ext::BeforeName | Ext::Name if is_tchar(c) => Ext::Name,
        Ext::Name | Ext::Token | Ext::AfterQuoted if c == b'\r' => return Some(None),
        Ext::Name | Ext::AfterName | Ext::Token | Ext::AfterQuoted if c == b';' => Ext::BeforeName,
        Ext::Name | Ext::AfterName if ws => Ext::AfterName,
        Ext::Name | Ext::AfterName if c == b'=' => Ext::BeforeValue,
        Ext::BeforeValue if ws => Ext::BeforeValue,
        Ext::BeforeValue if c == b'"' => Ext::Quoted,
        Ext::BeforeValue | Ext::Token if is_tchar(c) => Ext::Token,
        Ext::Token | Ext::AfterQuoted if ws => Ext::Bws,
        Ext::Quoted if c == b'"' => Ext::AfterQuoted,
        Ext::Quoted if c == b'\\' => Ext::QuotedPair,
        // qdtext: HTAB, SP, visible ASCII but `"` and `\`, obs-text.
        Ext::Quoted if ws || (0x21..=0x7e).contains(&c) || c >= 0x80 => Ext::Quoted,
        // quoted-pair: HTAB, SP, VCHAR, obs-text.
        Ext::QuotedPair if ws || (0x21..=0x7e).contains(&c) || c >= 0x80 => Ext::Quoted,
        _ => return None,
    };
    Some(Some(next))
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What decoding a whole input in one call gives: the outcome and `out`.
    type Outcome = (Result<Progress, ChunkedError>, Vec<u8>);

    const BIG: u64 = 1 << 20;

    fn whole(input: &[u8], limit: u64) -> Outcome {
        let mut d = Chunked::new(limit);
        let mut out = Vec::new();
        let r = d.decode(input, &mut out);
        assert_eq!(d.len(), out.len() as u64);
        (r, out)
    }

    /// Feeds `input` in pieces cut at `cuts` (sorted offsets) and sums the
    /// result as one call would report it.
    fn fed(input: &[u8], cuts: &[usize], limit: u64) -> Outcome {
        let mut d = Chunked::new(limit);
        let mut out = Vec::new();
        let mut consumed = 0;
        let mut start = 0;
        for end in cuts.iter().copied().chain([input.len()]) {
            let end = end.clamp(start, input.len());
            let piece = &input[start..end];
            match d.decode(piece, &mut out) {
                Ok(pr) => {
                    assert!(pr.consumed <= piece.len());
                    consumed += pr.consumed;
                    if pr.done {
                        return (Ok(Progress { consumed, done: true }), out);
                    }
                    assert_eq!(pr.consumed, piece.len(), "an unfinished body uses all its input");
                }
                Err(e) => return (Err(e), out),
            }
            start = end;
        }
        (Ok(Progress { consumed, done: false }), out)
    }

    fn byte_at_a_time(input: &[u8], limit: u64) -> Outcome {
        let cuts: Vec<usize> = (1..input.len()).collect();
        fed(input, &cuts, limit)
    }

    /// Decodes a complete body, checking that every split gives the same.
    fn ok(input: &[u8]) -> Vec<u8> {
        let (r, out) = whole(input, BIG);
        assert_eq!(
            r,
            Ok(Progress { consumed: input.len(), done: true }),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(byte_at_a_time(input, BIG), (r, out.clone()));
        for i in 0..=input.len() {
            assert_eq!(fed(input, &[i], BIG), (r, out.clone()));
        }
        out
    }

    /// The error a body is refused with, checked the same byte at a time.
    fn err(input: &[u8], limit: u64) -> ChunkedError {
        let (r, out) = whole(input, limit);
        let Err(e) = r else {
            panic!("{:?} accepted: {r:?}", String::from_utf8_lossy(&input[..input.len().min(80)]))
        };
        assert_eq!(byte_at_a_time(input, limit), (r, out));
        e
    }

    #[test]
    fn simple_bodies() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"0\r\n\r\n", b""),
            (b"5\r\nhello\r\n0\r\n\r\n", b"hello"),
            (b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
            (b"a\r\n0123456789\r\nA\r\nabcdefghij\r\n0\r\n\r\n", b"0123456789abcdefghij"),
            (b"0005\r\nhello\r\n000\r\n\r\n", b"hello"),
            (b"0000000000000005\r\nhello\r\n0000000000000000\r\n\r\n", b"hello"),
            // Data is opaque: CR, LF and NUL inside it are just bytes.
            (b"4\r\n\r\n\0\n\r\n0\r\n\r\n", b"\r\n\0\n"),
        ];
        for &(input, want) in cases {
            assert_eq!(ok(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn sixteen_hex_digits() {
        let mut d = Chunked::new(u64::MAX);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"FFFFFFFFFFFFFFFF\r\nab", &mut out), Ok(Progress { consumed: 20, done: false }));
        assert_eq!(out, b"ab");
        assert_eq!(d.state, State::Data { left: u64::MAX - 2 });
    }

    #[test]
    fn extensions_are_ignored() {
        let cases: &[&[u8]] = &[
            b"5;a\r\nhello\r\n0\r\n\r\n",
            b"5;a=b\r\nhello\r\n0\r\n\r\n",
            b"5;a=b;c;d=e\r\nhello\r\n0\r\n\r\n",
            b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
            b"5\t; a = b ;\tc\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"x y;z=\\\"w\\\\\"\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"\xff\" ; b\r\nhello\r\n0\r\n\r\n",
            b"5;name=token!#$%&'*+-.^_`|~\r\nhello\r\n0;last=1\r\n\r\n",
            b"5;a=b\r\nhello\r\n0;a;b=\"c\"\r\n\r\n",
        ];
        for &input in cases {
            assert_eq!(ok(input), b"hello", "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn trailers_are_dropped() {
        let cases: &[&[u8]] = &[
            b"5\r\nhello\r\n0\r\nExpires: never\r\n\r\n",
            b"5\r\nhello\r\n0\r\nA:b\r\nC-D: e f\r\nX:\r\n\r\n",
            b"5\r\nhello\r\n0;x\r\nDigest: sha-256=abc, md5=\"q\" \t\x80\r\n\r\n",
        ];
        for &input in cases {
            assert_eq!(ok(input), b"hello", "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn one_byte_at_a_time_matches_one_call() {
        let input = b"3;x=\"y\"\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nT: v\r\n\r\n";
        let (r, out) = whole(input, BIG);
        assert_eq!(r, Ok(Progress { consumed: input.len(), done: true }));
        assert_eq!(out, b"abc0123456789abcdef");
        let mut d = Chunked::new(BIG);
        let mut out2 = Vec::new();
        for (i, b) in input.iter().enumerate() {
            let pr = d.decode(std::slice::from_ref(b), &mut out2).unwrap();
            assert_eq!(pr, Progress { consumed: 1, done: i == input.len() - 1 });
        }
        assert_eq!(out2, out);
        assert_eq!(d.len(), 19);
    }

    #[test]
    fn pipelined_bytes_are_left_alone() {
        let body = b"5\r\nhello\r\n0\r\nT: v\r\n\r\n";
        let next = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let input = [&body[..], next].concat();
        // Wherever the input is cut, the body ends where it ends.
        for cut in 0..=input.len() {
            let (r, out) = fed(&input, &[cut], BIG);
            assert_eq!(r, Ok(Progress { consumed: body.len(), done: true }), "cut at {cut}");
            assert_eq!(out, b"hello");
        }
        // Once done, a decoder uses nothing, even bytes that look like a body.
        let mut d = Chunked::new(BIG);
        let mut out = Vec::new();
        assert_eq!(d.decode(&input, &mut out), Ok(Progress { consumed: body.len(), done: true }));
        assert_eq!(d.decode(b"5\r\nhello\r\n", &mut out), Ok(Progress { consumed: 0, done: true }));
        assert_eq!(d.decode(b"", &mut out), Ok(Progress { consumed: 0, done: true }));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn incomplete_bodies_want_more() {
        let full = b"5;e=\"v\"\r\nhello\r\n0\r\nT: v\r\n\r\n";
        for n in 0..full.len() {
            let (r, _) = whole(&full[..n], BIG);
            assert_eq!(r, Ok(Progress { consumed: n, done: false }), "prefix {n}");
        }
    }

    #[test]
    fn malformed_bodies() {
        use ChunkedError::*;
        let cases: &[(&[u8], ChunkedError)] = &[
            // No size, or a size that is not plain hex.
            (b"\r\n", BadSize),
            (b";a\r\n", BadSize),
            (b" 5\r\n", BadSize),
            (b"-5\r\n", BadSize),
            (b"+5\r\n", BadSize),
            (b"0x5\r\n", BadSize),
            (b"5g\r\n", BadSize),
            (b"5\0\r\n", BadSize),
            (b"5,5\r\n", BadSize),
            // Whitespace after the size only before `;` (BWS).
            (b"5 \r\nhello\r\n", BadSize),
            (b"5\t\r\nhello\r\n", BadSize),
            (b"5 6\r\n", BadSize),
            // Malformed extensions.
            (b"5;\r\n", BadSize),
            (b"5; \r\n", BadSize),
            (b"5;=b\r\n", BadSize),
            (b"5;a=\r\n", BadSize),
            (b"5;a= \r\n", BadSize),
            (b"5;a \r\n", BadSize),
            (b"5;a=b \r\n", BadSize),
            (b"5;a b\r\n", BadSize),
            (b"5;a=b c\r\n", BadSize),
            (b"5;a=b=c\r\n", BadSize),
            (b"5;a=\"b\r\n", BadSize),
            (b"5;a=\"b\"c\r\n", BadSize),
            (b"5;a=\"b\0\"\r\n", BadSize),
            (b"5;a=\"\\\r\n", BadSize),
            (b"5;a(b)\r\n", BadSize),
            (b"5;a=b\x80\r\n", BadSize),
            // Too many digits, with or without overflow.
            (b"00000000000000005\r\n", SizeTooLong),
            (b"10000000000000000\r\n", SizeTooLong),
            (b"FFFFFFFFFFFFFFFFF", SizeTooLong),
            // Line ends other than CRLF.
            (b"5\nhello\r\n0\r\n\r\n", BadLineEnd),
            (b"5;a\nhello\r\n", BadLineEnd),
            (b"5;a=\"b\n\"\r\n", BadLineEnd),
            (b"5 \n", BadLineEnd),
            (b"\n", BadLineEnd),
            (b"5\r\rhello", BadLineEnd),
            (b"5\rhello", BadLineEnd),
            (b"5\r\nhello\n0\r\n\r\n", BadLineEnd),
            (b"5\r\nhello\r0\r\n\r\n", BadLineEnd),
            (b"5\r\nhelloX\r\n0\r\n\r\n", BadLineEnd),
            (b"5\r\nhell\r\n0\r\n\r\n", BadLineEnd),
            (b"0\n\r\n", BadLineEnd),
            (b"0\r\n\n", BadLineEnd),
            (b"0\r\n\rX", BadLineEnd),
            (b"0\r\nA: b\n\r\n", BadLineEnd),
            (b"0\r\nA: b\rX\r\n\r\n", BadLineEnd),
            (b"0\r\nA\n", BadLineEnd),
            // Trailer lines that are not `token: value`.
            (b"0\r\n: x\r\n\r\n", BadTrailer),
            (b"0\r\nno colon\r\n\r\n", BadTrailer),
            (b"0\r\nnocolon\r\n\r\n", BadTrailer),
            (b"0\r\n x: y\r\n\r\n", BadTrailer),
            (b"0\r\nA: b\r\n\tc\r\n\r\n", BadTrailer),
            (b"0\r\nna me: y\r\n\r\n", BadTrailer),
            (b"0\r\nname : y\r\n\r\n", BadTrailer),
            (b"0\r\n\xc3\xa9: y\r\n\r\n", BadTrailer),
        ];
        for &(input, want) in cases {
            assert_eq!(err(input, BIG), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn size_line_limit() {
        // `5;` plus a name makes the line 2 + name bytes long, CRLF excluded.
        let line = |name_len: usize| {
            let mut b = b"5;".to_vec();
            b.resize(2 + name_len, b'a');
            b.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
            b
        };
        assert_eq!(whole(&line(4094), BIG).1, b"hello");
        assert_eq!(err(&line(4095), BIG), ChunkedError::LineTooLong);
        // The limit applies to every size line, the last one included.
        let mut last = b"0;".to_vec();
        last.resize(4097, b'a');
        assert_eq!(err(&last, BIG), ChunkedError::LineTooLong);
        // It is per line: many long lines are fine.
        let mut many = Vec::new();
        for _ in 0..4 {
            many.extend_from_slice(&line(4094)[..4096 + 9]);
        }
        many.extend_from_slice(b"0\r\n\r\n");
        assert_eq!(
            whole(&many, BIG),
            (Ok(Progress { consumed: many.len(), done: true }), b"hello".repeat(4))
        );
    }

    #[test]
    fn trailer_section_limit() {
        // One trailer line of `n` bytes in all, CRLF included, then the empty
        // line: the section is n + 2 bytes.
        let body = |n: usize| {
            let mut b = b"0\r\nX: ".to_vec();
            b.resize(3 + n - 2, b'v');
            b.extend_from_slice(b"\r\n\r\n");
            b
        };
        let fits = body(16 * 1024 - 2);
        assert_eq!(whole(&fits, BIG).0, Ok(Progress { consumed: fits.len(), done: true }));
        assert_eq!(err(&body(16 * 1024 - 1), BIG), ChunkedError::TrailersTooLong);
        // Many short lines count together.
        let mut many = b"0\r\n".to_vec();
        for _ in 0..3000 {
            many.extend_from_slice(b"A: b\r\n");
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(err(&many, BIG), ChunkedError::TrailersTooLong);
    }

    #[test]
    fn body_limit() {
        let input = b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(whole(input, 8).1, b"helloabc");
        // Refused at the size line, before the chunk's data is appended.
        assert_eq!(whole(input, 7), (Err(ChunkedError::TooLarge), b"hello".to_vec()));
        assert_eq!(err(input, 7), ChunkedError::TooLarge);
        assert_eq!(whole(input, 4), (Err(ChunkedError::TooLarge), Vec::new()));
        assert_eq!(whole(b"1\r\n", 0), (Err(ChunkedError::TooLarge), Vec::new()));
        assert_eq!(whole(b"0\r\n\r\n", 0).0, Ok(Progress { consumed: 5, done: true }));
        // The largest size is refused without overflow.
        let mut d = Chunked::new(BIG);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"1\r\nx\r\n", &mut out).map(|p| p.done), Ok(false));
        assert_eq!(d.decode(b"FFFFFFFFFFFFFFFF\r\n", &mut out), Err(ChunkedError::TooLarge));
        assert_eq!(out, b"x");
    }

    #[test]
    fn errors_are_sticky() {
        let mut d = Chunked::new(BIG);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"5\r\nhel", &mut out).map(|p| p.consumed), Ok(6));
        assert_eq!(d.decode(b"loX", &mut out), Err(ChunkedError::BadLineEnd));
        assert_eq!(d.decode(b"\r\n0\r\n\r\n", &mut out), Err(ChunkedError::BadLineEnd));
        assert_eq!(out, b"hello");
    }

    #[test]
    fn error_status_and_text() {
        assert_eq!(ChunkedError::TrailersTooLong.to_string(), "trailer section too large");
    }

    /// A body cut into chunks of the given sizes, with optional extensions
    /// and trailers, and the bytes of the body itself.
    #[derive(Debug, Clone)]
    struct Encoded {
        bytes: Vec<u8>,
        body: Vec<u8>,
    }

    fn encoded() -> impl Strategy<Value = Encoded> {
        let ext = prop::sample::select(vec!["", ";a", ";a=b", " ; x = \"y z\"", ";q=\"\\\"\";r"]);
        let trailer = prop::sample::select(vec!["A: b", "Checksum: 1234", "X:", "y:\t z "]);
        (
            prop::collection::vec(any::<u8>(), 0..600),
            prop::collection::vec((1usize..200, ext.clone(), any::<bool>()), 1..20),
            ext,
            prop::collection::vec(trailer, 0..3),
            any::<bool>(),
        )
            .prop_map(|(body, chunks, last_ext, trailers, zeros)| {
                let mut bytes = Vec::new();
                let mut rest = &body[..];
                let mut plan = chunks.iter().cycle();
                while !rest.is_empty() {
                    let (n, ext, upper) = plan.next().expect("cycle of a non-empty plan");
                    let (chunk, tail) = rest.split_at((*n).min(rest.len()));
                    let size =
                        if *upper { format!("{:X}", chunk.len()) } else { format!("{:x}", chunk.len()) };
                    let size = if zeros { format!("00{size}") } else { size };
                    bytes.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    bytes.extend_from_slice(chunk);
                    bytes.extend_from_slice(b"\r\n");
                    rest = tail;
                }
                bytes.extend_from_slice(format!("0{last_ext}\r\n").as_bytes());
                for t in trailers {
                    bytes.extend_from_slice(format!("{t}\r\n").as_bytes());
                }
                bytes.extend_from_slice(b"\r\n");
                Encoded { bytes, body }
            })
    }

    /// Bytes that are mostly the ones chunked framing is made of, so random
    /// input reaches deep states rather than failing at the first byte.
    fn messy_bytes() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => prop::sample::select(b"0123456789aAfF;= \t\"\\\r\n:xX".to_vec()),
            1 => any::<u8>(),
        ];
        prop_oneof![
            prop::collection::vec(byte, 0..200),
            // A valid body with random edits.
            (encoded(), prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4)).prop_map(
                |(e, edits)| {
                    let mut b = e.bytes;
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

    fn sorted_cuts(cuts: Vec<usize>, len: usize) -> Vec<usize> {
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (len + 1)).collect();
        cuts.sort_unstable();
        cuts
    }

    proptest! {
        // No regression files: failures print their minimal input instead.
        #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_bodies_any_split(
            e in encoded(),
            next in prop::collection::vec(any::<u8>(), 0..20),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
        ) {
            let input = [&e.bytes[..], &next].concat();
            let cuts = sorted_cuts(cuts, input.len());
            let (r, out) = fed(&input, &cuts, BIG);
            prop_assert_eq!(r, Ok(Progress { consumed: e.bytes.len(), done: true }));
            prop_assert_eq!(&out, &e.body);
            // A limit of exactly the body's size is enough; one less is not.
            let exact = e.body.len() as u64;
            prop_assert_eq!(fed(&input, &cuts, exact).1, e.body.clone());
            if exact > 0 {
                let (r, out) = fed(&input, &cuts, exact - 1);
                prop_assert_eq!(r, Err(ChunkedError::TooLarge));
                prop_assert!(out.len() < e.body.len());
            }
        }

        #[test]
        fn any_bytes_never_panic(
            input in messy_bytes(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            limit in prop_oneof![Just(BIG), 0u64..64],
        ) {
            let cuts = sorted_cuts(cuts, input.len());
            let one = whole(&input, limit);
            if let Ok(p) = one.0 {
                prop_assert!(p.consumed <= input.len());
                prop_assert!(p.done || p.consumed == input.len());
            }
            prop_assert!(one.1.len() as u64 <= limit);
            // Where the input is cut never changes the result.
            prop_assert_eq!(fed(&input, &cuts, limit), one);
        }
    }
}
