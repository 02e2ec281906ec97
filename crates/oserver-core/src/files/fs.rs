//! Opening files beneath the document root without a check-then-open race.
//!
//! The root is held open as a directory descriptor and every file is opened
//! *relative to that descriptor* in a single kernel operation, so there is no
//! window between "is this path inside the root?" and "open it" in which a
//! path component could be swapped for a symlink. Three mechanisms, chosen
//! once (see [`Resolver`]):
//!
//! - **`openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`** (Linux
//!   5.6+), the default. The kernel itself refuses, during the lookup, any
//!   step that would leave the directory: a symlink whose target is
//!   absolute, or climbs out with `..`, fails with `EXDEV`, which we answer
//!   403. Symlinks that stay inside the root keep working. The check and the
//!   open are the same system call, hence race-free. Note that an
//!   *absolute* symlink is refused even when it points back inside the root.
//! - **A walk, component by component** (fallback when `openat2` is missing,
//!   `ENOSYS`, or blocked by a seccomp filter, `EPERM`): each directory is
//!   opened with `O_PATH | O_DIRECTORY | O_NOFOLLOW` relative to the previous
//!   one, the last component with `O_NOFOLLOW`. No symlink is ever followed,
//!   so the walk is *stricter* than `openat2`: every symlink, even one that
//!   stays inside the root, answers 403. Each step starts from a descriptor,
//!   never from a path string, so it too is free of check-then-use races;
//!   since the already-resolved path never contains `..`, it only descends.
//! - **Plain `openat(2)`** when the server was started with
//!   `--follow-symlinks`: the path has no `..` left after
//!   [`crate::path::resolve`], so only symlinks can lead outside the root,
//!   and the operator asked for exactly that.
//!
//! Files are opened with `O_NONBLOCK` so that a FIFO in the root cannot
//! stall a worker in `open`, then the flag is cleared again: the returned
//! [`File`] is an ordinary blocking descriptor. Callers must still `fstat`
//! it and refuse what is neither a regular file nor a directory.

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

/// Why a file could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// No such file (404).
    NotFound,
    /// Permission denied, or the path leaves the root through a symlink (403).
    Forbidden,
    /// Anything else (500); logged.
    Io(io::Error),
}

impl OpenError {
    fn from_io(err: io::Error) -> OpenError {
        match err.raw_os_error() {
            // A name longer than the kernel accepts cannot exist.
            Some(libc::ENOENT | libc::ENOTDIR | libc::ENAMETOOLONG) => OpenError::NotFound,
            Some(libc::EACCES | libc::EPERM | libc::EXDEV | libc::ELOOP) => OpenError::Forbidden,
            _ => OpenError::Io(err),
        }
    }
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::NotFound => f.write_str("no such file"),
            OpenError::Forbidden => f.write_str("permission denied or outside the root"),
            OpenError::Io(err) => write!(f, "cannot open file: {err}"),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io(err) => Some(err),
            _ => None,
        }
    }
}

/// How [`Root::open`] keeps lookups beneath the root (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(2)` with `RESOLVE_BENEATH`: symlinks inside the root work.
    Openat2,
    /// Component-by-component walk with `O_NOFOLLOW`: no symlink works.
    Walk,
    /// Plain `openat(2)`, symlinks followed anywhere (`--follow-symlinks`).
    FollowSymlinks,
}

impl fmt::Display for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Resolver::Openat2 => "openat2 RESOLVE_BENEATH",
            Resolver::Walk => "O_NOFOLLOW walk (symlinks refused)",
            Resolver::FollowSymlinks => "openat, symlinks followed",
        })
    }
}

/// Whether `openat2` works here. It is a property of the kernel and the
/// process's seccomp filter, the same for every root, so it is decided once.
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);
const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_AVAILABLE: u8 = 1;
const OPENAT2_UNAVAILABLE: u8 = 2;

/// Flags for the file we hand out; `O_NONBLOCK` is cleared after the open.
const FILE_FLAGS: libc::c_int = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;

/// Flags for an intermediate directory in the fallback walk: `O_PATH` needs
/// only search permission, like a normal path lookup does.
const WALK_DIR_FLAGS: libc::c_int = libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

/// PATH_MAX on Linux, terminating NUL included: the kernel refuses longer
/// paths with ENAMETOOLONG anyway, so a bigger buffer would buy nothing.
const PATH_BUF: usize = 4096;

/// `openat2` answers EAGAIN when a concurrent rename races a `..` inside a
/// symlink target; such races are rare, so a few retries settle them.
const EAGAIN_RETRIES: u32 = 3;

/// The document root, held open as a directory descriptor.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    follow_symlinks: bool,
}

impl Root {
    /// Open `dir` as the root.
    ///
    /// `dir` itself may be a symlink (the operator chose it); what lies
    /// beneath it is looked up as the module docs describe. With
    /// `follow_symlinks` false this also decides, once per process, whether
    /// `openat2` is usable.
    ///
    /// # Errors
    ///
    /// The `open(2)` error if `dir` is missing (`NotFound`), not a directory
    /// (`ENOTDIR`) or not searchable; `InvalidInput` if it contains NUL.
    pub fn new(dir: &Path, follow_symlinks: bool) -> io::Result<Root> {
        let c_dir = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "root path contains NUL"))?;
        // O_PATH: the root is only ever a starting point for lookups, so it
        // needs search permission, not read permission.
        let fd = cvt_fd(unsafe {
            // SAFETY: c_dir is a valid NUL-terminated string.
            libc::open(c_dir.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        })?;
        if !follow_symlinks && OPENAT2.load(Ordering::Relaxed) == OPENAT2_UNKNOWN {
            probe_openat2(fd.as_fd());
        }
        Ok(Root { fd, follow_symlinks })
    }

    /// The mechanism [`Root::open`] uses, for the startup log.
    pub fn resolver(&self) -> Resolver {
        if self.follow_symlinks {
            Resolver::FollowSymlinks
        } else if OPENAT2.load(Ordering::Relaxed) == OPENAT2_UNAVAILABLE {
            Resolver::Walk
        } else {
            Resolver::Openat2
        }
    }

    /// Open `rel` (relative, already resolved, no `..`; empty means the root
    /// itself) read-only beneath the root.
    ///
    /// Directories open too (as a `File` to `fstat` or list), as does any
    /// other file type: the caller checks the type.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`] for a missing file, a file used as a
    /// directory (`a.txt/x`) or an over-long name; [`OpenError::Forbidden`]
    /// for a permission error, a symlink leading out of the root (any symlink
    /// with [`Resolver::Walk`]), or a `rel` that is absolute or contains a
    /// `..` segment (which [`crate::path::resolve`] never produces);
    /// [`OpenError::Io`] for anything else.
    pub fn open(&self, rel: &[u8]) -> Result<File, OpenError> {
        self.open_with(rel, self.resolver())
    }

    /// [`Root::open`] with the mechanism given, so tests can force each one.
    fn open_with(&self, rel: &[u8], resolver: Resolver) -> Result<File, OpenError> {
        if rel.first() == Some(&b'/') || rel.split(|&b| b == b'/').any(|s| s == b"..") {
            // Defence in depth: plain openat would honour both.
            return Err(OpenError::Forbidden);
        }
        let mut buf = [0u8; PATH_BUF];
        let fd = match resolver {
            Resolver::FollowSymlinks => openat(self.fd.as_fd(), c_path(rel, &mut buf)?, FILE_FLAGS),
            Resolver::Walk => walk(self.fd.as_fd(), rel),
            Resolver::Openat2 => {
                let path = c_path(rel, &mut buf)?;
                match openat2_beneath(self.fd.as_fd(), path, FILE_FLAGS) {
                    Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => {
                        // A seccomp filter installed after startup.
                        OPENAT2.store(OPENAT2_UNAVAILABLE, Ordering::Relaxed);
                        walk(self.fd.as_fd(), rel)
                    }
                    other => other.map_err(OpenError::from_io),
                }
            }
        }?;
        clear_nonblock(&fd).map_err(OpenError::Io)?;
        Ok(File::from(fd))
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Decide whether `openat2` works by opening the root's `.` through it.
fn probe_openat2(root: BorrowedFd<'_>) {
    let state = match openat2_beneath(root, c".", libc::O_PATH | libc::O_CLOEXEC) {
        Ok(_) => OPENAT2_AVAILABLE,
        // ENOSYS: kernel older than 5.6 or seccomp's usual answer; EPERM:
        // older container runtimes' seccomp answer; EINVAL/E2BIG: a kernel
        // that knows the call but not our struct or flags.
        Err(err)
            if matches!(
                err.raw_os_error(),
                Some(libc::ENOSYS | libc::EPERM | libc::EINVAL | libc::E2BIG)
            ) =>
        {
            OPENAT2_UNAVAILABLE
        }
        // Something transient (EMFILE...): decide on a later Root.
        Err(_) => return,
    };
    OPENAT2.store(state, Ordering::Relaxed);
}

/// `openat2(dir, path, flags)` confined beneath `dir`.
fn openat2_beneath(dir: BorrowedFd<'_>, path: &std::ffi::CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // open_how is non_exhaustive in libc; zeroing it also zeroes any future
    // field, which is what the kernel expects for "not used".
    // SAFETY: open_how is a plain struct of integers; all-zero is valid.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    let mut tries = 0;
    loop {
        // SAFETY: path is NUL-terminated, how is a valid open_how whose size
        // we pass; the returned descriptor is new and owned by us.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if ret >= 0 {
            // A descriptor always fits in c_int.
            // SAFETY: the kernel just returned this new descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) });
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::EAGAIN) if tries < EAGAIN_RETRIES => tries += 1,
            _ => return Err(err),
        }
    }
}

/// `openat(dir, path, flags)`, retried on EINTR.
fn openat(dir: BorrowedFd<'_>, path: &std::ffi::CStr, flags: libc::c_int) -> Result<OwnedFd, OpenError> {
    loop {
        // SAFETY: path is NUL-terminated; dir is a live descriptor.
        let ret = unsafe { libc::openat(dir.as_raw_fd(), path.as_ptr(), flags) };
        match cvt_fd(ret) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            other => return other.map_err(OpenError::from_io),
        }
    }
}

/// Fallback: open `rel` beneath `root` one component at a time, following
/// no symlink at all (see the module docs for why this is race-free).
fn walk(root: BorrowedFd<'_>, rel: &[u8]) -> Result<OwnedFd, OpenError> {
    let mut components = rel.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".").peekable();
    // The directory we are in; None is the root itself.
    let mut dir: Option<OwnedFd> = None;
    // NAME_MAX (255) plus NUL: a longer component cannot exist.
    let mut buf = [0u8; 256];
    while let Some(component) = components.next() {
        let here = dir.as_ref().map_or(root, |fd| fd.as_fd());
        let name = c_path(component, &mut buf)?;
        if components.peek().is_none() {
            // O_NOFOLLOW makes a symlink fail with ELOOP: Forbidden.
            return openat(here, name, FILE_FLAGS | libc::O_NOFOLLOW);
        }
        match openat(here, name, WALK_DIR_FLAGS) {
            Ok(fd) => dir = Some(fd),
            // With O_PATH, O_NOFOLLOW on a symlink does not fail with ELOOP:
            // O_DIRECTORY then refuses the link itself with ENOTDIR. Tell it
            // apart from a regular file used as a directory.
            Err(OpenError::NotFound) if is_symlink(here, name) => return Err(OpenError::Forbidden),
            Err(err) => return Err(err),
        }
    }
    openat(dir.as_ref().map_or(root, |fd| fd.as_fd()), c".", FILE_FLAGS)
}

/// Whether `name` in `dir` is a symlink (false if it cannot be examined).
fn is_symlink(dir: BorrowedFd<'_>, name: &std::ffi::CStr) -> bool {
    // SAFETY: stat is plain data; fstatat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: name is NUL-terminated, st is a valid out-pointer.
    let ret = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
    ret == 0 && st.st_mode & libc::S_IFMT == libc::S_IFLNK
}

/// `rel` as a NUL-terminated string in `buf`, `.` if empty.
fn c_path<'b>(rel: &[u8], buf: &'b mut [u8]) -> Result<&'b std::ffi::CStr, OpenError> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    let Some(dst) = buf.get_mut(..rel.len() + 1) else {
        // Longer than the kernel accepts: ENAMETOOLONG, i.e. cannot exist.
        return Err(OpenError::NotFound);
    };
    let (body, nul) = dst.split_at_mut(rel.len());
    body.copy_from_slice(rel);
    nul.fill(0);
    // An interior NUL (never produced by resolve) names no file.
    std::ffi::CStr::from_bytes_with_nul(dst).map_err(|_| OpenError::NotFound)
}

/// Drop the `O_NONBLOCK` used only to keep `open` of a FIFO from blocking.
fn clear_nonblock(fd: &OwnedFd) -> io::Result<()> {
    // F_SETFL only touches the status flags (O_APPEND, O_NONBLOCK, ...), of
    // which we set none but O_NONBLOCK, so 0 clears exactly that.
    // SAFETY: fd is a live descriptor we own.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A new descriptor from a libc return value.
fn cvt_fd(ret: libc::c_int) -> io::Result<OwnedFd> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: a non-negative return from open/openat is a new descriptor.
        Ok(unsafe { OwnedFd::from_raw_fd(ret) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::PathBuf;
    use std::sync::atomic::AtomicUsize;

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("oserver-fs-{}-{n}-{tag}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.0.join(rel)
        }

        fn file(&self, rel: &str, body: &str) {
            let p = self.path(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A document root with files, and a sibling directory outside it.
    struct Fixture {
        root: TempDir,
        outside: TempDir,
    }

    fn fixture() -> Fixture {
        let root = TempDir::new("root");
        let outside = TempDir::new("outside");
        root.file("a.txt", "A");
        root.file("dir/sub/deep.txt", "DEEP");
        root.file("dir/.hidden", "H");
        outside.file("secret.txt", "SECRET");
        symlink("a.txt", root.path("link.txt")).unwrap();
        symlink("../a.txt", root.path("dir/up.txt")).unwrap();
        symlink("dir/sub", root.path("sublink")).unwrap();
        symlink(root.path("a.txt"), root.path("abs-inside.txt")).unwrap();
        symlink(outside.path("secret.txt"), root.path("abs-out.txt")).unwrap();
        symlink(
            "../".to_string() + outside.0.file_name().unwrap().to_str().unwrap() + "/secret.txt",
            root.path("rel-out.txt"),
        )
        .unwrap();
        symlink(&outside.0, root.path("outdir")).unwrap();
        symlink("/etc/passwd", root.path("passwd")).unwrap();
        Fixture { root, outside }
    }

    /// What opening a path must give.
    #[derive(Debug, PartialEq)]
    enum Want {
        Body(&'static str),
        Dir,
        NotFound,
        Forbidden,
    }
    use Want::*;

    fn outcome(res: Result<File, OpenError>) -> Want {
        match res {
            Ok(mut f) => {
                if f.metadata().unwrap().is_dir() {
                    return Dir;
                }
                let mut s = String::new();
                f.read_to_string(&mut s).unwrap();
                // /etc/passwd stands in for "some file outside the root".
                if s.contains("root:") {
                    return Body("<passwd>");
                }
                Body(Box::leak(s.into_boxed_str()))
            }
            Err(OpenError::NotFound) => NotFound,
            Err(OpenError::Forbidden) => Forbidden,
            Err(OpenError::Io(e)) => panic!("unexpected I/O error {e}"),
        }
    }

    /// (rel, with openat2, with the walk, with follow_symlinks)
    const TABLE: &[(&str, Want, Want, Want)] = &[
        ("a.txt", Body("A"), Body("A"), Body("A")),
        ("", Dir, Dir, Dir),
        ("dir", Dir, Dir, Dir),
        ("dir/sub", Dir, Dir, Dir),
        ("dir/sub/deep.txt", Body("DEEP"), Body("DEEP"), Body("DEEP")),
        ("dir/.hidden", Body("H"), Body("H"), Body("H")),
        ("missing", NotFound, NotFound, NotFound),
        ("missing/x", NotFound, NotFound, NotFound),
        ("dir/missing.txt", NotFound, NotFound, NotFound),
        ("a.txt/x", NotFound, NotFound, NotFound),
        ("a.txt/x/y", NotFound, NotFound, NotFound),
        // Symlinks that stay inside the root; the walk refuses every symlink.
        ("link.txt", Body("A"), Forbidden, Body("A")),
        ("dir/up.txt", Body("A"), Forbidden, Body("A")),
        ("sublink/deep.txt", Body("DEEP"), Forbidden, Body("DEEP")),
        ("sublink", Dir, Forbidden, Dir),
        // RESOLVE_BENEATH refuses absolute symlinks even pointing inside.
        ("abs-inside.txt", Forbidden, Forbidden, Body("A")),
        // Symlinks leading out.
        ("abs-out.txt", Forbidden, Forbidden, Body("SECRET")),
        ("rel-out.txt", Forbidden, Forbidden, Body("SECRET")),
        ("outdir/secret.txt", Forbidden, Forbidden, Body("SECRET")),
        ("outdir", Forbidden, Forbidden, Dir),
        // Not in resolved form: refused before any lookup.
        ("../a.txt", Forbidden, Forbidden, Forbidden),
        ("dir/../a.txt", Forbidden, Forbidden, Forbidden),
        ("/etc/passwd", Forbidden, Forbidden, Forbidden),
    ];

    #[test]
    fn open_table() {
        let fx = fixture();
        let beneath = Root::new(&fx.root.0, false).unwrap();
        let follow = Root::new(&fx.root.0, true).unwrap();
        assert_eq!(follow.resolver(), Resolver::FollowSymlinks);
        let uses_openat2 = beneath.resolver() == Resolver::Openat2;
        eprintln!("resolver on this kernel: {}", beneath.resolver());
        for (rel, with_openat2, with_walk, with_follow) in TABLE {
            let want = if uses_openat2 { with_openat2 } else { with_walk };
            assert_eq!(&outcome(beneath.open(rel.as_bytes())), want, "{rel:?} beneath");
            assert_eq!(&outcome(follow.open(rel.as_bytes())), with_follow, "{rel:?} follow");
            let walked = beneath.open_with(rel.as_bytes(), Resolver::Walk);
            assert_eq!(&outcome(walked), with_walk, "{rel:?} walk");
            if !rel.starts_with('/') && !rel.contains("..") {
                let walked = walk(beneath.as_fd(), rel.as_bytes()).map(File::from);
                assert_eq!(&outcome(walked), with_walk, "{rel:?} bare walk");
            }
        }
        drop(fx.outside);
    }

    #[test]
    fn symlink_to_etc_passwd() {
        if !Path::new("/etc/passwd").exists() {
            return;
        }
        let fx = fixture();
        let beneath = Root::new(&fx.root.0, false).unwrap();
        let follow = Root::new(&fx.root.0, true).unwrap();
        assert_eq!(outcome(beneath.open(b"passwd")), Forbidden);
        assert_eq!(outcome(walk(beneath.as_fd(), b"passwd").map(File::from)), Forbidden);
        assert_eq!(outcome(follow.open(b"passwd")), Body("<passwd>"));
    }

    #[test]
    fn openat2_is_decided() {
        let root = TempDir::new("probe");
        let r = Root::new(&root.0, false).unwrap();
        assert_ne!(OPENAT2.load(Ordering::Relaxed), OPENAT2_UNKNOWN);
        assert_ne!(r.resolver(), Resolver::FollowSymlinks);
    }

    #[test]
    fn permission_denied_is_forbidden() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            // Root bypasses mode bits; nothing to observe.
            return;
        }
        let dir = TempDir::new("perm");
        dir.file("locked.txt", "L");
        dir.file("closed/inner.txt", "I");
        std::fs::set_permissions(dir.path("locked.txt"), std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(dir.path("closed"), std::fs::Permissions::from_mode(0o000)).unwrap();
        let root = Root::new(&dir.0, false).unwrap();
        let open = |rel: &str| outcome(root.open(rel.as_bytes()));
        let walked = |rel: &str| outcome(walk(root.as_fd(), rel.as_bytes()).map(File::from));
        assert_eq!(open("locked.txt"), Forbidden);
        assert_eq!(open("closed/inner.txt"), Forbidden);
        assert_eq!(walked("locked.txt"), Forbidden);
        assert_eq!(walked("closed/inner.txt"), Forbidden);
        std::fs::set_permissions(dir.path("closed"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn fifo_does_not_block_and_files_are_blocking() {
        let dir = TempDir::new("fifo");
        dir.file("f.txt", "F");
        let fifo = CString::new(dir.path("pipe").as_os_str().as_bytes()).unwrap();
        // SAFETY: fifo is NUL-terminated.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let root = Root::new(&dir.0, false).unwrap();
        // Without O_NONBLOCK this open would wait for a writer forever.
        let pipe = root.open(b"pipe").unwrap();
        assert!(!pipe.metadata().unwrap().is_file());
        let file = root.open(b"f.txt").unwrap();
        // SAFETY: file is a live descriptor.
        let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
        assert_eq!(flags & libc::O_NONBLOCK, 0);
        assert_eq!(flags & libc::O_ACCMODE, libc::O_RDONLY);
    }

    #[test]
    fn long_names_are_not_found() {
        let dir = TempDir::new("long");
        let root = Root::new(&dir.0, false).unwrap();
        let long_component = vec![b'x'; 300];
        let long_path = b"a/".repeat(3000);
        for rel in [&long_component[..], &long_path[..]] {
            assert_eq!(outcome(root.open(rel)), NotFound);
            assert_eq!(outcome(walk(root.as_fd(), rel).map(File::from)), NotFound);
        }
    }

    #[test]
    fn root_must_be_an_existing_directory() {
        let dir = TempDir::new("rootcheck");
        dir.file("file", "x");
        let err = Root::new(&dir.path("missing"), false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let err = Root::new(&dir.path("file"), false).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
        assert!(Root::new(Path::new("a\0b"), false).is_err());
    }

    #[test]
    fn errors_map_to_status() {
        let table = [
            (libc::ENOENT, 404),
            (libc::ENOTDIR, 404),
            (libc::ENAMETOOLONG, 404),
            (libc::EACCES, 403),
            (libc::EPERM, 403),
            (libc::EXDEV, 403),
            (libc::ELOOP, 403),
            (libc::EIO, 500),
            (libc::EMFILE, 500),
        ];
        // The statuses the static files answer each error with.
        let status = |e: &OpenError| match e {
            OpenError::NotFound => 404,
            OpenError::Forbidden => 403,
            OpenError::Io(_) => 500,
        };
        for (errno, want) in table {
            let err = OpenError::from_io(io::Error::from_raw_os_error(errno));
            assert_eq!(status(&err), want, "errno {errno}");
            assert!(!err.to_string().is_empty());
        }
    }
}
