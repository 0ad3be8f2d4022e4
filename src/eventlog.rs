//! The event log: env_logger writing timestamped lines to the `logfile`, and to
//! the terminal too when the daemon's stderr is one.
//!
//! Neither may stall the event loop. The log file is a `rotate::Sink` (opened
//! through `outfile`: a regular file or /dev/null, never a FIFO or a device),
//! rotated by `logfile_maxbytes`/`logfile_backups`, one record per write so a
//! rotation never splits a line. The terminal copy
//! goes through a non-blocking descriptor of its own: a terminal paused with
//! Ctrl-S, or a pty nobody reads, loses lines (counted, and said so once it
//! reads again) instead of freezing the daemon. With `syslog:`, each record
//! is also sent to syslog (`syslog.rs`), never blocking either.
//!
//! While the event loop runs a turn it *holds* the file's records (`hold`):
//! they collect in one bounded buffer, written with one `write` when the turn
//! ends (before the loop waits again), before any byte goes to a client (so
//! a reply is never read before the log line of what it reports), or when
//! the buffer is full. A shutdown of 1000 processes logs 4000 lines in a few
//! turns: a few writes instead of 4000 (docs/benchmarks.md). Rotation is
//! unchanged: a record that would take the file past `logfile_maxbytes` is
//! never held, so it goes through the per-record path that rotates first.
//! The terminal echo and the syslog copy are not held: they may show a
//! record up to one turn before the file has it.

use crate::rotate::{Sink, WriteError};
use crate::syslog::Syslog;
use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The log file (a rotating `Sink`), its limits, and what was lost from it.
struct LogFile {
    sink: Option<Sink>,
    /// `logfile_maxbytes`/`logfile_backups`, kept for the next `reopen(path)`.
    maxbytes: u64,
    backups: u32,
    /// Records the file failed to take since it last took one, and why the
    /// first failed: said in the file once it takes records again.
    lost: u64,
    lost_why: String,
    /// Records are held in `pending` until `flush` (the loop's turn, `hold`).
    held: bool,
    /// Whole records waiting for one write; at most `HELD_MAX` bytes.
    pending: Vec<u8>,
    /// How many records `pending` holds (counted as lost if its write fails).
    pending_records: u64,
    /// A failed write left the file in the middle of a record: the next
    /// note starts on a line of its own.
    torn: bool,
}

/// The most a turn holds back before writing (a few hundred records).
const HELD_MAX: usize = 32 * 1024;

impl LogFile {
    const fn new() -> LogFile {
        LogFile {
            sink: None,
            maxbytes: 0,
            backups: 0,
            lost: 0,
            lost_why: String::new(),
            held: false,
            pending: Vec::new(),
            pending_records: 0,
            torn: false,
        }
    }

    /// A write of `bytes` (`records` whole records) was dropped, maybe after
    /// part of it went in: the records that went in whole are not lost, and
    /// a record cut short must not run into the next line.
    fn dropped(&mut self, bytes: &[u8], records: u64, why: String) {
        let done = self.sink.as_ref().map_or(0, Sink::short).min(bytes.len());
        let whole = bytes[..done].iter().filter(|b| **b == b'\n').count() as u64;
        self.lost += records.saturating_sub(whole);
        self.torn = done > 0 && bytes[done - 1] != b'\n';
        self.lost_why = why;
    }

    /// Switches to `path`; on failure the current file is kept.
    fn reopen(&mut self, path: &Path) -> Result<(), String> {
        // What was logged before the switch belongs to the current file.
        self.flush();
        // The log names clients and programs: 0640 at most, and 0600 for the
        // default log, whose folder is set up here (never through a symlink).
        let mode = if path == crate::config::default_logfile() {
            crate::config::prepare_default_path(path)?;
            0o600
        } else {
            0o640
        };
        let sink = Sink::open_mode(path, "logfile", mode, self.maxbytes, self.backups)?;
        self.sink = Some(sink);
        Ok(())
    }

    fn reopen_current(&mut self) -> Result<(), String> {
        self.flush();
        self.sink.as_mut().ok_or("no logfile is open")?.reopen()
    }

    fn set_limits(&mut self, maxbytes: u64, backups: u32) {
        self.flush();
        self.maxbytes = maxbytes;
        self.backups = backups;
        if let Some(sink) = self.sink.as_mut() {
            sink.set_limits(maxbytes, backups);
        }
    }

    /// Writes one whole record (one write, so a rotation never splits it).
    /// `ts` stamps the notes this adds about the file's own trouble: nothing
    /// here can go through `log` (it would deadlock on env_logger's lock, and
    /// a failing file could not take it anyway).
    fn write(&mut self, record: &[u8], ts: &str) {
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.held && self.lost == 0 && !self.torn {
            let len = self.pending.len() + record.len();
            if len <= HELD_MAX && sink.fits(len) {
                self.pending.extend_from_slice(record);
                self.pending_records += 1;
                return;
            }
            // Full, or this record may rotate the file: what is held goes
            // first, then this record by the per-record path below.
            self.flush();
        }
        let Some(sink) = self.sink.as_mut() else {
            return;
        };
        if self.lost > 0 || self.torn {
            let note = format!(
                "{}{ts} ERROR logfile: {} log lines lost: {}\n",
                if self.torn { "\n" } else { "" },
                self.lost,
                self.lost_why
            );
            if let Err(e) = sink.write(note.as_bytes()) {
                // The note is no record: only this one is lost.
                self.dropped(note.as_bytes(), 0, e.into());
                self.lost += 1;
                return;
            }
            (self.lost, self.torn) = (0, false);
        }
        match sink.write(record) {
            Ok(()) => {}
            Err(WriteError::Dropped(why)) => self.dropped(record, 1, why),
            Err(WriteError::NotRotated(why)) => {
                // The record went in; say why the file grows past its limit.
                let note = format!("{ts} ERROR {why}\n");
                if let Err(WriteError::Dropped(e)) = sink.write(note.as_bytes()) {
                    self.lost = 1;
                    self.lost_why = e;
                }
            }
        }
    }
}

impl LogFile {
    /// Writes the held records (one write; they fit under the rotation size,
    /// see `write`). A failed write counts them all as lost.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let records = std::mem::take(&mut self.pending_records);
        let mut batch = std::mem::take(&mut self.pending);
        if let Some(sink) = self.sink.as_mut() {
            // (Held records never rotate the file: `NotRotated` cannot come.)
            if let Err(WriteError::Dropped(why)) = sink.write(&batch) {
                self.dropped(&batch, records, why);
            }
        }
        // A turn that logged a burst (a boot, a shutdown) does not keep its
        // buffer: an idle daemon's footprint stays small.
        if batch.capacity() <= 4096 {
            batch.clear();
            self.pending = batch;
        }
    }
}

/// The daemon's log file, swappable by `reopen` and `reopen_current`.
static LOG: Mutex<LogFile> = Mutex::new(LogFile::new());

fn log_file() -> MutexGuard<'static, LogFile> {
    // A panic elsewhere while logging must not take the log down with it.
    LOG.lock().unwrap_or_else(PoisonError::into_inner)
}

/// From now on records are held until `flush` (the event loop's turns; see
/// the module comment). Returns a guard that writes what is held and ends
/// holding when dropped (the loop returns).
pub fn hold() -> Held {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        // A panic aborts (release profile): what the turn held is written
        // first, unless the panic came from inside the log itself.
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Ok(mut log) = LOG.try_lock() {
                log.flush();
            }
            previous(info);
        }));
    });
    log_file().held = true;
    Held
}

/// Writes the records held so far (before the loop waits, before replying).
pub fn flush() {
    log_file().flush();
}

/// Ends `hold` (see there).
pub struct Held;

impl Drop for Held {
    fn drop(&mut self) {
        let mut log = log_file();
        log.flush();
        log.held = false;
    }
}

/// Switches the log to `path` (a reload that changes `logfile`); on failure the
/// current file is kept and the reason returned.
pub fn reopen(path: &Path) -> Result<(), String> {
    log_file().reopen(path)
}

/// Reopens the current log path, so that after a rotation (`mv` then SIGUSR2,
/// or SIGHUP) the log goes to a new file at that path, not the moved one. On
/// failure the current file is kept and the reason returned.
pub fn reopen_current() -> Result<(), String> {
    log_file().reopen_current()
}

/// `logfile_maxbytes` and `logfile_backups` (at a reload: applied in place,
/// from the next record on). maxbytes 0 = never rotate.
pub fn set_limits(maxbytes: u64, backups: u32) {
    log_file().set_limits(maxbytes, backups);
}

/// The syslog mirror, when `syslog:` asks for one.
static SYSLOG: Mutex<Option<Syslog>> = Mutex::new(None);

fn syslog() -> MutexGuard<'static, Option<Syslog>> {
    SYSLOG.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Mirrors the log to the syslog socket `path` from now on (`None`: stops).
/// A new path connects; the same path is left as it is. Returns what to log
/// (after this returns: logging from here would take the locks in turn).
pub fn set_syslog(path: Option<&Path>) -> Option<String> {
    let mut current = syslog();
    match (current.as_ref(), path) {
        (Some(s), Some(p)) if s.path() == p => None,
        (_, None) => {
            *current = None;
            None
        }
        (_, Some(p)) => {
            let (s, note) = Syslog::open(p);
            *current = Some(s);
            note
        }
    }
}

/// Connects the syslog mirror again (a reopen: the syslog daemon may have
/// made a new socket). Returns what to log.
pub fn reconnect_syslog() -> Option<String> {
    syslog().as_mut().and_then(Syslog::reconnect)
}

/// How much of a write the terminal took.
enum Put {
    All,
    Part,
    Nothing,
    Failed(io::Error),
}

/// The copy of the log on the daemon's terminal, written without ever blocking.
struct Echo {
    /// A descriptor of our own on the terminal, O_NONBLOCK.
    tty: File,
    /// Records dropped since the terminal last took a write.
    dropped: u64,
    /// A short write left the terminal in the middle of a line.
    mid_line: bool,
    /// The terminal failed for good (EIO after a hangup…): no more echo.
    gone: bool,
}

impl Echo {
    /// Opens `path` (the terminal) as a new open file description. O_NONBLOCK
    /// must not go on fd 2 itself: that description is shared with the shell
    /// that started us, which would then see EAGAIN on its own terminal.
    fn open(path: &Path) -> io::Result<Echo> {
        let tty = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)?;
        Ok(Echo {
            tty,
            dropped: 0,
            mid_line: false,
            gone: false,
        })
    }

    fn put(&mut self, bytes: &[u8]) -> Put {
        match self.tty.write(bytes) {
            Ok(n) if n == bytes.len() => Put::All,
            Ok(0) => Put::Nothing,
            Ok(_) => Put::Part,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Put::Nothing
            }
            Err(e) => Put::Failed(e),
        }
    }

    /// Echoes one record, or drops it if the terminal is not taking writes.
    /// Returns what the log file should say about it (at most one line at the
    /// start and one at the end of each stretch of drops, never one per record).
    fn echo(&mut self, record: &[u8]) -> Vec<String> {
        let mut notes = Vec::new();
        if self.gone {
            return notes;
        }
        if self.dropped > 0 {
            let notice = format!(
                "{}taskmasterd: {} log lines dropped on the terminal (it was not reading)\n",
                if self.mid_line { "\n" } else { "" },
                self.dropped
            );
            match self.put(notice.as_bytes()) {
                Put::All => {
                    notes.push(format!(
                        "terminal echo: the terminal reads again; {} log lines were dropped on it",
                        self.dropped
                    ));
                    self.dropped = 0;
                    self.mid_line = false;
                }
                outcome @ (Put::Part | Put::Nothing) => {
                    // The rest of the notice is lost; it is written whole, with
                    // a fresh count, on the next try.
                    self.mid_line |= matches!(outcome, Put::Part);
                    self.dropped += 1;
                    return notes;
                }
                Put::Failed(e) => {
                    self.give_up(e, &mut notes);
                    return notes;
                }
            }
        }
        match self.put(record) {
            Put::All => {}
            outcome @ (Put::Part | Put::Nothing) => {
                self.mid_line |= matches!(outcome, Put::Part);
                self.dropped = 1;
                notes.push(
                    "terminal echo: the terminal is not reading; dropping log lines for it \
                     (this file keeps them all)"
                        .to_string(),
                );
            }
            Put::Failed(e) => self.give_up(e, &mut notes),
        }
        notes
    }

    /// A hung-up or broken terminal will not come back: stop trying.
    fn give_up(&mut self, e: io::Error, notes: &mut Vec<String>) {
        self.gone = true;
        notes.push(format!("terminal echo: stopped, the terminal failed: {e}"));
    }
}

/// Writes each log record to the log file and, when there is one, the terminal.
struct Tee {
    echo: Option<Echo>,
}

impl Write for Tee {
    /// env_logger hands over one whole record per call.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let notes = match self.echo.as_mut() {
            Some(echo) => echo.echo(buf),
            None => Vec::new(),
        };
        let mut log = log_file();
        // Notes borrow the record's timestamp (its first word, see `init`):
        // calling `log` from here would deadlock on env_logger's lock.
        let ts = buf.split(|b| *b == b' ').next().unwrap_or_default();
        let ts = String::from_utf8_lossy(ts);
        for note in notes {
            log.write(format!("{ts} WARN  {note}\n").as_bytes(), &ts);
        }
        // A record the file cannot take is counted and said later, in the
        // file: an error here would only reach env_logger, which drops it.
        log.write(buf, &ts);
        if let Some(s) = syslog().as_mut() {
            for note in s.send(buf) {
                log.write(format!("{ts} WARN  {note}\n").as_bytes(), &ts);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The terminal echo, when stderr is a terminal.
fn terminal_echo() -> Option<Echo> {
    if !io::stderr().is_terminal() {
        return None;
    }
    match Echo::open(Path::new("/proc/self/fd/2")) {
        Ok(echo) => Some(echo),
        Err(e) => {
            // Once, at boot, before the loop runs.
            eprintln!("taskmasterd: no log on this terminal (cannot reopen it non-blocking: {e})");
            None
        }
    }
}

/// Opens `path` for append and routes `log` records there, rotated by
/// `maxbytes` (0 = never) with `backups` kept. Level from `RUST_LOG`, default
/// `info`.
pub fn init(path: &Path, maxbytes: u64, backups: u32) -> Result<(), String> {
    {
        let mut log = log_file();
        log.set_limits(maxbytes, backups);
        log.reopen(path)?;
    }
    let echo = terminal_echo();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let ts = buf.timestamp_millis();
            writeln!(buf, "{ts} {:5} {}", record.level(), record.args())
        })
        .target(env_logger::Target::Pipe(Box::new(Tee { echo })))
        .write_style(env_logger::WriteStyle::Never)
        .try_init()
        .map_err(|e| format!("logger: {e}"))
}

#[cfg(test)]
#[path = "eventlog_tests.rs"]
mod tests;
