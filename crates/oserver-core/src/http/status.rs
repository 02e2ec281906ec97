//! Status codes: reason phrases and the classes the server cares about.

/// The reason phrase for the status codes this server sends.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// A status a final response may carry: 200 to 599 (1xx are interim
/// responses, and three digits is all the status line has room for).
pub(crate) fn is_final(status: u16) -> bool {
    (200..=599).contains(&status)
}

/// Statuses whose responses never carry a body (RFC 9110 6.4.1), whatever
/// their headers say.
pub(crate) fn is_bodiless(status: u16) -> bool {
    status == 204 || status == 304 || (100..200).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(is_final(200) && is_final(599) && !is_final(199) && !is_final(600) && !is_final(1000));
        assert!(is_bodiless(204) && is_bodiless(304) && is_bodiless(101) && !is_bodiless(200));
    }
}
