//! An output file that rotates by size: a program's `stdout`/`stderr` file
//! (written by the daemon from the child's pipe) and the event log.
//!
//! Before a write that would take a non-empty regular FILE past `maxbytes`,
//! FILE becomes FILE.1 (FILE.1 becomes FILE.2 …, the one beyond `backups` is
//! deleted) and a new FILE is started. A write is never split across two
//! files, so a log record (one write) is never cut in two by a rotation.
//!
//! Nothing here logs: the event log itself writes through a `Sink`, and
//! logging from inside would recurse. Failures are returned for the caller to
//! report.

use crate::outfile;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Why a `Sink::write` did not go as asked. Displayed, it is a line for the
/// event log; `String::from` gives the same text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// The chunk was not written, or only partly (ENOSPC, EFBIG, EIO…).
    Dropped(String),
    /// The rotation failed; the chunk went whole into the current file anyway,
    /// past the limit (losing output would be worse than a big file). The next
    /// attempt comes once another `maxbytes` has been written.
    NotRotated(String),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Dropped(s) | WriteError::NotRotated(s) => f.write_str(s),
        }
    }
}

impl From<WriteError> for String {
    fn from(e: WriteError) -> String {
        e.to_string()
    }
}

/// An open output file with its rotation limits.
pub struct Sink {
    path: PathBuf,
    /// Names the file in messages: "stdout", "stderr", "logfile".
    what: String,
    /// Creation mode of every new FILE (less the umask).
    mode: u32,
    file: File,
    /// Only regular files rotate (not /dev/null).
    regular: bool,
    /// Bytes in the open file, as far as we know: its size at open plus what
    /// we wrote. Refreshed from fstat before a rotation is decided.
    size: u64,
    maxbytes: u64,
    backups: u32,
    /// After a failed rotation, no new attempt before `size` reaches this (so
    /// a persistent failure costs one attempt and one message per `maxbytes`
    /// of output, not one per write).
    retry_at: u64,
    /// Bytes of the last chunk that went in before its write failed (0 after
    /// a write that went whole): the event log's notes must not be glued to
    /// a record cut short, nor count the records that went in as lost.
    short: usize,
}

/// Most attempts at a write interrupted by a signal before giving up on it.
const MAX_EINTR: u32 = 16;

impl Sink {
    /// Opens (or creates, mode 0o644 less the umask) `path` for append through
    /// `outfile::open`: a regular file or /dev/null, never a FIFO or device.
    /// `maxbytes` 0 = never rotate; `backups` 0 = a rotation starts FILE
    /// afresh and keeps nothing.
    pub fn open(path: &Path, what: &str, maxbytes: u64, backups: u32) -> Result<Sink, String> {
        Sink::open_mode(path, what, 0o644, maxbytes, backups)
    }

    /// As `open`, creating files with `mode` (less the umask).
    pub fn open_mode(
        path: &Path,
        what: &str,
        mode: u32,
        maxbytes: u64,
        backups: u32,
    ) -> Result<Sink, String> {
        let (file, regular, size) = open_file(path, what, mode)?;
        Ok(Sink {
            path: path.to_path_buf(),
            what: what.to_string(),
            mode,
            file,
            regular,
            size,
            maxbytes,
            backups,
            retry_at: 0,
            short: 0,
        })
    }

    /// A sink on a file opened some other way (/dev/full, for the tests of
    /// failing writes), never rotating.
    #[cfg(test)]
    pub(crate) fn on_file(file: File, path: &Path, what: &str) -> Sink {
        Sink {
            path: path.to_path_buf(),
            what: what.to_string(),
            mode: 0o644,
            file,
            regular: false,
            size: 0,
            maxbytes: 0,
            backups: 0,
            retry_at: 0,
            short: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How much of the last chunk went in before its write failed (0 if it
    /// went whole, or nothing of it did).
    pub fn short(&self) -> usize {
        self.short
    }

    /// Appends `buf` whole, rotating first if it would take a non-empty
    /// regular file past `maxbytes` (a chunk larger than `maxbytes` goes whole
    /// into the fresh file).
    ///
    /// On `Err` the caller logs the text once and moves on: a `Dropped` chunk
    /// is lost (never retried: the next chunk may well succeed, and retrying
    /// would stall the stream behind a full disk); a `NotRotated` chunk was
    /// written. Never loops on a short write: a write that makes no progress
    /// is an error.
    pub fn write(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        if buf.is_empty() {
            return Ok(());
        }
        let mut trouble = None;
        if self.wants_rotation(buf.len()) {
            if let Err(e) = self.rotate() {
                self.retry_at = self.size.saturating_add(self.maxbytes);
                trouble = Some(WriteError::NotRotated(format!(
                    "cannot rotate {} {}: {e}; writing on past {}_maxbytes",
                    self.what,
                    self.path.display(),
                    self.what
                )));
            }
        }
        self.append(buf)?;
        trouble.map_or(Ok(()), Err)
    }

    /// Starts a new file at the path (after logrotate moved the old one away,
    /// `create` mode), re-reading the size of whatever is there now. On
    /// failure the current file is kept.
    pub fn reopen(&mut self) -> Result<(), String> {
        let opened = open_file(&self.path, &self.what, self.mode)?;
        self.switch_to(opened);
        Ok(())
    }

    /// New limits (a reload: they are watch-only keys), used from the next
    /// write on: a file already past a lowered limit rotates at that write.
    pub fn set_limits(&mut self, maxbytes: u64, backups: u32) {
        self.maxbytes = maxbytes;
        self.backups = backups;
        self.retry_at = 0;
    }

    /// Whether `len` more bytes stay under `maxbytes` by our count: a write
    /// of them would not rotate (the event log holds such records back).
    pub fn fits(&self, len: usize) -> bool {
        self.maxbytes == 0 || !self.regular || self.size.saturating_add(len as u64) <= self.maxbytes
    }

    fn wants_rotation(&mut self, len: usize) -> bool {
        if self.maxbytes == 0 || !self.regular || self.size < self.retry_at {
            return false;
        }
        let over = |size: u64| size > 0 && size.saturating_add(len as u64) > self.maxbytes;
        if !over(self.size) {
            return false;
        }
        // Our count can be wrong (a copytruncate emptied the file, someone
        // else appends to it): ask the file before moving anything.
        if let Ok(meta) = self.file.metadata() {
            self.size = meta.len();
        }
        over(self.size)
    }

    /// FILE → FILE.1 → … and a new FILE. Checks first that none of the names
    /// is a directory: a rename must never move or replace one.
    fn rotate(&mut self) -> Result<(), String> {
        if self.backups == 0 {
            return self.truncate();
        }
        let numbered = |i: u32| -> PathBuf {
            let mut p = self.path.clone().into_os_string();
            p.push(format!(".{i}"));
            PathBuf::from(p)
        };
        let names: Vec<PathBuf> = std::iter::once(self.path.clone())
            .chain((1..=self.backups).map(numbered))
            .collect();
        for name in &names {
            if std::fs::symlink_metadata(name).is_ok_and(|m| m.is_dir()) {
                return Err(format!("{} is a directory", name.display()));
            }
        }
        remove(&names[names.len() - 1])?;
        // Highest first, so nothing is overwritten; missing ones (gaps) are
        // skipped and the gap moves up with the rest.
        for i in (0..names.len() - 1).rev() {
            rename(&names[i], &names[i + 1])?;
        }
        match open_file(&self.path, &self.what, self.mode) {
            Ok(opened) => {
                self.switch_to(opened);
                Ok(())
            }
            Err(e) => {
                // Out of fds, say. Put our file back at the path (we go on
                // writing to it), or every later rotation would push it one
                // step further towards deletion while we still write to it.
                let _ = std::fs::rename(&names[1], &self.path);
                Err(e)
            }
        }
    }

    /// Rotation without backups: FILE starts again empty (as supervisord,
    /// which truncates it). Opened first, so a failure changes nothing.
    fn truncate(&mut self) -> Result<(), String> {
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.is_dir()) {
            return Err(format!("{} is a directory", self.path.display()));
        }
        let (file, regular, _) = open_file(&self.path, &self.what, self.mode)?;
        if regular {
            file.set_len(0)
                .map_err(|e| format!("cannot truncate {}: {e}", self.path.display()))?;
        }
        self.switch_to((file, regular, 0));
        Ok(())
    }

    fn switch_to(&mut self, (file, regular, size): (File, bool, u64)) {
        self.file = file;
        self.regular = regular;
        self.size = size;
        self.retry_at = 0;
    }

    /// Writes `buf` whole to the open file, counting what went in.
    fn append(&mut self, buf: &[u8]) -> Result<(), WriteError> {
        let mut done = 0;
        let mut interrupted = 0;
        self.short = 0;
        while done < buf.len() {
            match self.file.write(&buf[done..]) {
                Ok(0) => return Err(self.dropped(done, buf.len(), "no progress")),
                Ok(n) => {
                    done += n;
                    self.size = self.size.saturating_add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted && interrupted < MAX_EINTR => {
                    interrupted += 1;
                }
                Err(e) => return Err(self.dropped(done, buf.len(), &e.to_string())),
            }
        }
        Ok(())
    }

    fn dropped(&mut self, done: usize, len: usize, why: &str) -> WriteError {
        self.short = done;
        let lost = if done == 0 {
            format!("{len} bytes dropped")
        } else {
            format!("{} of {len} bytes dropped", len - done)
        };
        WriteError::Dropped(format!(
            "cannot write {} {}: {why}; {lost}",
            self.what,
            self.path.display()
        ))
    }
}

/// Opens through `outfile` and says whether the result can rotate, and its size.
fn open_file(path: &Path, what: &str, mode: u32) -> Result<(File, bool, u64), String> {
    let file = outfile::open(path, what, mode)?;
    let meta: Metadata = file
        .metadata()
        .map_err(|e| format!("cannot stat {what} {}: {e}", path.display()))?;
    let regular = meta.file_type().is_file();
    // st_size of the open file, never of whatever the path names later.
    Ok((file, regular, if regular { meta.size() } else { 0 }))
}

/// Removes a name (never a directory, checked by the caller; unlink would
/// refuse one anyway); a missing one is fine.
fn remove(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Renames a name (not followed if a symlink); a missing one is a gap, fine.
fn rename(from: &Path, to: &Path) -> Result<(), String> {
    match std::fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(format!(
            "cannot rename {} to {}: {e}",
            from.display(),
            to.display()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
