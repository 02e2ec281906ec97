//! Transports: moving bytes between a socket and a protocol. Plain TCP now
//! (`plain`); TLS will sit beside it. A protocol never makes a system call on
//! its socket itself: it reads, writes and sends file ranges through here.

mod plain;

use std::io;

pub(crate) use plain::{Plain, Recv};

/// Run a raw non-blocking system call that returns a count or -1 with errno:
/// `Ok(Some(count))`, `Ok(None)` when it would block, retried on EINTR.
pub(crate) fn nonblocking(mut call: impl FnMut() -> isize) -> io::Result<Option<usize>> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(Some(n as usize));
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(e),
        }
    }
}
