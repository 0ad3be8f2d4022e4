//! The fd budget: each process costs the daemon up to three fds (pidfd and two
//! pipes), so the soft RLIMIT_NOFILE is raised to `minfds` at start and on
//! reload, and a hard limit below it is refused with the numbers.

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
    if soft >= need {
        return Ok(());
    }
    if hard < need {
        return Err(format!(
            "minfds: {need} file descriptors are needed (4 per process + 256, or the minfds key), \
             but the hard limit is {hard}: raise it (ulimit -Hn, LimitNOFILE=) or set a lower minfds"
        ));
    }
    let r = libc::rlimit {
        rlim_cur: need,
        rlim_max: hard,
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
        return Err(format!(
            "minfds: cannot raise the fd limit from {soft} to {need}: {}",
            std::io::Error::last_os_error()
        ));
    }
    log::info!("raised the soft fd limit from {soft} to {need} (minfds)");
    Ok(())
}
