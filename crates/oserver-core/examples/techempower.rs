//! The TechEmpower framework benchmark's two simplest tests.
//!
//! ```text
//! cargo run --release -p oserver-core --example techempower -- 127.0.0.1:8080 2
//! curl http://127.0.0.1:8080/plaintext   # Hello, World!
//! curl http://127.0.0.1:8080/json        # {"message":"Hello, World!"}
//! ```
//!
//! As the benchmark's rules ask: every answer has `Server` and `Date` (the
//! server adds both), and the JSON body is serialized for each request, not
//! kept. No document root: every other path is 404. Keep-alive is
//! unlimited (the benchmark's clients keep their connections for the whole
//! run).

use std::process::ExitCode;

use oserver_core::{Request, Response, ServerBuilder};

const MESSAGE: &str = "Hello, World!";

fn plaintext(_: &Request<'_>) -> Option<Response> {
    Some(Response::new(200).header("Content-Type", "text/plain").body(MESSAGE))
}

fn json(_: &Request<'_>) -> Option<Response> {
    Some(Response::new(200).header("Content-Type", "application/json").body(to_json(MESSAGE)))
}

/// `{"message":"..."}` with the message escaped as JSON, made per request.
fn to_json(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    out.push_str("{\"message\":\"");
    for c in message.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push_str("\"}");
    out
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(threads)) = (args.next(), args.next()) else {
        eprintln!("usage: techempower ADDR THREADS");
        return ExitCode::from(2);
    };
    let Ok(addr) = addr.parse() else {
        eprintln!("techempower: bad address {addr}");
        return ExitCode::from(2);
    };
    let threads = match threads.parse::<usize>() {
        Ok(n) if n > 0 => n,
        _ => {
            eprintln!("techempower: THREADS must be a number of at least 1, not {threads}");
            return ExitCode::from(2);
        }
    };
    let built = ServerBuilder::new()
        .bind(addr)
        .threads(threads)
        .keepalive_requests(0)
        .route(&["GET"], "/plaintext", plaintext)
        .route(&["GET"], "/json", json)
        .build();
    let server = match built {
        Ok(s) => s,
        Err(e) => {
            eprintln!("techempower: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server.run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("techempower: {e}");
            ExitCode::FAILURE
        }
    }
}
