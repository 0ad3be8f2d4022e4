//! Key-by-key checks of the parsed YAML, collecting every error.

use super::hint::{self, Level};
use super::locate::Locator;
use super::size::{parse_size, EXPECTED as SIZE};
use super::{AutoRestart, Config, ConfigError, Program, DEFAULT_BACKUPS};
use serde_yaml::{Mapping, Value};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "alerts.rs"]
mod alerts;
#[path = "identity.rs"]
mod identity;
pub use alerts::DEFAULT_SYSLOG;
pub use identity::{Rlimit, RunAs, RLIMIT_NAMES};

#[cfg(test)]
#[path = "reference_tests.rs"]
mod reference_tests;

const TOP_KEYS: &str = "socket, socket_mode, socket_group, listen, listen_secret_file, \
     listen_open, logfile, logfile_maxbytes, logfile_backups, minfds, fatal_state_report_address, \
     report_events, report_command, syslog, daemonize, pidfile, exit_on_fatal, metrics_listen, \
     include, programs";
const PROGRAM_KEYS: &str = "cmd, numprocs, umask, workingdir, autostart, autorestart, exitcodes, \
     startretries, starttime, stopsignal, stoptime, stdout, stderr, redirect_stderr, \
     stdout_maxbytes, stdout_backups, stderr_maxbytes, stderr_backups, attach, env, \
     fatal_state_report_address, report_events, report_command, user, group, rlimits, \
     depends_on, priority, ready, healthcheck";
/// Longest starttime/stoptime accepted (one year), so a typo cannot overflow a timer.
const MAX_SECONDS: f64 = 365.0 * 86400.0;
const MAX_NUMPROCS: u64 = 65536;
const MAX_BACKUPS: u64 = 1000;
/// Highest `minfds` (Linux's ceiling for `fs.nr_open` is just below 2^30).
const MAX_MINFDS: u64 = 1 << 30;

/// Errors listed at most per file: a file of a million bad keys is
/// refused as fast as one with a few (no hint computed, no line kept for the
/// rest), and a `reload` reply or log stays readable.
const MAX_ERRORS: usize = 100;

struct Ctx<'a> {
    file: String,
    dir: PathBuf,
    loc: Locator<'a>,
    errors: Vec<ConfigError>,
    /// Errors past `MAX_ERRORS`, counted only.
    unshown: usize,
    /// Errors this file may still list: an included file gets what the
    /// files before it left, so the cap holds for the whole configuration.
    room: usize,
}

pub fn parse(path: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
    let file = path.display().to_string();
    let doc: Value = match serde_yaml::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(vec![ConfigError {
                file,
                // The one error without a position: a second document.
                line: e
                    .location()
                    .map(|l| l.line())
                    .or_else(|| super::locate::second_document(text)),
                key: String::new(),
                message: format!("invalid YAML: {e}"),
            }]);
        }
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut cx = Ctx {
        file,
        dir,
        loc: Locator::new(text),
        errors: Vec::new(),
        unshown: 0,
        room: MAX_ERRORS,
    };
    let config = cx.top(abs, &doc);
    // Checks run key by key, then per program (`cmd` last): list them in the
    // file's order so a user fixes it top down. Stable: same-line errors keep
    // their order; errors without a line go last.
    // The main file's first, then each included file's in turn (by line
    // alone, the files' errors were interleaved).
    let mut files: Vec<String> = vec![cx.file.clone()];
    for e in &cx.errors {
        if !files.contains(&e.file) {
            files.push(e.file.clone());
        }
    }
    cx.errors.sort_by_key(|e| {
        let file = files.iter().position(|f| *f == e.file);
        (file, e.line.unwrap_or(usize::MAX))
    });
    cx.summarize();
    match config {
        Some(c) if cx.errors.is_empty() => Ok(c),
        _ => Err(cx.errors),
    }
}

/// How many errors `errors` stands for: the last line of a capped list
/// (no line, no key) counts those not listed, and is no error itself.
pub fn error_count(errors: &[ConfigError]) -> usize {
    let unshown = errors
        .last()
        .filter(|e| e.line.is_none() && e.key.is_empty())
        .and_then(|e| {
            e.message
                .strip_prefix("… and ")?
                .strip_suffix(" more errors")
        })
        .and_then(|n| n.parse::<usize>().ok());
    match unshown {
        Some(n) => errors.len() - 1 + n,
        None => errors.len(),
    }
}

/// `IP:PORT`, `localhost:PORT`, optionally written as `http://…/`.
pub fn parse_address(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    let t = t.strip_prefix("http://").unwrap_or(t);
    let t = t.strip_suffix('/').unwrap_or(t);
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Some(port) = t.strip_prefix("localhost:") {
        if let Ok(p) = port.parse::<u16>() {
            return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, p)));
        }
    }
    Err(format!(
        "expected HOST:PORT with an IP address or localhost (e.g. 127.0.0.1:8080), got {text:?}"
    ))
}

impl Ctx<'_> {
    /// The last error line of a file with more than `MAX_ERRORS`.
    fn summarize(&mut self) {
        if self.unshown > 0 {
            self.errors.push(ConfigError {
                file: self.file.clone(),
                line: None,
                key: String::new(),
                message: format!("… and {} more errors", self.unshown),
            });
        }
    }

    fn full(&mut self) -> bool {
        if self.errors.len() < self.room {
            return false;
        }
        self.unshown += 1;
        true
    }

    /// An error made elsewhere, under the same cap.
    pub(super) fn push(&mut self, e: ConfigError) {
        if !self.full() {
            self.errors.push(e);
        }
    }

    fn err(&mut self, path: &[&str], message: impl Into<String>) {
        if self.full() {
            return;
        }
        self.errors.push(ConfigError {
            file: self.file.clone(),
            line: self.loc.line(path),
            key: path.join("."),
            message: message.into(),
        });
    }

    fn top(&mut self, file: PathBuf, doc: &Value) -> Option<Config> {
        let empty = Mapping::new();
        let map = match doc {
            Value::Mapping(m) => m,
            Value::Null => &empty,
            _ => {
                self.err(&[], "expected a mapping with a `programs:` key");
                return None;
            }
        };
        let mut config = Config {
            file,
            socket: super::default_socket(),
            socket_mode: None,
            socket_group: None,
            listen: None,
            listen_secret: None,
            listen_open: false,
            metrics_listen: None,
            logfile: super::default_logfile(),
            logfile_maxbytes: 0,
            logfile_backups: DEFAULT_BACKUPS,
            minfds: None,
            daemonize: false,
            pidfile: None,
            exit_on_fatal: false,
            syslog: None,
            programs: Vec::new(),
        };
        let mut inherited = alerts::Inherited::default();
        let mut programs = None;
        let mut include = None;
        for (k, v) in map {
            let Some(key) = self.key(&[], k) else {
                continue;
            };
            let p = [key];
            match key {
                "socket" => config.socket = self.path(&p, v).unwrap_or(config.socket),
                "logfile" => config.logfile = self.path(&p, v).unwrap_or(config.logfile),
                "socket_mode" => config.socket_mode = self.socket_mode(&p, v),
                "socket_group" => config.socket_group = self.socket_group(&p, v),
                "listen" => config.listen = self.listen(&p, v),
                "listen_secret_file" => config.listen_secret = self.secret_file(&p, v),
                "listen_open" => config.listen_open = self.boolean(&p, v).unwrap_or(false),
                "metrics_listen" => config.metrics_listen = self.metrics_listen(&p, v),
                "logfile_maxbytes" => config.logfile_maxbytes = self.size(&p, v).unwrap_or(0),
                "logfile_backups" => config.logfile_backups = self.backups(&p, v),
                "minfds" => config.minfds = self.uint(&p, v, 0, MAX_MINFDS),
                "daemonize" => config.daemonize = self.boolean(&p, v).unwrap_or(false),
                "pidfile" => config.pidfile = self.path(&p, v),
                "exit_on_fatal" => config.exit_on_fatal = self.boolean(&p, v).unwrap_or(false),
                "fatal_state_report_address" => inherited.address = self.address(&p, v),
                "report_events" => inherited.events = self.report_events(&p, v),
                "report_command" => inherited.command = self.report_command(&p, v),
                "syslog" => config.syslog = self.syslog(&p, v),
                "programs" => programs = Some(v),
                "include" => include = Some(v),
                _ => self.unknown(&p, TOP_KEYS, Level::Top),
            }
        }
        match programs {
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    let Some(name) = self.key(&["programs"], k) else {
                        continue;
                    };
                    if let Some(p) = self.program(name, v, &inherited) {
                        config.programs.push(p.into());
                    }
                }
            }
            Some(Value::Null) => {}
            Some(_) => self.err(&["programs"], "expected a mapping of program names"),
            // The programs may all come from the included files.
            None if include.is_some() => {}
            None => self.err(
                &["programs"],
                "missing (expected a mapping of program names)",
            ),
        }
        if let Some(v) = include {
            let main = config.file.clone();
            self.include(v, &mut config.programs, &inherited, &main);
        }
        config.programs.sort_by(|a, b| a.name.cmp(&b.name));
        self.check_listen(&config);
        self.check_graph(&config);
        Some(config)
    }

    /// An unknown key: supervisord's name for ours, or the nearest known key.
    fn unknown(&mut self, path: &[&str], known: &str, level: Level) {
        if self.full() {
            return;
        }
        let known: Vec<&str> = known.split(", ").collect();
        let key = path.last().copied().unwrap_or_default();
        self.err(path, hint::unknown_key(key, &known, level));
    }

    fn key<'v>(&mut self, parent: &[&str], k: &'v Value) -> Option<&'v str> {
        match k {
            Value::String(s) => Some(s),
            _ => {
                let message = format!("expected string keys, got {}", show(k));
                match self.loc.odd_key_line(parent) {
                    // The key has no name to show: its line says where it is.
                    Some(line) if !self.full() => self.errors.push(ConfigError {
                        file: self.file.clone(),
                        line: Some(line),
                        key: parent.join("."),
                        message,
                    }),
                    _ => self.err(parent, message),
                }
                None
            }
        }
    }

    fn program(&mut self, name: &str, v: &Value, top: &alerts::Inherited) -> Option<Program> {
        let base = ["programs", name];
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid {
            self.err(
                &base,
                "invalid program name: expected letters, digits, `_`, `-`, `.`",
            );
        } else if name == "all" {
            self.err(&base, "`all` is reserved (it names every process)");
        }
        let Value::Mapping(map) = v else {
            self.err(
                &base,
                format!("expected a mapping of settings, got {}", show(v)),
            );
            return None;
        };
        let mut p = Program::new(name, "");
        p.rare.report_address = top.address;
        p.rare.report_events = top.events;
        p.rare.report_command = top.command.clone();
        let mut has_cmd = false;
        // The expanded keys are expanded once every key is known (`numprocs`).
        let mut raw = templates::Raw::default();
        for (k, v) in map {
            let Some(key) = self.key(&base, k) else {
                continue;
            };
            let path = ["programs", name, key];
            match key {
                "cmd" => {
                    has_cmd = true;
                    raw.cmd = self.string(&path, v, "a command line string");
                }
                "numprocs" => p.numprocs = self.uint(&path, v, 1, MAX_NUMPROCS).unwrap_or(1) as u32,
                "umask" => p.umask = self.umask(&path, v),
                "workingdir" => raw.workingdir = self.path_text(&path, v),
                "autostart" => p.autostart = self.boolean(&path, v).unwrap_or(true),
                "autorestart" => p.autorestart = self.autorestart(&path, v),
                "exitcodes" => p.exitcodes = self.exitcodes(&path, v),
                "startretries" => p.startretries = self.uint(&path, v, 0, 1000).unwrap_or(3) as u32,
                "starttime" => p.starttime = self.seconds(&path, v).unwrap_or(p.starttime),
                "stoptime" => p.stoptime = self.seconds(&path, v).unwrap_or(p.stoptime),
                "stopsignal" => p.stopsignal = self.signal(&path, v).unwrap_or(p.stopsignal),
                "stdout" => raw.stdout = self.path_text(&path, v),
                "stderr" => raw.stderr = self.path_text(&path, v),
                "redirect_stderr" => p.redirect_stderr = self.boolean(&path, v).unwrap_or(false),
                "attach" => p.attach = self.boolean(&path, v).unwrap_or(false),
                "stdout_maxbytes" => p.rare.stdout_maxbytes = self.size(&path, v).unwrap_or(0),
                "stderr_maxbytes" => p.rare.stderr_maxbytes = self.size(&path, v).unwrap_or(0),
                "stdout_backups" => p.rare.stdout_backups = self.backups(&path, v),
                "stderr_backups" => p.rare.stderr_backups = self.backups(&path, v),
                "env" => p.env = self.env(&path, v),
                "fatal_state_report_address" => p.rare.report_address = self.address(&path, v),
                "report_events" => p.rare.report_events = self.report_events(&path, v),
                "report_command" => p.rare.report_command = self.report_command(&path, v),
                "user" => p.user = self.user(&path, v).map(Box::new),
                "group" => p.group = self.group(&path, v).map(Box::new),
                "rlimits" => p.rlimits = self.rlimits(&path, v),
                "depends_on" => p.rare.depends_on = self.depends_on(&path, v),
                "priority" => p.priority = self.priority(&path, v),
                "ready" => raw.ready = self.ready(&path, v),
                "healthcheck" => raw.healthcheck = self.healthcheck(&path, v),
                _ => self.unknown(&path, PROGRAM_KEYS, Level::Program),
            }
        }
        self.expand_program(&mut p, raw);
        p.rare.settle();
        if !has_cmd {
            self.err(
                &base,
                "missing required key `cmd` (the command line to run)",
            );
        }
        if p.stderr.is_some() && p.stderr_joins_stdout() {
            // The stream has no reader of its own: the file would stay empty
            // forever, which is never what the operator meant.
            let why = if p.redirect_stderr {
                "redirect_stderr: true (stderr joins stdout and its file)"
            } else {
                "attach: true (the terminal carries stderr with stdout)"
            };
            self.err(
                &["programs", name, "stderr"],
                format!("expected no stderr file with {why}: this file would never be written"),
            );
        }
        Some(p)
    }
}

/// Short description of a value for error messages.
fn show(v: &Value) -> String {
    match v {
        Value::Null => "nothing (null)".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Sequence(_) => "a list".to_string(),
        Value::Mapping(_) => "a mapping".to_string(),
        Value::Tagged(_) => "a tagged value".to_string(),
    }
}

#[path = "include.rs"]
mod include;
#[path = "surface.rs"]
mod surface;
#[path = "templates.rs"]
mod templates;
#[path = "values.rs"]
mod values;

#[path = "graph.rs"]
mod graph;

#[path = "probes.rs"]
mod probes;
pub use probes::{parse_http, Check, HttpTarget, Probe};
#[path = "probe_expand.rs"]
mod probe_expand;
pub use probe_expand::probes_differ;

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
