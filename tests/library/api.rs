//! The `api` example (crates/oserver-core/examples/api.rs), run as its own
//! process and asked over real TCP by curl and raw sockets.
