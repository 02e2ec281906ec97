//! Any bytes, split anywhere: the parser must not panic, and feeding the
//! bytes in two reads must give exactly what feeding them at once gives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oserver_core::parse::{Limits, Parser, Status};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the split point and the limits; the rest is the
    // request.
    let Some((&control, buf)) = data.split_first() else {
        return;
    };
    let mut limits = Limits::default();
    if control & 1 == 1 {
        // Small enough for the fuzzer to reach every limit.
        limits.max_request_line = 64;
        limits.max_header_bytes = 256;
        limits.max_headers = 4;
    }
    let cut = usize::from(control >> 1) * buf.len() / 127;

    let mut whole = Parser::new();
    let at_once = whole.parse(buf, &limits);
    let mut split = Parser::new();
    let _ = split.parse(&buf[..cut], &limits);
    let in_two = split.parse(buf, &limits);
    assert_eq!(at_once, in_two);

    if let Ok(Status::Complete(n)) = at_once {
        assert!(n <= buf.len());
        let (a, b) = (whole.head(buf), split.head(buf));
        assert_eq!(
            (a.method, a.target, a.minor_version),
            (b.method, b.target, b.minor_version)
        );
        assert_eq!(
            (a.content_length, a.chunked, a.keep_alive),
            (b.content_length, b.chunked, b.keep_alive)
        );
        assert_eq!(a.host, b.host);
        assert!(a.headers().eq(b.headers()));
        // Nothing is read past the head.
        let mut alone = Parser::new();
        assert_eq!(alone.parse(&buf[..n], &limits), at_once);
    }
});
