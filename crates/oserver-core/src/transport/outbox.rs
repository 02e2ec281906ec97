//! Sends gathered over one turn of an event loop and handed to the kernel
//! together, in one io_uring submission, instead of one `send` each.
//!
//! On a keep-alive connection a small answer costs a `recv` and a `send`.
//! Measured on this project's load case (a) with the epoll floor program
//! (`benches/load/floor`), the same sends gathered per turn and submitted in
//! one `io_uring_enter` cost about 1 µs less CPU a request (5.3 against
//! 4.4), as much as a whole io_uring runtime saved; the README has the
//! figures. Readiness stays epoll's: only the sends change hands.
//!
//! The rules that keep a stream's bytes in order and on their socket:
//! - A connection has at most one run of bytes here, the last one written
//!   into the batch; a second write while it is last extends it. Any other
//!   write on that connection (once its run is no longer last, a file, a
//!   shutdown, a flush before a close) first takes its run back and sends
//!   it itself (see `plain.rs`). A connection with a run does not move to
//!   another loop: handoffs come after the batch is sent.
//! - A run is taken back before its socket closes, so a descriptor number
//!   reused by a later accept never gets another connection's bytes.
//! - What a socket did not take at the end of the turn goes back to its
//!   connection ([`Unsent`]), which waits for it to be writable, as after
//!   any short write.

use std::cell::RefCell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;

use io_uring::{opcode, types, IoUring};

use super::sys;

/// Submission queue entries: sends handed to the kernel per system call. A
/// turn with more runs submits in several calls.
const RING: u32 = 256;
/// The most bytes of one connection gathered in a turn; a write that
/// would take its run past it goes straight to the socket (after the run).
/// Gathering copies the bytes once more, and its saving is per call, not
/// per byte; and what a full socket hands back at the end of the turn
/// stays in the connection's memory, so a client that reads nothing holds
/// at most this much there, whatever a stream produces in a turn.
const MAX_RUN: usize = 16 * 1024;
/// The most bytes gathered in one turn (a turn of about 200 small
/// answers); past it, writes go straight to the socket until the turn's
/// batch is sent. Bounds the loop's memory: a burst of thousands of answers
/// in one turn (10,000 connections opening at once) gathers its first 64
/// KiB and sends the rest as it goes, rather than growing the buffer (a
/// 1 MiB cap measured 0.06 KiB more per idle connection in load case (d),
/// kept by the allocator after the burst).
const MAX_BYTES: usize = 64 * 1024;
/// The most runs in one turn: the same bound for the list of them.
const MAX_RUNS: usize = 1024;

/// One event loop's batch; its connections' transports share it.
#[derive(Clone)]
pub(crate) struct Outbox(Rc<RefCell<Batch>>);

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Outbox")
    }
}

struct Batch {
    ring: IoUring,
    bytes: Vec<u8>,
    runs: Vec<Run>,
    /// The connection the loop is driving: the owner of the runs written now.
    key: usize,
    /// Which batch this is (from 1): a connection's mark of its run is stale
    /// once the batch it was in has gone out.
    turn: u32,
    /// A submission went wrong in a way that leaves its buffers in the
    /// kernel's hands: nothing is gathered any more.
    broken: bool,
    /// Writes gathered, and the system calls that sent them (for the
    /// loop's counters).
    writes: u64,
    submissions: u64,
}

/// One connection's bytes in `Batch::bytes`.
struct Run {
    fd: RawFd,
    key: usize,
    start: usize,
    end: usize,
    /// Taken back by its connection: not sent by the batch.
    taken: bool,
}

/// What a connection's socket did not take when the batch went out.
#[derive(Debug)]
pub(crate) enum Unsent {
    /// These bytes, first to go when the socket is writable.
    Rest(Vec<u8>),
    /// The send failed: the connection is over.
    Failed(io::Error),
}

impl Outbox {
    /// A batch on a new io_uring. Fails where the kernel has none (before
    /// Linux 6.1's deferred task work, or io_uring turned off): the loop
    /// then sends as it writes.
    pub(crate) fn new() -> io::Result<Outbox> {
        let ring = sys::loop_ring(RING)?;
        Ok(Outbox(Rc::new(RefCell::new(Batch {
            ring,
            bytes: Vec::new(),
            runs: Vec::new(),
            key: 0,
            turn: 1,
            broken: false,
            writes: 0,
            submissions: 0,
        }))))
    }

    /// The loop is about to drive connection `key`.
    pub(crate) fn driving(&self, key: usize) {
        self.0.borrow_mut().key = key;
    }

    /// Writes gathered so far, and the io_uring submissions that sent them.
    pub(crate) fn counts(&self) -> (u64, u64) {
        let b = self.0.borrow();
        (b.writes, b.submissions)
    }

    /// Runs this turn's batch would send.
    #[cfg(test)]
    fn live_runs(&self) -> usize {
        self.0.borrow().runs.iter().filter(|r| !r.taken).count()
    }

    /// Anything to send at the end of the turn.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.borrow().runs.is_empty()
    }

    /// Gather `buf` for `fd`. `mark` is the connection's note of the batch
    /// its run is in (0 for none). False when it was not gathered: the run
    /// would grow past MAX_RUN, the batch is full, or the connection's run
    /// is no longer the last (it must take it back and send both itself).
    pub(crate) fn put(&self, fd: RawFd, buf: &[u8], mark: &mut u32) -> bool {
        let b = &mut *self.0.borrow_mut();
        if b.broken
            || buf.len() > MAX_RUN
            || b.bytes.len() + buf.len() > MAX_BYTES
            || b.runs.len() >= MAX_RUNS
        {
            return false;
        }
        if *mark == b.turn {
            match b.runs.last_mut() {
                Some(r) if r.fd == fd && !r.taken && r.end - r.start + buf.len() <= MAX_RUN => {
                    b.bytes.extend_from_slice(buf);
                    r.end = b.bytes.len();
                    b.writes += 1;
                    return true;
                }
                _ => return false,
            }
        }
        let start = b.bytes.len();
        b.bytes.extend_from_slice(buf);
        b.runs.push(Run { fd, key: b.key, start, end: b.bytes.len(), taken: false });
        *mark = b.turn;
        b.writes += 1;
        true
    }

    /// Whether `mark` (a connection's, see [`Outbox::put`]) is for the batch
    /// being gathered.
    pub(crate) fn holds(&self, mark: u32) -> bool {
        mark != 0 && mark == self.0.borrow().turn
    }

    /// Take back `fd`'s run, if `mark` says it has one waiting, and send it
    /// now: what the socket did not take is returned (empty: all sent).
    /// `mark` is cleared.
    pub(crate) fn take_back(&self, fd: RawFd, mark: &mut u32) -> io::Result<Vec<u8>> {
        let m = std::mem::take(mark);
        let b = &mut *self.0.borrow_mut();
        if m == 0 || m != b.turn {
            return Ok(Vec::new());
        }
        // Nearly always the last run: it was written this turn.
        let Some(r) = b.runs.iter_mut().rev().find(|r| r.fd == fd && !r.taken) else {
            return Ok(Vec::new());
        };
        r.taken = true;
        let run = &b.bytes[r.start..r.end];
        let sent = sys::send_some(fd, run, 0)?;
        Ok(run[sent..].to_vec())
    }

    /// Send every run gathered this turn; what a socket did not take, or a
    /// send that failed, is reported by connection key in `unsent` (cleared
    /// first).
    pub(crate) fn send(&self, unsent: &mut Vec<(usize, Unsent)>) {
        unsent.clear();
        let b = &mut *self.0.borrow_mut();
        let result = b.submit(unsent);
        if let Err(e) = result {
            // The kernel may still hold pointers into `bytes`: keep them
            // alive and never gather again; the runs not reported were
            // sent or are lost with their connections, which are closed.
            log::error!("io_uring send batch: {e}; sending without it from now on");
            let bytes = std::mem::take(&mut b.bytes);
            std::mem::forget(bytes);
            b.broken = true;
            for r in b.runs.iter().filter(|r| !r.taken) {
                if !unsent.iter().any(|(k, _)| *k == r.key) {
                    unsent.push((r.key, Unsent::Failed(io::Error::other("io_uring failed"))));
                }
            }
        }
        b.runs.clear();
        b.bytes.clear();
        // 0 is no batch's. After a wrap a stale mark may equal the turn
        // again; `put` and `take_back` then find no run of that descriptor
        // in the batch, which is the truth.
        b.turn = b.turn.checked_add(1).unwrap_or(1);
    }
}

impl Batch {
    /// Submit the runs not taken back, `RING` at a time, and collect every
    /// completion before returning.
    fn submit(&mut self, unsent: &mut Vec<(usize, Unsent)>) -> io::Result<()> {
        let mut next = 0;
        while next < self.runs.len() {
            let mut queued = 0;
            {
                let mut sq = self.ring.submission();
                while next < self.runs.len() && queued < RING as usize {
                    let r = &self.runs[next];
                    next += 1;
                    if r.taken {
                        continue;
                    }
                    // At most MAX_BYTES.
                    let len = (r.end - r.start) as u32;
                    // SAFETY: the pointer is into `bytes`, which is not
                    // touched until every completion of this submission is in.
                    let ptr = unsafe { self.bytes.as_ptr().add(r.start) };
                    let e = opcode::Send::new(types::Fd(r.fd), ptr, len)
                        .flags(libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
                        .build()
                        .user_data((next - 1) as u64);
                    // SAFETY: the entry's buffer outlives the operation (above).
                    unsafe { sq.push(&e) }.map_err(|_| io::Error::other("submission queue full"))?;
                    queued += 1;
                }
            }
            self.reap(queued, unsent)?;
        }
        Ok(())
    }

    /// Wait for `n` completions and report the runs not sent whole.
    fn reap(&mut self, n: usize, unsent: &mut Vec<(usize, Unsent)>) -> io::Result<()> {
        let (runs, bytes) = (&self.runs, &self.bytes);
        sys::complete(&mut self.ring, n, &mut self.submissions, |run, res| {
            let r = &runs[run as usize];
            if res == (r.end - r.start) as i32 {
                return;
            }
            let outcome = if res >= 0 {
                Unsent::Rest(bytes[r.start + res as usize..r.end].to_vec())
            } else if res == -libc::EAGAIN {
                Unsent::Rest(bytes[r.start..r.end].to_vec())
            } else {
                Unsent::Failed(io::Error::from_raw_os_error(-res))
            };
            unsent.push((r.key, outcome));
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::{ErrorKind, Read};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    use super::*;
    use crate::transport::plain::Plain;

    /// A server-side `Plain` whose writes are gathered into `batch` as
    /// connection `key`, and its client.
    fn conn(l: &TcpListener, batch: &Outbox, key: usize) -> (Plain, TcpStream) {
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nonblocking(true).unwrap();
        let mut p = Plain::new(mio::net::TcpStream::from_std(s));
        p.gather(batch);
        batch.driving(key);
        (p, client)
    }

    /// What has arrived at `c` by now, waiting at most `wait` for a first
    /// byte; empty if nothing came.
    fn arrived(c: &mut TcpStream, wait: Duration) -> Vec<u8> {
        c.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match c.read(&mut buf) {
                Ok(0) => return got,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    c.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return got,
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").unwrap()
    }

    #[test]
    fn writes_wait_for_the_end_of_the_turn_and_leave_together_in_order() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let (mut a, mut ca) = conn(&l, &batch, 1);
        let (mut b, mut cb) = conn(&l, &batch, 2);
        batch.driving(1);
        assert_eq!(a.send(b"a1 ", false).unwrap(), 3);
        batch.driving(2);
        assert_eq!(b.send(b"b1 ", false).unwrap(), 3);
        assert_eq!(b.send(b"b2", false).unwrap(), 2, "the last run grows");
        assert!(arrived(&mut ca, Duration::from_millis(100)).is_empty(), "sent before the turn ended");
        assert!(arrived(&mut cb, Duration::ZERO).is_empty());
        assert!(!a.wants_write(), "the batch sends it");
        assert!(!a.movable(), "moving now would leave its run behind");

        let mut unsent = Vec::new();
        batch.send(&mut unsent);
        assert!(unsent.is_empty(), "{unsent:?}");
        assert!(a.movable());
        assert_eq!(arrived(&mut ca, Duration::from_secs(2)), b"a1 ");
        assert_eq!(arrived(&mut cb, Duration::from_secs(2)), b"b1 b2");
        assert_eq!(batch.counts(), (3, 1), "three writes, one system call");

        // A connection whose run is no longer the last sends it itself,
        // with what it writes next behind it.
        batch.driving(1);
        a.send(b"x", false).unwrap();
        batch.driving(2);
        b.send(b"y", false).unwrap();
        batch.driving(1);
        assert_eq!(a.send(b"z", false).unwrap(), 1);
        assert_eq!(arrived(&mut ca, Duration::from_secs(2)), b"xz", "in order, at once");
        batch.send(&mut unsent);
        assert!(unsent.is_empty());
        assert_eq!(arrived(&mut cb, Duration::from_secs(2)), b"y");
        assert!(arrived(&mut ca, Duration::from_millis(100)).is_empty(), "x went twice");
    }

    /// A connection writing piece after piece (a streamed body) has at
    /// most MAX_RUN in the batch: past it, the run and the piece go to the
    /// socket, whose back-pressure the writer then sees.
    #[test]
    fn a_run_grows_to_max_run_then_writes_go_straight_out() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let (mut a, mut ca) = conn(&l, &batch, 1);
        let piece = vec![b'p'; MAX_RUN / 4];
        for _ in 0..4 {
            a.send(&piece, false).unwrap();
        }
        assert!(arrived(&mut ca, Duration::from_millis(100)).is_empty(), "four pieces fill one run");
        a.send(b"!", false).unwrap();
        let got = arrived(&mut ca, Duration::from_secs(2));
        assert_eq!(got.len(), MAX_RUN + 1, "the run, then the piece past it");
        assert_eq!(got.last(), Some(&b'!'));
        assert_eq!(batch.live_runs(), 0);
    }

    /// A turn gathers at most MAX_BYTES: a write past it goes straight out.
    #[test]
    fn a_full_batch_sends_further_writes_at_once() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let n = MAX_BYTES / MAX_RUN;
        let mut conns: Vec<_> = (0..=n).map(|k| conn(&l, &batch, k)).collect();
        let run = vec![b'r'; MAX_RUN];
        for (p, _) in conns.iter_mut() {
            assert_eq!(p.send(&run, false).unwrap(), MAX_RUN);
        }
        let (_, last) = conns.last_mut().unwrap();
        assert_eq!(arrived(last, Duration::from_secs(2)).len(), MAX_RUN, "past the batch's cap");
        let (_, first) = &mut conns[0];
        assert!(arrived(first, Duration::from_millis(100)).is_empty(), "gathered");
        assert_eq!(batch.live_runs(), n);
    }

    #[test]
    fn large_writes_and_those_with_a_file_behind_them_go_at_once() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let (mut a, mut ca) = conn(&l, &batch, 1);
        let big = vec![b'b'; MAX_RUN + 1];
        assert_eq!(a.send(&big, false).unwrap(), big.len());
        assert_eq!(arrived(&mut ca, Duration::from_secs(2)), big);
        // MSG_MORE: corked in the kernel until the file (here: a shutdown).
        a.send(b"head", true).unwrap();
        a.shutdown_write();
        assert_eq!(arrived(&mut ca, Duration::from_secs(2)), b"head");
        assert_eq!(batch.counts(), (0, 0));
    }

    #[test]
    fn a_file_a_shutdown_or_a_flush_before_a_close_sends_the_run_first() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let path = std::env::temp_dir().join(format!("oserver-outbox-{}", std::process::id()));
        std::fs::write(&path, b"FILE").unwrap();
        let f = std::fs::File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();

        let (mut a, mut ca) = conn(&l, &batch, 1);
        a.send(b"head:", false).unwrap();
        let mut off = 0;
        assert_eq!(a.send_file(f.as_raw_fd(), &mut off, 4, 1 << 20).unwrap(), 4);
        assert_eq!(arrived(&mut ca, Duration::from_secs(2)), b"head:FILE");

        let (mut b, mut cb) = conn(&l, &batch, 2);
        b.send(b"last words", false).unwrap();
        b.shutdown_write();
        let mut got = Vec::new();
        cb.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"last words", "then the end of stream");

        // A flush leaves the run to the batch; flush_all (before a close)
        // sends it now.
        let (mut m, mut cm) = conn(&l, &batch, 3);
        m.send(b"before the end", false).unwrap();
        assert!(m.flush().unwrap(), "nothing for the connection to push");
        assert!(arrived(&mut cm, Duration::from_millis(100)).is_empty(), "the run left the batch");
        assert!(m.flush_all().unwrap());
        assert!(m.movable());
        assert_eq!(arrived(&mut cm, Duration::from_secs(2)), b"before the end");

        let mut unsent = Vec::new();
        batch.send(&mut unsent);
        assert!(unsent.is_empty());
        assert!(arrived(&mut ca, Duration::from_millis(100)).is_empty(), "sent twice");
        assert!(arrived(&mut cm, Duration::ZERO).is_empty(), "sent twice");
    }

    /// A connection closed before the batch goes out sends its run itself,
    /// and the batch keeps nothing for its descriptor, which the next
    /// connection may already have.
    #[test]
    fn a_closed_connection_sends_its_run_itself_and_leaves_none_in_the_batch() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let (mut a, mut ca) = conn(&l, &batch, 1);
        let (mut b, mut cb) = conn(&l, &batch, 2);
        a.send(b"goodbye", false).unwrap();
        b.send(b"hello", false).unwrap();
        drop(a);
        let mut got = Vec::new();
        ca.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"goodbye");
        assert_eq!(batch.live_runs(), 1, "b's only");
        b.send(b" again", false).unwrap();
        drop(b);
        assert_eq!(arrived(&mut cb, Duration::from_secs(2)), b"hello again");
        assert_eq!(batch.live_runs(), 0);
        let mut unsent = Vec::new();
        batch.send(&mut unsent);
        assert!(unsent.is_empty());
        assert_eq!(batch.counts(), (3, 0), "a system call for runs taken back");
    }

    /// What a full socket does not take comes back to its connection, goes
    /// before anything it writes next, and leaves when the client reads.
    #[test]
    fn what_a_full_socket_leaves_goes_first_when_it_drains() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let (mut a, mut ca) = conn(&l, &batch, 7);
        // Fill the socket, straight (a file follows: not gathered).
        let chunk = vec![b'.'; 65536];
        let mut filled = 0;
        loop {
            let n = a.send(&chunk, true).unwrap();
            filled += n;
            if n < chunk.len() {
                break;
            }
        }
        let tail: Vec<u8> = (0..MAX_RUN).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(a.send(&tail, false).unwrap(), tail.len());
        let mut unsent = Vec::new();
        batch.send(&mut unsent);
        assert_eq!(unsent.len(), 1, "{unsent:?}");
        let (k, u) = unsent.pop().unwrap();
        assert_eq!(k, 7, "reported by its connection's key");
        let Unsent::Rest(rest) = u else { panic!("{u:?}") };
        assert!(!rest.is_empty() && tail.ends_with(&rest), "the end of the run: {} bytes", rest.len());
        a.unsent(rest);
        assert!(a.wants_write() && !a.movable());
        assert_eq!(a.send(b"next", false).unwrap(), 0, "would overtake what waits");

        // The client reads; what waited goes, then what comes next.
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            ca.read_to_end(&mut got).unwrap();
            got
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !a.flush().unwrap() {
            assert!(std::time::Instant::now() < deadline, "never drained");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!a.wants_write() && a.movable());
        assert_eq!(a.send(b"next", false).unwrap(), 4);
        batch.send(&mut unsent);
        assert!(unsent.is_empty());
        drop(a);
        let got = reader.join().unwrap();
        assert_eq!(got.len(), filled + tail.len() + 4);
        assert!(got[..filled].iter().all(|&c| c == b'.'));
        assert_eq!(&got[filled..filled + tail.len()], &tail[..]);
        assert_eq!(&got[filled + tail.len()..], b"next");
    }

    #[test]
    fn a_send_that_fails_is_reported_by_its_connection() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let (mut a, ca) = conn(&l, &batch, 3);
        // The client resets the connection (SO_LINGER 0, then close).
        socket2::SockRef::from(&ca).set_linger(Some(Duration::ZERO)).unwrap();
        drop(ca);
        std::thread::sleep(Duration::from_millis(50));
        a.send(b"to nobody", false).unwrap();
        let mut unsent = Vec::new();
        batch.send(&mut unsent);
        assert!(matches!(unsent.as_slice(), [(3, Unsent::Failed(_))]), "{unsent:?}");
    }

    #[test]
    fn a_turn_with_more_runs_than_the_ring_sends_them_all() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let n = RING as usize + 10;
        let mut conns: Vec<_> = (0..n).map(|k| conn(&l, &batch, k)).collect();
        for (k, (p, _)) in conns.iter_mut().enumerate() {
            batch.driving(k);
            p.send(format!("answer {k}").as_bytes(), false).unwrap();
        }
        let mut unsent = Vec::new();
        batch.send(&mut unsent);
        assert!(unsent.is_empty());
        for (k, (_, c)) in conns.iter_mut().enumerate() {
            let want = format!("answer {k}");
            let mut got = vec![0; want.len()];
            c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            c.read_exact(&mut got).unwrap();
            assert_eq!(got, want.as_bytes());
        }
        let (writes, sends) = batch.counts();
        assert_eq!(writes, n as u64);
        assert!(sends >= 2, "{sends}: the ring holds {RING}");
    }

    #[test]
    fn each_turn_starts_an_empty_batch() {
        let (l, batch) = (listener(), Outbox::new().unwrap());
        let (mut a, mut ca) = conn(&l, &batch, 1);
        a.send(b"1", false).unwrap();
        assert!(!batch.is_empty());
        let mut unsent = Vec::new();
        batch.send(&mut unsent);
        assert!(batch.is_empty());
        a.send(b"2", false).unwrap();
        batch.send(&mut unsent);
        assert_eq!(arrived(&mut ca, Duration::from_secs(2)), b"12");
    }
}
