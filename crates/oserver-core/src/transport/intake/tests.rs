//! The loop's reads ahead over real loopback sockets: what each connection
//! reads, in what order, and what a batch leaves behind.

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};

use super::*;
use crate::transport::plain::{wait_readable, Plain};
use crate::transport::Recv;

/// A server-side `Plain` that reads through `intake`, and its client.
fn conn(l: &TcpListener, intake: &Intake) -> (Plain, TcpStream) {
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let mut p = Plain::new(mio::net::TcpStream::from_std(s));
    p.read_from(intake);
    (p, client)
}

/// `client` sends `bytes`, and they are there for `p` to read.
fn arrive(p: &Plain, client: &mut TcpStream, bytes: &[u8]) {
    client.write_all(bytes).unwrap();
    wait_readable(p.fd());
}

/// Everything `p` reads now, read by read, until it would block.
fn read_all(p: &mut Plain, buf_len: usize) -> (Vec<u8>, Recv) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; buf_len];
    loop {
        match p.recv(&mut buf).unwrap() {
            Recv::Data(n) => got.extend_from_slice(&buf[..n]),
            end => return (got, end),
        }
    }
}

#[test]
fn reads_of_a_batch_are_made_in_one_system_call_and_each_connection_takes_its_own() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let mut conns: Vec<_> = (0..3).map(|_| conn(&l, &intake)).collect();
    for (i, (p, c)) in conns.iter_mut().enumerate() {
        arrive(&*p, c, format!("request {i}").as_bytes());
        p.read_ahead();
    }
    intake.submit();
    assert_eq!(intake.counts(), (3, 1), "three reads, one submission");
    for (i, (p, c)) in conns.iter_mut().enumerate() {
        // A second request arrives after the batch read the first: it
        // stays in the socket, behind what the slot holds.
        c.write_all(b" and more").unwrap();
        wait_readable(p.fd());
        let mut buf = [0u8; 64];
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Data(9));
        assert_eq!(&buf[..9], format!("request {i}").as_bytes());
        assert!(!p.readable(), "a short read ahead drained the socket, as a recv does");
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Blocked, "no read until the next event");
        p.ready(true, false);
        assert_eq!(p.recv(&mut buf).unwrap(), Recv::Data(9));
        assert_eq!(&buf[..9], b" and more");
    }
    intake.finish();
}

#[test]
fn a_full_slot_leaves_the_socket_readable_for_the_rest() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let (mut p, mut c) = conn(&l, &intake);
    let sent: Vec<u8> = (0..SLOT + 300).map(|i| (i % 251) as u8).collect();
    arrive(&p, &mut c, &sent);
    p.read_ahead();
    intake.submit();
    // Read in pieces smaller than a slot: the slot's bytes first, then the
    // socket's, in order.
    let (got, end) = read_all(&mut p, 700);
    assert_eq!(end, Recv::Blocked);
    assert_eq!(got, sent);
    intake.finish();
}

#[test]
fn what_a_connection_did_not_take_is_kept_past_its_batch_and_read_first() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let (mut a, mut ca) = conn(&l, &intake);
    let (mut b, mut cb) = conn(&l, &intake);
    arrive(&a, &mut ca, b"GET /a HTTP/1.1\r\n\r\n");
    a.read_ahead();
    intake.submit();
    let mut buf = [0u8; 4];
    assert_eq!(a.recv(&mut buf).unwrap(), Recv::Data(4));
    a.keep();
    intake.finish();
    assert!(!a.movable(), "bytes it holds would be left behind");

    // The next batch reuses the slot; `a` is not read ahead while it
    // holds bytes, so what comes later cannot overtake them.
    arrive(&b, &mut cb, b"GET /b HTTP/1.1\r\n\r\n");
    ca.write_all(b"GET /c HTTP/1.1\r\n\r\n").unwrap();
    wait_readable(a.fd());
    a.ready(true, false);
    a.read_ahead();
    b.read_ahead();
    intake.submit();
    assert_eq!(intake.counts(), (2, 2), "b alone in the second batch");
    let (got, _) = read_all(&mut b, 64);
    assert_eq!(got, b"GET /b HTTP/1.1\r\n\r\n");
    b.keep();
    a.keep();
    intake.finish();
    let (got, end) = read_all(&mut a, 64);
    assert_eq!(end, Recv::Blocked);
    assert_eq!(got, b"/a HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n");
    assert!(a.movable());
}

#[test]
fn nothing_to_read_spends_the_readiness() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let (mut p, _c) = conn(&l, &intake);
    assert!(p.readable(), "fresh from accept");
    p.read_ahead();
    intake.submit();
    assert_eq!(p.recv(&mut [0u8; 16]).unwrap(), Recv::Blocked);
    assert!(!p.readable());
    p.read_ahead();
    assert_eq!(intake.counts(), (1, 1), "not readable: nothing queued");
    intake.finish();
    // And when it is kept rather than taken.
    p.ready(true, false);
    p.read_ahead();
    intake.submit();
    p.keep();
    intake.finish();
    assert!(!p.readable());
}

#[test]
fn the_end_of_the_stream_and_a_reset_reach_the_connection() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let (mut a, ca) = conn(&l, &intake);
    let (mut b, cb) = conn(&l, &intake);
    ca.shutdown(Shutdown::Write).unwrap();
    wait_readable(a.fd());
    reset(cb);
    wait_readable(b.fd());

    a.read_ahead();
    b.read_ahead();
    intake.submit();
    let mut buf = [0u8; 8];
    assert_eq!(a.recv(&mut buf).unwrap(), Recv::Eof);
    let e = b.recv(&mut buf).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
    intake.finish();
}

/// Close `c` with a reset rather than a FIN (no lingering).
fn reset(c: TcpStream) {
    socket2::SockRef::from(&c).set_linger(Some(std::time::Duration::ZERO)).unwrap();
}

#[test]
fn a_failed_read_kept_past_its_batch_is_reported_by_the_next_read() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let (mut p, c) = conn(&l, &intake);
    reset(c);
    wait_readable(p.fd());
    p.ready(true, true);
    p.read_ahead();
    intake.submit();
    p.keep();
    intake.finish();
    let e = p.recv(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}");
}

/// The socket of a connection closed before its batch is read reports its
/// own result; a descriptor reused by another socket cannot take a slot
/// that was not its own.
#[test]
fn a_slot_is_taken_only_by_the_descriptor_it_was_read_for() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let (a, mut ca) = conn(&l, &intake);
    arrive(&a, &mut ca, b"bytes");
    let ticket = intake.queue(a.fd()).unwrap();
    intake.submit();
    let mut buf = [0u8; 8];
    assert_eq!(intake.take(ticket, a.fd() + 1000, &mut buf), None);
    assert_eq!(intake.take(ticket, a.fd(), &mut buf), Some(Taken::Bytes { n: 5, last: true, short: true }));
    intake.finish();
    assert_eq!(intake.take(ticket, a.fd(), &mut buf), None, "its batch is over");
    drop(a);
}

#[test]
fn a_batch_holds_at_most_slots_reads() {
    let (l, intake) = (TcpListener::bind("127.0.0.1:0").unwrap(), Intake::new().unwrap());
    let conns: Vec<_> = (0..SLOTS + 1).map(|_| conn(&l, &intake)).collect();
    let queued = conns.iter().filter(|(p, _)| intake.queue(p.fd()).is_some()).count();
    assert_eq!(queued, SLOTS);
    intake.submit();
    assert!(intake.queue(conns[0].0.fd()).is_none(), "submitted: the batch is closed");
    intake.finish();
    assert!(intake.queue(conns[0].0.fd()).is_some(), "the next batch takes it");
    intake.submit();
    intake.finish();
}
