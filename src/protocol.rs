//! The line protocol: parsing requests, formatting replies and `status`.
//!
//! A reply is zero or more body lines, then `OK` or `ERR <message>`. Body
//! lines are dot-stuffed (`stuff`), so no body line can look like a final one.

use std::borrow::Cow;

/// Longest accepted request line, in bytes.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    Status {
        names: Vec<String>,
        json: bool,
    },
    Start(Vec<String>),
    Stop(Vec<String>),
    Restart(Vec<String>),
    Reload {
        dry_run: bool,
    },
    Shutdown,
    /// `help` alone, or `help COMMAND`.
    Help(Option<String>),
    /// Ends this connection (for telnet and nc users).
    Quit,
    /// `tail [-f] [-n N] NAME [stdout|stderr]`: the last `lines` lines of one
    /// process's stream; with `follow`, every new line after them.
    Tail {
        follow: bool,
        lines: usize,
        name: String,
        stream: Stream,
    },
    /// `attach NAME [ROWSxCOLS]`: the connection becomes the process's
    /// terminal; `size` is (rows, cols) for its pty.
    Attach {
        name: String,
        size: Option<(u16, u16)>,
    },
    /// `signal SIG NAMES`: `sig` to each process's group.
    Signal {
        sig: i32,
        names: Vec<String>,
    },
    /// `pid [NAMES]`: the daemon's pid, or each process's.
    Pid(Vec<String>),
    /// Reopens every log and output file (as SIGUSR2).
    Reopen,
    /// The Prometheus text exposition, as body lines.
    Metrics,
    /// `auth SECRET`: the first command on a TCP connection when
    /// `listen_secret_file` is set. Handled by the connection, never logged.
    Auth(String),
    /// The daemon's version.
    Version,
    /// Each program of the config file on disk, and whether it is in use.
    Avail,
}

/// One of a process's output streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// `tail` without `-n`.
pub const TAIL_DEFAULT_LINES: usize = 10;
/// The most lines one `tail` may ask for: the in-memory tail is bounded anyway,
/// and a typo must not look like a request for the whole history.
pub const TAIL_MAX_LINES: usize = 100_000;

/// One protocol command, as `help` shows it and taskmasterctl completes it.
pub struct Command {
    pub name: &'static str,
    /// The arguments, as shown after the name.
    pub args: &'static str,
    pub summary: &'static str,
    /// What `help COMMAND` adds.
    pub detail: &'static [&'static str],
    /// Whether the arguments are process names (for completion).
    pub takes_names: bool,
}

pub const COMMANDS: &[Command] = &[
    Command {
        name: "status",
        args: "[NAMES] [--json]",
        summary: "show processes (all when no name)",
        detail: &[
            "One aligned line per process: name, state, details (pid and uptime,",
            "exit status, signal, or the spawn error). --json: one JSON array line.",
        ],
        takes_names: true,
    },
    Command {
        name: "start",
        args: "NAMES",
        summary: "start processes, reply when RUNNING or failed",
        detail: &[
            "Replies when each process is RUNNING or gave up, one line per process.",
            "A STARTING process is waited for; a BACKOFF one is spawned at once.",
        ],
        takes_names: true,
    },
    Command {
        name: "stop",
        args: "NAMES",
        summary: "stop processes, reply when STOPPED",
        detail: &[
            "Sends each stopsignal to the whole process group, SIGKILL after stoptime.",
            "Cancels any pending restart of BACKOFF, FATAL or exited processes.",
        ],
        takes_names: true,
    },
    Command {
        name: "restart",
        args: "NAMES",
        summary: "stop then start",
        detail: &["Replies when each process is RUNNING again or gave up."],
        takes_names: true,
    },
    Command {
        name: "signal",
        args: "SIG NAMES",
        summary: "send a signal to each process's group",
        detail: &[
            "SIG: a name or a number, as stopsignal (TERM, SIGUSR1, hup, 10).",
            "One line per process; ERR when any of them was not running.",
        ],
        takes_names: true,
    },
    Command {
        name: "pid",
        args: "[NAMES]",
        summary: "the daemon's pid, or each process's (0: not running)",
        detail: &["Without NAMES: the daemon's pid. With: one `PROGRAM:N PID` line each."],
        takes_names: true,
    },
    Command {
        name: "tail",
        args: "[-f] [-n N] NAME [stdout|stderr]",
        summary: "last lines of a process's output; -f follows",
        detail: &[
            "NAME is one process: PROGRAM:N, or PROGRAM when it has one process.",
            "-n N: how many lines (default 10, at most 100000); stdout by default.",
            "-f: then every new line, across restarts, until the client sends a",
            "line or closes (taskmasterctl: until Ctrl-C).",
        ],
        takes_names: false,
    },
    Command {
        name: "attach",
        args: "NAME [ROWSxCOLS]",
        summary: "connect to a process's terminal; Ctrl-] detaches",
        detail: &[
            "Recent output, then raw bytes both ways; Ctrl-] detaches and the",
            "process keeps running. taskmasterctl sends its own window size.",
        ],
        takes_names: false,
    },
    Command {
        name: "reload",
        args: "[--dry-run]",
        summary: "re-read the config file (as SIGHUP)",
        detail: &[
            "Changes only what changed: one line per change. An invalid file",
            "changes nothing and every error is listed. --dry-run only lists.",
        ],
        takes_names: false,
    },
    Command {
        name: "metrics",
        args: "",
        summary: "Prometheus metrics of every process and the daemon",
        detail: &["Text format 0.0.4; metrics_listen serves it as HTTP GET /metrics."],
        takes_names: false,
    },
    Command {
        name: "avail",
        args: "",
        summary: "the config file's programs: in use, avail, removed on reload",
        detail: &[
            "Re-reads the config file without applying it: `in use` (the daemon runs it),",
            "`avail` (a reload would add it), `removed on reload` (the file no longer",
            "has it). A file with errors lists them and answers ERR, as reload does.",
        ],
        takes_names: false,
    },
    Command {
        name: "reopen",
        args: "",
        summary: "reopen every log and output file (as SIGUSR2)",
        detail: &["For logrotate's `create` mode: files renamed away are created anew."],
        takes_names: false,
    },
    Command {
        name: "shutdown",
        args: "",
        summary: "stop every process and exit the daemon",
        detail: &["Replies OK once every process is stopped and the socket is gone."],
        takes_names: false,
    },
    Command {
        name: "auth",
        args: "SECRET",
        summary: "authenticate a TCP connection (first command)",
        detail: &[
            "With listen_secret_file, a TCP connection must send `auth SECRET` first:",
            "any other command before it gets ERR authentication required. A wrong",
            "secret gets ERR authentication failed and the connection is closed.",
            "Where no secret is needed (the unix socket, listen_open) it is just OK.",
        ],
        takes_names: false,
    },
    Command {
        name: "version",
        args: "",
        summary: "the daemon's version",
        detail: &[],
        takes_names: false,
    },
    Command {
        name: "help",
        args: "[COMMAND]",
        summary: "this list, or one command in detail",
        detail: &[],
        takes_names: false,
    },
    Command {
        name: "quit",
        args: "",
        summary: "close this connection (the daemon keeps running)",
        detail: &[],
        takes_names: false,
    },
];

/// The command called `name`.
pub fn command(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

impl Command {
    /// `status [NAMES] [--json]`.
    pub fn usage(&self) -> String {
        if self.args.is_empty() {
            self.name.to_string()
        } else {
            format!("{} {}", self.name, self.args)
        }
    }
}

/// The body of `help` or `help COMMAND`.
pub fn help(topic: Option<&str>) -> Result<Vec<String>, String> {
    let Some(topic) = topic else {
        let mut body = Vec::new();
        for c in COMMANDS {
            // A usage too long for the column gets a line of its own.
            let usage = c.usage();
            if usage.len() > 25 {
                body.push(usage);
                body.push(format!("{:25} {}", "", c.summary));
            } else {
                body.push(format!("{usage:25} {}", c.summary));
            }
        }
        body.push("NAMES: PROGRAM or PROGRAM:* (all its processes), PROGRAM:N, or all".into());
        return Ok(body);
    };
    let c = command(topic).ok_or_else(|| format!("no command {topic:?} (try help)"))?;
    let mut body = vec![format!("usage: {}", c.usage()), c.summary.to_string()];
    body.extend(c.detail.iter().map(|s| s.to_string()));
    if c.takes_names {
        body.push("NAMES: PROGRAM or PROGRAM:* (all its processes), PROGRAM:N, or all".into());
    }
    Ok(body)
}

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
        "quit" => none(Request::Quit)?,
        "help" => match args.as_slice() {
            [] => Request::Help(None),
            [topic] => Request::Help(Some(topic.clone())),
            _ => return Err("usage: help [COMMAND]".into()),
        },
        "tail" => args::parse_tail(&args)?,
        "attach" => args::parse_attach(&args)?,
        "signal" => match args.split_first() {
            None => return Err("usage: signal SIG NAMES".into()),
            Some((sig, rest)) => {
                let sig = crate::signals::parse(sig)
                    .ok_or_else(|| format!("signal: unknown signal {sig:?}"))?;
                if rest.is_empty() {
                    return Err("signal needs NAMES after SIG (PROGRAM, PROGRAM:N or all)".into());
                }
                if let Some(opt) = rest.iter().find(|a| a.starts_with("--")) {
                    return Err(format!("signal: unknown option {opt}"));
                }
                Request::Signal {
                    sig: sig as i32,
                    names: rest.to_vec(),
                }
            }
        },
        "pid" => match args.iter().find(|a| a.starts_with("--")) {
            Some(opt) => return Err(format!("pid: unknown option {opt}")),
            None => Request::Pid(args.clone()),
        },
        "reopen" => none(Request::Reopen)?,
        "metrics" => none(Request::Metrics)?,
        "version" => none(Request::Version)?,
        "avail" => none(Request::Avail)?,
        "auth" => match args.as_slice() {
            [secret] => Request::Auth(secret.clone()),
            _ => return Err("usage: auth SECRET".into()),
        },
        _ => return Err(format!("unknown command {cmd:?} (try help)")),
    };
    Ok(Some(req))
}

/// A body line as sent: one more `.` in front of a line that begins with `.`,
/// is `OK`, or begins with `ERR`, so that no body line (a process's output
/// included) can pass for the final line. `OK` followed by carriage returns
/// counts as `OK` too, since clients drop a line's trailing `\r`.
pub fn stuff(line: &str) -> Cow<'_, str> {
    if line.starts_with('.') || line.starts_with("ERR") || line.trim_end_matches('\r') == "OK" {
        Cow::Owned(format!(".{line}"))
    } else {
        Cow::Borrowed(line)
    }
}

/// A received body line as meant: one leading `.` removed, if it has one.
pub fn unstuff(line: &str) -> &str {
    line.strip_prefix('.').unwrap_or(line)
}

/// A finished reply, encoded as lines.
pub fn reply(body: &[String], result: Result<(), String>) -> String {
    let mut out = String::new();
    for line in body {
        out.push_str(&stuff(line));
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

#[path = "protocol_args.rs"]
mod args;

#[path = "protocol_status.rs"]
mod status;
pub use status::*;

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
