//! TLS session tickets that every worker can open.
//!
//! rustls's own ticketer makes a random key in each process, so a ticket
//! issued by one worker would not resume on another. [`TicketKeys`] holds one
//! random secret instead, made once (by a master before it forks, or by an
//! embedder before it starts its loops); every copy derives the same key for
//! the same period from it. Keys rotate every [`PERIOD`]: a ticket is sealed
//! with the current period's key and opened with the current or the previous
//! one, so it stays usable for its whole lifetime across a rotation.
//!
//! Tickets are ChaCha20-Poly1305 (ring), the key of period `p` is
//! HKDF-SHA256(secret, info = "oserver ticket key" || p), and a ticket is
//! `p (8 bytes) || nonce (12 bytes, random) || ciphertext || tag`, with `p`
//! and the nonce authenticated as associated data.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

/// How long one key seals tickets: 12 hours. With the previous key still
/// accepted, a ticket can be opened for 12 to 24 hours after it was issued;
/// its lifetime (below) is what clients are told.
pub const PERIOD: u64 = 12 * 60 * 60;

/// The lifetime clients are told: one period, so every ticket can still be
/// opened until it expires.
const LIFETIME: u32 = PERIOD as u32;

/// Bytes before the ciphertext: the period and the nonce.
const HEADER: usize = 8 + NONCE_LEN;

/// A secret from which every process that holds a copy derives the same
/// ticket keys; see the module documentation.
///
/// # Example
///
/// ```
/// use oserver_core::TicketKeys;
///
/// let keys = TicketKeys::new().expect("random bytes");
/// let mut config = oserver_core::rustls::ServerConfig::builder()
///     .with_no_client_auth()
///     .with_cert_resolver(std::sync::Arc::new(oserver_core::rustls::server::ResolvesServerCertUsingSni::new()));
/// config.ticketer = keys.ticketer();
/// // Fork, or start loops on other threads: each copy opens the others' tickets.
/// ```
#[derive(Clone)]
pub struct TicketKeys {
    secret: [u8; 32],
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys").finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// A new random secret.
    ///
    /// # Errors
    ///
    /// The system's random source failed.
    pub fn new() -> Result<TicketKeys, ring::error::Unspecified> {
        let mut secret = [0u8; 32];
        SystemRandom::new().fill(&mut secret)?;
        Ok(TicketKeys { secret })
    }

    /// A ticketer for a `rustls::ServerConfig` (its `ticketer` field).
    pub fn ticketer(&self) -> Arc<dyn ProducesTickets> {
        Arc::new(Ticketer { keys: self.clone(), rng: SystemRandom::new() })
    }

    /// The key of period `p`.
    fn key(&self, p: u64) -> LessSafeKey {
        let prk = Salt::new(HKDF_SHA256, b"").extract(&self.secret);
        let info = [b"oserver ticket key".as_slice(), &p.to_be_bytes()];
        let mut key = [0u8; 32];
        // Both cannot fail: the output length is HKDF-SHA256's and the key's.
        let okm = prk.expand(&info, &CHACHA20_POLY1305).expect("HKDF length");
        okm.fill(&mut key).expect("HKDF fill");
        LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &key).expect("key length"))
    }
}

fn current_period() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) / PERIOD
}

struct Ticketer {
    keys: TicketKeys,
    rng: SystemRandom,
}

impl std::fmt::Debug for Ticketer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticketer").finish_non_exhaustive()
    }
}

impl Ticketer {
    fn seal(&self, p: u64, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(HEADER + plain.len() + CHACHA20_POLY1305.tag_len());
        out.extend_from_slice(&p.to_be_bytes());
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        let aad = Aad::from(&out[..HEADER]);
        self.keys
            .key(p)
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad, &mut body)
            .ok()?;
        out.extend_from_slice(&body);
        Some(out)
    }

    fn open(&self, now: u64, ticket: &[u8]) -> Option<Vec<u8>> {
        let (header, sealed) = ticket.split_at_checked(HEADER)?;
        let p = u64::from_be_bytes(header[..8].try_into().ok()?);
        if p != now && p.checked_add(1) != Some(now) {
            return None;
        }
        let nonce = Nonce::try_assume_unique_for_key(&header[8..]).ok()?;
        let mut body = sealed.to_vec();
        let plain = self.keys.key(p).open_in_place(nonce, Aad::from(header), &mut body).ok()?;
        Some(plain.to_vec())
    }
}

impl ProducesTickets for Ticketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        LIFETIME
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.seal(current_period(), plain)
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        self.open(current_period(), cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticketer(keys: &TicketKeys) -> Ticketer {
        Ticketer { keys: keys.clone(), rng: SystemRandom::new() }
    }

    #[test]
    fn copies_open_each_others_tickets_and_strangers_do_not() {
        let keys = TicketKeys::new().unwrap();
        let (a, b) = (ticketer(&keys), ticketer(&keys.clone()));
        let t = a.encrypt(b"session state").unwrap();
        assert_eq!(b.decrypt(&t).as_deref(), Some(&b"session state"[..]));
        let stranger = ticketer(&TicketKeys::new().unwrap());
        assert_eq!(stranger.decrypt(&t), None);
    }

    #[test]
    fn keys_rotate_and_the_previous_one_is_still_accepted() {
        let t = ticketer(&TicketKeys::new().unwrap());
        let sealed = t.seal(100, b"x").unwrap();
        assert_eq!(t.open(100, &sealed).as_deref(), Some(&b"x"[..]));
        assert_eq!(t.open(101, &sealed).as_deref(), Some(&b"x"[..]), "previous period");
        assert_eq!(t.open(102, &sealed), None, "two periods on: expired");
        assert_eq!(t.open(99, &sealed), None, "from the future");
        assert_ne!(t.seal(100, b"x").unwrap(), sealed, "a fresh nonce each time");
    }

    #[test]
    fn tampered_or_short_tickets_are_refused() {
        let t = ticketer(&TicketKeys::new().unwrap());
        let now = current_period();
        let sealed = t.seal(now, b"state").unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            // Flipping the period's lowest bit may name the previous period,
            // which is then the wrong key: refused all the same.
            assert_eq!(t.open(now, &bad), None, "byte {i}");
        }
        for n in 0..HEADER + 16 {
            assert_eq!(t.open(now, &sealed[..n.min(sealed.len())]), None, "{n} bytes");
        }
    }
}
