//! A health endpoint beside static files.
//!
//! ```text
//! cargo run -p oserver-core --example hello -- 127.0.0.1:8081 httptest
//! curl http://127.0.0.1:8081/health          # {"status":"ok"}
//! curl http://127.0.0.1:8081/dir2/page.html  # the file under ROOT
//! ```

use std::process::ExitCode;

use oserver_core::{Request, Response, ServerBuilder};

fn health(req: &Request<'_>) -> Option<Response> {
    // Only the exact path: `/healthz` or `/health/x` fall through to the files.
    if req.path() != "/health" {
        return None;
    }
    Some(Response::new(200).header("Content-Type", "application/json").body("{\"status\":\"ok\"}\n"))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(addr), Some(root)) = (args.next(), args.next()) else {
        eprintln!("usage: hello ADDR ROOT");
        return ExitCode::from(2);
    };
    let addr = match addr.parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("hello: bad address {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let server = match ServerBuilder::new().bind(addr).root(root).handler("/health", health).build() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hello: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("listening on http://{}/", server.local_addr());
    match server.run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hello: {e}");
            ExitCode::FAILURE
        }
    }
}
