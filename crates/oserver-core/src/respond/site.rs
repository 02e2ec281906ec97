//! What every loop's responder shares: the settings, the root and the
//! routes to the handlers.

use std::sync::Arc;

use crate::files::fs::Root;
use crate::settings::Settings;

use super::handler::Handler;
use super::pool::Pool;

/// A handler and what it is routed by: a path prefix, and the methods it
/// takes (every method when `methods` is None).
pub(crate) struct Route {
    pub(crate) prefix: String,
    pub(crate) methods: Option<Vec<String>>,
    /// `methods` as keys (see [`method_key`]), compared with each request's
    /// method instead of the strings.
    keys: Vec<Option<u64>>,
    /// `methods` has GET, so the route takes HEAD.
    gets: bool,
    /// The most request-body bytes it takes, if not the server's
    /// `Settings::max_body_bytes`.
    pub(crate) max_body: Option<u64>,
    /// It runs on the blocking pool, not on the loop.
    pub(crate) blocking: bool,
    pub(crate) handler: Arc<dyn Handler>,
}

impl Route {
    pub(crate) fn new(prefix: String, handler: Box<dyn Handler>) -> Route {
        Route {
            prefix,
            methods: None,
            keys: Vec::new(),
            gets: false,
            max_body: None,
            blocking: false,
            handler: Arc::from(handler),
        }
    }

    pub(crate) fn for_methods(methods: Vec<String>, prefix: String, handler: Box<dyn Handler>) -> Route {
        let keys = methods.iter().map(|m| method_key(m.as_bytes())).collect();
        let gets = methods.iter().any(|m| m == "GET");
        Route { methods: Some(methods), keys, gets, ..Route::new(prefix, handler) }
    }

    /// Whether it takes `method` (case-sensitive, as methods are; a route
    /// for GET takes HEAD too, whose answer the server sends without body).
    pub(crate) fn allows(&self, method: &[u8]) -> bool {
        let Some(list) = &self.methods else { return true };
        match method_key(method) {
            Some(k) => self.keys.contains(&Some(k)) || (self.gets && k == HEAD),
            // Longer than a key: as bytes.
            None => list.iter().any(|m| m.as_bytes() == method),
        }
    }

    /// Whether `path` is at or below this route's prefix, on a segment
    /// boundary: `/api` takes `/api`, `/api/` and `/api/x`, not `/apiary`.
    pub(crate) fn matches(&self, path: &str) -> bool {
        let p = self.prefix.as_str();
        match path.strip_prefix(p) {
            Some(rest) => p.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

/// A method of at most 7 bytes as a number: its bytes, and its length above
/// them, so two methods are the same exactly when their keys are (whatever
/// bytes they hold). A route compares one word per method, not a call to
/// memcmp. None for a longer method, compared as bytes.
#[inline]
fn method_key(m: &[u8]) -> Option<u64> {
    if m.len() > 7 {
        return None;
    }
    let key = m.iter().enumerate().fold(0, |k, (i, &b)| k | u64::from(b) << (8 * i));
    Some(key | (m.len() as u64) << 56)
}

/// `HEAD`'s key.
const HEAD: u64 = u64::from_le_bytes(*b"HEAD\0\0\0\x04");

/// What every loop's responder reads: the settings, the root, the routes,
/// and the pool the blocking routes run on (when there are any).
pub(crate) struct Site {
    pub settings: Settings,
    pub root: Option<Root>,
    pub routes: Vec<Route>,
    pub pool: Option<Pool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::respond::handler::Request;

    fn route(prefix: &str) -> Route {
        Route::new(prefix.into(), Box::new(|_: &Request<'_>| None))
    }

    #[test]
    fn routes_match_on_segment_boundaries() {
        let table: &[(&str, &str, bool)] = &[
            ("/api", "/api", true),
            ("/api", "/api/", true),
            ("/api", "/api/x", true),
            ("/api", "/apiary", false),
            ("/api", "/ap", false),
            ("/api/", "/api/x", true),
            ("/api/", "/api", false),
            ("/", "/anything", true),
            ("", "/anything", true),
        ];
        for (prefix, path, want) in table {
            assert_eq!(route(prefix).matches(path), *want, "{prefix} vs {path}");
        }
    }

    #[test]
    fn routes_take_their_methods_and_get_takes_head() {
        let any = route("/");
        assert!(any.allows(b"DELETE") && any.allows(b"GET"));
        let r = Route::for_methods(
            vec!["GET".into(), "PUT".into()],
            "/f".into(),
            Box::new(|_: &Request<'_>| None),
        );
        assert!(r.allows(b"GET") && r.allows(b"HEAD") && r.allows(b"PUT"));
        assert!(!r.allows(b"POST") && !r.allows(b"put"));
        let post = Route::for_methods(vec!["POST".into()], "/f".into(), Box::new(|_: &Request<'_>| None));
        assert!(!post.allows(b"HEAD"));
        // Keys tell apart what bytes tell apart; long methods are compared
        // as bytes.
        let dav = Route::for_methods(
            vec!["PROPFIND".into(), "GET".into()],
            "/d".into(),
            Box::new(|_: &Request<'_>| None),
        );
        assert!(dav.allows(b"PROPFIND") && dav.allows(b"GET") && dav.allows(b"HEAD"));
        for other in [&b"PROPFINDX"[..], b"PROPFIN", b"GET\0", b"GE", b"", b"\0GET", b"get"] {
            assert!(!dav.allows(other), "{other:?}");
        }
        assert_eq!(method_key(b"HEAD"), Some(HEAD));
    }
}
