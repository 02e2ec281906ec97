//! `oserver`: flags, fork, supervision. STUB.
fn main() {}
