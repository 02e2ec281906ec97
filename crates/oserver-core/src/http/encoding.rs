//! Accept-Encoding negotiation for precompressed files (RFC 9110 section 12.5.3).
//!
//! With precompressed files enabled, a request for `x.css` may be answered
//! with the bytes of `x.css.br` or `x.css.gz` and a `Content-Encoding`, when the
//! client accepts that coding. [`accepts`] reads the `Accept-Encoding` value;
//! [`preferred`] lists the acceptable codings best first (br, then gzip). The
//! caller tries each sibling file in turn, falls back to the file itself, and
//! sends `Vary: Accept-Encoding` whenever precompression is enabled, whichever
//! file it served.
//!
//! Choices worth knowing:
//!
//! - Coding names are case-insensitive; `x-gzip` counts as `gzip` (RFC 9110
//!   section 8.4.1.3).
//! - A coding is acceptable when its q-value is above 0. An explicit entry
//!   beats `*` in either order; `*` covers the codings not listed, so
//!   `*;q=0` excludes them and a bare `*` admits them.
//! - A q-value that is not valid per RFC 9110 section 12.4.2 (`q=2`, `q=0.5000`,
//!   `q=abc`, `q=`) counts as `q=0`: when the client is unclear, we send the
//!   uncompressed file, which every client can read.
//! - A coding listed more than once is acceptable only if every listing is.
//! - `identity` is irrelevant: the uncompressed file is always available.
//! - An absent `Accept-Encoding` means no coding is used (as nginx does), even
//!   though the RFC would allow any: the caller simply does not call [`accepts`].
//!
//! Nothing here allocates.

/// Which of the codings we have precompressed files for a client accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accepts {
    /// Brotli (`br`, files ending in `.br`).
    pub br: bool,
    /// Gzip (`gzip` or `x-gzip`, files ending in `.gz`).
    pub gzip: bool,
}

/// A content coding served from a precompressed sibling file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding {
    /// Appended to the file name to find the precompressed file (`.br`).
    pub suffix: &'static str,
    /// The `Content-Encoding` value to send with it (`br`).
    pub content_encoding: &'static str,
}

/// Brotli: `x.br`, `Content-Encoding: br`.
pub const BR: Coding = Coding { suffix: ".br", content_encoding: "br" };

/// Gzip: `x.gz`, `Content-Encoding: gzip`.
pub const GZIP: Coding = Coding { suffix: ".gz", content_encoding: "gzip" };

/// Our preference among the codings, best first: brotli files are smaller.
pub const PREFERENCE: [Coding; 2] = [BR, GZIP];

/// The codings `a` accepts, in [`PREFERENCE`] order.
pub fn preferred(a: Accepts) -> impl Iterator<Item = Coding> {
    PREFERENCE.into_iter().filter(move |&c| (c == BR && a.br) || (c == GZIP && a.gzip))
}

/// What one coding's entries in the list said so far.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Seen {
    Unlisted,
    Yes,
    No,
}

impl Seen {
    /// Record one more listing; a refusal sticks.
    fn add(self, acceptable: bool) -> Seen {
        match (self, acceptable) {
            (Seen::No, _) | (_, false) => Seen::No,
            _ => Seen::Yes,
        }
    }

    /// The verdict, with `star` standing in when unlisted.
    fn verdict(self, star: Seen) -> bool {
        match self {
            Seen::Unlisted => star == Seen::Yes,
            s => s == Seen::Yes,
        }
    }
}

/// Parse an `Accept-Encoding` value into the codings we can serve that it
/// accepts. See the module documentation for the rules.
pub fn accepts(accept_encoding: &[u8]) -> Accepts {
    let (mut br, mut gzip, mut star) = (Seen::Unlisted, Seen::Unlisted, Seen::Unlisted);
    for element in accept_encoding.split(|&b| b == b',') {
        let mut parts = element.split(|&b| b == b';');
        let name = parts.next().unwrap_or_default().trim_ascii();
        if name.is_empty() {
            continue;
        }
        let acceptable = parts.fold(true, |ok, param| match q_param(param) {
            Some(q) => ok && q,
            None => ok,
        });
        let slot = if name.eq_ignore_ascii_case(b"br") {
            &mut br
        } else if name.eq_ignore_ascii_case(b"gzip") || name.eq_ignore_ascii_case(b"x-gzip") {
            &mut gzip
        } else if name == b"*" {
            &mut star
        } else {
            continue;
        };
        *slot = slot.add(acceptable);
    }
    Accepts { br: br.verdict(star), gzip: gzip.verdict(star) }
}

/// For a `q=...` parameter, whether the weight is above zero (an invalid
/// weight counts as zero); `None` for any other parameter.
fn q_param(param: &[u8]) -> Option<bool> {
    let param = param.trim_ascii();
    let (name, value) = param.split_at(param.iter().position(|&b| b == b'=')?);
    if !name.trim_ascii().eq_ignore_ascii_case(b"q") {
        return None;
    }
    // `value` starts with the '='.
    let value = value.get(1..).unwrap_or_default().trim_ascii();
    Some(q_positive(value))
}

/// Whether a qvalue (`"0" ["." 0*3DIGIT] / "1" ["." 0*3"0"]`) is valid and
/// above zero.
fn q_positive(v: &[u8]) -> bool {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(dot) => {
            let (int, dot_frac) = v.split_at(dot);
            (int, dot_frac.get(1..).unwrap_or_default())
        }
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match int {
        b"1" => frac.iter().all(|&b| b == b'0'),
        b"0" => frac.iter().any(|&b| b != b'0'),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Accepts = Accepts { br: false, gzip: false };
    const BOTH: Accepts = Accepts { br: true, gzip: true };
    const BR_ONLY: Accepts = Accepts { br: true, gzip: false };
    const GZ_ONLY: Accepts = Accepts { br: false, gzip: true };

    #[test]
    fn accepts_table() {
        let cases: &[(&[u8], Accepts)] = &[
            (b"", NONE),
            (b"identity", NONE),
            (b"deflate", NONE),
            (b"gzip", GZ_ONLY),
            (b"br", BR_ONLY),
            (b"gzip, deflate, br", BOTH),
            (b"gzip, deflate, br, zstd", BOTH),
            (b"GZIP", GZ_ONLY),
            (b"Br", BR_ONLY),
            (b"x-gzip", GZ_ONLY),
            (b"X-GZIP;q=0.5", GZ_ONLY),
            (b"gzip;q=0, br", BR_ONLY),
            (b"gzip ; q=0 , br", BR_ONLY),
            (b"gzip;Q=0, br", BR_ONLY),
            (b"br;q=0.0", NONE),
            (b"br;q=0.000, gzip;q=0.001", GZ_ONLY),
            (b"br;q=0.5", BR_ONLY),
            (b"br;q=1", BR_ONLY),
            (b"br;q=1.", BR_ONLY),
            (b"br;q=1.000", BR_ONLY),
            (b"br;q=0.", NONE),
            (b"br;q = 0.5", BR_ONLY),
            // Invalid q-values count as zero.
            (b"br;q=1.001", NONE),
            (b"br;q=2", NONE),
            (b"br;q=0.5000", NONE),
            (b"br;q=abc", NONE),
            (b"br;q=", NONE),
            (b"br;q=-1", NONE),
            (b"br;q=.5", NONE),
            (b"br;q=0.5x", NONE),
            // Other parameters are ignored.
            (b"br;level=5", BR_ONLY),
            (b"br;foo", BR_ONLY),
            (b"br;;", BR_ONLY),
            // The wildcard.
            (b"*", BOTH),
            (b"*;q=0", NONE),
            (b"*;q=0.1", BOTH),
            (b"*, gzip;q=0", BR_ONLY),
            (b"gzip;q=0, *", BR_ONLY),
            (b"*;q=0, gzip", GZ_ONLY),
            (b"br, *;q=0", BR_ONLY),
            (b"identity;q=1, *;q=0", NONE),
            // Repeats: a refusal sticks.
            (b"gzip, gzip;q=0", NONE),
            (b"gzip;q=0, gzip", NONE),
            (b"gzip, x-gzip;q=0", NONE),
            (b"br, br", BR_ONLY),
            // Odd lists.
            (b" , ,gzip,, ", GZ_ONLY),
            (b"gzipx, bro, gz", NONE),
            (b";q=1", NONE),
            (b"\xff, br", BR_ONLY),
            (b"g zip", NONE),
        ];
        for &(value, want) in cases {
            assert_eq!(accepts(value), want, "{:?}", String::from_utf8_lossy(value));
        }
    }

    #[test]
    fn preference_order() {
        let cases: &[(Accepts, &[Coding])] =
            &[(NONE, &[]), (BR_ONLY, &[BR]), (GZ_ONLY, &[GZIP]), (BOTH, &[BR, GZIP])];
        for &(a, want) in cases {
            assert!(preferred(a).eq(want.iter().copied()), "{a:?}");
        }
        // Our order, not the client's q-values.
        assert!(preferred(accepts(b"gzip, br;q=0.5")).eq([BR, GZIP]));
        assert_eq!(BR.suffix, ".br");
        assert_eq!(GZIP.content_encoding, "gzip");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(value: Vec<u8>) {
            let _ = accepts(&value);
        }

        #[test]
        fn q_values(int in 0u8..3, frac in "[0-9]{0,4}") {
            let q = if frac.is_empty() { format!("{int}") } else { format!("{int}.{frac}") };
            let valid_positive = frac.len() <= 3
                && match int {
                    0 => frac.bytes().any(|b| b != b'0'),
                    1 => frac.bytes().all(|b| b == b'0'),
                    _ => false,
                };
            let got = accepts(format!("br;q={q}").as_bytes()).br;
            proptest::prop_assert_eq!(got, valid_positive, "q={}", q);
        }
    }
}
