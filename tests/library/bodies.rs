//! Request bodies for a handler, over a real socket: pipelined requests
//! with bodies by Content-Length or in chunks (any chunk sizes,
//! extensions, trailers), `Expect: 100-continue`, empty bodies and GETs
//! between them, written in pieces cut anywhere. The handler gets each body
//! whole and exactly, and the answers come back in order; a body over the
//! route's limit gets 413.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::*;
use crate::support::connect;

/// The route's body limit.
const LIMIT: usize = 4096;

#[derive(Debug, Clone)]
enum Ask {
    /// POST with Content-Length (and `Expect: 100-continue` when `expect`).
    Length { body: Vec<u8>, expect: bool },
    /// POST in chunks of these sizes, cut from `body`.
    Chunked { body: Vec<u8>, cuts: Vec<usize>, ext: bool, trailer: bool },
    /// A GET of a static file between the bodies.
    Get,
    /// A body over the limit (last in a sequence: what follows it is not
    /// read as requests).
    Over { chunked: bool },
}

impl Ask {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Ask::Length { body, expect } => {
                let e = if *expect { "Expect: 100-continue\r\n" } else { "" };
                let mut m =
                    format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n{e}\r\n", body.len())
                        .into_bytes();
                m.extend_from_slice(body);
                m
            }
            Ask::Chunked { body, cuts, ext, trailer } => {
                let mut m = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                let mut rest = &body[..];
                for &c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
                    let n = c.min(rest.len());
                    if n == 0 {
                        continue;
                    }
                    m.extend(format!("{n:X}{}\r\n", if *ext { ";k=\"v\"" } else { "" }).into_bytes());
                    m.extend_from_slice(&rest[..n]);
                    m.extend(b"\r\n");
                    rest = &rest[n..];
                }
                m.extend(b"0\r\n");
                if *trailer {
                    m.extend(b"X-Sum: 1\r\n");
                }
                m.extend(b"\r\n");
                m
            }
            Ask::Get => b"GET /httptest/test.html HTTP/1.1\r\nHost: t\r\n\r\n".to_vec(),
            Ask::Over { chunked: false } => {
                let mut m =
                    format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", LIMIT + 1)
                        .into_bytes();
                m.extend(vec![b'o'; LIMIT + 1]);
                m
            }
            Ask::Over { chunked: true } => {
                let mut m = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                for _ in 0..3 {
                    m.extend(format!("{:x}\r\n", LIMIT / 2).into_bytes());
                    m.extend(vec![b'o'; LIMIT / 2]);
                    m.extend(b"\r\n");
                }
                m.extend(b"0\r\n\r\n");
                m
            }
        }
    }

    /// The status and body the answer must have (None: any body).
    fn want(&self) -> (u16, Option<Vec<u8>>) {
        match self {
            Ask::Length { body, .. } | Ask::Chunked { body, .. } => (200, Some(body.clone())),
            Ask::Get => (200, Some(std::fs::read(repo_root().join("httptest/test.html")).unwrap())),
            Ask::Over { .. } => (413, None),
        }
    }
}

/// The final responses in `buf` (1xx skipped), each framed by its
/// Content-Length; the bytes they used.
fn responses(buf: &[u8]) -> (Vec<(u16, Vec<u8>)>, usize) {
    let (mut out, mut at) = (Vec::new(), 0);
    loop {
        let mut fields = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut fields);
        let head = match r.parse(&buf[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return (out, at),
            Err(e) => panic!("not a response ({e}): {:?}", String::from_utf8_lossy(&buf[at..])),
        };
        let status = r.code.unwrap();
        let len = r
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |h| std::str::from_utf8(h.value).unwrap().parse::<usize>().unwrap());
        if buf.len() < at + head + len {
            return (out, at);
        }
        if status >= 200 {
            out.push((status, buf[at + head..at + head + len].to_vec()));
        }
        at += head + len;
    }
}

fn case(addr: SocketAddr, asks: &[Ask], cuts: &[usize]) {
    let wire: Vec<u8> = asks.iter().flat_map(Ask::bytes).collect();
    let mut c = connect(addr);
    let reader = {
        let mut c = c.try_clone().unwrap();
        let want = asks.len();
        thread::spawn(move || {
            let (mut buf, mut chunk) = (Vec::new(), [0u8; 65536]);
            let deadline = Instant::now() + Duration::from_secs(10);
            c.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            while Instant::now() < deadline {
                match c.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
                if responses(&buf).0.len() >= want {
                    break;
                }
            }
            buf
        })
    };
    let (mut at, mut k) = (0, 0);
    while at < wire.len() {
        let n = cuts[k % cuts.len()].clamp(1, wire.len() - at);
        k += 1;
        if c.write_all(&wire[at..at + n]).is_err() {
            break; // closed after a 413
        }
        at += n;
        thread::sleep(Duration::from_micros(200));
    }
    let got = responses(&reader.join().unwrap()).0;
    assert_eq!(got.len(), asks.len(), "answers {:?}", got.iter().map(|g| g.0).collect::<Vec<_>>());
    for (i, ((status, body), ask)) in got.iter().zip(asks).enumerate() {
        let (want_status, want_body) = ask.want();
        assert_eq!(*status, want_status, "answer {i}");
        if let Some(b) = want_body {
            assert!(*body == b, "answer {i}: {} bytes back of {}", body.len(), b.len());
        }
    }
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        proptest::collection::vec(any::<u8>(), 1..64),
        proptest::collection::vec(any::<u8>(), 64..=LIMIT),
    ]
}

fn ask() -> impl Strategy<Value = Ask> {
    prop_oneof![
        3 => (body(), proptest::bool::weighted(0.2)).prop_map(|(body, expect)| Ask::Length { body, expect }),
        3 => (body(), proptest::collection::vec(0usize..1500, 0..5), any::<bool>(), any::<bool>())
            .prop_map(|(body, cuts, ext, trailer)| Ask::Chunked { body, cuts, ext, trailer }),
        1 => Just(Ask::Get),
    ]
}

/// The handler returns the body it got.
fn echo(req: &Request<'_>) -> Option<Response> {
    Some(Response::new(200).body(req.body().to_vec()))
}

#[test]
fn any_pipelined_bodies_in_any_pieces_reach_the_handler_whole_and_in_order() {
    let s = Running::start(
        ServerBuilder::new().root(repo_root()).route(&["POST"], "/echo", echo).body_limit(LIMIT as u64),
    );
    let mut runner = TestRunner::new(Config { cases: 32, ..Config::default() });
    let strategy = (
        proptest::collection::vec(ask(), 1..10),
        proptest::option::weighted(0.2, any::<bool>()),
        proptest::collection::vec(prop_oneof![1usize..16, 16usize..2000, Just(usize::MAX)], 1..6),
    );
    runner
        .run(&strategy, |(mut asks, over, cuts)| {
            if let Some(chunked) = over {
                asks.push(Ask::Over { chunked });
            }
            case(s.addr, &asks, &cuts);
            Ok(())
        })
        .unwrap();
    s.stop();
}
