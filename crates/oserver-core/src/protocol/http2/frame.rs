//! HTTP/2 frames (RFC 9113 section 4 and 6): the 9-byte frame header, the
//! frame types and flags, error codes, and the writers for the frames this
//! server sends. Pure byte work: no state, no I/O.

/// The client connection preface (RFC 9113 3.4).
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Its first line: enough to tell an HTTP/2 client from an HTTP/1 one (an
/// HTTP/1 head cannot be complete before this many bytes).
pub(crate) const PREFACE_LINE: &[u8] = b"PRI * HTTP/2.0\r\n";

/// Bytes in a frame header.
pub(crate) const HEAD_LEN: usize = 9;

/// The frame size both sides start with, and the largest this server
/// accepts (it never raises SETTINGS_MAX_FRAME_SIZE: a bigger frame only
/// means a bigger buffer per connection).
pub(crate) const DEFAULT_MAX_FRAME: u32 = 16_384;

/// The largest frame size a peer may announce (2^24 - 1).
pub(crate) const MAX_FRAME_LIMIT: u32 = (1 << 24) - 1;

/// The window every stream and the connection start with (RFC 9113 6.9.2).
pub(crate) const DEFAULT_WINDOW: i64 = 65_535;

/// The largest a flow-control window may grow (2^31 - 1).
pub(crate) const MAX_WINDOW: i64 = (1 << 31) - 1;

pub(crate) const DATA: u8 = 0x0;
pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const PRIORITY: u8 = 0x2;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const SETTINGS: u8 = 0x4;
pub(crate) const PUSH_PROMISE: u8 = 0x5;
pub(crate) const PING: u8 = 0x6;
pub(crate) const GOAWAY: u8 = 0x7;
pub(crate) const WINDOW_UPDATE: u8 = 0x8;
pub(crate) const CONTINUATION: u8 = 0x9;

pub(crate) const END_STREAM: u8 = 0x1;
/// SETTINGS and PING.
pub(crate) const ACK: u8 = 0x1;
pub(crate) const END_HEADERS: u8 = 0x4;
pub(crate) const PADDED: u8 = 0x8;
pub(crate) const PRIORITY_FLAG: u8 = 0x20;

pub(crate) const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub(crate) const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub(crate) const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub(crate) const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub(crate) const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub(crate) const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Error codes (RFC 9113 section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum ErrorCode {
    NoError = 0x0,
    Protocol = 0x1,
    Internal = 0x2,
    FlowControl = 0x3,
    StreamClosed = 0x5,
    FrameSize = 0x6,
    RefusedStream = 0x7,
    Compression = 0x9,
    EnhanceYourCalm = 0xb,
}

/// A connection error: GOAWAY with this code, then close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnError {
    pub code: ErrorCode,
    /// For the debug log.
    pub why: &'static str,
}

impl ConnError {
    pub(crate) fn new(code: ErrorCode, why: &'static str) -> ConnError {
        ConnError { code, why }
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub len: u32,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// The header at the start of `b` (at least HEAD_LEN bytes). The
    /// reserved bit of the stream id is ignored, as RFC 9113 4.1 says.
    pub(crate) fn parse(b: &[u8]) -> Head {
        Head {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    pub(crate) fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A frame header's bytes.
pub(crate) fn head_bytes(len: usize, kind: u8, flags: u8, stream: u32) -> [u8; HEAD_LEN] {
    debug_assert!(len <= MAX_FRAME_LIMIT as usize);
    let l = (len as u32).to_be_bytes();
    let s = (stream & 0x7fff_ffff).to_be_bytes();
    [l[1], l[2], l[3], kind, flags, s[0], s[1], s[2], s[3]]
}

/// Append a frame header.
pub(crate) fn put_head(out: &mut Vec<u8>, len: usize, kind: u8, flags: u8, stream: u32) {
    out.extend_from_slice(&head_bytes(len, kind, flags, stream));
}

/// Append a SETTINGS frame with these (id, value) pairs.
pub(crate) fn put_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, SETTINGS, 0, 0);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

pub(crate) fn put_settings_ack(out: &mut Vec<u8>) {
    put_head(out, 0, SETTINGS, ACK, 0);
}

pub(crate) fn put_ping_ack(out: &mut Vec<u8>, data: &[u8]) {
    put_head(out, 8, PING, ACK, 0);
    out.extend_from_slice(data);
}

pub(crate) fn put_rst(out: &mut Vec<u8>, stream: u32, code: ErrorCode) {
    put_head(out, 4, RST_STREAM, 0, stream);
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

pub(crate) fn put_goaway(out: &mut Vec<u8>, last_stream: u32, code: ErrorCode) {
    put_head(out, 8, GOAWAY, 0, 0);
    out.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    out.extend_from_slice(&(code as u32).to_be_bytes());
}

pub(crate) fn put_window_update(out: &mut Vec<u8>, stream: u32, increment: u32) {
    put_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.extend_from_slice(&(increment & 0x7fff_ffff).to_be_bytes());
}

/// A frame's payload without its padding (DATA and HEADERS with PADDED):
/// the pad length byte is dropped, and the padding after the content. A pad
/// length that reaches past the payload is a connection error.
pub(crate) fn unpad<'a>(head: &Head, payload: &'a [u8]) -> Result<&'a [u8], ConnError> {
    if !head.has(PADDED) {
        return Ok(payload);
    }
    let Some((&pad, rest)) = payload.split_first() else {
        return Err(ConnError::new(ErrorCode::FrameSize, "padded frame without a pad length"));
    };
    let pad = pad as usize;
    if pad > rest.len() {
        return Err(ConnError::new(ErrorCode::Protocol, "padding longer than the frame"));
    }
    Ok(&rest[..rest.len() - pad])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_round_trips_and_ignores_the_reserved_bit() {
        let mut out = Vec::new();
        put_head(&mut out, 0x01_02_03, HEADERS, END_HEADERS | END_STREAM, 7);
        assert_eq!(out, [1, 2, 3, 1, 5, 0, 0, 0, 7]);
        let h = Head::parse(&out);
        assert_eq!(h, Head { len: 0x01_02_03, kind: HEADERS, flags: 5, stream: 7 });
        out[5] |= 0x80;
        assert_eq!(Head::parse(&out).stream, 7);
    }

    #[test]
    fn unpad_drops_padding_and_refuses_too_much() {
        let h = Head { len: 5, kind: DATA, flags: PADDED, stream: 1 };
        assert_eq!(unpad(&h, &[2, b'a', b'b', 0, 0]).unwrap(), b"ab");
        assert_eq!(unpad(&h, &[4, b'a', 0, 0]).unwrap_err().code, ErrorCode::Protocol);
        assert_eq!(unpad(&h, &[]).unwrap_err().code, ErrorCode::FrameSize);
        let plain = Head { flags: 0, ..h };
        assert_eq!(unpad(&plain, b"xyz").unwrap(), b"xyz");
    }

    #[test]
    fn control_frames_are_well_formed() {
        let mut out = Vec::new();
        put_goaway(&mut out, 9, ErrorCode::EnhanceYourCalm);
        assert_eq!(Head::parse(&out), Head { len: 8, kind: GOAWAY, flags: 0, stream: 0 });
        assert_eq!(&out[9..], &[0, 0, 0, 9, 0, 0, 0, 0xb]);
        out.clear();
        put_settings(&mut out, &[(SETTINGS_MAX_CONCURRENT_STREAMS, 100)]);
        assert_eq!(&out[..], &[0, 0, 6, SETTINGS, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
    }
}
