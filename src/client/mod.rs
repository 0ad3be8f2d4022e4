//! The client side of the protocol, shared by taskmasterctl and the tests.

pub mod complete;
pub mod format;
pub mod shell;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often a waiting request looks at the interrupt flag.
const INTERRUPT_CHECK: Duration = Duration::from_millis(100);

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
}

impl Client {
    pub fn new(path: &Path) -> Client {
        Client {
            path: path.to_path_buf(),
            reader: None,
            interrupt: None,
        }
    }

    /// From now on a set `flag` abandons the reply being waited for (the
    /// daemon carries on with the command); the connection is dropped.
    pub fn interruptible(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one command line and reads its whole reply. Reconnects if the
    /// daemon was restarted since the last command.
    pub fn request(&mut self, line: &str) -> Result<Reply, String> {
        for attempt in 0..2 {
            if self.reader.is_none() {
                let s = UnixStream::connect(&self.path).map_err(|e| {
                    format!(
                        "cannot reach taskmasterd at {}: {}",
                        self.path.display(),
                        why_unreachable(&e)
                    )
                })?;
                if self.interrupt.is_some() {
                    let _ = s.set_read_timeout(Some(INTERRUPT_CHECK));
                }
                self.reader = Some(BufReader::new(s));
            }
            match self.exchange(line) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.reader = None;
                    if attempt == 1 || e.1 {
                        return Err(e.0);
                    }
                }
            }
        }
        Err("unreachable".into())
    }

    /// Err((message, got_some_reply)): a reply cut short is not retried.
    fn exchange(&mut self, line: &str) -> Result<Reply, (String, bool)> {
        use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
        let reader = self
            .reader
            .as_mut()
            .ok_or(("not connected".to_string(), false))?;
        reader
            .get_mut()
            .write_all(format!("{line}\n").as_bytes())
            .map_err(|e| (format!("send failed: {e}"), false))?;
        if let Some(flag) = &self.interrupt {
            flag.store(false, Ordering::Relaxed);
        }
        let mut body = Vec::new();
        loop {
            let mut raw = Vec::new();
            loop {
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) => {
                        let why = "the daemon closed the connection";
                        return Err((why.into(), !body.is_empty()));
                    }
                    Ok(_) if raw.ends_with(b"\n") => break,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), WouldBlock | TimedOut | Interrupted) => {
                        if self
                            .interrupt
                            .as_ref()
                            .is_some_and(|f| f.load(Ordering::Relaxed))
                        {
                            let why = "interrupted; the daemon carries on with the command";
                            return Err((why.into(), true));
                        }
                    }
                    Err(e) => return Err((format!("read failed: {e}"), !body.is_empty())),
                }
            }
            let l = String::from_utf8_lossy(&raw);
            let l = l.trim_end_matches(['\n', '\r']);
            if l == "OK" {
                return Ok(Reply { body, error: None });
            }
            if let Some(msg) = l.strip_prefix("ERR") {
                return Ok(Reply {
                    body,
                    error: Some(msg.trim_start().to_string()),
                });
            }
            body.push(l.to_string());
        }
    }
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
