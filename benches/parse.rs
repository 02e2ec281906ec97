//! Request-head parsing: oserver's resumable parser against httparse.
//!
//! Both parsers see the same bytes. Each keeps its working storage across
//! iterations (our `Parser` is reset, httparse's header array is reused), as a
//! server would. Run with `cargo bench -p oserver-core --bench parse`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use oserver_core::parse::{Limits, Parser, Status};

/// What curl sends for `curl http://localhost:8080/index.html`.
const SHORT: &[u8] = b"GET /index.html HTTP/1.1\r\n\
Host: localhost:8080\r\n\
User-Agent: curl/8.5.0\r\n\
Accept: */*\r\n\r\n";

/// A Firefox page load, cookies and all.
const BROWSER: &[u8] = b"GET /static/css/site.min.css?v=20240412 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\n\
Accept: text/css,*/*;q=0.1\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/articles/2024/04/how-we-serve-static-files.html\r\n\
Connection: keep-alive\r\n\
Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark; consent=1; _ga=GA1.2.123456789.1712912345\r\n\
Sec-Fetch-Dest: style\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
If-Modified-Since: Fri, 12 Apr 2024 09:15:02 GMT\r\n\
If-None-Match: \"6618fd06-3a1f\"\r\n\
Cache-Control: max-age=0\r\n\r\n";

/// Ten requests back to back, as a pipelining client sends them. Leaked so
/// that it is `'static` like the other inputs: httparse's reused header array
/// borrows from the buffer.
fn pipelined10() -> &'static [u8] {
    let mut buf = Vec::new();
    for i in 0..10 {
        buf.extend_from_slice(if i % 2 == 0 { BROWSER } else { SHORT });
    }
    buf.leak()
}

/// Where `split3` cuts the browser request: three reads of about a third.
fn split3_cuts() -> [usize; 3] {
    [BROWSER.len() / 3, BROWSER.len() * 2 / 3, BROWSER.len()]
}

fn oserver_one(p: &mut Parser, buf: &[u8], limits: &Limits) -> usize {
    p.reset();
    match p.parse(buf, limits) {
        Ok(Status::Complete(n)) => n,
        other => panic!("oserver: {other:?}"),
    }
}

fn httparse_one<'b>(headers: &mut [httparse::Header<'b>], buf: &'b [u8]) -> usize {
    let mut req = httparse::Request::new(headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("httparse: {other:?}"),
    }
}

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let pipelined = pipelined10();
    let mut group = c.benchmark_group("parse");

    for (name, input) in [("short", SHORT), ("browser", BROWSER)] {
        group.throughput(Throughput::Bytes(input.len() as u64));
        let mut parser = Parser::new();
        group.bench_function(BenchmarkId::new("oserver", name), |b| {
            b.iter(|| oserver_one(&mut parser, black_box(input), &limits))
        });
        let mut headers = [httparse::EMPTY_HEADER; 100];
        group.bench_function(BenchmarkId::new("httparse", name), |b| {
            b.iter(|| httparse_one(&mut headers, black_box(input)))
        });
    }

    group.throughput(Throughput::Bytes(pipelined.len() as u64));
    let mut parser = Parser::new();
    group.bench_function(BenchmarkId::new("oserver", "pipelined10"), |b| {
        b.iter(|| {
            let mut rest = black_box(pipelined);
            while !rest.is_empty() {
                let n = oserver_one(&mut parser, rest, &limits);
                rest = &rest[n..];
            }
        })
    });
    let mut headers = [httparse::EMPTY_HEADER; 100];
    group.bench_function(BenchmarkId::new("httparse", "pipelined10"), |b| {
        b.iter(|| {
            let mut rest = black_box(pipelined);
            while !rest.is_empty() {
                let n = httparse_one(&mut headers, rest);
                rest = &rest[n..];
            }
        })
    });

    // The head arrives in three reads. Ours resumes on the grown buffer;
    // httparse has no state to resume from and starts over each time.
    group.throughput(Throughput::Bytes(BROWSER.len() as u64));
    let cuts = split3_cuts();
    let mut parser = Parser::new();
    group.bench_function(BenchmarkId::new("oserver", "split3"), |b| {
        b.iter(|| {
            parser.reset();
            let input = black_box(BROWSER);
            let mut last = Ok(Status::Partial);
            for &cut in &cuts {
                last = parser.parse(&input[..cut], &limits);
            }
            assert_eq!(last, Ok(Status::Complete(input.len())));
        })
    });
    let mut headers = [httparse::EMPTY_HEADER; 100];
    group.bench_function(BenchmarkId::new("httparse", "split3"), |b| {
        b.iter(|| {
            let input = black_box(BROWSER);
            let mut last = None;
            for &cut in &cuts {
                let mut req = httparse::Request::new(&mut headers);
                last = match req.parse(&input[..cut]) {
                    Ok(httparse::Status::Complete(n)) => Some(n),
                    Ok(httparse::Status::Partial) => None,
                    Err(e) => panic!("httparse: {e}"),
                };
            }
            assert_eq!(last, Some(input.len()));
        })
    });

    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
