//! Response bodies of unknown length, produced piece by piece: by an
//! iterator the loop pulls, or by another thread through a channel.
//!
//! The protocol takes the next piece only when the socket (and, for
//! HTTP/2, the flow-control window) took the previous one, so a producer is
//! never run ahead of a slow client: an iterator is simply not pulled, and
//! a [`BodySender`] blocks once [`CHANNEL_BYTES`] wait unsent.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::wake::Wakeup;

/// Most bytes a [`BodySender`] queues before `send` blocks: 64 KiB is one
/// HTTP/2 share or a few TCP segments' worth, enough to keep the socket busy
/// while the producer makes the next piece, small enough that 10,000 slow
/// streams hold well under a gigabyte.
pub const CHANNEL_BYTES: usize = 64 * 1024;

/// Pieces an iterator may yield empty in a row before the loop moves on
/// (empty pieces are skipped: an empty chunk would end an HTTP/1.1 body).
const EMPTY_PULLS: usize = 64;

/// A streamed response body: see [`Body::Stream`](super::handler::Body::Stream).
pub struct BodyStream(Source);

enum Source {
    Iter(Box<dyn Iterator<Item = Vec<u8>> + Send>),
    Channel(Arc<Channel>),
}

impl std::fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Source::Iter(_) => "BodyStream(iterator)",
            Source::Channel(_) => "BodyStream(channel)",
        })
    }
}

/// The next piece of a stream, as the protocol sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece {
    Data(Vec<u8>),
    /// Nothing yet: the producer will wake the connection.
    Wait,
    /// The body is complete.
    End,
    /// The producer failed: the body is cut short (HTTP/1.1 closes the
    /// connection without the last chunk; HTTP/2 resets the stream), so the
    /// client knows it is incomplete.
    Abort,
}

impl BodyStream {
    /// A body made of the pieces `iter` yields, pulled on the event loop's
    /// thread when the client has taken the previous ones. Each call to
    /// `next` should be quick (it runs between other connections' work);
    /// for pieces that take time to make, use [`BodyStream::channel`] and
    /// make them on another thread.
    pub fn iter<I, T>(iter: I) -> BodyStream
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
        T: Into<Vec<u8>> + 'static,
    {
        BodyStream(Source::Iter(Box::new(iter.into_iter().map(Into::into))))
    }

    /// A body fed from another thread: the [`BodySender`] sends pieces and
    /// ends the body when dropped.
    pub fn channel() -> (BodyStream, BodySender) {
        let ch = Arc::new(Channel::default());
        (BodyStream(Source::Channel(Arc::clone(&ch))), BodySender { ch, aborted: false })
    }

    /// The next piece; `wake` is named to the producer when there is none
    /// yet.
    pub(crate) fn next(&mut self, wake: &Wakeup) -> Piece {
        match &mut self.0 {
            Source::Iter(it) => {
                for _ in 0..EMPTY_PULLS {
                    match it.next() {
                        Some(p) if p.is_empty() => continue,
                        Some(p) => return Piece::Data(p),
                        None => return Piece::End,
                    }
                }
                // Many empty pieces: let other connections run, then go on.
                wake.wake();
                Piece::Wait
            }
            Source::Channel(ch) => {
                let mut st = ch.lock();
                if let Some(p) = st.queue.pop_front() {
                    st.queued -= p.len();
                    drop(st);
                    ch.room.notify_one();
                    return Piece::Data(p);
                }
                match st.end {
                    Some(true) => Piece::End,
                    Some(false) => Piece::Abort,
                    None => {
                        st.wake = Some(wake.clone());
                        Piece::Wait
                    }
                }
            }
        }
    }
}

impl Drop for BodyStream {
    fn drop(&mut self) {
        if let Source::Channel(ch) = &self.0 {
            let mut st = ch.lock();
            st.gone = true;
            st.queue.clear();
            st.queued = 0;
            st.wake = None;
            drop(st);
            ch.room.notify_all();
        }
    }
}

#[derive(Default)]
struct ChannelState {
    queue: VecDeque<Vec<u8>>,
    queued: usize,
    /// Some(true): ended; Some(false): aborted.
    end: Option<bool>,
    /// The stream was dropped (its client left, or the request was HEAD).
    gone: bool,
    wake: Option<Wakeup>,
}

#[derive(Default)]
struct Channel {
    state: Mutex<ChannelState>,
    /// Signalled when the loop takes a piece (or the stream goes).
    room: Condvar,
}

impl Channel {
    fn lock(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The client is gone: the rest of the body is not wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl std::fmt::Display for Gone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the client is gone")
    }
}

impl std::error::Error for Gone {}

/// Feeds a [`BodyStream::channel`] from any thread.
///
/// Dropping it ends the body (the last chunk, or END_STREAM), unless the
/// thread is panicking or [`abort`](BodySender::abort) was called: then the
/// body is cut short so the client sees it incomplete.
pub struct BodySender {
    ch: Arc<Channel>,
    aborted: bool,
}

impl std::fmt::Debug for BodySender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodySender")
    }
}

impl BodySender {
    /// Send the next piece of the body. Blocks while [`CHANNEL_BYTES`] or
    /// more wait unsent (the client is slower than the producer). An empty
    /// piece is skipped. `Err(Gone)` once the client has gone: stop
    /// producing.
    pub fn send(&self, piece: impl Into<Vec<u8>>) -> Result<(), Gone> {
        let piece = piece.into();
        let mut st = self.ch.lock();
        while !st.gone && st.queued >= CHANNEL_BYTES {
            st = self.ch.room.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.gone {
            return Err(Gone);
        }
        if piece.is_empty() {
            return Ok(());
        }
        st.queued += piece.len();
        st.queue.push_back(piece);
        let wake = st.wake.take();
        drop(st);
        if let Some(w) = wake {
            w.wake();
        }
        Ok(())
    }

    /// Whether the client has gone.
    pub fn is_gone(&self) -> bool {
        self.ch.lock().gone
    }

    /// Cut the body short: what was sent goes out, then the client sees the
    /// body end without its proper ending.
    pub fn abort(mut self) {
        self.aborted = true;
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let ok = !self.aborted && !std::thread::panicking();
        let mut st = self.ch.lock();
        st.end = Some(ok);
        let wake = st.wake.take();
        drop(st);
        if let Some(w) = wake {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wake::Mailbox;
    use std::time::Duration;

    fn wake() -> (Arc<Mailbox>, Wakeup) {
        let m = Mailbox::detached();
        (Arc::clone(&m), Wakeup::new(m, 1))
    }

    #[test]
    fn an_iterator_skips_empty_pieces_and_ends() {
        let (_, w) = wake();
        let mut s = BodyStream::iter(vec!["a", "", "b"]);
        assert_eq!(s.next(&w), Piece::Data(b"a".to_vec()));
        assert_eq!(s.next(&w), Piece::Data(b"b".to_vec()));
        assert_eq!(s.next(&w), Piece::End);
    }

    #[test]
    fn a_channel_wakes_the_loop_and_ends_on_drop() {
        let (m, w) = wake();
        let (mut s, tx) = BodyStream::channel();
        assert_eq!(s.next(&w), Piece::Wait);
        tx.send("x").unwrap();
        let mut woken = Vec::new();
        m.take(&mut woken);
        assert_eq!(woken, vec![1]);
        assert_eq!(s.next(&w), Piece::Data(b"x".to_vec()));
        drop(tx);
        assert_eq!(s.next(&w), Piece::End);
    }

    #[test]
    fn a_channel_aborts_on_abort_or_panic() {
        let (_, w) = wake();
        let (mut s, tx) = BodyStream::channel();
        tx.abort();
        assert_eq!(s.next(&w), Piece::Abort);
        let (mut s, tx) = BodyStream::channel();
        let _ = std::thread::spawn(move || {
            let _tx = tx;
            panic!("producer failed");
        })
        .join();
        assert_eq!(s.next(&w), Piece::Abort);
    }

    #[test]
    fn a_sender_blocks_when_the_queue_is_full_and_learns_the_client_left() {
        let (_, w) = wake();
        let (mut s, tx) = BodyStream::channel();
        let producer = std::thread::spawn(move || {
            let mut sent = 0;
            while tx.send(vec![0u8; 16 * 1024]).is_ok() {
                sent += 1;
            }
            sent
        });
        // The producer stops at the bound until a piece is taken.
        std::thread::sleep(Duration::from_millis(100));
        let queued = match &s.0 {
            Source::Channel(ch) => ch.lock().queued,
            Source::Iter(_) => unreachable!(),
        };
        assert_eq!(queued, CHANNEL_BYTES, "the producer waits at the bound");
        assert!(matches!(s.next(&w), Piece::Data(_)));
        drop(s);
        let sent = producer.join().unwrap();
        assert!(sent >= 4, "the producer learned the client left after {sent}");
    }
}
