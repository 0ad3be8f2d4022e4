//! Process control: spawn a program's process, signal its group, reap it.
//!
//! Spawning goes through `clone.rs` (a child that shares the daemon's memory
//! and never copies its descriptor table) when the kernel allows it, else
//! through std's `Command` (posix_spawn, or fork when code must run between
//! fork and exec). Both are given the same things, prepared here: the program
//! resolved in PATH (so a missing binary is a clear error, not an exec
//! failure), its environment, and the steps of `spawn/setup.rs` (a terminal,
//! `rlimits`, a root daemon's `user`/`group`).

mod clone;
mod setup;

use crate::config::Program;
use setup::{setup_failure, ChildSetup};
use std::ffi::{c_char, CString, OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
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
    let mut setup = ChildSetup::for_program(p)?;
    let own_group = match io {
        // A session of its own, with the pty as controlling terminal (so
        // shells and `top` behave). setsid also makes it a group leader,
        // so the group signals work as for other processes.
        ChildIo::Pty(_) => {
            setup.pty = true;
            false
        }
        // Its own session (hence its own group), no controlling terminal.
        ChildIo::Pipes { .. } if setup.drops_privileges() => {
            setup.new_session = true;
            false
        }
        ChildIo::Pipes { .. } => true,
    };
    if let Some(dir) = &p.workingdir {
        if !dir.is_dir() {
            return Err(format!("workingdir {}: not a directory", dir.display()));
        }
    }
    let env = child_env(p, index, socket);
    if clone::usable() {
        spawn_clone(p, &program, &io, own_group, &setup, &env)
    } else {
        spawn_std(p, &program, io, own_group, setup, &env)
    }
}

/// What the program's environment adds to the daemon's, in order (a later
/// entry wins).
fn child_env(p: &Program, index: u32, socket: &Path) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = Vec::with_capacity(p.env.len() + 8);
    if let Some(u) = &p.user {
        // The user's own session variables, unless `env` (applied later) says otherwise.
        env.push(("HOME".into(), u.home.clone().into()));
        env.push(("USER".into(), u.name.clone().into()));
        env.push(("LOGNAME".into(), u.name.clone().into()));
        env.push(("SHELL".into(), u.shell.clone().into()));
    }
    env.extend(p.env.iter().map(|(k, v)| (k.into(), v.into())));
    // Who it is: for the program itself, and inherited by whatever it starts,
    // so descendants that leave its group and session are still known as its.
    env.push((PROCESS_NAME_VAR.into(), p.process_name(index).into()));
    env.push(("TASKMASTER_PROGRAM".into(), p.name.clone().into()));
    env.push(("TASKMASTER_PROCESS_NUM".into(), index.to_string().into()));
    env.push((SOCKET_VAR.into(), socket.into()));
    env
}

/// The status reason for an error of the child or of `Command::spawn`.
fn failure(p: &Program, program: &Path, e: &std::io::Error) -> String {
    setup_failure(p, e).unwrap_or_else(|| format!("{}: {e}", program.display()))
}

fn cstring(what: &str, s: &OsStr) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|_| format!("{what} contains a NUL byte"))
}

/// A null-terminated array of pointers into `strings`.
fn pointers(strings: &[CString]) -> Vec<*const c_char> {
    let mut v: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
    v.push(std::ptr::null());
    v
}

fn spawn_clone(
    p: &Program,
    program: &Path,
    io: &ChildIo,
    own_group: bool,
    setup: &ChildSetup,
    env: &[(OsString, OsString)],
) -> Result<i32, String> {
    let path = cstring("the program's path", program.as_os_str())?;
    let args = p
        .argv
        .iter()
        .map(|a| cstring("an argument", a.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    // The daemon's environment with the program's on top, as std builds it.
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    for (k, v) in env {
        match vars.iter_mut().find(|(key, _)| key == k) {
            Some(var) => var.1.clone_from(v),
            None => vars.push((k.clone(), v.clone())),
        }
    }
    let vars = vars
        .into_iter()
        .map(|(mut k, v)| {
            k.push("=");
            k.push(&v);
            cstring("an environment variable", &k)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dir = match &p.workingdir {
        Some(d) => Some(cstring("workingdir", d.as_os_str())?),
        None => None,
    };
    let (argv, envp) = (pointers(&args), pointers(&vars));
    let req = clone::Request {
        path: &path,
        argv: &argv,
        envp: &envp,
        io: match io {
            ChildIo::Pipes { stdout, stderr } => clone::Io::Pipes {
                stdout: stdout.as_fd(),
                stderr: stderr.as_fd(),
            },
            ChildIo::Pty(t) => clone::Io::Pty(t.as_fd()),
        },
        workingdir: dir.as_deref(),
        umask: p.umask.map(|m| m as libc::mode_t),
        own_group,
        setup,
    };
    // `io` is dropped by the caller afterwards: the daemon keeps no copy.
    clone::spawn(&req).map_err(|f| match f {
        clone::Failed::Parent(e) => format!("{}: {e}", program.display()),
        clone::Failed::Hung => format!(
            "{}: stopped before its exec, killed after {}s",
            program.display(),
            clone::EXEC_DEADLINE.as_secs()
        ),
        clone::Failed::Child(code) => failure(p, program, &std::io::Error::from_raw_os_error(code)),
    })
}

/// The fallback: std's posix_spawn (or fork + `pre_exec` when setup is needed).
fn spawn_std(
    p: &Program,
    program: &Path,
    io: ChildIo,
    own_group: bool,
    setup: ChildSetup,
    env: &[(OsString, OsString)],
) -> Result<i32, String> {
    let mut cmd = Command::new(program);
    cmd.arg0(&p.argv[0]).args(&p.argv[1..]);
    match io {
        ChildIo::Pipes { stdout, stderr } => {
            if own_group {
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
        }
    }
    if let Some(dir) = &p.workingdir {
        cmd.current_dir(dir);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if setup.needed() {
        // Leaves std's posix_spawn path: only then is a pre_exec paid for.
        // SAFETY: `apply` only makes async-signal-safe system calls on data
        // prepared before the fork (no allocation, no lock).
        unsafe { cmd.pre_exec(move || setup.apply()) };
    }
    // Switching the daemon's own umask keeps std on its posix_spawn path
    // (safe: the daemon has one thread).
    let old = p.umask.map(|m| unsafe { libc::umask(m as libc::mode_t) });
    let result = cmd.spawn();
    if let Some(old) = old {
        unsafe { libc::umask(old) };
    }
    let child = result.map_err(|e| failure(p, program, &e))?;
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
/// Then reserves clone.rs's low descriptor slots, before the daemon opens
/// anything else.
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
    // Without them (no /dev/null?) clone.rs reserves them at the first spawn.
    if let Err(e) = clone::reserve_slots() {
        log::warn!("cannot reserve the spawn slots: {e}");
    }
}
