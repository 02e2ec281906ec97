//! Raw system calls on non-blocking descriptors.

use std::io;

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
