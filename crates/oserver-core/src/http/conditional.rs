//! Validators (ETag, Last-Modified) and conditional requests (RFC 9110 section 13).
//!
//! The server offers two validators for a file, both derived from `fstat`:
//!
//! - a strong entity-tag built like nginx's, `"<mtime seconds hex>-<size hex>"`
//!   (see [`ETag`]);
//! - `Last-Modified`, the modification time at one-second resolution
//!   (see [`last_modified`]).
//!
//! For GET and HEAD, [`evaluate`] applies RFC 9110 section 13.2.2: when
//! `If-None-Match` is present it alone decides, otherwise `If-Modified-Since`
//! does. [`if_range`] decides whether a `Range` request still applies.
//!
//! Choices worth knowing:
//!
//! - `If-Modified-Since` answers 304 when the file is *not newer* than the given
//!   date (the RFC rule; nginx's default `if_modified_since exact` needs equality).
//! - A malformed `If-None-Match` or an unparsable `If-Modified-Since` is ignored,
//!   as if absent (RFC 9110 section 13.1.3); a malformed `If-None-Match` therefore
//!   lets `If-Modified-Since` decide.
//! - `If-None-Match: *` matches only as the whole field value, per the grammar.
//! - `If-Range` with a date matches only an exact (second) equality with the
//!   modification time; it does not try to decide whether that `Last-Modified`
//!   is "strong" in the sense of RFC 9110 section 8.8.2.2.
//! - Modification times before 1970 count as 1970 for the ETag and comparisons,
//!   and produce no `Last-Modified` at all (httpdate cannot format them).
//!
//! Nothing here allocates.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Room for the longest ETag: two quotes, 16 hex digits of seconds, a dash and
/// 16 hex digits of size (both are u64).
const ETAG_CAP: usize = 35;

/// A strong entity-tag for a file, `"<mtime secs hex>-<size hex>"` with the
/// quotes, held inline so that producing it does not allocate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ETag {
    buf: [u8; ETAG_CAP],
    len: u8,
}

impl ETag {
    /// Build the entity-tag of a file with this modification time and size.
    pub fn new(mtime: SystemTime, size: u64) -> ETag {
        let mut buf = [0u8; ETAG_CAP];
        let mut n = 0;
        for part in [&b"\""[..], hex(mtime_secs(mtime), &mut [0; 16]), b"-", hex(size, &mut [0; 16]), b"\""] {
            buf[n..n + part.len()].copy_from_slice(part);
            n += part.len();
        }
        ETag {
            buf,
            // n <= ETAG_CAP (35) by construction, so it fits in a u8.
            len: n as u8,
        }
    }

    /// The entity-tag as it goes on the wire, quotes included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for ETag {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only ASCII hex digits, quotes and a dash ever go in.
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Display for ETag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Lowercase hex of `v` without leading zeros, written at the end of `out`.
fn hex(mut v: u64, out: &mut [u8; 16]) -> &[u8] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            return &out[i..];
        }
    }
}

/// Whole seconds since the Unix epoch; times before 1970 count as 0.
pub fn mtime_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The value to send as `Last-Modified` for a file modified at `mtime`:
/// `mtime` truncated to whole seconds, or `None` when it cannot be written as an
/// HTTP-date (before 1970 or after 9999), in which case the header is omitted.
///
/// `httpdate::fmt_http_date` and `HttpDate::from` panic on such times, so pass
/// them only what this returns.
pub fn last_modified(mtime: SystemTime) -> Option<SystemTime> {
    /// 10000-01-01T00:00:00Z, the first second httpdate refuses to format.
    const YEAR_10000: u64 = 253_402_300_800;
    let secs = mtime.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (secs < YEAR_10000).then(|| UNIX_EPOCH + Duration::from_secs(secs))
}

/// Length of an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`): every field
/// has a fixed width for the years httpdate formats (1970 to 9999).
const FIXDATE_LEN: usize = 29;

/// A file's `Last-Modified` value, formatted once when the file is opened
/// and held inline, so that each response copies 29 bytes instead of
/// formatting a date (which was 1.5% of a worker's time serving a small
/// file with keep-alive).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LastModified {
    buf: [u8; FIXDATE_LEN],
}

impl LastModified {
    /// The value for a file modified at `mtime` (see [`last_modified`]):
    /// `None` when it cannot be written as an HTTP-date.
    pub fn new(mtime: SystemTime) -> Option<LastModified> {
        use std::io::Write;
        let t = last_modified(mtime)?;
        let mut buf = [0u8; FIXDATE_LEN];
        let mut out = &mut buf[..];
        write!(out, "{}", httpdate::HttpDate::from(t)).ok()?;
        // Exactly filled: nothing left over means every byte was written.
        out.is_empty().then_some(LastModified { buf })
    }

    /// The date as it goes on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

impl fmt::Debug for LastModified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // httpdate writes ASCII only.
        f.write_str(&String::from_utf8_lossy(&self.buf))
    }
}

/// Parse an HTTP-date (IMF-fixdate, RFC 850 or asctime form) to Unix seconds.
fn parse_date(value: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(value.trim_ascii()).ok()?;
    let t = httpdate::parse_http_date(s).ok()?;
    Some(mtime_secs(t))
}

/// Split off one entity-tag (`"opaque"` or `W/"opaque"`) from the front of `s`.
/// Returns whether it is weak, the quoted part (quotes included) and the rest.
fn entity_tag(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (weak, s) = match s.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let inner = s.strip_prefix(b"\"")?;
    let close = inner.iter().position(|&b| b == b'"')?;
    // `close` indexes `inner`, which starts one byte into `s`: the quoted
    // part is `s[..close + 2]`.
    let quoted = s.get(..close + 2)?;
    let rest = s.get(close + 2..)?;
    Some((weak, quoted, rest))
}

/// The weak-comparison form of an entity-tag: without its `W/`.
fn opaque(tag: &[u8]) -> &[u8] {
    tag.strip_prefix(b"W/").unwrap_or(tag)
}

/// `Some(matched)` for a well-formed If-None-Match value, `None` when malformed.
fn match_none_match(value: &[u8], etag: &[u8]) -> Option<bool> {
    let value = value.trim_ascii();
    if value == b"*" {
        return Some(true);
    }
    let ours = opaque(etag);
    let mut rest = value;
    let mut any = false;
    let mut matched = false;
    loop {
        // Empty list elements (`a, , b`) are allowed by RFC 9110 section 5.6.1.
        rest = trim_start_list(rest);
        if rest.is_empty() {
            break;
        }
        let (_weak, quoted, after) = entity_tag(rest)?;
        matched |= quoted == ours;
        any = true;
        rest = after.trim_ascii_start();
        if !rest.is_empty() && rest.first() != Some(&b',') {
            return None;
        }
    }
    any.then_some(matched)
}

/// Skip whitespace and commas at the front of a list.
fn trim_start_list(mut s: &[u8]) -> &[u8] {
    while let Some((&b, rest)) = s.split_first() {
        if b == b',' || b.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Whether an `If-Modified-Since` value says the client's copy is current: the
/// date is not older than `mtime` at one-second resolution. An unparsable
/// date returns false (the header is ignored).
pub fn not_modified_since(value: &[u8], mtime: SystemTime) -> bool {
    parse_date(value).is_some_and(|since| mtime_secs(mtime) <= since)
}

/// The outcome of evaluating the preconditions of a GET or HEAD request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the representation normally (200 or 206).
    Proceed,
    /// Answer 304 Not Modified.
    NotModified,
}

/// Evaluate `If-None-Match` and `If-Modified-Since` for a GET or HEAD request
/// (RFC 9110 section 13.2.2): a well-formed `If-None-Match` alone decides;
/// otherwise `If-Modified-Since` does.
///
/// The caller should call this only when the response would otherwise be 200
/// (the file exists and is readable), and before looking at `Range`.
pub fn evaluate(
    if_none_match: Option<&[u8]>,
    if_modified_since: Option<&[u8]>,
    etag: &[u8],
    mtime: SystemTime,
) -> Precondition {
    let not_modified = match if_none_match.and_then(|v| match_none_match(v, etag)) {
        Some(matched) => matched,
        None => if_modified_since.is_some_and(|v| not_modified_since(v, mtime)),
    };
    if not_modified {
        Precondition::NotModified
    } else {
        Precondition::Proceed
    }
}

/// Whether an `If-Range` value still matches the file (RFC 9110 section
/// 13.1.5), so that its `Range` applies; when false, send the whole file.
///
/// An entity-tag must be strong and byte-equal to `etag` (a weak tag never
/// matches); a date must equal the modification time to the second.
pub fn if_range(value: &[u8], etag: &[u8], mtime: SystemTime) -> bool {
    let value = value.trim_ascii();
    match value.first() {
        Some(b'"') => !etag.starts_with(b"W/") && value == etag,
        Some(b'W') if value.starts_with(b"W/") => false,
        _ => parse_date(value) == Some(mtime_secs(mtime)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether an `If-None-Match` value matches `etag` (RFC 9110 section
    /// 13.1.2): `*` matches anything, otherwise any listed entity-tag that
    /// is equal under weak comparison (`W/"x"` matches `"x"`). A malformed
    /// value matches nothing.
    fn if_none_match(value: &[u8], etag: &[u8]) -> bool {
        match_none_match(value, etag) == Some(true)
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    /// 1994-11-06T08:49:37Z, the RFC's example date.
    const T: u64 = 784_111_777;
    const FIX: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    #[test]
    fn etag_format() {
        let cases: &[(SystemTime, u64, &[u8])] = &[
            (at(0), 0, b"\"0-0\""),
            (at(0x5f5e100), 1234, b"\"5f5e100-4d2\""),
            (at(T) + Duration::from_millis(999), 10, b"\"2ebc98a1-a\""),
            // SystemTime on Unix holds i64 seconds.
            (at(i64::MAX as u64), u64::MAX, b"\"7fffffffffffffff-ffffffffffffffff\""),
            (UNIX_EPOCH - Duration::from_secs(10), 1, b"\"0-1\""),
            (at(1), 5 << 30, b"\"1-140000000\""),
        ];
        for &(mtime, size, want) in cases {
            let tag = ETag::new(mtime, size);
            assert_eq!(tag.as_bytes(), want, "{mtime:?} {size}");
        }
        assert_eq!(ETag::new(at(i64::MAX as u64), u64::MAX).as_bytes().len(), ETAG_CAP);
        assert_eq!(ETag::new(at(1), 2).to_string(), "\"1-2\"");
    }

    #[test]
    fn last_modified_is_formatted_once_as_an_http_date() {
        let lm = LastModified::new(at(T) + Duration::from_millis(500)).unwrap();
        assert_eq!(lm.as_bytes(), httpdate::fmt_http_date(at(T)).as_bytes());
        let last = LastModified::new(at(253_402_300_799)).unwrap();
        assert_eq!(last.as_bytes(), b"Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(LastModified::new(at(0)).unwrap().as_bytes(), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(LastModified::new(UNIX_EPOCH - Duration::from_secs(1)), None);
        assert_eq!(LastModified::new(at(253_402_300_800)), None);
    }

    #[test]
    fn last_modified_range() {
        assert_eq!(last_modified(at(T) + Duration::from_millis(500)), Some(at(T)));
        assert_eq!(last_modified(at(0)), Some(at(0)));
        assert_eq!(last_modified(UNIX_EPOCH - Duration::from_secs(1)), None);
        assert_eq!(last_modified(at(253_402_300_799)), Some(at(253_402_300_799)));
        assert_eq!(last_modified(at(253_402_300_800)), None);
        // What it returns must be formattable.
        let t = last_modified(at(253_402_300_799)).unwrap();
        assert_eq!(httpdate::fmt_http_date(t), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn if_none_match_table() {
        let ours: &[u8] = br#""x""#;
        let cases: &[(&[u8], bool)] = &[
            (br#""x""#, true),
            (br#"W/"x""#, true),
            (br#"W/"x", "y""#, true),
            (br#""y", W/"x""#, true),
            (br#""y","x""#, true),
            (b"  \t\"y\" ,\t \"x\"  ", true),
            (br#", , "x" ,"#, true),
            (b"*", true),
            (b"  *  ", true),
            (br#""y""#, false),
            (br#""X""#, false),
            (br#"W/"y", "z""#, false),
            (br#""x,y""#, false),
            (br#""a,b", "x""#, true),
            // Malformed: no match, whatever else is in the list.
            (b"x", false),
            (br#""x" "y""#, false),
            (br#""x", y"#, false),
            (br#""x"#, false),
            (br#"w/"x""#, false),
            (br#"W/ "x""#, false),
            (br#""x", *"#, false),
            (b"", false),
            (b" , ", false),
            (b"\xff\"x\"", false),
        ];
        for &(value, want) in cases {
            assert_eq!(if_none_match(value, ours), want, "{:?}", String::from_utf8_lossy(value));
        }
        // Our own tag given as weak still compares weakly.
        assert!(if_none_match(br#""x""#, br#"W/"x""#));
        // A real ETag.
        let tag = ETag::new(at(T), 42);
        assert!(if_none_match(tag.as_bytes(), tag.as_bytes()));
    }

    #[test]
    fn not_modified_since_table() {
        let cases: &[(&[u8], SystemTime, bool)] = &[
            (FIX, at(T), true),
            (FIX, at(T) + Duration::from_millis(999), true),
            (FIX, at(T - 1), true),
            (FIX, at(T + 1), false),
            (b"Sunday, 06-Nov-94 08:49:37 GMT", at(T), true),
            (b"Sun Nov  6 08:49:37 1994", at(T), true),
            (b"  Sun, 06 Nov 1994 08:49:37 GMT  ", at(T), true),
            (b"Sun, 06 Nov 1994 08:49:36 GMT", at(T), false),
            (b"yesterday", at(0), false),
            (b"", at(0), false),
            (b"\xff\xfe", at(0), false),
            (b"Sun, 06 Nov 1994 08:49:37 GMT; length=12", at(T), false),
            (b"Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH - Duration::from_secs(5), true),
        ];
        for &(value, mtime, want) in cases {
            assert_eq!(
                not_modified_since(value, mtime),
                want,
                "{:?} {mtime:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn evaluate_table() {
        use Precondition::*;
        let tag: &[u8] = br#""x""#;
        let old: &[u8] = b"Sun, 06 Nov 1994 08:49:36 GMT";
        type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Precondition);
        let cases: &[Case] = &[
            (None, None, Proceed),
            (Some(br#""x""#), None, NotModified),
            (Some(b"*"), None, NotModified),
            (Some(br#""y""#), None, Proceed),
            (None, Some(FIX), NotModified),
            (None, Some(old), Proceed),
            (None, Some(b"garbage"), Proceed),
            // If-None-Match decides alone, whatever the date says.
            (Some(br#""y""#), Some(FIX), Proceed),
            (Some(br#"W/"x""#), Some(old), NotModified),
            // A malformed If-None-Match is ignored: the date decides.
            (Some(b"x"), Some(FIX), NotModified),
            (Some(b"x"), Some(old), Proceed),
            (Some(b""), None, Proceed),
        ];
        for &(inm, ims, want) in cases {
            assert_eq!(evaluate(inm, ims, tag, at(T)), want, "{inm:?} {ims:?}");
        }
    }

    #[test]
    fn if_range_table() {
        let tag: &[u8] = br#""x""#;
        let cases: &[(&[u8], SystemTime, bool)] = &[
            (br#""x""#, at(T), true),
            (br#"  "x"  "#, at(T), true),
            (br#"W/"x""#, at(T), false),
            (br#""y""#, at(T), false),
            (br#""x", "y""#, at(T), false),
            (br#""x"#, at(T), false),
            (FIX, at(T), true),
            (FIX, at(T) + Duration::from_millis(300), true),
            (FIX, at(T + 1), false),
            (FIX, at(T - 1), false),
            (b"Sun Nov  6 08:49:37 1994", at(T), true),
            (b"garbage", at(T), false),
            (b"", at(T), false),
            (b"W", at(T), false),
        ];
        for &(value, mtime, want) in cases {
            assert_eq!(if_range(value, tag, mtime), want, "{:?} {mtime:?}", String::from_utf8_lossy(value));
        }
        // A weak validator of ours never matches, even byte-equal.
        assert!(!if_range(br#"W/"x""#, br#"W/"x""#, at(T)));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(value: Vec<u8>, secs in 0u64..(1 << 40)) {
            let tag = ETag::new(at(secs), secs);
            let _ = if_none_match(&value, tag.as_bytes());
            let _ = not_modified_since(&value, at(secs));
            let _ = if_range(&value, tag.as_bytes(), at(secs));
            let _ = evaluate(Some(&value), Some(&value), tag.as_bytes(), at(secs));
        }

        #[test]
        fn own_validators_match(secs in 0u64..253_402_300_800, size: u64) {
            let mtime = at(secs);
            let tag = ETag::new(mtime, size);
            let date = httpdate::fmt_http_date(mtime);
            proptest::prop_assert!(if_none_match(tag.as_bytes(), tag.as_bytes()));
            proptest::prop_assert!(if_range(tag.as_bytes(), tag.as_bytes(), mtime));
            proptest::prop_assert!(if_range(date.as_bytes(), tag.as_bytes(), mtime));
            proptest::prop_assert!(not_modified_since(date.as_bytes(), mtime));
        }
    }
}
