//! Raw system calls on non-blocking descriptors.

use std::io;
use std::os::fd::RawFd;

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

/// pread(2), EINTR retried.
pub(crate) fn pread(fd: RawFd, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    loop {
        // SAFETY: `buf` is valid for writes of its length.
        let n = unsafe { libc::pread64(fd, buf.as_mut_ptr().cast(), buf.len(), offset as libc::off64_t) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// preadv(2) into several buffers at once, EINTR retried.
pub(crate) fn preadv(fd: RawFd, bufs: &mut [io::IoSliceMut<'_>], offset: u64) -> io::Result<usize> {
    loop {
        // SAFETY: IoSliceMut is ABI-compatible with iovec on Unix, and each
        // buffer is valid for writes of its length for the call.
        let n = unsafe {
            libc::preadv64(fd, bufs.as_mut_ptr().cast(), bufs.len() as libc::c_int, offset as libc::off64_t)
        };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}
