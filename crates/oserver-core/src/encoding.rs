//! Accept-Encoding negotiation for precompressed files. INTERFACE STUB.
