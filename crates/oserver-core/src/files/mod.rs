//! Files beneath the root: turning a target into a safe relative path,
//! opening it without leaving the root, the per-loop open-file cache and
//! directory listings.

pub(crate) mod autoindex;
pub(crate) mod cache;
pub(crate) mod fs;
pub(crate) mod path;
