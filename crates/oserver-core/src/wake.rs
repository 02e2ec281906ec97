//! How work finished on another thread reaches an event loop: a handler's
//! late reply, a streamed body's next piece. The other thread names the
//! connection (its slot key) in the loop's [`Mailbox`] and wakes the loop,
//! which drives each named connection once.
//!
//! A name is only a hint: a connection driven without news finds nothing
//! new and waits again, and a key whose connection closed (or was reused by
//! another) costs one such drive. So no generation is kept.

use std::sync::{Arc, Mutex};

/// One loop's list of connections to drive, and its waker.
pub(crate) struct Mailbox {
    /// None in unit tests that drive connections by hand.
    waker: Option<Arc<mio::Waker>>,
    woken: Mutex<Vec<usize>>,
}

impl Mailbox {
    pub(crate) fn new(waker: Arc<mio::Waker>) -> Arc<Mailbox> {
        Arc::new(Mailbox { waker: Some(waker), woken: Mutex::new(Vec::new()) })
    }

    /// A mailbox no loop reads (unit tests poll their connections).
    #[cfg(test)]
    pub(crate) fn detached() -> Arc<Mailbox> {
        Arc::new(Mailbox { waker: None, woken: Mutex::new(Vec::new()) })
    }

    /// Move the keys named since the last call into `into`.
    pub(crate) fn take(&self, into: &mut Vec<usize>) {
        let mut woken = self.woken.lock().unwrap_or_else(|p| p.into_inner());
        into.append(&mut woken);
    }
}

/// What another thread holds to wake one connection's loop.
#[derive(Clone)]
pub(crate) struct Wakeup {
    mailbox: Arc<Mailbox>,
    key: usize,
}

impl Wakeup {
    pub(crate) fn new(mailbox: Arc<Mailbox>, key: usize) -> Wakeup {
        Wakeup { mailbox, key }
    }

    /// Name the connection and wake its loop. Each key is listed once until
    /// the loop takes the list, and the loop is woken only by the first
    /// name of a batch: a producer sending many small pieces costs one
    /// wake-up per loop turn, not one per piece.
    pub(crate) fn wake(&self) {
        let first = {
            let mut woken = self.mailbox.woken.lock().unwrap_or_else(|p| p.into_inner());
            if woken.contains(&self.key) {
                return;
            }
            woken.push(self.key);
            woken.len() == 1
        };
        if let (true, Some(w)) = (first, &self.mailbox.waker) {
            if let Err(e) = w.wake() {
                log::error!("waking event loop: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_listed_once_per_batch() {
        let m = Mailbox::detached();
        let (a, b) = (Wakeup::new(Arc::clone(&m), 3), Wakeup::new(Arc::clone(&m), 7));
        a.wake();
        b.wake();
        a.wake();
        let mut got = Vec::new();
        m.take(&mut got);
        assert_eq!(got, vec![3, 7]);
        m.take(&mut got);
        assert_eq!(got, vec![3, 7], "taken once");
        a.wake();
        m.take(&mut got);
        assert_eq!(got, vec![3, 7, 3]);
    }

    #[test]
    fn a_real_waker_wakes_the_poll() {
        let mut poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(9)).unwrap());
        let m = Mailbox::new(waker);
        let w = Wakeup::new(Arc::clone(&m), 1);
        std::thread::spawn(move || w.wake()).join().unwrap();
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(std::time::Duration::from_secs(5))).unwrap();
        assert!(events.iter().any(|e| e.token() == mio::Token(9)));
    }
}
