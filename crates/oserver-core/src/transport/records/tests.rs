//! The record layer against rustls's client over real TCP: a handshake with
//! rustls on the server side, the keys taken out, encoded and decoded as the
//! handoff does, and the same connection carried on by `Records`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedCipherSuite};

use super::*;
use crate::testing::{set_buffer, xorshift};
use crate::transport::plain::wait_readable;
use crate::transport::tls::Tls;

type Client = StreamOwned<ClientConnection, StdStream>;

/// A client that offers only `suite` (and so only its protocol version).
fn client_config(suite: SupportedCipherSuite, ca: &CertificateDer<'static>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let provider = CryptoProvider { cipher_suites: vec![suite], ..ring::default_provider() };
    let config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[suite.version()])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn connect(config: Arc<ClientConfig>, addr: std::net::SocketAddr) -> Client {
    let conn = ClientConnection::new(config, ServerName::try_from("localhost").unwrap()).unwrap();
    let sock = StdStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    StreamOwned::new(conn, sock)
}

/// Read from the server side until `n` bytes came (waiting on the socket
/// between reads).
fn read_n(tls: &mut Tls, n: usize) -> io::Result<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < n {
        match tls.recv(&mut buf)? {
            Recv::Data(k) => got.extend_from_slice(&buf[..k]),
            Recv::Blocked => {
                wait_readable(tls.raw().fd());
                tls.raw_mut().ready(true, false);
            }
            Recv::Eof => return Err(io::ErrorKind::UnexpectedEof.into()),
        }
    }
    Ok(got)
}

/// Send all of `data` from the server side, waiting while the socket is full.
fn send_all(tls: &mut Tls, data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        at += tls.send(&data[at..], false).unwrap();
        if at < data.len() {
            thread::sleep(Duration::from_millis(1));
        }
    }
    while !tls.flush().unwrap() {
        thread::sleep(Duration::from_millis(1));
    }
}

/// A server-side connection after its handshake and a first exchange
/// (`ping` answered `pong`), moved: its keys taken from rustls, through the
/// bytes the handoff sends, into a `Records` session. Returns it with the
/// client's thread, which then runs `rest`.
fn moved<T: Send + 'static>(
    suite: SupportedCipherSuite,
    rest: impl FnOnce(&mut Client) -> T + Send + 'static,
) -> (Tls, thread::JoinHandle<T>) {
    connected(suite, true, rest)
}

/// As [`moved`], or, unless `carry`, the rustls session itself after the
/// same first exchange.
fn connected<T: Send + 'static>(
    suite: SupportedCipherSuite,
    carry: bool,
    rest: impl FnOnce(&mut Client) -> T + Send + 'static,
) -> (Tls, thread::JoinHandle<T>) {
    let (server, ca) = crate::testing::tls_server_config();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let client = client_config(suite, &ca);
    let t = thread::spawn(move || {
        let mut c = connect(client, addr);
        c.write_all(b"ping").unwrap();
        let mut pong = [0u8; 4];
        c.read_exact(&mut pong).unwrap();
        assert_eq!(&pong, b"pong");
        rest(&mut c)
    });
    let (sock, _) = l.accept().unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut tls = Tls::new(Plain::new(mio::net::TcpStream::from_std(sock)), &server).unwrap();
    assert!(!tls.movable(), "not before the handshake");
    assert_eq!(read_n(&mut tls, 4).unwrap(), b"ping");
    send_all(&mut tls, b"pong");
    // Drain: the next read finds nothing, so rustls holds nothing unread.
    assert_eq!(tls.recv(&mut [0u8; 16]).unwrap(), Recv::Blocked);
    assert!(tls.movable(), "idle after the handshake: movable");
    if !carry {
        return (tls, t);
    }
    let (raw, keys) = tls.into_keys().expect("the keys");
    let mut bytes = [0u8; Keys::LEN];
    keys.encode(&mut bytes);
    drop(keys);
    let keys = Keys::decode(&bytes).expect("decodes");
    (Tls::resume(raw, keys), t)
}

fn all_suites() -> Vec<SupportedCipherSuite> {
    use rustls::crypto::ring::cipher_suite::*;
    vec![
        TLS13_AES_128_GCM_SHA256,
        TLS13_AES_256_GCM_SHA384,
        TLS13_CHACHA20_POLY1305_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
}

#[test]
fn a_moved_connection_talks_on_in_every_suite_and_ends_with_close_notify() {
    let path = std::env::temp_dir().join(format!("oserver-records-{}", std::process::id()));
    // Larger than one file step, and not a multiple of a record.
    let file: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &file).unwrap();
    for suite in all_suites() {
        let expected = file.clone();
        let (mut tls, client) = moved(suite, move |c| {
            // Several records' worth each way, then a file, then the end.
            let big: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
            c.write_all(&big).unwrap();
            let mut echo = vec![0u8; big.len()];
            c.read_exact(&mut echo).unwrap();
            assert_eq!(echo, big);
            let mut got = Vec::new();
            // rustls reports a clean end only after close_notify.
            c.read_to_end(&mut got).unwrap();
            assert_eq!(got.len(), expected.len());
            assert!(got == expected, "file bytes differ");
        });
        let got = read_n(&mut tls, 40_000).unwrap();
        send_all(&mut tls, &got);
        let f = std::fs::File::open(&path).unwrap();
        let mut off = 0;
        while off < file.len() as u64 {
            tls.send_file(f.as_raw_fd(), &mut off, file.len() as u64, 1 << 20, &mut Vec::new()).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        while !tls.flush().unwrap() {
            thread::sleep(Duration::from_millis(1));
        }
        tls.shutdown_write();
        client.join().unwrap_or_else(|_| panic!("client failed with {suite:?}"));
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_moved_connection_moves_again() {
    let (tls, client) = moved(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256, |c| {
        c.write_all(b"again").unwrap();
        let mut got = [0u8; 2];
        c.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ok");
    });
    let (raw, keys) = tls.into_keys().expect("an idle moved connection moves again");
    let mut tls = Tls::resume(raw, keys);
    assert_eq!(read_n(&mut tls, 5).unwrap(), b"again");
    send_all(&mut tls, b"ok");
    client.join().unwrap();
}

#[test]
fn a_tampered_record_is_refused_with_an_alert() {
    let (mut tls, client) = moved(rustls::crypto::ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256, |c| {
        // A well-formed application-data record whose contents were not
        // sealed with the connection's key.
        let mut record = vec![APPLICATION_DATA, 3, 3, 0, 40];
        record.extend_from_slice(&[0x5a; 40]);
        c.sock.write_all(&record).unwrap();
        let mut buf = [0u8; 16];
        c.read(&mut buf).expect_err("the server's fatal alert")
    });
    let err = read_n(&mut tls, 1).expect_err("a forged record is an error");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let seen = client.join().unwrap();
    assert!(seen.to_string().contains("BadRecordMac"), "client saw: {seen}");
}

#[test]
fn an_oversized_record_is_refused_before_it_is_read_whole() {
    let (mut tls, client) = moved(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256, |c| {
        // Only the header: a length beyond what TLS 1.3 allows.
        let len = (MAX_PLAIN + MAX_EXPANSION_13 + 1) as u16;
        c.sock.write_all(&header(APPLICATION_DATA, len)).unwrap();
        let mut buf = [0u8; 16];
        c.read(&mut buf).expect_err("the server's fatal alert")
    });
    let err = read_n(&mut tls, 1).expect_err("an oversized record is an error");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    let seen = client.join().unwrap();
    assert!(seen.to_string().contains("RecordOverflow"), "client saw: {seen}");
}

#[test]
fn a_key_update_ends_a_moved_connection() {
    let (mut tls, client) = moved(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256, |c| {
        c.conn.refresh_traffic_keys().unwrap();
        c.write_all(b"after").unwrap();
    });
    client.join().unwrap();
    let err = read_n(&mut tls, 5).expect_err("a key update cannot be followed");
    assert!(err.to_string().contains("key update"), "{err}");
}

#[test]
fn records_arriving_a_byte_at_a_time_are_read() {
    let (mut tls, client) =
        moved(rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, |c| {
            // Seal two records with rustls, then dribble their bytes.
            c.conn.writer().write_all(b"hello, ").unwrap();
            c.conn.writer().write_all(b"world").unwrap();
            let mut sealed = Vec::new();
            while c.conn.wants_write() {
                c.conn.write_tls(&mut sealed).unwrap();
            }
            c.sock.set_nodelay(true).unwrap();
            for b in sealed {
                c.sock.write_all(&[b]).unwrap();
                thread::sleep(Duration::from_micros(200));
            }
        });
    assert_eq!(read_n(&mut tls, 12).unwrap(), b"hello, world");
    client.join().unwrap();
}

/// Records that arrive together are read from the socket together, and the
/// socket then has no more to say (no new event comes): the transport must
/// still say it is readable while the record layer holds their plaintext,
/// or a protocol that reads only while it is would leave them unread
/// until the client sent more. Whoever protects the records: rustls, or
/// ours after a move.
#[test]
fn records_read_together_stay_readable_until_all_are_handed_out() {
    use crate::testing::unread;
    use crate::transport::Transport;
    for carry in [false, true] {
        let (tls, client) =
            connected(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256, carry, |c| {
                c.conn.writer().write_all(b"first").unwrap();
                c.conn.writer().write_all(b"second").unwrap();
                let mut sealed = Vec::new();
                while c.conn.wants_write() {
                    c.conn.write_tls(&mut sealed).unwrap();
                }
                c.sock.write_all(&sealed).unwrap();
                sealed.len()
            });
        let sealed = client.join().unwrap();
        let mut t = Transport::Tls(tls);
        for _ in 0..2000 {
            if unread(t.fd()) >= sealed {
                break;
            }
            thread::sleep(Duration::from_millis(1));
        }
        t.ready(true, false);
        // As a protocol reads: while the transport says a read may bring
        // something, into a buffer smaller than what came.
        let (mut got, mut buf) = (Vec::new(), [0u8; 5]);
        while t.readable() {
            match t.recv(&mut buf).unwrap() {
                Recv::Data(n) => got.extend_from_slice(&buf[..n]),
                Recv::Blocked | Recv::Eof => break,
            }
        }
        let by = if carry { "our record layer" } else { "rustls" };
        assert_eq!(String::from_utf8_lossy(&got), "firstsecond", "records opened by {by}");
    }
}

/// Records that bring no plaintext (empty application data, user_canceled
/// alerts) each cost a decryption and count as nothing read, so no turn
/// limit stops a peer that streams them: past rustls's own limits (32
/// empty records in a row, 4 warning alerts) a moved connection ends, as a
/// rustls one does; up to them, reading goes on.
#[test]
fn endless_records_without_plaintext_end_a_moved_connection() {
    for (empty, alerts, ends) in [(32, 0, false), (28, 4, false), (33, 0, true), (0, 5, true), (200, 0, true)]
    {
        let (to_client, forged) = std::sync::mpsc::channel::<Vec<u8>>();
        let (tls, client) = moved(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256, move |c| {
            c.sock.write_all(&forged.recv().unwrap()).unwrap();
            // Open until the server is done.
            let _ = c.sock.read(&mut [0u8; 64]);
        });
        let (raw, keys) = tls.into_keys().unwrap();
        // The client's side of the same keys seals what rustls never would.
        let theirs =
            Keys { version: keys.version, suite: keys.suite, tx: keys.rx.clone(), rx: keys.tx.clone() };
        let mut peer = Records::new(theirs);
        for i in 0..empty + alerts {
            if i < empty {
                peer.seal_bytes(b"", APPLICATION_DATA).unwrap();
            } else {
                peer.seal_bytes(&[1, USER_CANCELED], ALERT).unwrap();
            }
        }
        peer.seal_bytes(b"x", APPLICATION_DATA).unwrap();
        to_client.send(peer.output.clone()).unwrap();
        let mut tls = Tls::resume(raw, keys);
        let got = read_n(&mut tls, 1);
        if ends {
            let err = got.expect_err("a stream of records without plaintext ends");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        } else {
            assert_eq!(got.unwrap(), b"x", "{empty} empty records and {alerts} alerts are allowed");
        }
        drop(tls);
        client.join().unwrap();
    }
}

/// A client's TLS 1.3 KeyUpdate asking for ours: rustls switches to its
/// next key at once but holds its own KeyUpdate back until it next seals a
/// record. The connection must not move in between (the keys taken out
/// would lose that KeyUpdate, and the client could read nothing more); once
/// something was sealed, it moves and talks on.
#[test]
fn a_connection_that_just_read_a_key_update_moves_only_after_it_sealed_something() {
    let (mut tls, client) =
        connected(rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256, false, |c| {
            c.conn.refresh_traffic_keys().unwrap();
            c.write_all(b"ku").unwrap();
            let mut got = [0u8; 2];
            c.read_exact(&mut got).unwrap();
            assert_eq!(&got, b"xy", "read across the server's key update and the move");
        });
    assert_eq!(read_n(&mut tls, 2).unwrap(), b"ku");
    assert_eq!(tls.recv(&mut [0u8; 16]).unwrap(), Recv::Blocked);
    assert!(!tls.movable(), "its KeyUpdate is still held back");
    send_all(&mut tls, b"x");
    assert!(tls.movable(), "sealed since: movable");
    let (raw, keys) = tls.into_keys().expect("the keys");
    let mut tls = Tls::resume(raw, keys);
    send_all(&mut tls, b"y");
    client.join().unwrap();
}

#[test]
fn keys_decode_only_what_encode_makes() {
    let (tls, client) = moved(rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384, |_| {});
    client.join().unwrap();
    let (_, keys) = tls.into_keys().unwrap();
    let mut bytes = [0u8; Keys::LEN];
    keys.encode(&mut bytes);
    let back = Keys::decode(&bytes).unwrap();
    assert_eq!((back.version, back.suite), (Version::Tls13, Suite::Aes256Gcm));
    assert_eq!((back.tx.seq, back.rx.seq), (keys.tx.seq, keys.rx.seq));
    assert!(Keys::decode(&bytes[1..]).is_none(), "short");
    let mut bad = bytes;
    bad[0] = 9;
    assert!(Keys::decode(&bad).is_none(), "unknown version");
    let mut bad = bytes;
    bad[1] = 0;
    assert!(Keys::decode(&bad).is_none(), "unknown suite");
}

/// What the server sends in one step of a generated exchange.
#[derive(Debug, Clone)]
enum Out {
    /// This many bytes through `send` (`more`: a file follows).
    Bytes(usize, bool),
    /// This many bytes of the file, from this offset, through `send_file`.
    File(u64, u64),
}

/// Both directions at once over a session that stayed with rustls or
/// moved to `Records`, in any suite: the server sends byte pieces and file
/// ranges while its socket's send buffer changes between steps, and reads
/// into buffers of any size; the client writes in pieces and reads late.
/// Every byte arrives once and in order each way, and the stream ends
/// cleanly with close_notify.
fn exchange_case(suite: usize, carry: bool, outs: &[Out], up: usize, seed: u64) {
    let path = std::env::temp_dir().join(format!("oserver-records-prop-{}-{seed}", std::process::id()));
    let file: Vec<u8> = (0..FILE_LEN as u32).map(|i| (i * 11 % 241) as u8).collect();
    std::fs::write(&path, &file).unwrap();
    let mut down = Vec::new();
    for out in outs {
        match *out {
            Out::Bytes(n, _) => {
                let from = down.len();
                down.extend((from..from + n).map(|i| (i % 239) as u8));
            }
            Out::File(at, n) => down.extend_from_slice(&file[at as usize..(at + n) as usize]),
        }
    }
    let upward: Vec<u8> = (0..up).map(|i| (i * 5 % 233) as u8).collect();
    let (expected, sent) = (down.clone(), upward.clone());
    let (mut tls, client) = connected(all_suites()[suite], carry, move |c| {
        let mut rng = seed | 1;
        c.sock.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
        let (mut at, mut got) = (0, Vec::new());
        let mut buf = vec![0u8; 70_000];
        loop {
            if at < sent.len() {
                let n = (1 + xorshift(&mut rng) % 20_000) as usize;
                let end = (at + n).min(sent.len());
                c.write_all(&sent[at..end]).unwrap();
                at = end;
            }
            if xorshift(&mut rng) % 3 == 0 {
                thread::sleep(Duration::from_millis(1)); // reads late
                continue;
            }
            let want = 1 + (xorshift(&mut rng) % buf.len() as u64) as usize;
            match c.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("client read after {} bytes: {e}", got.len()),
            }
        }
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "the bytes the client read differ");
    });
    let f = std::fs::File::open(&path).unwrap();
    let mut rng = seed.rotate_left(17) | 1;
    // Step `step` of `outs`, `pos` bytes into it, which begin at `start`
    // in what the server sends.
    let (mut step, mut pos, mut start) = (0, 0u64, 0usize);
    let (mut got, mut scratch) = (Vec::new(), Vec::new());
    let mut buf = vec![0u8; 40_000];
    let mut quiet = std::time::Instant::now();
    while step < outs.len() || got.len() < up || !tls.flush().unwrap() {
        assert!(
            quiet.elapsed() < Duration::from_secs(10),
            "stalled at step {step}, {} bytes read",
            got.len()
        );
        let rooms = [4096, 16_384, 100_000, 1 << 20];
        set_buffer(tls.raw().fd(), libc::SO_SNDBUF, rooms[(xorshift(&mut rng) % 4) as usize]);
        let mut moved_on = false;
        if let Some(out) = outs.get(step) {
            let (done, n) = match *out {
                Out::Bytes(n, more) => {
                    let at = start + pos as usize;
                    let k = tls.send(&down[at..start + n], more).unwrap();
                    pos += k as u64;
                    (pos == n as u64, k as u64)
                }
                Out::File(at, n) => {
                    let mut off = at + pos;
                    let max = 1 + xorshift(&mut rng) % (1 << 20);
                    let k = tls.send_file(f.as_raw_fd(), &mut off, at + n, max, &mut scratch).unwrap();
                    pos += k;
                    (pos == n, k)
                }
            };
            moved_on = n > 0;
            if done {
                (step, start, pos) = (step + 1, start + pos as usize, 0);
            }
        }
        tls.raw_mut().ready(true, false);
        let want = 1 + (xorshift(&mut rng) % buf.len() as u64) as usize;
        if let Recv::Data(n) = tls.recv(&mut buf[..want]).unwrap() {
            got.extend_from_slice(&buf[..n]);
            moved_on = true;
        }
        if moved_on {
            quiet = std::time::Instant::now();
        } else {
            thread::sleep(Duration::from_micros(300));
        }
    }
    assert!(got == upward, "the bytes the server read differ ({} of {up})", got.len());
    // close_notify waits with the records for the socket, as they do.
    tls.close_notify();
    while !tls.flush().unwrap() {
        thread::sleep(Duration::from_millis(1));
    }
    tls.raw_mut().shutdown_write();
    client.join().unwrap_or_else(|_| panic!("client failed: suite {suite}, carried {carry}"));
    let _ = std::fs::remove_file(&path);
}

/// The size of the file `exchange_case` sends ranges of.
const FILE_LEN: u64 = 300_000;

fn out() -> impl proptest::strategy::Strategy<Value = Out> {
    use proptest::prelude::*;
    prop_oneof![
        (1..70_000usize, any::<bool>()).prop_map(|(n, more)| Out::Bytes(n, more)),
        (0..FILE_LEN, 1..FILE_LEN).prop_map(|(at, n)| Out::File(at, n.min(FILE_LEN - at).max(1))),
    ]
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, ..Default::default() })]
    #[test]
    fn any_mix_of_sends_files_and_reads_arrives_whole_each_way(
        suite in 0..6usize,
        carry: bool,
        outs in proptest::collection::vec(out(), 1..8),
        up in 0..200_000usize,
        seed: u64,
    ) {
        exchange_case(suite, carry, &outs, up, seed);
    }
}
