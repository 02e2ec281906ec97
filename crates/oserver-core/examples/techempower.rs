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
//! run). The library's default for `keep_alive_field` (off): a kept HTTP/1.1
//! answer carries no `Connection` field, which the rules do not ask for and
//! hyper, h2o and may_minihttp do not send.
//!
//! The event loops are placed on CPUs (`cpu_placement` and `sched_batch`:
//! one thread per CPU, each connection served on its client's CPU);
//! `TECHEMPOWER_PLACEMENT=off` in the environment runs them unplaced.

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
/// Only `"`, `\\` and control bytes need escaping, all ASCII, so the
/// message is copied byte by byte (UTF-8 sequences pass through whole).
fn to_json(message: &str) -> Vec<u8> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(message.len() + 16);
    out.extend_from_slice(b"{\"message\":\"");
    for &b in message.as_bytes() {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0..=0x1f => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
            _ => out.push(b),
        }
    }
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::to_json;

    #[test]
    fn json_is_escaped() {
        assert_eq!(to_json("Hello, World!"), br#"{"message":"Hello, World!"}"#);
        assert_eq!(to_json("a\"b\\c\n\u{1}é"), "{\"message\":\"a\\\"b\\\\c\\u000a\\u0001é\"}".as_bytes());
    }
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
    // TECHEMPOWER_PLACEMENT=off runs without the placement below, so that
    // benches/frameworks.sh can show what it buys in the same run.
    let placed = !matches!(std::env::var("TECHEMPOWER_PLACEMENT").as_deref(), Ok("off"));
    let built = ServerBuilder::new()
        .bind(addr)
        .threads(threads)
        .keepalive_requests(0)
        // Each loop on a CPU of its own, each connection served on the CPU
        // its packets arrive on, loops under SCHED_BATCH: what TechEmpower
        // servers commonly do (pinning), one line for an embedder. Safe on
        // loopback and multi-queue NICs; not behind a single-queue NIC
        // without RPS (see ServerBuilder::cpu_placement).
        .cpu_placement(placed)
        .sched_batch(placed)
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
