//! HTTPS from the flags: every `--tls-cert` / `--tls-key` pair read,
//! checked and put behind a resolver that picks a certificate by the
//! client's SNI, all in the master before anything is bound or forked, so
//! that a bad file is one line and exit 2 rather than a failure in each
//! worker (or at the first handshake).
//!
//! The protocol choices are Mozilla's "intermediate" profile, written out
//! below rather than taken from the provider's defaults, so that a later
//! rustls cannot widen them unnoticed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::{fmt, io};

use oserver_core::{rustls, TicketKeys};
use rustls::crypto::{ring, CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};
use x509_parser::extensions::GeneralName;
use x509_parser::time::ASN1Time;

/// The ALPN protocols HTTPS accepts, ours first (rustls picks by our
/// order): `h2` unless `--no-http2`, then `http/1.1`, and `http/1.0` too,
/// which the server also speaks and which `curl --http1.0` offers alone:
/// without it rustls would end that handshake with
/// `no_application_protocol` (nginx lists both as well).
const ALPN: &[&[u8]] = &[b"h2", b"http/1.1", b"http/1.0"];

/// Mozilla's intermediate cipher suites that rustls implements: ECDHE key
/// exchange with AES-GCM or ChaCha20-Poly1305, in Mozilla's order, which is
/// the server's order (see `load`). Its DHE suites are not in rustls, and
/// neither is anything weaker, renegotiation or compression.
static CIPHER_SUITES: &[SupportedCipherSuite] = &[
    ring::cipher_suite::TLS13_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS13_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ring::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// Mozilla intermediate's curves: X25519, P-256, P-384.
static KX_GROUPS: &[&dyn SupportedKxGroup] =
    &[ring::kx_group::X25519, ring::kx_group::SECP256R1, ring::kx_group::SECP384R1];

/// One `--tls-cert` with the `--tls-key` given in the same position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    /// PEM: the certificate, then its chain.
    pub cert: PathBuf,
    /// PEM: its private key (PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
}

/// The HTTPS side of the configuration, ready for every worker.
#[derive(Debug, Clone)]
pub struct Https {
    /// The rustls configuration each worker's HTTPS listener serves with.
    pub config: Arc<ServerConfig>,
    /// One line per certificate, for the start-up log.
    pub certs: Vec<String>,
    /// Things worth a warning that do not stop the server (an expired
    /// certificate), logged once the logger runs.
    pub warnings: Vec<String>,
    /// The files it was loaded from, read again on SIGHUP.
    pub pairs: Vec<Pair>,
    /// ALPN offers `h2`.
    pub http2: bool,
}

impl Https {
    /// Read the certificate files again (SIGHUP, after a renewal). The
    /// session-ticket secret stays, so tickets issued before still resume.
    ///
    /// # Errors
    ///
    /// As [`load`]: the first unreadable, malformed or mismatched file.
    pub fn reload(&self) -> Result<Https, TlsError> {
        let mut fresh = load(&self.pairs, self.http2)?;
        if let Some(config) = Arc::get_mut(&mut fresh.config) {
            config.ticketer = Arc::clone(&self.config.ticketer);
        }
        Ok(fresh)
    }
}

/// Why the HTTPS flags or files are unusable.
#[derive(Debug)]
pub enum TlsError {
    /// `--tls-cert` or `--tls-key` without `--https-port`.
    NeedsPort,
    /// `--https-port` without a certificate.
    NeedsCert,
    /// Not as many keys as certificates.
    Unpaired {
        /// `--tls-cert` flags given.
        certs: usize,
        /// `--tls-key` flags given.
        keys: usize,
    },
    /// A file cannot be opened or read.
    Read(&'static str, PathBuf, io::Error),
    /// A file is not well-formed PEM.
    Pem(&'static str, PathBuf, pem::Error),
    /// A certificate file holds no certificate.
    NoCert(PathBuf),
    /// A key file holds no (unencrypted) private key.
    NoKey(PathBuf),
    /// A certificate that does not parse.
    BadCert(PathBuf, String),
    /// A key the crypto provider cannot sign with.
    BadKey(PathBuf, rustls::Error),
    /// The key is not the certificate's.
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file given with it.
        key: PathBuf,
    },
    /// rustls refused the configuration (not expected with these choices).
    Config(rustls::Error),
    /// No random bytes for the session-ticket secret.
    Random,
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NeedsPort => f.write_str("--tls-cert and --tls-key need --https-port"),
            TlsError::NeedsCert => f.write_str("--https-port needs --tls-cert PATH and --tls-key PATH"),
            TlsError::Unpaired { certs, keys } => write!(
                f,
                "--tls-cert and --tls-key go in pairs, the i-th key with the i-th certificate: \
                 {certs} certificate(s), {keys} key(s)"
            ),
            TlsError::Read(flag, p, e) => write!(f, "{flag} {}: {e}", p.display()),
            TlsError::Pem(flag, p, e) => write!(f, "{flag} {}: not a valid PEM file: {e}", p.display()),
            TlsError::NoCert(p) => write!(f, "--tls-cert {}: no certificate (PEM CERTIFICATE) in the file", p.display()),
            TlsError::NoKey(p) => write!(
                f,
                "--tls-key {}: no unencrypted private key (PEM PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY) \
                 in the file",
                p.display()
            ),
            TlsError::BadCert(p, e) => write!(f, "--tls-cert {}: not a valid X.509 certificate: {e}", p.display()),
            TlsError::BadKey(p, e) => write!(f, "--tls-key {}: unusable key: {e}", p.display()),
            TlsError::Mismatch { cert, key } => write!(
                f,
                "--tls-key {} does not match the certificate of --tls-cert {}",
                key.display(),
                cert.display()
            ),
            TlsError::Config(e) => write!(f, "TLS configuration: {e}"),
            TlsError::Random => f.write_str("TLS session tickets: the system gave no random bytes"),
        }
    }
}

impl std::error::Error for TlsError {}

/// Pair the flags: `None` without HTTPS, else the port and the pairs in
/// the order given (the first is the default certificate).
///
/// # Errors
///
/// A certificate or key without a port, a port without a certificate, or
/// unequal numbers of certificates and keys.
pub fn pairs(
    port: Option<u16>,
    certs: Vec<PathBuf>,
    keys: Vec<PathBuf>,
) -> Result<Option<(u16, Vec<Pair>)>, TlsError> {
    let Some(port) = port else {
        if certs.is_empty() && keys.is_empty() {
            return Ok(None);
        }
        return Err(TlsError::NeedsPort);
    };
    if certs.len() != keys.len() {
        return Err(TlsError::Unpaired { certs: certs.len(), keys: keys.len() });
    }
    if certs.is_empty() {
        return Err(TlsError::NeedsCert);
    }
    Ok(Some((port, certs.into_iter().zip(keys).map(|(cert, key)| Pair { cert, key }).collect())))
}

/// Read every pair and build the server configuration.
///
/// # Errors
///
/// See [`TlsError`]: the first unreadable, malformed or mismatched file.
pub fn load(pairs: &[Pair], http2: bool) -> Result<Https, TlsError> {
    let provider = Arc::new(provider());
    let now = ASN1Time::now();
    let mut resolver = ByName::default();
    let mut certs = Vec::with_capacity(pairs.len());
    let mut warnings = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let chain = read_chain(&pair.cert)?;
        let facts = Facts::of(&pair.cert, &chain[0])?;
        let key = read_key(&pair.key)?;
        let signer =
            provider.key_provider.load_private_key(key).map_err(|e| TlsError::BadKey(pair.key.clone(), e))?;
        let certified = CertifiedKey::new(chain, signer);
        match certified.keys_match() {
            Ok(()) => {}
            // ring gives the public key of every key type it loads; should
            // one not, the handshake's own signature is the remaining check.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::Mismatch { cert: pair.cert.clone(), key: pair.key.clone() })
            }
            Err(e) => return Err(TlsError::BadCert(pair.cert.clone(), e.to_string())),
        }
        warnings.extend(facts.warnings(&pair.cert, now, i));
        certs.push(facts.summary(&pair.cert));
        resolver.add(Arc::new(certified), &facts.names);
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Config)?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = ALPN.iter().filter(|p| http2 || **p != b"h2").map(|p| p.to_vec()).collect();
    // The server's order (AES-128-GCM first), not the client's: testssl
    // flags a server without a cipher order, and among these suites, all
    // strong, the cheapest one is the better default.
    config.ignore_client_order = true;
    // Loaded in the master before the fork: every worker inherits the same
    // ticket secret, so a ticket from one resumes on any other.
    config.ticketer = TicketKeys::new().map_err(|_| TlsError::Random)?.ticketer();
    // A connection handed to the worker on its client's CPU takes its
    // record keys along (see oserver-core's handoff); only our own workers
    // ever see them.
    config.enable_secret_extraction = true;
    Ok(Https { config: Arc::new(config), certs, warnings, pairs: pairs.to_vec(), http2 })
}

/// The ring provider narrowed to Mozilla intermediate.
fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: CIPHER_SUITES.to_vec(),
        kx_groups: KX_GROUPS.to_vec(),
        ..ring::default_provider()
    }
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem_err = |e| match e {
        pem::Error::Io(e) => TlsError::Read("--tls-cert", path.to_path_buf(), e),
        e => TlsError::Pem("--tls-cert", path.to_path_buf(), e),
    };
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(pem_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_err)?;
    if chain.is_empty() {
        return Err(TlsError::NoCert(path.to_path_buf()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::Io(e) => TlsError::Read("--tls-key", path.to_path_buf(), e),
        pem::Error::NoItemsFound => TlsError::NoKey(path.to_path_buf()),
        e => TlsError::Pem("--tls-key", path.to_path_buf(), e),
    })
}

/// What the start-up needs to know of a leaf certificate.
struct Facts {
    /// Its DNS names (subject alternative names), lower case.
    names: Vec<String>,
    not_before: ASN1Time,
    not_after: ASN1Time,
}

impl Facts {
    fn of(path: &Path, der: &CertificateDer<'_>) -> Result<Facts, TlsError> {
        let bad = |e: String| TlsError::BadCert(path.to_path_buf(), e);
        let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| bad(e.to_string()))?;
        let mut names = Vec::new();
        if let Some(san) = cert.subject_alternative_name().map_err(|e| bad(e.to_string()))? {
            for name in &san.value.general_names {
                if let GeneralName::DNSName(n) = name {
                    names.push(n.trim_end_matches('.').to_ascii_lowercase());
                }
            }
        }
        let validity = cert.validity();
        Ok(Facts { names, not_before: validity.not_before, not_after: validity.not_after })
    }

    fn warnings(&self, path: &Path, now: ASN1Time, index: usize) -> Vec<String> {
        let mut w = Vec::new();
        let p = path.display();
        if now > self.not_after {
            w.push(format!(
                "--tls-cert {p}: the certificate expired on {}; serving it anyway",
                self.not_after
            ));
        } else if now < self.not_before {
            w.push(format!(
                "--tls-cert {p}: the certificate is not valid before {}; serving it anyway",
                self.not_before
            ));
        }
        if index > 0 && self.names.iter().all(|n| !usable(n)) {
            w.push(format!(
                "--tls-cert {p}: no DNS name in its subject alternative names: never chosen by SNI \
                 (only the first certificate serves clients without a known name)"
            ));
        }
        for n in self.names.iter().filter(|n| !usable(n)) {
            w.push(format!(
                "--tls-cert {p}: name {n:?} ignored: a wildcard can only be a whole first label \
                 (*.example.com)"
            ));
        }
        w
    }

    fn summary(&self, path: &Path) -> String {
        let names = if self.names.is_empty() { "no DNS names".to_string() } else { self.names.join(", ") };
        format!("{} for {names} (until {})", path.display(), self.not_after)
    }
}

/// A DNS name the resolver can match: no `*`, or `*` as the whole first label.
fn usable(name: &str) -> bool {
    match name.strip_prefix("*.") {
        Some(rest) => !rest.is_empty() && !rest.contains('*'),
        None => !name.is_empty() && !name.contains('*'),
    }
}

/// Picks a certificate by the client's SNI: an exact DNS name first, then a
/// wildcard `*.parent` for a name one label below `parent` (RFC 6125 6.4.3:
/// the wildcard covers exactly one label, so not `parent` itself and not
/// two labels down), else the first certificate. When several certificates
/// carry a name, the one given first wins.
#[derive(Debug, Default)]
struct ByName {
    /// In flag order; the first is the default.
    certs: Vec<Arc<CertifiedKey>>,
    exact: HashMap<String, usize>,
    /// `*.parent` is filed under `parent`.
    wildcard: HashMap<String, usize>,
}

impl ByName {
    fn add(&mut self, cert: Arc<CertifiedKey>, names: &[String]) {
        let i = self.certs.len();
        self.certs.push(cert);
        for name in names.iter().filter(|n| usable(n)) {
            match name.strip_prefix("*.") {
                Some(parent) => self.wildcard.entry(parent.to_string()).or_insert(i),
                None => self.exact.entry(name.clone()).or_insert(i),
            };
        }
    }

    /// The index of the certificate for `sni`.
    fn pick(&self, sni: Option<&str>) -> usize {
        let Some(sni) = sni else { return 0 };
        // rustls hands over a validated DNS name; SNI is ASCII (IDNs travel
        // as A-labels) and case-insensitive.
        let name = sni.trim_end_matches('.').to_ascii_lowercase();
        if let Some(&i) = self.exact.get(&name) {
            return i;
        }
        match name.split_once('.') {
            Some((label, parent)) if !label.is_empty() => self.wildcard.get(parent).copied().unwrap_or(0),
            _ => 0,
        }
    }
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.certs.get(self.pick(hello.server_name())).cloned()
    }
}

/// The end-to-end tests' certificate maker (a file-level `#[path]`: one
/// inside `mod tests` would start from the missing `src/tls/tests/`).
#[cfg(test)]
#[path = "../../../tests/e2e/certs.rs"]
mod test_certs;

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use rustls::pki_types::ServerName;
    use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConnection};

    use super::test_certs as certs;
    use certs::{Ca, Leaf};

    /// A scratch directory, removed on drop.
    struct Dir(PathBuf);

    impl Dir {
        fn new(tag: &str) -> Dir {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("oserver-tls-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Dir(p)
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, text).unwrap();
            p
        }

        /// Write a leaf's chain and key; the pair of flags for them.
        fn pair(&self, name: &str, leaf: &Leaf) -> Pair {
            Pair {
                cert: self.file(&format!("{name}.crt"), &leaf.chain_pem),
                key: self.file(&format!("{name}.key"), &leaf.key_pem),
            }
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn pairs_from_flags() {
        assert!(pairs(None, vec![], vec![]).unwrap().is_none());
        let got = pairs(Some(8443), vec![p("a.crt"), p("b.crt")], vec![p("a.key"), p("b.key")]).unwrap();
        assert_eq!(
            got,
            Some((
                8443,
                vec![Pair { cert: p("a.crt"), key: p("a.key") }, Pair { cert: p("b.crt"), key: p("b.key") }]
            ))
        );
        let table: &[(Option<u16>, usize, usize, &str)] = &[
            (None, 1, 1, "need --https-port"),
            (None, 1, 0, "need --https-port"),
            (None, 0, 1, "need --https-port"),
            (Some(8443), 0, 0, "--https-port needs"),
            (Some(8443), 1, 0, "1 certificate(s), 0 key(s)"),
            (Some(8443), 1, 2, "1 certificate(s), 2 key(s)"),
        ];
        for &(port, c, k, want) in table {
            let e = pairs(port, vec![p("c"); c], vec![p("k"); k]).unwrap_err().to_string();
            assert!(e.contains(want), "{port:?} {c} {k}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn wildcards_cover_one_label() {
        let table: &[(&str, bool)] = &[
            ("*.example.com", true),
            ("example.com", true),
            ("*", false),
            ("*.", false),
            ("f*.example.com", false),
            ("*.*.example.com", false),
            ("a.*.example.com", false),
            ("", false),
        ];
        for (name, want) in table {
            assert_eq!(usable(name), *want, "{name}");
        }
    }

    /// A resolver over fake keys: only the index matters to `pick`.
    fn resolver(names: &[&[&str]]) -> ByName {
        let ca = Ca::root("pick CA");
        let mut r = ByName::default();
        for n in names {
            let leaf = ca.leaf(&["x.test"]);
            let chain = vec![CertificateDer::from_pem_slice(leaf.cert_pem.as_bytes()).unwrap()];
            let key = provider()
                .key_provider
                .load_private_key(PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap())
                .unwrap();
            let names: Vec<String> = n.iter().map(|s| s.to_string()).collect();
            r.add(Arc::new(CertifiedKey::new(chain, key)), &names);
        }
        r
    }

    #[test]
    fn sni_picks_by_name() {
        let r = resolver(&[
            &["default.test"],
            &["*.example.com"],
            &["www.example.com", "example.com"],
            &["*.example.com", "other.test"],
            &["a.b.example.com"],
        ]);
        let table: &[(Option<&str>, usize)] = &[
            (None, 0),
            (Some("default.test"), 0),
            (Some("unknown.test"), 0),
            (Some("a.example.com"), 1),
            (Some("A.Example.COM"), 1),
            // An exact name beats a wildcard, whatever the order.
            (Some("www.example.com"), 2),
            (Some("example.com"), 2),
            // A wildcard does not cover two labels down; a name of its own does.
            (Some("x.y.example.com"), 0),
            (Some("a.b.example.com"), 4),
            (Some("other.test"), 3),
            (Some("example.com."), 2),
        ];
        for (sni, want) in table {
            assert_eq!(r.pick(*sni), *want, "{sni:?}");
        }
        // `*.example.com` is not `example.com` itself.
        let r = resolver(&[&["first.test"], &["*.example.com"]]);
        assert_eq!(r.pick(Some("example.com")), 0);
        assert_eq!(r.pick(Some("com")), 0);
    }

    #[test]
    fn suites_are_mozilla_intermediate() {
        use rustls::{CipherSuite, NamedGroup};
        for s in CIPHER_SUITES {
            let name = format!("{:?}", s.suite());
            let aead = name.contains("AES_128_GCM")
                || name.contains("AES_256_GCM")
                || name.contains("CHACHA20_POLY1305");
            let kx = name.starts_with("TLS13_") || name.starts_with("TLS_ECDHE_");
            assert!(aead && kx, "{name}");
        }
        // Nothing the provider offers is left out: it offers only these.
        assert_eq!(CIPHER_SUITES.len(), ring::ALL_CIPHER_SUITES.len());
        assert!(CIPHER_SUITES.iter().any(|s| s.suite() == CipherSuite::TLS13_AES_128_GCM_SHA256));
        let groups: Vec<NamedGroup> = KX_GROUPS.iter().map(|g| g.name()).collect();
        assert_eq!(groups, [NamedGroup::X25519, NamedGroup::secp256r1, NamedGroup::secp384r1]);
    }

    /// A handshake in memory, over a socket pair's worth of buffers: the
    /// certificate the client was given, and the negotiated ALPN and
    /// version.
    struct Seen {
        subject_der: Vec<u8>,
        alpn: Option<Vec<u8>>,
        version: Option<rustls::ProtocolVersion>,
    }

    fn handshake(
        server: &Arc<ServerConfig>,
        ca_pem: &str,
        sni: &str,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Result<Seen, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap()).unwrap();
        let mut client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut c = ClientConnection::new(Arc::new(client), ServerName::try_from(sni.to_string()).unwrap())?;
        let mut s = ServerConnection::new(Arc::clone(server))?;
        // Shuttle records until neither side has more to say.
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                s.read_tls(&mut &buf[..]).unwrap();
                s.process_new_packets()?;
            }
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            if !buf.is_empty() {
                c.read_tls(&mut &buf[..]).unwrap();
                c.process_new_packets()?;
            }
            if !c.is_handshaking() && !s.is_handshaking() {
                break;
            }
        }
        assert!(!c.is_handshaking(), "handshake did not finish");
        let leaf = c.peer_certificates().unwrap()[0].clone();
        Ok(Seen {
            subject_der: leaf.to_vec(),
            alpn: c.alpn_protocol().map(<[u8]>::to_vec),
            version: c.protocol_version(),
        })
    }

    fn der_of(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap().to_vec()
    }

    #[test]
    fn loads_pairs_and_serves_by_sni() {
        let root = Ca::root("test root");
        let inter = root.intermediate("test intermediate");
        let dir = Dir::new("sni");
        let a = inter.leaf(&["a.test"]);
        let b = inter.leaf(&["b.test", "*.wild.test"]);
        let https = load(&[dir.pair("a", &a), dir.pair("b", &b)], true).unwrap();
        assert!(https.warnings.is_empty(), "{:?}", https.warnings);
        assert_eq!(https.certs.len(), 2);
        assert!(https.certs[1].contains("b.test, *.wild.test"), "{}", https.certs[1]);
        let v13: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
        let v12: &[&'static rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
        for (sni, want) in [("a.test", &a), ("b.test", &b), ("x.wild.test", &b), ("unknown.test", &a)] {
            for versions in [v13, v12] {
                let seen = handshake(&https.config, &root.cert_pem, sni, versions);
                if sni == "unknown.test" {
                    // The default certificate is served; the client (rightly)
                    // refuses it for a name it does not carry.
                    let e = seen.err().expect("a name mismatch");
                    assert!(e.to_string().contains("certificate"), "{e}");
                    continue;
                }
                let seen = seen.unwrap_or_else(|e| panic!("{sni}: {e}"));
                assert_eq!(seen.subject_der, der_of(&want.cert_pem), "{sni}");
                assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]), "{sni}");
                assert_eq!(seen.version, Some(versions[0].version), "{sni}");
            }
        }
    }

    #[test]
    fn expired_certificate_is_a_warning() {
        let ca = Ca::root("test root");
        let dir = Dir::new("expired");
        let pair = dir.pair("old", &ca.leaf_valid(&["old.test"], (2020, 2021)));
        let https = load(&[pair], true).unwrap();
        assert_eq!(https.warnings.len(), 1, "{:?}", https.warnings);
        assert!(https.warnings[0].contains("expired on"), "{}", https.warnings[0]);
        assert!(https.warnings[0].contains("old.crt"), "{}", https.warnings[0]);
        let pair = dir.pair("new", &ca.leaf_valid(&["new.test"], (4000, 4001)));
        let https = load(&[pair], true).unwrap();
        assert!(https.warnings[0].contains("not valid before"), "{:?}", https.warnings);
    }

    #[test]
    fn names_that_cannot_match_are_warnings() {
        let ca = Ca::root("test root");
        let dir = Dir::new("names");
        let first = dir.pair("first", &ca.leaf(&["first.test"]));
        // No DNS name at all: fine as the default, useless after it.
        let bare = dir.pair("bare", &ca.leaf(&[]));
        let https = load(&[first.clone(), bare.clone()], true).unwrap();
        assert_eq!(https.warnings.len(), 1, "{:?}", https.warnings);
        assert!(https.warnings[0].contains("bare.crt") && https.warnings[0].contains("never chosen"));
        assert!(load(&[bare, first.clone()], true).unwrap().warnings.is_empty());
        // A partial wildcard is skipped with a word; the other names still count.
        let partial = dir.pair("partial", &ca.leaf(&["f*.example.test", "ok.test"]));
        let https = load(&[first, partial], true).unwrap();
        assert_eq!(https.warnings.len(), 1, "{:?}", https.warnings);
        assert!(https.warnings[0].contains("\"f*.example.test\" ignored"), "{}", https.warnings[0]);
    }

    #[test]
    fn file_errors_are_one_line() {
        let ca = Ca::root("test root");
        let dir = Dir::new("errors");
        let a = ca.leaf(&["a.test"]);
        let b = ca.leaf(&["b.test"]);
        let good = dir.pair("a", &a);
        let missing = dir.0.join("missing.pem");
        let empty = dir.file("empty.pem", "");
        let junk =
            dir.file("junk.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
        let encrypted = dir.file(
            "enc.key",
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let other_key = dir.file("b.key", &b.key_pem);
        let not_a_cert =
            dir.file("garbage.crt", "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n");
        let pair = |cert: &Path, key: &Path| Pair { cert: cert.to_path_buf(), key: key.to_path_buf() };
        let table: Vec<(Pair, &str)> = vec![
            (pair(&missing, &good.key), "--tls-cert"),
            (pair(&good.cert, &missing), "--tls-key"),
            (pair(&dir.0, &good.key), "--tls-cert"),
            (pair(&empty, &good.key), "no certificate"),
            // A key file holds no certificate, a certificate file no key.
            (pair(&good.key, &good.key), "no certificate"),
            (pair(&good.cert, &good.cert), "no unencrypted private key"),
            (pair(&good.cert, &encrypted), "no unencrypted private key"),
            (pair(&junk, &good.key), "not a valid PEM file"),
            (pair(&not_a_cert, &good.key), "not a valid X.509 certificate"),
            (pair(&good.cert, &other_key), "does not match"),
        ];
        for (pair, want) in table {
            let e = match load(std::slice::from_ref(&pair), true) {
                Ok(_) => panic!("{pair:?} loaded"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(want), "{pair:?}: {e}");
            assert!(!e.contains('\n'), "{e}");
        }
        let e = load(&[pair(&missing, &good.key)], true).unwrap_err().to_string();
        assert!(e.contains("missing.pem") && e.contains("No such file"), "{e}");
        // A mismatch in a later pair is found too.
        let e = load(&[good.clone(), pair(&dir.file("b.crt", &b.chain_pem), &good.key)], true).unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
    }

    #[test]
    fn key_formats() {
        let ca = Ca::root("test root");
        let dir = Dir::new("keys");
        // PKCS#8 (rcgen's own form), ECDSA P-256 and Ed25519.
        let leaf = ca.leaf(&["p8.test"]);
        assert!(leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        load(&[dir.pair("p8", &leaf)], true).unwrap();
        let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        load(&[dir.pair("ed", &ca.leaf_for(ed, &["ed.test"], (1975, 4096)))], true).unwrap();
        // SEC1 and PKCS#1 need openssl to write them.
        let Some(sec1) = certs::sec1_of(&leaf.key_pem) else {
            eprintln!("skipped: SEC1 and PKCS#1 keys (openssl is not installed)");
            return;
        };
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{sec1}");
        load(&[Pair { cert: dir.file("sec1.crt", &leaf.chain_pem), key: dir.file("sec1.key", &sec1) }], true)
            .unwrap();
        let (pkcs1, rsa) = certs::rsa_pkcs1().expect("openssl");
        assert!(pkcs1.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "{pkcs1}");
        let rsa_leaf = ca.leaf_for(rsa, &["rsa.test"], (1975, 4096));
        let rsa_pair =
            Pair { cert: dir.file("rsa.crt", &rsa_leaf.chain_pem), key: dir.file("rsa.key", &pkcs1) };
        let https = load(std::slice::from_ref(&rsa_pair), true).unwrap();
        // An RSA certificate serves both versions (ECDHE_RSA suites in 1.2).
        for v in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let seen = handshake(&https.config, &ca.cert_pem, "rsa.test", &[v]).unwrap();
            assert_eq!(seen.subject_der, der_of(&rsa_leaf.cert_pem));
        }
        // The RSA key with the ECDSA certificate: a mismatch across key types.
        let e = load(&[Pair { cert: dir.file("p8b.crt", &leaf.chain_pem), key: rsa_pair.key }], true)
            .unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e}");
    }

    /// The configuration works over a real socket with rustls on both ends
    /// (a sanity check of the pieces the workers get).
    #[test]
    fn serves_over_a_socket() {
        let ca = Ca::root("test root");
        let dir = Dir::new("socket");
        let https = load(&[dir.pair("s", &ca.leaf(&["s.test"]))], true).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let config = Arc::clone(&https.config);
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let mut conn = ServerConnection::new(config).unwrap();
            let mut tls = rustls::Stream::new(&mut conn, &mut sock);
            let mut buf = [0u8; 5];
            tls.read_exact(&mut buf).unwrap();
            tls.write_all(b"pong!").unwrap();
            buf
        });
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca.cert_pem.as_bytes()).unwrap()).unwrap();
        let client = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut conn =
            ClientConnection::new(Arc::new(client), ServerName::try_from("s.test").unwrap()).unwrap();
        let mut sock = TcpStream::connect(addr).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut sock);
        tls.write_all(b"ping!").unwrap();
        let mut back = [0u8; 5];
        tls.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"pong!");
        assert_eq!(&server.join().unwrap(), b"ping!");
    }
}
