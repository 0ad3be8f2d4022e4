//! The fd budget: each process costs the daemon up to five fds (pidfd, two
//! pipes, two output files), so the soft RLIMIT_NOFILE is raised towards the
//! hard limit (up to 65 536, and at least `minfds`) at start and on reload, and
//! a hard limit below `minfds` is refused with the numbers.

/// The soft limit the daemon asks for when the hard limit allows it.
const WANT: u64 = 65536;

/// Fds one process may hold in the daemon.
pub const PER_PROCESS: u64 = 5;

/// Fds kept for the daemon's own use (clients, logs, listeners) in the
/// default `minfds`.
pub const RESERVE: u64 = 256;

/// (soft, hard) RLIMIT_NOFILE.
pub fn current() -> (u64, u64) {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (r.rlim_cur, r.rlim_max)
}

/// Raises the soft limit to at least `need`; an error names both numbers.
pub fn ensure(need: u64) -> Result<(), String> {
    let (soft, hard) = current();
    if hard < need {
        return Err(format!(
            "minfds: {need} file descriptors are needed ({PER_PROCESS} per process + {RESERVE}, or the minfds key), \
             but the hard limit is {hard}: raise it (ulimit -Hn, LimitNOFILE=) or set a lower minfds"
        ));
    }
    let target = need.max(WANT.min(hard));
    if soft >= target {
        return Ok(());
    }
    let r = libc::rlimit {
        rlim_cur: target,
        rlim_max: hard,
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(format!(
            "minfds: cannot raise the fd limit from {soft} to {target}: {}",
            std::io::Error::last_os_error()
        ));
    }
    log::info!("raised the soft fd limit from {soft} to {target} (minfds {need})");
    Ok(())
}
