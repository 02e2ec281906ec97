//! The blocking pool: threads that run the handlers of blocking routes
//! (`ServerBuilder::blocking_route`), so a handler that sleeps, waits on a
//! database or reads a slow disk does not stall its event loop.
//!
//! The responder copies the request (head fields, body) into an
//! [`OwnedRequest`], queues it with the route's handler and a [`Later`], and
//! the connection waits for the reply. A panicking handler drops its
//! `Later`, which answers 500; one that declines (`None`) gets 404, as
//! there is nothing left to fall through to.

use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use super::handler::{self, Handler, Later};
use super::request::{Request, Version};
use crate::http::fields::{Fields, HeaderSpan, MAX_HEAD_BYTES};

/// A request copied off the connection's buffers, for another thread.
pub(crate) struct OwnedRequest {
    method: Vec<u8>,
    target: Vec<u8>,
    version: Version,
    /// Field names and values, back to back, and their spans.
    head: Vec<u8>,
    spans: Vec<HeaderSpan>,
    peer: SocketAddr,
    secure: bool,
    body: Vec<u8>,
    path: String,
    query: Option<Vec<u8>>,
}

impl OwnedRequest {
    pub(crate) fn new(req: &Request<'_>, path: &str, query: Option<&[u8]>) -> OwnedRequest {
        let mut head = Vec::new();
        let mut spans = Vec::new();
        for (name, value) in req.fields.iter() {
            // Spans are 16-bit; the protocols' head limits keep a head far
            // below this, and a field past it is left out rather than
            // mis-spanned.
            if head.len() + name.len() + value.len() > MAX_HEAD_BYTES {
                break;
            }
            spans.push(HeaderSpan::append(&mut head, name, value));
        }
        OwnedRequest {
            method: req.method.to_vec(),
            target: req.target.to_vec(),
            version: req.version,
            head,
            spans,
            peer: req.peer,
            secure: req.secure,
            body: req.body.to_vec(),
            path: path.to_owned(),
            query: query.map(<[u8]>::to_vec),
        }
    }

    /// Run `f` with the handler's view of this request.
    fn with<R>(&self, f: impl FnOnce(&handler::Request<'_>) -> R) -> R {
        let req = Request {
            method: &self.method,
            target: &self.target,
            version: self.version,
            fields: Fields::new(&self.head, &self.spans),
            peer: self.peer,
            secure: self.secure,
            body: &self.body,
        };
        f(&handler::Request { req: &req, path: &self.path, query: self.query.as_deref() })
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads taking jobs from one queue.
pub(crate) struct Pool {
    jobs: Mutex<Sender<Job>>,
}

impl Pool {
    /// Start `threads` threads. They end when the pool is dropped (each
    /// after the job it is running).
    pub(crate) fn new(threads: usize) -> std::io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx: Arc<Mutex<Receiver<Job>>> = Arc::clone(&rx);
            thread::Builder::new().name(format!("oserver-blocking-{i}")).spawn(move || loop {
                let job = match rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => return,
                };
                match job {
                    // A panic is caught in `run` (the Later answers 500).
                    Ok(job) => job(),
                    Err(_) => return, // the pool was dropped
                }
            })?;
        }
        Ok(Pool { jobs: Mutex::new(tx) })
    }

    /// Run `handler` on `req` on a pool thread; its answer goes to `later`.
    pub(crate) fn run(&self, handler: Arc<dyn Handler>, req: OwnedRequest, later: Later) {
        let job: Job = Box::new(move || {
            if later.is_gone() {
                return; // the client left while the job was queued
            }
            match panic::catch_unwind(AssertUnwindSafe(|| req.with(|r| handler.handle(r)))) {
                Ok(Some(resp)) => later.send(resp),
                Ok(None) => later.error(404),
                Err(_) => {
                    log::error!("{}: blocking handler panicked on {}", req.peer, req.path);
                    later.error(500);
                }
            }
        });
        let sent = self.jobs.lock().map(|tx| tx.send(job).is_ok()).unwrap_or(false);
        if !sent {
            // No thread is left to run it; the job (and its Later) was
            // dropped, which answers 500.
            log::error!("blocking pool: no thread left");
        }
    }
}
