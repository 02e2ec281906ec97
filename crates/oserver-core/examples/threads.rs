//! One server, several event-loop threads in one process, stopped from
//! another thread through its shutdown handle.
//!
//! ```text
//! cargo run -p oserver-core --example threads -- 127.0.0.1:8082 httptest 4 10
//! ```
//! serves ROOT on 4 loops for 10 seconds, then shuts down gracefully.

use std::process::ExitCode;
use std::thread;
use std::time::Duration;

use oserver_core::{Response, ServerBuilder};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: threads ADDR ROOT [THREADS] [SECONDS]");
        return ExitCode::from(2);
    }
    let Ok(addr) = args[0].parse() else {
        eprintln!("threads: bad address {}", args[0]);
        return ExitCode::from(2);
    };
    let threads = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4);
    let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10);
    let built = ServerBuilder::new()
        .bind(addr)
        .root(&args[1])
        .threads(threads)
        .handler("/health", |req: &oserver_core::Request<'_>| {
            (req.path() == "/health").then(|| {
                Response::new(200).header("Content-Type", "application/json").body("{\"status\":\"ok\"}\n")
            })
        })
        .build();
    let server = match built {
        Ok(s) => s,
        Err(e) => {
            eprintln!("threads: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("listening on http://{}/ with {threads} event loops for {secs} s", server.local_addr());
    let handle = server.handle();
    // The handle is Send + Clone: any thread may stop the server.
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_secs(secs));
        eprintln!("shutting down");
        handle.shutdown();
    });
    let result = server.run();
    let _ = stopper.join();
    match result {
        Ok(stats) => {
            eprintln!("stopped: {} requests on {} connections", stats.requests, stats.connections);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("threads: {e}");
            ExitCode::FAILURE
        }
    }
}
