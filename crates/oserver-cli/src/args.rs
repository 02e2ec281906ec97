//! Command-line flags. Only syntax is checked here (numbers, addresses);
//! anything that needs the file system or the network is checked in
//! `config.rs` and at startup.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// A prefork static file web server.
///
/// The master process binds one listening socket per worker, forks the
/// workers and supervises them: a worker that dies is replaced, SIGTERM
/// drains and stops, SIGHUP replaces every worker gracefully, SIGUSR1
/// reopens the access log, SIGQUIT stops at once.
#[derive(Debug, Parser)]
// `args_override_self`: a flag given twice keeps its last value, so wrappers
// (and the end-to-end tests) can append overrides to a fixed command line.
#[command(name = "oserver", version, args_override_self = true)]
pub struct Args {
    /// Directory to serve.
    #[arg(short = 'r', long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,

    /// TCP port to listen on (0 picks any free port).
    #[arg(short = 'p', long, value_name = "N", default_value_t = 8080)]
    pub port: u16,

    /// Address to listen on: an IPv4 or IPv6 address, or `localhost`.
    #[arg(
        short = 's',
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1",
        value_parser = parse_host
    )]
    pub host: IpAddr,

    /// Also serve HTTPS on this port, on the same address (0 picks any free
    /// port). Needs --tls-cert and --tls-key.
    #[arg(long, value_name = "N")]
    pub https_port: Option<u16>,

    /// PEM file with a certificate, then its chain. Repeat together with
    /// --tls-key for several certificates: each client gets the one whose
    /// names match its SNI, or the first.
    #[arg(long, value_name = "PATH")]
    pub tls_cert: Vec<PathBuf>,

    /// PEM file with the private key (PKCS#8, SEC1 or PKCS#1, unencrypted)
    /// of the --tls-cert in the same position.
    #[arg(long, value_name = "PATH")]
    pub tls_key: Vec<PathBuf>,

    /// Answer every plain-HTTP request with 308 to the same path and query
    /// over HTTPS (the host from the request's Host header). Needs
    /// --https-port.
    #[arg(long)]
    pub redirect_https: bool,

    /// Send `Strict-Transport-Security: max-age=SECS` with HTTPS answers.
    #[arg(long, value_name = "SECS")]
    pub hsts: Option<u32>,

    /// Turn HTTP/2 off: no `h2` in HTTPS's ALPN, and no HTTP/2 by prior
    /// knowledge (h2c) on the plain port. On by default.
    #[arg(long)]
    pub no_http2: bool,

    /// Number of worker processes (default: the number of CPUs).
    #[arg(
        short = 'w',
        long,
        value_name = "N",
        default_value_t = default_workers(),
        value_parser = parse_at_least_one
    )]
    pub workers: usize,

    /// Least severe log message that is printed (on stderr).
    #[arg(long, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,

    /// Largest request head in bytes (1024 to 65535); bigger requests get 431.
    #[arg(long, value_name = "N", default_value_t = 16384)]
    pub max_header_bytes: usize,

    /// Seconds a client has to send a whole request head (1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub header_timeout: u64,

    /// Seconds an idle keep-alive connection stays open (0 turns keep-alive
    /// off; at most 86400).
    #[arg(long, value_name = "SECS", default_value_t = 15)]
    pub keepalive_timeout: u64,

    /// Responses on one connection before it is closed (0: no limit).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub keepalive_requests: u32,

    /// Seconds a client may read nothing before it is dropped (1 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub send_timeout: u64,

    /// Seconds a graceful stop (SIGTERM, SIGHUP) waits for responses in
    /// flight (0 to 86400).
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub shutdown_timeout: u64,

    /// CPU placement: pin worker N to the Nth allowed CPU, send each new
    /// connection to the worker on the CPU that received it, and hand idle
    /// connections to the worker on their client's CPU. `auto` (the default)
    /// places when there are as many workers as CPUs and the packets of the
    /// listening address are processed on every CPU (loopback only, or
    /// every network interface with several receive queues or RPS);
    /// `--cpu-affinity` alone is `on` (see the README).
    #[arg(
        long,
        value_name = "WHEN",
        value_enum,
        default_value_t = When::Auto,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "on"
    )]
    pub cpu_affinity: When,

    /// Run workers under SCHED_BATCH: woken workers do not preempt the task
    /// on their CPU, so they answer requests in bigger batches. `auto` (the
    /// default) follows --cpu-affinity's decision; `--sched-batch` alone is
    /// `on`.
    #[arg(
        long,
        value_name = "WHEN",
        value_enum,
        default_value_t = When::Auto,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "on"
    )]
    pub sched_batch: When,

    /// Most open connections per worker (1 to 1048576).
    #[arg(long, value_name = "N", default_value_t = 10000, value_parser = parse_at_least_one)]
    pub max_connections: usize,

    /// Follow symlinks that lead outside the root (otherwise 403).
    #[arg(long)]
    pub follow_symlinks: bool,

    /// Serve files and directories whose name starts with a dot (otherwise 404).
    #[arg(long)]
    pub hidden: bool,

    /// List directories that have no index.html (otherwise 403).
    #[arg(long)]
    pub autoindex: bool,

    /// Serve FILE.br or FILE.gz instead of FILE when the client accepts it.
    #[arg(long)]
    pub precompressed: bool,

    /// Send `Cache-Control: max-age=SECS` with files.
    #[arg(long, value_name = "SECS")]
    pub max_age: Option<u32>,

    /// Write an access log in the combined format to PATH, or to stdout with `-`.
    #[arg(long, value_name = "PATH|-")]
    pub access_log: Option<PathBuf>,

    /// Write the master's pid to PATH while running.
    #[arg(long, value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
}

/// `--cpu-affinity` and `--sched-batch` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum When {
    /// Decided at startup from the workers, the CPUs and the address.
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

/// `--log-level` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings (a worker died, ...).
    Warn,
    /// Also startup, signals and worker statistics.
    Info,
    /// Also per-worker details.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    /// The `log` crate's filter for this level.
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Error => log::LevelFilter::Error,
            LogLevel::Warn => log::LevelFilter::Warn,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// One worker per CPU: each worker is a single-threaded event loop, so more
/// workers than CPUs only adds context switches.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn parse_host(s: &str) -> Result<IpAddr, String> {
    if s.eq_ignore_ascii_case("localhost") {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    // Accept the bracketed form people copy from URLs: `[::1]`.
    let bare = s.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(s);
    bare.parse().map_err(|_| "expected an IP address or `localhost`".to_string())
}

fn parse_at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn parse(args: &[&str]) -> Args {
        let argv = std::iter::once("oserver").chain(args.iter().copied());
        Args::try_parse_from(argv).unwrap()
    }

    fn fails(args: &[&str]) -> bool {
        let argv = std::iter::once("oserver").chain(args.iter().copied());
        Args::try_parse_from(argv).is_err()
    }

    #[test]
    fn defaults() {
        let a = parse(&[]);
        assert_eq!(a.root, PathBuf::from("."));
        assert_eq!(a.port, 8080);
        assert_eq!(a.host, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(a.workers, default_workers());
        assert!(a.workers >= 1);
        assert_eq!(a.log_level, LogLevel::Info);
        assert_eq!(a.max_header_bytes, 16384);
        assert_eq!(a.header_timeout, 10);
        assert_eq!(a.keepalive_timeout, 15);
        assert_eq!(a.send_timeout, 30);
        assert_eq!(a.shutdown_timeout, 10);
        assert_eq!(a.max_connections, 10000);
        assert!(!a.follow_symlinks && !a.hidden && !a.autoindex && !a.precompressed);
        assert_eq!(a.max_age, None);
        assert_eq!(a.access_log, None);
        assert_eq!(a.pid_file, None);
        assert_eq!(a.https_port, None);
        assert!(a.tls_cert.is_empty() && a.tls_key.is_empty());
    }

    #[test]
    fn root() {
        assert_eq!(parse(&["-r", "/srv"]).root, PathBuf::from("/srv"));
        assert_eq!(parse(&["--root", "www"]).root, PathBuf::from("www"));
    }

    #[test]
    fn port() {
        assert_eq!(parse(&["-p", "0"]).port, 0);
        assert_eq!(parse(&["--port", "65535"]).port, 65535);
        assert!(fails(&["-p", "65536"]));
        assert!(fails(&["-p", "-1"]));
        assert!(fails(&["-p", "http"]));
    }

    #[test]
    fn host() {
        let table: &[(&str, IpAddr)] = &[
            ("127.0.0.1", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("0.0.0.0", IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            ("localhost", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("LocalHost", IpAddr::V4(Ipv4Addr::LOCALHOST)),
            ("::1", IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ("[::1]", IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ("::", IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ];
        for (text, want) in table {
            assert_eq!(parse(&["-s", text]).host, *want, "{text}");
            assert_eq!(parse(&["--host", text]).host, *want, "{text}");
        }
        for bad in ["example.com", "256.0.0.1", "127.0.0.1:80", "", "[::1"] {
            assert!(fails(&["-s", bad]), "{bad:?}");
        }
    }

    #[test]
    fn workers() {
        assert_eq!(parse(&["-w", "1"]).workers, 1);
        assert_eq!(parse(&["--workers", "16"]).workers, 16);
        assert!(fails(&["-w", "0"]));
        assert!(fails(&["-w", "two"]));
    }

    #[test]
    fn placement_switches() {
        let table: &[(&[&str], When, When)] = &[
            (&[], When::Auto, When::Auto),
            (&["--cpu-affinity"], When::On, When::Auto),
            (&["--sched-batch"], When::Auto, When::On),
            (&["--cpu-affinity", "--sched-batch"], When::On, When::On),
            (&["--cpu-affinity=off", "--sched-batch=off"], When::Off, When::Off),
            (&["--cpu-affinity=on", "--sched-batch=auto"], When::On, When::Auto),
            (&["--cpu-affinity=auto", "-w", "2"], When::Auto, When::Auto),
            // The last one wins, so a wrapper can append an override.
            (&["--cpu-affinity", "--cpu-affinity=off"], When::Off, When::Auto),
        ];
        for (args, affinity, batch) in table {
            let a = parse(args);
            assert_eq!((a.cpu_affinity, a.sched_batch), (*affinity, *batch), "{args:?}");
        }
        // A value needs `=`: a separate word is not taken as one.
        assert!(fails(&["--cpu-affinity", "off"]));
        assert!(fails(&["--cpu-affinity=sometimes"]));
        assert!(fails(&["--sched-batch=yes"]));
        assert!(fails(&["--cpu-affinity="]));
    }

    #[test]
    fn log_level() {
        let table = [
            ("error", LogLevel::Error),
            ("warn", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("debug", LogLevel::Debug),
            ("trace", LogLevel::Trace),
        ];
        for (text, want) in table {
            assert_eq!(parse(&["--log-level", text]).log_level, want);
        }
        assert!(fails(&["--log-level", "loud"]));
        assert_eq!(LogLevel::Warn.filter(), log::LevelFilter::Warn);
    }

    #[test]
    fn max_header_bytes() {
        assert_eq!(parse(&["--max-header-bytes", "4096"]).max_header_bytes, 4096);
        // The range is the core's (see config.rs); here only the syntax.
        assert!(fails(&["--max-header-bytes", "-1"]));
        assert!(fails(&["--max-header-bytes", "4k"]));
    }

    #[test]
    fn keepalive_requests() {
        assert_eq!(parse(&[]).keepalive_requests, 1000);
        assert_eq!(parse(&["--keepalive-requests", "0"]).keepalive_requests, 0);
        assert_eq!(parse(&["--keepalive-requests", "5"]).keepalive_requests, 5);
        assert!(fails(&["--keepalive-requests", "-1"]));
        assert!(fails(&["--keepalive-requests", "4294967296"]));
    }

    #[test]
    fn timeouts() {
        let a = parse(&[
            "--header-timeout",
            "1",
            "--keepalive-timeout",
            "2",
            "--send-timeout",
            "3",
            "--shutdown-timeout",
            "0",
        ]);
        assert_eq!((a.header_timeout, a.keepalive_timeout, a.send_timeout, a.shutdown_timeout), (1, 2, 3, 0));
        assert!(fails(&["--send-timeout", "1.5"]));
    }

    #[test]
    fn max_connections() {
        assert_eq!(parse(&["--max-connections", "64"]).max_connections, 64);
        assert!(fails(&["--max-connections", "0"]));
    }

    #[test]
    fn switches() {
        let a = parse(&["--follow-symlinks", "--hidden", "--autoindex", "--precompressed"]);
        assert!(a.follow_symlinks && a.hidden && a.autoindex && a.precompressed);
        assert!(fails(&["--hidden=yes"]));
    }

    #[test]
    fn max_age() {
        assert_eq!(parse(&["--max-age", "3600"]).max_age, Some(3600));
        assert_eq!(parse(&["--max-age", "0"]).max_age, Some(0));
        assert!(fails(&["--max-age", "-5"]));
    }

    #[test]
    fn access_log() {
        assert_eq!(parse(&["--access-log", "-"]).access_log, Some(PathBuf::from("-")));
        assert_eq!(parse(&["--access-log", "logs/a.log"]).access_log, Some(PathBuf::from("logs/a.log")));
    }

    #[test]
    fn pid_file() {
        assert_eq!(parse(&["--pid-file", "/run/o.pid"]).pid_file, Some(PathBuf::from("/run/o.pid")));
    }

    #[test]
    fn https() {
        let a = parse(&["--https-port", "8443", "--tls-cert", "a.crt", "--tls-key", "a.key"]);
        assert_eq!(a.https_port, Some(8443));
        assert_eq!(parse(&["--https-port", "0"]).https_port, Some(0));
        assert!(fails(&["--https-port", "65536"]));
        assert!(fails(&["--https-port", "https"]));
        assert!(fails(&["--https-port"]));
        assert_eq!(a.tls_cert, [PathBuf::from("a.crt")]);
        assert_eq!(a.tls_key, [PathBuf::from("a.key")]);
    }

    #[test]
    fn tls_pairs_repeat_in_order() {
        // Repeated, not overridden (`args_override_self` is for single values).
        let a = parse(&[
            "--tls-cert",
            "a.crt",
            "--tls-key",
            "a.key",
            "--tls-cert",
            "b.crt",
            "--tls-key",
            "b.key",
        ]);
        assert_eq!(a.tls_cert, [PathBuf::from("a.crt"), PathBuf::from("b.crt")]);
        assert_eq!(a.tls_key, [PathBuf::from("a.key"), PathBuf::from("b.key")]);
        assert!(fails(&["--tls-cert"]));
        assert!(fails(&["--tls-key"]));
    }

    #[test]
    fn later_flags_win() {
        // The end-to-end harness relies on this: it passes `-w 1` and lets a
        // test override it.
        assert_eq!(parse(&["-w", "1", "-w", "2"]).workers, 2);
        assert_eq!(parse(&["-p", "0", "-p", "81"]).port, 81);
    }
}
