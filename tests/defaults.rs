//! Safe defaults, seen from a daemon run as `nobody` with its HOME and XDG
//! folders in a temp dir: the default socket and log land in the user's own
//! folders with private modes, a symlink planted at the default log is not
//! followed, and root's taskmasterctl refuses to talk to a socket served by
//! another user (a squatter).
mod common;
use common::*;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const NOBODY: u32 = 65534;

/// A temp dir owned by nobody, with `home`, `state` and `run` folders; None
/// (and a printed reason) unless we are root and nobody exists.
fn nobody_dir() -> Option<(tempfile::TempDir, u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (runs the daemon as nobody)");
        return None;
    }
    let Ok(Some(u)) = nix::unistd::User::from_name("nobody") else {
        eprintln!("skipped: no user nobody");
        return None;
    };
    let (uid, gid) = (u.uid.as_raw(), u.gid.as_raw());
    let t = tempfile::Builder::new().prefix("tmdef").tempdir().unwrap();
    for sub in ["", "home", "state", "run"] {
        let p = t.path().join(sub);
        std::fs::create_dir_all(&p).unwrap();
        chown(&p, Some(uid), Some(gid)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let conf = t.path().join("t.yaml");
    std::fs::write(
        &conf,
        "programs:\n  a:\n    cmd: sleep 100\n    starttime: 0\n",
    )
    .unwrap();
    chown(&conf, Some(uid), Some(gid)).unwrap();
    Some((t, uid, gid))
}

/// taskmasterd as nobody, its defaults pointing into `dir` (XDG_STATE_HOME
/// only when `state` says so).
fn daemon_as_nobody(dir: &Path, uid: u32, gid: u32, state: bool) -> Command {
    let mut cmd = Command::new(DAEMON);
    cmd.arg("-c")
        .arg(dir.join("t.yaml"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", dir.join("home"))
        .env("XDG_RUNTIME_DIR", dir.join("run"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .uid(uid)
        .gid(gid);
    if state {
        cmd.env("XDG_STATE_HOME", dir.join("state"));
    }
    cmd
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn non_root_defaults_are_private_and_another_users_socket_is_refused() {
    let Some((t, uid, gid)) = nobody_dir() else {
        return;
    };
    let d = t.path();
    let child = daemon_as_nobody(d, uid, gid, false).spawn().unwrap();
    let _running = Running(child);
    let sock = d.join("run/taskmaster.sock");
    wait_until(10.0, "the default socket", || sock.exists());
    assert_eq!(mode(&sock), 0o700);
    assert_eq!(std::fs::symlink_metadata(&sock).unwrap().uid(), uid);
    // No XDG_STATE_HOME: ~/.local/state/taskmaster, created 0700, log 0600.
    let log: PathBuf = d.join("home/.local/state/taskmaster/taskmasterd.log");
    wait_until(10.0, "the default log", || log.exists());
    assert_eq!(mode(log.parent().unwrap()), 0o700);
    assert_eq!(mode(&log), 0o600);
    // Root's taskmasterctl finds a daemon of another user on that socket:
    // exit 2, a clear line, and nothing sent.
    let out = Command::new(CTL)
        .arg("-s")
        .arg(&sock)
        .arg("status")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("runs as uid {NOBODY}")) && err.contains("refusing"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        !text.contains("status"),
        "a command reached the squatter: {text}"
    );
}

#[test]
fn a_symlink_at_the_default_log_is_not_followed() {
    let Some((t, uid, gid)) = nobody_dir() else {
        return;
    };
    let d = t.path();
    // A file nobody could write, were the link followed.
    let victim = d.join("victim");
    std::fs::write(&victim, "").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o666)).unwrap();
    let folder = d.join("state/taskmaster");
    std::fs::create_dir(&folder).unwrap();
    chown(&folder, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&victim, folder.join("taskmasterd.log")).unwrap();
    let mut child = daemon_as_nobody(d, uid, gid, true).spawn().unwrap();
    let status = wait_exit(&mut child);
    let err = read_stderr(&mut child);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "");
    // The folder itself a symlink: refused too.
    std::fs::remove_file(folder.join("taskmasterd.log")).unwrap();
    std::fs::remove_dir(&folder).unwrap();
    let elsewhere = d.join("run");
    std::os::unix::fs::symlink(&elsewhere, &folder).unwrap();
    let mut child = daemon_as_nobody(d, uid, gid, true).spawn().unwrap();
    let status = wait_exit(&mut child);
    let err = read_stderr(&mut child);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("symlink"), "{err}");
    assert!(!elsewhere.join("taskmasterd.log").exists());
}

fn wait_exit(child: &mut Child) -> Option<i32> {
    let mut status = None;
    wait_until(10.0, "taskmasterd to exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.and_then(|s| s.code())
}

fn read_stderr(child: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

#[test]
fn a_home_that_does_not_exist_sends_the_default_log_to_the_private_folder() {
    let Some((t, uid, gid)) = nobody_dir() else {
        return;
    };
    let d = t.path();
    let missing = d.join("no-such-home");
    let mut cmd = daemon_as_nobody(d, uid, gid, false);
    cmd.env("HOME", &missing);
    let _running = Running(cmd.spawn().unwrap());
    let log = PathBuf::from(format!("/tmp/taskmaster-{uid}/taskmasterd.log"));
    let sock = d.join("run/taskmaster.sock");
    wait_until(10.0, "the default socket", || sock.exists());
    wait_until(10.0, "the default log in the private folder", || {
        log.exists()
    });
    assert_eq!(mode(log.parent().unwrap()), 0o700);
    assert_eq!(std::fs::symlink_metadata(&log).unwrap().uid(), uid);
    assert!(!missing.exists(), "a missing HOME was created");
    drop(_running);
    let _ = std::fs::remove_file(&log);
}
