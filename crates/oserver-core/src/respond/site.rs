//! What every loop's responder shares: the settings, the root and the
//! routes to the handlers.

use crate::files::fs::Root;
use crate::settings::Settings;

use super::handler::Handler;

/// A handler and the path prefix it is routed by.
pub(crate) struct Route {
    pub(crate) prefix: String,
    pub(crate) handler: Box<dyn Handler>,
}

impl Route {
    pub(crate) fn new(prefix: String, handler: Box<dyn Handler>) -> Route {
        Route { prefix, handler }
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

/// What every loop's responder reads: the settings, the root, the routes.
pub(crate) struct Site {
    pub settings: Settings,
    pub root: Option<Root>,
    pub routes: Vec<Route>,
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
}
