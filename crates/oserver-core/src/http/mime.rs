//! Content-Type by file name.
//!
//! The classic web types get exact strings of our own (so an update of the
//! `mime_guess` table cannot change what `.js` or `.html` is served as); every
//! other extension is looked up in `mime_guess`. No `charset` parameter is
//! added: we do not know the encoding of the files we serve.

/// Types we pin ourselves, by lowercase extension.
const FIXED: &[(&[u8], &str)] = &[
    (b"html", "text/html"),
    (b"htm", "text/html"),
    (b"css", "text/css"),
    (b"js", "application/javascript"),
    (b"jpg", "image/jpeg"),
    (b"jpeg", "image/jpeg"),
    (b"png", "image/png"),
    (b"gif", "image/gif"),
    (b"swf", "application/x-shockwave-flash"),
    (b"txt", "text/plain"),
];

/// What a file without a known extension is served as.
const DEFAULT: &str = "application/octet-stream";

/// The Content-Type for a file name (bytes), exact strings for the classic
/// types, `mime_guess` for the rest, `application/octet-stream` when unknown.
///
/// Only the extension of the last path segment counts, case-insensitively.
/// A leading dot does not start an extension (`.bashrc` has none), and
/// neither does a trailing one (`file.`). Nothing is allocated.
pub fn content_type(name: &[u8]) -> &'static str {
    let Some(ext) = extension(name) else {
        return DEFAULT;
    };
    if let Some(&(_, ty)) = FIXED.iter().find(|(e, _)| e.eq_ignore_ascii_case(ext)) {
        return ty;
    }
    // mime_guess compares case-insensitively itself; a non-UTF-8 extension
    // cannot be in its table.
    std::str::from_utf8(ext).ok().and_then(|ext| mime_guess::from_ext(ext).first_raw()).unwrap_or(DEFAULT)
}

/// The extension of the last segment of `name`, if it has a non-empty one
/// that does not start the segment.
fn extension(name: &[u8]) -> Option<&[u8]> {
    let file = match memchr::memrchr(b'/', name) {
        Some(slash) => name.get(slash + 1..)?,
        None => name,
    };
    let dot = memchr::memrchr(b'.', file)?;
    if dot == 0 {
        return None;
    }
    file.get(dot + 1..).filter(|ext| !ext.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_table() {
        let table: &[(&[u8], &str)] = &[
            // The fixed types, in any case.
            (b"index.html", "text/html"),
            (b"INDEX.HTML", "text/html"),
            (b"a.htm", "text/html"),
            (b"a.Htm", "text/html"),
            (b"style.css", "text/css"),
            (b"app.js", "application/javascript"),
            (b"app.JS", "application/javascript"),
            (b"p.jpg", "image/jpeg"),
            (b"p.jpeg", "image/jpeg"),
            (b"p.JPEG", "image/jpeg"),
            (b"p.png", "image/png"),
            (b"p.gif", "image/gif"),
            (b"m.swf", "application/x-shockwave-flash"),
            (b"r.txt", "text/plain"),
            (b"r.TXT", "text/plain"),
            // From mime_guess.
            (b"doc.pdf", "application/pdf"),
            (b"doc.PDF", "application/pdf"),
            (b"a.svg", "image/svg+xml"),
            (b"a.json", "application/json"),
            (b"a.tar.gz", "application/gzip"),
            (b"a.wasm", "application/wasm"),
            // Only the last segment's extension counts.
            (b"dir.html/file", DEFAULT),
            (b"dir.d/page.html", "text/html"),
            (b"a/b/c.css", "text/css"),
            (b"dir/Index.HTML", "text/html"),
            (b"page.html.bak", DEFAULT),
            // No extension, unknown, odd.
            (b"", DEFAULT),
            (b"README", DEFAULT),
            (b"file.", DEFAULT),
            (b".html", DEFAULT),
            (b"dir/.css", DEFAULT),
            (b"..html", "text/html"),
            (b"a.nosuchext", DEFAULT),
            (b"a.\xff\xfe", DEFAULT),
            (b"a.html\xff", DEFAULT),
            (b"a/", DEFAULT),
        ];
        for &(name, want) in table {
            assert_eq!(content_type(name), want, "{:?}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn fixed_types_have_no_parameters() {
        for (_, ty) in FIXED {
            assert!(!ty.contains(';'), "{ty}");
        }
    }
}
