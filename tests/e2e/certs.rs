//! Test certificates made at test time with rcgen: a private root CA, an
//! intermediate it signs, and leaves the intermediate signs, as PEM text.
//! Shared by the end-to-end tests and the CLI's unit tests (`tls.rs`
//! includes this file by path), so neither ships a key.
//!
//! `openssl` turns keys into the other PEM forms (SEC1, PKCS#1) where rcgen
//! with ring cannot; those helpers return `None` when it is not installed.

// Not every user takes every helper.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Command, Stdio};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority: its certificate and the key that signs with it.
pub struct Ca {
    /// The CA's certificate, PEM.
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// This CA and the ones above it up to the root, root excluded, PEM.
    chain: String,
}

/// A leaf certificate and its key.
pub struct Leaf {
    /// The leaf certificate alone, PEM.
    pub cert_pem: String,
    /// The leaf, then the intermediates up to (not including) the root,
    /// as a server's `fullchain.pem` holds them.
    pub chain_pem: String,
    /// Its private key, PKCS#8 PEM (`PRIVATE KEY`).
    pub key_pem: String,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, name);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p
}

impl Ca {
    /// A self-signed root CA named `name` (ECDSA P-256).
    pub fn root(name: &str) -> Ca {
        let key = KeyPair::generate().expect("CA key");
        let params = ca_params(name);
        let cert = params.self_signed(&key).expect("CA certificate");
        Ca { cert_pem: cert.pem(), issuer: Issuer::new(params, key), chain: String::new() }
    }

    /// An intermediate CA signed by this one.
    pub fn intermediate(&self, name: &str) -> Ca {
        let key = KeyPair::generate().expect("intermediate key");
        let params = ca_params(name);
        let cert_pem = params.signed_by(&key, &self.issuer).expect("intermediate certificate").pem();
        let chain = format!("{cert_pem}{}", self.chain);
        Ca { cert_pem, issuer: Issuer::new(params, key), chain }
    }

    /// A server certificate for `names` (DNS names, wildcards allowed),
    /// valid from 1975 to 4096, its subject's CN the first name.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_valid(names, (1975, 4096))
    }

    /// Like [`leaf`](Self::leaf), valid from January 1st of the first year
    /// to January 1st of the second (`(2020, 2021)` is expired).
    pub fn leaf_valid(&self, names: &[&str], years: (i32, i32)) -> Leaf {
        self.leaf_for(KeyPair::generate().expect("leaf key"), names, years)
    }

    /// A server certificate for `names` with a key of the caller's.
    pub fn leaf_for(&self, key: KeyPair, names: &[&str], years: (i32, i32)) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("leaf names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, names.first().map_or("no name", |s| s.as_str()));
        params.not_before = rcgen::date_time_ymd(years.0, 1, 1);
        params.not_after = rcgen::date_time_ymd(years.1, 1, 1);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("leaf certificate");
        let cert_pem = cert.pem();
        Leaf { chain_pem: format!("{cert_pem}{}", self.chain), cert_pem, key_pem: key.serialize_pem() }
    }
}

/// Run `openssl ARGS` with `input` on stdin; its stdout, or `None` when
/// openssl is not installed. Panics when openssl fails.
pub fn openssl(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    let mut child = match Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("openssl: {e}"),
    };
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("openssl output");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.stdout)
}

/// A PKCS#8 P-256 key rewritten as SEC1 (`EC PRIVATE KEY`, with the curve
/// named), as `openssl ec` writes it.
pub fn sec1_of(pkcs8_pem: &str) -> Option<String> {
    openssl(&["ec", "-outform", "PEM"], pkcs8_pem.as_bytes()).map(|b| String::from_utf8(b).expect("PEM"))
}

/// A fresh 2048-bit RSA key, as (PKCS#1 PEM `RSA PRIVATE KEY`, the same
/// key as an rcgen key pair to sign a certificate for it).
pub fn rsa_pkcs1() -> Option<(String, KeyPair)> {
    let pkcs1 = openssl(&["genrsa", "-traditional", "2048"], b"")?;
    let pkcs8 = openssl(&["pkey"], &pkcs1)?;
    let key = KeyPair::from_pem(std::str::from_utf8(&pkcs8).expect("PEM")).expect("RSA key for rcgen");
    Some((String::from_utf8(pkcs1).expect("PEM"), key))
}
