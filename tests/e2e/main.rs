//! End-to-end suite: starts the real `oserver` binary on a free port and talks
//! raw bytes to it over TCP on 127.0.0.1.
//!
//! The document root of the default server is the repository root, so the
//! fixtures are reached as `/httptest/...`.

mod basics;
mod features;
mod hardening;
mod resilience;
mod sched;
mod supervise;
mod support;
