//! End-to-end suite: starts the real `oserver` binary on a free port and talks
//! raw bytes to it over TCP on 127.0.0.1.
//!
//! The document root of the default server is the repository root, so the
//! fixtures are reached as `/httptest/...`. The HTTPS tests (`tls.rs`) make
//! their CA and certificates at test time (`certs.rs`) and speak TLS
//! through curl, `openssl s_client` and a rustls client. The HTTP/2 tests
//! (`http2.rs`) speak frames through a raw client (`h2wire.rs`) and real
//! clients (curl, nghttp).

mod basics;
mod certs;
mod features;
mod h2wire;
mod hardening;
mod http2;
mod resilience;
mod sched;
mod supervise;
mod support;
mod tls;
