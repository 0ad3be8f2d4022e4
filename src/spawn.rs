//! Process control: spawn a program's process, signal its group, reap it.
//!
//! Spawning stays on std's posix_spawn fast path (no `pre_exec`) when it can: the
//! process group comes from `process_group(0)`, the umask from switching the
//! daemon's own umask around `spawn()` (safe: the daemon has one thread), and the
//! program is resolved in PATH here, so a missing binary is a clear error, not an
//! exec failure. Only a terminal, `rlimits`, or a root daemon's `user`/`group`
//! need code between fork and exec (`spawn/setup.rs`).

mod setup;

use crate::config::Program;
use setup::{setup_failure, ChildSetup};
use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The environment variable naming the process (`web:0`) in every child.
pub const PROCESS_NAME_VAR: &str = "TASKMASTER_PROCESS_NAME";

/// The environment variable naming the daemon's control socket in every
/// child (so a child can use taskmasterctl, and crash recovery can tell this
/// daemon's descendants from another daemon's).
pub const SOCKET_VAR: &str = "TASKMASTER_SOCKET";

/// What a child gets as fds 0, 1 and 2.
pub enum ChildIo {
    /// stdin /dev/null; stdout and stderr the write ends of the daemon's pipes.
    Pipes { stdout: OwnedFd, stderr: OwnedFd },
    /// A pseudo terminal's slave for all three, as the child's controlling
    /// terminal (`attach: true` programs).
    Pty(OwnedFd),
}

/// Starts one process of `p`; its pid is also its process group. The error is
/// the reason shown in `status`.
/// `socket` is the control socket in force, given to the child as
/// `TASKMASTER_SOCKET` so that it (or a script it runs) can reach the daemon.
pub fn spawn(p: &Program, index: u32, io: ChildIo, socket: &Path) -> Result<i32, String> {
    // Its own `%(process_num)` values, if it has any.
    let p = &*p.for_process(index);
    let program = resolve(p)?;
    let mut cmd = Command::new(&program);
    cmd.arg0(&p.argv[0]).args(&p.argv[1..]);
    let mut setup = ChildSetup::for_program(p)?;
    match io {
        ChildIo::Pipes { stdout, stderr } => {
            if setup.drops_privileges() {
                // Its own session (hence its own group), no controlling terminal.
                setup.new_session = true;
            } else {
                cmd.process_group(0);
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::from(stdout))
                .stderr(Stdio::from(stderr));
        }
        ChildIo::Pty(slave) => {
            let dup = |fd: &OwnedFd| fd.try_clone().map_err(|e| format!("pty: {e}"));
            cmd.stdin(Stdio::from(dup(&slave)?))
                .stdout(Stdio::from(dup(&slave)?))
                .stderr(Stdio::from(slave));
            // A session of its own, with the pty as controlling terminal (so
            // shells and `top` behave). setsid also makes it a group leader,
            // so the group signals work as for other processes.
            setup.pty = true;
        }
    }
    if let Some(dir) = &p.workingdir {
        if !dir.is_dir() {
            return Err(format!("workingdir {}: not a directory", dir.display()));
        }
        cmd.current_dir(dir);
    }
    if let Some(u) = &p.user {
        // The user's own session variables, unless `env` (applied last) says otherwise.
        cmd.env("HOME", &u.home)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .env("SHELL", &u.shell);
    }
    cmd.envs(p.env.iter().map(|(k, v)| (k, v)));
    // Who it is: for the program itself, and inherited by whatever it starts,
    // so descendants that leave its group and session are still known as its.
    cmd.env(PROCESS_NAME_VAR, p.process_name(index))
        .env("TASKMASTER_PROGRAM", &p.name)
        .env("TASKMASTER_PROCESS_NUM", index.to_string())
        .env(SOCKET_VAR, socket);
    if setup.needed() {
        // Leaves std's posix_spawn path: only then is a pre_exec paid for.
        // SAFETY: `apply` only makes async-signal-safe system calls on data
        // prepared before the fork (no allocation, no lock).
        unsafe { cmd.pre_exec(move || setup.apply()) };
    }
    let old = p.umask.map(|m| unsafe { libc::umask(m as libc::mode_t) });
    let result = cmd.spawn();
    if let Some(old) = old {
        unsafe { libc::umask(old) };
    }
    let child = result.map_err(|e| match setup_failure(p, &e) {
        Some(why) => why,
        None => format!("{}: {e}", program.display()),
    })?;
    let pid = child.id() as i32;
    // Dropping `Child` neither waits nor kills: the reactor reaps it.
    drop(child);
    Ok(pid)
}

/// The executable to run: `argv[0]` if it has a `/` (relative to workingdir),
/// else the first executable match in PATH (the program's env PATH, else ours).
/// `taskmasterd --check` asks the same question, to warn before a start fails.
pub fn resolve(p: &Program) -> Result<PathBuf, String> {
    let name = &p.argv[0];
    if name.contains('/') {
        let path = match &p.workingdir {
            Some(dir) if !name.starts_with('/') => dir.join(name),
            _ => PathBuf::from(name),
        };
        return if is_executable(&path) {
            Ok(path)
        } else if path.is_dir() {
            Err(format!("{name}: is a folder, not an executable file"))
        } else if path.exists() {
            Err(format!("{name}: not executable"))
        } else {
            Err(format!("{name}: no such executable file"))
        };
    }
    let path: OsString = p
        .env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.into())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|c| is_executable(c))
        .ok_or_else(|| format!("{name}: command not found in PATH"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Makes the daemon safe to spawn from, whoever launched it: inherited fds get
/// close-on-exec, inherited "ignore" dispositions and the signal mask are reset
/// (children inherit both, and an ignored stopsignal would make stop fail).
pub fn sanitize_daemon() {
    let rc = unsafe { libc::close_range(3, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) };
    if rc != 0 {
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let fds: Vec<i32> = dir
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|fd| *fd > 2)
                .collect();
            for fd in fds {
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
    for sig in 1..32 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && old.sa_sigaction == libc::SIG_IGN
            {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}
