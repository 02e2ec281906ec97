//! A value that comes later, from any thread, to a connection on a loop: a
//! one-shot channel whose receiving side names its connection to be woken
//! (`crate::wake`) and whose sending side can tell the receiver is gone.
//!
//! The handler API's [`Later`](super::handler::Later) is built on it.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::wake::Wakeup;

struct State<T> {
    value: Option<T>,
    /// The receiver was dropped (its connection closed): a value is not
    /// wanted.
    gone: bool,
    /// Who to wake when the value comes; set when the receiver first
    /// looks, which may be after the value came.
    wake: Option<Wakeup>,
}

struct Slot<T>(Mutex<State<T>>);

impl<T> Slot<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while the lock is held leaves the state consistent (each
        // change is one assignment).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new channel.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let slot = Arc::new(Slot(Mutex::new(State { value: None, gone: false, wake: None })));
    (Sender(Arc::clone(&slot)), Receiver(slot))
}

/// The sending side: any thread.
pub(crate) struct Sender<T>(Arc<Slot<T>>);

impl<T> Sender<T> {
    /// Hand over `value` and wake the receiver's connection; dropped at
    /// once if the receiver is gone.
    pub(crate) fn send(self, value: T) {
        let wake = {
            let mut st = self.0.lock();
            if st.gone {
                return;
            }
            st.value = Some(value);
            st.wake.clone()
        };
        if let Some(w) = wake {
            w.wake();
        }
    }

    /// Whether the receiver was dropped.
    pub(crate) fn is_gone(&self) -> bool {
        self.0.lock().gone
    }
}

/// The receiving side: a connection on a loop.
pub(crate) struct Receiver<T>(Arc<Slot<T>>);

impl<T> Receiver<T> {
    /// The value if it came; otherwise remember `wake` for when it does.
    pub(crate) fn poll(&self, wake: &Wakeup) -> Option<T> {
        let mut st = self.0.lock();
        let value = st.value.take();
        if value.is_none() && st.wake.is_none() {
            st.wake = Some(wake.clone());
        }
        value
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.gone = true;
        st.wake = None;
        // A value that came too late is dropped here, on the loop's thread
        // (a file in it is closed).
        st.value = None;
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("later::Receiver")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::Mailbox;

    #[test]
    fn a_value_sent_from_another_thread_wakes_the_connection() {
        let m = Mailbox::detached();
        let wake = Wakeup::new(Arc::clone(&m), 5);
        let (tx, rx) = channel();
        assert_eq!(rx.poll(&wake), None);
        std::thread::spawn(move || tx.send(201)).join().unwrap();
        let mut woken = Vec::new();
        m.take(&mut woken);
        assert_eq!(woken, vec![5]);
        assert_eq!(rx.poll(&wake), Some(201));
        assert_eq!(rx.poll(&wake), None, "taken once");
    }

    #[test]
    fn a_value_sent_before_the_receiver_looks_is_kept() {
        let wake = Wakeup::new(Mailbox::detached(), 0);
        let (tx, rx) = channel();
        tx.send(200);
        assert_eq!(rx.poll(&wake), Some(200));
    }

    #[test]
    fn a_value_for_a_gone_receiver_is_dropped() {
        let (tx, rx) = channel::<Arc<()>>();
        assert!(!tx.is_gone());
        drop(rx);
        assert!(tx.is_gone());
        let v = Arc::new(());
        tx.send(Arc::clone(&v));
        assert_eq!(Arc::strong_count(&v), 1, "not kept");
    }
}
