//! Memory and CPU of process groups, read from /proc only when a request asks
//! (`metrics`, `status --json`): nothing is sampled in the background, so an
//! idle daemon stays asleep.
//!
//! /proc has no index by process group, so one scan reads `/proc/PID/stat` of
//! every process on the host once and adds each to its group's sum, whatever
//! the number of supervised groups. The scan is cut into batches (`step`): a
//! host with 100 000 processes costs the loop a bounded slice per turn, and
//! other clients are served in between. The pid list is read at once (a few
//! getdents calls, 4 bytes a process) so that no directory fd stays open
//! between turns: hundreds of clients scanning never eat the fd budget that
//! spawns need.

use std::collections::HashMap;
use std::io::Read;

/// /proc entries read per `step` by default (each is an open, a read, a close).
pub const BATCH: usize = 256;

/// What a process group uses, summed over its live members.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub rss_bytes: u64,
    /// utime + stime of the members, plus the cutime + cstime of the children
    /// they waited for (a shell wrapper's finished commands still count).
    pub cpu_ticks: u64,
}

impl Usage {
    pub fn cpu_seconds(&self) -> f64 {
        self.cpu_ticks as f64 / clock_ticks() as f64
    }

    pub fn rss_kb(&self) -> u64 {
        self.rss_bytes / 1024
    }
}

/// A /proc scan in progress, for a fixed set of process groups.
pub struct Scan {
    /// The pids still to read, taken from the end.
    pids: Vec<u32>,
    /// Each wanted group's sum; `None` until a member is seen.
    groups: HashMap<i32, Option<Usage>>,
    page: u64,
}

impl Scan {
    /// A scan for `pgids`; nothing is read yet. With no group wanted, nothing
    /// will be.
    pub fn new(pgids: impl IntoIterator<Item = i32>) -> Scan {
        let groups: HashMap<i32, Option<Usage>> = pgids.into_iter().map(|g| (g, None)).collect();
        let pids = if groups.is_empty() {
            Vec::new()
        } else {
            pids()
        };
        Scan {
            pids,
            groups,
            page: page_size(),
        }
    }

    pub fn done(&self) -> bool {
        self.pids.is_empty()
    }

    /// Reads up to `batch` more /proc entries; true once the scan is complete.
    pub fn step(&mut self, batch: usize) -> bool {
        let mut buf = [0u8; 1024];
        for _ in 0..batch {
            let Some(pid) = self.pids.pop() else {
                break;
            };
            let Some(stat) = read_stat(pid, &mut buf) else {
                continue;
            };
            if let Some(sum) = self.groups.get_mut(&stat.pgrp) {
                let u = sum.get_or_insert_with(Usage::default);
                u.rss_bytes += stat.rss_pages * self.page;
                u.cpu_ticks += stat.ticks;
            }
        }
        if self.pids.is_empty() {
            // A finished scan keeps its sums, not the list's allocation.
            self.pids = Vec::new();
        }
        self.pids.is_empty()
    }

    /// Runs the scan to its end (tests, and small replies).
    pub fn finish(&mut self) {
        while !self.step(BATCH) {}
    }

    /// The usage of group `pgid`, if it was asked for and a member was seen.
    pub fn get(&self, pgid: i32) -> Option<Usage> {
        self.groups.get(&pgid).copied().flatten()
    }
}

/// Every pid in /proc now. No /proc (a chroot, a container without it): none,
/// and every figure is null.
fn pids() -> Vec<u32> {
    match std::fs::read_dir("/proc") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect(),
        Err(e) => {
            log::debug!("cannot read /proc: {e}");
            Vec::new()
        }
    }
}

/// The fields of `/proc/PID/stat` this module needs.
#[derive(Debug, PartialEq)]
pub struct Stat {
    pub pgrp: i32,
    pub ticks: u64,
    pub rss_pages: u64,
}

/// Reads `/proc/PID/stat` into `buf` (a gone process, or a zombie: `None`).
fn read_stat(pid: u32, buf: &mut [u8]) -> Option<Stat> {
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut len = 0;
    // One read gets it all in practice; loop in case the kernel splits it.
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    parse_stat(std::str::from_utf8(&buf[..len]).ok()?)
}

/// Parses a `/proc/PID/stat` line. The command name (field 2) may hold spaces
/// and parentheses, so fields are counted from its last `)`. A zombie (state
/// `Z`) is skipped: its memory is gone and its time is its parent's to count.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().take(22).collect();
    // Field N of proc(5) is f[N - 3]: state 3, pgrp 5, utime 14 … rss 24.
    if f.len() < 22 || f[0] == "Z" || f[0] == "X" {
        return None;
    }
    let num = |i: usize| f[i].parse::<u64>().ok();
    let ticks = num(11)? + num(12)? + num(13)? + num(14)?;
    Some(Stat {
        pgrp: f[2].parse().ok()?,
        ticks,
        rss_pages: num(21)?,
    })
}

/// Clock ticks per second (USER_HZ) for the CPU times.
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as u64,
        _ => 100,
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u64,
        _ => 4096,
    }
}

/// The daemon's own resident memory, in bytes (`/proc/self/statm`).
pub fn own_rss() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// The daemon's open file descriptors (`/proc/self/fd`, less the one the
/// listing itself holds).
pub fn own_fds() -> Option<u64> {
    let n = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    Some(n.saturating_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_counted_from_the_last_parenthesis() {
        let line = "4242 (we ird) (x) S 1 4240 4240 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 \
                    12345 1000000 55 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pgrp: 4240,
                ticks: 13,
                rss_pages: 55
            })
        );
        assert_eq!(parse_stat(&line.replace(") S ", ") Z ")), None);
        assert_eq!(parse_stat("4242 (short) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat(&line.replace(" 55 ", " x ")), None);
    }

    #[test]
    fn scan_sums_a_group_and_ignores_others() {
        // This test process's own group: at least this process is in it.
        let me = std::process::id();
        let pgrp = unsafe { libc::getpgid(0) };
        let mut s = Scan::new([pgrp, -7]);
        let mut steps = 0;
        while !s.step(16) {
            steps += 1;
        }
        assert!(steps > 0 || s.done());
        let u = s.get(pgrp).expect("our own group was seen");
        let mut buf = [0u8; 1024];
        let mine = read_stat(me, &mut buf).expect("our own stat");
        assert!(u.rss_bytes >= mine.rss_pages * page_size(), "{u:?}");
        assert!(u.rss_bytes > 0 && u.rss_kb() > 0);
        assert_eq!(s.get(-7), None, "no member: no figure");
        assert_eq!(s.get(12345678), None, "not asked for");
        assert!(Scan::new([]).done(), "nothing wanted: nothing read");
    }

    #[test]
    fn own_figures() {
        assert!(own_rss().is_some_and(|b| b > 0));
        let held: Vec<std::fs::File> = (0..50)
            .map(|_| std::fs::File::open("/proc/self/stat").unwrap())
            .collect();
        assert!(own_fds().expect("fds") >= 50);
        drop(held);
        assert!(clock_ticks() > 0);
    }
}
