//! The validated configuration: flags turned into absolute paths, an
//! address and durations, and the one place that maps them onto
//! `oserver_core::ServerBuilder`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;
use std::{fmt, io};

use oserver_core::{AccessLog, ServerBuilder};

use crate::args::Args;
use crate::sched::{self, Plan};

/// Everything the master and the workers need, checked before any fork.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen (the port may be 0 until the first socket is bound).
    pub addr: SocketAddr,
    /// Worker processes (at least 1).
    pub workers: usize,
    /// `--cpu-affinity`: the CPU of each worker slot.
    pub affinity: Option<Plan>,
    /// `--sched-batch`.
    pub sched_batch: bool,
    /// Logger threshold.
    pub log_level: log::LevelFilter,
    /// The document root, canonical.
    pub root: PathBuf,
    /// Access log destination; file paths are absolute so a worker does not
    /// depend on the working directory.
    pub access_log: Option<AccessLog>,
    /// Pid file, absolute.
    pub pid_file: Option<PathBuf>,
    /// How long a graceful stop may take; the master also derives its
    /// SIGKILL backstop from it.
    pub shutdown_timeout: Duration,
    follow_symlinks: bool,
    hidden: bool,
    autoindex: bool,
    precompressed: bool,
    max_age: Option<u32>,
    header_timeout: Duration,
    keepalive_timeout: Duration,
    send_timeout: Duration,
    max_header_bytes: usize,
    pub max_connections: usize,
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
    /// `--cpu-affinity`, but the allowed CPUs cannot be read.
    Affinity(io::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Root(p, e) => write!(f, "root {}: {e}", p.display()),
            ConfigError::RootNotDir(p) => write!(f, "root {}: not a directory", p.display()),
            ConfigError::Path(p, e) => write!(f, "path {}: {e}", p.display()),
            ConfigError::Affinity(e) => write!(f, "--cpu-affinity: cannot read the allowed CPUs: {e}"),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Check the flags against the file system and resolve paths.
    ///
    /// # Errors
    ///
    /// The root is missing or not a directory, or a path cannot be made
    /// absolute (the working directory is gone).
    pub fn from_args(args: Args) -> Result<Config, ConfigError> {
        let root = args.root.canonicalize().map_err(|e| ConfigError::Root(args.root.clone(), e))?;
        if !root.is_dir() {
            return Err(ConfigError::RootNotDir(args.root));
        }
        let access_log = match args.access_log {
            None => None,
            Some(p) if p.as_os_str() == "-" => Some(AccessLog::Stdout),
            Some(p) => Some(AccessLog::File(absolute(&p)?)),
        };
        let pid_file = args.pid_file.as_deref().map(absolute).transpose()?;
        let affinity = if args.cpu_affinity {
            Some(Plan::new(args.workers, &sched::allowed_cpus().map_err(ConfigError::Affinity)?))
        } else {
            None
        };
        Ok(Config {
            addr: SocketAddr::new(args.host, args.port),
            workers: args.workers,
            affinity,
            sched_batch: args.sched_batch,
            log_level: args.log_level.filter(),
            root,
            access_log,
            pid_file,
            shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
            follow_symlinks: args.follow_symlinks,
            hidden: args.hidden,
            autoindex: args.autoindex,
            precompressed: args.precompressed,
            max_age: args.max_age,
            header_timeout: Duration::from_secs(args.header_timeout),
            keepalive_timeout: Duration::from_secs(args.keepalive_timeout),
            send_timeout: Duration::from_secs(args.send_timeout),
            max_header_bytes: args.max_header_bytes,
            max_connections: args.max_connections,
        })
    }

    /// A server builder for one worker, serving on `listener`.
    pub fn server_builder(&self, listener: TcpListener) -> ServerBuilder {
        ServerBuilder::new()
            .listener(listener)
            .root(self.root.clone())
            .follow_symlinks(self.follow_symlinks)
            .hidden(self.hidden)
            .autoindex(self.autoindex)
            .precompressed(self.precompressed)
            .max_age(self.max_age)
            .header_timeout(self.header_timeout)
            .keepalive_timeout(self.keepalive_timeout)
            .send_timeout(self.send_timeout)
            .shutdown_timeout(self.shutdown_timeout)
            .max_header_bytes(self.max_header_bytes)
            .max_connections(self.max_connections)
            .access_log(self.access_log.clone())
            // Parallelism comes from worker processes; one event loop each.
            .threads(1)
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
    fn access_log_destinations() {
        let cwd = std::env::current_dir().unwrap();
        let table: &[(&[&str], Option<AccessLog>)] = &[
            (&[], None),
            (&["--access-log", "-"], Some(AccessLog::Stdout)),
            (&["--access-log", "/var/log/a.log"], Some(AccessLog::File("/var/log/a.log".into()))),
            (&["--access-log", "a.log"], Some(AccessLog::File(cwd.join("a.log")))),
        ];
        for (args, want) in table {
            assert_eq!(&config(args).unwrap().access_log, want, "{args:?}");
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
        assert_eq!(c.shutdown_timeout, Duration::from_secs(3));
    }

    #[test]
    fn cpu_affinity_plans_one_cpu_per_worker() {
        assert_eq!(config(&[]).unwrap().affinity, None);
        let allowed = sched::allowed_cpus().unwrap();
        let plan = config(&["--cpu-affinity", "-w", "3"]).unwrap().affinity.unwrap();
        assert_eq!(plan, Plan::new(3, &allowed));
        assert_eq!(plan.cpus.len(), 3);
    }
}
