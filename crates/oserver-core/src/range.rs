//! Range and If-Range (RFC 9110 section 14). INTERFACE STUB: filled by the http-features helper.

/// What a Range header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// Send the whole representation (no Range, malformed Range, or several ranges).
    Full,
    /// Send bytes `start..=end` (end already clipped to len-1) with 206.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Interpret a Range header value against a length.
pub fn parse_range(value: &[u8], len: u64) -> RangeRequest {
    let _ = (value, len);
    todo!()
}
