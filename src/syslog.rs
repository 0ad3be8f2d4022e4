//! `syslog:` every event-log line also goes to syslog as an RFC 5424 message,
//! facility daemon, over a unix datagram socket (`/dev/log` by default).
//!
//! Never blocking, never fatal: the socket is non-blocking, a datagram the
//! socket cannot take now (the syslog daemon is behind) is dropped, and a
//! missing socket only means no copies. Each trouble is said once in the
//! event log (not per line), and once more when it is over with the count of
//! lines lost. A socket that went away (the syslog daemon restarted and made
//! a new one) is connected again at the next reopen (SIGUSR2, SIGHUP,
//! `reopen`), or by the next line once `RETRY` has passed: no timer, so an
//! idle daemon still never wakes up for it.
//!
//! Nothing here may call `log`: it runs inside the logger. Notes about its
//! own trouble are returned for the event log to write.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `<PRI>` is facility * 8 + severity; facility daemon is 3.
const FACILITY_DAEMON: u8 = 3;
/// Longest message sent (syslog daemons truncate or refuse long datagrams).
pub const MAX_MSG: usize = 8 * 1024;
/// How often a line tries a lost socket again.
const RETRY: Duration = Duration::from_secs(10);

/// The RFC 5424 severity of an env_logger level word.
fn severity(level: &str) -> u8 {
    match level {
        "ERROR" => 3,
        "WARN" => 4,
        "INFO" => 6,
        _ => 7,
    }
}

/// A HOSTNAME field: printable ASCII without spaces, at most 255, else `-`.
pub fn hostname_field(name: &str) -> String {
    let ok = !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        name.to_string()
    } else {
        "-".to_string()
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = if rc == 0 {
        String::from_utf8_lossy(&buf[..len]).into_owned()
    } else {
        String::new()
    };
    hostname_field(&name)
}

/// One event-log record (`TIMESTAMP LEVEL message\n`, see `eventlog::init`)
/// as an RFC 5424 message:
/// `<PRI>1 TIMESTAMP HOSTNAME taskmasterd PROCID - - MSG`.
/// `None` if the record does not have that shape.
pub fn format(record: &[u8], host: &str, pid: u32) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(record);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let (ts, rest) = text.split_once(' ')?;
    let rest = rest.trim_start();
    let (level, msg) = rest.split_once(' ').unwrap_or((rest, ""));
    let msg = msg.trim_start();
    // The timestamp is env_logger's RFC 3339 UTC with milliseconds, which
    // RFC 5424's TIMESTAMP accepts as is; anything else is replaced by NILVALUE.
    let ts = if ts.contains('T') && ts.ends_with('Z') && ts.is_ascii() {
        ts
    } else {
        "-"
    };
    let pri = FACILITY_DAEMON * 8 + severity(level);
    let mut msg_end = msg.len().min(MAX_MSG);
    while !msg.is_char_boundary(msg_end) {
        msg_end -= 1;
    }
    let line = format!(
        "<{pri}>1 {ts} {host} taskmasterd {pid} - - {}",
        &msg[..msg_end]
    );
    Some(line.into_bytes())
}

/// The syslog socket and what went wrong with it.
pub struct Syslog {
    path: PathBuf,
    sock: Option<UnixDatagram>,
    host: String,
    pid: u32,
    /// Lines lost since the trouble began, and whether it was said.
    lost: u64,
    trouble: Option<String>,
    last_try: Option<Instant>,
}

impl Syslog {
    /// A socket for `path`; a failure to connect is returned as the note to
    /// log, and the next reopen or line (after `RETRY`) tries again.
    pub fn open(path: &Path) -> (Syslog, Option<String>) {
        let mut s = Syslog {
            path: path.to_path_buf(),
            sock: None,
            host: hostname(),
            pid: std::process::id(),
            lost: 0,
            trouble: None,
            last_try: None,
        };
        let note = s.reconnect();
        (s, note)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Connects again (a reopen); the note to log if it fails.
    pub fn reconnect(&mut self) -> Option<String> {
        self.last_try = Some(Instant::now());
        match connect(&self.path) {
            Ok(sock) => {
                self.sock = Some(sock);
                None
            }
            Err(e) => {
                self.sock = None;
                self.fail(format!("cannot connect to {}: {e}", self.path.display()))
            }
        }
    }

    /// Records the start of a trouble: the note, only the first time.
    fn fail(&mut self, why: String) -> Option<String> {
        self.lost += 1;
        if self.trouble.is_some() {
            return None;
        }
        self.trouble = Some(why.clone());
        Some(format!(
            "syslog: {why}; lines are not mirrored to syslog until it works again"
        ))
    }

    /// Sends one event-log record; returns notes for the event log.
    pub fn send(&mut self, record: &[u8]) -> Vec<String> {
        let mut notes = Vec::new();
        if self.sock.is_none() {
            let due = self.last_try.is_none_or(|t| t.elapsed() >= RETRY);
            if !due {
                self.lost += 1;
                return notes;
            }
            if let Some(note) = self.reconnect() {
                notes.push(note);
                return notes;
            }
        }
        let Some(line) = format(record, &self.host, self.pid) else {
            return notes;
        };
        let Some(sock) = &self.sock else {
            return notes;
        };
        match sock.send(&line) {
            Ok(_) => {
                if self.trouble.take().is_some() {
                    notes.push(format!(
                        "syslog: {} works again; {} lines were not mirrored",
                        self.path.display(),
                        self.lost
                    ));
                    self.lost = 0;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                notes.extend(self.fail(format!("{} is full", self.path.display())));
            }
            Err(e) => {
                // Gone (ECONNREFUSED, ENOTCONN): the syslog daemon restarted.
                self.sock = None;
                let why = format!("{}: {e}", self.path.display());
                notes.extend(self.fail(why));
            }
        }
        notes
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    sock.connect(path)?;
    Ok(sock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_lines() {
        let rec = b"2026-11-23T21:10:45.123Z ERROR web:0: STARTING -> FATAL (gave up)\n";
        let line = format(rec, "host1", 77).unwrap();
        assert_eq!(
            String::from_utf8(line).unwrap(),
            "<27>1 2026-11-23T21:10:45.123Z host1 taskmasterd 77 - - web:0: STARTING -> FATAL (gave up)"
        );
        let info = format(b"2026-11-23T21:10:45.123Z INFO  spawned\n", "h", 1).unwrap();
        assert!(
            info.starts_with(b"<30>1 "),
            "{:?}",
            String::from_utf8_lossy(&info)
        );
        let warn = format(b"t WARN  x\n", "h", 1).unwrap();
        assert_eq!(warn, b"<28>1 - h taskmasterd 1 - - x");
        assert_eq!(format(b"", "h", 1), None);
        let long = format!("2026-11-23T21:10:45.123Z INFO  {}\n", "é".repeat(MAX_MSG));
        let line = format(long.as_bytes(), "h", 1).unwrap();
        assert!(line.len() < MAX_MSG + 100 && std::str::from_utf8(&line).is_ok());
    }

    #[test]
    fn hostnames() {
        assert_eq!(hostname_field("db-1.example"), "db-1.example");
        assert_eq!(hostname_field(""), "-");
        assert_eq!(hostname_field("a b"), "-");
        assert_eq!(hostname_field(&"x".repeat(256)), "-");
    }

    /// Missing, then present, then full: each said once, then its end.
    #[test]
    fn trouble_is_said_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sock");
        let (mut s, note) = Syslog::open(&path);
        assert!(note.is_some_and(|n| n.contains("cannot connect")));
        assert!(
            s.send(b"t INFO  a\n").is_empty(),
            "said once, retried later"
        );
        let server = UnixDatagram::bind(&path).unwrap();
        assert_eq!(s.reconnect(), None);
        let notes = s.send(b"t INFO  b\n");
        assert!(notes[0].contains("works again; 2 lines"), "{notes:?}");
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]);
        assert!(
            got.starts_with("<30>1 - ") && got.ends_with(" - - b"),
            "{got}"
        );
        // Nobody reads: the socket fills, and that is said once.
        let mut said = 0;
        for _ in 0..100_000 {
            said += s.send(b"t INFO  flood\n").len();
            if s.trouble.is_some() {
                break;
            }
        }
        assert!(s.trouble.is_some(), "a socket nobody reads fills up");
        for _ in 0..100 {
            said += s.send(b"t INFO  flood\n").len();
        }
        assert_eq!(said, 1, "one note for the whole stretch");
    }
}
