//! The line protocol: parsing requests, formatting replies and `status`.
//!
//! A reply is zero or more body lines, then `OK` or `ERR <message>`.

use crate::state::{Exit, State};
use std::fmt::Write as _;
use std::time::Duration;

/// Longest accepted request line, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Status { names: Vec<String>, json: bool },
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Reload { dry_run: bool },
    Shutdown,
    Help,
}

pub const HELP: &[&str] = &[
    "status [NAMES] [--json]  show processes (all when no name)",
    "start NAMES              start processes, reply when RUNNING or failed",
    "stop NAMES               stop processes, reply when STOPPED",
    "restart NAMES            stop then start",
    "reload [--dry-run]       re-read the config file (as SIGHUP)",
    "shutdown                 stop every process and exit the daemon",
    "help                     this list",
    "NAMES: PROGRAM, PROGRAM:N or all",
];

/// Parses one line. `Ok(None)` for a blank line (no reply is due).
pub fn parse(line: &str) -> Result<Option<Request>, String> {
    let mut words = line.split_whitespace();
    let Some(cmd) = words.next() else {
        return Ok(None);
    };
    let args: Vec<String> = words.map(str::to_string).collect();
    let names = |verb: &str| {
        if args.is_empty() {
            Err(format!("{verb} needs NAMES (PROGRAM, PROGRAM:N or all)"))
        } else if let Some(opt) = args.iter().find(|a| a.starts_with("--")) {
            Err(format!("{verb}: unknown option {opt}"))
        } else {
            Ok(args.clone())
        }
    };
    let none = |req: Request| {
        if args.is_empty() {
            Ok(req)
        } else {
            Err(format!("{cmd} takes no arguments"))
        }
    };
    let req = match cmd {
        "status" => {
            let json = args.iter().any(|a| a == "--json");
            if let Some(opt) = args.iter().find(|a| a.starts_with("--") && *a != "--json") {
                return Err(format!("status: unknown option {opt}"));
            }
            let names = args.iter().filter(|a| *a != "--json").cloned().collect();
            Request::Status { names, json }
        }
        "start" => Request::Start(names(cmd)?),
        "stop" => Request::Stop(names(cmd)?),
        "restart" => Request::Restart(names(cmd)?),
        "reload" => match args.as_slice() {
            [] => Request::Reload { dry_run: false },
            [a] if a == "--dry-run" => Request::Reload { dry_run: true },
            _ => return Err("usage: reload [--dry-run]".into()),
        },
        "shutdown" => none(Request::Shutdown)?,
        "help" => Request::Help,
        _ => return Err(format!("unknown command {cmd:?} (try help)")),
    };
    Ok(Some(req))
}

/// A finished reply, encoded as lines.
pub fn reply(body: &[String], result: Result<(), String>) -> String {
    let mut out = String::new();
    for line in body {
        out.push_str(line);
        out.push('\n');
    }
    match result {
        Ok(()) => out.push_str("OK\n"),
        Err(e) => {
            out.push_str("ERR ");
            out.push_str(&e.replace('\n', " "));
            out.push('\n');
        }
    }
    out
}

/// What `status` shows of one process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessView {
    pub name: String,
    pub program: String,
    pub index: u32,
    pub state: State,
    pub pid: Option<i32>,
    pub uptime: Option<Duration>,
    pub last_exit: Option<Exit>,
    pub restarts: u32,
    pub message: String,
}

impl ProcessView {
    /// The human detail column.
    pub fn detail(&self) -> String {
        match (self.pid, self.uptime) {
            (Some(pid), Some(up)) if self.message.is_empty() => {
                format!("pid {pid}, uptime {}", hms(up))
            }
            (Some(pid), Some(up)) => format!("pid {pid}, uptime {}, {}", hms(up), self.message),
            _ if !self.message.is_empty() => self.message.clone(),
            _ => match (self.state, self.last_exit) {
                (State::NotStarted, _) => "not started".into(),
                (_, Some(e)) => e.describe(),
                _ => String::new(),
            },
        }
    }
}

/// `H:MM:SS`.
pub fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Aligned `name state detail` lines, no header.
pub fn status_lines(procs: &[ProcessView]) -> Vec<String> {
    let width = procs.iter().map(|p| p.name.len()).max().unwrap_or(0);
    procs
        .iter()
        .map(|p| {
            let line = format!("{:width$}  {:19}  {}", p.name, p.state.token(), p.detail());
            line.trim_end().to_string()
        })
        .collect()
}

/// The one-line JSON array of `status --json`.
pub fn status_json(procs: &[ProcessView]) -> String {
    let mut out = String::from("[");
    for (i, p) in procs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let opt = |v: Option<String>| v.unwrap_or_else(|| "null".into());
        let (code, sig) = match p.last_exit {
            Some(Exit::Code(c)) => (Some(c.to_string()), None),
            Some(Exit::Signal(s)) => (None, Some(json_str(&crate::signals::name(s)))),
            None => (None, None),
        };
        let _ = write!(
            out,
            "{{\"name\":{},\"program\":{},\"index\":{},\"state\":\"{}\",\"pid\":{},\"uptime_s\":{},\"exit_code\":{},\"signal\":{},\"restarts\":{},\"message\":{}}}",
            json_str(&p.name),
            json_str(&p.program),
            p.index,
            p.state.token(),
            opt(p.pid.map(|v| v.to_string())),
            opt(p.uptime.map(|u| u.as_secs().to_string())),
            opt(code),
            opt(sig),
            p.restarts,
            json_str(&p.detail()),
        );
    }
    out.push(']');
    out
}

/// A JSON string literal, escaped.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
