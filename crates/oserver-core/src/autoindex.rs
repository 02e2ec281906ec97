//! HTML directory listings. INTERFACE STUB.
