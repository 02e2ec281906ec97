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
//! the receiving loop's epoll set reports them at once.
//!
//! How often: a connection is checked after its 1st, 2nd, 4th, 8th, ...
//! response and then after every [`CHECK_EVERY`]th, so a long-lived
//! connection costs one extra system call per thousand requests; and it moves
//! at most [`MAX_MOVES`] times, so a client that keeps changing CPUs cannot
//! make it bounce forever.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

use crate::conn::nonblocking;

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

/// Room for one descriptor's control message.
#[repr(C)]
union CmsgBuf {
    buf: [u8; 64],
    _align: libc::cmsghdr,
}

/// Send descriptor `fd` with `carried` over `to`. `Ok(false)`: the inbox is
/// full (the receiving loop is busy or gone), keep the connection.
pub(crate) fn send(to: &UnixDatagram, fd: RawFd, carried: Carried) -> io::Result<bool> {
    let payload = carried.encode();
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

/// Take one descriptor from `inbox`; `Ok(None)` when it is empty.
pub(crate) fn recv(inbox: &UnixDatagram) -> io::Result<Option<(OwnedFd, Carried)>> {
    let mut payload = [0u8; Carried::LEN];
    let mut iov = libc::iovec { iov_base: payload.as_mut_ptr().cast(), iov_len: payload.len() };
    let mut cbuf = CmsgBuf { buf: [0; 64] };
    // SAFETY: as in `send`; the kernel writes at most msg_controllen bytes of
    // control data, and a descriptor it delivers is ours to own.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.buf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of::<CmsgBuf>() as _;
        loop {
            let flags = libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC;
            let Some(n) = nonblocking(|| libc::recvmsg(inbox.as_raw_fd(), &mut msg, flags))? else {
                return Ok(None);
            };
            let mut fd = None;
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let raw = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
                    fd = Some(OwnedFd::from_raw_fd(raw));
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
            match fd {
                Some(fd) => return Ok(Some((fd, Carried::decode(&payload[..n])))),
                // A datagram without a descriptor: not ours; skip it.
                None => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

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
        assert!(send(&tx, server.as_raw_fd(), carried).unwrap());
        drop(server); // the receiver's copy keeps the connection open
        let (fd, got) = recv(&rx).unwrap().unwrap();
        assert_eq!(got, carried);
        let mut moved = TcpStream::from(fd);
        client.write_all(b"ping").unwrap();
        let mut buf = [0u8; 4];
        moved.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ping");
        assert!(recv(&rx).unwrap().is_none(), "inbox empty again");
    }

    #[test]
    fn a_full_inbox_is_reported_not_an_error() {
        let (tx, _rx) = UnixDatagram::pair().unwrap();
        tx.set_nonblocking(true).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let mut sent = 0;
        while send(&tx, server.as_raw_fd(), Carried { responses: 1, moves: 0 }).unwrap() {
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
