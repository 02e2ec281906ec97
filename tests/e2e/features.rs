//! The HTTP features of the static path (issue 6), against the real binary:
//! validators and conditional requests, byte ranges (also past 4 GiB),
//! precompressed files, directory listings, `Cache-Control`, and curl as a
//! real client of all of them.
//!
//! Most tests serve a temporary root whose files get a fixed modification
//! time, so that validators and dates are known in advance.

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::*;

/// The fixed modification time of the temporary files:
/// Tue, 14 Nov 2023 22:13:20 GMT, `6553f100` in hex.
const T0: u64 = 1_700_000_000;

/// The 26-byte file most tests ask for: byte ranges are easy to read off it.
const ABC: &[u8] = b"abcdefghijklmnopqrstuvwxyz";

/// The open-file cache trusts a lookup for one second from when its loop
/// made it, on the monotonic clock this test sleeps on too; the lookup came
/// before the response the test read. So a file modified after that
/// response shows once this has passed since the change, and not
/// observably sooner: nothing the server sends tells when the window ends.
const CACHE_SETTLE: Duration = Duration::from_secs(1);

/// Give up on a curl run after this long, so that a hung server fails the
/// test instead of hanging it.
const CURL_MAX_SECS: &str = "10";

/// A temporary root holding `abc.txt` (modified at [`T0`]); removed when the
/// returned guard drops.
fn site(tag: &str) -> (PathBuf, Cleanup) {
    let (dir, clean) = scratch_dir(tag);
    put(&dir.join("abc.txt"), ABC, T0);
    (dir, clean)
}

/// Write `data` to `path` and set its modification time to `mtime` seconds.
fn put(path: &Path, data: &[u8], mtime: u64) {
    write_file(path, data);
    set_mtime(path, mtime);
}

fn set_mtime(path: &Path, secs: u64) {
    File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(at(secs)))
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// An IMF-fixdate for Unix seconds.
fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(at(secs))
}

/// Unix seconds of an HTTP-date sent by the server (panics if unparsable).
fn date_secs(value: &str) -> u64 {
    let t =
        httpdate::parse_http_date(value).unwrap_or_else(|e| panic!("unparsable HTTP-date {value:?}: {e}"));
    secs_of(t)
}

fn secs_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A file's modification time (whole seconds) and length.
fn stat(path: &Path) -> (u64, u64) {
    let meta = fs::metadata(path).unwrap_or_else(|e| panic!("stat {}: {e}", path.display()));
    let mtime = meta.modified().map(secs_of).unwrap_or(0);
    (mtime, meta.len())
}

/// The ETag the server should give a file: `"<mtime hex>-<size hex>"`.
fn etag_of(path: &Path) -> String {
    let (mtime, len) = stat(path);
    format!("\"{mtime:x}-{len:x}\"")
}

/// One request on a connection of its own (`Connection: close` is added).
/// The body is everything after the head, so that a 304 or a HEAD response
/// that wrongly carries bytes shows them; a 200 or 206 body must match its
/// Content-Length.
fn send(addr: SocketAddr, method: &str, path: &str, extra: &[&str]) -> Response {
    let mut headers = extra.to_vec();
    headers.push("Connection: close");
    let bytes = raw(addr, &request(method, path, &headers));
    let (mut r, head_len) = parse_head(&bytes).unwrap_or_else(|| {
        panic!("no response head to {method} {path} {extra:?}: {:?}", String::from_utf8_lossy(&bytes))
    });
    r.body = bytes[head_len..].to_vec();
    if method != "HEAD" && r.status != 304 {
        assert_eq!(
            r.content_length(),
            Some(r.body.len() as u64),
            "{method} {path} {extra:?}: Content-Length does not match the body ({r:?})"
        );
    }
    r
}

/// GET `path` with extra header lines.
fn get_with(addr: SocketAddr, path: &str, extra: &[&str]) -> Response {
    send(addr, "GET", path, extra)
}

/// A 304 as RFC 9110 section 15.4.5 wants it: validators and Date, no body.
fn assert_not_modified(r: &Response, etag: &str, what: &str) {
    assert_eq!(r.status, 304, "{what}: {r:?}");
    assert_eq!(r.header("etag"), Some(etag), "{what}: ETag on the 304");
    assert!(r.header("last-modified").is_some_and(is_imf_fixdate), "{what}: Last-Modified on the 304: {r:?}");
    assert!(r.header("date").is_some_and(is_imf_fixdate), "{what}: Date on the 304: {r:?}");
    assert!(r.body.is_empty(), "{what}: a 304 has no body, got {:?}", r.text());
}

// Validators ------------------------------------------------------------------

#[test]
fn every_200_carries_consistent_validators() {
    // A fixture, with whatever time the checkout gave it.
    let s = Oserver::start(&[]);
    let file = repo_root().join("httptest/test.html");
    let (mtime, _) = stat(&file);
    let mut seen = Vec::new();
    for method in ["GET", "GET", "HEAD"] {
        let r = send(s.addr(), method, "/httptest/test.html", &[]);
        assert_eq!(r.status, 200, "{method}: {r:?}");
        let etag = r.header("etag").unwrap_or_else(|| panic!("{method}: no ETag"));
        assert_eq!(etag, etag_of(&file), "{method}: ETag format");
        assert!(!etag.starts_with("W/"), "the ETag is strong: {etag}");
        let lm = r.header("last-modified").expect("Last-Modified");
        assert!(is_imf_fixdate(lm), "Last-Modified is an IMF-fixdate: {lm:?}");
        assert_eq!(date_secs(lm), mtime, "Last-Modified is the file's mtime");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{method}");
        seen.push((etag.to_string(), lm.to_string()));
    }
    assert_eq!(distinct(&seen), 1, "validators change between requests: {seen:?}");

    // A file with a known time and size: the exact values.
    let (root, _clean) = site("validators");
    let s = Oserver::start_in(&root, &[]);
    let r = get(s.addr(), "/abc.txt");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("etag"), Some("\"6553f100-1a\""));
    assert_eq!(r.header("last-modified"), Some("Tue, 14 Nov 2023 22:13:20 GMT"));
    assert_eq!(r.body, ABC);
}

#[test]
fn if_none_match_that_matches_answers_304() {
    let (root, _clean) = site("inm");
    let s = Oserver::start_in(&root, &[]);
    let etag = etag_of(&root.join("abc.txt"));
    let cases: &[(String, u16)] = &[
        (etag.clone(), 304),
        (format!("\"nope\", {etag}"), 304),
        (format!("\"a\",\"b\" ,{etag} , \"c\""), 304),
        ("*".to_string(), 304),
        // Weak comparison: the W/ form of our strong tag matches.
        (format!("W/{etag}"), 304),
        ("\"6553f100-1b\"".to_string(), 200),
        ("\"nope\", W/\"other\"".to_string(), 200),
    ];
    for (value, want) in cases {
        let header = format!("If-None-Match: {value}");
        for method in ["GET", "HEAD"] {
            let r = send(s.addr(), method, "/abc.txt", &[&header]);
            let what = format!("{method} with {header}");
            if *want == 304 {
                assert_not_modified(&r, &etag, &what);
                if let Some(len) = r.content_length() {
                    assert_eq!(len, ABC.len() as u64, "{what}: a 304's Content-Length");
                }
            } else {
                assert_eq!(r.status, 200, "{what}: {r:?}");
                if method == "GET" {
                    assert_eq!(r.body, ABC, "{what}");
                }
            }
        }
    }
}

#[test]
fn if_modified_since_answers_304_when_not_newer() {
    let (root, _clean) = site("ims");
    let s = Oserver::start_in(&root, &[]);
    let etag = etag_of(&root.join("abc.txt"));
    let equal = format!("If-Modified-Since: {}", http_date(T0));
    let later = format!("If-Modified-Since: {}", http_date(T0 + 3600));
    let earlier = format!("If-Modified-Since: {}", http_date(T0 - 1));
    let no_match = "If-None-Match: \"nope\"".to_string();
    let matching = format!("If-None-Match: {etag}");
    let cases: &[(&[&str], u16)] = &[
        (&[&equal], 304),
        (&[&later], 304),
        (&[&earlier], 200),
        // The obsolete forms a recipient must still accept (RFC 9110 5.6.7).
        (&["If-Modified-Since: Tuesday, 14-Nov-23 22:13:20 GMT"], 304),
        (&["If-Modified-Since: Tue Nov 14 22:13:20 2023"], 304),
        // An unparsable date is ignored.
        (&["If-Modified-Since: yesterday"], 200),
        (&["If-Modified-Since: Tue, 99 Nov 2023 22:13:20 GMT"], 200),
        // If-None-Match, when present, decides alone.
        (&[&no_match, &later], 200),
        (&[&matching, &earlier], 304),
    ];
    for (headers, want) in cases {
        let r = get_with(s.addr(), "/abc.txt", headers);
        let what = format!("{headers:?}");
        if *want == 304 {
            assert_not_modified(&r, &etag, &what);
        } else {
            assert_eq!(r.status, 200, "{what}: {r:?}");
            assert_eq!(r.body, ABC, "{what}");
        }
    }
}

#[test]
fn a_modified_file_gets_new_validators() {
    let (root, _clean) = site("modified");
    let path = root.join("abc.txt");
    let s = Oserver::start_in(&root, &[]);
    let old = get(s.addr(), "/abc.txt");
    let old_etag = old.header("etag").expect("ETag").to_string();
    let old_lm = old.header("last-modified").expect("Last-Modified").to_string();

    put(&path, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ!", T0 + 10);
    thread::sleep(CACHE_SETTLE);

    let inm = format!("If-None-Match: {old_etag}");
    let r = get_with(s.addr(), "/abc.txt", &[&inm]);
    assert_eq!(r.status, 200, "the old ETag no longer matches: {r:?}");
    assert_eq!(r.body, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ!");
    assert_eq!(r.header("etag"), Some(etag_of(&path).as_str()));
    assert_eq!(r.header("etag"), Some("\"6553f10a-1b\""));
    let ims = format!("If-Modified-Since: {old_lm}");
    let r = get_with(s.addr(), "/abc.txt", &[&ims]);
    assert_eq!(r.status, 200, "the file is newer than the old date: {r:?}");
    assert_eq!(r.header("last-modified").map(date_secs), Some(T0 + 10), "Last-Modified follows the file");
}

#[test]
fn bodiless_answers_keep_a_pipelined_connection_in_step() {
    // A 304 carries the file's Content-Length and HEAD the 206's, but neither
    // carries a body: a byte too many would be read as the next response.
    let (root, _clean) = site("pipeline");
    let s = Oserver::start_in(&root, &[]);
    let inm = format!("If-None-Match: {}", etag_of(&root.join("abc.txt")));
    let mut reqs = request("GET", "/abc.txt", &[&inm]);
    reqs.extend(request("HEAD", "/abc.txt", &["Range: bytes=0-1"]));
    reqs.extend(request("GET", "/abc.txt", &["Range: bytes=30-"]));
    reqs.extend(request("GET", "/abc.txt", &["Range: bytes=1-2"]));
    reqs.extend(request("GET", "/abc.txt", &["Connection: close"]));
    let mut c = Client::connect(s.addr());
    c.send(&reqs);
    assert_eq!(c.response(true).status, 304);
    assert_eq!(c.response(true).status, 206);
    let r = c.response(false);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */26"));
    let r = c.response(false);
    assert_eq!((r.status, r.body.as_slice()), (206, &b"bc"[..]));
    let r = c.response(false);
    assert_eq!((r.status, r.body.as_slice()), (200, ABC));
    let (rest, end) = c.finish(Duration::from_secs(5));
    assert!(rest.is_empty(), "stray bytes after the last response: {rest:?}");
    assert_eq!(end, End::Eof);
}

// Ranges ----------------------------------------------------------------------

#[test]
fn byte_ranges() {
    let (root, _clean) = site("ranges");
    let s = Oserver::start_in(&root, &[]);
    // (Range value, status, Content-Range, body)
    let cases: &[(&str, u16, Option<&str>, &[u8])] = &[
        ("bytes=0-4", 206, Some("bytes 0-4/26"), b"abcde"),
        ("bytes=5-", 206, Some("bytes 5-25/26"), &ABC[5..]),
        ("bytes=-3", 206, Some("bytes 23-25/26"), b"xyz"),
        ("bytes=25-25", 206, Some("bytes 25-25/26"), b"z"),
        // The end is clipped to the file.
        ("bytes=20-100", 206, Some("bytes 20-25/26"), b"uvwxyz"),
        ("bytes=-100", 206, Some("bytes 0-25/26"), ABC),
        // Unsatisfiable.
        ("bytes=26-", 416, Some("bytes */26"), b""),
        ("bytes=999999999-", 416, Some("bytes */26"), b""),
        // Malformed: ignored.
        ("bytes=x-y", 200, None, ABC),
        ("items=0-1", 200, None, ABC),
        ("bytes=5-1", 200, None, ABC),
        ("bytes 0-4", 200, None, ABC),
        // Several ranges: the whole file (our documented choice).
        ("bytes=0-1,3-4", 200, None, ABC),
        ("bytes=0-0,-1", 200, None, ABC),
    ];
    for &(range, status, content_range, body) in cases {
        let header = format!("Range: {range}");
        let r = get_with(s.addr(), "/abc.txt", &[&header]);
        assert_eq!(r.status, status, "{header}: {r:?}");
        assert_eq!(r.header("content-range"), content_range, "{header}");
        if status != 416 {
            assert_eq!(r.body, body, "{header}");
            assert_eq!(r.header("content-type"), Some("text/plain"), "{header}");
            assert_eq!(r.header("accept-ranges"), Some("bytes"), "{header}");
            assert!(r.header("etag").is_some(), "{header}: validators on {status}");
        }
    }
}

#[test]
fn byte_ranges_of_a_file_sent_from_disk() {
    // Big enough to be sent with sendfile rather than from the small-file
    // memory copy, so the offsets go through that path too.
    const LEN: usize = 300_000;
    let data: Vec<u8> = (0..LEN).map(|i| (i * 7 % 251) as u8).collect();
    let (dir, _clean) = scratch_dir("diskranges");
    put(&dir.join("data.bin"), &data, T0);
    let s = Oserver::start_in(&dir, &[]);
    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-9", 0, 10),
        ("bytes=150000-150099", 150_000, 150_100),
        ("bytes=299990-", 299_990, LEN),
        ("bytes=-5", LEN - 5, LEN),
        ("bytes=1-", 1, LEN),
    ];
    for &(range, from, to) in cases {
        let header = format!("Range: {range}");
        let r = get_with(s.addr(), "/data.bin", &[&header]);
        assert_eq!(r.status, 206, "{header}: {r:?}");
        let want = format!("bytes {from}-{}/{LEN}", to - 1);
        assert_eq!(r.header("content-range"), Some(want.as_str()), "{header}");
        assert!(r.body == data[from..to], "{header}: wrong bytes");
    }
}

#[test]
fn head_with_a_range_has_the_206_head_and_no_body() {
    let (root, _clean) = site("headrange");
    let s = Oserver::start_in(&root, &[]);
    let r = send(s.addr(), "HEAD", "/abc.txt", &["Range: bytes=2-8"]);
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.header("content-range"), Some("bytes 2-8/26"));
    assert_eq!(r.content_length(), Some(7));
    assert!(r.body.is_empty(), "HEAD sent a body: {:?}", r.text());
}

#[test]
fn if_range_decides_whether_the_range_applies() {
    let (root, _clean) = site("ifrange");
    let s = Oserver::start_in(&root, &[]);
    let etag = etag_of(&root.join("abc.txt"));
    let cases: &[(String, u16)] = &[
        (etag.clone(), 206),
        ("\"6553f0ff-1a\"".to_string(), 200),
        // A weak tag never matches for If-Range.
        (format!("W/{etag}"), 200),
        (http_date(T0), 206),
        (http_date(T0 - 60), 200),
        (http_date(T0 + 60), 200),
    ];
    for (value, want) in cases {
        let if_range = format!("If-Range: {value}");
        let r = get_with(s.addr(), "/abc.txt", &["Range: bytes=0-4", &if_range]);
        assert_eq!(r.status, *want, "{if_range}: {r:?}");
        if *want == 206 {
            assert_eq!(r.body, b"abcde", "{if_range}");
            assert_eq!(r.header("content-range"), Some("bytes 0-4/26"));
        } else {
            assert_eq!(r.body, ABC, "{if_range}: the whole file");
            assert_eq!(r.header("content-range"), None, "{if_range}");
        }
    }
}

#[test]
fn ranges_past_4_gib() {
    const LEN: u64 = 5 << 30;
    const END_MARK: &[u8] = b"the last sixteen";
    const FOUR_MARK: &[u8] = b"past-4GiB";
    let (dir, _clean) = scratch_dir("huge");
    let path = dir.join("huge.bin");
    // FOUR_MARK just past 4 GiB: a length or offset cut to 32 bits would
    // read the zeros at offset 3 instead.
    sparse_file(&path, LEN, &[(LEN - END_MARK.len() as u64, END_MARK), ((4 << 30) + 3, FOUR_MARK)]);
    let s = Oserver::start_in(&dir, &[]);

    let r = get_with(s.addr(), "/huge.bin", &["Range: bytes=-16"]);
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.header("content-range"), Some("bytes 5368709104-5368709119/5368709120"));
    assert_eq!(r.body, END_MARK);

    let r = get_with(s.addr(), "/huge.bin", &["Range: bytes=5368709110-"]);
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.header("content-range"), Some("bytes 5368709110-5368709119/5368709120"));
    assert_eq!(r.body, &END_MARK[6..]);

    let r = get_with(s.addr(), "/huge.bin", &["Range: bytes=4294967299-4294967307"]);
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.header("content-range"), Some("bytes 4294967299-4294967307/5368709120"));
    assert_eq!(r.body, FOUR_MARK);

    let r = get_with(s.addr(), "/huge.bin", &["Range: bytes=5368709120-"]);
    assert_eq!(r.status, 416, "{r:?}");
    assert_eq!(r.header("content-range"), Some("bytes */5368709120"));

    let r = send(s.addr(), "HEAD", "/huge.bin", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.content_length(), Some(LEN));
    assert_eq!(r.header("etag"), Some(etag_of(&path).as_str()));
}

// Precompressed files ---------------------------------------------------------

const PLAIN_JS: &[u8] = b"console.log('the plain file');\n";
const GZ_JS: &[u8] = b"pretend gzip bytes of a.js";
const BR_JS: &[u8] = b"pretend brotli";
const PLAIN_CSS: &[u8] = b"body { color: black }\n";
const GZ_CSS: &[u8] = b"pretend gzip bytes of b.css";

/// A root with `a.js` beside `a.js.gz` and `a.js.br`, and `b.css` beside only
/// `b.css.gz`; every file with distinct contents and sizes. The server does
/// not look inside the compressed files, so they need not be real.
fn precompressed_site(tag: &str) -> (PathBuf, Cleanup) {
    let (dir, clean) = scratch_dir(tag);
    put(&dir.join("a.js"), PLAIN_JS, T0);
    put(&dir.join("a.js.gz"), GZ_JS, T0 + 1);
    put(&dir.join("a.js.br"), BR_JS, T0 + 2);
    put(&dir.join("b.css"), PLAIN_CSS, T0);
    put(&dir.join("b.css.gz"), GZ_CSS, T0 + 1);
    (dir, clean)
}

/// A request path and Accept-Encoding, and the Content-Encoding, body and
/// Content-Type expected back.
type Negotiation<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8], &'a str);

#[test]
fn precompressed_variant_follows_accept_encoding() {
    let (root, _clean) = precompressed_site("precomp");
    let s = Oserver::start_in(&root, &["--precompressed"]);
    let js = "application/javascript";
    let css = "text/css";
    let cases: &[Negotiation] = &[
        ("/a.js", Some("gzip, br"), Some("br"), BR_JS, js),
        ("/a.js", Some("br"), Some("br"), BR_JS, js),
        ("/a.js", Some("gzip"), Some("gzip"), GZ_JS, js),
        ("/a.js", Some("br;q=0, gzip"), Some("gzip"), GZ_JS, js),
        ("/a.js", Some("gzip;q=0.5, br;q=0.1"), Some("br"), BR_JS, js),
        ("/a.js", Some("gzip;q=0"), None, PLAIN_JS, js),
        ("/a.js", Some("gzip;q=0, br;q=0"), None, PLAIN_JS, js),
        ("/a.js", Some("identity"), None, PLAIN_JS, js),
        ("/a.js", Some("deflate, zstd"), None, PLAIN_JS, js),
        ("/a.js", None, None, PLAIN_JS, js),
        ("/b.css", Some("br, gzip"), Some("gzip"), GZ_CSS, css),
        ("/b.css", Some("br"), None, PLAIN_CSS, css),
    ];
    for &(path, ae, ce, body, ctype) in cases {
        let header = ae.map(|v| format!("Accept-Encoding: {v}"));
        let extra: Vec<&str> = header.iter().map(String::as_str).collect();
        let r = get_with(s.addr(), path, &extra);
        let what = format!("{path} {header:?}");
        assert_eq!(r.status, 200, "{what}: {r:?}");
        assert_eq!(r.header("content-encoding"), ce, "{what}");
        assert_eq!(r.body, body, "{what}");
        assert_eq!(r.header("content-type"), Some(ctype), "{what}: the original's type");
        let vary = r.headers_all("vary").join(", ").to_ascii_lowercase();
        assert!(vary.contains("accept-encoding"), "{what}: Vary: {vary:?}");
    }
}

#[test]
fn precompressed_variant_has_its_own_validators_and_ranges() {
    let (root, _clean) = precompressed_site("precompval");
    let s = Oserver::start_in(&root, &["--precompressed"]);
    let gz_etag = etag_of(&root.join("b.css.gz"));
    let plain_etag = etag_of(&root.join("b.css"));
    assert_ne!(gz_etag, plain_etag);

    let gz = get_with(s.addr(), "/b.css", &["Accept-Encoding: gzip"]);
    assert_eq!(gz.header("etag"), Some(gz_etag.as_str()), "the .gz's ETag");
    assert_eq!(gz.header("last-modified").map(date_secs), Some(T0 + 1));
    let plain = get(s.addr(), "/b.css");
    assert_eq!(plain.header("etag"), Some(plain_etag.as_str()));

    // A range applies to the bytes sent: the .gz's.
    let r = get_with(s.addr(), "/b.css", &["Accept-Encoding: gzip", "Range: bytes=0-6"]);
    assert_eq!(r.status, 206, "{r:?}");
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.body, &GZ_CSS[..7]);
    assert_eq!(r.header("content-range"), Some(format!("bytes 0-6/{}", GZ_CSS.len()).as_str()));
    let r = get_with(s.addr(), "/b.css", &["Accept-Encoding: gzip", "Range: bytes=-4"]);
    assert_eq!(r.body, &GZ_CSS[GZ_CSS.len() - 4..]);

    // Conditional requests compare with the representation that would be sent.
    let inm = format!("If-None-Match: {gz_etag}");
    let r = get_with(s.addr(), "/b.css", &["Accept-Encoding: gzip", &inm]);
    assert_not_modified(&r, &gz_etag, "the .gz's ETag, gzip accepted");
    let r = get_with(s.addr(), "/b.css", &[&inm]);
    assert_eq!(r.status, 200, "the .gz's ETag does not match the plain file");
    assert_eq!(r.body, PLAIN_CSS);
}

#[test]
fn without_precompressed_the_plain_file_is_sent() {
    let (root, _clean) = precompressed_site("noprecomp");
    let s = Oserver::start_in(&root, &[]);
    for ae in ["gzip", "gzip, br", "br", "*"] {
        let header = format!("Accept-Encoding: {ae}");
        let r = get_with(s.addr(), "/a.js", &[&header]);
        assert_eq!(r.status, 200, "{header}");
        assert_eq!(r.header("content-encoding"), None, "{header}");
        assert_eq!(r.body, PLAIN_JS, "{header}");
        assert_eq!(r.header("etag"), Some(etag_of(&root.join("a.js")).as_str()));
    }
}

// Directory listings ----------------------------------------------------------

/// A root with `list/` (no index.html) holding awkward names, a dotfile and
/// two subdirectories.
fn listing_site(tag: &str) -> (PathBuf, Cleanup) {
    let (dir, clean) = scratch_dir(tag);
    let list = dir.join("list");
    for sub in ["zdir", "adir"] {
        fs::create_dir_all(list.join(sub)).expect("mkdir");
    }
    // 2001-09-09 01:46:40 UTC.
    put(&list.join("a&b<c>.txt"), b"12345", 1_000_000_000);
    put(&list.join("space name.txt"), b"spaced out\n", T0);
    put(&list.join(".hidden"), b"secret\n", T0);
    (dir, clean)
}

/// The `href` values of a page, in order.
fn hrefs(page: &str) -> Vec<String> {
    page.split("href=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_string).collect()
}

#[test]
fn autoindex_lists_a_directory() {
    let (root, _clean) = listing_site("autoindex");
    let s = Oserver::start_in(&root, &["--autoindex"]);
    let r = get(s.addr(), "/list/");
    assert_eq!(r.status, 200, "{r:?}");
    let ctype = r.header("content-type").unwrap_or_default();
    assert!(ctype.starts_with("text/html"), "{ctype:?}");
    let page = r.text();

    assert!(page.contains("a&amp;b&lt;c&gt;.txt"), "escaped name:\n{page}");
    assert!(!page.contains("<c>"), "a raw name reached the HTML:\n{page}");
    assert!(page.contains("href=\"space%20name.txt\""), "{page}");
    assert!(!page.contains(".hidden"), "dotfiles are hidden:\n{page}");
    // Size and time of `a&b<c>.txt`.
    assert!(page.contains("2001-09-09 01:46"), "modification time:\n{page}");
    assert!(page.contains(">5<"), "size:\n{page}");

    // Directories first, then files, each sorted.
    let links: Vec<String> = hrefs(&page).into_iter().filter(|h| h != "../").collect();
    assert_eq!(links.len(), 4, "{links:?}");
    assert_eq!(&links[..2], ["adir/", "zdir/"], "{links:?}");
    let pos = |needle: &str| page.find(needle).unwrap_or_else(|| panic!("{needle:?} not in\n{page}"));
    assert!(pos("adir/") < pos("zdir/"));
    assert!(pos("zdir/") < pos("a&amp;b&lt;c&gt;.txt"));
    assert!(pos("a&amp;b&lt;c&gt;.txt") < pos("space name.txt"));

    // Every link leads where it says.
    let want: &[(&str, u16, &[u8])] =
        &[("a&b<c>.txt", 200, b"12345"), ("space name.txt", 200, b"spaced out\n")];
    for (i, (name, status, body)) in want.iter().enumerate() {
        let href = &links[2 + i];
        let r = get(s.addr(), &format!("/list/{href}"));
        assert_eq!(r.status, *status, "link {href} for {name}");
        assert_eq!(r.body, *body, "link {href} for {name}");
    }
    for dir in ["adir/", "zdir/"] {
        let r = get(s.addr(), &format!("/list/{dir}"));
        assert_eq!(r.status, 200, "an empty subdirectory is listed too");
        assert!(hrefs(&r.text()).contains(&"../".to_string()), "{}", r.text());
    }
}

#[test]
fn autoindex_with_hidden_lists_dotfiles() {
    let (root, _clean) = listing_site("autoindexhidden");
    let s = Oserver::start_in(&root, &["--autoindex", "--hidden"]);
    let r = get(s.addr(), "/list/");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(hrefs(&r.text()).contains(&".hidden".to_string()), "{}", r.text());
}

#[test]
fn a_directory_without_index_is_forbidden_without_autoindex() {
    let (root, _clean) = listing_site("noautoindex");
    let s = Oserver::start_in(&root, &[]);
    let r = get(s.addr(), "/list/");
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r.text().contains("space"), "no listing leaks: {}", r.text());
}

// Cache-Control ---------------------------------------------------------------

#[test]
fn max_age_goes_on_200_206_and_304() {
    let (root, _clean) = site("maxage");
    let s = Oserver::start_in(&root, &["--max-age", "120"]);
    let etag = etag_of(&root.join("abc.txt"));
    let inm = format!("If-None-Match: {etag}");
    let cases: &[(&[&str], u16)] = &[(&[], 200), (&["Range: bytes=1-2"], 206), (&[&inm], 304)];
    for (headers, status) in cases {
        let r = get_with(s.addr(), "/abc.txt", headers);
        assert_eq!(r.status, *status, "{headers:?}");
        assert_eq!(r.header("cache-control"), Some("max-age=120"), "{headers:?}");
    }
    let r = send(s.addr(), "HEAD", "/abc.txt", &[]);
    assert_eq!(r.header("cache-control"), Some("max-age=120"), "HEAD");
    let r = get(s.addr(), "/missing.txt");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("cache-control"), None, "no max-age on a 404");
}

#[test]
fn no_cache_control_without_max_age() {
    let (root, _clean) = site("nomaxage");
    let s = Oserver::start_in(&root, &[]);
    for headers in [&[][..], &["Range: bytes=1-2"][..]] {
        let r = get_with(s.addr(), "/abc.txt", headers);
        assert_eq!(r.header("cache-control"), None, "{headers:?}");
    }
}

// curl as the client ----------------------------------------------------------

/// Run curl (silent, bounded in time) with `args`.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "--max-time", CURL_MAX_SECS])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run curl: {e}"))
}

fn url(s: &Oserver, path: &str) -> String {
    format!("http://{}{path}", s.addr())
}

#[test]
fn curl_time_condition_gets_304() {
    let (root, _clean) = site("curlz");
    let s = Oserver::start_in(&root, &[]);
    let u = url(&s, "/abc.txt");
    let after = http_date(T0 + 60);
    let out = curl(&["-f", "-z", &after, "-w", "%{http_code}", &u]);
    assert!(out.status.success(), "curl failed: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "304", "no body, status 304");

    // A date before the file's: the file comes back.
    let before = http_date(T0 - 60);
    let out = curl(&["-f", "-z", &before, &u]);
    assert!(out.status.success(), "curl failed: {out:?}");
    assert_eq!(out.stdout, ABC);
}

#[test]
fn curl_range_gets_the_bytes() {
    let s = Oserver::start(&[]);
    let large = fs::read(repo_root().join("httptest/large.html")).expect("large.html");
    let u = url(&s, "/httptest/large.html");
    let out = curl(&["-f", "-r", "0-9", &u]);
    assert!(out.status.success(), "curl failed: {out:?}");
    assert_eq!(out.stdout, &large[..10]);
    let out = curl(&["-f", "-r", "999990-", &u]);
    assert!(out.status.success(), "curl failed: {out:?}");
    assert_eq!(out.stdout, &large[999_990..]);
}

#[test]
fn curl_compressed_decodes_a_precompressed_gzip() {
    let (dir, _clean) = scratch_dir("curlgz");
    // Compressible and long enough to tell a gzip stream from the original.
    let original: Vec<u8> =
        (0..2000).flat_map(|i| format!("function f{i}() {{ return {i}; }}\n").into_bytes()).collect();
    let js = dir.join("app.js");
    write_file(&js, &original);
    // Only a .gz: curl offers br too and would fail to decode fake brotli.
    let gz = Command::new("gzip").arg("-k").arg(&js).status().unwrap_or_else(|e| panic!("run gzip: {e}"));
    assert!(gz.success(), "gzip -k failed");
    let gz_len = fs::metadata(dir.join("app.js.gz")).expect(".gz").len();
    assert!(gz_len < original.len() as u64 / 4, "the .gz is real");

    let s = Oserver::start_in(&dir, &["--precompressed"]);
    let out_file = dir.join("downloaded");
    let out_path = out_file.to_str().expect("utf-8 temp path");
    let out = curl(&["-f", "--compressed", "-D", "-", "-o", out_path, &url(&s, "/app.js")]);
    assert!(out.status.success(), "curl failed: {out:?}");
    let headers = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(headers.contains("content-encoding: gzip"), "headers:\n{headers}");
    assert!(headers.contains(&format!("content-length: {gz_len}")), "the .gz's bytes were sent:\n{headers}");
    let got = fs::read(&out_file).expect("curl's output");
    assert!(got == original, "curl decoded something else");
}

#[test]
fn curl_resumes_a_cut_download() {
    let large = fs::read(repo_root().join("httptest/large.html")).expect("large.html");
    let (dir, _clean) = scratch_dir("curlresume");
    let partial = dir.join("large.html.part");
    // What a download cut after 300,000 bytes leaves behind.
    write_file(&partial, &large[..300_000]);

    let s = Oserver::start(&[]);
    let part = partial.to_str().expect("utf-8 temp path");
    let out = curl(&["-f", "-C", "-", "-w", "%{http_code}", "-o", part, &url(&s, "/httptest/large.html")]);
    assert!(out.status.success(), "curl failed: {out:?}");
    // 206: curl asked for the rest and got it (a 200 would make curl fail).
    assert_eq!(String::from_utf8_lossy(&out.stdout), "206");
    let got = fs::read(&partial).expect("the resumed file");
    assert_eq!(got.len(), large.len());
    assert!(got == large, "the resumed file differs from the original");
}
