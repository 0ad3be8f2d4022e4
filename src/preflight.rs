//! What `taskmasterd --check` finds beyond the file's own errors, as the
//! contract splits it: errors for what would stop the daemon from starting
//! (the socket's or the log's folder unusable), warnings for what would only
//! fail later (a `cmd` that cannot run, more processes than pids or file
//! descriptors allow). Nothing is created or changed.

use crate::config::{self, Config};
use crate::fdlimit::{PER_PROCESS, RESERVE};

#[derive(Debug, Default, PartialEq)]
pub struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// Everything `--check` reports about `c` in this environment.
pub fn check(c: &Config) -> Findings {
    let mut f = Findings::default();
    let file = c.file.display();
    if let Err(e) = config::check_folder_of(&c.socket) {
        f.errors.push(format!("{file}: socket: {e}"));
    }
    if let Err(e) = logfile(c) {
        f.errors.push(format!("{file}: logfile: {e}"));
    }
    for p in &c.programs {
        if let Err(e) = crate::spawn::resolve(p) {
            f.warnings
                .push(format!("{file}: programs.{}.cmd: {e}", p.name));
        }
    }
    let hard = crate::fdlimit::current().1;
    f.warnings.extend(
        limits(c, pid_max(), hard)
            .into_iter()
            .map(|w| format!("{file}: {w}")),
    );
    f
}

/// The event log must be a file the daemon can append to, in a usable folder.
fn logfile(c: &Config) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    match std::fs::metadata(&c.logfile) {
        Ok(m) if m.is_dir() => Err(format!("{} is a folder", c.logfile.display())),
        Ok(_) => access(&c.logfile, AccessFlags::W_OK)
            .map_err(|e| format!("{} is not writable ({e})", c.logfile.display())),
        Err(_) => config::check_folder_of(&c.logfile),
    }
}

/// The kernel's highest pid + 1: no more processes than that can exist.
fn pid_max() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Warnings about the number of processes, against `pid_max` and the hard
/// RLIMIT_NOFILE `hard` (the most the daemon can raise its own limit to).
pub fn limits(c: &Config, pid_max: Option<u64>, hard: u64) -> Vec<String> {
    let mut out = Vec::new();
    let procs = c.process_count();
    let largest = c
        .programs
        .iter()
        .max_by_key(|p| p.numprocs)
        .map(|p| format!(" (the largest: {}, numprocs {})", p.name, p.numprocs))
        .unwrap_or_default();
    if let Some(max) = pid_max.filter(|m| procs > *m) {
        out.push(format!(
            "numprocs: {} in all{largest}, but the kernel allows at most {max} pids \
             (/proc/sys/kernel/pid_max): processes past that cannot start; lower numprocs \
             or raise kernel.pid_max",
            processes(procs)
        ));
    }
    let (minfds, all) = (c.minfds(), c.fds_for_all());
    if hard < minfds {
        let why = if c.minfds.is_some() {
            "the minfds key".to_string()
        } else {
            format!("{PER_PROCESS} per process + {RESERVE}")
        };
        out.push(format!(
            "minfds: {minfds} file descriptors are needed ({why}), but the hard RLIMIT_NOFILE \
             here is {hard}: taskmasterd would refuse to start under this limit; raise it \
             (ulimit -Hn, LimitNOFILE=) or lower minfds"
        ));
    } else if hard < all {
        out.push(format!(
            "numprocs: {} may hold up to {all} file descriptors ({PER_PROCESS} each + \
             {RESERVE}), but the hard RLIMIT_NOFILE here is {hard}: spawns past that fail \
             with \"too many open files\"; raise the limit (ulimit -Hn, LimitNOFILE=)",
            processes(procs)
        ));
    }
    out
}

/// `1 program`, `2 programs`.
pub fn programs(n: usize) -> String {
    plural(n as u64, "program", "programs")
}

/// `1 process`, `2 processes`.
pub fn processes(n: u64) -> String {
    plural(n, "process", "processes")
}

/// `1 error`, `2 errors`.
pub fn errors(n: usize) -> String {
    plural(n as u64, "error", "errors")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn conf(text: &str) -> Config {
        config::parse(Path::new("/t.yaml"), text).unwrap()
    }

    #[test]
    fn plurals() {
        assert_eq!(programs(1), "1 program");
        assert_eq!(programs(0), "0 programs");
        assert_eq!(processes(1), "1 process");
        assert_eq!(processes(3), "3 processes");
        assert_eq!(errors(1), "1 error");
        assert_eq!(errors(2), "2 errors");
    }

    #[test]
    fn pid_and_fd_limits_with_the_numbers() {
        let c = conf("programs:\n  a:\n    cmd: x\n    numprocs: 40\n  b:\n    cmd: y\n");
        // 41 processes: 41 * 5 + 256 = 461 fds.
        assert_eq!(c.minfds(), 461);
        assert!(limits(&c, Some(32768), 65536).is_empty());
        assert!(limits(&c, None, 461).is_empty());
        let w = limits(&c, Some(41), 1 << 20);
        assert!(w.is_empty(), "{w:?}");
        let w = limits(&c, Some(40), 1 << 20);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("41 processes in all (the largest: a, numprocs 40)")
                && w[0].contains("at most 40 pids"),
            "{w:?}"
        );
        let w = limits(&c, None, 460);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("461 file descriptors are needed (5 per process + 256)")
                && w[0].contains("is 460")
                && w[0].contains("refuse to start"),
            "{w:?}"
        );
        // minfds set low: the daemon starts, but not every process can run.
        let c = conf("minfds: 10\nprograms:\n  a:\n    cmd: x\n    numprocs: 40\n");
        let w = limits(&c, None, 300);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("40 processes may hold up to 456 file descriptors (5 each + 256)")
                && w[0].contains("is 300"),
            "{w:?}"
        );
        let w = limits(&c, None, 5);
        assert!(
            w[0].contains("10 file descriptors are needed (the minfds key)"),
            "{w:?}"
        );
    }
}
