//! Opening an output file (a program's `stdout`/`stderr`, the daemon's `logfile`)
//! without ever blocking the event loop.
//!
//! A plain open(O_WRONLY) of a FIFO waits for a reader, and a device may block
//! on open or on every write, which would freeze the whole daemon. So only a
//! regular file or /dev/null is accepted: the path is checked first (so that a
//! FIFO or device is not even opened: closing a FIFO's write end would hand its
//! reader an EOF), then opened with O_NONBLOCK (a FIFO swapped in meanwhile
//! fails with ENXIO instead of blocking) and checked again on the opened fd,
//! which is the check that counts.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Opens `path` for append, creating it with `mode` (less the umask). `what`
/// names the file in the error ("stdout", "logfile"). The fd is close-on-exec
/// and has ordinary (blocking) flags, ready to hand to a child.
///
/// Files are created 0640 at most, whatever `mode` asks: logs name clients,
/// programs and what they print. A default path (see `config::is_default_path`)
/// is never opened through a symlink: its folder is the daemon's own, so a
/// symlink there was not put by the daemon.
pub fn open(path: &Path, what: &str, mode: u32) -> Result<File, String> {
    let refused = || format!("{what} {}: not a regular file", path.display());
    let mode = mode & 0o640;
    if crate::config::is_default_path(path) {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "{what} {} is a symlink: refusing to follow it",
                path.display()
            ));
        }
        return open_checked(path, what, mode, libc::O_NOFOLLOW);
    }
    let target = std::fs::metadata(path);
    if let Ok(meta) = &target {
        if !acceptable(meta) {
            return Err(refused());
        }
        if is_dev_null(meta) {
            // A link to /dev/null (or a bind mount of it) cannot be abused;
            // what was opened must still be /dev/null (no swap meanwhile).
            let f = open_checked(path, what, mode, 0)?;
            return match f.metadata() {
                Ok(m) if is_dev_null(&m) => Ok(f),
                _ => Err(format!("{what} {}: changed while opened", path.display())),
            };
        }
    }
    // Never through a symlink: a program running as another user may own the
    // folder and swap its file for a link to a root file (rotation and reopen
    // open the path again).
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(format!(
            "{what} {} is a symlink: refusing to follow it",
            path.display()
        ));
    }
    open_checked(path, what, mode, libc::O_NOFOLLOW)
}

/// The open and the fstat check, which alone make `open` safe; the check of the
/// path before it only spares a FIFO or device from being opened at all.
fn open_checked(path: &Path, what: &str, mode: u32, flags: i32) -> Result<File, String> {
    let refused = || format!("{what} {}: not a regular file", path.display());
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        // std adds O_CLOEXEC itself. O_NOCTTY: a tty swapped in must not
        // become the daemon's controlling terminal before fstat refuses it.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | flags)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // A FIFO without a reader (or a device with nothing behind it).
            Some(libc::ENXIO) => format!("{} (no reader)", refused()),
            // O_NOFOLLOW met a symlink swapped in after the check.
            Some(libc::ELOOP) => format!(
                "{what} {} is a symlink: refusing to follow it",
                path.display()
            ),
            _ => format!("cannot open {what} {}: {e}", path.display()),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {what} {}: {e}", path.display()))?;
    if !acceptable(&meta) {
        return Err(refused());
    }
    set_blocking(&file).map_err(|e| format!("{what} {}: {e}", path.display()))?;
    Ok(file)
}

/// A regular file, or the null device (whatever its path).
fn acceptable(meta: &Metadata) -> bool {
    meta.file_type().is_file() || is_dev_null(meta)
}

fn is_dev_null(meta: &Metadata) -> bool {
    if !meta.file_type().is_char_device() {
        return false;
    }
    // Compared by device number, so a symlink or bind mount of /dev/null is fine.
    std::fs::metadata("/dev/null")
        .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == meta.rdev())
}

/// Clears O_NONBLOCK: it only served the open, and a child (or our own log
/// writes) should see an ordinary file.
fn set_blocking(file: &File) -> io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(file, FcntlArg::F_GETFL)?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(file, FcntlArg::F_SETFL(flags))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn nonblocking(f: &File) -> bool {
        let flags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFL) };
        flags & libc::O_NONBLOCK != 0
    }

    #[test]
    fn regular_file_is_created_appended_with_ordinary_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        std::fs::write(&path, "a\n").unwrap();
        let mut f = open(&path, "stdout", 0o644).unwrap();
        assert!(!nonblocking(&f));
        let fdflags = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GETFD) };
        assert!(fdflags & libc::FD_CLOEXEC != 0);
        std::io::Write::write_all(&mut f, b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb\n");
        let fresh = dir.path().join("new");
        open(&fresh, "stdout", 0o644).unwrap();
        assert!(fresh.is_file());
    }

    #[test]
    fn dev_null_is_accepted() {
        let f = open(Path::new("/dev/null"), "stdout", 0o644).unwrap();
        assert!(!nonblocking(&f));
    }

    #[test]
    fn fifo_directory_and_device_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = open(&fifo, "stdout", 0o644).unwrap_err();
        assert_eq!(e, format!("stdout {}: not a regular file", fifo.display()));
        let e = open(dir.path(), "logfile", 0o644).unwrap_err();
        assert!(e.ends_with("not a regular file"), "{e}");
        let e = open(Path::new("/dev/zero"), "stderr", 0o644).unwrap_err();
        assert_eq!(e, "stderr /dev/zero: not a regular file");
    }

    /// As if a FIFO replaced a checked file between the check and the open.
    #[test]
    fn the_fd_check_alone_refuses_a_fifo_with_or_without_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = open_checked(&fifo, "stdout", 0o644, 0).unwrap_err();
        assert_eq!(
            e,
            format!("stdout {}: not a regular file (no reader)", fifo.display())
        );
        let _reader = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let e = open_checked(&fifo, "stdout", 0o644, 0).unwrap_err();
        assert_eq!(e, format!("stdout {}: not a regular file", fifo.display()));
    }

    #[test]
    fn other_errors_say_what_could_not_be_opened() {
        let e = open(Path::new("/nonexistent/dir/out"), "stdout", 0o644).unwrap_err();
        assert!(
            e.starts_with("cannot open stdout /nonexistent/dir/out: "),
            "{e}"
        );
    }
}
