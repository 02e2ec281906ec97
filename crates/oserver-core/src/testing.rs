//! What tests in any layer share: small helpers over real sockets, and a
//! generator for property tests' turn-by-turn choices.

use std::os::fd::RawFd;
use std::sync::Arc;

/// Set a socket's SO_SNDBUF or SO_RCVBUF (the kernel doubles the value).
pub(crate) fn set_buffer(fd: RawFd, which: libc::c_int, bytes: libc::c_int) {
    // SAFETY: the option reads one int through the pointer.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            which,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
}

/// Bytes waiting to be read in socket `fd` (FIONREAD).
pub(crate) fn unread(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int through the pointer.
    unsafe { libc::ioctl(fd, libc::FIONREAD, &mut n) };
    n.max(0) as usize
}

/// Bytes socket `fd` has sent that the other end has not acknowledged
/// (TIOCOUTQ).
pub(crate) fn unsent(fd: RawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one int through the pointer.
    unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    n.max(0) as usize
}

/// A small deterministic generator for what a property test's case does
/// turn by turn: seeded from the case, so a failing case replays.
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A server's TLS configuration for tests over real sockets: a self-signed
/// ECDSA certificate for `localhost` (made once per test process), TLS 1.2
/// and 1.3, ALPN `h2` and `http/1.1`, and the keys allowed out, so a
/// connection can move to our own record layer as a handoff moves it.
/// Also the certificate, for the client to trust.
pub(crate) fn tls_server_config() -> (Arc<rustls::ServerConfig>, rustls::pki_types::CertificateDer<'static>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    static MADE: std::sync::OnceLock<(
        Arc<rustls::ServerConfig>,
        rustls::pki_types::CertificateDer<'static>,
    )> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().self_signed(&key).unwrap();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)
            .unwrap();
        config.enable_secret_extraction = true;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        (Arc::new(config), cert.der().clone())
    })
    .clone()
}
