//! The client side of the protocol, shared by taskmasterctl and the tests.

pub mod out;

mod attach;
pub mod complete;
mod follow;
pub mod format;
pub mod shell;
pub mod socket;
mod term;
mod wire;

use std::io::{BufReader, ErrorKind, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::{Partial, Stop};

/// How long taskmasterctl waits for the daemon unless `-t` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The commands whose reply waits for processes to get somewhere (stoptime
/// may be long): they wait as long as the daemon shows it is alive.
const DEFERRED: [&str; 4] = ["start", "stop", "restart", "shutdown"];

/// A liveness check: cheap, read-only, answered at once by a working loop.
const PROBE: &str = "help quit\n";

/// Exit codes of taskmasterctl (contract).
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_NOT_RUNNING: i32 = 3;

#[derive(Debug, PartialEq)]
pub struct Reply {
    pub body: Vec<String>,
    /// `None` for OK, the message after `ERR ` otherwise.
    pub error: Option<String>,
}

pub struct Client {
    path: PathBuf,
    reader: Option<BufReader<UnixStream>>,
    /// Set by SIGINT in the shell: stop waiting for the current reply.
    interrupt: Option<Arc<AtomicBool>>,
    timeout: Duration,
}

/// Why a request failed; `retry` when nothing was received and a fresh
/// connection may do better (the daemon was restarted since the last command).
struct Failure {
    message: String,
    retry: bool,
}

/// What a liveness check found.
enum Probe {
    /// It answered: the daemon is working on the deferred reply.
    Alive,
    /// Refused, socket gone, or closed: the daemon is going away, and the
    /// waiting connection will get its OK or EOF.
    Leaving,
    /// No answer within the timeout.
    Silent(String),
    Interrupted,
}

impl Client {
    pub fn new(path: &Path) -> Client {
        Client {
            path: path.to_path_buf(),
            reader: None,
            interrupt: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// How long to wait for a connection, an immediate reply, or a sign of
    /// life while a deferred reply is pending.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// From now on a set `flag` abandons the reply being waited for (the
    /// daemon carries on with the command); the connection is dropped.
    pub fn interruptible(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn flag(&self) -> Option<&AtomicBool> {
        self.interrupt.as_deref()
    }

    fn interrupted(&self) -> String {
        "interrupted; the daemon carries on with the command".into()
    }

    fn not_responding(&self, what: &str) -> String {
        format!(
            "taskmasterd at {} is not responding ({what})",
            self.path.display()
        )
    }

    /// Sends one command line and reads its whole reply. Reconnects if the
    /// daemon was restarted since the last command.
    pub fn request(&mut self, line: &str) -> Result<Reply, String> {
        if let Some(flag) = self.flag() {
            flag.store(false, Ordering::Relaxed);
        }
        for attempt in 0..2 {
            if self.reader.is_none() {
                let s = wire::connect(&self.path, self.timeout, self.flag())
                    .map_err(|e| self.connect_failed(&e))?;
                self.reader = Some(BufReader::new(s));
            }
            match self.exchange(line) {
                Ok(r) => return Ok(r),
                Err(f) => {
                    self.reader = None;
                    if attempt == 1 || !f.retry {
                        return Err(f.message);
                    }
                }
            }
        }
        Err("unreachable".into())
    }

    fn connect_failed(&self, e: &std::io::Error) -> String {
        match e.kind() {
            ErrorKind::WouldBlock => {
                self.not_responding(&format!("connect timed out after {}", secs(self.timeout)))
            }
            ErrorKind::Interrupted => self.interrupted(),
            _ => format!(
                "cannot reach taskmasterd at {}: {}",
                self.path.display(),
                why_unreachable(e)
            ),
        }
    }

    fn exchange(&mut self, line: &str) -> Result<Reply, Failure> {
        let fail = |message: String, retry: bool| Failure { message, retry };
        let deferred = DEFERRED.contains(&line.split_whitespace().next().unwrap_or(""));
        let timeout = self.timeout;
        let mut reader = self
            .reader
            .take()
            .ok_or_else(|| fail("not connected".into(), false))?;
        let sent = Instant::now();
        let _ = reader.get_ref().set_write_timeout(Some(timeout));
        if let Err(e) = reader.get_mut().write_all(format!("{line}\n").as_bytes()) {
            return Err(match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => fail(
                    self.not_responding(&format!("could not send within {}", secs(timeout))),
                    false,
                ),
                _ => fail(format!("send failed: {e}"), true),
            });
        }
        let mut part = Partial::new();
        loop {
            // Immediate replies come whole within the timeout; a deferred one
            // may take as long as the daemon keeps proving it is alive.
            let until = if deferred { part.last } else { sent } + timeout;
            let stop = match part.read(&mut reader, until, self.flag()) {
                Ok(reply) => {
                    self.reader = Some(reader);
                    return Ok(reply);
                }
                Err(stop) => stop,
            };
            match stop {
                Stop::TimedOut if !deferred => {
                    let what = format!("no reply within {}", secs(timeout));
                    return Err(fail(self.not_responding(&what), false));
                }
                // Bytes came while the slice ran out: the silence starts anew.
                Stop::TimedOut if part.last + timeout > Instant::now() => {}
                Stop::TimedOut => match self.probe() {
                    Probe::Alive | Probe::Leaving => part.last = Instant::now(),
                    Probe::Silent(why) => {
                        let what = format!("no reply to `{line}` yet, and {why}");
                        return Err(fail(self.not_responding(&what), false));
                    }
                    Probe::Interrupted => return Err(fail(self.interrupted(), false)),
                },
                Stop::Eof => {
                    let why = "the daemon closed the connection";
                    return Err(fail(why.into(), !part.got));
                }
                Stop::Interrupted => return Err(fail(self.interrupted(), false)),
                Stop::Failed(e) => return Err(fail(format!("read failed: {e}"), !part.got)),
            }
        }
    }

    /// Asks the daemon, on a second connection, for a cheap reply within the
    /// timeout: a deferred reply is only worth waiting for while it answers.
    fn probe(&self) -> Probe {
        let t = self.timeout;
        let deadline = Instant::now() + t;
        let s = match wire::connect(&self.path, t, self.flag()) {
            Ok(s) => s,
            Err(e) => {
                return match e.kind() {
                    ErrorKind::NotFound | ErrorKind::ConnectionRefused => Probe::Leaving,
                    ErrorKind::Interrupted => Probe::Interrupted,
                    ErrorKind::WouldBlock => Probe::Silent(format!(
                        "a liveness check could not connect within {}",
                        secs(t)
                    )),
                    _ => Probe::Silent(format!(
                        "a liveness check could not connect: {}",
                        why_unreachable(&e)
                    )),
                };
            }
        };
        let mut reader = BufReader::new(s);
        let _ = reader.get_ref().set_write_timeout(Some(t));
        if reader.get_mut().write_all(PROBE.as_bytes()).is_err() {
            return Probe::Leaving;
        }
        match Partial::new().read(&mut reader, deadline, self.flag()) {
            Ok(_) => Probe::Alive,
            Err(Stop::TimedOut) => {
                Probe::Silent(format!("a liveness check got no answer within {}", secs(t)))
            }
            Err(Stop::Interrupted) => Probe::Interrupted,
            Err(Stop::Eof | Stop::Failed(_)) => Probe::Leaving,
        }
    }
}

/// `10s`, `0.5s`.
fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

/// One plain reason instead of an errno dump.
fn why_unreachable(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => "no socket there (is taskmasterd running?)".into(),
        ConnectionRefused => "nothing listening (is taskmasterd running?)".into(),
        PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// The exit code for `reply` to `line`: 3 when a `status` lists a process
/// that is not RUNNING.
pub fn exit_code(line: &str, reply: &Reply) -> i32 {
    if reply.error.is_some() {
        return EXIT_ERR;
    }
    if line.split_whitespace().next() == Some("status") && !all_running(&reply.body) {
        return EXIT_NOT_RUNNING;
    }
    EXIT_OK
}

fn all_running(body: &[String]) -> bool {
    body.iter().all(|l| {
        if l.starts_with('[') {
            l.split("\"state\":\"")
                .skip(1)
                .all(|s| s.starts_with("RUNNING\""))
        } else {
            l.split_whitespace().nth(1) == Some("RUNNING")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(body: &[&str]) -> Reply {
        Reply {
            body: body.iter().map(|s| s.to_string()).collect(),
            error: None,
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code("start a", &ok(&["a:0: started"])), 0);
        let err = Reply {
            body: vec![],
            error: Some("unknown name: x".into()),
        };
        assert_eq!(exit_code("start x", &err), 1);
        assert_eq!(exit_code("status", &ok(&["a:0  RUNNING  pid 1"])), 0);
        assert_eq!(
            exit_code("status", &ok(&["a:0  RUNNING  pid 1", "b:0  FATAL  x"])),
            3
        );
        assert_eq!(
            exit_code(
                "status --json",
                &ok(&["[{\"state\":\"RUNNING\"},{\"state\":\"STOPPED\"}]"])
            ),
            3
        );
        assert_eq!(
            exit_code("status --json", &ok(&["[{\"state\":\"RUNNING\"}]"])),
            0
        );
    }
}
