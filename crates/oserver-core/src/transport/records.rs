//! TLS records sealed and opened here, with ring, from the traffic keys a
//! finished rustls handshake hands out: how a TLS connection moves to
//! another event loop, possibly in another process.
//!
//! A rustls session is a Rust object in the memory of the process that made
//! it. After the handshake, though, a TLS connection is only its two
//! directions' AEAD keys, IVs and record sequence numbers ([`Keys`], about a
//! hundred bytes): whoever holds those can go on reading and writing its
//! records. So a connection handed to another loop takes its keys along
//! (`dangerous_extract_secrets`, which the server configuration must allow
//! with `enable_secret_extraction`), and the receiving loop serves it with
//! [`Records`]: the same record protection rustls does (RFC 8446 5.2-5.3
//! for TLS 1.3, RFC 5288 and RFC 7905 for TLS 1.2), over the suites
//! Mozilla's intermediate profile allows (AES-128-GCM, AES-256-GCM,
//! ChaCha20-Poly1305). This is also the shape kernel TLS would take: the
//! same keys given to `setsockopt(SOL_TLS)` instead of to ring.
//!
//! What it cannot do, having no handshake state: a TLS 1.3 KeyUpdate from
//! the client (deriving the next key needs the traffic secret, which rustls
//! does not hand out) and TLS 1.2 renegotiation, which rustls refuses too.
//! Either closes the connection; browsers and curl send neither. Before a
//! key would seal more records than its cipher allows (2^24 for AES-GCM,
//! where rustls would update the key) the connection is closed too.

use std::io;
use std::ops::Range;
use std::os::fd::RawFd;

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey, NONCE_LEN};
use rustls::{ConnectionTrafficSecrets, ExtractedSecrets, ProtocolVersion};

use super::plain::{Plain, Recv};
use super::sys::preadv;

/// Record header: content type, version, length.
const HEADER: usize = 5;
/// Most plaintext one record carries (RFC 8446 5.1; RFC 5246 6.2.1).
const MAX_PLAIN: usize = 16 * 1024;
/// Most ciphertext a record may carry beyond its plaintext: 256 bytes in
/// TLS 1.3 (RFC 8446 5.2), 2048 in TLS 1.2 (RFC 5246 6.2.3).
const MAX_EXPANSION_13: usize = 256;
const MAX_EXPANSION_12: usize = 2048;
/// The AEAD tag after every record's ciphertext (all three suites).
const TAG: usize = 16;
/// TLS 1.2 AES-GCM: the nonce's explicit part, sent before the ciphertext.
const EXPLICIT: usize = 8;
/// The buffer for ciphertext from the socket starts this large (a
/// request's records usually fit) and doubles while a record does not fit,
/// up to [`INPUT`].
const READ: usize = 4 * 1024;
/// The most ciphertext buffered: room for two of the largest records, so a
/// partial record moved to the front always has room to complete.
const INPUT: usize = 2 * (HEADER + MAX_PLAIN + MAX_EXPANSION_12);
/// Records not yet written that `send` lets build up before it stops taking
/// plaintext: 64 KiB, rustls's own default for the same buffer.
const OUTPUT: usize = 64 * 1024;
/// Plaintext read from a file and sealed per step: four full records, one
/// preadv and one write (as `tls.rs` does with rustls).
const FILE_STEP: usize = 4 * MAX_PLAIN;

/// Empty records in a row allowed before the connection ends, and warning
/// alerts (user_canceled, the one TLS 1.3 lets through) in all: rustls's
/// own limits. Each such record costs a decryption and counts as nothing
/// read, so without a limit a peer streaming them would hold the loop in
/// one read for as long as it kept sending.
const MAX_EMPTY_RUN: u8 = 32;
const MAX_WARNINGS: u8 = 4;

const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
const APPLICATION_DATA: u8 = 23;
/// The record version every record after the handshake carries (TLS 1.2's;
/// TLS 1.3 keeps it for middleboxes).
const VERSION: [u8; 2] = [3, 3];

/// Alert descriptions (RFC 8446 6): the ones this layer sends or reads.
const CLOSE_NOTIFY: u8 = 0;
/// The level of an alert that need not end the connection.
const WARNING: u8 = 1;
const UNEXPECTED_MESSAGE: u8 = 10;
const BAD_RECORD_MAC: u8 = 20;
const RECORD_OVERFLOW: u8 = 22;
const USER_CANCELED: u8 = 90;

/// The protocol the handshake agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    Tls12,
    Tls13,
}

/// The AEAD the handshake agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suite {
    Aes128Gcm,
    Aes256Gcm,
    Chacha20Poly1305,
}

impl Suite {
    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Suite::Aes128Gcm => &aead::AES_128_GCM,
            Suite::Aes256Gcm => &aead::AES_256_GCM,
            Suite::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Suite::Aes128Gcm => 16,
            Suite::Aes256Gcm | Suite::Chacha20Poly1305 => 32,
        }
    }

    /// Records one key may seal or open (rustls's figures: past 2^24
    /// AES-GCM records it updates the key, which this layer cannot).
    fn limit(self) -> u64 {
        match self {
            Suite::Aes128Gcm | Suite::Aes256Gcm => 1 << 24,
            Suite::Chacha20Poly1305 => u64::MAX,
        }
    }

    fn code(self) -> u8 {
        match self {
            Suite::Aes128Gcm => 1,
            Suite::Aes256Gcm => 2,
            Suite::Chacha20Poly1305 => 3,
        }
    }

    fn from_code(c: u8) -> Option<Suite> {
        Some(match c {
            1 => Suite::Aes128Gcm,
            2 => Suite::Aes256Gcm,
            3 => Suite::Chacha20Poly1305,
            _ => return None,
        })
    }
}

/// One direction: its key (the first `key_len` bytes), IV and the sequence
/// number of its next record.
#[derive(Clone)]
struct Secret {
    key: [u8; 32],
    iv: [u8; NONCE_LEN],
    seq: u64,
}

impl Secret {
    fn from_rustls(seq: u64, s: &ConnectionTrafficSecrets) -> Option<(Suite, Secret)> {
        let (suite, key, iv) = match s {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (Suite::Aes128Gcm, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (Suite::Aes256Gcm, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (Suite::Chacha20Poly1305, key, iv),
            _ => return None,
        };
        let mut secret = Secret { key: [0; 32], iv: [0; NONCE_LEN], seq };
        let key = key.as_ref();
        if key.len() != suite.key_len() || iv.as_ref().len() != NONCE_LEN {
            return None;
        }
        secret.key[..key.len()].copy_from_slice(key);
        secret.iv.copy_from_slice(iv.as_ref());
        Some((suite, secret))
    }

    fn ring_key(&self, suite: Suite) -> LessSafeKey {
        // The length matches the algorithm (checked where the key came in).
        let unbound = UnboundKey::new(suite.algorithm(), &self.key[..suite.key_len()]);
        LessSafeKey::new(unbound.expect("key length matches its algorithm"))
    }

    /// The nonce of record `seq`: the IV with the sequence number XORed into
    /// its last eight bytes (RFC 8446 5.3; rustls builds TLS 1.2 nonces the
    /// same way, sending the last eight bytes as AES-GCM's explicit part).
    fn nonce(&self) -> [u8; NONCE_LEN] {
        let mut n = self.iv;
        for (b, s) in n[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *b ^= s;
        }
        n
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(&mut self.key);
        wipe(&mut self.iv);
    }
}

/// Overwrite key material before its memory is reused.
pub(crate) fn wipe(b: &mut [u8]) {
    for x in b.iter_mut() {
        // SAFETY: `x` is a valid, aligned, exclusive reference; the volatile
        // write keeps the compiler from dropping a store to memory about to
        // be freed.
        unsafe { std::ptr::write_volatile(x, 0) };
    }
}

/// What a TLS connection is after its handshake: protocol, suite, and each
/// direction's key, IV and next sequence number.
#[derive(Clone)]
pub(crate) struct Keys {
    version: Version,
    suite: Suite,
    tx: Secret,
    rx: Secret,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("version", &self.version)
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Bytes of [`Keys::encode`]: version, suite, then per direction key,
    /// IV and sequence number.
    pub(crate) const LEN: usize = 2 + 2 * (32 + NONCE_LEN + 8);

    /// The keys rustls extracted from a finished handshake; None for a
    /// protocol or suite this layer does not do.
    pub(crate) fn from_rustls(version: ProtocolVersion, s: &ExtractedSecrets) -> Option<Keys> {
        let version = match version {
            ProtocolVersion::TLSv1_2 => Version::Tls12,
            ProtocolVersion::TLSv1_3 => Version::Tls13,
            _ => return None,
        };
        let (suite, tx) = Secret::from_rustls(s.tx.0, &s.tx.1)?;
        let (rx_suite, rx) = Secret::from_rustls(s.rx.0, &s.rx.1)?;
        (suite == rx_suite).then_some(Keys { version, suite, tx, rx })
    }

    /// The keys as bytes, to travel with the connection's descriptor. The
    /// caller wipes `out` once it is sent.
    pub(crate) fn encode(&self, out: &mut [u8; Keys::LEN]) {
        out[0] = match self.version {
            Version::Tls12 => 2,
            Version::Tls13 => 3,
        };
        out[1] = self.suite.code();
        let mut at = 2;
        for s in [&self.tx, &self.rx] {
            for part in [&s.key[..], &s.iv[..], &s.seq.to_be_bytes()[..]] {
                out[at..at + part.len()].copy_from_slice(part);
                at += part.len();
            }
        }
    }

    /// Keys from [`Keys::encode`]'s bytes; None if they are not that.
    pub(crate) fn decode(b: &[u8]) -> Option<Keys> {
        if b.len() != Keys::LEN {
            return None;
        }
        let version = match b[0] {
            2 => Version::Tls12,
            3 => Version::Tls13,
            _ => return None,
        };
        let suite = Suite::from_code(b[1])?;
        let secret = |b: &[u8]| {
            let mut s = Secret { key: [0; 32], iv: [0; NONCE_LEN], seq: 0 };
            s.key.copy_from_slice(&b[..32]);
            s.iv.copy_from_slice(&b[32..32 + NONCE_LEN]);
            let mut seq = [0; 8];
            seq.copy_from_slice(&b[32 + NONCE_LEN..]);
            s.seq = u64::from_be_bytes(seq);
            s
        };
        let half = 32 + NONCE_LEN + 8;
        Some(Keys { version, suite, tx: secret(&b[2..2 + half]), rx: secret(&b[2 + half..]) })
    }
}

/// A TLS connection's record layer after its handshake: see the module
/// documentation.
pub(crate) struct Records {
    keys: Keys,
    seal: LessSafeKey,
    open: LessSafeKey,
    /// Ciphertext read from the socket (allocated while in use):
    /// `input[start..end]` is not yet opened; `plain`, before `start`, is
    /// application data opened and not yet handed out.
    input: Vec<u8>,
    start: usize,
    end: usize,
    plain: Range<usize>,
    /// Records sealed; `output[sent..]` not yet written.
    output: Vec<u8>,
    sent: usize,
    /// The peer sent close_notify.
    closed: bool,
    /// Empty records opened in a row.
    empty_run: u8,
    /// Warning alerts still allowed.
    warnings_left: u8,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").field("keys", &self.keys).finish_non_exhaustive()
    }
}

/// The error that ends a connection whose peer broke the protocol.
fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

impl Records {
    pub(crate) fn new(keys: Keys) -> Records {
        let seal = keys.tx.ring_key(keys.suite);
        let open = keys.rx.ring_key(keys.suite);
        Records {
            keys,
            seal,
            open,
            input: Vec::new(),
            start: 0,
            end: 0,
            plain: 0..0,
            output: Vec::new(),
            sent: 0,
            closed: false,
            empty_run: 0,
            warnings_left: MAX_WARNINGS,
        }
    }

    /// The keys as they stand (with the next sequence numbers), if the
    /// connection can move now: nothing received and not handed out,
    /// nothing sealed and not written, the peer not gone.
    pub(crate) fn keys(&self) -> Option<&Keys> {
        let quiet = self.plain.is_empty() && self.start == self.end && self.sent == self.output.len();
        (quiet && !self.closed).then_some(&self.keys)
    }

    /// Plaintext opened and not handed out, a record read whole (or one
    /// whose header already fails) not yet opened, or the peer's
    /// close_notify: what a recv returns without reading the socket.
    pub(crate) fn buffered(&self) -> bool {
        if !self.plain.is_empty() || self.closed {
            return true;
        }
        let avail = &self.input[self.start..self.end];
        if avail.len() < HEADER {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([avail[3], avail[4]]));
        avail.len() >= HEADER + len || avail[1..3] != VERSION || len > MAX_PLAIN + self.expansion()
    }

    /// The most a record's ciphertext may exceed its plaintext by.
    fn expansion(&self) -> usize {
        match self.keys.version {
            Version::Tls13 => MAX_EXPANSION_13,
            Version::Tls12 => MAX_EXPANSION_12,
        }
    }

    /// Plaintext into `buf`: what was opened and not handed out, else the
    /// next records the socket brings.
    pub(crate) fn recv(&mut self, raw: &mut Plain, buf: &mut [u8]) -> io::Result<Recv> {
        loop {
            if !self.plain.is_empty() {
                let n = self.plain.len().min(buf.len());
                buf[..n].copy_from_slice(&self.input[self.plain.start..self.plain.start + n]);
                self.plain.start += n;
                return Ok(Recv::Data(n));
            }
            if self.closed {
                return Ok(Recv::Eof);
            }
            if self.open_record(raw)? {
                continue;
            }
            if self.start > 0 {
                // Move the partial record to the front (nothing opened is
                // waiting: `plain` is empty).
                self.input.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.end == self.input.len() {
                // Full of one partial record (none is larger than half of
                // INPUT), or not yet allocated.
                let size = (self.input.len() * 2).clamp(READ, INPUT);
                self.input.resize(size, 0);
            }
            match raw.recv(&mut self.input[self.end..])? {
                Recv::Data(n) => self.end += n,
                Recv::Blocked => {
                    self.release();
                    return Ok(Recv::Blocked);
                }
                Recv::Eof if self.start == self.end => return Ok(Recv::Eof),
                Recv::Eof => return Err(invalid("connection closed in the middle of a TLS record")),
            }
        }
    }

    /// Open the next whole record in `input`, if there is one. True when one
    /// was opened (its application data is then in `plain`, or it was an
    /// alert that ended the stream).
    fn open_record(&mut self, raw: &mut Plain) -> io::Result<bool> {
        let avail = &self.input[self.start..self.end];
        if avail.len() < HEADER {
            return Ok(false);
        }
        let typ = avail[0];
        let len = usize::from(u16::from_be_bytes([avail[3], avail[4]]));
        if avail[1..3] != VERSION {
            return Err(self.fatal(raw, UNEXPECTED_MESSAGE, "TLS record with the wrong version"));
        }
        if len > MAX_PLAIN + self.expansion() {
            return Err(self.fatal(raw, RECORD_OVERFLOW, "TLS record too long"));
        }
        if avail.len() < HEADER + len {
            return Ok(false);
        }
        if self.keys.rx.seq >= self.keys.suite.limit() {
            return Err(invalid("TLS key used up"));
        }
        let record = self.start..self.start + HEADER + len;
        self.start = record.end;
        let body = record.start + HEADER;
        let nonce = self.keys.rx.nonce();
        let (content, kind) = match self.keys.version {
            Version::Tls13 => {
                if typ != APPLICATION_DATA {
                    return Err(self.fatal(
                        raw,
                        UNEXPECTED_MESSAGE,
                        "unencrypted TLS record after the handshake",
                    ));
                }
                let mut aad = [0; HEADER];
                aad.copy_from_slice(&self.input[record.start..body]);
                let opened = self.open.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut self.input[body..record.end],
                );
                let Ok(opened) = opened else {
                    return Err(self.fatal(raw, BAD_RECORD_MAC, "TLS record failed authentication"));
                };
                // Padding: zeros after the real content type (RFC 8446 5.4).
                let Some(last) = opened.iter().rposition(|&b| b != 0) else {
                    return Err(self.fatal(raw, UNEXPECTED_MESSAGE, "TLS record without a content type"));
                };
                (body..body + last, opened[last])
            }
            Version::Tls12 => {
                let explicit = if self.keys.suite == Suite::Chacha20Poly1305 { 0 } else { EXPLICIT };
                if len < explicit + TAG {
                    return Err(self.fatal(raw, BAD_RECORD_MAC, "TLS record too short"));
                }
                let nonce = if explicit == 0 {
                    nonce
                } else {
                    // The salt (the IV's first four bytes), then the
                    // record's explicit part.
                    let mut n = self.keys.rx.iv;
                    n[4..].copy_from_slice(&self.input[body..body + EXPLICIT]);
                    n
                };
                let aad = aad12(self.keys.rx.seq, typ, len - explicit - TAG);
                let opened = self.open.open_within(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    &mut self.input[body..record.end],
                    explicit..,
                );
                let Ok(opened) = opened else {
                    return Err(self.fatal(raw, BAD_RECORD_MAC, "TLS record failed authentication"));
                };
                (body..body + opened.len(), typ)
            }
        };
        self.keys.rx.seq += 1;
        if content.len() > MAX_PLAIN {
            return Err(self.fatal(raw, RECORD_OVERFLOW, "TLS record's plaintext too long"));
        }
        if !content.is_empty() {
            self.empty_run = 0;
        } else if self.empty_run == MAX_EMPTY_RUN {
            return Err(self.fatal(raw, UNEXPECTED_MESSAGE, "too many empty TLS records in a row"));
        } else {
            self.empty_run += 1;
        }
        match kind {
            APPLICATION_DATA => self.plain = content,
            ALERT => match <[u8; 2]>::try_from(&self.input[content]) {
                Ok([_, CLOSE_NOTIFY]) => self.closed = true,
                Ok([WARNING, USER_CANCELED]) if self.warnings_left > 0 => self.warnings_left -= 1,
                _ => return Err(invalid("the peer sent a TLS alert")),
            },
            HANDSHAKE => {
                return Err(invalid(
                    "a TLS handshake message after the connection moved (key update or renegotiation)",
                ))
            }
            _ => return Err(self.fatal(raw, UNEXPECTED_MESSAGE, "unexpected TLS record type")),
        }
        Ok(true)
    }

    /// Seal what the socket's buffer room allows of `buf` into records and,
    /// unless `more` says a file follows, write them out. Returns the bytes
    /// taken; fewer than `buf.len()` when the records not yet written reach
    /// [`OUTPUT`] and the socket is full.
    pub(crate) fn send(&mut self, raw: &mut Plain, buf: &[u8], more: bool) -> io::Result<usize> {
        let mut taken = 0;
        while taken < buf.len() {
            if self.output.len() - self.sent >= OUTPUT && !self.flush(raw)? {
                return Ok(taken);
            }
            let n = (buf.len() - taken).min(MAX_PLAIN);
            self.seal_bytes(&buf[taken..taken + n], APPLICATION_DATA)?;
            taken += n;
        }
        if !more {
            self.flush(raw)?;
        }
        Ok(taken)
    }

    /// Seal up to `max` bytes of `file` from `*offset` to `end`, while the
    /// socket takes them: per step [`FILE_STEP`] read with one preadv
    /// straight into the bodies of the records being built, sealed there,
    /// and written with one send. Returns the plaintext bytes consumed.
    ///
    /// # Errors
    ///
    /// The socket's or the file's, or `UnexpectedEof` when the file ends
    /// before `end`.
    pub(crate) fn send_file(
        &mut self,
        raw: &mut Plain,
        file: RawFd,
        offset: &mut u64,
        end: u64,
        max: u64,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        while self.flush(raw)? && *offset < end && total < max {
            let want = (end - *offset).min(max - total).min(FILE_STEP as u64) as usize;
            let n = self.seal_file_step(file, *offset, want)?;
            *offset += n as u64;
            total += n as u64;
        }
        Ok(total)
    }

    /// Read `want` bytes of `file` at `offset` into records at the end of
    /// `output` and seal them. Returns the bytes read (at least one).
    fn seal_file_step(&mut self, file: RawFd, offset: u64, want: usize) -> io::Result<usize> {
        let at = self.output.len();
        let sizes: Vec<usize> = (0..want).step_by(MAX_PLAIN).map(|i| (want - i).min(MAX_PLAIN)).collect();
        let lens: Vec<usize> = sizes.iter().map(|&n| self.record_len(n)).collect();
        let body = HEADER + self.prefix();
        self.output.resize(at + lens.iter().sum::<usize>(), 0);
        let mut bodies = Vec::with_capacity(sizes.len());
        let mut rest = &mut self.output[at..];
        for (&size, &len) in sizes.iter().zip(&lens) {
            let (record, tail) = rest.split_at_mut(len);
            bodies.push(io::IoSliceMut::new(&mut record[body..body + size]));
            rest = tail;
        }
        let read = match preadv(file, &mut bodies, offset) {
            Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file truncated while sending")),
            other => other,
        };
        drop(bodies);
        let Ok(read) = read else {
            self.output.truncate(at);
            return read;
        };
        // Seal what came: whole records, and a last one cut short if the
        // read was.
        let (mut next, mut left) = (at, read);
        for &size in &sizes {
            if left == 0 {
                break;
            }
            let got = size.min(left);
            if let Err(e) = self.seal(next, got, APPLICATION_DATA) {
                self.output.truncate(at);
                return Err(e);
            }
            next += self.record_len(got);
            left -= got;
        }
        self.output.truncate(next);
        Ok(read)
    }

    /// Append one record of `data` (at most [`MAX_PLAIN`] bytes) as content
    /// type `typ`.
    fn seal_bytes(&mut self, data: &[u8], typ: u8) -> io::Result<()> {
        let at = self.output.len();
        let zeros = [0u8; HEADER + EXPLICIT + 1 + TAG];
        self.output.extend_from_slice(&zeros[..HEADER + self.prefix()]);
        self.output.extend_from_slice(data);
        self.output.extend_from_slice(&zeros[..self.suffix()]);
        self.seal(at, data.len(), typ).inspect_err(|_| self.output.truncate(at))
    }

    /// Bytes before a record's plaintext beyond its header: TLS 1.2
    /// AES-GCM's explicit nonce.
    fn prefix(&self) -> usize {
        if self.keys.version == Version::Tls12 && self.keys.suite != Suite::Chacha20Poly1305 {
            EXPLICIT
        } else {
            0
        }
    }

    /// Bytes after a record's plaintext: TLS 1.3's hidden content type, and
    /// the tag.
    fn suffix(&self) -> usize {
        TAG + usize::from(self.keys.version == Version::Tls13)
    }

    /// What a record of `plain` bytes of plaintext takes, header included.
    fn record_len(&self, plain: usize) -> usize {
        HEADER + self.prefix() + plain + self.suffix()
    }

    /// Seal, as content type `typ`, the record laid out in `output` at
    /// `at`: its `plain` bytes of plaintext after the header (and explicit
    /// nonce), with room after them for the rest ([`Records::record_len`]).
    fn seal(&mut self, at: usize, plain: usize, typ: u8) -> io::Result<()> {
        if self.keys.tx.seq >= self.keys.suite.limit() {
            return Err(invalid("TLS key used up"));
        }
        let body = at + HEADER + self.prefix();
        let nonce = self.keys.tx.nonce();
        // TLS 1.3 hides the type inside (after the plaintext) and
        // authenticates the header; TLS 1.2 shows it and authenticates the
        // sequence number, header and plaintext length.
        let mut aad = [0; 13];
        let (outer, sealed, aad) = match self.keys.version {
            Version::Tls13 => {
                self.output[body + plain] = typ;
                let len = (plain + 1 + TAG) as u16;
                aad[..HEADER].copy_from_slice(&header(APPLICATION_DATA, len));
                (APPLICATION_DATA, plain + 1, &aad[..HEADER])
            }
            Version::Tls12 => {
                aad = aad12(self.keys.tx.seq, typ, plain);
                (typ, plain, &aad[..])
            }
        };
        let len = (self.prefix() + sealed + TAG) as u16;
        self.output[at..at + HEADER].copy_from_slice(&header(outer, len));
        if self.prefix() > 0 {
            self.output[at + HEADER..body].copy_from_slice(&nonce[4..]);
        }
        let nonce = Nonce::assume_unique_for_key(nonce);
        let tag = self
            .seal
            .seal_in_place_separate_tag(nonce, Aad::from(aad), &mut self.output[body..body + sealed])
            .map_err(|_| invalid("TLS record could not be sealed"))?;
        self.output[body + sealed..body + sealed + TAG].copy_from_slice(tag.as_ref());
        self.keys.tx.seq += 1;
        Ok(())
    }

    /// Write out the records sealed. True when none is left.
    pub(crate) fn flush(&mut self, raw: &mut Plain) -> io::Result<bool> {
        if self.sent < self.output.len() {
            self.sent += raw.send(&self.output[self.sent..], false)?;
            if self.sent < self.output.len() {
                return Ok(false);
            }
        }
        self.sent = 0;
        self.output.clear();
        Ok(true)
    }

    /// Waiting for the peer: let go of the buffers that are empty, so an
    /// idle connection holds none (they are made again for the next
    /// request; a response's records keep theirs until then).
    fn release(&mut self) {
        if self.end == 0 {
            self.input = Vec::new();
        }
        if self.output.is_empty() {
            self.output = Vec::new();
        }
    }

    /// Records are waiting for the socket.
    pub(crate) fn wants_write(&self) -> bool {
        self.sent < self.output.len()
    }

    /// Send close_notify (written if the socket takes it).
    pub(crate) fn close_notify(&mut self, raw: &mut Plain) {
        if self.seal_bytes(&[1, CLOSE_NOTIFY], ALERT).is_ok() {
            let _ = self.flush(raw);
        }
    }

    /// Tell the peer why (a fatal alert, written if the socket takes it),
    /// and give the error that ends the connection.
    fn fatal(&mut self, raw: &mut Plain, alert: u8, why: &'static str) -> io::Error {
        if self.seal_bytes(&[2, alert], ALERT).is_ok() {
            let _ = self.flush(raw);
        }
        invalid(why)
    }
}

fn header(typ: u8, len: u16) -> [u8; HEADER] {
    let l = len.to_be_bytes();
    [typ, VERSION[0], VERSION[1], l[0], l[1]]
}

/// TLS 1.2's additional data: sequence number, type, version, plaintext
/// length (RFC 5246 6.2.3.3).
fn aad12(seq: u64, typ: u8, len: usize) -> [u8; 13] {
    let mut a = [0; 13];
    a[..8].copy_from_slice(&seq.to_be_bytes());
    a[8..].copy_from_slice(&header(typ, len as u16));
    a
}

#[cfg(test)]
mod tests;
