//! A raw HTTP/2 client for the end-to-end tests: frames written by hand, so a
//! test can send what no real client would (a flood, a bad frame, a window
//! that never opens) and see every frame the server answers with.
//!
//! Requests are HPACK-encoded by hand (static-table references and literals
//! without Huffman); the server's header blocks are decoded with
//! `loona-hpack`. Every frame received is checked against what the client
//! announced: no frame over its SETTINGS_MAX_FRAME_SIZE (16384 unless a
//! test raises it) and no DATA beyond the stream's or the connection's
//! flow-control window. A server that breaks either fails the
//! test at once, with the frame trace.
// Not every test uses every helper.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use oserver_core::rustls;

use crate::support::{connect, End};

/// What a client sends first on an HTTP/2 connection (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The largest frame payload either side may send before SETTINGS raise it.
pub const MAX_FRAME: usize = 16_384;

/// Flow-control windows start at this size (connection and streams).
pub const DEFAULT_WINDOW: u32 = 65_535;

/// Frame types (RFC 9113 §6).
pub mod kind {
    pub const DATA: u8 = 0x0;
    pub const HEADERS: u8 = 0x1;
    pub const PRIORITY: u8 = 0x2;
    pub const RST_STREAM: u8 = 0x3;
    pub const SETTINGS: u8 = 0x4;
    pub const PUSH_PROMISE: u8 = 0x5;
    pub const PING: u8 = 0x6;
    pub const GOAWAY: u8 = 0x7;
    pub const WINDOW_UPDATE: u8 = 0x8;
    pub const CONTINUATION: u8 = 0x9;
}

/// Frame flags.
pub mod flag {
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS and PING.
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;
}

/// Error codes (RFC 9113 §7).
pub mod code {
    pub const NO_ERROR: u32 = 0x0;
    pub const PROTOCOL_ERROR: u32 = 0x1;
    pub const INTERNAL_ERROR: u32 = 0x2;
    pub const FLOW_CONTROL_ERROR: u32 = 0x3;
    pub const STREAM_CLOSED: u32 = 0x5;
    pub const FRAME_SIZE_ERROR: u32 = 0x6;
    pub const REFUSED_STREAM: u32 = 0x7;
    pub const CANCEL: u32 = 0x8;
    pub const COMPRESSION_ERROR: u32 = 0x9;
    pub const ENHANCE_YOUR_CALM: u32 = 0xb;
}

/// SETTINGS identifiers.
pub mod setting {
    pub const HEADER_TABLE_SIZE: u16 = 0x1;
    pub const ENABLE_PUSH: u16 = 0x2;
    pub const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
    pub const MAX_FRAME_SIZE: u16 = 0x5;
    pub const MAX_HEADER_LIST_SIZE: u16 = 0x6;
}

fn kind_name(k: u8) -> String {
    let names = [
        "DATA",
        "HEADERS",
        "PRIORITY",
        "RST_STREAM",
        "SETTINGS",
        "PUSH_PROMISE",
        "PING",
        "GOAWAY",
        "WINDOW_UPDATE",
        "CONTINUATION",
    ];
    names.get(k as usize).map_or_else(|| format!("TYPE_{k:#x}"), |n| n.to_string())
}

/// The name of an error code, for traces and messages.
pub fn code_name(c: u32) -> String {
    let names = [
        "NO_ERROR",
        "PROTOCOL_ERROR",
        "INTERNAL_ERROR",
        "FLOW_CONTROL_ERROR",
        "SETTINGS_TIMEOUT",
        "STREAM_CLOSED",
        "FRAME_SIZE_ERROR",
        "REFUSED_STREAM",
        "CANCEL",
        "COMPRESSION_ERROR",
        "CONNECT_ERROR",
        "ENHANCE_YOUR_CALM",
        "INADEQUATE_SECURITY",
        "HTTP_1_1_REQUIRED",
    ];
    match names.get(c as usize) {
        Some(n) => format!("{n}({c:#x})"),
        None => format!("{c:#x}"),
    }
}

/// One frame: the 9-byte header's fields and the payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(kind: u8, flags: u8, stream: u32, payload: impl Into<Vec<u8>>) -> Frame {
        Frame { kind, flags, stream, payload: payload.into() }
    }

    /// The frame on the wire: 24-bit length, type, flags, 31-bit stream id,
    /// payload.
    pub fn bytes(&self) -> Vec<u8> {
        let len = self.payload.len();
        assert!(len < 1 << 24, "a frame payload of {len} bytes does not fit the length field");
        let mut out = Vec::with_capacity(9 + len);
        out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
        out.push(self.kind);
        out.push(self.flags);
        out.extend_from_slice(&(self.stream & 0x7fff_ffff).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Parse one frame at the start of `buf`: the frame and the bytes used,
    /// or None while incomplete.
    pub fn parse(buf: &[u8]) -> Option<(Frame, usize)> {
        if buf.len() < 9 {
            return None;
        }
        let len = u32::from_be_bytes([0, buf[0], buf[1], buf[2]]) as usize;
        let payload = buf.get(9..9 + len)?;
        let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
        Some((Frame::new(buf[3], buf[4], stream, payload), 9 + len))
    }

    pub fn has(&self, f: u8) -> bool {
        self.flags & f == f
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b = self.payload.get(at..at + 4)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The error code of a RST_STREAM or GOAWAY.
    pub fn error_code(&self) -> Option<u32> {
        match self.kind {
            kind::RST_STREAM => self.u32_at(0),
            kind::GOAWAY => self.u32_at(4),
            _ => None,
        }
    }

    /// The last stream id of a GOAWAY.
    pub fn last_stream(&self) -> Option<u32> {
        (self.kind == kind::GOAWAY).then(|| self.u32_at(0)).flatten().map(|v| v & 0x7fff_ffff)
    }

    /// The increment of a WINDOW_UPDATE.
    pub fn increment(&self) -> Option<u32> {
        (self.kind == kind::WINDOW_UPDATE).then(|| self.u32_at(0)).flatten().map(|v| v & 0x7fff_ffff)
    }

    /// The (identifier, value) pairs of a SETTINGS frame.
    pub fn settings(&self) -> Vec<(u16, u32)> {
        self.payload
            .chunks_exact(6)
            .map(|c| (u16::from_be_bytes([c[0], c[1]]), u32::from_be_bytes([c[2], c[3], c[4], c[5]])))
            .collect()
    }

    /// Whether this is a GOAWAY with error code `c`.
    pub fn is_goaway(&self, c: u32) -> bool {
        self.kind == kind::GOAWAY && self.error_code() == Some(c)
    }
}

impl fmt::Debug for Frame {
    /// One line: type, stream, flags, length, and what the type carries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} s={} flags={:#x} len={}",
            kind_name(self.kind),
            self.stream,
            self.flags,
            self.payload.len()
        )?;
        match self.kind {
            kind::RST_STREAM => write!(f, " {}", code_name(self.error_code().unwrap_or(u32::MAX))),
            kind::GOAWAY => {
                let debug = String::from_utf8_lossy(self.payload.get(8..).unwrap_or_default());
                write!(
                    f,
                    " last={} {} {debug:?}",
                    self.last_stream().unwrap_or(u32::MAX),
                    code_name(self.error_code().unwrap_or(u32::MAX))
                )
            }
            kind::SETTINGS => write!(f, " {:?}", self.settings()),
            kind::WINDOW_UPDATE => write!(f, " +{}", self.increment().unwrap_or(u32::MAX)),
            kind::PING => write!(f, " {:02x?}", self.payload),
            _ => Ok(()),
        }
    }
}

// ------------------------------------------------------------ frame makers

pub fn settings(values: &[(u16, u32)]) -> Frame {
    let mut p = Vec::new();
    for (id, v) in values {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    Frame::new(kind::SETTINGS, 0, 0, p)
}

pub fn settings_ack() -> Frame {
    Frame::new(kind::SETTINGS, flag::ACK, 0, Vec::new())
}

/// HEADERS with the whole `block` (END_HEADERS) and END_STREAM if `end_stream`.
pub fn headers(stream: u32, block: Vec<u8>, end_stream: bool) -> Frame {
    let flags = flag::END_HEADERS | if end_stream { flag::END_STREAM } else { 0 };
    Frame::new(kind::HEADERS, flags, stream, block)
}

pub fn continuation(stream: u32, block: Vec<u8>, end_headers: bool) -> Frame {
    Frame::new(kind::CONTINUATION, if end_headers { flag::END_HEADERS } else { 0 }, stream, block)
}

pub fn data(stream: u32, bytes: &[u8], end_stream: bool) -> Frame {
    Frame::new(kind::DATA, if end_stream { flag::END_STREAM } else { 0 }, stream, bytes)
}

pub fn rst_stream(stream: u32, error: u32) -> Frame {
    Frame::new(kind::RST_STREAM, 0, stream, error.to_be_bytes())
}

pub fn ping(opaque: [u8; 8]) -> Frame {
    Frame::new(kind::PING, 0, 0, opaque)
}

pub fn window_update(stream: u32, increment: u32) -> Frame {
    Frame::new(kind::WINDOW_UPDATE, 0, stream, increment.to_be_bytes())
}

pub fn goaway(last: u32, error: u32) -> Frame {
    let mut p = last.to_be_bytes().to_vec();
    p.extend_from_slice(&error.to_be_bytes());
    Frame::new(kind::GOAWAY, 0, 0, p)
}

// ---------------------------------------------------------- HPACK encoding

/// HPACK by hand (RFC 7541): no Huffman, no dynamic table unless a test
/// asks for it.
pub mod hpack {
    /// An integer with an `n`-bit prefix; `high` holds the bits above it.
    pub fn int(n: u8, high: u8, value: usize, out: &mut Vec<u8>) {
        let max = (1usize << n) - 1;
        if value < max {
            out.push(high | value as u8);
            return;
        }
        out.push(high | max as u8);
        let mut rest = value - max;
        while rest >= 128 {
            out.push((rest % 128) as u8 | 0x80);
            rest /= 128;
        }
        out.push(rest as u8);
    }

    /// A string literal, not Huffman-coded.
    pub fn string(s: &[u8], out: &mut Vec<u8>) {
        int(7, 0, s.len(), out);
        out.extend_from_slice(s);
    }

    /// Literal header field without indexing, new name (0x00).
    pub fn literal(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = vec![0x00];
        string(name.as_bytes(), &mut out);
        string(value, &mut out);
        out
    }

    /// Literal header field without indexing, name from the table entry
    /// `index` (4-bit prefix, high bits 0000).
    pub fn literal_name(index: usize, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        int(4, 0x00, index, &mut out);
        string(value, &mut out);
        out
    }

    /// Literal header field with incremental indexing, new name (0x40): the
    /// field goes into the dynamic table.
    pub fn literal_indexed(name: &str, value: &[u8]) -> Vec<u8> {
        let mut out = vec![0x40];
        string(name.as_bytes(), &mut out);
        string(value, &mut out);
        out
    }

    /// Indexed header field (a table entry by number).
    pub fn indexed(index: usize) -> Vec<u8> {
        let mut out = Vec::new();
        int(7, 0x80, index, &mut out);
        out
    }

    /// A request's header block: the pseudo-headers (static-table entries
    /// where one matches exactly, else a literal with the static name), then
    /// `extra` as literals with new (lowercase) names.
    pub fn request(method: &str, scheme: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        match method {
            "GET" => out.push(0x82),
            "POST" => out.push(0x83),
            m => out.extend(literal_name(2, m.as_bytes())),
        }
        match scheme {
            "http" => out.push(0x86),
            "https" => out.push(0x87),
            s => out.extend(literal_name(6, s.as_bytes())),
        }
        match path {
            "/" => out.push(0x84),
            p => out.extend(literal_name(4, p.as_bytes())),
        }
        out.extend(literal_name(1, b"localhost"));
        for (name, value) in extra {
            out.extend(literal(name, value.as_bytes()));
        }
        out
    }
}

// ------------------------------------------------------------- the client

/// A socket whose reads can be bounded: plain TCP, or TLS over TCP.
pub trait Io: Read + Write {
    fn set_read_limit(&mut self, left: Duration);
    fn tcp(&self) -> &TcpStream;
}

impl Io for TcpStream {
    fn set_read_limit(&mut self, left: Duration) {
        let _ = self.set_read_timeout(Some(left.max(Duration::from_millis(1))));
    }
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Io for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn set_read_limit(&mut self, left: Duration) {
        let _ = self.sock.set_read_timeout(Some(left.max(Duration::from_millis(1))));
    }
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// What the client saw of one stream.
#[derive(Debug, Default)]
pub struct Stream {
    /// Decoded header blocks, in order (the response head first).
    pub blocks: Vec<Vec<(String, String)>>,
    pub data: Vec<u8>,
    /// Payload length of each DATA frame.
    pub data_frames: Vec<usize>,
    /// The stream's flow-control window as the client counts it.
    pub window: i64,
    /// The server's window for this stream: what the client may send.
    pub send_window: i64,
    /// END_STREAM received.
    pub ended: bool,
    /// The error code of a RST_STREAM received.
    pub reset: Option<u32>,
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// Every field of the response head but the pseudo-headers, in order.
    pub headers: Vec<(String, String)>,
    /// The whole head as decoded, pseudo-headers included.
    pub raw_head: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub data_frames: Vec<usize>,
}

impl Reply {
    /// The first value of `name` (exact: HTTP/2 names are lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Lines of trace kept (the flood tests send thousands of frames).
const TRACE_LINES: usize = 80;

/// One HTTP/2 connection from the client side.
pub struct H2<S: Io = TcpStream> {
    io: S,
    buf: Vec<u8>,
    decoder: loona_hpack::Decoder<'static>,
    /// A header block still waiting for END_HEADERS: stream, END_STREAM, bytes.
    partial: Option<(u32, bool, Vec<u8>)>,
    pub streams: HashMap<u32, Stream>,
    /// The first SETTINGS frame the server sent.
    pub server_settings: Vec<(u16, u32)>,
    /// SETTINGS ACKs received (for the client's SETTINGS).
    pub settings_acks: usize,
    /// Every GOAWAY received, in order.
    pub goaways: Vec<Frame>,
    /// PING ACKs received, by payload.
    pub ping_acks: Vec<Vec<u8>>,
    initial_window: u32,
    /// The client's SETTINGS_MAX_FRAME_SIZE.
    max_frame: usize,
    conn_window: i64,
    /// The server's connection window and SETTINGS_INITIAL_WINDOW_SIZE:
    /// what the client may send.
    peer_conn_window: i64,
    peer_initial_window: u32,
    /// Send WINDOW_UPDATEs (connection and stream) for each DATA frame
    /// received, so downloads of any size run. Off for flow-control tests.
    pub auto_window: bool,
    next_stream: u32,
    trace: VecDeque<String>,
    counts: BTreeMap<String, usize>,
    /// Whether the stream ended (EOF or reset), once seen.
    pub end: Option<End>,
}

impl H2<TcpStream> {
    /// Connect over plain TCP (5 s timeouts, TCP_NODELAY); nothing sent yet.
    pub fn connect(addr: SocketAddr) -> H2<TcpStream> {
        H2::over(connect(addr))
    }

    /// Connect, send the preface and `settings`, read the server's SETTINGS
    /// and acknowledge them.
    pub fn start(addr: SocketAddr, settings: &[(u16, u32)]) -> H2<TcpStream> {
        let mut h2 = H2::connect(addr);
        h2.handshake(settings);
        h2
    }
}

impl<S: Io> H2<S> {
    /// A client over an open connection; nothing sent yet.
    pub fn over(io: S) -> H2<S> {
        H2 {
            io,
            buf: Vec::new(),
            decoder: loona_hpack::Decoder::new(),
            partial: None,
            streams: HashMap::new(),
            server_settings: Vec::new(),
            settings_acks: 0,
            goaways: Vec::new(),
            ping_acks: Vec::new(),
            initial_window: DEFAULT_WINDOW,
            max_frame: MAX_FRAME,
            conn_window: DEFAULT_WINDOW as i64,
            peer_conn_window: DEFAULT_WINDOW as i64,
            peer_initial_window: DEFAULT_WINDOW,
            auto_window: true,
            next_stream: 1,
            trace: VecDeque::new(),
            counts: BTreeMap::new(),
            end: None,
        }
    }

    /// The connection under the client, for writing past it (a flood).
    pub fn io_mut(&mut self) -> &mut S {
        &mut self.io
    }

    /// The socket.
    pub fn tcp(&self) -> &TcpStream {
        self.io.tcp()
    }

    /// The client's port (to find the server's end in the kernel's tables).
    pub fn local_port(&self) -> u16 {
        self.tcp().local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Send the preface and `settings`; read the server's SETTINGS, which
    /// must come first, and acknowledge them.
    pub fn handshake(&mut self, settings: &[(u16, u32)]) {
        self.send_preface(settings);
        let first = self.next_frame(Duration::from_secs(5)).unwrap_or_else(|end| {
            panic!("no frame from the server after the preface ({end:?}){}", self.trace())
        });
        assert!(
            first.kind == kind::SETTINGS && !first.has(flag::ACK),
            "the server's first frame is not SETTINGS: {first:?}{}",
            self.trace()
        );
    }

    /// Send the preface and `settings` and nothing else.
    pub fn send_preface(&mut self, settings: &[(u16, u32)]) {
        self.note("->", "preface".into());
        self.send_raw(PREFACE);
        self.send(&crate::h2wire::settings(settings));
    }

    fn note(&mut self, dir: &str, line: String) {
        if self.trace.len() == TRACE_LINES {
            self.trace.pop_front();
        }
        self.trace.push_back(format!("{dir} {line}"));
    }

    fn count(&mut self, dir: &str, f: &Frame) {
        *self.counts.entry(format!("{dir} {}", kind_name(f.kind))).or_default() += 1;
    }

    /// The frames sent and received so far: counts by type and the last
    /// lines, for failure messages.
    pub fn trace(&self) -> String {
        let counts: Vec<String> = self.counts.iter().map(|(k, n)| format!("{k} x{n}")).collect();
        let mut s = format!("\nframe counts: {}\nlast frames:\n", counts.join(", "));
        for line in &self.trace {
            s.push_str("  ");
            s.push_str(line);
            s.push('\n');
        }
        s
    }

    /// Write raw bytes (panics on error).
    pub fn send_raw(&mut self, bytes: &[u8]) {
        if let Err(e) = self.io.write_all(bytes).and_then(|_| self.io.flush()) {
            panic!("send: {e}{}", self.trace());
        }
    }

    /// Send a frame (panics on error), keeping the flow-control count for
    /// WINDOW_UPDATEs.
    pub fn send(&mut self, f: &Frame) {
        if let Err(e) = self.try_send(std::slice::from_ref(f)) {
            panic!("send {f:?}: {e}{}", self.trace());
        }
    }

    /// Send frames in one write; the error if the write fails (a server
    /// may close while a flood is being written).
    pub fn try_send(&mut self, frames: &[Frame]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for f in frames {
            self.count("->", f);
            self.note("->", format!("{f:?}"));
            bytes.extend(f.bytes());
            self.sent(f);
        }
        self.io.write_all(&bytes)?;
        self.io.flush()
    }

    fn sent(&mut self, f: &Frame) {
        match f.kind {
            kind::HEADERS => {
                self.stream(f.stream);
                if f.stream >= self.next_stream {
                    self.next_stream = f.stream + 2;
                }
            }
            // The server may apply new values as soon as it reads them; the
            // client counts with them from the moment it sends them (it
            // only ever raises the window after the preface).
            kind::SETTINGS if !f.has(flag::ACK) => {
                for (id, v) in f.settings() {
                    match id {
                        setting::INITIAL_WINDOW_SIZE => {
                            let delta = v as i64 - self.initial_window as i64;
                            self.streams.values_mut().for_each(|s| s.window += delta);
                            self.initial_window = v;
                        }
                        setting::MAX_FRAME_SIZE => self.max_frame = v as usize,
                        _ => {}
                    }
                }
            }
            kind::WINDOW_UPDATE => {
                let inc = f.increment().unwrap_or(0) as i64;
                if f.stream == 0 {
                    self.conn_window += inc;
                } else if let Some(s) = self.streams.get_mut(&f.stream) {
                    s.window += inc;
                }
            }
            kind::DATA => {
                let len = f.payload.len() as i64;
                self.peer_conn_window -= len;
                if let Some(s) = self.streams.get_mut(&f.stream) {
                    s.send_window -= len;
                }
            }
            _ => {}
        }
    }

    /// The next client stream id (odd, above every one used).
    pub fn next_stream_id(&self) -> u32 {
        self.next_stream
    }

    /// Send a request without a body on the next stream; its id.
    pub fn request(&mut self, method: &str, path: &str, extra: &[(&str, &str)]) -> u32 {
        let id = self.next_stream;
        self.send(&headers(id, hpack::request(method, "http", path, extra), true));
        id
    }

    /// GET `path` and read the whole response.
    pub fn get(&mut self, path: &str) -> Reply {
        let id = self.request("GET", path, &[]);
        self.response(id)
    }

    /// Read frames until stream `id` has ended; its response. Panics with
    /// the trace on a reset, a close or a 5 s wait.
    pub fn response(&mut self, id: u32) -> Reply {
        self.try_response(id, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("stream {id}: {e}{}", self.trace()))
    }

    /// Read frames until stream `id` has ended (or was reset, or the
    /// connection ended, or `timeout` passed: the error says which).
    pub fn try_response(&mut self, id: u32, timeout: Duration) -> Result<Reply, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.streams.get(&id) {
                if let Some(c) = s.reset {
                    return Err(format!("reset with {}", code_name(c)));
                }
                if s.ended {
                    return self.reply(id);
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(end) = self.next_frame(left) {
                return Err(format!("no complete response ({end:?})"));
            }
        }
    }

    /// What stream `id` received so far as a reply (its first header block
    /// must be there).
    pub fn reply(&self, id: u32) -> Result<Reply, String> {
        let s = self.streams.get(&id).ok_or("no such stream")?;
        let head = s.blocks.first().ok_or("no response head")?;
        let status = head
            .iter()
            .find(|(n, _)| n == ":status")
            .and_then(|(_, v)| v.parse().ok())
            .ok_or_else(|| format!("no :status in {head:?}"))?;
        Ok(Reply {
            status,
            headers: head.iter().filter(|(n, _)| !n.starts_with(':')).cloned().collect(),
            raw_head: head.clone(),
            body: s.data.clone(),
            data_frames: s.data_frames.clone(),
        })
    }

    /// Send `body` on stream `id` in DATA frames within the server's
    /// windows and frame size, reading frames (and so WINDOW_UPDATEs) when
    /// they are shut; END_STREAM on the last frame if `end_stream`. An error
    /// says how far it got: the stream was reset, the connection ended, or
    /// no window opened for `timeout`.
    pub fn send_body(
        &mut self,
        id: u32,
        body: &[u8],
        end_stream: bool,
        timeout: Duration,
    ) -> Result<(), String> {
        let max = self.server_setting(setting::MAX_FRAME_SIZE).unwrap_or(MAX_FRAME as u32) as i64;
        let mut at = 0;
        let mut waiting_since = Instant::now();
        loop {
            if let Some(c) = self.streams.get(&id).and_then(|s| s.reset) {
                return Err(format!("reset with {} after {at} of {} bytes", code_name(c), body.len()));
            }
            let left = (body.len() - at) as i64;
            let room =
                left.min(max).min(self.peer_conn_window).min(self.stream(id).send_window).max(0) as usize;
            if room > 0 || left == 0 {
                let last = room as i64 == left;
                self.send(&data(id, &body[at..at + room], end_stream && last));
                at += room;
                waiting_since = Instant::now();
                if last {
                    return Ok(());
                }
                continue;
            }
            let wait = (waiting_since + timeout).saturating_duration_since(Instant::now());
            if let Err(end) = self.next_frame(wait) {
                return Err(format!("{end:?} with the windows shut after {at} of {} bytes", body.len()));
            }
        }
    }

    /// Read frames until stream `id` has received `n` body bytes (panics
    /// with the trace after 5 s, or if the connection ends first).
    pub fn wait_data(&mut self, id: u32, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.streams.get(&id).map_or(0, |s| s.data.len()) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(end) = self.next_frame(left) {
                let got = self.streams.get(&id).map_or(0, |s| s.data.len());
                panic!("stream {id}: {got} of {n} body bytes ({end:?}){}", self.trace());
            }
        }
    }

    /// Read frames until one satisfies `want` (returned), the connection
    /// ends, or `timeout` passes (the way it ended).
    pub fn wait_for(
        &mut self,
        timeout: Duration,
        mut want: impl FnMut(&Frame) -> bool,
    ) -> Result<Frame, End> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let f = self.next_frame(left)?;
            if want(&f) {
                return Ok(f);
            }
        }
    }

    /// Read until a GOAWAY arrives (panics with the trace otherwise).
    pub fn expect_goaway(&mut self, timeout: Duration) -> Frame {
        if let Some(g) = self.goaways.last() {
            return g.clone();
        }
        self.wait_for(timeout, |f| f.kind == kind::GOAWAY)
            .unwrap_or_else(|end| panic!("no GOAWAY ({end:?}){}", self.trace()))
    }

    /// Read (and check) every frame until the connection ends or `timeout`
    /// passes; how it ended.
    pub fn drain(&mut self, timeout: Duration) -> End {
        if let Some(end) = self.end {
            return end;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(end) = self.next_frame(left) {
                return end;
            }
        }
    }

    /// Read the next frame (at most `timeout`), check it and take it in.
    pub fn next_frame(&mut self, timeout: Duration) -> Result<Frame, End> {
        if let Some(end) = self.end {
            return Err(end);
        }
        let deadline = Instant::now() + timeout;
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            if let Some((f, used)) = Frame::parse(&self.buf) {
                self.buf.drain(..used);
                self.count("<-", &f);
                self.note("<-", format!("{f:?}"));
                self.absorb(&f);
                return Ok(f);
            }
            if self.buf.starts_with(b"HTTP/1.") {
                let line = self.buf.split(|&b| b == b'\r').next().unwrap_or_default();
                panic!("not HTTP/2: the server answered {:?}{}", String::from_utf8_lossy(line), self.trace());
            }
            // A frame header announcing more than the client allows is
            // refused before its payload arrives.
            if self.buf.len() >= 9 {
                let len = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
                assert!(
                    len <= self.max_frame,
                    "the server sent a frame of {len} bytes, over SETTINGS_MAX_FRAME_SIZE {} \
                     (header {:02x?}){}",
                    self.max_frame,
                    &self.buf[..9],
                    self.trace()
                );
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(End::Timeout);
            }
            self.io.set_read_limit(left);
            let end = match self.io.read(&mut chunk) {
                Ok(0) => End::Eof,
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => return Err(End::Timeout),
                    io::ErrorKind::UnexpectedEof => End::Eof,
                    io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe => End::Reset,
                    k => End::Other(k),
                },
            };
            let left_over = if self.buf.is_empty() {
                String::new()
            } else {
                format!(", {} bytes of a partial frame left", self.buf.len())
            };
            self.note("<-", format!("connection ended: {end:?}{left_over}"));
            self.end = Some(end);
            return Err(end);
        }
    }

    /// Bytes received that do not make a whole frame (an HTTP/1 answer, a
    /// cut frame).
    pub fn unparsed(&self) -> &[u8] {
        &self.buf
    }

    fn stream(&mut self, id: u32) -> &mut Stream {
        let window = self.initial_window as i64;
        let send_window = self.peer_initial_window as i64;
        self.streams.entry(id).or_insert_with(|| Stream { window, send_window, ..Default::default() })
    }

    /// Take in a received frame: check it against what the client allows,
    /// keep its content, answer SETTINGS and, with `auto_window`, DATA.
    fn absorb(&mut self, f: &Frame) {
        // A header block is one run of frames (RFC 9113 §6.10).
        if self.partial.is_some() && f.kind != kind::CONTINUATION {
            panic!("{f:?} inside a header block (CONTINUATION expected){}", self.trace());
        }
        if matches!(f.kind, kind::DATA | kind::HEADERS) {
            match self.streams.get(&f.stream) {
                None => panic!("{f:?} on a stream the client never opened{}", self.trace()),
                Some(s) if s.ended => panic!("{f:?} after the stream's END_STREAM{}", self.trace()),
                Some(_) => {}
            }
        }
        match f.kind {
            kind::DATA => {
                let len = f.payload.len() as i64;
                let mut body = &f.payload[..];
                if f.has(flag::PADDED) {
                    let pad = *body.first().unwrap_or(&0) as usize;
                    body = body.get(1..body.len().saturating_sub(pad)).unwrap_or_default();
                }
                let body = body.to_vec();
                self.conn_window -= len;
                let conn_window = self.conn_window;
                let s = self.stream(f.stream);
                s.window -= len;
                s.data.extend_from_slice(&body);
                s.data_frames.push(f.payload.len());
                s.ended |= f.has(flag::END_STREAM);
                let (stream_window, ended) = (s.window, s.ended);
                assert!(
                    stream_window >= 0 && conn_window >= 0,
                    "DATA beyond the flow-control window: stream {} window {stream_window}, connection window \
                     {conn_window}{}",
                    f.stream,
                    self.trace()
                );
                if self.auto_window && len > 0 {
                    let mut updates = vec![window_update(0, len as u32)];
                    if !ended {
                        updates.push(window_update(f.stream, len as u32));
                    }
                    // A server that has closed its side does not need them.
                    let _ = self.try_send(&updates);
                }
            }
            kind::HEADERS => {
                let mut block = &f.payload[..];
                if f.has(flag::PADDED) {
                    let pad = *block.first().unwrap_or(&0) as usize;
                    block = block.get(1..block.len().saturating_sub(pad)).unwrap_or_default();
                }
                if f.has(flag::PRIORITY) {
                    block = block.get(5..).unwrap_or_default();
                }
                let block = block.to_vec();
                self.partial = Some((f.stream, f.has(flag::END_STREAM), block));
                if f.has(flag::END_HEADERS) {
                    self.finish_block();
                }
            }
            kind::CONTINUATION => {
                match &mut self.partial {
                    Some((id, _, block)) if *id == f.stream => block.extend_from_slice(&f.payload),
                    _ => panic!("CONTINUATION without a header block in progress{}", self.trace()),
                }
                if f.has(flag::END_HEADERS) {
                    self.finish_block();
                }
            }
            kind::RST_STREAM => {
                let c = f.error_code().unwrap_or(u32::MAX);
                self.stream(f.stream).reset = Some(c);
            }
            kind::SETTINGS if f.has(flag::ACK) => self.settings_acks += 1,
            kind::SETTINGS => {
                if self.server_settings.is_empty() {
                    self.server_settings = f.settings();
                }
                for (id, v) in f.settings() {
                    if id == setting::INITIAL_WINDOW_SIZE {
                        let delta = v as i64 - self.peer_initial_window as i64;
                        self.streams.values_mut().for_each(|s| s.send_window += delta);
                        self.peer_initial_window = v;
                    }
                }
                let _ = self.try_send(&[settings_ack()]);
            }
            kind::PING if f.has(flag::ACK) => self.ping_acks.push(f.payload.clone()),
            kind::GOAWAY => self.goaways.push(f.clone()),
            kind::WINDOW_UPDATE => {
                let inc = f.increment().unwrap_or(0) as i64;
                if f.stream == 0 {
                    self.peer_conn_window += inc;
                } else {
                    self.stream(f.stream).send_window += inc;
                }
            }
            kind::PUSH_PROMISE => panic!("PUSH_PROMISE from the server{}", self.trace()),
            _ => {}
        }
    }

    fn finish_block(&mut self) {
        let Some((id, end_stream, block)) = self.partial.take() else {
            return;
        };
        let fields = match self.decoder.decode(&block) {
            Ok(fields) => fields,
            Err(e) => {
                panic!("the server's header block for stream {id} does not decode: {e:?}{}", self.trace())
            }
        };
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .map(|(n, v)| {
                (String::from_utf8_lossy(&n).into_owned(), String::from_utf8_lossy(&v).into_owned())
            })
            .collect();
        self.note("<-", format!("  head of s={id}: {fields:?}"));
        let s = self.stream(id);
        s.blocks.push(fields);
        s.ended |= end_stream;
    }

    /// The value of server setting `id`, if the server sent it.
    pub fn server_setting(&self, id: u16) -> Option<u32> {
        self.server_settings.iter().rev().find(|(i, _)| *i == id).map(|(_, v)| *v)
    }
}
