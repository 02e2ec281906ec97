//! A small API beside static files: every method, request bodies, replies
//! from the blocking pool, streamed bodies, and files a handler answers as
//! static files are answered.
//!
//! ```text
//! cargo run --release -p oserver-core --example api -- 127.0.0.1:8080 ./public
//! curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/api/echo
//! curl 'http://127.0.0.1:8080/api/slow?ms=500'            # slept 500
//! curl -N 'http://127.0.0.1:8080/api/stream?n=5&delay=200' # line 0 .. line 4
//! curl -T notes.txt http://127.0.0.1:8080/api/files/notes  # 201
//! curl http://127.0.0.1:8080/api/files/notes                # the file, with ETag
//! curl -X DELETE http://127.0.0.1:8080/api/files/notes      # 204
//! ```
//!
//! - `POST /api/echo`: the request body back, with its Content-Type
//!   (`application/octet-stream` when it has none). Content-Length and
//!   chunked bodies, `Expect: 100-continue`; over 8 MiB, 413.
//! - `GET /api/slow?ms=N`: sleeps N ms (at most 30,000) on the blocking
//!   pool, then answers `slept N`; the event loop serves everything else
//!   meanwhile.
//! - `GET /api/stream?n=K[&delay=MS]`: K lines `line i` (at most 100,000),
//!   MS ms apart (at most 10,000), with no Content-Length: chunked over
//!   HTTP/1.1, DATA frames over HTTP/2. Without a delay the lines come from
//!   an iterator the loop pulls; with one, from a thread through a channel.
//! - `PUT /api/files/NAME` stores the body (201, up to 8 MiB); `GET` (and
//!   `HEAD`) serves it back as a file (ETag, Last-Modified, ranges, 304);
//!   `DELETE` removes it (204; then `GET` is 404). The files live in a fresh
//!   directory under the system's temporary directory, removed at exit. A
//!   NAME with `/` or `..` (however encoded) is 400.
//! - Other methods on these paths: 405 with `Allow`. `/apiary` and `/api2`
//!   are not under `/api`: they, and every other path, are static files
//!   from ROOT.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use oserver_core::{BodyStream, Request, Response, ServerBuilder};

/// Largest request body: the echo's and an uploaded file's.
const MAX_BODY: u64 = 8 << 20;
/// Longest sleep `/api/slow` takes: well inside the reply timeout (60 s).
const MAX_SLOW_MS: u64 = 30_000;
/// Most lines and longest gap of `/api/stream`.
const MAX_LINES: u64 = 100_000;
const MAX_DELAY_MS: u64 = 10_000;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(root)) = (args.next(), args.next()) else {
        eprintln!("usage: api ADDR ROOT");
        return ExitCode::from(2);
    };
    let Ok(addr) = addr.parse() else {
        eprintln!("api: bad address {addr}");
        return ExitCode::from(2);
    };
    let store = Store::new();
    let files = {
        let store = Arc::clone(&store);
        move |req: &Request<'_>| Some(store.answer(req))
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let built = ServerBuilder::new()
        .bind(addr)
        .root(root)
        .threads(threads)
        .max_body_bytes(MAX_BODY)
        // First: a file name that the path's normalisation would hide
        // (`/api/files/../x` is `/api/x`) is refused by the raw target.
        .handler("/api", refuse_bad_names)
        .route(&["POST"], "/api/echo", echo)
        .blocking_route(&["GET"], "/api/slow", slow)
        .route(&["GET"], "/api/stream", stream)
        .blocking_route(&["PUT", "GET", "DELETE"], "/api/files", files)
        .build();
    let server = match built {
        Ok(s) => s,
        Err(e) => {
            eprintln!("api: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("api: http://{}/ (files in {})", server.local_addr(), store.dir.display());
    let result = server.run();
    drop(store);
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("api: {e}");
            ExitCode::FAILURE
        }
    }
}

fn text(status: u16, body: String) -> Response {
    Response::new(status).header("Content-Type", "text/plain; charset=utf-8").body(body)
}

/// `POST /api/echo`.
fn echo(req: &Request<'_>) -> Option<Response> {
    let kind = req
        .header("content-type")
        .and_then(|v| std::str::from_utf8(v).ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    Some(Response::new(200).header("Content-Type", kind).body(req.body().to_vec()))
}

/// `GET /api/slow?ms=N`, on the blocking pool.
fn slow(req: &Request<'_>) -> Option<Response> {
    let ms = match param(req, "ms").map(|v| v.parse::<u64>()) {
        Some(Ok(ms)) if ms <= MAX_SLOW_MS => ms,
        _ => return Some(text(400, format!("ms=N wanted, N from 0 to {MAX_SLOW_MS}\n"))),
    };
    std::thread::sleep(Duration::from_millis(ms));
    Some(text(200, format!("slept {ms}")))
}

/// `GET /api/stream?n=K[&delay=MS]`.
fn stream(req: &Request<'_>) -> Option<Response> {
    let n = match param(req, "n").map(|v| v.parse::<u64>()) {
        Some(Ok(n)) if n <= MAX_LINES => n,
        _ => return Some(text(400, format!("n=K wanted, K from 0 to {MAX_LINES}\n"))),
    };
    let delay = match param(req, "delay").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(ms)) if ms <= MAX_DELAY_MS => ms,
        Some(_) => return Some(text(400, format!("delay=MS from 0 to {MAX_DELAY_MS}\n"))),
    };
    let body = if delay == 0 {
        BodyStream::iter((0..n).map(|i| format!("line {i}\n")))
    } else {
        let (body, tx) = BodyStream::channel();
        std::thread::spawn(move || {
            for i in 0..n {
                if i > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
                if tx.send(format!("line {i}\n")).is_err() {
                    return; // the client left: stop early
                }
            }
        });
        body
    };
    Some(Response::new(200).header("Content-Type", "text/plain; charset=utf-8").body(body))
}

/// Refuse `/api/files/NAME` whose NAME, as sent, holds `/` or `..` (also
/// percent-encoded); let everything else through.
fn refuse_bad_names(req: &Request<'_>) -> Option<Response> {
    let target = req.target();
    let path = target.split(|&b| b == b'?').next().unwrap_or(target);
    let name = path.strip_prefix(&b"/api/files/"[..])?;
    let decoded = percent_decode(name);
    let bad = decoded.contains(&b'/') || decoded.windows(2).any(|w| w == b"..");
    bad.then(|| text(400, "a file name may not hold / or ..\n".into()))
}

/// Uploaded files, in a directory of their own.
struct Store {
    dir: PathBuf,
}

impl Store {
    fn new() -> Arc<Store> {
        let dir = std::env::temp_dir().join(format!("oserver-api-{}", std::process::id()));
        let _ = fs::create_dir_all(&dir);
        Arc::new(Store { dir })
    }

    /// `PUT`, `GET`/`HEAD` or `DELETE` `/api/files/NAME`, on the pool.
    fn answer(&self, req: &Request<'_>) -> Response {
        let name = req.path().strip_prefix("/api/files").unwrap_or("").trim_start_matches('/');
        if name.is_empty() || name.contains('/') || name.contains("..") || name.starts_with('.') {
            return text(400, "a file name is wanted: /api/files/NAME, without / or ..\n".into());
        }
        let path = self.dir.join(name);
        match req.method() {
            "PUT" => match store(&self.dir, &path, req.body()) {
                Ok(()) => text(201, format!("stored {name}\n")).header("Location", req.path().to_owned()),
                Err(e) => text(500, format!("cannot store {name}: {e}\n")),
            },
            "DELETE" => match fs::remove_file(&path) {
                Ok(()) => Response::new(204),
                Err(_) => text(404, format!("no file {name}\n")),
            },
            // GET and HEAD: answered as a static file is.
            _ => match fs::File::open(&path) {
                Ok(f) => Response::new(200).header("Content-Type", "application/octet-stream").body(f),
                Err(_) => text(404, format!("no file {name}\n")),
            },
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Write `body` to `path` whole or not at all: a reader never sees half a
/// file (written beside it, then renamed over it).
fn store(dir: &Path, path: &Path, body: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".upload-{:?}", std::thread::current().id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(body)?;
    f.sync_data()?;
    fs::rename(&tmp, path)
}

/// The value of query parameter `name`, if present and UTF-8.
fn param(req: &Request<'_>, name: &str) -> Option<String> {
    let query = req.query()?;
    query.split(|&b| b == b'&').find_map(|pair| {
        let (k, v) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        (k == name.as_bytes()).then(|| String::from_utf8(percent_decode(v)).ok()).flatten()
    })
}

/// `%XX` decoded once (a malformed escape is kept as it is).
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let (Some(h), Some(l)) = (hex(s[i + 1]), hex(s[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}
