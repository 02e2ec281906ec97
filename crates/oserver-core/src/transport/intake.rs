//! Reads made for the connections an event woke, all in one io_uring
//! submission, before any of them is driven: the counterpart of
//! `outbox.rs` on the reading side.
//!
//! On a keep-alive connection a small answer costs a `recv` and a `send`.
//! With the sends gathered (`outbox.rs`), the `recv` is the one system call
//! left per request. Here the loop, for the connections one `epoll_wait`
//! reported readable, queues a recv for each into a slot of its own arena,
//! submits them in one `io_uring_enter`, then drives the connections, whose
//! reads take what arrived from their slot before touching the socket. The
//! README has what it saved on load case (a).
//!
//! The rules that keep a stream's bytes in order and with their connection:
//! - A connection has at most one slot, and is given one only when it has
//!   nothing read ahead already (see `plain.rs`): what is in the slot comes
//!   before anything in the socket.
//! - The slots live one batch: after driving the batch's connections the
//!   loop has each connection keep what it did not take ([`Plain::keep`]),
//!   then [`Intake::finish`] frees the slots for the next batch. A read
//!   that finds its slot's batch gone is an error, never a silent loss.
//! - A read is `MSG_DONTWAIT`: a socket with nothing to read answers EAGAIN
//!   at once, which spends its readiness as a `recv` would.
//!
//! [`Plain::keep`]: super::Plain::keep

use std::cell::RefCell;
use std::io;
use std::num::NonZeroU16;
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, types, IoUring};

use super::sys;

/// Connections read in one submission; a wakeup with more readable
/// connections makes several batches, each read, driven and finished in
/// turn. 64 holds what one `epoll_wait` reports in load case (a), about 50
/// connections per worker.
pub(crate) const SLOTS: usize = 64;
/// Bytes read ahead per connection: a request head of a usual size (a
/// browser's with cookies is one to two KiB; a load tool's 40 to 100
/// bytes). A read that fills its slot leaves the socket readable, and the
/// connection's next read goes to the socket as usual. With SLOTS, 128 KiB
/// per loop, touched only as far as reads fill it.
pub(crate) const SLOT: usize = 2048;

/// One event loop's reads; its plain connections' transports share it.
#[derive(Clone)]
pub(crate) struct Intake(Rc<RefCell<Reads>>);

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Intake")
    }
}

struct Reads {
    ring: IoUring,
    /// SLOTS slots of SLOT bytes.
    arena: Box<[u8]>,
    slots: Vec<Slot>,
    /// The batch was submitted: its slots hold their results.
    submitted: bool,
    /// A submission went wrong in a way that may leave the arena in the
    /// kernel's hands: nothing is read ahead any more.
    broken: bool,
    /// Reads made ahead, and the system calls that made them (for the
    /// loop's counters).
    reads: u64,
    submissions: u64,
}

/// One connection's read in this batch.
#[derive(Clone, Copy)]
struct Slot {
    fd: RawFd,
    /// The read's result: bytes read (0: end of stream) or -errno.
    result: i32,
    /// Bytes of it already taken.
    taken: usize,
}

/// A connection's note of its slot in the batch being read (the slot's
/// index plus one: a connection's `Option<Ticket>` is two bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(NonZeroU16);

/// What a connection's read found in its slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// This many bytes into the caller's buffer; `last`: the slot is empty
    /// now, and `short` says whether the read ahead drained the socket (it
    /// got less than a slot).
    Bytes { n: usize, last: bool, short: bool },
    /// The peer closed its side.
    Eof,
    /// The read failed with this errno (EAGAIN included: nothing had
    /// arrived).
    Failed(i32),
}

impl Intake {
    /// Reads ahead on a new io_uring. Fails where the kernel has none (as
    /// for [`Outbox`](super::Outbox)): the loop then drives each connection
    /// as its event comes, and each reads for itself.
    pub(crate) fn new() -> io::Result<Intake> {
        let ring = sys::loop_ring(SLOTS as u32)?;
        Ok(Intake(Rc::new(RefCell::new(Reads {
            ring,
            arena: vec![0; SLOTS * SLOT].into_boxed_slice(),
            slots: Vec::with_capacity(SLOTS),
            submitted: false,
            broken: false,
            reads: 0,
            submissions: 0,
        }))))
    }

    /// Reads made ahead so far, and the io_uring submissions that made them.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let b = self.0.borrow();
        (b.reads, b.submissions)
    }

    /// Queue a read of `fd` in this batch: its ticket, or None when the
    /// batch is full or was submitted already (the connection then reads
    /// for itself).
    pub(crate) fn queue(&self, fd: RawFd) -> Option<Ticket> {
        let b = &mut *self.0.borrow_mut();
        if b.broken || b.submitted || b.slots.len() >= SLOTS {
            return None;
        }
        let slot = b.slots.len();
        // SAFETY: slot < SLOTS, so the pointer and the SLOT bytes after it
        // are in the arena. The entry reaches the kernel only in `submit`,
        // which returns once every read of the batch has completed; the
        // arena is not touched before, and is leaked if that fails.
        let ptr = unsafe { b.arena.as_mut_ptr().add(slot * SLOT) };
        let e = opcode::Recv::new(types::Fd(fd), ptr, SLOT as u32)
            .flags(libc::MSG_DONTWAIT)
            .build()
            .user_data(slot as u64);
        // SAFETY: the entry's buffer outlives the operation (above).
        if unsafe { b.ring.submission().push(&e) }.is_err() {
            return None;
        }
        b.slots.push(Slot { fd, result: 0, taken: 0 });
        // slot < SLOTS < u16::MAX.
        NonZeroU16::new(slot as u16 + 1).map(Ticket)
    }

    /// Make the batch's reads, in one system call, and wait for all of
    /// them. If the kernel fails the submission itself, every read of the
    /// batch is reported failed to its connection (which is closed), and
    /// nothing is read ahead again.
    pub(crate) fn submit(&self) {
        let b = &mut *self.0.borrow_mut();
        if b.submitted {
            return;
        }
        b.submitted = true;
        if b.slots.is_empty() {
            return;
        }
        if let Err(e) = b.reap() {
            log::error!("io_uring read batch: {e}; reading without it from now on");
            // The kernel may still write into the arena: keep it alive.
            std::mem::forget(std::mem::take(&mut b.arena));
            b.broken = true;
            for s in &mut b.slots {
                s.result = -libc::EIO;
            }
        }
    }

    /// The connections of this batch were driven and kept what they did not
    /// take: the slots are free for the next batch.
    pub(crate) fn finish(&self) {
        let b = &mut *self.0.borrow_mut();
        debug_assert!(b.submitted || b.slots.is_empty(), "a batch finished unread");
        b.slots.clear();
        b.submitted = false;
    }

    /// Take what `fd`'s read of `ticket` got, as far as `buf` holds it.
    /// None when the ticket is not for a slot of the batch just read that
    /// was `fd`'s: its batch was finished without the connection keeping its
    /// bytes, which must not happen (see the module's rules). A slot of a
    /// later batch is never the connection's own: it is read for only once
    /// it has nothing ahead.
    pub(crate) fn take(&self, ticket: Ticket, fd: RawFd, buf: &mut [u8]) -> Option<Taken> {
        let b = &mut *self.0.borrow_mut();
        if !b.submitted {
            return None;
        }
        let i = usize::from(ticket.0.get() - 1);
        let s = b.slots.get_mut(i).filter(|s| s.fd == fd)?;
        if s.result < 0 {
            return Some(Taken::Failed(-s.result));
        }
        if s.result == 0 {
            return Some(Taken::Eof);
        }
        let got = s.result as usize;
        let n = (got - s.taken).min(buf.len());
        let start = i * SLOT + s.taken;
        buf[..n].copy_from_slice(&b.arena[start..start + n]);
        s.taken += n;
        Some(Taken::Bytes { n, last: s.taken == got, short: got < SLOT })
    }
}

impl Reads {
    /// Submit the queued reads and wait until every one has completed.
    fn reap(&mut self) -> io::Result<()> {
        let n = self.slots.len();
        let slots = &mut self.slots;
        sys::complete(&mut self.ring, n, &mut self.submissions, |slot, res| {
            if let Some(s) = slots.get_mut(slot as usize) {
                s.result = res;
            }
        })?;
        self.reads += n as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
