//! The event log: env_logger writing timestamped lines to the `logfile`, and to
//! stderr too when the daemon runs in the foreground on a terminal.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::path::Path;

/// Writes each log record to the file and, optionally, to stderr.
struct Tee {
    file: File,
    echo: bool,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.echo {
            let _ = io::stderr().write_all(buf);
        }
        self.file.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Opens `path` for append and routes `log` records there. Level from
/// `RUST_LOG`, default `info`.
pub fn init(path: &Path) -> Result<(), String> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| format!("cannot open logfile {}: {e}", path.display()))?;
    let echo = io::stderr().is_terminal();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let ts = buf.timestamp_millis();
            writeln!(buf, "{ts} {:5} {}", record.level(), record.args())
        })
        .target(env_logger::Target::Pipe(Box::new(Tee { file, echo })))
        .write_style(env_logger::WriteStyle::Never)
        .try_init()
        .map_err(|e| format!("logger: {e}"))
}
