//! The runtime: one mio event loop per thread (poll, accept, the waker, the
//! timing wheel, the handoff between loops, where the loops run). It moves readiness and time
//! into connections and knows nothing of HTTP: a connection is a
//! [`Session`](crate::protocol::Session) to it.

pub(crate) mod event_loop;
pub(crate) mod handoff;
pub mod placement;
pub(crate) mod timer;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use mio::Waker;

/// Counters a server returns when it stops.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Connections accepted.
    pub connections: u64,
    /// Responses sent.
    pub requests: u64,
    /// Idle connections handed to another event loop (see [`Handoff`](crate::Handoff)).
    pub handed_off: u64,
    /// Connections taken from another event loop.
    pub taken: u64,
    /// Writes gathered over a turn of the loop to be sent together, through
    /// io_uring (zero where the kernel has none for it).
    pub gathered_writes: u64,
    /// The system calls that sent the gathered writes.
    pub gathered_sends: u64,
    /// Reads made for connections woken together, in one io_uring
    /// submission per batch, before they were driven (zero where the kernel
    /// has no io_uring for it).
    pub reads_ahead: u64,
    /// The system calls that made those reads.
    pub read_submissions: u64,
}

impl Stats {
    /// Add another loop's counters.
    pub(crate) fn add(&mut self, o: &Stats) {
        self.connections += o.connections;
        self.requests += o.requests;
        self.handed_off += o.handed_off;
        self.taken += o.taken;
        self.gathered_writes += o.gathered_writes;
        self.gathered_sends += o.gathered_sends;
        self.reads_ahead += o.reads_ahead;
        self.read_submissions += o.read_submissions;
    }
}

/// What the first event loop runs when a descriptor of the embedder's
/// becomes readable (see [`Server::watch`](crate::Server::watch)). The
/// closure owns the descriptor; dropping it closes the descriptor, which
/// also takes it out of the loop's epoll set.
pub(crate) type Watch = Box<dyn FnMut() + Send>;

/// Flags a handle sets and the loops read when woken.
pub(crate) struct Control {
    pub shutdown: AtomicBool,
    /// Bumped by each reopen request; a loop reopens when it sees a new value.
    pub reopen: AtomicUsize,
    wakers: Vec<Arc<Waker>>,
}

impl Control {
    pub(crate) fn new(wakers: Vec<Arc<Waker>>) -> Control {
        Control { shutdown: AtomicBool::new(false), reopen: AtomicUsize::new(0), wakers }
    }

    /// Ask every loop to stop gracefully.
    pub(crate) fn stop(&self) {
        self.shutdown.store(true, Ordering::Release);
        self.wake();
    }

    /// Ask every loop to reopen its access log.
    pub(crate) fn reopen_logs(&self) {
        self.reopen.fetch_add(1, Ordering::AcqRel);
        self.wake();
    }

    fn wake(&self) {
        for w in &self.wakers {
            if let Err(e) = w.wake() {
                log::error!("waking event loop: {e}");
            }
        }
    }
}
