//! HTML directory listings (`--autoindex`).
//!
//! [`render`] reads a directory through its open descriptor, so the listing
//! describes exactly the directory the path lookup opened (no second lookup by
//! name that a concurrent rename could redirect).
//!
//! The page is a small, complete HTML document in UTF-8: a title and heading
//! `Index of <path>`, then a table with a `../` row (except at `/`), the
//! subdirectories, then everything else, each group sorted by name in byte
//! order. Each row has the name as a link, the modification time as
//! `YYYY-MM-DD HH:MM` in UTC, and the size in bytes (`-` for directories).
//!
//! Choices worth knowing:
//!
//! - Names starting with `.` are left out unless `show_hidden`.
//! - Entries are examined with `AT_SYMLINK_NOFOLLOW`: a symbolic link is listed
//!   as a file with the link's own size and time, whatever it points to, so the
//!   listing never reveals anything about a target outside the root.
//! - An entry that disappears between reading the directory and examining it
//!   is left out.
//! - Names that are not valid UTF-8 are shown with U+FFFD in the text, but
//!   their links carry the exact bytes, percent-encoded.
//! - Links are relative (`name`, `sub/`, `../`), so the page must be served at a
//!   URL ending in `/`; the caller redirects `/dir` to `/dir/` first.

use std::ffi::CStr;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::ptr::NonNull;

/// One directory entry, as listed.
struct Entry {
    name: Vec<u8>,
    dir: bool,
    size: u64,
    /// Seconds since the Unix epoch; negative before 1970.
    mtime: i64,
}

/// Render the listing of `dir`, served at the decoded request path `url_path`
/// (which should end in `/`), as a complete HTML page.
///
/// # Errors
///
/// Any error from reopening, reading or examining the directory, except an
/// entry vanishing while it is being listed.
pub fn render(dir: &File, url_path: &[u8], show_hidden: bool) -> io::Result<Vec<u8>> {
    let mut entries = read_entries(dir, show_hidden)?;
    // Directories first, then by name.
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));

    let title = escape_html(&String::from_utf8_lossy(url_path));
    // Room for the page around the rows, plus a typical row per entry.
    let mut page = String::with_capacity(512 + 160 * entries.len());
    page.push_str("<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(page, "<title>Index of {title}</title>");
    page.push_str("<style>td,th{padding:0 1em 0 0;text-align:left}td+td+td{text-align:right}</style>\n");
    page.push_str("</head>\n<body>\n");
    let _ = writeln!(page, "<h1>Index of {title}</h1>");
    page.push_str("<table>\n<tr><th>Name</th><th>Last modified</th><th>Size</th></tr>\n");
    if !(url_path.is_empty() || url_path == b"/") {
        page.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td>-</td></tr>\n");
    }
    for e in &entries {
        let slash = if e.dir { "/" } else { "" };
        let _ = write!(
            page,
            "<tr><td><a href=\"{href}{slash}\">{text}{slash}</a></td><td>{time}</td><td>",
            href = percent_encode(&e.name),
            text = escape_html(&String::from_utf8_lossy(&e.name)),
            time = civil_minute(e.mtime),
        );
        if e.dir {
            page.push('-');
        } else {
            let _ = write!(page, "{}", e.size);
        }
        page.push_str("</td></tr>\n");
    }
    page.push_str("</table>\n</body>\n</html>\n");
    Ok(page.into_bytes())
}

/// An open directory stream, closed on drop.
struct DirStream(NonNull<libc::DIR>);

impl Drop for DirStream {
    fn drop(&mut self) {
        // SAFETY: the pointer came from a successful fdopendir and is closed
        // only here, once.
        unsafe { libc::closedir(self.0.as_ptr()) };
    }
}

/// Reset errno, so that a NULL from readdir can tell the end from an error.
fn clear_errno() {
    // SAFETY: each of these returns the calling thread's errno location.
    unsafe {
        #[cfg(any(target_os = "linux", target_os = "emscripten", target_os = "redox"))]
        let p = libc::__errno_location();
        #[cfg(any(target_os = "android", target_os = "netbsd", target_os = "openbsd"))]
        let p = libc::__errno();
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd", target_os = "dragonfly"))]
        let p = libc::__error();
        *p = 0;
    }
}

/// Read the entries of `dir` (without `.` and `..`, and without dotfiles unless
/// `show_hidden`).
fn read_entries(dir: &File, show_hidden: bool) -> io::Result<Vec<Entry>> {
    // A fresh descriptor rather than a dup: a dup would share the file offset
    // with `dir`, and readdir would move it under the caller.
    // SAFETY: plain syscall on a descriptor we borrow and a C string literal.
    let fd = unsafe {
        libc::openat(dir.as_raw_fd(), c".".as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is an open directory descriptor that we own; on success the
    // stream owns it.
    let Some(stream) = NonNull::new(unsafe { libc::fdopendir(fd) }) else {
        let err = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so `fd` is still ours to close.
        unsafe { libc::close(fd) };
        return Err(err);
    };
    let stream = DirStream(stream);
    // SAFETY: the stream is open.
    let dfd = unsafe { libc::dirfd(stream.0.as_ptr()) };

    let mut entries = Vec::new();
    loop {
        clear_errno();
        // SAFETY: the stream is open; the entry it returns stays valid until
        // the next readdir on this stream, and we are done with it by then.
        let ent = unsafe { libc::readdir(stream.0.as_ptr()) };
        if ent.is_null() {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(0) {
                break;
            }
            return Err(err);
        }
        // SAFETY: `ent` is non-null and d_name is NUL-terminated.
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." || (!show_hidden && bytes.starts_with(b".")) {
            continue;
        }
        // SAFETY: an all-zero stat is a valid value for fstatat to overwrite.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `dfd` is open, `name` is NUL-terminated, `st` is writable.
        let rc = unsafe { libc::fstatat(dfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::NotFound {
                continue;
            }
            return Err(err);
        }
        entries.push(Entry {
            name: bytes.to_vec(),
            dir: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
            // The field types differ between platforms; both are integers.
            #[allow(clippy::unnecessary_cast)]
            size: u64::try_from(st.st_size as i64).unwrap_or(0),
            #[allow(clippy::unnecessary_cast)]
            mtime: st.st_mtime as i64,
        });
    }
    Ok(entries)
}

/// Escape text for HTML content and attribute values.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a path segment: everything but the unreserved characters
/// of RFC 3986 (letters, digits, `-._~`). Encoding `:` and `/` too keeps a
/// name from being read as a scheme or as several segments.
fn percent_encode(name: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len());
    for &b in name {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM` in UTC for seconds since the Unix epoch.
fn civil_minute(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", of_day / 3600, of_day % 3600 / 60)
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by Howard
/// Hinnant's `civil_from_days` (eras of 400 years, years starting in March so
/// that the leap day comes last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // Shift the epoch to 0000-03-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are in small ranges, per the comments above.
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// A temporary directory removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
            let path = std::env::temp_dir().join(format!(
                "oserver-autoindex-{}-{}-{nanos}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// 2024-02-29 13:45:59 UTC.
    const LEAP: u64 = 1_709_214_359;

    fn touch(path: &Path, body: &[u8]) {
        std::fs::write(path, body).unwrap();
        set_mtime(path);
    }

    fn set_mtime(path: &Path) {
        File::open(path).unwrap().set_modified(UNIX_EPOCH + Duration::from_secs(LEAP)).unwrap();
    }

    /// A directory with the awkward names from the brief.
    fn fixture() -> TempDir {
        let t = TempDir::new();
        touch(&t.0.join("a&b<c>.txt"), b"12345");
        touch(&t.0.join("space name"), b"");
        touch(&t.0.join(".hidden"), b"h");
        touch(&t.0.join("it's \"q\""), b"12");
        touch(&t.0.join("b.txt"), &[0; 1234]);
        std::fs::create_dir(t.0.join("sub")).unwrap();
        std::fs::create_dir(t.0.join("Zed")).unwrap();
        std::fs::create_dir(t.0.join(".git")).unwrap();
        std::os::unix::fs::symlink("sub", t.0.join("link")).unwrap();
        for d in ["sub", "Zed", ".git"] {
            set_mtime(&t.0.join(d));
        }
        t
    }

    fn page(t: &TempDir, url: &[u8], hidden: bool) -> String {
        let dir = File::open(&t.0).unwrap();
        String::from_utf8(render(&dir, url, hidden).unwrap()).unwrap()
    }

    /// The hrefs of the page's links, in order.
    fn hrefs(page: &str) -> Vec<&str> {
        page.split("href=\"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect()
    }

    #[test]
    fn order_encoding_and_escaping() {
        let t = fixture();
        let p = page(&t, b"/x&y/", false);
        assert_eq!(
            hrefs(&p),
            ["../", "Zed/", "sub/", "a%26b%3Cc%3E.txt", "b.txt", "it%27s%20%22q%22", "link", "space%20name",]
        );
        assert!(p.contains("<title>Index of /x&amp;y/</title>"), "{p}");
        assert!(p.contains("<h1>Index of /x&amp;y/</h1>"), "{p}");
        assert!(p.contains(">a&amp;b&lt;c&gt;.txt</a>"), "{p}");
        assert!(p.contains(">it&#39;s &quot;q&quot;</a>"), "{p}");
        assert!(p.contains(">space name</a>"), "{p}");
        assert!(!p.contains("a&b"), "raw name leaked: {p}");
        assert!(p.starts_with("<!DOCTYPE html>\n"));
        assert!(p.ends_with("</html>\n"));
    }

    #[test]
    fn sizes_and_times() {
        let t = fixture();
        let p = page(&t, b"/", false);
        let row = |href: &str| {
            let start = p.find(&format!("href=\"{href}\"")).unwrap();
            let end = start + p[start..].find("</tr>").unwrap();
            p[start..end].to_owned()
        };
        assert!(row("sub/").ends_with("<td>2024-02-29 13:45</td><td>-</td>"));
        assert!(row("b.txt").ends_with("<td>2024-02-29 13:45</td><td>1234</td>"));
        assert!(row("a%26b%3Cc%3E.txt").ends_with("<td>5</td>"));
        assert!(row("space%20name").ends_with("<td>0</td>"));
        // The symlink is not followed: listed as a file, with the link's size.
        assert!(row("link").ends_with("<td>3</td>"), "{}", row("link"));
    }

    #[test]
    fn parent_link_and_hidden() {
        let t = fixture();
        let root = page(&t, b"/", false);
        assert!(!root.contains("../"));
        assert!(!root.contains(".hidden"));
        assert!(!root.contains(".git"));
        let shown = page(&t, b"/", true);
        assert_eq!(
            hrefs(&shown),
            [
                ".git/",
                "Zed/",
                "sub/",
                ".hidden",
                "a%26b%3Cc%3E.txt",
                "b.txt",
                "it%27s%20%22q%22",
                "link",
                "space%20name",
            ]
        );
        // `.` and `..` are never entries; the parent link is ours.
        let nested = page(&t, b"/a/", true);
        assert_eq!(hrefs(&nested).iter().filter(|h| **h == "../").count(), 1);
        assert!(!nested.contains("href=\"./\""));
    }

    #[test]
    fn empty_and_non_utf8() {
        let t = TempDir::new();
        let p = page(&t, b"/empty/", false);
        assert_eq!(hrefs(&p), ["../"]);

        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9 \xff");
        touch(&t.0.join(odd), b"x");
        let p = page(&t, b"/\xff/", false);
        assert_eq!(hrefs(&p), ["../", "caf%E9%20%FF"]);
        assert!(p.contains(">caf\u{fffd} \u{fffd}</a>"));
        assert!(p.contains("Index of /\u{fffd}/"));
    }

    #[test]
    fn reading_leaves_the_callers_descriptor_alone() {
        let t = fixture();
        let dir = File::open(&t.0).unwrap();
        let a = render(&dir, b"/", false).unwrap();
        let b = render(&dir, b"/", false).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn not_a_directory() {
        let t = TempDir::new();
        touch(&t.0.join("f"), b"x");
        let f = File::open(t.0.join("f")).unwrap();
        assert!(render(&f, b"/f/", false).is_err());
    }

    #[test]
    fn civil_dates() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01 00:00"),
            (59, "1970-01-01 00:00"),
            (60, "1970-01-01 00:01"),
            (-1, "1969-12-31 23:59"),
            (951_782_400, "2000-02-29 00:00"),
            (LEAP as i64, "2024-02-29 13:45"),
            (1_234_567_890, "2009-02-13 23:31"),
            (4_102_444_800, "2100-01-01 00:00"),
            (253_402_300_799, "9999-12-31 23:59"),
            (-62_135_596_800, "0001-01-01 00:00"),
        ];
        for &(secs, want) in cases {
            assert_eq!(civil_minute(secs), want, "{secs}");
        }
        // Extremes do not panic.
        let _ = civil_minute(i64::MAX);
        let _ = civil_minute(i64::MIN);
    }

    #[test]
    fn escaping_tables() {
        let html: &[(&str, &str)] = &[("plain", "plain"), ("<&>\"'", "&lt;&amp;&gt;&quot;&#39;"), ("é", "é")];
        for &(raw, want) in html {
            assert_eq!(escape_html(raw), want);
        }
        let pct: &[(&[u8], &str)] = &[
            (b"aZ09-._~", "aZ09-._~"),
            (b" /:?#%", "%20%2F%3A%3F%23%25"),
            ("é".as_bytes(), "%C3%A9"),
            (b"\x00\xff", "%00%FF"),
        ];
        for &(raw, want) in pct {
            assert_eq!(percent_encode(raw), want);
        }
    }
}
