//! The HTTP/2 connection on its own: no event loop, no process. A real
//! loopback TCP pair stands in for the network, the client's frames are
//! written by hand, and time is passed in, so deadlines are checked exactly.

use std::io::Read;
use std::path::PathBuf;

use super::*;
use crate::protocol::test_support::{context, fixture_dir, loopback, send_all};
use crate::protocol::Ctx;
use crate::transport::wait_readable;

struct Harness {
    cx: Ctx,
    conn: Conn,
    client: std::net::TcpStream,
    now: Instant,
    settings: Settings,
    dir: PathBuf,
    got: Vec<u8>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A frame the client received.
#[derive(Debug)]
struct Got {
    head: Head,
    payload: Vec<u8>,
}

fn harness() -> Harness {
    let dir = fixture_dir("h2conn", 8 << 20);
    let settings = Settings::default();
    let cx = context(&dir, &settings);
    let (sock, peer, client) = loopback();
    let now = Instant::now();
    let io = Transport::new(sock, None).unwrap();
    let conn = Conn::new(io, peer, b"", now, &settings);
    let mut h = Harness { cx, conn, client, now, settings, dir, got: Vec::new() };
    let mut hello = frame::PREFACE.to_vec();
    frame::put_settings(&mut hello, &[]);
    h.send(&hello);
    assert_eq!(h.drive(), Step::Wait);
    let frames = h.frames();
    assert_eq!(frames[0].head.kind, frame::SETTINGS, "our SETTINGS first");
    assert!(frames.iter().any(|f| f.head.kind == frame::SETTINGS && f.head.has(frame::ACK)));
    h
}

/// A GET for `path` on stream `id`: :method GET, :scheme http, :path.
fn get(id: u32, path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04];
    block.push(path.len() as u8);
    block.extend_from_slice(path.as_bytes());
    let mut out = Vec::new();
    frame::put_head(&mut out, block.len(), frame::HEADERS, frame::END_HEADERS | frame::END_STREAM, id);
    out.extend_from_slice(&block);
    out
}

fn settings(pairs: &[(u16, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::put_settings(&mut out, pairs);
    out
}

impl Harness {
    /// The client sends `bytes`; once they have all arrived, the
    /// connection is told it is readable.
    fn send(&mut self, bytes: &[u8]) {
        send_all(&mut self.client, self.conn.fd(), bytes);
        self.conn.ready(true, false);
    }

    fn drive(&mut self) -> Step {
        let Ctx { h1, h2, exchange, draining } = &mut self.cx;
        self.conn.drive(&mut h1.inbuf, h2, exchange, *draining, self.now).unwrap()
    }

    /// Drive until the connection waits (or closes), as the loop would
    /// with the socket always writable.
    fn drive_out(&mut self) -> Step {
        for _ in 0..1000 {
            match self.drive() {
                Step::Yield => continue,
                s => return s,
            }
        }
        panic!("never waited");
    }

    /// Every whole frame the client can read now.
    fn frames(&mut self) -> Vec<Got> {
        std::thread::sleep(Duration::from_millis(20));
        let mut buf = [0u8; 65536];
        loop {
            match self.client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("client read: {e}"),
            }
        }
        let mut out = Vec::new();
        while self.got.len() >= frame::HEAD_LEN {
            let head = Head::parse(&self.got);
            let end = frame::HEAD_LEN + head.len as usize;
            if self.got.len() < end {
                break;
            }
            out.push(Got { head, payload: self.got[frame::HEAD_LEN..end].to_vec() });
            self.got.drain(..end);
        }
        out
    }
}

fn data_on(frames: &[Got], id: u32) -> usize {
    frames.iter().filter(|f| f.head.kind == frame::DATA && f.head.stream == id).map(|f| f.payload.len()).sum()
}

fn goaway_code(frames: &[Got]) -> Option<u32> {
    frames
        .iter()
        .find(|f| f.head.kind == frame::GOAWAY)
        .map(|f| u32::from_be_bytes(f.payload[4..8].try_into().unwrap()))
}

#[test]
fn a_small_file_leaves_as_headers_and_one_data_frame() {
    let mut h = harness();
    h.send(&get(1, "/a.txt"));
    assert_eq!(h.drive(), Step::Wait);
    let f = h.frames();
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!((f[0].head.kind, f[0].head.flags), (frame::HEADERS, frame::END_HEADERS));
    assert_eq!(f[0].payload[0], 0x88, ":status 200 from the static table");
    assert_eq!((f[1].head.kind, f[1].head.flags), (frame::DATA, frame::END_STREAM));
    assert_eq!(f[1].payload, b"hello");
}

#[test]
fn data_stays_within_the_stream_window_and_the_frame_size() {
    let mut h = harness();
    h.send(&settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 1000)]));
    h.send(&get(1, "/big.bin"));
    h.drive_out();
    let f = h.frames();
    assert_eq!(data_on(&f, 1), 1000, "only the stream's window: {f:?}");
    // Open it by 40,000: frames of at most 16,384 bytes.
    let mut wu = Vec::new();
    frame::put_window_update(&mut wu, 1, 40_000);
    h.send(&wu);
    h.drive_out();
    let f = h.frames();
    assert_eq!(data_on(&f, 1), 40_000);
    assert!(f.iter().all(|x| x.head.len <= frame::DEFAULT_MAX_FRAME));
    // The connection's window (65,535) is now what bounds it.
    let mut wu = Vec::new();
    frame::put_window_update(&mut wu, 1, 1 << 20);
    h.send(&wu);
    h.drive_out();
    assert_eq!(data_on(&h.frames(), 1), 65_535 - 41_000);
}

#[test]
fn streams_share_the_connection_round_robin() {
    let mut h = harness();
    let mut wu = Vec::new();
    frame::put_window_update(&mut wu, 0, 1 << 30);
    h.send(&wu);
    h.send(
        &[
            settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 1 << 30)]),
            get(1, "/big.bin"),
            get(3, "/big.bin"),
        ]
        .concat(),
    );
    // One turn: both streams get DATA, and the turn ends (Yield) long
    // before either 8 MiB body is sent.
    assert_eq!(h.drive(), Step::Yield);
    let f = h.frames();
    let (a, b) = (data_on(&f, 1), data_on(&f, 3));
    assert!(a > 0 && b > 0, "{a} {b}");
    assert!(a.abs_diff(b) <= OUT_BATCH, "one share apart at most: {a} {b}");
    assert!(a + b <= SEND_TURN + OUT_BATCH, "{a} {b}");
}

#[test]
fn one_turn_answers_a_bounded_number_of_requests() {
    let mut h = harness();
    let n = TURN_STREAMS * 2 + 10;
    let reqs: Vec<u8> = (0..n).flat_map(|i| get(2 * i + 1, "/a.txt")).collect();
    h.send(&reqs);
    let mut turns = 0;
    let mut answered = 0;
    loop {
        turns += 1;
        let step = h.drive();
        answered += h.frames().iter().filter(|f| f.head.kind == frame::HEADERS).count();
        if step == Step::Wait {
            break;
        }
        assert_eq!(step, Step::Yield);
        assert!(turns < 10);
    }
    assert_eq!(answered, n as usize);
    assert_eq!(turns, 3, "{n} requests, {TURN_STREAMS} a turn");
}

#[test]
fn streams_beyond_the_limit_are_refused() {
    let mut h = harness();
    // A window of 0: every answered stream stays open.
    h.send(&settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
    let reqs: Vec<u8> = (0..MAX_STREAMS as u32 + 1).flat_map(|i| get(2 * i + 1, "/big.bin")).collect();
    h.send(&reqs);
    h.drive_out();
    let f = h.frames();
    let last = 2 * MAX_STREAMS as u32 + 1;
    let rst: Vec<_> = f.iter().filter(|x| x.head.kind == frame::RST_STREAM).collect();
    assert_eq!(rst.len(), 1, "{rst:?}");
    assert_eq!(rst[0].head.stream, last);
    assert_eq!(rst[0].payload, (ErrorCode::RefusedStream as u32).to_be_bytes());
}

#[test]
fn rapid_reset_gets_enhance_your_calm() {
    let mut h = harness();
    h.send(&settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
    let mut flood = Vec::new();
    for i in 0..MAX_RESETS + 5 {
        flood.extend(get(2 * i + 1, "/big.bin"));
        frame::put_rst(&mut flood, 2 * i + 1, ErrorCode::NoError);
    }
    h.send(&flood);
    let mut step = Step::Yield;
    for _ in 0..10 {
        step = h.drive();
        if step != Step::Yield {
            break;
        }
    }
    assert_eq!(goaway_code(&h.frames()), Some(ErrorCode::EnhanceYourCalm as u32));
    assert_ne!(step, Step::Yield);
}

#[test]
fn endless_continuation_is_cut_off() {
    let mut h = harness();
    let mut flood = Vec::new();
    frame::put_head(&mut flood, 3, frame::HEADERS, 0, 1);
    flood.extend_from_slice(&[0x82, 0x86, 0x84]);
    let piece = [0x40u8; 16_000];
    for _ in 0..(h.settings.limits.max_header_bytes * BLOCK_FACTOR / piece.len() + 2) {
        frame::put_head(&mut flood, piece.len(), frame::CONTINUATION, 0, 1);
        flood.extend_from_slice(&piece);
    }
    h.send(&flood);
    h.drive_out();
    assert_eq!(goaway_code(&h.frames()), Some(ErrorCode::EnhanceYourCalm as u32));
}

#[test]
fn deadlines_follow_the_phase() {
    let s = Settings::default();
    let mut h = harness();
    // Idle with no stream: the keep-alive timeout.
    assert_eq!(h.conn.deadline(), h.now + s.keepalive_timeout);
    // A stream stalled on a shut window: the send timeout from its last
    // DATA, which PINGs do not move.
    h.send(&settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 0)]));
    h.send(&get(1, "/big.bin"));
    h.drive_out();
    let stalled = h.now;
    assert_eq!(h.conn.deadline(), stalled + s.send_timeout);
    h.now += Duration::from_secs(5);
    let mut ping = Vec::new();
    frame::put_head(&mut ping, 8, frame::PING, 0, 0);
    ping.extend_from_slice(b"12345678");
    h.send(&ping);
    h.drive_out();
    assert!(h.frames().iter().any(|f| f.head.kind == frame::PING && f.head.has(frame::ACK)));
    assert_eq!(h.conn.deadline(), stalled + s.send_timeout);
}

#[test]
fn a_drain_sends_goaway_and_lets_the_stream_finish() {
    let mut h = harness();
    h.send(&settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 100)]));
    h.send(&get(1, "/a.txt"));
    h.send(&get(3, "/big.bin"));
    h.drive_out();
    assert!(!h.conn.drain(h.now), "stream 3 is still sending");
    let f = h.frames();
    let goaway = f.iter().find(|f| f.head.kind == frame::GOAWAY).expect("GOAWAY");
    assert_eq!(&goaway.payload[..8], &[0, 0, 0, 3, 0, 0, 0, 0], "last stream 3, NO_ERROR");
    // A new stream after GOAWAY is ignored; stream 3 finishes, then close.
    h.send(&get(5, "/a.txt"));
    let mut wu = Vec::new();
    frame::put_window_update(&mut wu, 0, 1 << 30);
    frame::put_window_update(&mut wu, 3, 1 << 30);
    h.send(&wu);
    let mut got = data_on(&f, 3);
    for _ in 0..1000 {
        h.drive();
        let f = h.frames();
        assert!(f.iter().all(|x| x.head.stream != 5), "stream 5 was answered");
        got += data_on(&f, 3);
        if got == 8 << 20 {
            break;
        }
    }
    assert_eq!(got, 8 << 20, "stream 3 finished");
    // Then our side is shut, and the connection closes when the client's is.
    let mut end = [0u8; 16];
    assert_eq!(h.client.read(&mut end).unwrap(), 0, "end of stream after the last DATA");
    h.client.shutdown(std::net::Shutdown::Write).unwrap();
    wait_readable(h.conn.fd());
    h.conn.ready(true, true);
    assert_eq!(h.drive(), Step::Close);
}

#[test]
fn protocol_errors_close_with_their_code() {
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        // DATA on stream 0.
        (
            {
                let mut b = Vec::new();
                frame::put_head(&mut b, 1, frame::DATA, 0, 0);
                b.push(0);
                b
            },
            ErrorCode::Protocol,
        ),
        // HEADERS on an even stream.
        (get(2, "/a.txt"), ErrorCode::Protocol),
        // A frame larger than 16 KiB.
        (
            {
                let mut b = Vec::new();
                frame::put_head(&mut b, 20_000, frame::DATA, 0, 1);
                b.extend(std::iter::repeat(0).take(20_000));
                b
            },
            ErrorCode::FrameSize,
        ),
        // A window update of 0 on the connection.
        (
            {
                let mut b = Vec::new();
                frame::put_window_update(&mut b, 0, 0);
                b
            },
            ErrorCode::Protocol,
        ),
        // A bad HPACK block: index 70 with an empty dynamic table.
        (
            {
                let mut b = Vec::new();
                frame::put_head(&mut b, 1, frame::HEADERS, frame::END_HEADERS | frame::END_STREAM, 1);
                b.push(0x80 | 70);
                b
            },
            ErrorCode::Compression,
        ),
    ];
    for (bytes, code) in cases {
        let mut h = harness();
        h.send(&bytes);
        h.drive_out();
        assert_eq!(goaway_code(&h.frames()), Some(code as u32), "{:?}", &bytes[..9]);
    }
}

#[test]
fn an_idle_connection_keeps_no_buffer() {
    let mut h = harness();
    h.send(&get(1, "/a.txt"));
    h.drive_out();
    // A frame cut in two: the first part waits in the connection's buffer.
    let req = get(3, "/big.bin");
    h.send(&req[..5]);
    h.drive_out();
    assert!(h.conn.input.capacity() > 0);
    h.send(&req[5..]);
    h.send(&{
        let mut wu = Vec::new();
        frame::put_window_update(&mut wu, 0, 1 << 30);
        frame::put_window_update(&mut wu, 3, 1 << 30);
        wu
    });
    let mut got = 0;
    for _ in 0..10_000 {
        h.drive_out();
        got += data_on(&h.frames(), 3);
        if got == 8 << 20 {
            break;
        }
    }
    assert_eq!(got, 8 << 20);
    assert_eq!(h.drive_out(), Step::Wait);
    assert_eq!((h.conn.input.capacity(), h.conn.out.capacity(), h.conn.streams.capacity()), (0, 0, 0));
    eprintln!(
        "idle HTTP/2 connection: {} bytes boxed, a stream {} bytes",
        size_of::<Conn>(),
        size_of::<Stream>()
    );
}

/// Set the server socket's send buffer (the kernel doubles it, and caps it
/// at `net.core.wmem_max`), so the room a test sees does not hang on
/// autotuning.
fn set_sndbuf(h: &Harness, bytes: libc::c_int) {
    // SAFETY: the option reads one int through the pointer.
    let rc = unsafe {
        libc::setsockopt(
            h.conn.fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// Open the connection's window and stream `id`'s wide, and ask for the
/// 8 MiB file on it.
fn get_big_wide_open(h: &mut Harness, id: u32) {
    let mut req = settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 1 << 30)]);
    frame::put_window_update(&mut req, 0, 1 << 30);
    req.extend_from_slice(&get(id, "/big.bin"));
    h.send(&req);
}

#[test]
fn a_large_body_is_prepared_in_a_batch_as_large_as_the_socket_takes() {
    let mut h = harness();
    // Small answers never ask the socket: one batch.
    assert!(h.conn.streams.is_empty());
    assert_eq!(h.conn.batch(), OUT_BATCH);
    set_sndbuf(&h, 200_000);
    let room = h.conn.io.send_room().unwrap();
    assert!(room > OUT_BATCH, "the socket has room for more than a batch: {room}");
    // A stream with 300 KiB to send and the windows open: as much as the
    // socket takes, up to the most.
    let mut req = settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 1 << 30)]);
    frame::put_window_update(&mut req, 0, 1 << 30);
    h.send(&req);
    h.drive_out();
    h.frames();
    h.conn.streams.push(Stream {
        id: 1,
        window: 1 << 30,
        recv_window: 0,
        remote_done: true,
        body: Some(Body::Static { bytes: &[0u8; 300 * 1024], pos: 0 }),
        expect: None,
        received: 0,
        held: None,
        waiting: None,
    });
    let batch = h.conn.batch();
    assert!(batch > OUT_BATCH && batch <= OUT_BATCH_MAX, "{batch}");
    assert!(batch <= 300 * 1024, "no more than the streams have: {batch}");
    // A window that allows a batch only: one batch.
    h.conn.send_window = OUT_BATCH as i64;
    assert_eq!(h.conn.batch(), OUT_BATCH);
}

#[test]
fn a_client_that_stops_reading_leaves_at_most_one_small_batch_in_the_connection() {
    let mut h = harness();
    set_sndbuf(&h, 200_000);
    get_big_wide_open(&mut h, 1);
    // The client reads nothing: the turns fill the socket until it blocks.
    assert_eq!(h.drive_out(), Step::Wait);
    let held = h.conn.unsent();
    assert!(held > 0, "the socket filled before 8 MiB went out");
    assert!(held <= OUT_BATCH + MAX_PIECES * frame::HEAD_LEN, "{held} bytes wait in the connection");
    // And no more memory than that: not a large batch's buffer.
    assert!(h.conn.out.capacity() <= OUT_BATCH + MAX_PIECES * frame::HEAD_LEN, "{}", h.conn.out.capacity());
    // And everything arrives once the client reads.
    let mut got = 0;
    for _ in 0..10_000 {
        got += data_on(&h.frames(), 1);
        if got == 8 << 20 {
            break;
        }
        h.conn.ready(false, false);
        h.drive_out();
    }
    assert_eq!(got, 8 << 20);
}

#[test]
fn a_large_batch_the_socket_takes_only_part_of_is_taken_back_and_sent_again_intact() {
    let mut h = harness();
    // A file whose bytes say where they are, so a piece sent twice, lost
    // or out of order shows.
    let body: Vec<u8> = (0..2u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(h.dir.join("pattern.bin"), &body).unwrap();
    // The windows closed: the answer's HEADERS go out, no DATA yet.
    h.send(&[settings(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 0)]), get(1, "/pattern.bin")].concat());
    assert_eq!(h.drive_out(), Step::Wait);
    assert!(h.frames().iter().any(|f| f.head.kind == frame::HEADERS));
    // Open them (as WINDOW_UPDATEs would) and prepare a batch while the
    // socket has room for a large one...
    set_sndbuf(&h, 200_000);
    h.conn.send_window = 1 << 30;
    h.conn.streams[0].window = 1 << 30;
    assert!(h.conn.produce());
    let prepared = h.conn.unsent();
    assert!(prepared > OUT_BATCH, "a large batch: {prepared}");
    // ...then the socket takes far less than its room said (as under the
    // kernel's memory pressure).
    set_sndbuf(&h, 4096);
    assert_eq!(h.drive(), Step::Wait);
    let held = h.conn.unsent();
    assert!(held <= OUT_BATCH + MAX_PIECES * frame::HEAD_LEN, "{held} of {prepared} bytes held");
    assert!(h.conn.out.capacity() <= OUT_BATCH + MAX_PIECES * frame::HEAD_LEN);
    // Everything arrives, once, in order.
    set_sndbuf(&h, 200_000);
    let (mut got, mut idle) = (Vec::new(), 0);
    while got.len() < body.len() && idle < 50 {
        let before = got.len();
        for f in h.frames() {
            if f.head.kind == frame::DATA && f.head.stream == 1 {
                got.extend_from_slice(&f.payload);
            }
        }
        idle = if got.len() == before { idle + 1 } else { 0 };
        h.conn.ready(false, false);
        h.drive_out();
    }
    assert!(got == body, "{} bytes arrived, {} sent; the same: {}", got.len(), body.len(), got == body);
}
