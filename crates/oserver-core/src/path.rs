//! Request target to a safe path beneath the root.
//!
//! INTERFACE STUB: the paths helper fills this in.

/// Why a target cannot be mapped to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Malformed target: bad escape, `%00`, not origin- or absolute-form (400).
    BadRequest(&'static str),
    /// The path climbs above the root (answered 403... or 400; see module docs).
    Escapes,
}

/// A target split into its parts. Ranges index the original target bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'t> {
    /// The path part as sent (still percent-encoded), starting with `/`.
    pub raw_path: &'t [u8],
    /// The query, without its `?`, if any.
    pub query: Option<&'t [u8]>,
}

/// The resolved path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The target's path ended in `/` (after resolution).
    pub trailing_slash: bool,
    /// Some segment starts with `.` outside `/.well-known/`.
    pub hidden: bool,
}

/// Split an origin-form (`/p?q`) or absolute-form (`http://h/p?q`) target;
/// drops any fragment.
pub fn split_target(target: &[u8]) -> Result<Target<'_>, PathError> {
    let _ = target;
    todo!()
}

/// Decode `%XX` once and resolve `.`/`..`/`//` segments of `raw_path`, writing
/// the result into `out` (cleared first) as a *relative* path without leading
/// slash (empty for the root) and without trailing slash.
pub fn resolve(raw_path: &[u8], out: &mut Vec<u8>) -> Result<Resolved, PathError> {
    let _ = (raw_path, out);
    todo!()
}
