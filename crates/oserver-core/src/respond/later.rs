//! Replies completed after the handler returned, from any thread.
//!
//! A handler that cannot answer at once returns the placeholder of
//! [`Response::later`] and gives its [`Later`] to whatever finishes the work.
//! The connection waits (it reads no further request meanwhile); sending
//! the reply, or dropping the `Later` without one, wakes its loop
//! (`crate::wake`), which frames the reply as if the handler had returned
//! it.
//!
//! [`Response::later`]: super::handler::Response::later

use std::sync::{Arc, Mutex};

use super::handler::Response;
use crate::wake::Wakeup;

/// What a late reply turned out to be.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The handler's response.
    Response(Response),
    /// The server's error page: 500 for a `Later` dropped without a reply
    /// (its handler panicked, or forgot); 404 for a blocking handler that
    /// declined the request (nothing is left to fall through to).
    Error(u16),
}

#[derive(Default)]
struct State {
    answer: Option<Answer>,
    /// The connection gave up waiting (its client left): a reply is dropped.
    gone: bool,
    /// Who to wake when the answer comes; set when the connection first
    /// looks, which may be after the answer came.
    wake: Option<Wakeup>,
}

/// Shared by a [`Later`] and the connection waiting for it.
#[derive(Default)]
pub(crate) struct Slot(Mutex<State>);

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while the lock is held leaves the state consistent (each
        // change is one assignment).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Completes a reply later, from any thread: see [`Response::later`].
///
/// Dropping it without [`send`](Later::send) answers the request 500, so a
/// worker that panics (with unwinding) or forgets still answers the client.
///
/// [`Response::later`]: super::handler::Response::later
pub struct Later {
    slot: Arc<Slot>,
    sent: bool,
}

impl std::fmt::Debug for Later {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Later").field("gone", &self.is_gone()).finish()
    }
}

impl Later {
    pub(crate) fn new() -> (Later, Awaited) {
        let slot = Arc::new(Slot::default());
        (Later { slot: Arc::clone(&slot), sent: false }, Awaited(slot))
    }

    /// Complete the reply with `response` (which may itself be a file, a
    /// stream, or another `later`). If the client has gone, it is dropped
    /// quietly.
    pub fn send(mut self, response: Response) {
        self.sent = true;
        complete(&self.slot, Answer::Response(response));
    }

    /// Whether the client has gone (the connection closed), so the reply
    /// would be dropped: long work can check this and stop early.
    pub fn is_gone(&self) -> bool {
        self.slot.lock().gone
    }

    /// Complete with the server's error page for `status`.
    pub(crate) fn error(mut self, status: u16) {
        self.sent = true;
        complete(&self.slot, Answer::Error(status));
    }
}

impl Drop for Later {
    fn drop(&mut self) {
        if !self.sent {
            complete(&self.slot, Answer::Error(500));
        }
    }
}

fn complete(slot: &Slot, answer: Answer) {
    let wake = {
        let mut st = slot.lock();
        if st.gone {
            return;
        }
        st.answer = Some(answer);
        st.wake.clone()
    };
    if let Some(w) = wake {
        w.wake();
    }
}

/// The connection's side of a [`Later`]. Dropping it (the connection
/// closed) marks the reply unwanted.
pub(crate) struct Awaited(Arc<Slot>);

impl std::fmt::Debug for Awaited {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Awaited")
    }
}

impl Awaited {
    /// The answer if it came; otherwise remember `wake` for when it does.
    pub(crate) fn poll(&self, wake: &Wakeup) -> Option<Answer> {
        let mut st = self.0.lock();
        let answer = st.answer.take();
        if answer.is_none() && st.wake.is_none() {
            st.wake = Some(wake.clone());
        }
        answer
    }
}

impl Drop for Awaited {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.gone = true;
        // A reply that came too late is dropped here, on the loop's thread
        // (a file in it is closed).
        st.answer = None;
        st.wake = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::Mailbox;

    fn status(a: Option<Answer>) -> Option<u16> {
        match a? {
            Answer::Response(r) => Some(r.status()),
            Answer::Error(s) => Some(s + 10_000),
        }
    }

    #[test]
    fn a_reply_sent_from_another_thread_wakes_the_connection() {
        let m = Mailbox::detached();
        let wake = Wakeup::new(Arc::clone(&m), 5);
        let (later, awaited) = Later::new();
        assert!(awaited.poll(&wake).is_none());
        std::thread::spawn(move || later.send(Response::new(201))).join().unwrap();
        let mut woken = Vec::new();
        m.take(&mut woken);
        assert_eq!(woken, vec![5]);
        assert_eq!(status(awaited.poll(&wake)), Some(201));
        assert!(awaited.poll(&wake).is_none(), "taken once");
    }

    #[test]
    fn a_reply_sent_before_the_connection_looks_is_kept() {
        let wake = Wakeup::new(Mailbox::detached(), 0);
        let (later, awaited) = Later::new();
        later.send(Response::new(200));
        assert_eq!(status(awaited.poll(&wake)), Some(200));
    }

    #[test]
    fn a_dropped_or_panicking_later_answers_500() {
        let wake = Wakeup::new(Mailbox::detached(), 0);
        let (later, awaited) = Later::new();
        drop(later);
        assert_eq!(status(awaited.poll(&wake)), Some(10_500));
        let (later, awaited) = Later::new();
        let r = std::thread::spawn(move || {
            let _held = later;
            panic!("worker failed");
        })
        .join();
        assert!(r.is_err());
        assert_eq!(status(awaited.poll(&wake)), Some(10_500));
    }

    #[test]
    fn a_reply_for_a_client_that_left_is_dropped_quietly() {
        let (later, awaited) = Later::new();
        assert!(!later.is_gone());
        drop(awaited);
        assert!(later.is_gone());
        later.send(Response::new(200)); // no panic, nothing kept
    }
}
