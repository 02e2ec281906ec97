//! The open-file cache: what a path resolved to, with the descriptor kept open
//! for sendfile, revalidated at most once a second per path (lighttpd's stat
//! cache does the same). One cache per event loop, so no locks.
//!
//! The price: a file replaced on disk may be served in its old version for up
//! to a second, and each loop holds up to MAX_ENTRIES descriptors. The gain: a
//! request for a cached file costs no open, fstat or close, and a small file
//! (see SMALL_BODY) leaves together with its head in one write.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::os::unix::fs::FileExt;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use crate::files::fs::{OpenError, Root};
use crate::http::conditional::{ETag, LastModified};

/// How long a lookup is trusted without asking the file system again.
const FRESH: Duration = Duration::from_secs(1);

/// Most paths remembered per loop. Beyond it the cache starts over: simpler
/// than LRU bookkeeping on every hit, and a site with more hot paths than this
/// pays one open per path per refill.
const MAX_ENTRIES: usize = 1024;

/// Files up to this size are also kept in memory, so head and body leave in
/// one write instead of a write and a sendfile. 16 KiB is where the saved
/// system call stops mattering next to the copy, and it bounds the cache's
/// memory at MAX_ENTRIES x 16 KiB per loop in the worst case.
const SMALL_BODY: u64 = 16 * 1024;

/// An open regular file and what its responses need.
#[derive(Debug)]
pub(crate) struct OpenFile {
    pub file: File,
    pub len: u64,
    pub mtime: SystemTime,
    pub etag: ETag,
    /// Its `Last-Modified` value, none for a time that is not an HTTP-date.
    pub last_modified: Option<LastModified>,
    /// The whole content, for small files.
    pub small: Option<Box<[u8]>>,
}

/// What a path is.
#[derive(Debug, Clone)]
pub(crate) enum Lookup {
    File(Rc<OpenFile>),
    Dir,
    /// A FIFO, device or socket: never served.
    Special,
}

struct Slot {
    found: Result<Lookup, CachedError>,
    checked: Instant,
}

impl Slot {
    /// What a lookup answers from this slot.
    fn result(&self) -> Result<Lookup, OpenError> {
        match &self.found {
            Ok(l) => Ok(l.clone()),
            Err(CachedError::NotFound) => Err(OpenError::NotFound),
            Err(CachedError::Forbidden) => Err(OpenError::Forbidden),
        }
    }
}

#[derive(Clone, Copy)]
enum CachedError {
    NotFound,
    Forbidden,
}

#[derive(Default)]
pub(crate) struct FileCache {
    map: HashMap<Box<[u8]>, Slot>,
}

impl FileCache {
    /// What `rel` is beneath `root`, from the cache when checked within the
    /// last second.
    pub(crate) fn lookup(&mut self, root: &Root, rel: &[u8], now: Instant) -> Result<Lookup, OpenError> {
        if let Some(slot) = self.map.get(rel) {
            if now.saturating_duration_since(slot.checked) < FRESH {
                return slot.result();
            }
        }
        let found = match open(root, rel) {
            Ok(l) => Ok(l),
            Err(OpenError::NotFound) => Err(CachedError::NotFound),
            Err(OpenError::Forbidden) => Err(CachedError::Forbidden),
            // Not cached: the next request tries again.
            Err(e) => return Err(e),
        };
        if self.map.len() >= MAX_ENTRIES && !self.map.contains_key(rel) {
            self.map.clear();
        }
        let slot = Slot { found, checked: now };
        let result = slot.result();
        match self.map.get_mut(rel) {
            Some(old) => *old = slot,
            None => {
                self.map.insert(rel.into(), slot);
            }
        }
        result
    }
}

fn open(root: &Root, rel: &[u8]) -> Result<Lookup, OpenError> {
    let file = root.open(rel)?;
    let meta = file.metadata().map_err(OpenError::Io)?;
    if meta.is_dir() {
        return Ok(Lookup::Dir);
    }
    if !meta.is_file() {
        return Ok(Lookup::Special);
    }
    let (len, mtime, etag) = validators(&meta);
    let small = if len <= SMALL_BODY {
        let mut buf = vec![0u8; len as usize];
        // A short read (the file shrank meanwhile) leaves it to sendfile.
        file.read_exact_at(&mut buf, 0).ok().map(|()| buf.into_boxed_slice())
    } else {
        None
    };
    let last_modified = LastModified::new(mtime);
    Ok(Lookup::File(Rc::new(OpenFile { file, len, mtime, etag, last_modified, small })))
}

/// A regular file's length, modification time and entity-tag, from its
/// metadata: one definition for the static files and a handler's file
/// replies, so both send the same validators for the same file. A file
/// system without modification times gives the epoch.
pub(crate) fn validators(meta: &Metadata) -> (u64, SystemTime, ETag) {
    let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let len = meta.len();
    (len, mtime, ETag::new(mtime, len))
}
