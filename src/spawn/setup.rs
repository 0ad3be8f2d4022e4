//! What a child does between fork and exec: its own session on a terminal,
//! `rlimits`, and, in a root daemon, the switch to `user`/`group`.
//!
//! Everything is computed in the daemon before the fork; the child only makes
//! async-signal-safe system calls on that data (no allocation, no lock: the
//! fork may have happened while another part of the process held malloc's
//! lock). Order: limits first (raising a hard limit needs root), then
//! supplementary groups, gid, uid — each step needs the privilege the next
//! one gives up. std's `Command::uid` is not used: it clears the supplementary
//! groups itself and runs before `pre_exec`, i.e. before the limits.
//!
//! std hands only an errno from a failed `pre_exec` to the parent, and the
//! child may not build a message; so the failing step rides in the errno's
//! high bits (`step << STEP_SHIFT | errno`) and `setup_failure` turns it back
//! into a sentence for `status`.

use crate::config::Program;
use std::ffi::CString;
use std::io;

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

// The 32-bit id calls (on these two, the plain ones take 16-bit ids).
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
use libc::{SYS_setgid as SYS_SETGID, SYS_setgroups as SYS_SETGROUPS, SYS_setuid as SYS_SETUID};
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
use libc::{
    SYS_setgid32 as SYS_SETGID, SYS_setgroups32 as SYS_SETGROUPS, SYS_setuid32 as SYS_SETUID,
};

const STEP_SHIFT: i32 = 16;
const STEP_SETSID: i32 = 1;
const STEP_TIOCSCTTY: i32 = 2;
const STEP_SETGROUPS: i32 = 3;
const STEP_SETGID: i32 = 4;
const STEP_SETUID: i32 = 5;
/// The child's descriptors (clone.rs: unsharing the table, the dup2s).
pub(super) const STEP_FDS: i32 = 6;
/// `chdir` to the workingdir (clone.rs).
pub(super) const STEP_CHDIR: i32 = 7;
/// `STEP_RLIMIT + i` is the program's `rlimits[i]`.
const STEP_RLIMIT: i32 = 8;

#[derive(Default)]
pub struct ChildSetup {
    /// setsid + TIOCSCTTY on fd 0 (`attach` programs).
    pub pty: bool,
    /// setsid alone: a child running as another user must not share the
    /// daemon's controlling terminal (TIOCSTI, escape sequences).
    pub new_session: bool,
    limits: Vec<(Resource, libc::rlimit)>,
    groups: Option<Vec<libc::gid_t>>,
    gid: Option<libc::gid_t>,
    uid: Option<libc::uid_t>,
}

impl ChildSetup {
    /// The setup `p` needs; the error (groups unreadable) fails the spawn.
    pub fn for_program(p: &Program) -> Result<ChildSetup, String> {
        let limits = p
            .rlimits
            .iter()
            .map(|r| {
                let v = r.value.unwrap_or(libc::RLIM_INFINITY);
                let lim = libc::rlimit {
                    rlim_cur: v,
                    rlim_max: v,
                };
                (resource(r.name), lim)
            })
            .collect();
        let mut s = ChildSetup {
            pty: false,
            new_session: false,
            limits,
            groups: None,
            gid: None,
            uid: None,
        };
        // Not root: the config only accepts our own user and group, so
        // there is nothing to switch (and no right to).
        if !nix::unistd::geteuid().is_root() {
            return Ok(s);
        }
        let group = p.group.as_deref().map(|(_, gid)| *gid);
        match &p.user {
            Some(u) => {
                let gid = group.unwrap_or(u.gid);
                s.groups = Some(groups_of(&u.name, gid)?);
                (s.gid, s.uid) = (Some(gid), Some(u.uid));
            }
            // A gid alone: root's own supplementary groups (group 0 among
            // them) are not for a program that was given a group.
            None => {
                if let Some(gid) = group {
                    (s.groups, s.gid) = (Some(vec![gid]), Some(gid));
                }
            }
        }
        Ok(s)
    }

    /// Whether the child changes user or group.
    pub fn drops_privileges(&self) -> bool {
        self.gid.is_some() || self.uid.is_some()
    }

    /// Whether any code must run between fork and exec.
    pub fn needed(&self) -> bool {
        self.pty || !self.limits.is_empty() || self.gid.is_some() || self.uid.is_some()
    }

    /// Runs in the child between fork and exec: async-signal-safe calls only.
    /// The id changes are raw system calls: glibc's wrappers would try to
    /// pass the change on to the daemon's other threads, which a child made
    /// by clone.rs (it shares the daemon's memory) must not do.
    pub fn apply(&self) -> io::Result<()> {
        // SAFETY (all blocks): plain system calls on data owned by `self`.
        if self.new_session && !self.pty {
            check(unsafe { libc::setsid() }, STEP_SETSID)?;
        }
        if self.pty {
            check(unsafe { libc::setsid() }, STEP_SETSID)?;
            check(
                unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) },
                STEP_TIOCSCTTY,
            )?;
        }
        for (i, (res, lim)) in self.limits.iter().enumerate() {
            check(
                unsafe { libc::setrlimit(*res, lim) },
                STEP_RLIMIT + i as i32,
            )?;
        }
        if let Some(groups) = &self.groups {
            let rc = unsafe { libc::syscall(SYS_SETGROUPS, groups.len(), groups.as_ptr()) };
            check(rc as libc::c_int, STEP_SETGROUPS)?;
        }
        if let Some(gid) = self.gid {
            let rc = unsafe { libc::syscall(SYS_SETGID, gid) };
            check(rc as libc::c_int, STEP_SETGID)?;
        }
        if let Some(uid) = self.uid {
            let rc = unsafe { libc::syscall(SYS_SETUID, uid) };
            check(rc as libc::c_int, STEP_SETUID)?;
        }
        Ok(())
    }
}

/// A failed step as an error carrying its step number (no allocation).
fn check(rc: libc::c_int, step: i32) -> io::Result<()> {
    if rc >= 0 {
        return Ok(());
    }
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    Err(io::Error::from_raw_os_error(step << STEP_SHIFT | errno))
}

/// The sentence for a spawn error that came from `apply`, else `None`.
pub fn setup_failure(p: &Program, e: &io::Error) -> Option<String> {
    let code = e.raw_os_error()?;
    let (step, errno) = (code >> STEP_SHIFT, code & ((1 << STEP_SHIFT) - 1));
    let why = nix::errno::Errno::from_raw(errno).desc();
    let user = p.user.as_ref();
    let group = p.group.as_deref();
    Some(match step {
        STEP_SETSID => format!("pty: setsid: {why}"),
        STEP_TIOCSCTTY => format!("pty: cannot make it the controlling terminal: {why}"),
        STEP_SETGROUPS => match user {
            Some(u) => format!("user {}: setgroups: {why}", u.name),
            None => format!("setgroups: {why}"),
        },
        STEP_SETGID => match (group, user) {
            (Some((name, gid)), _) => format!("group {name} (gid {gid}): setgid: {why}"),
            (None, Some(u)) => format!("user {} (gid {}): setgid: {why}", u.name, u.gid),
            _ => format!("setgid: {why}"),
        },
        STEP_FDS => format!("cannot set up its descriptors: {why}"),
        STEP_CHDIR => match &p.workingdir {
            Some(dir) => format!("workingdir {}: {why}", dir.display()),
            None => format!("chdir: {why}"),
        },
        STEP_SETUID => match user {
            Some(u) => format!("user {} (uid {}): setuid: {why}", u.name, u.uid),
            None => format!("setuid: {why}"),
        },
        s if s >= STEP_RLIMIT => {
            let r = p.rlimits.get((s - STEP_RLIMIT) as usize)?;
            match r.value {
                Some(v) => format!("rlimits.{} {v}: {why}", r.name),
                None => format!("rlimits.{} unlimited: {why}", r.name),
            }
        }
        _ => return None,
    })
}

fn resource(name: &str) -> Resource {
    match name {
        "nofile" => libc::RLIMIT_NOFILE,
        "nproc" => libc::RLIMIT_NPROC,
        "core" => libc::RLIMIT_CORE,
        "as" => libc::RLIMIT_AS,
        "fsize" => libc::RLIMIT_FSIZE,
        "stack" => libc::RLIMIT_STACK,
        "memlock" => libc::RLIMIT_MEMLOCK,
        // The parser admits only RLIMIT_NAMES, whose last entry is cpu.
        _ => libc::RLIMIT_CPU,
    }
}

/// The groups `initgroups` would give `user` with primary group `gid`.
fn groups_of(user: &str, gid: u32) -> Result<Vec<libc::gid_t>, String> {
    let name = CString::new(user).map_err(|_| format!("user {user:?}: invalid name"))?;
    let list = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid))
        .map_err(|e| format!("user {user}: cannot read its groups: {}", e.desc()))?;
    Ok(list.into_iter().map(|g| g.as_raw()).collect())
}
