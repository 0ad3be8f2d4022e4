//! Daemon mode (`-d`, `daemonize: true`) and the pidfile.
//!
//! The launching command must exit 0 only once the daemon serves, or 1 with
//! every error on the terminal. So it forks early (`launch`), once the config
//! is read: the child's stderr becomes a pipe to the launcher, which copies
//! whatever comes through to the terminal. The child checks and binds as in
//! the foreground, then `detach`es (setsid, fork, `chdir /`, stdin and stdout
//! to /dev/null), and once its loop is about to serve, `serving` writes the
//! pidfile, tells systemd, writes a marker on the pipe and points stderr at
//! /dev/null. The launcher exits 0 on the marker, 1 on end of file without it
//! (the daemon failed, and said why on the pipe). Errors thus reach the
//! terminal whichever process meets them, with no second channel.

use crate::notify;
use log::warn;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

/// What the launcher reads once the daemon serves (never in an error message).
const SERVING: &[u8] = b"\0taskmasterd: serving\n";
/// The most the launcher keeps of what the daemon says before serving.
const MAX_REPORT: usize = 1 << 20;

struct Session {
    /// stderr is the launcher's pipe.
    launched: bool,
    pidfile: Option<PathBuf>,
    /// The pidfile was written by this process.
    wrote: bool,
}

static SESSION: Mutex<Session> = Mutex::new(Session {
    launched: false,
    pidfile: None,
    wrote: false,
});

fn session() -> std::sync::MutexGuard<'static, Session> {
    SESSION.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pidfile to write once serving (absolute: the daemon will `chdir /`).
pub fn set_pidfile(path: Option<&Path>) {
    session().pidfile = path.map(|p| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()));
}

/// Refuses a pidfile that names a live taskmasterd other than us; a stale
/// one (dead pid, another program, garbage) is fine: it gets replaced.
pub fn check_pidfile(path: &Path) -> Result<(), String> {
    let text = match read_pidfile(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("pidfile {}: {e}", path.display())),
    };
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 && pid as u32 != std::process::id() && is_taskmasterd(pid) => {
            Err(format!(
                "taskmasterd is already running (pid {pid}, pidfile {})",
                path.display()
            ))
        }
        _ => Ok(()),
    }
}

/// The start of the pidfile's text. Opened non-blocking (a FIFO put there
/// would block the start forever otherwise) and only a regular file is read,
/// at most a few bytes (a pid never needs more).
fn read_pidfile(path: &Path) -> std::io::Result<String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut buf = Vec::new();
    file.take(64).read_to_end(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// Whether `pid` is a live (non-zombie) process named taskmasterd.
fn is_taskmasterd(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    let comm = stat.get(open + 1..close).unwrap_or_default();
    let zombie = stat
        .get(close + 1..)
        .is_some_and(|r| r.trim_start().starts_with('Z'));
    comm == "taskmasterd" && !zombie
}

/// Forks: the parent waits for the daemon to serve and exits with its verdict
/// (it never returns); the child returns with stderr on the pipe to it.
pub fn launch() {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        eprintln!("taskmasterd: pipe: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
    match unsafe { libc::fork() } {
        -1 => {
            eprintln!("taskmasterd: fork: {}", std::io::Error::last_os_error());
            std::process::exit(1);
        }
        0 => {
            // dup2 leaves the copy without CLOEXEC; the pipe stays open only
            // as fd 2, so pointing fd 2 elsewhere closes it.
            // Every other fd the launching shell or service manager left open
            // goes too: a daemon holding the write end of someone's pipe would
            // keep that reader waiting forever (`$(taskmasterd -d)` never
            // returning). Nothing of ours is open yet at this point.
            unsafe {
                libc::dup2(fds[1], 2);
                libc::close_range(3, u32::MAX, 0);
            }
            session().launched = true;
        }
        child => {
            unsafe { libc::close(fds[1]) };
            let file = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fds[0]) };
            let code = wait_for_daemon(file);
            // Our child is the session leader of `detach`, gone by now (it exits
            // right after forking the daemon, or on failure): reaped here, not
            // left to an init that may not reap.
            unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
            std::process::exit(code);
        }
    }
}

/// The launcher: copies the daemon's messages to stderr; 0 once it serves.
fn wait_for_daemon(mut pipe: std::fs::File) -> i32 {
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    let served = loop {
        match pipe.read(&mut buf) {
            Ok(0) => break false,
            Ok(n) => {
                if said.len() < MAX_REPORT {
                    said.extend_from_slice(&buf[..n]);
                }
                if said.ends_with(SERVING) {
                    said.truncate(said.len() - SERVING.len());
                    break true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break false,
        }
    };
    let mut err = std::io::stderr();
    let _ = err.write_all(&said);
    if served {
        return 0;
    }
    if said.is_empty() {
        let _ = writeln!(err, "taskmasterd: the daemon exited before serving");
    }
    1
}

/// Leaves the terminal's session for good: setsid, fork (the session leader
/// exits, so no terminal can ever be acquired again), `chdir /` (no mount
/// kept busy), stdin and stdout to /dev/null. stderr stays the launcher's
/// pipe until `serving`.
pub fn detach() -> Result<(), String> {
    let os = |what: &str| format!("{what}: {}", std::io::Error::last_os_error());
    if unsafe { libc::setsid() } < 0 {
        return Err(os("setsid"));
    }
    match unsafe { libc::fork() } {
        -1 => return Err(os("fork")),
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| format!("/dev/null: {e}"))?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
    if unsafe { libc::dup2(fd, 0) } < 0 || unsafe { libc::dup2(fd, 1) } < 0 {
        return Err(os("dup2"));
    }
    // PR_SET_CHILD_SUBREAPER is not inherited across fork.
    if let Err(e) = crate::reap::become_subreaper() {
        warn!("cannot become a child subreaper ({e}): orphans of children go to init");
    }
    Ok(())
}

/// The loop is about to serve: pidfile, `READY=1`, and the launcher released.
pub fn serving() -> Result<(), String> {
    let mut s = session();
    if let Some(path) = s.pidfile.clone() {
        write_pidfile(&path)?;
        s.wrote = true;
    }
    notify::send("READY=1");
    if std::mem::take(&mut s.launched) {
        let mut pipe = std::io::stderr();
        let _ = pipe.write_all(SERVING);
        if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), 2) };
        }
    }
    Ok(())
}

/// Removes the pidfile if it still names this process.
pub fn exiting() {
    let s = session();
    let Some(path) = s.pidfile.as_ref().filter(|_| s.wrote) else {
        return;
    };
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|t| t.trim().parse::<u32>() == Ok(std::process::id()));
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

/// Writes our pid to `path` through a temporary file and a rename, so a
/// reader never sees it half written.
fn write_pidfile(path: &Path) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("pidfile {}: {e}", path.display());
    let name = path.file_name().ok_or_else(|| {
        format!(
            "pidfile {}: expected a file name at the end",
            path.display()
        )
    })?;
    let pid = std::process::id();
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{pid}.tmp"));
    let tmp = path.with_file_name(tmp_name);
    let _ = std::fs::remove_file(&tmp);
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(format!("{pid}\n").as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfile_checks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("t.pid");
        assert!(check_pidfile(&p).is_ok(), "missing is fine");
        std::fs::write(&p, "garbage\n").expect("write");
        assert!(check_pidfile(&p).is_ok(), "garbage is stale");
        // pid 1 is init, not a taskmasterd.
        std::fs::write(&p, "1\n").expect("write");
        assert!(check_pidfile(&p).is_ok(), "another program is stale");
        std::fs::write(&p, format!("{}\n", std::process::id())).expect("write");
        assert!(check_pidfile(&p).is_ok(), "ourselves is not a rival");
        write_pidfile(&p).expect("write");
        let text = std::fs::read_to_string(&p).expect("read");
        assert_eq!(text, format!("{}\n", std::process::id()));
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "no temporary left behind");
    }
}
