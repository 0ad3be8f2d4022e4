//! The event log: env_logger writing timestamped lines to the `logfile`, and to
//! stderr too when the daemon runs in the foreground on a terminal.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;

/// Writes each log record to the file and, optionally, to stderr.
struct Tee {
    echo: bool,
}

/// The log file, swappable by `reopen` (a reload that changes `logfile`).
static FILE: Mutex<Option<File>> = Mutex::new(None);

fn open(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot open logfile {}: {e}", path.display()))
}

/// Switches the log to `path`; on failure the current file is kept.
pub fn reopen(path: &Path) -> Result<(), String> {
    let f = open(path)?;
    if let Ok(mut slot) = FILE.lock() {
        *slot = Some(f);
    }
    Ok(())
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.echo {
            let _ = io::stderr().write_all(buf);
        }
        if let Ok(mut slot) = FILE.lock() {
            if let Some(f) = slot.as_mut() {
                f.write_all(buf)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Opens `path` for append and routes `log` records there. Level from
/// `RUST_LOG`, default `info`.
pub fn init(path: &Path) -> Result<(), String> {
    reopen(path)?;
    let echo = io::stderr().is_terminal();
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
