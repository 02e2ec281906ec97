//! Range requests (RFC 9110 section 14): parsing `Range` and formatting
//! `Content-Range`. `If-Range` is in [`crate::conditional::if_range`].
//!
//! Only the `bytes` unit exists, and only a single range is ever served. How
//! each kind of `Range` value is answered, given a file of `len` bytes:
//!
//! | `Range` value                                   | answer |
//! |-------------------------------------------------|--------|
//! | `bytes=a-b`, `a <= b`, `a < len`                | 206, bytes `a..=min(b, len-1)` |
//! | `bytes=a-`, `a < len`                           | 206, bytes `a..=len-1` |
//! | `bytes=-n`, `n > 0`, `len > 0`                  | 206, the last `min(n, len)` bytes |
//! | `bytes=a-…` with `a >= len`, `bytes=-0`, any range of an empty file | 416, `Content-Range: bytes */len` |
//! | several ranges, at least one satisfiable        | 200, whole file (we do not send `multipart/byteranges`) |
//! | several ranges, none satisfiable                | 416 |
//! | malformed: another unit, no `=`, not digits, `a > b`, a number over `u64::MAX`, an empty list | 200, whole file (the header is ignored, as nginx does) |
//!
//! The unit is matched case-insensitively; whitespace is tolerated around `=`,
//! `,` and `-`, and empty list elements (`bytes=0-1,`) are skipped. A single
//! malformed element makes the whole header malformed. All arithmetic is
//! `u64`, so files past 4 GiB work on every platform.
//!
//! Nothing here allocates.

use crate::http::parse_decimal;
use crate::http::push_u64;

/// What a Range header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Send the whole representation (no Range, malformed Range, or several ranges).
    Full,
    /// Send bytes `start..=end` (end already clipped to len-1) with 206.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Interpret a Range header value against a length. See the module
/// documentation for the answer to each kind of value.
pub fn parse_range(value: &[u8], len: u64) -> RangeRequest {
    let Some(set) = range_set(value) else {
        return RangeRequest::Full;
    };
    let mut count = 0usize;
    let mut first = RangeRequest::Unsatisfiable;
    let mut any_satisfiable = false;
    for spec in set.split(|&b| b == b',') {
        let spec = spec.trim_ascii();
        if spec.is_empty() {
            continue;
        }
        let Some(r) = resolve(spec, len) else {
            return RangeRequest::Full;
        };
        if count == 0 {
            first = r;
        }
        count += 1;
        any_satisfiable |= r != RangeRequest::Unsatisfiable;
    }
    match count {
        // `bytes=` or `bytes=,`: the range-set needs at least one element.
        0 => RangeRequest::Full,
        1 => first,
        _ if any_satisfiable => RangeRequest::Full,
        _ => RangeRequest::Unsatisfiable,
    }
}

/// The range-set after `bytes=`, or `None` for another unit or no `=`.
fn range_set(value: &[u8]) -> Option<&[u8]> {
    let value = value.trim_ascii_start();
    let unit = value.get(..5)?;
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    value.get(5..)?.trim_ascii_start().strip_prefix(b"=")
}

/// One range-spec (already trimmed, non-empty) against `len`; `None` when malformed.
fn resolve(spec: &[u8], len: u64) -> Option<RangeRequest> {
    let dash = spec.iter().position(|&b| b == b'-')?;
    let first = spec.get(..dash)?.trim_ascii();
    let last = spec.get(dash + 1..)?.trim_ascii();
    let r = if first.is_empty() {
        // suffix-range: the last `n` bytes.
        let n = parse_decimal(last)?;
        if n == 0 || len == 0 {
            RangeRequest::Unsatisfiable
        } else {
            RangeRequest::Partial { start: len - n.min(len), end: len - 1 }
        }
    } else {
        let start = parse_decimal(first)?;
        let end = if last.is_empty() { u64::MAX } else { parse_decimal(last)? };
        if start > end {
            return None;
        }
        if start >= len {
            RangeRequest::Unsatisfiable
        } else {
            RangeRequest::Partial { start, end: end.min(len - 1) }
        }
    };
    Some(r)
}

/// Append the `Content-Range` value for a 206, `bytes start-end/len`, to `out`.
pub fn content_range(out: &mut Vec<u8>, start: u64, end: u64, len: u64) {
    out.extend_from_slice(b"bytes ");
    push_u64(out, start);
    out.push(b'-');
    push_u64(out, end);
    out.push(b'/');
    push_u64(out, len);
}

/// Append the `Content-Range` value for a 416, `bytes */len`, to `out`.
pub fn content_range_unsatisfied(out: &mut Vec<u8>, len: u64) {
    out.extend_from_slice(b"bytes */");
    push_u64(out, len);
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{Full, Partial, Unsatisfiable};
    use super::*;

    const GIB5: u64 = 5 << 30;

    fn p(start: u64, end: u64) -> RangeRequest {
        Partial { start, end }
    }

    #[test]
    fn parse_table() {
        let cases: &[(&[u8], u64, RangeRequest)] = &[
            // Single ranges.
            (b"bytes=0-0", 10, p(0, 0)),
            (b"bytes=0-9", 10, p(0, 9)),
            (b"bytes=2-5", 10, p(2, 5)),
            (b"bytes=5-", 10, p(5, 9)),
            (b"bytes=9-", 10, p(9, 9)),
            (b"bytes=0-", 10, p(0, 9)),
            (b"bytes=-1", 10, p(9, 9)),
            (b"bytes=-3", 10, p(7, 9)),
            (b"bytes=-10", 10, p(0, 9)),
            (b"bytes=-11", 10, p(0, 9)),
            (b"bytes=-18446744073709551615", 10, p(0, 9)),
            // Clipped at the end.
            (b"bytes=5-100", 10, p(5, 9)),
            (b"bytes=0-18446744073709551615", 10, p(0, 9)),
            // Case and whitespace.
            (b"BYTES=1-2", 10, p(1, 2)),
            (b"Bytes=1-2", 10, p(1, 2)),
            (b"  bytes = 1-2  ", 10, p(1, 2)),
            (b"bytes=\t1 - 2\t", 10, p(1, 2)),
            (b"bytes=1-2,", 10, p(1, 2)),
            (b"bytes=, ,1-2", 10, p(1, 2)),
            (b"bytes=007-008", 10, p(7, 8)),
            // Unsatisfiable.
            (b"bytes=10-", 10, Unsatisfiable),
            (b"bytes=10-20", 10, Unsatisfiable),
            (b"bytes=9999999999-", 10, Unsatisfiable),
            (b"bytes=-0", 10, Unsatisfiable),
            (b"bytes=-000", 10, Unsatisfiable),
            (b"bytes=0-0", 0, Unsatisfiable),
            (b"bytes=0-", 0, Unsatisfiable),
            (b"bytes=-5", 0, Unsatisfiable),
            // Several ranges: whole file unless none is satisfiable.
            (b"bytes=1-2,4-5", 10, Full),
            (b"bytes=1-2, 20-30", 10, Full),
            (b"bytes=20-30, 1-2", 10, Full),
            (b"bytes=0-0,-1", 10, Full),
            (b"bytes=20-30, 40-", 10, Unsatisfiable),
            (b"bytes=20-30,-0", 10, Unsatisfiable),
            (b"bytes=0-1,2-3", 0, Unsatisfiable),
            // Malformed: ignored.
            (b"", 10, Full),
            (b"bytes", 10, Full),
            (b"bytes=", 10, Full),
            (b"bytes=,", 10, Full),
            (b"bytes 0-1", 10, Full),
            (b"bytes:0-1", 10, Full),
            (b"bytesx=0-1", 10, Full),
            (b"items=0-1", 10, Full),
            (b"byte=0-1", 10, Full),
            (b"bytes=a-b", 10, Full),
            (b"bytes=1-a", 10, Full),
            (b"bytes=5-1", 10, Full),
            (b"bytes=-", 10, Full),
            (b"bytes=1", 10, Full),
            (b"bytes=1-2-3", 10, Full),
            (b"bytes=--1", 10, Full),
            (b"bytes=+1-2", 10, Full),
            (b"bytes=-+1", 10, Full),
            (b"bytes=1 2-3", 10, Full),
            (b"bytes=0x1-2", 10, Full),
            (b"bytes=1-2,x", 10, Full),
            (b"bytes=5-1,0-1", 10, Full),
            (b"bytes=20-30,5-1", 10, Full),
            (b"bytes=\xff-1", 10, Full),
            // u64 overflow.
            (b"bytes=18446744073709551616-", 10, Full),
            (b"bytes=0-18446744073709551616", 10, Full),
            (b"bytes=-18446744073709551616", 10, Full),
            (b"bytes=99999999999999999999999999-", 10, Full),
        ];
        for &(value, len, want) in cases {
            assert_eq!(parse_range(value, len), want, "{:?} len={len}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn past_four_gib() {
        let cases: &[(&[u8], RangeRequest)] = &[
            (b"bytes=4294967296-", p(1 << 32, GIB5 - 1)),
            (b"bytes=4294967295-4294967296", p(u64::from(u32::MAX), 1 << 32)),
            (b"bytes=-1", p(GIB5 - 1, GIB5 - 1)),
            (b"bytes=-4294967296", p(GIB5 - (1 << 32), GIB5 - 1)),
            (b"bytes=0-", p(0, GIB5 - 1)),
            (b"bytes=5368709119-", p(GIB5 - 1, GIB5 - 1)),
            (b"bytes=5368709120-", Unsatisfiable),
            (b"bytes=5000000000-99999999999", p(5_000_000_000, GIB5 - 1)),
        ];
        for &(value, want) in cases {
            assert_eq!(parse_range(value, GIB5), want, "{:?}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn content_range_format() {
        let mut v = Vec::new();
        content_range(&mut v, 0, 0, 1);
        assert_eq!(v, b"bytes 0-0/1");
        v.clear();
        content_range(&mut v, 0, 9, GIB5);
        assert_eq!(v, b"bytes 0-9/5368709120");
        v.clear();
        content_range(&mut v, 1 << 32, GIB5 - 1, GIB5);
        assert_eq!(v, b"bytes 4294967296-5368709119/5368709120");
        v.clear();
        content_range(&mut v, u64::MAX, u64::MAX, u64::MAX);
        assert_eq!(v, b"bytes 18446744073709551615-18446744073709551615/18446744073709551615");
        v.clear();
        content_range_unsatisfied(&mut v, 0);
        assert_eq!(v, b"bytes */0");
        // Appends rather than overwrites.
        v.clear();
        v.extend_from_slice(b"Content-Range: ");
        content_range_unsatisfied(&mut v, GIB5);
        assert_eq!(v, b"Content-Range: bytes */5368709120");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_stays_in_bounds(value: Vec<u8>, len: u64) {
            if let Partial { start, end } = parse_range(&value, len) {
                proptest::prop_assert!(start <= end && end < len);
            }
        }

        #[test]
        fn single_range_semantics(a: u64, b: u64, len in 0u64..=(1 << 40)) {
            let got = parse_range(format!("bytes={a}-{b}").as_bytes(), len);
            let want = if a > b {
                Full
            } else if a >= len {
                Unsatisfiable
            } else {
                p(a, b.min(len - 1))
            };
            proptest::prop_assert_eq!(got, want);
        }
    }
}
