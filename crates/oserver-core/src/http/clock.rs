//! The current time as HTTP and access-log dates, rendered at most once a
//! second so no request formats a date.

use std::time::SystemTime;

/// The dates of the current second.
pub(crate) struct Clock {
    secs: u64,
    /// IMF-fixdate, e.g. `Sat, 21 Nov 2026 10:50:49 GMT` (always 29 bytes).
    pub(crate) http: [u8; 29],
    /// Access-log time, e.g. `21/Nov/2026:10:50:49 +0000`.
    pub(crate) log: [u8; 26],
}

impl Clock {
    pub(crate) fn new() -> Clock {
        let mut c = Clock { secs: u64::MAX, http: [b' '; 29], log: [b' '; 26] };
        c.refresh();
        c
    }

    /// Re-render if the second changed. Cheap when it did not.
    pub(crate) fn refresh(&mut self) {
        let now = SystemTime::now();
        let secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        if secs == self.secs {
            return;
        }
        self.secs = secs;
        let s = httpdate::fmt_http_date(now);
        let n = s.len().min(29);
        self.http[..n].copy_from_slice(&s.as_bytes()[..n]);
        // "Sat, 21 Nov 2026 10:50:49 GMT" -> "21/Nov/2026:10:50:49 +0000"
        let b = s.as_bytes();
        if b.len() == 29 {
            let mut l = [0u8; 26];
            l[0..2].copy_from_slice(&b[5..7]);
            l[2] = b'/';
            l[3..6].copy_from_slice(&b[8..11]);
            l[6] = b'/';
            l[7..11].copy_from_slice(&b[12..16]);
            l[11] = b':';
            l[12..20].copy_from_slice(&b[17..25]);
            l[20..26].copy_from_slice(b" +0000");
            self.log = l;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_formats() {
        let c = Clock::new();
        let h = std::str::from_utf8(&c.http).unwrap();
        assert!(h.ends_with(" GMT"), "{h}");
        assert!(httpdate::parse_http_date(h).is_ok());
        let l = std::str::from_utf8(&c.log).unwrap();
        assert!(l.ends_with(" +0000") && l.as_bytes()[2] == b'/', "{l}");
    }
}
