//! What tests in any layer share: small helpers over real sockets, and a
//! generator for property tests' turn-by-turn choices.

use std::os::fd::RawFd;

/// Set a socket's SO_SNDBUF or SO_RCVBUF (the kernel doubles the value).
pub(crate) fn set_buffer(fd: RawFd, which: libc::c_int, bytes: libc::c_int) {
    // SAFETY: the option reads one int through the pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            which,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// Bytes waiting to be read in socket `fd` (FIONREAD).
pub(crate) fn unread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    n.max(0) as usize
}

/// Bytes socket `fd` has sent that the other end has not acknowledged
/// (TIOCOUTQ).
pub(crate) fn unsent(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int through the pointer.
    unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    n.max(0) as usize
}

/// A small deterministic generator for what a property test's case does
/// turn by turn: seeded from the case, so a failing case replays.
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
