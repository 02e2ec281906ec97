//! The listening sockets of one worker slot, as the master binds them and
//! hands them to the worker it forks for that slot.

use std::io;
use std::net::TcpListener;

/// The listening sockets of one worker slot: one of each port's
/// SO_REUSEPORT group.
#[derive(Debug)]
pub struct Sockets {
    /// Plain HTTP (`-p`).
    pub http: TcpListener,
    /// HTTPS (`--https-port`).
    pub https: Option<TcpListener>,
}

impl Sockets {
    /// Second descriptors of the same sockets.
    pub fn try_clone(&self) -> io::Result<Sockets> {
        Ok(Sockets {
            http: self.http.try_clone()?,
            https: self.https.as_ref().map(|l| l.try_clone()).transpose()?,
        })
    }
}
