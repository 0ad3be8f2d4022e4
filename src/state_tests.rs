use super::*;
use Action::*;
use State::*;

fn cfg() -> Program {
    let mut c = Program::new("t", "sleep 1");
    c.starttime = Duration::from_secs(1);
    c.stoptime = Duration::from_secs(5);
    c.startretries = 3;
    c
}

pub(super) fn at(state: State) -> Proc {
    Proc {
        state,
        ..Proc::new(7)
    }
}

pub(super) fn exit(code: i32, secs: u64) -> Event {
    Event::Exited {
        exit: Exit::Code(code),
        uptime: Duration::from_secs(secs),
    }
}

const EVENTS: usize = 10;
/// Expected (state, actions) for each event, in `events()` order.
type Row = [(State, Vec<Action>); EVENTS];
fn events() -> [Event; EVENTS] {
    [
        Event::Start,
        Event::Stop,
        Event::Spawned,
        Event::SpawnFailed("ENOENT".into()),
        exit(0, 30),
        Event::Deadline,
        Event::Kill,
        Event::LeaderExited {
            exit: Exit::Code(0),
            uptime: Duration::from_secs(30),
        },
        Event::GroupGone,
        Event::Reconfigured { autostart: true },
    ]
}

/// The whole matrix, state × event → (state, actions), for the default-ish config.
#[test]
fn full_matrix() {
    let stop = || vec![Signal(libc::SIGTERM), Arm(Duration::from_secs(5))];
    let start = || vec![Disarm, Spawn];
    let same = |s: State| (s, vec![]);
    let b1 = delay(1, 7);
    #[rustfmt::skip]
    let table: [(State, Row); 9] = [
        //              Start                 Stop                    Spawned                       SpawnFailed                  Exited(0, 30s)                         Deadline                 Kill                 LeaderExited(0, 30s)   GroupGone          Reconfigured
        (NotStarted,  [(Starting, start()), (Stopped, vec![Disarm]), same(NotStarted),             same(NotStarted),            same(NotStarted),                      same(NotStarted),         same(NotStarted),    same(NotStarted),      same(NotStarted),  same(NotStarted)]),
        (Starting,    [same(Starting),      (Stopping, stop()),      (Starting, vec![Arm(Duration::from_secs(1))]), (Backoff, vec![Arm(b1)]), (ExitedExpectedly, vec![Disarm]), same(Running),  same(Starting),      (Stopping, stop()),    same(Starting),    (Stopping, stop())]),
        (Running,     [same(Running),       (Stopping, stop()),      same(Running),                same(Running),               (ExitedExpectedly, vec![Disarm]),      same(Running),            same(Running),       (Stopping, stop()),    same(Running),     (Stopping, stop())]),
        (Backoff,     [(Starting, start()), (Stopped, vec![Disarm]), same(Backoff),                same(Backoff),               same(Backoff),                         (Starting, vec![Spawn]),  same(Backoff),       same(Backoff),         same(Backoff),     (Starting, start())]),
        (Stopping,    [same(Stopping),      same(Stopping),          same(Stopping),               same(Stopping),              (Stopped, vec![Disarm, KillGroup]),    (Stopping, vec![KillGroup]), (Stopping, vec![KillGroup]), (Stopped, vec![Disarm, KillGroup]), same(Stopping), same(Stopping)]),
        (Stopped,     [(Starting, start()), same(Stopped),           same(Stopped),                same(Stopped),               same(Stopped),                         same(Stopped),            same(Stopped),       same(Stopped),         same(Stopped),     same(Stopped)]),
        (ExitedExpectedly,   [(Starting, start()), (Stopped, vec![Disarm]), same(ExitedExpectedly), same(ExitedExpectedly), same(ExitedExpectedly), (Starting, vec![Spawn]), same(ExitedExpectedly), same(ExitedExpectedly), same(ExitedExpectedly), (Starting, start())]),
        (ExitedUnexpectedly, [(Starting, start()), (Stopped, vec![Disarm]), same(ExitedUnexpectedly), same(ExitedUnexpectedly), same(ExitedUnexpectedly), (Starting, vec![Spawn]), same(ExitedUnexpectedly), same(ExitedUnexpectedly), same(ExitedUnexpectedly), (Starting, start())]),
        (Fatal,       [(Starting, start()), (Stopped, vec![Disarm]), same(Fatal),                  same(Fatal),                 same(Fatal),                           same(Fatal),              same(Fatal),         same(Fatal),           same(Fatal),       (Starting, start())]),
    ];
    assert_eq!(table.len(), State::ALL.len());
    for (state, row) in &table {
        for (ev, (want_state, want_acts)) in events().iter().zip(row) {
            let (next, acts) = step(&at(*state), ev, &cfg());
            assert_eq!(
                (next.state, &acts),
                (*want_state, want_acts),
                "{state:?} × {ev:?}"
            );
        }
    }
}

/// Every arrow the table can draw, from the seed's diagram plus the contract's
/// stop/start rules. Anything else is a bug.
const ALLOWED: &[(State, State)] = &[
    (NotStarted, Starting),
    (NotStarted, Stopped),
    (Starting, Running),
    (Starting, Backoff),
    (Starting, Fatal),
    (Starting, Stopping),
    (Starting, ExitedExpectedly),
    (Starting, ExitedUnexpectedly),
    (Running, Stopping),
    (Running, ExitedExpectedly),
    (Running, ExitedUnexpectedly),
    (Running, Starting),
    (Backoff, Starting),
    (Backoff, Stopped),
    (Stopping, Stopped),
    (Stopping, Starting),
    // A leader's own exit, judged once what it left in its group is gone.
    (Stopping, Backoff),
    (Stopping, Fatal),
    (Stopping, ExitedExpectedly),
    (Stopping, ExitedUnexpectedly),
    (ExitedExpectedly, Starting),
    (ExitedExpectedly, Stopped),
    (ExitedUnexpectedly, Starting),
    (ExitedUnexpectedly, Stopped),
    (Stopped, Starting),
    (Fatal, Starting),
    (Fatal, Stopped),
    // A start waiting for its dependencies (`Wait`).
    (Backoff, NotStarted),
    (Stopped, NotStarted),
    (ExitedExpectedly, NotStarted),
    (ExitedUnexpectedly, NotStarted),
    (Fatal, NotStarted),
];

#[test]
fn only_allowed_transitions_over_many_variants() {
    let mut configs = vec![cfg()];
    for policy in [AutoRestart::Always, AutoRestart::Never] {
        let mut c = cfg();
        c.autorestart = policy;
        configs.push(c);
    }
    let mut zero = cfg();
    zero.starttime = Duration::ZERO;
    zero.startretries = 0;
    configs.push(zero.clone());
    for mut c in [cfg(), zero] {
        c.rare.ready = Some(Box::new(super::probe_tests::probe(
            crate::config::Check::Notify,
        )));
        configs.push(c);
    }
    let mut extra = events().to_vec();
    extra.push(Event::Reconfigured { autostart: false });
    extra.extend([
        Event::Ready {
            uptime: Duration::from_millis(300),
        },
        Event::Unhealthy("refused".into()),
    ]);
    extra.extend([exit(1, 0), exit(0, 0), exit(1, 30)]);
    extra.push(Event::Wait("waiting for db (ready)".into()));
    extra.push(Event::Exited {
        exit: Exit::Signal(libc::SIGKILL),
        uptime: Duration::from_secs(3),
    });
    for c in &configs {
        for s in State::ALL {
            for attempts in [0, 3, 9] {
                for (flag, drain) in [false, true].into_iter().zip([None, drained(Running)]) {
                    let verdict = [None, Some(Verdict::Unhealthy)][usize::from(flag)].clone();
                    let p = Proc {
                        attempts,
                        crashes: attempts,
                        start_after_stop: flag && attempts != 3,
                        drain: drain.filter(|_| s == Stopping),
                        verdict: verdict.filter(|_| s == Stopping),
                        ..at(s)
                    };
                    for ev in &extra {
                        let (n, _) = step(&p, ev, c);
                        assert!(
                            n.state == s || ALLOWED.contains(&(s, n.state)),
                            "{s:?} -> {:?} on {ev:?}",
                            n.state
                        );
                    }
                }
            }
        }
    }
}

/// A start held back by the gate: from rest to NOT_STARTED with the reason,
/// any retry or restart deadline cancelled; alive processes are untouched.
#[test]
fn wait_holds_only_a_process_at_rest() {
    let ev = Event::Wait("waiting for db (ready)".into());
    for s in State::ALL {
        let (n, acts) = step(&at(s), &ev, &cfg());
        if s.is_alive() {
            assert_eq!((n.state, acts), (s, vec![]), "{s:?}");
        } else {
            assert_eq!((n.state, acts), (NotStarted, vec![Disarm]), "{s:?}");
            assert_eq!(n.message, "waiting for db (ready)");
        }
    }
}

/// Drives a process through repeated failed starts.
fn fail_until_fatal(c: &Program, failure: Event) -> (u32, Vec<Duration>, Proc) {
    let (mut p, _) = step(&at(NotStarted), &Event::Start, c);
    let (mut spawns, mut waits) = (1, vec![]);
    loop {
        let (n, acts) = step(&p, &failure, c);
        p = n;
        match p.state {
            Fatal => {
                assert_eq!(acts, vec![Disarm]);
                assert_eq!(entered(Starting, Fatal, &acts), vec![Fatal]);
                assert_eq!(entered(Fatal, Fatal, &[]), vec![], "no change, no event");
                return (spawns, waits, p);
            }
            Backoff => {
                let [Arm(d)] = acts[..] else {
                    panic!("{acts:?}")
                };
                waits.push(d);
                let (n, acts) = step(&p, &Event::Deadline, c);
                assert_eq!((n.state, acts), (Starting, vec![Spawn]));
                p = n;
                spawns += 1;
            }
            s => panic!("unexpected {s:?}"),
        }
    }
}

#[test]
fn startretries_n_means_n_plus_one_spawns() {
    for retries in [0, 1, 2, 5] {
        let mut c = cfg();
        c.startretries = retries;
        let (spawns, waits, p) = fail_until_fatal(&c, exit(1, 0));
        assert_eq!(spawns, retries + 1);
        assert_eq!(waits.len() as u32, retries);
        assert_eq!(p.attempts, retries + 1);
        // "1 attempt", not "1 attempts": the text is read by people.
        let want = match retries {
            0 => "gave up after 1 attempt: ".to_string(),
            r => format!("gave up after {} attempts: ", r + 1),
        };
        assert!(p.message.starts_with(&want), "{}", p.message);
        let (spawns, _, p) = fail_until_fatal(&c, Event::SpawnFailed("No such file".into()));
        assert_eq!(spawns, retries + 1);
        assert!(
            p.message.contains("spawn error: No such file"),
            "{}",
            p.message
        );
    }
}

#[test]
fn backoff_grows_capped_with_jitter() {
    let mut c = cfg();
    c.startretries = 10;
    let (_, waits, _) = fail_until_fatal(&c, exit(1, 0));
    let bases = [1u64, 2, 4, 8, 16, 32, 60, 60, 60, 60];
    for (w, base) in waits.iter().zip(bases) {
        let ms = w.as_millis() as u64;
        assert!(ms >= base * 900 && ms <= base * 1100, "{ms} vs {base}s");
    }
    let spread: std::collections::HashSet<_> = (0..20).map(|seed| delay(3, seed)).collect();
    assert!(spread.len() > 5, "jitter differs between processes");
}

#[test]
fn user_start_resets_retries_and_fatal_only_leaves_by_start() {
    let mut c = cfg();
    c.startretries = 0;
    let (_, _, p) = fail_until_fatal(&c, exit(1, 0));
    assert_eq!(step(&p, &Event::Deadline, &c).0.state, Fatal);
    let (n, acts) = step(&p, &Event::Start, &c);
    assert_eq!(
        (n.state, n.attempts, acts),
        (Starting, 0, vec![Disarm, Spawn])
    );
}

#[test]
fn autorestart_against_exitcodes() {
    let killed = Event::Exited {
        exit: Exit::Signal(libc::SIGKILL),
        uptime: Duration::from_secs(30),
    };
    let cases = [
        (
            AutoRestart::Unexpected,
            exit(0, 30),
            ExitedExpectedly,
            false,
        ),
        (AutoRestart::Unexpected, exit(2, 30), Starting, true),
        (AutoRestart::Unexpected, killed.clone(), Starting, true),
        (AutoRestart::Always, exit(0, 30), Starting, true),
        (AutoRestart::Never, exit(2, 30), ExitedUnexpectedly, false),
        (AutoRestart::Never, killed, ExitedUnexpectedly, false),
    ];
    for (policy, ev, want, spawn) in cases {
        let mut c = cfg();
        c.autorestart = policy;
        c.exitcodes = vec![0];
        let (n, acts) = step(&at(Running), &ev, &c);
        assert_eq!(n.state, want, "{policy:?} {ev:?}");
        assert_eq!(acts.contains(&Spawn), spawn);
        assert_eq!(n.restarts, u32::from(spawn));
    }
    // A code listed in exitcodes is expected; death by a signal never is.
    let mut c = cfg();
    c.exitcodes = vec![0, 2];
    c.autorestart = AutoRestart::Never;
    assert_eq!(
        step(&at(Running), &exit(2, 30), &c).0.state,
        ExitedExpectedly
    );
}

#[test]
fn crash_loop_after_running_waits_growing_delays_never_fatal() {
    let c = cfg(); // unexpected: exit 1 restarts
    let mut p = at(Running);
    let mut waits = vec![];
    for _ in 0..8 {
        let (n, acts) = step(&p, &exit(1, 2), &c);
        p = n;
        assert_ne!(p.state, Fatal);
        if p.state == ExitedUnexpectedly {
            let [Arm(d)] = acts[..] else {
                panic!("{acts:?}")
            };
            assert!(p.message.contains("restarting in"), "{}", p.message);
            waits.push(d.as_millis() as u64);
            p = step(&p, &Event::Deadline, &c).0;
        } else {
            assert_eq!(acts, vec![Passed(ExitedUnexpectedly), Disarm, Spawn]);
            waits.push(0);
        }
        assert_eq!(p.state, Starting);
        p = step(&p, &Event::Deadline, &c).0;
        assert_eq!(p.state, Running);
    }
    for (ms, base) in waits.iter().zip([0u64, 1, 2, 4, 8, 16, 32, 60]) {
        assert!(*ms >= base * 900 && *ms <= base * 1100, "{waits:?}");
    }
    // Staying RUNNING 10 s resets it: the next exit restarts at once.
    let (n, acts) = step(&p, &exit(1, 1 + 10), &c);
    let passed = Passed(ExitedUnexpectedly);
    assert_eq!((n.state, acts), (Starting, vec![passed, Disarm, Spawn]));
    assert_eq!(n.restarts, 9);
}

#[test]
fn starttime_zero_is_running_at_once() {
    let mut c = cfg();
    c.starttime = Duration::ZERO;
    let (n, acts) = step(&at(Starting), &Event::Spawned, &c);
    assert_eq!((n.state, acts), (Running, vec![Disarm]));
}

#[test]
fn early_exit_is_a_failed_start_even_when_expected() {
    let (n, _) = step(&at(Starting), &exit(0, 0), &cfg());
    assert_eq!(n.state, Backoff);
    assert_eq!(n.last_exit, Some(Exit::Code(0)));
    assert!(
        n.message.starts_with("exited too quickly (exit status 0)"),
        "{}",
        n.message
    );
}

#[test]
fn start_during_stopping_restarts_after_exit() {
    let (p, _) = step(&at(Running), &Event::Stop, &cfg());
    let (p, acts) = step(&p, &Event::Start, &cfg());
    assert_eq!(
        (p.state, acts, p.start_after_stop),
        (Stopping, vec![], true)
    );
    let (p, acts) = step(&p, &exit(0, 3), &cfg());
    assert_eq!((p.state, acts), (Starting, vec![Disarm, KillGroup, Spawn]));
    // A stop after the start cancels it again.
    let (p, _) = step(&at(Running), &Event::Stop, &cfg());
    let (p, _) = step(&p, &Event::Start, &cfg());
    let (p, _) = step(&p, &Event::Stop, &cfg());
    assert_eq!(step(&p, &exit(0, 3), &cfg()).0.state, Stopped);
}

#[test]
fn stop_timeout_kills_and_stays_stopping() {
    let (p, _) = step(&at(Running), &Event::Stop, &cfg());
    let (p, acts) = step(&p, &Event::Deadline, &cfg());
    assert_eq!((p.state, acts), (Stopping, vec![KillGroup]));
    assert!(p.message.contains("SIGKILL after stoptime"));
    let (p, _) = step(
        &p,
        &Event::Exited {
            exit: Exit::Signal(libc::SIGKILL),
            uptime: Duration::from_secs(9),
        },
        &cfg(),
    );
    assert_eq!(p.state, Stopped);
    assert_eq!(p.message, "killed by SIGKILL");
}

fn drained(from: State) -> Option<Drain> {
    Some(Drain {
        from,
        exit: Exit::Code(1),
        uptime: Duration::from_secs(30),
    })
}

/// A leader that exits by itself leaving its group behind: the group gets the
/// stopsignal, SIGKILL after stoptime, and only then does the exit count.
#[test]
fn leftover_group_is_stopped_before_the_exit_counts() {
    let c = cfg();
    let left = Event::LeaderExited {
        exit: Exit::Code(1),
        uptime: Duration::from_secs(30),
    };
    let (p, acts) = step(&at(Running), &left, &c);
    assert_eq!(p.state, Stopping);
    assert_eq!(
        acts,
        vec![Signal(libc::SIGTERM), Arm(Duration::from_secs(5))]
    );
    assert!(p.message.contains("exit status 1"), "{}", p.message);
    // stoptime passes: SIGKILL, and a recheck later.
    let (p, acts) = step(&p, &Event::Deadline, &c);
    assert_eq!(
        (p.state, acts),
        (Stopping, vec![KillGroup, Arm(DRAIN_RECHECK)])
    );
    // The group is gone: judged as an unexpected exit after RUNNING → restarted.
    let (p, acts) = step(&p, &Event::GroupGone, &c);
    assert_eq!(p.state, Starting);
    let passed = Passed(ExitedUnexpectedly);
    assert_eq!(acts, vec![Disarm, passed, Disarm, Spawn]);
    assert_eq!(
        entered(Stopping, Starting, &acts),
        [ExitedUnexpectedly, Starting]
    );
    assert_eq!(p.restarts, 1);
    assert!(p.drain.is_none());
    // Before starttime it is a failed start.
    let early = Event::LeaderExited {
        exit: Exit::Code(1),
        uptime: Duration::from_millis(100),
    };
    let (p, _) = step(&at(Starting), &early, &c);
    let (p, _) = step(&p, &Event::GroupGone, &c);
    assert_eq!(p.state, Backoff);
}

#[test]
fn stop_or_start_while_draining() {
    let c = cfg();
    let draining = Proc {
        drain: drained(Running),
        ..at(Stopping)
    };
    let (p, acts) = step(&draining, &Event::Stop, &c);
    assert_eq!((p.state, acts), (Stopped, vec![Disarm, KillGroup]));
    assert_eq!(p.message, "exit status 1");
    let (p, acts) = step(&draining, &Event::Start, &c);
    assert!(acts.is_empty() && p.start_after_stop);
    let (p, acts) = step(&p, &Event::GroupGone, &c);
    assert_eq!((p.state, acts), (Starting, vec![Disarm, Spawn]));
    assert_eq!(p.restarts, 0, "a user start resets the counters");
}

/// A reload that changes what a process is respects the operator's intent.
#[test]
fn reload_restarts_only_what_runs_or_should_run() {
    let c = cfg();
    let user_stopping = Proc {
        start_after_stop: false,
        ..at(Stopping)
    };
    for (p, autostart, restarts) in [
        (at(Running), true, true),
        (at(Starting), false, true),
        (at(Backoff), false, true),
        (at(Fatal), true, true),
        (at(Fatal), false, false),
        (at(ExitedUnexpectedly), true, true),
        (at(ExitedExpectedly), false, false),
        (at(Stopped), true, false),
        (at(NotStarted), true, false),
        (user_stopping.clone(), true, false),
    ] {
        assert_eq!(
            restarts_on_reload(&p, autostart, &c),
            restarts,
            "{:?} autostart {autostart}",
            p.state
        );
    }
    let (p, acts) = step(&at(Running), &Event::Reconfigured { autostart: true }, &c);
    assert_eq!(p.state, Stopping);
    assert!(p.start_after_stop, "comes back with the new settings");
    assert_eq!(
        acts,
        vec![Signal(libc::SIGTERM), Arm(Duration::from_secs(5))]
    );
    let (p, acts) = step(&user_stopping, &Event::Reconfigured { autostart: true }, &c);
    assert_eq!(
        (p.state, acts, p.start_after_stop),
        (Stopping, vec![], false)
    );
}

#[path = "state_proptests.rs"]
mod proptests;
