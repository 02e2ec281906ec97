//! What the three competitor binaries share: their arguments and the JSON
//! message.

use std::net::SocketAddr;
use std::process::exit;

/// The text both `/plaintext` answers and the JSON message carry.
pub const MESSAGE: &str = "Hello, World!";

/// The `/json` body's shape, serialized afresh for each request.
#[derive(serde::Serialize)]
pub struct Message {
    pub message: &'static str,
}

/// `{"message":"Hello, World!"}`, made now.
pub fn json_body() -> Vec<u8> {
    serde_json::to_vec(&Message { message: MESSAGE }).expect("a struct of one string serializes")
}

/// `ADDR THREADS` from the command line, as oserver's techempower example
/// takes them; exits with status 2 and a usage line otherwise.
pub fn args(name: &str) -> (SocketAddr, usize) {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(threads), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: {name} ADDR THREADS");
        exit(2);
    };
    let Ok(addr) = addr.parse() else {
        eprintln!("{name}: bad address {addr}");
        exit(2);
    };
    match threads.parse::<usize>() {
        Ok(n) if n > 0 => (addr, n),
        _ => {
            eprintln!("{name}: THREADS must be a number of at least 1, not {threads}");
            exit(2);
        }
    }
}
