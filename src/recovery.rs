//! Crash recovery: the process groups the daemon started, recorded in
//! `SOCKET.state`, so that a daemon started after a `kill -9` of its
//! predecessor ends the survivors instead of running a second set beside them.
//!
//! Each line names a group by its pgid *and* its leader's start time
//! (/proc/PID/stat field 22, clock ticks since boot): a pid the kernel gave to
//! some unrelated process since has another start time and is left alone.
//! The kernel never reuses a number while a group of that id still has
//! members, so a group whose leader is gone can still be found by its pgid.
//!
//! The file is rewritten (temporary file + rename) only when the set of live
//! groups changes; it holds one short line per live group, so it is bounded by
//! the number of processes in the config. Recovery runs once at start, after
//! the socket is bound (so no other daemon serves it and owns these groups) and
//! before anything is spawned or served: it may block for up to the largest
//! recorded stoptime (polling every 50 ms), which is fine since nothing is
//! served yet.

use crate::supervisor::Supervisor;
use log::{info, warn};
use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HEADER: &str = "taskmaster-state 1";
/// The most recovery reads of a state file (a corrupt or foreign one).
const MAX_FILE: u64 = 16 << 20;
const POLL: Duration = Duration::from_millis(50);
/// How long a SIGKILLed group may take to disappear before recovery goes on.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// One recorded group.
#[derive(Clone, Debug, PartialEq)]
struct Entry {
    /// The leader's start time; 0 if it was gone before it could be read.
    start: u64,
    signal: i32,
    stoptime: Duration,
    /// Never grown: a `Box<str>` is 8 bytes less than a `String` per group.
    name: Box<str>,
}

/// The state file beside `socket`: `SOCKET.state`.
pub fn state_path(socket: &Path) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(".state");
    PathBuf::from(s)
}

/// Keeps `SOCKET.state` in step with the supervisor's live groups.
#[derive(Default)]
pub struct Recorder {
    path: Option<PathBuf>,
    /// Sorted by pgid, one entry per group. A vector, not a `BTreeMap`: the
    /// map's half-full nodes were about 110 bytes a group, held for as long
    /// as the group lives (docs/benchmarks.md, "Footprint").
    entries: Vec<(i32, Entry)>,
    /// A write failed and was logged; said again only after a success.
    failing: bool,
    /// Shutting down: groups only end, so the file is rewritten only for a
    /// group it does not list (see `shutting_down`).
    shutdown: bool,
}

impl Recorder {
    /// Records the groups `sup` has now, if they changed (call on transitions).
    pub fn sync(&mut self, sup: &Supervisor, socket: &Path) {
        let path = state_path(socket);
        let moved = self.path.as_ref() != Some(&path);
        if moved {
            if let Some(old) = self.path.replace(path.clone()) {
                let _ = std::fs::remove_file(old);
            }
        }
        // Called after every batch of transitions, with up to thousands of
        // processes: the usual case (no group started or ended) is one pass
        // that allocates nothing.
        let live = || sup.order.iter().filter_map(|s| sup.get(*s));
        let mut count = 0;
        // Hooks and probe commands too: their timeout dies with the daemon,
        // so a survivor would run on forever. Ended at once (SIGKILL).
        let oneshots = || sup.oneshots.groups().map(|(g, o)| (g, sup.oneshot_name(o)));
        let same = live().filter(|p| p.pgid.is_some()).all(|p| {
            count += 1;
            p.pgid
                .and_then(|g| find(&self.entries, g))
                .is_some_and(|e| {
                    (e.signal, e.stoptime) == (p.cfg.stopsignal, p.cfg.stoptime)
                        && *e.name == *p.name
                })
        }) && oneshots().all(|(g, name)| {
            count += 1;
            find(&self.entries, g).is_some_and(|e| e.signal == libc::SIGKILL && *e.name == *name)
        });
        // During shutdown a file that still lists ended groups is as good:
        // recovery skips a group that is gone, and one whose number was
        // given to someone else (the leader's start time differs).
        let listed = count == self.entries.len() || self.shutdown;
        if same && listed && !moved {
            return;
        }
        // Unchanged entries move over; only new groups read /proc.
        let mut old: Vec<(i32, Option<Entry>)> = (std::mem::take(&mut self.entries).into_iter())
            .map(|(g, e)| (g, Some(e)))
            .collect();
        let mut remove = |pgid: i32| -> Option<Entry> {
            let i = old.binary_search_by_key(&pgid, |(g, _)| *g).ok()?;
            old[i].1.take()
        };
        let mut entries = Vec::with_capacity(count);
        for p in live() {
            let Some(pgid) = p.pgid else { continue };
            let (signal, stoptime) = (p.cfg.stopsignal, p.cfg.stoptime);
            let entry = match remove(pgid) {
                Some(e) if (e.signal, e.stoptime) == (signal, stoptime) && *e.name == *p.name => e,
                found => Entry {
                    start: found
                        .map_or_else(|| proc_stat(pgid).map_or(0, |s| s.start), |e| e.start),
                    signal,
                    stoptime,
                    name: p.name.as_str().into(),
                },
            };
            entries.push((pgid, entry));
        }
        for (pgid, name) in oneshots() {
            let found = remove(pgid).map(|e| e.start);
            let start = found.unwrap_or_else(|| proc_stat(pgid).map_or(0, |s| s.start));
            let (signal, stoptime) = (libc::SIGKILL, Duration::ZERO);
            let name = name.into_boxed_str();
            entries.push((
                pgid,
                Entry {
                    start,
                    signal,
                    stoptime,
                    name,
                },
            ));
        }
        self.entries = sorted(entries);
        match write(&path, &self.entries) {
            Ok(()) => self.failing = false,
            Err(e) if !self.failing => {
                self.failing = true;
                warn!(
                    "state file {}: {e} (crash recovery may miss groups)",
                    path.display()
                );
            }
            Err(_) => {}
        }
    }

    /// Shutdown began: from now on the file is not rewritten when groups
    /// end (at 1000 processes that was a 28 KiB file written for every turn
    /// that reaped some), only when a new one starts (a hook); `clear`
    /// removes it once every group is gone.
    pub fn shutting_down(&mut self) {
        self.shutdown = true;
    }

    /// Clean exit: nothing of ours is left to recover.
    pub fn clear(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
        self.entries.clear();
    }
}

/// The entry of group `pgid` in `entries` (sorted by pgid).
fn find(entries: &[(i32, Entry)], pgid: i32) -> Option<&Entry> {
    let i = entries.binary_search_by_key(&pgid, |(g, _)| *g).ok()?;
    Some(&entries[i].1)
}

/// `entries` sorted by pgid, the last of any repeated pgid kept (as inserting
/// them in order into a map would), without spare room.
fn sorted(mut entries: Vec<(i32, Entry)>) -> Vec<(i32, Entry)> {
    entries.sort_by_key(|(g, _)| *g); // stable: repeats stay in order
    entries.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            std::mem::swap(later, kept);
        }
        same
    });
    entries.shrink_to_fit();
    entries
}

fn write(path: &Path, entries: &[(i32, Entry)]) -> std::io::Result<()> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    use std::fmt::Write as _;
    let mut text = String::with_capacity(32 * entries.len() + 32);
    text.push_str(HEADER);
    text.push('\n');
    for (pgid, e) in entries {
        let ms = e.stoptime.as_millis();
        // Writing into a String cannot fail.
        let _ = writeln!(text, "{pgid} {} {} {ms} {}", e.start, e.signal, e.name);
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let done = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

fn parse(text: &str) -> Vec<(i32, Entry)> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Vec::new();
    }
    let one = |l: &str| -> Option<(i32, Entry)> {
        let mut f = l.splitn(5, ' ');
        let pgid: i32 = f.next()?.parse().ok().filter(|p| *p > 1)?;
        let start = f.next()?.parse().ok()?;
        let signal = f.next()?.parse().ok().filter(|s| (1..65).contains(s))?;
        let ms: u64 = f.next()?.parse().ok()?;
        let name = f.next().unwrap_or("?").to_string();
        let stoptime = Duration::from_millis(ms.min(365 * 86_400_000));
        Some((
            pgid,
            Entry {
                start,
                signal,
                stoptime,
                name: name.into(),
            },
        ))
    };
    lines.filter_map(one).collect()
}

/// What /proc/PID/stat says that recovery needs.
struct Stat {
    pgrp: i32,
    start: u64,
    zombie: bool,
}

fn proc_stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        zombie: *f.first()? == "Z",
        pgrp: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Every live (non-zombie) process by process group: (pid, start time).
/// One pass over /proc serves every recorded group, however many there are.
struct Snapshot(HashMap<i32, Vec<(i32, u64)>>);

impl Snapshot {
    fn take() -> Snapshot {
        let mut groups: HashMap<i32, Vec<(i32, u64)>> = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for pid in dir
                .flatten()
                .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
            {
                if let Some(s) = proc_stat(pid).filter(|s| !s.zombie) {
                    groups.entry(s.pgrp).or_default().push((pid, s.start));
                }
            }
        }
        Snapshot(groups)
    }

    /// Live processes of the recorded group `pgid` (started no earlier than
    /// its leader), or nothing if the number now belongs to an unrelated
    /// process.
    fn survivors(&self, pgid: i32, e: &Entry) -> Vec<i32> {
        let leader = proc_stat(pgid);
        if leader.as_ref().is_some_and(|s| s.start != e.start) {
            return Vec::new();
        }
        let mut out: Vec<i32> = (self.0.get(&pgid).into_iter().flatten())
            .filter(|(_, start)| *start >= e.start)
            .map(|(pid, _)| *pid)
            .collect();
        // A leader that moved to a group of its own is still ours.
        if leader.is_some_and(|s| !s.zombie) && !out.contains(&pgid) {
            out.push(pgid);
        }
        out
    }
}

/// Descendants that left their recorded group (setsid or setpgid, then
/// re-parented to init when the daemon died): found by the environment every
/// child of ours carries, `TASKMASTER_SOCKET` naming *this* socket (so another
/// daemon's processes of the same name are never touched) and
/// `TASKMASTER_PROCESS_NAME` one of the recorded processes, started no earlier
/// than that process. Returned as groups (pgid, entry), none already in `known`.
fn escaped(recorded: &[(i32, Entry)], socket: &Path, known: &[(i32, Entry)]) -> Vec<(i32, Entry)> {
    if recorded.is_empty() {
        return Vec::new();
    }
    let by_name: BTreeMap<&str, &Entry> = recorded.iter().map(|(_, e)| (&*e.name, e)).collect();
    let mut marker = format!("{}=", crate::spawn::SOCKET_VAR).into_bytes();
    marker.extend_from_slice(socket.as_os_str().as_encoded_bytes());
    let name_key = format!("{}=", crate::spawn::PROCESS_NAME_VAR);
    let me = std::process::id() as i32;
    let mut groups: BTreeMap<i32, Entry> = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for pid in dir
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
    {
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let mut vars = env.split(|b| *b == 0);
        if !vars.clone().any(|v| v == marker.as_slice()) {
            continue;
        }
        let Some(e) = vars
            .find_map(|v| v.strip_prefix(name_key.as_bytes()))
            .and_then(|n| by_name.get(std::str::from_utf8(n).ok()?))
        else {
            continue;
        };
        let Some(st) = proc_stat(pid).filter(|s| !s.zombie && s.start >= e.start) else {
            continue;
        };
        if known.iter().any(|(g, _)| *g == st.pgrp) || recorded.iter().any(|(g, _)| *g == st.pgrp) {
            continue;
        }
        let entry = groups.entry(st.pgrp).or_insert_with(|| Entry {
            start: st.start,
            ..(*e).clone()
        });
        entry.start = entry.start.min(st.start);
    }
    groups.into_iter().collect()
}

fn signal(pgid: i32, members: &[i32], sig: i32) {
    unsafe {
        libc::kill(-pgid, sig);
        if members.contains(&pgid) {
            libc::kill(pgid, sig);
        }
    }
}

/// Waits until every group in `left` is gone, `limit` passes, or `stop`
/// says the daemon is asked to stop; returns the groups still alive with
/// their members.
fn wait_gone(
    left: Vec<(i32, Entry)>,
    limit: Duration,
    stop: &mut dyn FnMut() -> bool,
) -> Vec<(i32, Entry, Vec<i32>)> {
    let deadline = Instant::now() + limit;
    loop {
        let snap = Snapshot::take();
        let alive: Vec<_> = (left.iter())
            .map(|(g, e)| (*g, e.clone(), snap.survivors(*g, e)))
            .filter(|(_, _, m)| !m.is_empty())
            .collect();
        if alive.is_empty() || Instant::now() >= deadline || stop() {
            return alive;
        }
        std::thread::sleep(POLL);
    }
}

/// At start, before anything is spawned: ends the groups a crashed
/// predecessor left (stopsignal, SIGKILL after their stoptime), then removes
/// the state file.
/// A state file is believed only if the daemon's own user wrote it and nobody
/// else could: a forged one would make the daemon kill arbitrary processes.
fn trusted(f: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    f.metadata().is_ok_and(|m| {
        m.is_file() && m.uid() == nix::unistd::geteuid().as_raw() && m.mode() & 0o022 == 0
    })
}

///
/// `stop` is asked while recovery waits (which may last the longest recorded
/// stoptime): once it says a SIGTERM came, the wait ends and what is left
/// gets SIGKILL at once, as a second SIGTERM during a shutdown would do.
/// Returns whether `stop` said so.
pub fn recover(socket: &Path, stop: &mut dyn FnMut() -> bool) -> bool {
    let path = state_path(socket);
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path);
    let text = match opened {
        Ok(f) if !trusted(&f) => {
            warn!(
                "crash recovery: ignoring {}: not a regular file of ours, mode 0600 (someone else may have written it)",
                path.display()
            );
            return false;
        }
        Ok(f) => {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::Read::take(f, MAX_FILE), &mut s);
            s
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
        Err(e) => {
            warn!("crash recovery: cannot read {}: {e}", path.display());
            return false;
        }
    };
    let mut found = Vec::new();
    let snap = Snapshot::take();
    for (pgid, e) in parse(&text) {
        let members = snap.survivors(pgid, &e);
        if members.is_empty() {
            continue;
        }
        warn!(
            "crash recovery: {}: process group {pgid} ({} processes) survived the previous daemon; sending {}",
            e.name,
            members.len(),
            crate::signals::name(e.signal)
        );
        signal(pgid, &members, e.signal);
        found.push((pgid, e));
    }
    let snap = Snapshot::take();
    for (pgid, e) in escaped(&parse(&text), socket, &found) {
        let members = snap.survivors(pgid, &e);
        warn!(
            "crash recovery: {}: process group {pgid} ({} processes) left its process's group and survived the previous daemon; sending {}",
            e.name,
            members.len(),
            crate::signals::name(e.signal)
        );
        signal(pgid, &members, e.signal);
        found.push((pgid, e));
    }
    let mut stopped = false;
    if found.is_empty() {
        info!("crash recovery: {} names no live group", path.display());
    } else {
        let longest = found.iter().map(|(_, e)| e.stoptime).max();
        let count = found.len();
        let mut asked = || {
            stopped = stopped || stop();
            stopped
        };
        let stubborn = wait_gone(found, longest.unwrap_or_default(), &mut asked);
        for (pgid, e, members) in &stubborn {
            if stopped {
                warn!("crash recovery: {}: process group {pgid}: SIGKILL (the daemon is asked to stop)", e.name);
            } else {
                warn!(
                    "crash recovery: {}: process group {pgid} still alive after {:.1}s: SIGKILL",
                    e.name,
                    e.stoptime.as_secs_f64()
                );
            }
            signal(*pgid, members, libc::SIGKILL);
        }
        let left: Vec<_> = stubborn.into_iter().map(|(g, e, _)| (g, e)).collect();
        for (pgid, e, _) in wait_gone(left, KILL_WAIT, &mut || false) {
            warn!(
                "crash recovery: {}: process group {pgid} survives SIGKILL",
                e.name
            );
        }
        info!("crash recovery: ended {count} process groups of the previous daemon");
    }
    if let Err(e) = std::fs::remove_file(&path) {
        warn!("crash recovery: cannot remove {}: {e}", path.display());
    }
    stopped
}

#[cfg(test)]
#[path = "recovery_tests.rs"]
mod tests;
