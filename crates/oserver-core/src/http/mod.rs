//! HTTP semantics that do not depend on how a message is framed: header
//! fields, status codes, dates, validators, ranges, content codings and
//! media types. Pure functions and small types; nothing here does I/O.

pub(crate) mod clock;
pub(crate) mod conditional;
pub(crate) mod encoding;
pub(crate) mod fields;
pub(crate) mod mime;
pub(crate) mod range;
pub(crate) mod status;

/// `Server:` value, fixed at compile time. A macro too, so a protocol can
/// build constant bytes around it with `concat!`.
macro_rules! server {
    () => {
        concat!("oserver/", env!("CARGO_PKG_VERSION"))
    };
}
pub(crate) use server;

/// `Server:` value, fixed at compile time.
pub(crate) const SERVER: &str = server!();

/// Append a decimal number without going through `fmt`.
pub(crate) fn push_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0; 20]));
}

/// `n` in decimal, written at the end of `buf` (20 digits hold any u64).
#[inline]
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// A non-empty string of decimal digits that fits in a u64.
pub(crate) fn parse_decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &c| {
        if !c.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            let mut v = Vec::new();
            push_u64(&mut v, n);
            assert_eq!(v, n.to_string().into_bytes());
        }
    }
}
