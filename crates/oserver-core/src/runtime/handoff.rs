//! Handing idle keep-alive connections between event loops, so that each
//! connection is served on the CPU its packets are processed on.
//!
//! An embedder that pins one event loop per CPU (the `oserver` CLI with
//! `--cpu-affinity`) gives each loop a [`Handoff`]: the CPU it runs on, an
//! inbox (a Unix datagram socket), and a sender to every other loop's inbox
//! with that loop's CPU. When a keep-alive connection has just finished a
//! response and nothing more has arrived, the loop sometimes asks the kernel
//! which CPU last processed the connection's incoming packets
//! (`SO_INCOMING_CPU`). If that CPU belongs to another loop, the descriptor
//! goes to that loop's inbox (`SCM_RIGHTS`) and this loop forgets it: the
//! next request wakes the loop on the client's CPU instead of crossing CPUs.
//!
//! The connection is idle at that point (no byte of a next request read, no
//! response in flight), so nothing but the descriptor and two counters needs
//! to move, and the receiving loop starts it as a kept-alive connection.
//! Bytes that arrive meanwhile wait in the socket; registering the socket in
//! the receiving loop's epoll set reports them at once. A TLS connection
//! takes its record keys along too (see `transport/records.rs`): they go in
//! the same datagram, over a socket pair only the server's own loops or
//! worker processes hold, and the buffers they passed through are wiped.
//!
//! How often: a connection is checked after its 1st, 2nd, 4th, 8th, ...
//! response and then after every [`CHECK_EVERY`]th, so a long-lived
//! connection costs one extra system call per thousand requests; and it moves
//! at most [`MAX_MOVES`] times, so a client that keeps changing CPUs cannot
//! make it bounce forever.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

use crate::transport::{nonblocking, wipe, Keys};

/// After the first powers of two, check every this many responses.
pub(crate) const CHECK_EVERY: u32 = 1024;

/// The most times one connection is handed on.
pub(crate) const MAX_MOVES: u8 = 4;

/// One event loop's place in a group of loops that pass connections to each
/// other; see the module documentation.
#[derive(Debug)]
pub struct Handoff {
    cpu: usize,
    inbox: UnixDatagram,
    peers: Vec<(usize, UnixDatagram)>,
}

impl Handoff {
    /// The loop runs on `cpu` and receives connections on `inbox`; `peers`
    /// are the other loops' CPUs and senders connected to their inboxes
    /// (from `UnixDatagram::pair`, say). The sockets are made non-blocking.
    ///
    /// # Errors
    ///
    /// Making a socket non-blocking failed.
    pub fn new(cpu: usize, inbox: UnixDatagram, peers: Vec<(usize, UnixDatagram)>) -> io::Result<Handoff> {
        inbox.set_nonblocking(true)?;
        for (_, p) in &peers {
            p.set_nonblocking(true)?;
        }
        Ok(Handoff { cpu, inbox, peers })
    }

    /// The CPU the loop runs on.
    pub(crate) fn cpu(&self) -> usize {
        self.cpu
    }

    pub(crate) fn inbox(&self) -> &UnixDatagram {
        &self.inbox
    }

    /// The sender for the loop on `cpu`, unless that is this loop or no loop.
    pub(crate) fn peer_for(&self, cpu: usize) -> Option<&UnixDatagram> {
        if cpu == self.cpu {
            return None;
        }
        self.peers.iter().find(|(c, _)| *c == cpu).map(|(_, s)| s)
    }
}

/// Whether a connection is checked after its `n`th response.
pub(crate) fn due(n: u32) -> bool {
    n.is_power_of_two() && n < CHECK_EVERY || n % CHECK_EVERY == 0
}

/// The CPU that last processed packets for socket `fd`, if the kernel knows.
pub(crate) fn incoming_cpu(fd: RawFd) -> Option<usize> {
    let mut cpu: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `cpu` and `len` are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_INCOMING_CPU,
            (&mut cpu as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0 && cpu >= 0).then_some(cpu as usize)
}

/// What travels with a descriptor: the connection's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Carried {
    pub responses: u32,
    pub moves: u8,
}

impl Carried {
    const LEN: usize = 5;

    fn encode(self) -> [u8; Self::LEN] {
        let r = self.responses.to_le_bytes();
        [r[0], r[1], r[2], r[3], self.moves]
    }

    fn decode(b: &[u8]) -> Carried {
        if b.len() < Self::LEN {
            return Carried { responses: 1, moves: MAX_MOVES };
        }
        Carried { responses: u32::from_le_bytes([b[0], b[1], b[2], b[3]]), moves: b[4] }
    }
}

/// Room for one descriptor's control message (CMSG_SPACE(4) is 24 bytes on
/// 64-bit Linux) with slack; a message that brings more than fit is cut short
/// by the kernel, and `recv` closes what did arrive.
#[repr(C)]
union CmsgBuf {
    buf: [u8; 64],
    _align: libc::cmsghdr,
}

/// The most a datagram carries: the counters, then a TLS connection's keys.
const PAYLOAD: usize = Carried::LEN + Keys::LEN;

/// Send descriptor `fd` with `carried`, and the keys of a TLS connection,
/// over `to`. `Ok(false)`: the inbox is full (the receiving loop is busy or
/// gone), keep the connection.
pub(crate) fn send(to: &UnixDatagram, fd: RawFd, carried: Carried, keys: Option<&Keys>) -> io::Result<bool> {
    let mut payload = [0u8; PAYLOAD];
    payload[..Carried::LEN].copy_from_slice(&carried.encode());
    let mut len = Carried::LEN;
    if let Some(k) = keys {
        let mut bytes = [0u8; Keys::LEN];
        k.encode(&mut bytes);
        payload[len..].copy_from_slice(&bytes);
        wipe(&mut bytes);
        len = PAYLOAD;
    }
    let sent = send_message(to, fd, &payload[..len]);
    wipe(&mut payload);
    sent
}

fn send_message(to: &UnixDatagram, fd: RawFd, payload: &[u8]) -> io::Result<bool> {
    let mut iov = libc::iovec { iov_base: payload.as_ptr() as *mut libc::c_void, iov_len: payload.len() };
    let mut cbuf = CmsgBuf { buf: [0; 64] };
    // SAFETY: msghdr is plain data; the control buffer is aligned for cmsghdr
    // and large enough for CMSG_SPACE(sizeof(int)); every pointer stays valid
    // for the call.
    unsafe {
        let space = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as usize;
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.buf.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        let sent =
            nonblocking(|| libc::sendmsg(to.as_raw_fd(), &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL))?;
        Ok(sent.is_some())
    }
}

/// A connection taken from the inbox.
#[derive(Debug)]
pub(crate) struct Arrival {
    pub fd: OwnedFd,
    pub carried: Carried,
    /// A TLS connection's keys.
    pub keys: Option<Keys>,
}

/// Take one connection from `inbox`; `Ok(None)` when it is empty.
///
/// Messages that bring no connection are skipped: one without a descriptor
/// is not from a loop, and one whose control data the kernel cut short
/// (`MSG_CTRUNC`: more descriptors than fit, or this process has no free
/// descriptor) lost its connection on the way, which is logged; whatever
/// descriptors did arrive with it are closed. Only the first descriptor of a
/// message is a connection; any others are closed. A payload longer than the
/// counters must be a TLS connection's keys; one that is not closes the
/// connection.
pub(crate) fn recv(inbox: &UnixDatagram) -> io::Result<Option<Arrival>> {
    loop {
        let mut payload = [0u8; PAYLOAD];
        let Some(m) = recv_message(inbox, &mut payload)? else {
            return Ok(None);
        };
        let (carried, keys) = arrival(&payload[..m.len]);
        wipe(&mut payload);
        if m.truncated {
            // Dropping `m` closes whatever arrived: a cut-short message says
            // nothing reliable about which descriptor was the connection.
            log::warn!("handoff: a connection was lost on the way (control data truncated)");
            continue;
        }
        let Some(fd) = m.fd else { continue };
        match keys {
            Ok(keys) => return Ok(Some(Arrival { fd, carried, keys })),
            Err(()) => log::warn!("handoff: a TLS connection came with keys that do not decode; closed"),
        }
    }
}

/// The counters and keys in a received payload.
fn arrival(payload: &[u8]) -> (Carried, Result<Option<Keys>, ()>) {
    let carried = Carried::decode(payload);
    let keys = match payload.get(Carried::LEN..) {
        None | Some([]) => Ok(None),
        Some(k) => Keys::decode(k).map(Some).ok_or(()),
    };
    (carried, keys)
}

/// One datagram from the inbox.
struct Message {
    /// Payload bytes received.
    len: usize,
    /// Its first descriptor.
    fd: Option<OwnedFd>,
    /// The kernel cut its control data short (`MSG_CTRUNC`).
    truncated: bool,
}

/// Receive one datagram into `payload`; `Ok(None)` when the inbox is empty.
fn recv_message(inbox: &UnixDatagram, payload: &mut [u8]) -> io::Result<Option<Message>> {
    // Fresh for every call: recvmsg overwrites msg_controllen with the length
    // it used (0 for a datagram without a descriptor), and offering that much
    // room to the next message would make the kernel drop its descriptor.
    let mut iov = libc::iovec { iov_base: payload.as_mut_ptr().cast(), iov_len: payload.len() };
    let mut cbuf = CmsgBuf { buf: [0; 64] };
    // SAFETY: as in `send`; the kernel writes at most msg_controllen bytes of
    // control data and sets each cmsg_len to what it wrote, and a descriptor
    // it delivers is ours to own.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.buf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of::<CmsgBuf>() as _;
        let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
        let Some(len) = nonblocking(|| libc::recvmsg(inbox.as_raw_fd(), &mut msg, flags))? else {
            return Ok(None);
        };
        let mut fd = None;
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let bytes = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..bytes / std::mem::size_of::<RawFd>() {
                    let got = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                    // Only the first is the connection; dropping another
                    // closes it.
                    if fd.is_none() {
                        fd = Some(got);
                    }
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
        Ok(Some(Message { len, fd, truncated: msg.msg_flags & libc::MSG_CTRUNC != 0 }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn due_on_powers_of_two_then_every_check_every() {
        let due_list: Vec<u32> = (1..=5000).filter(|&n| due(n)).collect();
        assert_eq!(due_list, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3072, 4096]);
    }

    #[test]
    fn a_socket_sent_arrives_usable_with_its_counters() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let carried = Carried { responses: 7, moves: 2 };
        assert!(send(&tx, server.as_raw_fd(), carried, None).unwrap());
        drop(server); // the receiver's copy keeps the connection open
        let Arrival { fd, carried: got, keys } = recv(&rx).unwrap().unwrap();
        assert!(keys.is_none());
        assert_eq!(got, carried);
        assert_same_connection(fd, &mut client);
        assert!(recv(&rx).unwrap().is_none(), "inbox empty again");
    }

    #[test]
    fn a_tls_connection_s_keys_travel_with_it() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        let (mut client, server) = tcp_pair();
        // Version TLS 1.3, AES-128-GCM, then arbitrary key bytes.
        let mut bytes = [7u8; Keys::LEN];
        bytes[0] = 3;
        bytes[1] = 1;
        let keys = Keys::decode(&bytes).unwrap();
        assert!(send(&tx, server.as_raw_fd(), Carried { responses: 4, moves: 1 }, Some(&keys)).unwrap());
        drop(server);
        let got = recv(&rx).unwrap().expect("the connection");
        assert_eq!(got.carried, Carried { responses: 4, moves: 1 });
        let mut back = [0u8; Keys::LEN];
        got.keys.expect("its keys").encode(&mut back);
        assert_eq!(back, bytes);
        assert_same_connection(got.fd, &mut client);
    }

    #[test]
    fn a_connection_with_keys_that_do_not_decode_is_closed() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        let (mut client, server) = tcp_pair();
        let mut payload = [0u8; PAYLOAD];
        payload[..Carried::LEN].copy_from_slice(&Carried { responses: 1, moves: 1 }.encode());
        payload[Carried::LEN] = 9; // no such version
        assert!(send_message(&tx, server.as_raw_fd(), &payload).unwrap());
        drop(server);
        assert!(recv(&rx).unwrap().is_none(), "nothing usable arrived");
        assert!(closed_at_server(&mut client), "the connection was closed");
    }

    /// A connected pair of TCP sockets: (client, server).
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        (client, server)
    }

    /// What `client` writes arrives on `fd`.
    fn assert_same_connection(fd: OwnedFd, client: &mut TcpStream) {
        let mut moved = TcpStream::from(fd);
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        moved.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
    }

    /// Whether every copy of the server end of `client`'s connection is
    /// closed: the client then reads end of stream.
    fn closed_at_server(client: &mut TcpStream) -> bool {
        client.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        matches!(client.read(&mut [0u8; 1]), Ok(0))
    }

    /// What `send` does, but with any number of descriptors in one message.
    fn send_fds(to: &UnixDatagram, fds: &[RawFd], carried: Carried) {
        let payload = carried.encode();
        let mut iov = libc::iovec { iov_base: payload.as_ptr() as *mut libc::c_void, iov_len: payload.len() };
        let data_len = std::mem::size_of_val(fds) as u32;
        // SAFETY: arithmetic only.
        let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
        // u64s: aligned for cmsghdr.
        let mut cbuf = vec![0u64; space.div_ceil(8)];
        // SAFETY: the control buffer is aligned for cmsghdr and holds `space`
        // bytes; every pointer stays valid for the call.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = space as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
            let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
            for (i, &fd) in fds.iter().enumerate() {
                std::ptr::write_unaligned(data.add(i), fd);
            }
            assert_eq!(libc::sendmsg(to.as_raw_fd(), &msg, 0), payload.len() as isize);
        }
    }

    #[test]
    fn a_descriptor_after_a_datagram_without_one_arrives() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        let (mut client, server) = tcp_pair();
        // Not from a loop, and no control data: recvmsg reports a control
        // length of 0, which must not be the room offered for the next one.
        tx.send(b"stray").unwrap();
        let carried = Carried { responses: 3, moves: 1 };
        assert!(send(&tx, server.as_raw_fd(), carried, None).unwrap());
        drop(server);
        let Arrival { fd, carried: got, .. } =
            recv(&rx).unwrap().expect("the descriptor after the stray datagram");
        assert_eq!(got, carried);
        assert_same_connection(fd, &mut client);
    }

    #[test]
    fn a_message_with_more_descriptors_than_fit_is_lost_and_all_are_closed() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        // One more than the receive buffer could hold even without a header,
        // so the kernel truncates the control data (MSG_CTRUNC).
        let too_many = std::mem::size_of::<CmsgBuf>() / std::mem::size_of::<RawFd>() + 1;
        let (mut clients, servers): (Vec<_>, Vec<_>) = (0..too_many).map(|_| tcp_pair()).unzip();
        let fds: Vec<RawFd> = servers.iter().map(|s| s.as_raw_fd()).collect();
        send_fds(&tx, &fds, Carried { responses: 1, moves: 0 });
        drop(servers);
        // A good message after the truncated one still arrives.
        let (mut client, server) = tcp_pair();
        assert!(send(&tx, server.as_raw_fd(), Carried { responses: 9, moves: 1 }, None).unwrap());
        drop(server);
        let Arrival { fd, carried: got, .. } =
            recv(&rx).unwrap().expect("the message after the truncated one");
        assert_eq!(got, Carried { responses: 9, moves: 1 });
        assert!(recv(&rx).unwrap().is_none(), "inbox empty again");
        for (i, c) in clients.iter_mut().enumerate() {
            assert!(closed_at_server(c), "descriptor {i} of the truncated message still open");
        }
        assert_same_connection(fd, &mut client);
    }

    #[test]
    fn only_the_first_descriptor_of_a_message_is_kept() {
        let (tx, rx) = UnixDatagram::pair().unwrap();
        let (mut first_client, first) = tcp_pair();
        let (mut extra_client, extra) = tcp_pair();
        send_fds(&tx, &[first.as_raw_fd(), extra.as_raw_fd()], Carried { responses: 2, moves: 1 });
        drop((first, extra));
        let Arrival { fd, carried: got, .. } = recv(&rx).unwrap().expect("the first descriptor");
        assert_eq!(got, Carried { responses: 2, moves: 1 });
        assert!(closed_at_server(&mut extra_client), "the extra descriptor is still open");
        assert_same_connection(fd, &mut first_client);
    }

    #[test]
    fn a_full_inbox_is_reported_not_an_error() {
        let (tx, _rx) = UnixDatagram::pair().unwrap();
        tx.set_nonblocking(true).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let mut sent = 0;
        while send(&tx, server.as_raw_fd(), Carried { responses: 1, moves: 0 }, None).unwrap() {
            sent += 1;
            assert!(sent < 1_000_000, "never filled");
        }
        assert!(sent > 0);
    }

    #[test]
    fn incoming_cpu_is_known_after_traffic() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut server, _) = l.accept().unwrap();
        client.write_all(b"x").unwrap();
        let mut b = [0u8; 1];
        server.read_exact(&mut b).unwrap();
        let cpu = incoming_cpu(server.as_raw_fd()).expect("SO_INCOMING_CPU set");
        assert!(cpu < libc::CPU_SETSIZE as usize, "cpu {cpu}");
    }
}
