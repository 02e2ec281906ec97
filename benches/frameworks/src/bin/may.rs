//! may_minihttp (stackful coroutines on `may`): GET /plaintext and /json.
//! may_minihttp writes `Server` and `Date` itself.

use std::io;

use may_minihttp::{HttpServer, HttpService, Request, Response};
use oserver_framework_bench::{args, json_body, MESSAGE};

#[derive(Clone)]
struct Techempower;

impl HttpService for Techempower {
    fn call(&mut self, req: Request, rsp: &mut Response) -> io::Result<()> {
        match (req.method(), req.path()) {
            ("GET", "/plaintext") => {
                rsp.header("Content-Type: text/plain").body(MESSAGE);
            }
            ("GET", "/json") => {
                rsp.header("Content-Type: application/json").body_vec(json_body());
            }
            _ => {
                rsp.status_code(404, "Not Found");
            }
        }
        Ok(())
    }
}

fn main() {
    let (addr, threads) = args("may");
    // One scheduler thread per THREADS; the pool keeps finished coroutines
    // (one per connection) for reuse, as may_minihttp's own benchmark sets it.
    may::config().set_workers(threads).set_pool_capacity(1000);
    let server = match HttpServer(Techempower).start(addr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("may: {addr}: {e}");
            std::process::exit(1);
        }
    };
    server.join().ok();
}
