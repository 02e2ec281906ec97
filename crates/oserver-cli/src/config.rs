//! The validated configuration: flags turned into absolute paths, an
//! address, and the core's `Settings` filled straight from the flags and
//! checked by the core's own `Settings::validate` before anything is bound
//! or forked. With `--https-port`, the certificates are read and checked
//! here too (`tls.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use std::{fmt, io};

use oserver_core::{AccessLog, ServerBuilder, Settings, SettingsError};

use crate::args::{Args, When};
use crate::sched::{self, Plan};
use crate::sockets::Sockets;
use crate::tls::{self, Https, TlsError};

/// Everything the master and the workers need, checked before any fork.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (the port may be 0 until the first socket is bound).
    pub addr: SocketAddr,
    /// `--https-port`: where to serve HTTPS (same host) and with what.
    pub https: Option<(SocketAddr, Https)>,
    /// Worker processes (at least 1).
    pub workers: usize,
    /// CPU placement (`--cpu-affinity`, on or decided so): the CPU of each
    /// worker slot.
    pub affinity: Option<Plan>,
    /// Why the placement is on or off, for the log.
    pub placement: String,
    /// `--sched-batch` (on, or decided so with the placement).
    pub sched_batch: bool,
    /// Logger threshold.
    pub log_level: log::LevelFilter,
    /// The document root, canonical.
    pub root: PathBuf,
    /// Pid file, absolute.
    pub pid_file: Option<PathBuf>,
    /// Everything the workers' servers are built with (the access log's
    /// path made absolute, so a worker does not depend on the working
    /// directory).
    pub settings: Settings,
}

/// Why the flags do not make a usable configuration.
#[derive(Debug)]
pub enum ConfigError {
    /// The root cannot be resolved (missing, no permission).
    Root(PathBuf, io::Error),
    /// The root exists but is not a directory.
    RootNotDir(PathBuf),
    /// A relative path could not be made absolute.
    Path(PathBuf, io::Error),
    /// The allowed CPUs cannot be read (for `--cpu-affinity`).
    Affinity(io::Error),
    /// A flag's value is outside the range the server can work with.
    Setting(&'static str, SettingsError),
    /// The HTTPS flags do not go together, or a certificate or key is unusable.
    Tls(TlsError),
    /// `--redirect-https` or `--hsts` without `--https-port`.
    NeedsHttps(&'static str),
    /// `--https-port` is the plain port.
    SamePort(u16),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Root(p, e) => write!(f, "root {}: {e}", p.display()),
            ConfigError::RootNotDir(p) => write!(f, "root {}: not a directory", p.display()),
            ConfigError::Path(p, e) => write!(f, "path {}: {e}", p.display()),
            ConfigError::Affinity(e) => write!(f, "--cpu-affinity: cannot read the allowed CPUs: {e}"),
            ConfigError::Setting(flag, e) => write!(f, "{flag} {}: must be {}", e.value, e.allowed),
            ConfigError::Tls(e) => e.fmt(f),
            ConfigError::NeedsHttps(flag) => write!(f, "{flag} needs --https-port"),
            ConfigError::SamePort(p) => write!(f, "--https-port {p}: the plain HTTP port (-p) is the same"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Check the flags against the file system and resolve paths.
    ///
    /// # Errors
    ///
    /// The root is missing or not a directory, a path cannot be made
    /// absolute (the working directory is gone), a value is out of range,
    /// or the HTTPS flags or files are unusable ([`TlsError`]).
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let root = args.root.canonicalize().map_err(|e| ConfigError::Root(args.root.clone(), e))?;
        if !root.is_dir() {
            return Err(ConfigError::RootNotDir(args.root));
        }
        let (affinity, placement) = placement(&args)?;
        let sched_batch = sched::batch_decision(args.sched_batch, affinity.is_some());
        let access_log = match args.access_log {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(AccessLog::Stdout),
            Some(p) => Some(AccessLog::File(absolute(&p)?)),
        };
        let pid_file = args.pid_file.as_deref().map(absolute).transpose()?;
        let mut settings = Settings::default();
        settings.header_timeout = Duration::from_secs(args.header_timeout);
        settings.keepalive_timeout = Duration::from_secs(args.keepalive_timeout);
        settings.send_timeout = Duration::from_secs(args.send_timeout);
        settings.shutdown_timeout = Duration::from_secs(args.shutdown_timeout);
        settings.keepalive_requests = args.keepalive_requests;
        settings.limits.max_header_bytes = args.max_header_bytes;
        settings.max_connections = args.max_connections;
        settings.follow_symlinks = args.follow_symlinks;
        settings.hidden = args.hidden;
        settings.autoindex = args.autoindex;
        settings.precompressed = args.precompressed;
        settings.max_age = args.max_age;
        settings.access_log = access_log;
        settings.hsts = args.hsts;
        settings.http2 = !args.no_http2;
        // The command promises Server, Date and Connection on every
        // response (README), as nginx sends them; the library's default
        // leaves Connection off a kept HTTP/1.1 connection. No flag: the
        // promise is the command's, not a choice.
        settings.keep_alive_field = true;
        settings.validate().map_err(|e| ConfigError::Setting(flag_of(e.setting), e))?;
        let https =
            match tls::pairs(args.https_port, args.tls_cert, args.tls_key).map_err(ConfigError::Tls)? {
                None => None,
                Some((port, _)) if port != 0 && port == args.port => return Err(ConfigError::SamePort(port)),
                Some((port, pairs)) => Some((
                    SocketAddr::new(args.host, port),
                    tls::load(&pairs, !args.no_http2).map_err(ConfigError::Tls)?,
                )),
            };
        if https.is_none() {
            if args.redirect_https {
                return Err(ConfigError::NeedsHttps("--redirect-https"));
            }
            if args.hsts.is_some() {
                return Err(ConfigError::NeedsHttps("--hsts"));
            }
        }
        // With --https-port 0 the port is known once bound: see
        // `redirect_to`.
        settings.redirect_https = match &https {
            Some((a, _)) if args.redirect_https => Some(a.port()),
            _ => None,
        };
        Ok(Config {
            addr: SocketAddr::new(args.host, args.port),
            https,
            workers: args.workers,
            affinity,
            placement,
            sched_batch,
            log_level: args.log_level.filter(),
            root,
            pid_file,
            settings,
        })
    }

    /// SIGHUP: read the certificate files again for the next workers. The
    /// new certificates' summary and warnings, or why the files are not
    /// usable (the current ones then stay).
    ///
    /// # Errors
    ///
    /// See [`TlsError`].
    pub fn reload_tls(&mut self) -> Result<Option<&tls::Https>, TlsError> {
        let Some((_, https)) = self.https.as_mut() else { return Ok(None) };
        *https = https.reload()?;
        Ok(Some(https))
    }

    /// The HTTPS port is `port` (bound): `--redirect-https` sends clients
    /// there (this matters with `--https-port 0`).
    pub fn redirect_to(&mut self, port: u16) {
        if self.settings.redirect_https.is_some() {
            self.settings.redirect_https = Some(port);
        }
    }

    /// A server builder for one worker, serving on its slot's sockets (the
    /// HTTPS one with the configuration loaded from the certificates).
    pub fn server_builder(&self, sockets: Sockets) -> ServerBuilder {
        let mut b = ServerBuilder::new()
            .listener(sockets.http)
            .root(self.root.clone())
            .settings(self.settings.clone())
            // Parallelism comes from worker processes; one event loop each.
            .threads(1);
        if let (Some(l), Some((_, https))) = (sockets.https, &self.https) {
            b = b.https_listener(l, Arc::clone(&https.config));
        }
        b
    }
}

/// Whether the workers are placed (`--cpu-affinity`, see
/// [`sched::decide`]): the plan when they are, and why, for the log.
fn placement(args: &Args) -> Result<(Option<Plan>, String), ConfigError> {
    if args.cpu_affinity == When::Off {
        return Ok((None, "--cpu-affinity=off".to_string()));
    }
    let cpus = sched::allowed_cpus().map_err(ConfigError::Affinity)?;
    // Only the plain host counts: HTTPS listens on the same one.
    let loopback_only = args.host.is_loopback();
    // Read only when it matters: loopback decides without the interfaces.
    let nics = if args.cpu_affinity == When::Auto && !loopback_only && args.workers == cpus.len() {
        sched::nics(Path::new("/sys/class/net"))
    } else {
        Vec::new()
    };
    let d = sched::decide(args.cpu_affinity, args.workers, cpus.len(), loopback_only, &nics);
    Ok((d.place.then(|| Plan::new(args.workers, &cpus)), d.why))
}

/// The flag that sets a field of `Settings` (the names match, with dashes).
fn flag_of(setting: &str) -> &'static str {
    match setting {
        "header_timeout" => "--header-timeout",
        "keepalive_timeout" => "--keepalive-timeout",
        "send_timeout" => "--send-timeout",
        "shutdown_timeout" => "--shutdown-timeout",
        "keepalive_requests" => "--keepalive-requests",
        "limits.max_header_bytes" => "--max-header-bytes",
        "max_connections" => "--max-connections",
        _ => "a setting",
    }
}

fn absolute(p: &Path) -> Result<PathBuf, ConfigError> {
    std::path::absolute(p).map_err(|e| ConfigError::Path(p.to_path_buf(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn config(args: &[&str]) -> Result<Config, ConfigError> {
        let argv = std::iter::once("oserver").chain(args.iter().copied());
        Config::from_args(Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn root_is_canonical() {
        let c = config(&["-r", "."]).unwrap();
        assert!(c.root.is_absolute());
        assert_eq!(c.root, std::env::current_dir().unwrap().canonicalize().unwrap());
    }

    #[test]
    fn root_errors() {
        let missing = config(&["-r", "/nonexistent/oserver-test-root"]).unwrap_err();
        assert!(matches!(missing, ConfigError::Root(..)), "{missing}");
        let file = config(&["-r", "Cargo.toml"]).unwrap_err();
        assert!(matches!(file, ConfigError::RootNotDir(..)), "{file}");
        assert_eq!(file.to_string(), "root Cargo.toml: not a directory");
    }

    #[test]
    fn the_command_names_the_connection_on_every_answer() {
        // The library's default is off; the README promises it for the command.
        assert!(!Settings::default().keep_alive_field);
        assert!(config(&["-r", "."]).unwrap().settings.keep_alive_field);
    }

    #[test]
    fn access_log_destinations() {
        let cwd = std::env::current_dir().unwrap();
        let table: &[(&[&str], Option<AccessLog>)] = &[
            (&[], None),
            (&["--access-log", "-"], Some(AccessLog::Stdout)),
            (&["--access-log", "/var/log/a.log"], Some(AccessLog::File("/var/log/a.log".into()))),
            (&["--access-log", "a.log"], Some(AccessLog::File(cwd.join("a.log")))),
        ];
        for (args, want) in table {
            assert_eq!(&config(args).unwrap().settings.access_log, want, "{args:?}");
        }
    }

    #[test]
    fn pid_file_is_absolute() {
        let cwd = std::env::current_dir().unwrap();
        let c = config(&["--pid-file", "run/o.pid"]).unwrap();
        assert_eq!(c.pid_file, Some(cwd.join("run/o.pid")));
    }

    #[test]
    fn address_and_durations() {
        let c = config(&["-s", "::1", "-p", "0", "--shutdown-timeout", "3"]).unwrap();
        assert_eq!(c.addr, "[::1]:0".parse().unwrap());
        assert_eq!(c.settings.shutdown_timeout, Duration::from_secs(3));
    }

    #[test]
    fn values_that_cannot_work_name_their_flag() {
        let table: &[(&[&str], &str)] = &[
            (
                &["--keepalive-timeout", "18446744073709551615"],
                "--keepalive-timeout 18446744073709551615 s: must be",
            ),
            (&["--header-timeout", "18446744073709551615"], "--header-timeout"),
            (&["--send-timeout", "18446744073709551615"], "--send-timeout"),
            (&["--shutdown-timeout", "18446744073709551615"], "--shutdown-timeout"),
            (&["--send-timeout", "0"], "--send-timeout 0 s: must be 1 to 86400 seconds"),
            (&["--header-timeout", "0"], "--header-timeout"),
            (&["--max-header-bytes", "10"], "--max-header-bytes 10: must be 1024 to 65535 bytes"),
            (&["--max-header-bytes", "65536"], "--max-header-bytes 65536"),
            (&["--max-connections", "2000000"], "--max-connections"),
        ];
        for (args, want) in table {
            let e = config(args).unwrap_err();
            assert!(matches!(e, ConfigError::Setting(..)), "{args:?}: {e}");
            assert!(e.to_string().starts_with(want), "{args:?}: {e}");
        }
        for ok in [
            &["--keepalive-timeout", "0"][..],
            &["--max-header-bytes", "65535"],
            &["--keepalive-requests", "0"],
        ] {
            config(ok).unwrap();
        }
    }

    #[test]
    fn https_flags_go_together() {
        assert!(config(&[]).unwrap().https.is_none());
        let table: &[(&[&str], &str)] = &[
            (&["--tls-cert", "a.crt", "--tls-key", "a.key"], "need --https-port"),
            (&["--https-port", "8443"], "--https-port needs --tls-cert"),
            (&["--https-port", "8443", "--tls-cert", "a.crt"], "go in pairs"),
            // Checked before any file is read.
            (&["-p", "8443", "--https-port", "8443", "--tls-cert", "a", "--tls-key", "b"], "-p) is the same"),
            (
                &["--https-port", "8443", "--tls-cert", "/nonexistent/a.crt", "--tls-key", "a.key"],
                "/nonexistent/a.crt",
            ),
        ];
        for (args, want) in table {
            let e = config(args).unwrap_err();
            assert!(matches!(e, ConfigError::Tls(_) | ConfigError::SamePort(_)), "{args:?}: {e}");
            assert!(e.to_string().contains(want), "{args:?}: {e}");
        }
    }

    #[test]
    fn cpu_affinity_plans_one_cpu_per_worker() {
        let allowed = sched::allowed_cpus().unwrap();
        let plan = config(&["--cpu-affinity", "-w", "3"]).unwrap().affinity.unwrap();
        assert_eq!(plan, Plan::new(3, &allowed));
        assert_eq!(plan.cpus.len(), 3);
    }

    #[test]
    fn placement_by_default_on_loopback_with_one_worker_per_cpu() {
        let allowed = sched::allowed_cpus().unwrap();
        let n = allowed.len().to_string();
        let more = (allowed.len() + 1).to_string();
        // (args, placed, SCHED_BATCH, words of the reason)
        let table: &[(&[&str], bool, bool, &str)] = &[
            (&["-w", &n], true, true, "loopback only"),
            (&["-w", &n, "-s", "::1"], true, true, "loopback only"),
            (&["-w", &more], false, false, "not one each"),
            (&["-w", &n, "--cpu-affinity=off"], false, false, "--cpu-affinity=off"),
            (&["-w", &n, "--sched-batch=off"], true, false, "loopback only"),
            (&["-w", &more, "--sched-batch"], false, true, "not one each"),
            (&["-w", &more, "--cpu-affinity=on"], true, true, "--cpu-affinity=on"),
        ];
        for (args, placed, batch, why) in table {
            let c = config(args).unwrap();
            assert_eq!(c.affinity.is_some(), *placed, "{args:?}: {}", c.placement);
            assert_eq!(c.affinity, placed.then(|| Plan::new(c.workers, &allowed)), "{args:?}");
            assert_eq!(c.sched_batch, *batch, "{args:?}");
            assert!(c.placement.contains(why), "{args:?}: {}", c.placement);
        }
        // Any other address: what the machine's interfaces say.
        let c = config(&["-w", &n, "-s", "0.0.0.0"]).unwrap();
        let d = sched::decide(
            When::Auto,
            allowed.len(),
            allowed.len(),
            false,
            &sched::nics(Path::new("/sys/class/net")),
        );
        assert_eq!((c.affinity.is_some(), c.placement), (d.place, d.why));
    }
}
