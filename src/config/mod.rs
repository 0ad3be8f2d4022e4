//! The YAML configuration: every key of the contract, its default and its checks.
//!
//! Parsing is two passes: serde_yaml turns the text into a `Value` (syntax errors and
//! duplicate keys stop there, with a position), then `fields` checks every key by
//! hand so that *all* mistakes are reported at once, each with file, line, key and
//! what was expected.

mod defaults;
pub mod expand;
mod fields;
mod glob;
pub mod hint;
pub mod import;
mod ini;
mod locate;
mod peek;
mod rare;
mod size;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

pub use defaults::{
    check_folder_of, default_logfile, default_socket, is_default_path, prepare_default_path,
};
pub use fields::{error_count, parse_address, DEFAULT_SYSLOG};
pub use fields::{parse_http, probes_differ, Check, HttpTarget, Probe};
pub use fields::{Rlimit, RunAs, RLIMIT_NAMES};
pub use peek::socket_of;
pub use rare::{Rare, RareSettings};
pub use size::parse_size;

/// Default number of rotated files kept (`FILE.1` … `FILE.5`), as supervisord.
pub const DEFAULT_BACKUPS: u32 = 5;

/// What `autorestart` says to do when a RUNNING process exits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoRestart {
    Always,
    Never,
    Unexpected,
}

/// One `programs:` entry, defaults applied and paths made absolute.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub name: String,
    /// `cmd` expanded, for status and logs.
    pub cmd_text: String,
    /// `cmd` split like a shell; never empty.
    pub argv: Vec<String>,
    pub numprocs: u32,
    pub umask: Option<u32>,
    pub workingdir: Option<PathBuf>,
    pub autostart: bool,
    pub autorestart: AutoRestart,
    pub exitcodes: Vec<i32>,
    pub startretries: u32,
    pub starttime: Duration,
    pub stopsignal: i32,
    pub stoptime: Duration,
    pub stdout: Option<PathBuf>,
    pub stderr: Option<PathBuf>,
    pub env: Vec<(String, String)>,
    /// Who the child runs as (a root daemon switches to it before exec).
    /// Boxed, like `group`: rarely set, and a thousand programs would each
    /// carry its room.
    pub user: Option<Box<RunAs>>,
    /// (name, gid): the child's gid instead of the user's primary group.
    pub group: Option<Box<(String, u32)>>,
    /// Soft and hard limits set in the child, in `RLIMIT_NAMES` order.
    pub rlimits: Vec<Rlimit>,
    /// stderr joins the stdout stream and file. As written: `attach` implies it
    /// too, see `stderr_joins_stdout`.
    pub redirect_stderr: bool,
    /// Runs on a pseudo terminal owned by the daemon, for `attach NAME`.
    pub attach: bool,
    /// Among programs not ordered by `depends_on`, lower spawns first.
    pub priority: u32,
    /// Output rotation, alerts, `depends_on`, per-process templates, probes:
    /// read as `p.rare.ready`, boxed only when one is set (`rare.rs`).
    pub rare: Rare,
}

impl Program {
    /// A program with every default, for tests and as the base of parsing.
    pub fn new(name: &str, cmd: &str) -> Program {
        Program {
            name: name.to_string(),
            cmd_text: cmd.to_string(),
            argv: shell_words::split(cmd).unwrap_or_default(),
            numprocs: 1,
            umask: None,
            workingdir: None,
            autostart: true,
            autorestart: AutoRestart::Unexpected,
            exitcodes: vec![0],
            startretries: 3,
            starttime: Duration::from_secs(1),
            stopsignal: libc::SIGTERM,
            stoptime: Duration::from_secs(10),
            stdout: None,
            stderr: None,
            env: Vec::new(),
            user: None,
            group: None,
            rlimits: Vec::new(),
            redirect_stderr: false,
            attach: false,
            priority: crate::deps::DEFAULT_PRIORITY,
            rare: Rare::default(),
        }
    }

    /// Whether stderr goes into the stdout stream: asked for, or implied by a
    /// terminal (one pty carries both).
    pub fn stderr_joins_stdout(&self) -> bool {
        self.redirect_stderr || self.attach
    }

    /// Name of process `index` of this program: `web:0`.
    pub fn process_name(&self, index: u32) -> String {
        format!("{}:{}", self.name, index)
    }
}

/// The whole file.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub file: PathBuf,
    pub socket: PathBuf,
    /// `socket_mode`: the socket's mode once bound; 0700 when unset.
    pub socket_mode: Option<u32>,
    /// `socket_group`: (name, gid) given the socket.
    pub socket_group: Option<(String, u32)>,
    pub listen: Option<SocketAddr>,
    /// Read from `listen_secret_file`: TCP clients `auth` with it first.
    pub listen_secret: Option<Secret>,
    /// `listen_open`: TCP clients need no secret (warned at start).
    pub listen_open: bool,
    /// `metrics_listen`: loopback address of the HTTP `GET /metrics` listener.
    pub metrics_listen: Option<SocketAddr>,
    pub logfile: PathBuf,
    /// The event log rotates before a write would take it past this; 0 = never.
    pub logfile_maxbytes: u64,
    pub logfile_backups: u32,
    /// `minfds` as written; `minfds()` gives the value in force.
    pub minfds: Option<u64>,
    /// Detach from the terminal at start (`-d` says the same).
    pub daemonize: bool,
    /// Where the daemon writes its pid once serving (`--pidfile` overrides).
    pub pidfile: Option<PathBuf>,
    /// Any FATAL shuts the daemon down, exit status 1 (containers).
    pub exit_on_fatal: bool,
    /// `syslog`: the unix datagram socket the event log is mirrored to.
    pub syslog: Option<PathBuf>,
    /// Programs sorted by name. Shared (`Rc`) with the processes that run them,
    /// so each program's settings exist once in the daemon.
    pub programs: Vec<Rc<Program>>,
}

impl Config {
    pub fn process_count(&self) -> u64 {
        self.programs.iter().map(|p| u64::from(p.numprocs)).sum()
    }

    /// File descriptors the daemon must be able to open: the configured
    /// `minfds`, else what every process may hold at once (its pidfd, two
    /// pipes, two output files: `fdlimit::PER_PROCESS`) plus
    /// `fdlimit::RESERVE` for clients and logs.
    pub fn minfds(&self) -> u64 {
        self.minfds.unwrap_or_else(|| self.fds_for_all())
    }

    /// The fds running every process at once may take.
    pub fn fds_for_all(&self) -> u64 {
        self.process_count()
            .saturating_mul(crate::fdlimit::PER_PROCESS)
            .saturating_add(crate::fdlimit::RESERVE)
    }
}

/// One mistake in a config file.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: ", self.file, l)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if self.key.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.key, self.message)
        }
    }
}

// The file's bytes, and the guards that run before serde_yaml.
mod aliases;
mod nesting;
#[cfg(test)]
mod proptests;
mod read;

/// Reads and checks `path`; on failure, every error found.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let text = read::read(path).map_err(|e| vec![e])?;
    parse(path, &text)
}

/// Checks `text` as if read from `path` (relative paths resolve against its folder).
pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    if let Err(line) = nesting::check(text) {
        return Err(vec![ConfigError {
            file: path.display().to_string(),
            line: Some(line),
            key: String::new(),
            message: format!(
                "invalid YAML: nested more than {} levels deep",
                nesting::MAX_DEPTH
            ),
        }]);
    }
    if let Err(line) = aliases::check(text) {
        return Err(vec![ConfigError {
            file: path.display().to_string(),
            line,
            key: String::new(),
            message: format!(
                "invalid YAML: aliases expand it to more than {} nodes",
                aliases::budget(text)
            ),
        }]);
    }
    fields::parse(path, text)
}

/// The TCP listener's secret. Its `Debug` does not show it, so that no log
/// or panic message can carry it.
#[derive(Clone, PartialEq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: &str) -> Secret {
        Secret(text.to_string())
    }

    /// Whether `guess` is the secret, in a time that depends on the secret's
    /// length only: every byte is compared, whatever differs first, so the
    /// timing of replies tells nothing about how much of a guess was right.
    pub fn matches(&self, guess: &str) -> bool {
        let (want, got) = (self.0.as_bytes(), guess.as_bytes());
        let mut diff = u8::from(want.len() != got.len());
        for (i, w) in want.iter().enumerate() {
            diff |= w ^ got.get(i).copied().unwrap_or(0);
        }
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}
