//! hyper 1.x on tokio: GET /plaintext and /json. As hyper's TechEmpower
//! entry runs it: one thread per THREADS, each with its own current-thread
//! runtime and its own SO_REUSEPORT listener on ADDR (the kernel spreads
//! connections over them), HTTP/1 only, responses to pipelined requests
//! flushed together.

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, DATE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use oserver_framework_bench::{args, json_body, MESSAGE};
use socket2::{Domain, Socket, Type};

thread_local! {
    /// The `Date` value and the second it was made for: formatted once a
    /// second per thread, as the other servers do.
    static DATE_VALUE: RefCell<(u64, HeaderValue)> =
        RefCell::new((u64::MAX, HeaderValue::from_static("")));
}

fn date() -> HeaderValue {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE_VALUE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let text = httpdate::fmt_http_date(now);
            *cached = (secs, HeaderValue::from_str(&text).expect("an HTTP date is a valid header value"));
        }
        cached.1.clone()
    })
}

async fn serve(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/plaintext") => (StatusCode::OK, "text/plain", Bytes::from_static(MESSAGE.as_bytes())),
        (&Method::GET, "/json") => (StatusCode::OK, "application/json", Bytes::from(json_body())),
        _ => (StatusCode::NOT_FOUND, "text/plain", Bytes::new()),
    };
    let mut rsp = Response::new(Full::new(body));
    *rsp.status_mut() = status;
    let headers = rsp.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    headers.insert(DATE, date());
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(rsp)
}

fn listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

fn run(listener: std::net::TcpListener) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("a tokio runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { continue };
                    let _ = stream.set_nodelay(true);
                    tokio::task::spawn_local(async move {
                        let _ = http1::Builder::new()
                            .pipeline_flush(true)
                            .serve_connection(TokioIo::new(stream), service_fn(serve))
                            .await;
                    });
                }
            })
            .await
    });
}

fn main() {
    let (addr, threads) = args("hyper");
    // All listeners are bound before any thread runs, so a bind error
    // (the port taken) stops the program rather than one thread.
    let listeners: Vec<_> = (0..threads)
        .map(|_| {
            listener(addr).unwrap_or_else(|e| {
                eprintln!("hyper: {addr}: {e}");
                std::process::exit(1);
            })
        })
        .collect();
    let handles: Vec<_> = listeners.into_iter().map(|l| std::thread::spawn(move || run(l))).collect();
    for h in handles {
        let _ = h.join();
    }
}
