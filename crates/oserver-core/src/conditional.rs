//! Validators (ETag, Last-Modified) and conditional requests (RFC 9110 section 13).
//! INTERFACE STUB: filled by the http-features helper.
