//! Opening files beneath the document root without a check-then-open race.
//!
//! INTERFACE STUB: the paths helper fills this in.

use std::fs::File;
use std::io;
use std::path::Path;

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

/// The document root, held open as a directory descriptor.
#[derive(Debug)]
pub struct Root {
    _todo: (),
}

impl Root {
    /// Open `dir` as the root.
    pub fn new(dir: &Path, follow_symlinks: bool) -> io::Result<Root> {
        let _ = (dir, follow_symlinks);
        todo!()
    }

    /// Open `rel` (relative, already resolved, no `..`; empty means the root
    /// itself) read-only beneath the root.
    pub fn open(&self, rel: &[u8]) -> Result<File, OpenError> {
        let _ = rel;
        todo!()
    }
}
