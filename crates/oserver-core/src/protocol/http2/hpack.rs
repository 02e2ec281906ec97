//! HPACK (RFC 7541) for this server: decoding request header blocks with
//! the `loona-hpack` crate, and encoding response header blocks here.
//!
//! Decoding is taken from a crate: the dynamic table, Huffman and the
//! integer and string rules are a solved problem, and `loona-hpack` is the
//! decoder behind the `httpwg` conformance suite's own server (a fork of
//! the `hpack` crate, memory-safe Rust, no unsafe code). Each decoded field
//! goes straight into [`Fields`], checked as it arrives; a list that grows
//! past the limit stops being stored (the block is still decoded to the
//! end, so the connection's table stays in step) and the request gets 431.
//! An entry referenced many times (an "HPACK bomb") costs its size against
//! the limit each time, and is never copied past it.
//!
//! Encoding is simple enough to write: every response field is a literal
//! "without indexing", its name taken from the static table where it is
//! there, and no Huffman. This server's own dynamic table is always empty,
//! so a peer's smaller SETTINGS_HEADER_TABLE_SIZE only needs a size update
//! to 0 at the start of the next block.

use crate::http::fields::{HeaderSpan, Span, MAX_HEAD_BYTES};

use super::frame::{ConnError, ErrorCode};

/// The dynamic table size this server allows a client's encoder
/// (SETTINGS_HEADER_TABLE_SIZE): the protocol's default, 4 KiB.
pub(crate) const TABLE_SIZE: usize = 4096;

/// Per-field overhead counted in a header list's size (RFC 9113 6.5.2).
const FIELD_OVERHEAD: usize = 32;

/// One connection's decoder (its dynamic table).
pub(crate) struct Decoder(loona_hpack::Decoder<'static>);

impl Decoder {
    pub(crate) fn new() -> Decoder {
        let mut d = loona_hpack::Decoder::new();
        d.set_max_allowed_table_size(TABLE_SIZE);
        Decoder(d)
    }

    /// Decode `block` (a whole header block) into `f`, which is cleared
    /// first. A block that cannot be decoded is a connection error
    /// (COMPRESSION_ERROR): the table is out of step from then on.
    pub(crate) fn decode(&mut self, block: &[u8], f: &mut Fields, limit: usize) -> Result<(), ConnError> {
        f.clear(limit);
        self.0
            .decode_with_cb(block, |name, value| f.add(&name, &value))
            .map_err(|_| ConnError::new(ErrorCode::Compression, "bad header block"))
    }
}

/// A request's decoded header list, checked field by field as RFC 9113
/// 8.2 and 8.3 say. Reused for every block on a loop.
#[derive(Default)]
pub(crate) struct Fields {
    /// Names and values, back to back.
    pub bytes: Vec<u8>,
    /// The regular fields (and `host` from `:authority` when the request
    /// has no Host field), as HTTP/1's parser gives them to the responder.
    pub spans: Vec<HeaderSpan>,
    pub method: Option<Span>,
    pub path: Option<Span>,
    pub scheme: Option<Span>,
    pub authority: Option<Span>,
    pub content_length: Option<u64>,
    /// The list's size so far (names, values and 32 per field).
    pub size: usize,
    /// The most `size` may be before the request gets 431.
    limit: usize,
    /// Past the limit: nothing more is stored.
    pub too_large: bool,
    /// Why the request is malformed (a stream error), if it is.
    pub malformed: Option<&'static str>,
    /// A regular field was seen (pseudo-fields must come first).
    regular: bool,
}

impl Fields {
    fn clear(&mut self, limit: usize) {
        let (bytes, spans) = (std::mem::take(&mut self.bytes), std::mem::take(&mut self.spans));
        *self = Fields { bytes, spans, limit: limit.min(MAX_HEAD_BYTES), ..Fields::default() };
        self.bytes.clear();
        self.spans.clear();
    }

    fn bad(&mut self, why: &'static str) {
        self.malformed.get_or_insert(why);
    }

    fn push(&mut self, b: &[u8]) -> Span {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(b);
        Span::new(start, self.bytes.len())
    }

    fn add(&mut self, name: &[u8], value: &[u8]) {
        self.size += name.len() + value.len() + FIELD_OVERHEAD;
        if self.size > self.limit {
            self.too_large = true;
        }
        if self.too_large || self.malformed.is_some() {
            return;
        }
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n')
            || value.first().is_some_and(|b| *b == b' ' || *b == b'\t')
            || value.last().is_some_and(|b| *b == b' ' || *b == b'\t')
        {
            return self.bad("field value with a control byte or outer whitespace");
        }
        if let Some(pseudo) = name.strip_prefix(b":") {
            if self.regular {
                return self.bad("pseudo-field after a regular field");
            }
            let span = self.push(value);
            let slot = match pseudo {
                b"method" => &mut self.method,
                b"path" => &mut self.path,
                b"scheme" => &mut self.scheme,
                b"authority" => &mut self.authority,
                _ => return self.bad("unknown pseudo-field"),
            };
            if slot.replace(span).is_some() {
                self.bad("repeated pseudo-field");
            }
            return;
        }
        self.regular = true;
        if name.is_empty() || !name.iter().all(|&b| is_lower_token(b)) {
            return self.bad("field name not a lowercase token");
        }
        match name {
            b"connection" | b"keep-alive" | b"proxy-connection" | b"transfer-encoding" | b"upgrade" => {
                return self.bad("connection-specific field");
            }
            b"te" if value != b"trailers" => return self.bad("te other than trailers"),
            b"content-length" => match crate::http::parse_decimal(value) {
                Some(n) if self.content_length.map_or(true, |c| c == n) => self.content_length = Some(n),
                _ => return self.bad("bad content-length"),
            },
            _ => {}
        }
        let name = self.push(name);
        let value = self.push(value);
        self.spans.push(HeaderSpan { name, value });
    }

    /// Check what a request must have (RFC 9113 8.3.1) once the list is
    /// complete, and give the responder a Host field from `:authority`.
    pub(crate) fn finish_request(&mut self) {
        if self.too_large || self.malformed.is_some() {
            return;
        }
        let empty_path = self.path.is_some_and(|p| p.start == p.end);
        if self.method.is_none() || self.scheme.is_none() || self.path.is_none() || empty_path {
            return self.bad("missing or empty :method, :scheme or :path");
        }
        let host = self.spans.iter().find(|h| h.name.of(&self.bytes) == b"host").map(|h| h.value);
        match (self.authority, host) {
            (Some(a), None) => {
                let name = self.push(b"host");
                self.spans.push(HeaderSpan { name, value: a });
            }
            // RFC 9113 8.3.1: both must name the same authority.
            (Some(a), Some(h)) if a.of(&self.bytes) != h.of(&self.bytes) => {
                self.bad(":authority and host differ");
            }
            _ => {}
        }
    }
}

/// A byte of a lowercase field name (RFC 9110 token characters without
/// the uppercase letters, which HTTP/2 forbids).
fn is_lower_token(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~')
}

/// Append `value` as an HPACK integer with an `n`-bit prefix, the bits
/// above it set to `mask` (RFC 7541 5.1).
fn put_int(out: &mut Vec<u8>, mask: u8, n: u8, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(mask | value as u8);
        return;
    }
    out.push(mask | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A string literal, no Huffman.
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_int(out, 0, 7, s.len());
    out.extend_from_slice(s);
}

/// A dynamic table size update (at the start of a block).
pub(crate) fn put_table_size(out: &mut Vec<u8>, size: usize) {
    put_int(out, 0x20, 5, size);
}

/// `:status`: an indexed static entry where there is one, else a literal.
pub(crate) fn put_status(out: &mut Vec<u8>, status: u16) {
    let index = match status {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => 0,
    };
    if index != 0 {
        out.push(0x80 | index);
        return;
    }
    put_int(out, 0, 4, 8);
    let mut digits = [0u8; 3];
    let s = status.min(999);
    digits[0] = b'0' + (s / 100) as u8;
    digits[1] = b'0' + (s / 10 % 10) as u8;
    digits[2] = b'0' + (s % 10) as u8;
    put_str(out, &digits);
}

/// The static table's index of a response field's name (RFC 7541
/// Appendix A), for the names this server and handlers send.
fn static_name(name: &[u8]) -> Option<usize> {
    Some(match name {
        b"access-control-allow-origin" => 20,
        b"accept-ranges" => 18,
        b"age" => 21,
        b"allow" => 22,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"date" => 33,
        b"etag" => 34,
        b"expires" => 36,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

/// A response field, its name lowercased (HTTP/2 field names are).
pub(crate) fn put_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    let mut lower = [0u8; 64];
    let name: &[u8] = if name.len() <= lower.len() {
        let l = &mut lower[..name.len()];
        l.copy_from_slice(name);
        l.make_ascii_lowercase();
        l
    } else {
        name
    };
    match static_name(name) {
        Some(i) => put_int(out, 0, 4, i),
        None => {
            out.push(0);
            put_int(out, 0, 7, name.len());
            out.extend(name.iter().map(u8::to_ascii_lowercase));
        }
    }
    put_str(out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        loona_hpack::Decoder::new().decode(block).unwrap()
    }

    #[test]
    fn encoded_responses_decode_to_what_was_sent() {
        let mut out = Vec::new();
        put_table_size(&mut out, 0);
        put_status(&mut out, 200);
        put_field(&mut out, b"Content-Type", b"text/html");
        put_field(&mut out, b"X-Long-Header-Name-That-Is-Not-In-The-Table", b"v");
        put_field(&mut out, b"content-length", &b"9".repeat(200));
        let got = decode_all(&out);
        assert_eq!(got[0], (b":status".to_vec(), b"200".to_vec()));
        assert_eq!(got[1], (b"content-type".to_vec(), b"text/html".to_vec()));
        assert_eq!(got[2], (b"x-long-header-name-that-is-not-in-the-table".to_vec(), b"v".to_vec()));
        assert_eq!(got[3].1.len(), 200);
        for status in [100, 206, 431, 503, 999] {
            let mut out = Vec::new();
            put_status(&mut out, status);
            assert_eq!(decode_all(&out)[0].1, status.to_string().into_bytes());
        }
    }

    #[test]
    fn integers_follow_rfc_7541_c1() {
        let mut out = Vec::new();
        put_int(&mut out, 0, 5, 10);
        assert_eq!(out, [10]);
        out.clear();
        put_int(&mut out, 0, 5, 1337);
        assert_eq!(out, [31, 154, 10]);
    }

    fn request(block: &[u8], limit: usize) -> Fields {
        let mut f = Fields::default();
        Decoder::new().decode(block, &mut f, limit).unwrap();
        f.finish_request();
        f
    }

    fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        out.push(0);
        put_str(out, name);
        put_str(out, value);
    }

    #[test]
    fn a_request_gets_its_pseudo_fields_and_a_host() {
        // :method GET, :scheme http, :path /, then :authority and a field.
        let mut b = vec![0x82, 0x86, 0x84];
        literal(&mut b, b":authority", b"example.com");
        literal(&mut b, b"accept", b"*/*");
        let f = request(&b, 16384);
        assert_eq!(f.malformed, None);
        assert_eq!(f.method.unwrap().of(&f.bytes), b"GET");
        assert_eq!(f.path.unwrap().of(&f.bytes), b"/");
        let fields: Vec<_> = f.spans.iter().map(|h| (h.name.of(&f.bytes), h.value.of(&f.bytes))).collect();
        assert_eq!(fields, [(&b"accept"[..], &b"*/*"[..]), (b"host", b"example.com")]);
    }

    #[test]
    fn malformed_requests_are_caught() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"Accept", b"x"),
            (b"connection", b"close"),
            (b"te", b"gzip"),
            (b"x", b" padded"),
            (b"x", b"a\rb"),
            (b":status", b"200"),
            (b"content-length", b"12x"),
        ];
        for (name, value) in cases {
            let mut b = vec![0x82, 0x86, 0x84];
            literal(&mut b, name, value);
            let f = request(&b, 16384);
            assert!(f.malformed.is_some(), "{:?}", String::from_utf8_lossy(name));
        }
        // A pseudo-field after a regular one; a missing :path; two :path.
        let mut b = vec![0x82, 0x86];
        literal(&mut b, b"accept", b"x");
        b.push(0x84);
        assert!(request(&b, 16384).malformed.is_some());
        assert!(request(&[0x82, 0x86], 16384).malformed.is_some());
        assert!(request(&[0x82, 0x86, 0x84, 0x85], 16384).malformed.is_some());
        assert_eq!(request(&[0x82, 0x86, 0x84], 16384).malformed, None);
    }

    #[test]
    fn an_entry_referenced_many_times_stops_at_the_limit() {
        // Insert a 4000-byte field into the dynamic table, then name it
        // (index 62) 4000 times: 16 MB if stored, refused at 16 KiB.
        let mut b = vec![0x82, 0x86, 0x84, 0x40];
        put_str(&mut b, b"x-bomb");
        put_str(&mut b, &[b'a'; 4000]);
        b.extend(std::iter::repeat(0xbe).take(4000));
        let f = request(&b, 16384);
        assert!(f.too_large);
        assert!(f.bytes.len() <= 16384, "{}", f.bytes.len());
    }

    #[test]
    fn bad_blocks_are_compression_errors() {
        let mut f = Fields::default();
        // Index 70 is past the static table with an empty dynamic one.
        let e = Decoder::new().decode(&[0x80 | 70], &mut f, 16384).unwrap_err();
        assert_eq!(e.code, ErrorCode::Compression);
    }
}
