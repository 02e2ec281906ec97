//! The server `benches/conformance/httpwg.sh --server library` runs: static
//! files from ROOT, and a handler that answers `POST` on any path with 200
//! and the length of the body it read, which one case of the httpwg suite
//! asks of `POST /` (a static server rightly answers 405 there).
//!
//! ```text
//! cargo run --release -p oserver-core --example conformance -- 127.0.0.1:8080 ROOT
//! ```

use std::process::ExitCode;

use oserver_core::{Request, Response, ServerBuilder};

/// POST: 200 with the body's length. GET and HEAD: `None`, so the static
/// files answer (a route that did not take them would make them 405).
fn posted(req: &Request<'_>) -> Option<Response> {
    if req.method() != "POST" {
        return None;
    }
    Some(
        Response::new(200)
            .header("Content-Type", "text/plain")
            .body(format!("read {} bytes\n", req.body().len())),
    )
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(root)) = (args.next(), args.next()) else {
        eprintln!("usage: conformance ADDR ROOT");
        return ExitCode::from(2);
    };
    let Ok(addr) = addr.parse() else {
        eprintln!("conformance: bad address {addr}");
        return ExitCode::from(2);
    };
    let built = ServerBuilder::new().bind(addr).root(root).route(&["GET", "POST"], "/", posted).build();
    match built.map(|s| s.run()) {
        Ok(Ok(_)) => ExitCode::SUCCESS,
        Ok(Err(e)) | Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::FAILURE
        }
    }
}
