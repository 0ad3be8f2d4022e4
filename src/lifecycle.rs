//! The daemon's own life, as pure decisions: what a signal means, which
//! requests are refused while shutting down. The reactor asks, then performs.

use crate::protocol::Request;
use signal_hook::consts::*;

/// Signals the daemon takes through its self-pipe. Every one of them is handled
/// or deliberately ignored; a handler (unlike SIG_IGN) is reset by exec, so
/// children still start with default dispositions.
pub fn handled() -> Vec<i32> {
    let mut v = vec![
        SIGHUP,
        SIGINT,
        SIGQUIT,
        SIGTERM,
        SIGUSR1,
        SIGUSR2,
        SIGALRM,
        SIGCHLD,
        SIGVTALRM,
        SIGPROF,
        SIGIO,
        libc::SIGPWR,
        SIGXCPU,
        SIGXFSZ,
        libc::SIGSTKFLT,
        SIGTSTP,
        SIGURG,
        SIGWINCH,
    ];
    // Real-time signals also end a process by default.
    v.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    v
}

/// What the daemon does about a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalPlan {
    /// Re-read the config (and reopen the log files).
    Reload,
    /// Reopen the log files (logrotate).
    Reopen,
    /// Stop every process, then exit.
    Shutdown,
    /// A second request to stop: SIGKILL every group now.
    KillAll,
    /// A child changed state: reap.
    Reap,
    /// Logged, otherwise ignored.
    Ignore,
}

pub fn on_signal(sig: i32, shutting_down: bool) -> SignalPlan {
    match sig {
        SIGCHLD => SignalPlan::Reap,
        SIGTERM | SIGINT | SIGQUIT if shutting_down => SignalPlan::KillAll,
        SIGTERM | SIGINT | SIGQUIT => SignalPlan::Shutdown,
        SIGHUP if shutting_down => SignalPlan::Reopen,
        SIGHUP => SignalPlan::Reload,
        SIGUSR2 => SignalPlan::Reopen,
        _ => SignalPlan::Ignore,
    }
}

/// Why `req` is refused now, if it is: nothing may start while shutting down.
pub fn refuse(req: &Request, shutting_down: bool) -> Option<&'static str> {
    let starts = matches!(
        req,
        Request::Start(_) | Request::Restart(_) | Request::Reload { .. }
    );
    (shutting_down && starts).then_some("shutting down")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_signal_has_a_plan() {
        use SignalPlan::*;
        for (sig, serving, stopping) in [
            (SIGTERM, Shutdown, KillAll),
            (SIGINT, Shutdown, KillAll),
            (SIGQUIT, Shutdown, KillAll),
            (SIGHUP, Reload, Reopen),
            (SIGUSR2, Reopen, Reopen),
            (SIGCHLD, Reap, Reap),
            (SIGUSR1, Ignore, Ignore),
            (SIGALRM, Ignore, Ignore),
            (libc::SIGRTMIN(), Ignore, Ignore),
        ] {
            assert_eq!(on_signal(sig, false), serving, "{sig}");
            assert_eq!(on_signal(sig, true), stopping, "{sig}");
        }
        let h = handled();
        for sig in [
            SIGUSR1,
            SIGUSR2,
            SIGQUIT,
            SIGALRM,
            SIGCHLD,
            libc::SIGRTMAX(),
        ] {
            assert!(h.contains(&sig), "{sig}");
        }
        assert!(!h.contains(&SIGKILL) && !h.contains(&SIGSEGV));
    }

    #[test]
    fn shutdown_refuses_what_would_start_something() {
        let names = vec!["all".to_string()];
        for req in [
            Request::Start(names.clone()),
            Request::Restart(names.clone()),
            Request::Reload { dry_run: false },
        ] {
            assert_eq!(refuse(&req, true), Some("shutting down"));
            assert_eq!(refuse(&req, false), None);
        }
        assert_eq!(refuse(&Request::Stop(names), true), None);
        assert_eq!(
            refuse(
                &Request::Status {
                    names: vec![],
                    json: false
                },
                true
            ),
            None
        );
    }
}
