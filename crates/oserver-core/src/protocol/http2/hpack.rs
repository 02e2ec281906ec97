//! HPACK (RFC 7541) for this server: decoding request header blocks and
//! encoding response ones.
//!
//! Decoding is written here rather than taken from a crate: the crates
//! that decode without an async stack (`hpack`, its fork `loona-hpack`)
//! build a hash map of the Huffman code for every string they decode, which
//! took 70% of this server's time under h2load. Here the Huffman code is
//! rebuilt at start-up from its code lengths (RFC 7541 Appendix B is a
//! canonical code, so the lengths determine it), and decoded nine bits at a
//! time through a 512-entry table, bit by bit only for the rare long codes.
//! The unit tests check it against `loona-hpack` on random input.
//!
//! Each decoded field goes straight into [`Fields`], checked as it arrives;
//! a list that grows past the limit stops being stored (the block is still
//! decoded to the end, so the connection's table stays in step) and the
//! request gets 431. An entry referenced many times (an "HPACK bomb") costs
//! its size against the limit each time and is never copied past it.
//!
//! Encoding: every response field is a literal "without indexing", its
//! name taken from the static table where it is there, and no Huffman.
//! This server's own dynamic table is always empty, so a peer's smaller
//! SETTINGS_HEADER_TABLE_SIZE only needs a size update to 0 at the start of
//! the next block.

use std::collections::VecDeque;
use std::sync::OnceLock;

use crate::http::fields::{is_tchar, HeaderSpan, Span, MAX_HEAD_BYTES};

use super::frame::{ConnError, ErrorCode};

/// The dynamic table size this server allows a client's encoder
/// (SETTINGS_HEADER_TABLE_SIZE): the protocol's default, 4 KiB.
pub(crate) const TABLE_SIZE: usize = 4096;

/// Per-field overhead counted in a header list's size (RFC 9113 6.5.2) and
/// per dynamic-table entry (RFC 7541 4.1).
const FIELD_OVERHEAD: usize = 32;

/// The static table (RFC 7541 Appendix A); index 1 is the first entry.
const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The Huffman code's length in bits for each symbol, 0 to 255 and EOS
/// (256), from RFC 7541 Appendix B. The code is canonical: codes of one
/// length are consecutive, in symbol order, after the shorter ones.
#[rustfmt::skip]
const CODE_LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
];

/// Bits looked up at once when decoding Huffman.
const FAST_BITS: u32 = 9;

/// The Huffman code, arranged for decoding.
struct Huffman {
    /// For each 9-bit prefix whose code is at most 9 bits: (symbol, length);
    /// length 0 where the code is longer.
    fast: [(u16, u8); 1 << FAST_BITS],
    /// Per length: the first code of that length, the number of codes, and
    /// where its symbols start in `symbols`.
    first: [u32; 31],
    count: [u32; 31],
    offset: [u32; 31],
    /// Symbols sorted by (length, symbol).
    symbols: [u16; 257],
}

fn huffman() -> &'static Huffman {
    static TABLE: OnceLock<Huffman> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut h = Huffman {
            fast: [(0, 0); 1 << FAST_BITS],
            first: [0; 31],
            count: [0; 31],
            offset: [0; 31],
            symbols: [0; 257],
        };
        for &l in &CODE_LENGTHS {
            h.count[l as usize] += 1;
        }
        let (mut code, mut at) = (0u32, 0u32);
        for l in 1..31 {
            code <<= 1;
            h.first[l] = code;
            h.offset[l] = at;
            code += h.count[l];
            at += h.count[l];
        }
        let mut next = h.offset;
        for (sym, &l) in CODE_LENGTHS.iter().enumerate() {
            let l = l as usize;
            h.symbols[next[l] as usize] = sym as u16;
            let code = h.first[l] + (next[l] - h.offset[l]);
            next[l] += 1;
            if l as u32 <= FAST_BITS {
                let shift = FAST_BITS - l as u32;
                for low in 0..(1u32 << shift) {
                    h.fast[((code << shift) | low) as usize] = (sym as u16, l as u8);
                }
            }
        }
        h
    })
}

/// Decode Huffman-coded `src` onto `out`. None if it is not a valid
/// string: a code for EOS, or padding that is not the EOS code's first
/// bits (all ones) or is longer than 7 bits (RFC 7541 5.2).
fn huffman_decode(src: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let h = huffman();
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    let mut input = src.iter();
    loop {
        while bits <= 56 {
            match input.next() {
                Some(&b) => {
                    acc |= u64::from(b) << (56 - bits);
                    bits += 8;
                }
                None => break,
            }
        }
        if bits == 0 {
            return Some(());
        }
        // The next FAST_BITS bits (zeros past the end, which the length
        // check below catches).
        let (sym, len) = h.fast[(acc >> (64 - FAST_BITS)) as usize];
        let (sym, len) = if len != 0 {
            (sym, u32::from(len))
        } else {
            let mut found = None;
            for l in (FAST_BITS + 1)..31 {
                let code = (acc >> (64 - l)) as u32;
                let i = code.wrapping_sub(h.first[l as usize]);
                if i < h.count[l as usize] {
                    found = Some((h.symbols[(h.offset[l as usize] + i) as usize], l));
                    break;
                }
            }
            found?
        };
        if len > bits {
            // What is left is padding: fewer than 8 bits, all ones.
            let ones = (1u64 << bits) - 1;
            return (bits < 8 && (acc >> (64 - bits)) == ones).then_some(());
        }
        if sym == 256 {
            return None;
        }
        out.push(sym as u8);
        acc <<= len;
        bits -= len;
    }
}

/// One dynamic-table entry.
struct Entry {
    name: Box<[u8]>,
    value: Box<[u8]>,
}

impl Entry {
    fn size(&self) -> usize {
        self.name.len() + self.value.len() + FIELD_OVERHEAD
    }
}

/// One connection's decoder: its dynamic table.
pub(crate) struct Decoder {
    /// Newest first.
    table: VecDeque<Entry>,
    size: usize,
    max: usize,
    /// Huffman-decoded name and value of the field at hand.
    name: Vec<u8>,
    value: Vec<u8>,
}

fn compression(why: &'static str) -> ConnError {
    ConnError::new(ErrorCode::Compression, why)
}

/// An integer with an `n`-bit prefix at the start of `b` (RFC 7541 5.1),
/// and the bytes it took. Values past 2^28 are refused: nothing this
/// server accepts is that long.
fn int(b: &[u8], n: u8) -> Result<(usize, usize), ConnError> {
    let max = (1usize << n) - 1;
    let first = *b.first().ok_or_else(|| compression("truncated integer"))? as usize & max;
    if first < max {
        return Ok((first, 1));
    }
    let mut value = max;
    for (i, &byte) in b.iter().enumerate().skip(1).take(4) {
        value += ((byte & 0x7f) as usize) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(compression("integer too long or truncated"))
}

impl Decoder {
    pub(crate) fn new() -> Decoder {
        Decoder { table: VecDeque::new(), size: 0, max: TABLE_SIZE, name: Vec::new(), value: Vec::new() }
    }

    /// Entry `index` of the static then the dynamic table.
    fn get(&self, index: usize) -> Result<(&[u8], &[u8]), ConnError> {
        match index {
            0 => Err(compression("index 0")),
            1..=61 => Ok(STATIC[index - 1]),
            _ => self
                .table
                .get(index - 62)
                .map(|e| (&e.name[..], &e.value[..]))
                .ok_or_else(|| compression("index past the table")),
        }
    }

    fn evict_to(&mut self, max: usize) {
        while self.size > max {
            match self.table.pop_back() {
                Some(e) => self.size -= e.size(),
                None => break,
            }
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let e = Entry { name: name.into(), value: value.into() };
        let size = e.size();
        if size > self.max {
            // Larger than the table: it empties it (RFC 7541 4.4).
            self.table.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max - size);
        self.size += size;
        self.table.push_front(e);
    }

    /// Decode `block` (a whole header block) into `f`, which is cleared
    /// first. A block that cannot be decoded is a connection error
    /// (COMPRESSION_ERROR): the table is out of step from then on.
    pub(crate) fn decode(&mut self, block: &[u8], f: &mut Fields, limit: usize) -> Result<(), ConnError> {
        f.clear(limit);
        let mut pos = 0;
        let mut fields_seen = false;
        while pos < block.len() {
            let b = &block[pos..];
            let first = b[0];
            if first & 0x80 != 0 {
                let (index, used) = int(b, 7)?;
                pos += used;
                let (name, value) = self.get(index)?;
                f.add(name, value);
            } else if first & 0xe0 == 0x20 {
                // A table size update: only before the first field.
                if fields_seen {
                    return Err(compression("table size update after a field"));
                }
                let (size, used) = int(b, 5)?;
                if size > TABLE_SIZE {
                    return Err(compression("table size above the setting"));
                }
                pos += used;
                self.max = size;
                self.evict_to(size);
                continue;
            } else {
                // Literal: with incremental indexing (01), without (0000)
                // or never indexed (0001).
                let indexing = first & 0xc0 == 0x40;
                let (index, used) = int(b, if indexing { 6 } else { 4 })?;
                pos += used;
                let mut name = std::mem::take(&mut self.name);
                let mut value = std::mem::take(&mut self.value);
                name.clear();
                value.clear();
                let result = (|| {
                    let raw_name = if index == 0 {
                        string(block, &mut pos, &mut name)?
                    } else {
                        name.extend_from_slice(self.get(index)?.0);
                        None
                    };
                    let raw_value = string(block, &mut pos, &mut value)?;
                    let n = raw_name.map_or(&name[..], |(s, e)| &block[s..e]);
                    let v = raw_value.map_or(&value[..], |(s, e)| &block[s..e]);
                    f.add(n, v);
                    if indexing {
                        self.insert(n, v);
                    }
                    Ok(())
                })();
                self.name = name;
                self.value = value;
                result?;
            }
            fields_seen = true;
        }
        Ok(())
    }
}

/// A string literal at `block[*pos..]`: Some(range in `block`) when it is
/// raw, else None with the Huffman-decoded bytes in `out`.
fn string(block: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> Result<Option<(usize, usize)>, ConnError> {
    let b = block.get(*pos..).unwrap_or(&[]);
    let huff = b.first().is_some_and(|&x| x & 0x80 != 0);
    let (len, used) = int(b, 7)?;
    let start = *pos + used;
    let end = start
        .checked_add(len)
        .filter(|&e| e <= block.len())
        .ok_or_else(|| compression("string past the block"))?;
    *pos = end;
    if !huff {
        return Ok(Some((start, end)));
    }
    huffman_decode(&block[start..end], out).ok_or_else(|| compression("bad Huffman string"))?;
    Ok(None)
}

/// A request's decoded header list, checked field by field as RFC 9113
/// 8.2 and 8.3 say. Reused for every block on a loop.
#[derive(Default, Clone)]
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

    /// `:method`'s value (empty if it has none).
    pub(crate) fn method(&self) -> &[u8] {
        self.method.map_or(&[], |s| s.of(&self.bytes))
    }

    /// `:path`'s value (empty if it has none).
    pub(crate) fn path(&self) -> &[u8] {
        self.path.map_or(&[], |s| s.of(&self.bytes))
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
    is_tchar(b) && !b.is_ascii_uppercase()
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
    put_str(out, crate::http::decimal(u64::from(status.min(999)), &mut [0; 20]));
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

    /// Decoded by another implementation, `loona-hpack`.
    fn decode_all(block: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        loona_hpack::Decoder::new().decode(block).unwrap()
    }

    /// Huffman-encode `s` with the code rebuilt from CODE_LENGTHS (tests
    /// only: this server sends no Huffman).
    fn huffman_encode(s: &[u8]) -> Vec<u8> {
        let h = huffman();
        let mut codes = [(0u32, 0u32); 257];
        for l in 1..31 {
            for i in 0..h.count[l] {
                let sym = h.symbols[(h.offset[l] + i) as usize];
                codes[sym as usize] = (h.first[l] + i, l as u32);
            }
        }
        let (mut acc, mut bits, mut out) = (0u64, 0u32, Vec::new());
        for &c in s {
            let (code, len) = codes[c as usize];
            acc = (acc << len) | u64::from(code);
            bits += len;
            while bits >= 8 {
                out.push((acc >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) as u8) | ((1u8 << (8 - bits)) - 1));
        }
        out
    }

    #[test]
    fn huffman_matches_rfc_7541_and_another_decoder() {
        // RFC 7541 C.4.1: "www.example.com".
        let want = [0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff];
        assert_eq!(huffman_encode(b"www.example.com"), want);
        let mut out = Vec::new();
        huffman_decode(&want, &mut out).unwrap();
        assert_eq!(out, b"www.example.com");
        // Every byte value, in many mixes, through both decoders.
        let mut seed = 0x2545_f491_u32;
        for round in 0..300 {
            let len = round % 40 + 1;
            let s: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    if round % 3 == 0 {
                        (seed % 256) as u8
                    } else {
                        b"abc/.-_019xyz"[(seed % 13) as usize]
                    }
                })
                .collect();
            let enc = huffman_encode(&s);
            let mut out = Vec::new();
            huffman_decode(&enc, &mut out).unwrap();
            assert_eq!(out, s);
            let mut block = vec![0x00, 0x01, b'x'];
            put_int(&mut block, 0x80, 7, enc.len());
            block.extend_from_slice(&enc);
            assert_eq!(decode_all(&block)[0].1, s, "loona-hpack disagrees");
        }
    }

    #[test]
    fn bad_huffman_is_refused() {
        // Padding of 8 or more ones; padding with a zero; EOS itself.
        for bad in [&[0xff, 0xff][..], &[0x00, 0x00][..], &[0xff, 0xff, 0xff, 0xfc][..]] {
            let mut out = Vec::new();
            assert!(huffman_decode(bad, &mut out).is_none(), "{bad:?}");
        }
        // "0" is 00000: a zero padding bit after it is wrong, ones are fine.
        assert!(huffman_decode(&[0b0000_0111], &mut Vec::new()).is_some());
        assert!(huffman_decode(&[0b0000_0110], &mut Vec::new()).is_none());
    }

    #[test]
    fn the_dynamic_table_is_used_and_evicted() {
        let mut d = Decoder::new();
        let mut f = Fields::default();
        // :method GET, :scheme http, :path /, x-a: 1 indexed, then x-a by index 62.
        let mut b = vec![0x82, 0x86, 0x84, 0x40];
        put_str(&mut b, b"x-a");
        put_str(&mut b, b"1");
        d.decode(&b, &mut f, 16384).unwrap();
        d.decode(&[0x82, 0x86, 0x84, 0xbe], &mut f, 16384).unwrap();
        let got: Vec<_> = f.spans.iter().map(|h| (h.name.of(&f.bytes), h.value.of(&f.bytes))).collect();
        assert_eq!(got, [(&b"x-a"[..], &b"1"[..])]);
        // A size update to 0 empties it; then index 62 is an error.
        d.decode(&[0x20, 0x82], &mut f, 16384).unwrap();
        assert!(d.decode(&[0xbe], &mut f, 16384).is_err());
        // A size update after a field, or above the setting (4096 is the
        // setting itself), is an error.
        assert!(d.decode(&[0x82, 0x20], &mut f, 16384).is_err());
        assert!(Decoder::new().decode(&[0x3f, 0xe1, 0x1f], &mut f, 16384).is_ok());
        assert!(Decoder::new().decode(&[0x3f, 0xe2, 0x1f], &mut f, 16384).is_err());
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

    /// One field of a block a test encodes: indexed, or a literal
    /// (`how`: 0 with incremental indexing, 1 without, 2 never indexed)
    /// whose name is indexed (`name_pick`) or given, each string raw or
    /// Huffman-coded. A pick chooses among the entries that exist then.
    #[derive(Debug, Clone)]
    enum Rep {
        Indexed(usize),
        Literal { name_pick: Option<usize>, name: Vec<u8>, value: Vec<u8>, how: u8, huff: (bool, bool) },
    }

    /// The static entries with regular names that a request may carry
    /// (content-length's empty value and transfer-encoding are malformed).
    fn static_regular() -> Vec<usize> {
        (15..=61).filter(|&i| i != 28 && i != 57).collect()
    }

    /// What the encoder knows of the dynamic table: its entries, newest
    /// first, their size and the maximum (RFC 7541 4).
    struct Table {
        entries: VecDeque<(Vec<u8>, Vec<u8>)>,
        size: usize,
        max: usize,
    }

    impl Table {
        fn evict_to(&mut self, max: usize) {
            while self.size > max {
                let (n, v) = self.entries.pop_back().unwrap();
                self.size -= n.len() + v.len() + FIELD_OVERHEAD;
            }
        }

        fn insert(&mut self, n: &[u8], v: &[u8]) {
            let size = n.len() + v.len() + FIELD_OVERHEAD;
            if size > self.max {
                self.entries.clear();
                self.size = 0;
                return;
            }
            self.evict_to(self.max - size);
            self.entries.push_front((n.to_vec(), v.to_vec()));
            self.size += size;
        }

        /// The index `pick` chooses, and its entry.
        fn pick(&self, pick: usize) -> (usize, Vec<u8>, Vec<u8>) {
            let st = static_regular();
            let k = pick % (st.len() + self.entries.len());
            if k < st.len() {
                let (n, v) = STATIC[st[k] - 1];
                (st[k], n.to_vec(), v.to_vec())
            } else {
                let (n, v) = &self.entries[k - st.len()];
                (62 + k - st.len(), n.clone(), v.clone())
            }
        }
    }

    fn put_string(out: &mut Vec<u8>, s: &[u8], huff: bool) {
        if huff {
            let h = huffman_encode(s);
            put_int(out, 0x80, 7, h.len());
            out.extend_from_slice(&h);
        } else {
            put_str(out, s);
        }
    }

    /// Encode a block: size updates first, then the fields; the table
    /// follows what the block does to it.
    fn encode_block(t: &mut Table, updates: &[usize], reps: &[Rep]) -> Vec<u8> {
        let mut out = Vec::new();
        // Size updates only before a field (loona-hpack refuses a block of
        // updates alone).
        let updates = if reps.is_empty() { &[][..] } else { updates };
        for &u in updates {
            put_table_size(&mut out, u);
            t.max = u;
            t.evict_to(u);
        }
        for r in reps {
            match r {
                Rep::Indexed(pick) => put_int(&mut out, 0x80, 7, t.pick(*pick).0),
                Rep::Literal { name_pick, name, value, how, huff } => {
                    let (mask, bits) = match how % 3 {
                        0 => (0x40, 6),
                        1 => (0x00, 4),
                        _ => (0x10, 4),
                    };
                    let name = match name_pick {
                        Some(p) => {
                            let (i, n, _) = t.pick(*p);
                            put_int(&mut out, mask, bits, i);
                            n
                        }
                        None => {
                            put_int(&mut out, mask, bits, 0);
                            put_string(&mut out, name, huff.0);
                            name.clone()
                        }
                    };
                    put_string(&mut out, value, huff.1);
                    if how % 3 == 0 {
                        t.insert(&name, value);
                    }
                }
            }
        }
        out
    }

    fn field_name() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::sample::select(b"abcxyz019-".to_vec()), 0..12).prop_map(
            |mut n| {
                n.splice(0..0, *b"x-");
                n
            },
        )
    }

    /// A value with any byte but NUL, CR and LF, and no outer whitespace.
    fn field_value() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::collection::vec(proptest::prop_oneof![0x21u8..0x7f, Just(b' '), 0x80u8..=0xff], 0..60)
            .prop_map(|mut v| {
                for i in [0, v.len().saturating_sub(1)] {
                    if v.get(i) == Some(&b' ') {
                        v[i] = b'v';
                    }
                }
                v
            })
    }

    fn rep() -> impl proptest::strategy::Strategy<Value = Rep> {
        proptest::prop_oneof![
            any::<usize>().prop_map(Rep::Indexed),
            (
                proptest::option::of(any::<usize>()),
                field_name(),
                field_value(),
                0u8..3,
                (any::<bool>(), any::<bool>())
            )
                .prop_map(|(name_pick, name, value, how, huff)| Rep::Literal {
                    name_pick,
                    name,
                    value,
                    how,
                    huff
                }),
        ]
    }

    use proptest::prelude::{any, Just, Strategy};

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Blocks of every representation, raw and Huffman strings, table
        /// size updates and evictions, one after another on one
        /// connection: each decodes to what another decoder (loona-hpack)
        /// reads, with the list's size counted, and the dynamic table stays
        /// the encoder's.
        #[test]
        fn any_encoded_blocks_decode_as_another_decoder_reads_them(
            blocks in proptest::collection::vec(
                (proptest::collection::vec(0usize..=TABLE_SIZE, 0..3), proptest::collection::vec(rep(), 0..24)),
                1..6,
            ),
        ) {
            let mut t = Table { entries: VecDeque::new(), size: 0, max: TABLE_SIZE };
            let (mut ours, mut other) = (Decoder::new(), loona_hpack::Decoder::new());
            let mut f = Fields::default();
            for (updates, reps) in &blocks {
                let block = encode_block(&mut t, updates, reps);
                ours.decode(&block, &mut f, 1 << 20).unwrap();
                let want = other.decode(&block).unwrap();
                proptest::prop_assert_eq!(f.malformed, None);
                let got: Vec<_> =
                    f.spans.iter().map(|h| (h.name.of(&f.bytes).to_vec(), h.value.of(&f.bytes).to_vec())).collect();
                proptest::prop_assert_eq!(&got, &want);
                let size: usize = want.iter().map(|(n, v)| n.len() + v.len() + FIELD_OVERHEAD).sum();
                proptest::prop_assert_eq!(f.size, size);
                let table: Vec<_> = ours.table.iter().map(|e| (e.name.to_vec(), e.value.to_vec())).collect();
                proptest::prop_assert_eq!(&table, &t.entries.iter().cloned().collect::<Vec<_>>());
                proptest::prop_assert_eq!((ours.size, ours.max), (t.size, t.max));
            }
        }

        /// Any bytes, block after block on one decoder: an answer or a
        /// compression error, never a panic; the table within its maximum
        /// and its size the sum of its entries; what is stored of the list
        /// within the limit.
        #[test]
        fn any_bytes_decode_or_fail_with_the_table_in_bounds(
            blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 1..5),
            limit in 0usize..2048,
        ) {
            let mut d = Decoder::new();
            let mut f = Fields::default();
            for b in &blocks {
                let r = d.decode(b, &mut f, limit);
                proptest::prop_assert!(d.size <= d.max && d.max <= TABLE_SIZE);
                proptest::prop_assert_eq!(d.size, d.table.iter().map(Entry::size).sum::<usize>());
                proptest::prop_assert!(f.bytes.len() <= limit, "{} bytes kept past {limit}", f.bytes.len());
                match r {
                    Ok(()) => {}
                    Err(e) => {
                        proptest::prop_assert_eq!(e.code, ErrorCode::Compression);
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn bad_blocks_are_compression_errors() {
        let mut f = Fields::default();
        // Index 70 is past the static table with an empty dynamic one.
        let e = Decoder::new().decode(&[0x80 | 70], &mut f, 16384).unwrap_err();
        assert_eq!(e.code, ErrorCode::Compression);
    }
}
