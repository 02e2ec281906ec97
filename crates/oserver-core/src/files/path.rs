//! Request target to a safe path beneath the root.
//!
//! Two steps, both free of allocation beyond the caller's reusable buffer:
//!
//! 1. [`split_target`] cuts a request target into its still-encoded path and
//!    its query, dropping any fragment. Origin-form (`/p?q`) and absolute-form
//!    (`http://host[:port]/p?q`, scheme `http` or `https` in any case) are
//!    accepted; anything else (`*`, authority-form, a relative path) is a
//!    [`PathError::BadRequest`].
//! 2. [`resolve`] decodes `%XX` escapes exactly once and resolves `.`, `..`
//!    and empty segments in the same pass, producing a relative path that can
//!    be handed to [`crate::fs::Root::open`].
//!
//! # Decisions
//!
//! - **Decoding happens once.** `%252e` decodes to the three bytes `%2e`,
//!   which are a file name, not a dot. A truncated escape (`%`, `%4`), a
//!   non-hex escape (`%zz`) and `%00` (as well as a raw NUL) are
//!   [`PathError::BadRequest`].
//! - **An encoded slash is a slash.** `%2F` is decoded before segments are
//!   resolved, as nginx does, so `/..%2f..%2fetc` is `/../../etc` and gets the
//!   same treatment as the plain spelling. No encoding can smuggle a `..`
//!   past the resolver, because the resolver only ever sees decoded bytes.
//! - **Climbing above the root is a 400.** A `..` that would pop past the
//!   root is [`PathError::Escapes`]; we answer it with 400 Bad Request like
//!   nginx, rather than clamping to the root (which would silently serve a
//!   different resource than the one asked for) or 403 (which would suggest
//!   the resource exists).
//! - **Backslash is an ordinary byte.** On Linux `\` is a legal file name
//!   byte and never a separator, so `/a\..\b` is the single segment
//!   `a\..\b`; nothing beneath the root can be reached through it that a
//!   plain name could not reach.
//! - **Trailing slash.** [`Resolved::trailing_slash`] is set when the decoded
//!   path ends in `/` (including `/` itself), and also when its last segment
//!   is `.` or `..` (`/dir/.`, `/dir/sub/..`): those name a directory, so a
//!   server that redirects `/dir` to `/dir/` need not redirect them.
//! - **Hidden.** [`Resolved::hidden`] is set when a segment of the *resolved*
//!   path starts with `.` (so `/.git/../x` is not hidden, but `/.git/config`
//!   is). A first segment `.well-known` (RFC 8615) is exempt, its children
//!   are not: `/.well-known/acme` is visible, `/.well-known/.git` is hidden.

use std::fmt;

/// Why a target cannot be mapped to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Malformed target: bad escape, `%00`, not origin- or absolute-form (400).
    BadRequest(&'static str),
    /// The path climbs above the root (answered 400, like nginx; see the
    /// module docs).
    Escapes,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::BadRequest(why) => write!(f, "bad request target: {why}"),
            PathError::Escapes => f.write_str("path climbs above the document root"),
        }
    }
}

impl std::error::Error for PathError {}

/// A target split into its parts, borrowing from the original target bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'t> {
    /// The path part as sent (still percent-encoded), starting with `/`.
    pub raw_path: &'t [u8],
    /// The query, without its `?`, if any (`Some(b"")` for a bare `?`).
    pub query: Option<&'t [u8]>,
    /// `raw_path` as the handlers' URL path, when it already is one (see
    /// [`normal`]): found in the same pass that finds the query.
    pub normal: Option<&'t str>,
}

/// What [`resolve`] learned about the path besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The decoded path ends in `/` (or is `/`), or its last segment is `.`
    /// or `..`: it names a directory.
    pub trailing_slash: bool,
    /// Some segment of the resolved path starts with `.`, except a first
    /// segment `.well-known`.
    pub hidden: bool,
}

/// Split an origin-form (`/p?q`) or absolute-form (`http://h/p?q`) target;
/// drops any fragment.
///
/// In absolute form the host is not validated here (beyond being non-empty);
/// with no path (`http://host` or `http://host?q`) the path is `/`.
///
/// # Errors
///
/// [`PathError::BadRequest`] for an empty target, a target that is neither
/// origin- nor absolute-form, a scheme other than http(s), or an empty host.
pub fn split_target(target: &[u8]) -> Result<Target<'_>, PathError> {
    let rest: &[u8] = match target.first() {
        Some(b'/') => {
            // Origin-form, nearly every request: one pass finds where the
            // path ends and whether it is normal.
            let (end, normal) = scan_path(target, true);
            let (raw_path, rest) = target.split_at(end);
            let query = match rest {
                [b'?', query @ ..] => Some(without_fragment(query)),
                _ => None,
            };
            return Ok(Target { raw_path, query, normal });
        }
        Some(_) => after_authority(target)?,
        None => return Err(PathError::BadRequest("empty target")),
    };

    // Everything from `#` on is a fragment: clients must not send it, but if
    // one does it never names part of the resource.
    let (path, query) = match rest.iter().position(|&b| b == b'?' || b == b'#') {
        Some(q) if rest.get(q) == Some(&b'?') => {
            (rest.get(..q).unwrap_or(&[]), Some(without_fragment(rest.get(q + 1..).unwrap_or(&[]))))
        }
        Some(hash) => (rest.get(..hash).unwrap_or(&[]), None),
        None => (rest, None),
    };
    // Only reachable from absolute-form: `http://host` or `http://host?q`.
    let raw_path: &[u8] = if path.is_empty() { b"/" } else { path };
    Ok(Target { raw_path, query, normal: normal(raw_path) })
}

/// What follows the authority of an absolute-form target. Out of line:
/// clients send it to proxies, rarely to a server.
#[cold]
#[inline(never)]
fn after_authority(target: &[u8]) -> Result<&[u8], PathError> {
    let after_scheme =
        strip_scheme(target).ok_or(PathError::BadRequest("target is neither origin- nor absolute-form"))?;
    // The authority runs until the path, query or fragment starts.
    let host_end = memchr::memchr3(b'/', b'?', b'#', after_scheme).unwrap_or(after_scheme.len());
    if host_end == 0 {
        return Err(PathError::BadRequest("empty host in absolute-form target"));
    }
    Ok(after_scheme.get(host_end..).unwrap_or(&[]))
}

/// A query up to its fragment, if it has one. memchr: a query may be long.
fn without_fragment(query: &[u8]) -> &[u8] {
    match memchr::memchr(b'#', query) {
        Some(hash) => query.get(..hash).unwrap_or(query),
        None => query,
    }
}

/// The part of `target` after a case-insensitive `http://` or `https://`.
fn strip_scheme(target: &[u8]) -> Option<&[u8]> {
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if let Some(head) = target.get(..scheme.len()) {
            if head.eq_ignore_ascii_case(scheme) {
                return target.get(scheme.len()..);
            }
        }
    }
    None
}

/// Decode `%XX` once and resolve `.`/`..`/`//` segments of `raw_path`, writing
/// the result into `out` (cleared first) as a *relative* path without leading
/// slash (empty for the root) and without trailing slash.
///
/// `out` is the only memory touched; a caller that reuses it across requests
/// allocates nothing once it has grown to its working size.
///
/// # Errors
///
/// [`PathError::BadRequest`] if `raw_path` does not start with `/`, has a
/// truncated or non-hex escape, or contains NUL (raw or `%00`);
/// [`PathError::Escapes`] if a `..` climbs above the root.
pub fn resolve(raw_path: &[u8], out: &mut Vec<u8>) -> Result<Resolved, PathError> {
    out.clear();
    if raw_path.first() != Some(&b'/') {
        return Err(PathError::BadRequest("path does not start with '/'"));
    }

    let mut seg = Segment::start(out);
    let mut i = 0;
    while i < raw_path.len() {
        let rest = raw_path.get(i..).unwrap_or(&[]);
        // Runs of ordinary bytes are copied in one go; only the three bytes
        // that need a decision stop the scan.
        let Some(stop) = memchr::memchr3(b'/', b'%', 0, rest) else {
            out.extend_from_slice(rest);
            break;
        };
        out.extend_from_slice(rest.get(..stop).unwrap_or(&[]));
        i += stop;
        let byte = match rest.get(stop) {
            Some(b'%') => {
                let decoded = decode_escape(raw_path.get(i + 1..i + 3))?;
                i += 3;
                decoded
            }
            Some(&b) => {
                i += 1;
                b
            }
            None => break,
        };
        match byte {
            0 => return Err(PathError::BadRequest("NUL byte in path")),
            b'/' => {
                seg.finish(out)?;
                seg = Segment::start(out);
            }
            b => out.push(b),
        }
    }
    let last = seg.finish(out)?;

    Ok(Resolved { trailing_slash: last != Kept::Name, hidden: is_hidden(out) })
}

/// `raw_path` as it is, when it is already the handlers' URL path: what
/// [`resolve`] and [`decoded_url`] would make of it, with no work. That is a
/// path starting with `/`, with no `%` escape, no NUL, no empty segment but
/// a final one (`/a/`), no `.` or `..` segment, and UTF-8. Nearly every
/// request's path is; `None` for the others, which go the long way.
pub fn normal(raw_path: &[u8]) -> Option<&str> {
    match raw_path.first() {
        Some(b'/') => scan_path(raw_path, false).1,
        _ => None,
    }
}

/// What a byte is to [`scan_path`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    /// Part of a segment's name.
    Plain,
    Slash,
    Dot,
    /// `?` or `#`: where an origin-form target's path ends.
    Stop,
    /// `%` or NUL: the path is not normal.
    Odd,
    /// Not ASCII: normal if the path is UTF-8.
    High,
}

/// [`Class`] by byte: one look-up per byte of a path.
static CLASS: [Class; 256] = {
    let mut t = [Class::Plain; 256];
    let mut c = 0x80;
    while c < 256 {
        t[c] = Class::High;
        c += 1;
    }
    t[b'/' as usize] = Class::Slash;
    t[b'.' as usize] = Class::Dot;
    t[b'?' as usize] = Class::Stop;
    t[b'#' as usize] = Class::Stop;
    t[b'%' as usize] = Class::Odd;
    t[0] = Class::Odd;
    t
};

/// Scan `path` (which starts with `/`) to its end, or to its first `?` or
/// `#` when `stops`: where the path ends, and the path up to there when it
/// is normal (see [`normal`]). One pass, one table look-up a byte.
#[inline(always)]
fn scan_path(path: &[u8], stops: bool) -> (usize, Option<&str>) {
    // Where the path ends once it is known not to be normal.
    let end_from = |i: usize| match stops {
        true => path.iter().skip(i).position(|&b| b == b'?' || b == b'#').map_or(path.len(), |n| i + n),
        false => path.len(),
    };
    // Where the current segment starts, and how many of its bytes are
    // dots: checked as each segment ends (at a `/` or the end).
    let (mut seg, mut dots) = (1usize, 0usize);
    let dot_segment = |end: usize, seg: usize, dots: usize| {
        let len = end - seg;
        len == dots && (len == 1 || len == 2)
    };
    let mut ascii = true;
    let mut i = 1;
    let end = loop {
        let Some(&b) = path.get(i) else { break path.len() };
        let class = CLASS[usize::from(b)];
        // Most bytes are a name's: a tight loop for them.
        if class == Class::Plain {
            i += 1;
            continue;
        }
        match class {
            Class::Dot => dots += 1,
            // Only the last segment may be empty: `/` and `/a/`.
            Class::Slash if i == seg || dot_segment(i, seg, dots) => return (end_from(i), None),
            Class::Slash => (seg, dots) = (i + 1, 0),
            Class::Stop if stops => break i,
            Class::Plain | Class::Stop => {}
            Class::Odd => return (end_from(i), None),
            Class::High => ascii = false,
        }
        i += 1;
    };
    let raw = path.get(..end).unwrap_or(&[]);
    if dot_segment(end, seg, dots) {
        return (end, None);
    }
    if ascii {
        // SAFETY: every byte is ASCII (the loop saw no byte of class
        // High), and ASCII is UTF-8. This spares a second pass over every
        // request's path; the others are validated below.
        return (end, Some(unsafe { std::str::from_utf8_unchecked(raw) }));
    }
    (end, std::str::from_utf8(raw).ok())
}

/// The URL path handlers see for the relative path `rel` (as [`resolve`]
/// produced it) into `out`: a leading `/`, a trailing one when
/// `trailing_slash` (never doubled for the root), bytes that are not UTF-8
/// as U+FFFD. Unlike [`url_path`], nothing is percent-encoded: handlers get
/// the decoded path.
pub fn decoded_url(rel: &[u8], trailing_slash: bool, out: &mut String) {
    out.clear();
    out.push('/');
    out.push_str(&String::from_utf8_lossy(rel));
    if trailing_slash && !rel.is_empty() {
        out.push('/');
    }
}

/// Value of the hex digit `b`, if it is one.
fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The byte encoded by the two characters after a `%` (`None` when fewer than
/// two remain).
fn decode_escape(digits: Option<&[u8]>) -> Result<u8, PathError> {
    let &[hi, lo] = digits.unwrap_or(&[]) else {
        return Err(PathError::BadRequest("truncated percent-escape"));
    };
    match (hex_val(hi), hex_val(lo)) {
        (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
        _ => Err(PathError::BadRequest("non-hex percent-escape")),
    }
}

/// What happened to a finished segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    /// Empty, `.` or `..`: nothing of it remains, the path names a directory.
    Dropped,
    /// An ordinary name, now part of the output.
    Name,
}

/// The segment being decoded into the tail of `out`.
///
/// `out` always holds the finished segments joined by `/`; a new segment
/// pushes its separator eagerly and [`Segment::finish`] takes it back if the
/// segment turns out to be empty, `.` or `..`.
struct Segment {
    /// Length of `out` before this segment (and its separator).
    mark: usize,
    /// Where the segment's own bytes begin.
    start: usize,
}

impl Segment {
    fn start(out: &mut Vec<u8>) -> Segment {
        let mark = out.len();
        if mark != 0 {
            out.push(b'/');
        }
        Segment { mark, start: out.len() }
    }

    fn finish(self, out: &mut Vec<u8>) -> Result<Kept, PathError> {
        match out.get(self.start..).unwrap_or(&[]) {
            b"" | b"." => {
                out.truncate(self.mark);
                Ok(Kept::Dropped)
            }
            b".." => {
                out.truncate(self.mark);
                if out.is_empty() {
                    return Err(PathError::Escapes);
                }
                let parent = memchr::memrchr(b'/', out).unwrap_or(0);
                out.truncate(parent);
                Ok(Kept::Dropped)
            }
            _ => Ok(Kept::Name),
        }
    }
}

/// Whether a segment of the resolved `path` starts with `.`, a first
/// `.well-known` excepted.
fn is_hidden(path: &[u8]) -> bool {
    let mut segments = path.split(|&b| b == b'/');
    let first_ok = match segments.next() {
        Some(first) => first == b".well-known" || first.first() != Some(&b'.'),
        None => true,
    };
    !first_ok || segments.any(|s| s.first() == Some(&b'.'))
}

/// Write the relative path `rel` (as [`resolve`] produced it) back as a URL
/// path into `out`: a leading `/`, a trailing one when `trailing_slash` (never
/// doubled for the root), and every byte but RFC 3986's unreserved ones and
/// the separating `/` percent-encoded.
///
/// Built from the resolved path, never from the raw target, the result
/// cannot start with `//` or `/\` (no empty segment survives [`resolve`], and
/// `\` is encoded), so a `Location` made from it stays on this host.
pub fn url_path(rel: &[u8], trailing_slash: bool, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push(b'/');
    for &b in rel {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b);
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
    if trailing_slash && !rel.is_empty() {
        out.push(b'/');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_never_leaves_the_host() {
        // (target, the URL path of what it resolves to, as a directory)
        let table: &[(&[u8], &[u8])] = &[
            (b"//evil.com/..%2fhttptest", b"/httptest/"),
            (b"/\\evil.com/..%2fhttptest", b"/httptest/"),
            (b"/\\evil.com", b"/%5Cevil.com/"),
            (b"/httptest/./dir2", b"/httptest/dir2/"),
            (b"//evil.com", b"/evil.com/"),
            (b"/a b/%22q%22/<x>", b"/a%20b/%22q%22/%3Cx%3E/"),
            (b"/", b"/"),
            (b"/caf%C3%A9", b"/caf%C3%A9/"),
            (b"//evil.com/..%2fdir%20a", b"/dir%20a/"),
        ];
        for (target, want) in table {
            let (mut rel, mut url) = (Vec::new(), Vec::new());
            resolve(target, &mut rel).unwrap();
            url_path(&rel, true, &mut url);
            assert_eq!(&url[..], *want, "{}", String::from_utf8_lossy(target));
            assert!(!url.starts_with(b"//") && !url.starts_with(b"/\\"));
        }
    }

    /// What a test path must resolve to.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Want {
        /// Resolves to this relative path, trailing slash, hidden.
        Ok(&'static str, bool, bool),
        /// Climbs above the root.
        Escapes,
        /// Malformed.
        Bad,
    }
    use Want::*;

    /// Safe and unsafe paths. Add a row for every bug found.
    const TABLE: &[(&str, Want)] = &[
        // Plain.
        ("/", Ok("", true, false)),
        ("/index.html", Ok("index.html", false, false)),
        ("/dir/", Ok("dir", true, false)),
        ("/dir/sub/file", Ok("dir/sub/file", false, false)),
        // Dot segments and empty segments.
        ("/a/./b/../c", Ok("a/c", false, false)),
        ("//a//b", Ok("a/b", false, false)),
        ("///", Ok("", true, false)),
        ("/.", Ok("", true, false)),
        ("/dir/.", Ok("dir", true, false)),
        ("/dir/./", Ok("dir", true, false)),
        ("/dir/sub/..", Ok("dir", true, false)),
        ("/dir/..", Ok("", true, false)),
        ("/a/b/c/../../d", Ok("a/d", false, false)),
        ("/a/./b/../c%20d/", Ok("a/c d", true, false)),
        ("/a/../../b", Escapes),
        ("/..", Escapes),
        ("/../", Escapes),
        ("/../a", Escapes),
        ("/./../a", Escapes),
        ("//../a", Escapes),
        ("/httptest/../../../../etc/passwd", Escapes),
        ("/a/b/../../../etc", Escapes),
        // Names that merely contain dots.
        ("/text..txt", Ok("text..txt", false, false)),
        ("/...", Ok("...", false, true)),
        ("/..a", Ok("..a", false, true)),
        ("/a..", Ok("a..", false, false)),
        ("/a/.../b", Ok("a/.../b", false, true)),
        // Percent-decoding, exactly once.
        ("/space%20in%20name.txt", Ok("space in name.txt", false, false)),
        ("/dir2/%70%61%67%65%2e%68%74%6d%6c", Ok("dir2/page.html", false, false)),
        ("/%41%6a%6A", Ok("Ajj", false, false)),
        ("/%252e%252e/x", Ok("%2e%2e/x", false, false)),
        ("/%25", Ok("%", false, false)),
        ("/%2e%2e/%2e%2e/etc/passwd", Escapes),
        ("/%2E%2E/x", Escapes),
        ("/.%2e/x", Escapes),
        ("/a/%2e/b", Ok("a/b", false, false)),
        ("/a/%2e", Ok("a", true, false)),
        // Encoded slash is a slash.
        ("/a%2fb", Ok("a/b", false, false)),
        ("/a%2Fb%2F", Ok("a/b", true, false)),
        ("/..%2f..%2fetc", Escapes),
        ("/%2e%2e%2fetc", Escapes),
        ("/a%2f..%2f..%2fb", Escapes),
        ("/a%2f%2e%2e%2fb", Ok("b", false, false)),
        // Malformed escapes and NUL.
        ("/%", Bad),
        ("/%4", Bad),
        ("/a%", Bad),
        ("/%zz", Bad),
        ("/%g0", Bad),
        ("/%0g", Bad),
        ("/%%41", Bad),
        ("/%00", Bad),
        ("/a%00.html", Bad),
        ("/a\0b", Bad),
        ("", Bad),
        ("a/b", Bad),
        ("%2fa", Bad),
        // Backslash is a name byte, never a separator.
        ("/a\\..\\b", Ok("a\\..\\b", false, false)),
        ("/..\\..\\etc", Ok("..\\..\\etc", false, true)),
        ("/%5c..%5cetc", Ok("\\..\\etc", false, false)),
        // Hidden files.
        ("/.git/config", Ok(".git/config", false, true)),
        ("/.git/", Ok(".git", true, true)),
        ("/.htaccess", Ok(".htaccess", false, true)),
        ("/a/.hidden/b", Ok("a/.hidden/b", false, true)),
        ("/%2egit/config", Ok(".git/config", false, true)),
        ("/.git/../index.html", Ok("index.html", false, false)),
        ("/.well-known/acme", Ok(".well-known/acme", false, false)),
        ("/.well-known/", Ok(".well-known", true, false)),
        ("/.well-known/.git", Ok(".well-known/.git", false, true)),
        ("/.well-known/a/.b", Ok(".well-known/a/.b", false, true)),
        ("/a/.well-known/x", Ok("a/.well-known/x", false, true)),
        ("/.well-knownx/x", Ok(".well-knownx/x", false, true)),
        // Bytes beyond ASCII pass through untouched.
        ("/caf%C3%A9", Ok("caf\u{e9}", false, false)),
    ];

    #[test]
    fn resolve_table() {
        let mut out = Vec::new();
        for &(input, want) in TABLE {
            let got = resolve(input.as_bytes(), &mut out);
            let got = match got {
                Result::Ok(r) => {
                    let path = std::str::from_utf8(&out).expect("test outputs are UTF-8");
                    match want {
                        Ok(p, _, _) if p == path => Ok(p, r.trailing_slash, r.hidden),
                        _ => panic!("{input:?}: got Ok({path:?}, {r:?}), want {want:?}"),
                    }
                }
                Err(PathError::Escapes) => Escapes,
                Err(PathError::BadRequest(_)) => Bad,
            };
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn resolve_reuses_and_clears_out() {
        let mut out = b"stale/junk".to_vec();
        resolve(b"/x", &mut out).unwrap();
        assert_eq!(out, b"x");
        // An error may leave partial output, but the next call starts clean.
        assert!(resolve(b"/a/b/%zz", &mut out).is_err());
        resolve(b"/", &mut out).unwrap();
        assert_eq!(out, b"");
    }

    /// What `resolve` then `decoded_url` make of `raw`, if it resolves.
    fn long_way(raw: &[u8]) -> Option<String> {
        let mut rel = Vec::new();
        let r = resolve(raw, &mut rel).ok()?;
        let mut url = String::new();
        decoded_url(&rel, r.trailing_slash, &mut url);
        Some(url)
    }

    #[test]
    fn normal_paths_are_their_own_url() {
        for raw in
            ["/", "/plaintext", "/a/", "/a/b.c", "/text..txt", "/...", "/.git/x", "/a\\..\\b", "/caf\u{e9}"]
        {
            assert_eq!(normal(raw.as_bytes()), Some(raw), "{raw:?}");
            assert_eq!(long_way(raw.as_bytes()).as_deref(), Some(raw), "{raw:?}");
        }
        // Everything the resolver would change, and what it refuses.
        for raw in [
            &b""[..],
            b"a",
            b"//",
            b"//a",
            b"/a//b",
            b"/.",
            b"/./",
            b"/a/.",
            b"/..",
            b"/a/../b",
            b"/%41",
            b"/a\0",
            b"/\xff",
        ] {
            assert_eq!(normal(raw), None, "{:?}", String::from_utf8_lossy(raw));
        }
        for &(input, _) in TABLE {
            if let Some(url) = normal(input.as_bytes()) {
                assert_eq!(long_way(input.as_bytes()).as_deref(), Some(url), "{input:?}");
            }
        }
    }

    #[test]
    fn split_target_table() {
        type Split = Option<(&'static str, Option<&'static str>)>;
        let table: &[(&str, Split)] = &[
            ("/", Some(("/", None))),
            ("/p", Some(("/p", None))),
            ("/p?q", Some(("/p", Some("q")))),
            ("/p?", Some(("/p", Some("")))),
            ("/p?q#f", Some(("/p", Some("q")))),
            ("/p#f?notq", Some(("/p", None))),
            ("/p?a/b?c", Some(("/p", Some("a/b?c")))),
            ("/%2e%2e?x", Some(("/%2e%2e", Some("x")))),
            ("//x", Some(("//x", None))),
            ("http://host/p?q", Some(("/p", Some("q")))),
            ("http://host:8080/p", Some(("/p", None))),
            ("HTTP://Host/p", Some(("/p", None))),
            ("HTTP://example.com:8080/a%20b?x=1#frag", Some(("/a%20b", Some("x=1")))),
            ("hTtPs://host/a/b#f", Some(("/a/b", None))),
            ("http://host", Some(("/", None))),
            ("http://host?q", Some(("/", Some("q")))),
            ("http://host#f", Some(("/", None))),
            ("http://user@host/p", Some(("/p", None))),
            ("", None),
            ("*", None),
            ("p", None),
            ("host:80", None),
            ("http:/p", None),
            ("http:", None),
            ("ftp://host/p", None),
            ("http:///p", None),
            ("http://", None),
            ("https://?q", None),
            ("httpx://host/p", None),
        ];
        for &(input, want) in table {
            let got = split_target(input.as_bytes()).ok().map(|t| {
                (
                    String::from_utf8(t.raw_path.to_vec()).unwrap(),
                    t.query.map(|q| String::from_utf8(q.to_vec()).unwrap()),
                )
            });
            let want = want.map(|(p, q)| (p.to_string(), q.map(str::to_string)));
            assert_eq!(got, want, "{input:?}");
        }
    }

    #[test]
    fn errors_display() {
        assert_eq!(PathError::BadRequest("empty target").to_string(), "bad request target: empty target");
        assert!(!PathError::Escapes.to_string().is_empty());
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Bytes biased toward the ones that matter to the resolver.
        fn path_bytes() -> impl Strategy<Value = Vec<u8>> {
            let interesting = prop_oneof![
                Just(b"/".to_vec()),
                Just(b".".to_vec()),
                Just(b"..".to_vec()),
                Just(b"%2e".to_vec()),
                Just(b"%2E".to_vec()),
                Just(b"%2f".to_vec()),
                Just(b"%25".to_vec()),
                Just(b"%00".to_vec()),
                Just(b"%".to_vec()),
                Just(b"a".to_vec()),
                Just(b"\\".to_vec()),
                any::<u8>().prop_map(|b| vec![b]),
            ];
            proptest::collection::vec(interesting, 0..24).prop_map(|parts| parts.concat())
        }

        fn check(raw: &[u8]) {
            let mut out = Vec::new();
            if resolve(raw, &mut out).is_ok() {
                assert!(!out.starts_with(b"/"), "{out:?}");
                assert!(!out.ends_with(b"/"), "{out:?}");
                assert!(!out.windows(2).any(|w| w == b"//"), "{out:?}");
                assert!(!out.contains(&0), "{out:?}");
                for seg in out.split(|&b| b == b'/') {
                    assert!(seg != b"." && seg != b"..", "{out:?}");
                }
            }
        }

        proptest! {
            #[test]
            fn resolve_output_is_safe(raw in path_bytes()) {
                check(&raw);
                let mut slashed = b"/".to_vec();
                slashed.extend_from_slice(&raw);
                check(&slashed);
            }

            #[test]
            fn a_normal_path_is_what_resolving_makes_of_it(raw in path_bytes()) {
                let mut slashed = b"/".to_vec();
                slashed.extend_from_slice(&raw);
                for raw in [&raw, &slashed] {
                    if let Some(url) = normal(raw) {
                        let long = super::long_way(raw);
                        prop_assert_eq!(long.as_deref(), Some(url));
                    }
                }
            }

            #[test]
            fn resolve_never_panics_on_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
                check(&raw);
            }

            #[test]
            fn split_target_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..64)) {
                if let Result::Ok(t) = split_target(&raw) {
                    prop_assert!(t.raw_path.starts_with(b"/"));
                    prop_assert_eq!(t.normal, normal(t.raw_path));
                }
            }

            /// The normal path found while splitting is what `normal` makes
            /// of the path split off.
            #[test]
            fn split_target_finds_the_normal_path(raw in path_bytes(), query in path_bytes()) {
                let mut target = b"/".to_vec();
                target.extend_from_slice(&raw);
                for with_query in [false, true] {
                    if with_query {
                        target.push(b'?');
                        target.extend_from_slice(&query);
                    }
                    let t = split_target(&target).unwrap();
                    prop_assert_eq!(t.normal, normal(t.raw_path));
                }
            }
        }
    }
}
