//! Raw system calls on non-blocking descriptors.

use std::io;
use std::os::fd::RawFd;

use io_uring::IoUring;

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

/// send(2) as much of `buf` as the socket takes now (`flags` besides
/// MSG_NOSIGNAL): the bytes sent, fewer than `buf` when it would block. An
/// error after some bytes went is returned as the error.
pub(crate) fn send_some(fd: RawFd, buf: &[u8], flags: libc::c_int) -> io::Result<usize> {
    let mut sent = 0;
    while sent < buf.len() {
        let rest = &buf[sent..];
        // SAFETY: `rest` is a valid, initialised slice for the call's duration.
        match nonblocking(|| unsafe {
            libc::send(fd, rest.as_ptr().cast(), rest.len(), flags | libc::MSG_NOSIGNAL)
        })? {
            Some(n) => sent += n,
            None => break,
        }
    }
    Ok(sent)
}

/// `SO_MEMINFO` (Linux 4.6): the socket's memory counters in one call.
/// Not in the libc crate's Linux list; 55 is the asm-generic value, the
/// one x86, arm and riscv use.
const SO_MEMINFO: libc::c_int = 55;

/// Bytes the socket's send buffer has room for now: its limit
/// (`SO_SNDBUF`, which autotuning grows) less what is queued, in the
/// kernel's own accounting, which counts each buffer's overhead too, so the
/// figure errs low by a few percent.
pub(crate) fn send_room(fd: RawFd) -> io::Result<usize> {
    let mut info = [0u32; 9]; // SK_MEMINFO_VARS
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: `info` is valid for writes of `len` bytes; the kernel writes
    // at most that many and says how many in `len`.
    let rc =
        unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_MEMINFO, info.as_mut_ptr().cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let (sndbuf, queued) = (libc::SK_MEMINFO_SNDBUF as usize, libc::SK_MEMINFO_WMEM_QUEUED as usize);
    if (len as usize) < (queued + 1) * 4 {
        return Err(io::Error::other("SO_MEMINFO too short"));
    }
    Ok(info[sndbuf].saturating_sub(info[queued]) as usize)
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

/// A ring for one of an event loop's batches (`outbox.rs`, `intake.rs`):
/// one thread submits, and completions are reaped only in its own
/// io_uring_enter, so no task work interrupts the loop. Fails where the
/// kernel has none (before Linux 6.1's deferred task work, or io_uring
/// turned off).
pub(crate) fn loop_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder().setup_single_issuer().setup_defer_taskrun().setup_submit_all().build(entries)
}

/// Submit what is queued on `ring` and wait until `n` operations have
/// completed, handing each completion's user data and result to `each`;
/// the system calls made are added to `calls`. EINTR is retried.
pub(crate) fn complete(
    ring: &mut IoUring,
    n: usize,
    calls: &mut u64,
    mut each: impl FnMut(u64, i32),
) -> io::Result<()> {
    let mut got = 0;
    while got < n {
        *calls += 1;
        match ring.submit_and_wait(n - got) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        for cqe in ring.completion() {
            got += 1;
            each(cqe.user_data(), cqe.result());
        }
    }
    Ok(())
}
