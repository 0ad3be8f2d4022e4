//! `user`, `group` and `rlimits` seen from inside the child, as the kernel
//! reports them in /proc. Switching users needs root: as anyone else these
//! tests print why and pass without checking.
mod common;
use common::*;
use nix::unistd::{Group, User};

fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("{test}: skipped, switching users and raising limits needs root");
    }
    root
}

/// The values of `key:` in /proc/PID/status, e.g. `Uid:` → four ids.
fn status_ids(pid: i32, key: &str) -> Vec<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = text
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in {text}"));
    line[key.len()..]
        .split_whitespace()
        .map(|t| t.parse().expect("an id"))
        .collect()
}

fn environ(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    raw.split(|b| *b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v.dedup();
    v
}

/// The supplementary groups initgroups gives `user` with primary group `gid`.
fn groups_of(user: &str, gid: u32) -> Vec<u32> {
    let name = std::ffi::CString::new(user).unwrap();
    let list = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(gid)).unwrap();
    sorted(list.into_iter().map(|g| g.as_raw()).collect())
}

fn running_pid(d: &Daemon, name: &str) -> i32 {
    d.wait_state(name, "RUNNING", 5.0);
    d.pid(name).expect("a pid")
}

#[test]
fn user_nobody_from_inside_the_child() {
    if !root_or_skip("user_nobody_from_inside_the_child") {
        return;
    }
    let nobody = User::from_name("nobody").unwrap().expect("a nobody user");
    let d = Daemon::start(
        "  n:\n    cmd: sleep 1000\n    user: nobody\n    starttime: 0.2\n    env:\n      SHELL: /bin/keep\n",
    );
    let pid = running_pid(&d, "n:0");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    assert_eq!(
        status_ids(pid, "Uid:"),
        [uid; 4],
        "real, effective, saved, fs"
    );
    assert_eq!(status_ids(pid, "Gid:"), [gid; 4]);
    assert_eq!(
        sorted(status_ids(pid, "Groups:")),
        groups_of("nobody", gid),
        "root's groups are gone, the user's are there"
    );
    let env = environ(pid);
    for want in [
        format!("HOME={}", nobody.dir.display()),
        "USER=nobody".to_string(),
        "LOGNAME=nobody".to_string(),
        // `env` wins over the user's own value.
        "SHELL=/bin/keep".to_string(),
    ] {
        assert!(env.contains(&want), "{want} not in {env:?}");
    }
}

/// A user that is a member of some group in /etc/group besides its own, if
/// this host has one: the supplementary groups are then really checked.
fn user_with_supplementary_groups() -> Option<(String, u32)> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines()
        .filter_map(|l| l.split(':').nth(3))
        .flat_map(|members| members.split(','))
        .filter(|m| !m.is_empty() && *m != "root")
        .find_map(|m| {
            let u = User::from_name(m).ok()??;
            (groups_of(m, u.gid.as_raw()).len() > 1).then(|| (m.to_string(), u.gid.as_raw()))
        })
}

#[test]
fn group_replaces_the_primary_group_and_supplementary_groups_are_kept() {
    if !root_or_skip("group_replaces_the_primary_group") {
        return;
    }
    let group = ["daemon", "users", "nogroup", "bin"]
        .iter()
        .find_map(|g| Group::from_name(g).ok().flatten())
        .expect("a common group");
    let g = group.gid.as_raw();
    let mut programs = format!(
        "  g:\n    cmd: sleep 1000\n    user: nobody\n    group: {}\n    starttime: 0.2\n  r:\n    cmd: sleep 1000\n    group: {}\n    starttime: 0.2\n",
        group.name, group.name
    );
    let member = user_with_supplementary_groups();
    match &member {
        Some((name, _)) => {
            programs +=
                &format!("  m:\n    cmd: sleep 1000\n    user: {name}\n    starttime: 0.2\n")
        }
        None => eprintln!("no user with supplementary groups here: that part is skipped"),
    }
    let d = Daemon::start(&programs);
    let pid = running_pid(&d, "g:0");
    assert_eq!(status_ids(pid, "Gid:"), [g; 4]);
    assert_eq!(sorted(status_ids(pid, "Groups:")), groups_of("nobody", g));
    // `group` without `user`: still root, but only in that group.
    let pid = running_pid(&d, "r:0");
    assert_eq!(status_ids(pid, "Uid:"), [0; 4]);
    assert_eq!(status_ids(pid, "Gid:"), [g; 4]);
    assert_eq!(status_ids(pid, "Groups:"), [g]);
    if let Some((name, gid)) = member {
        let pid = running_pid(&d, "m:0");
        let groups = sorted(status_ids(pid, "Groups:"));
        assert!(groups.len() > 1, "{name}: {groups:?}");
        assert_eq!(groups, groups_of(&name, gid));
    }
}

#[test]
fn rlimits_are_set_in_the_child() {
    if !root_or_skip("rlimits_are_set_in_the_child") {
        return;
    }
    let d = Daemon::start(
        "  l:\n    cmd: sleep 1000\n    user: nobody\n    starttime: 0.2\n    rlimits:\n      nofile: 1234\n      core: 0\n      cpu: unlimited\n      nproc: 777\n",
    );
    let pid = running_pid(&d, "l:0");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let row = |name: &str| -> Vec<String> {
        let line = limits
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {limits}"));
        line[name.len()..]
            .split_whitespace()
            .take(2)
            .map(str::to_string)
            .collect()
    };
    assert_eq!(row("Max open files"), ["1234", "1234"], "soft and hard");
    assert_eq!(row("Max core file size"), ["0", "0"]);
    assert_eq!(row("Max cpu time"), ["unlimited", "unlimited"]);
    assert_eq!(row("Max processes"), ["777", "777"]);
}

#[test]
fn a_limit_that_cannot_be_granted_fails_the_spawn_with_the_reason() {
    if !root_or_skip("a_limit_that_cannot_be_granted_fails_the_spawn") {
        return;
    }
    // Not even root may open more files than fs.nr_open.
    let nr_open: u64 = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1 << 20);
    let too_many = nr_open + 1;
    let d = Daemon::start(&format!(
        "  x:\n    cmd: sleep 1000\n    startretries: 0\n    rlimits:\n      nofile: {too_many}\n"
    ));
    d.wait_state("x:0", "FATAL", 5.0);
    let msg = d.proc("x:0")["message"].as_str().unwrap_or("").to_string();
    let want = format!("rlimits.nofile {too_many}: Operation not permitted");
    assert!(msg.contains(&want), "{msg:?} lacks {want:?}");
    d.wait_log(&want, 2.0);
}

/// A child running as another user has a session of its own and no
/// controlling terminal: it cannot type into the daemon's terminal.
#[test]
fn a_child_of_another_user_has_its_own_session() {
    if !root_or_skip("a_child_of_another_user_has_its_own_session") {
        return;
    }
    let d = Daemon::start("  n:\n    cmd: sleep 100\n    user: nobody\n    starttime: 0\n");
    let pid = running_pid(&d, "n:0");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // After ")": state, ppid, pgrp, session, tty_nr.
    assert_eq!(f[3], pid.to_string(), "session leader: {stat}");
    assert_eq!(f[2], pid.to_string(), "group leader: {stat}");
    assert_eq!(f[4], "0", "no controlling terminal: {stat}");
}
