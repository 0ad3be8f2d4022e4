//! The state table with `ready:` and `healthcheck:` probes: the `Ready` and
//! `Unhealthy` events, and how the daemon's own stops are judged.

use super::tests::{at, exit};
use super::*;
use crate::config::{Check, Probe};
use Action::*;
use State::*;

pub(super) fn probe(check: Check) -> Probe {
    Probe {
        check,
        interval: Duration::from_millis(500),
        timeout: Duration::from_secs(2),
        retries: 3,
        per_process: None,
    }
}

fn cfg() -> Program {
    let mut c = Program::new("t", "sleep 1");
    c.starttime = Duration::from_secs(1);
    c.stoptime = Duration::from_secs(5);
    c.startretries = 3;
    c.rare.ready = Some(Box::new(probe(Check::Notify)));
    c.rare.healthcheck = Some(Box::new(probe(Check::Tcp(([127, 0, 0, 1], 9).into()))));
    c
}

/// Expected (state, actions) for each event of `probe_matrix`, in order.
type Row = [(State, Vec<Action>); 5];

/// State × the probe events, and the events whose meaning a `ready:` probe
/// changes (Spawned, Deadline, an exit while STARTING).
#[test]
fn probe_matrix() {
    let stop = || vec![Signal(libc::SIGTERM), Arm(Duration::from_secs(5))];
    let same = |s: State| (s, vec![]);
    let events = [
        Event::Ready {
            uptime: Duration::from_millis(300),
        },
        Event::Unhealthy("connection refused".into()),
        Event::Spawned,
        Event::Deadline,
        exit(0, 30),
    ];
    let b1 = delay(1, 7);
    let arm1 = vec![Arm(Duration::from_secs(1))];
    #[rustfmt::skip]
    let table: [(State, Row); 9] = [
        //              Ready                       Unhealthy             Spawned              Deadline                   Exited(0, 30s)
        (NotStarted,  [same(NotStarted),          same(NotStarted),     same(NotStarted),    same(NotStarted),          same(NotStarted)]),
        (Starting,    [(Running, vec![Disarm]),   same(Starting),       (Starting, arm1),    (Stopping, stop()),        (Backoff, vec![Arm(b1)])]),
        (Running,     [same(Running),             (Stopping, stop()),   same(Running),       same(Running),             (ExitedExpectedly, vec![Disarm])]),
        (Backoff,     [same(Backoff),             same(Backoff),        same(Backoff),       (Starting, vec![Spawn]),   same(Backoff)]),
        (Stopping,    [same(Stopping),            same(Stopping),       same(Stopping),      (Stopping, vec![KillGroup]), (Stopped, vec![Disarm, KillGroup])]),
        (Stopped,     [same(Stopped),             same(Stopped),        same(Stopped),       same(Stopped),             same(Stopped)]),
        (ExitedExpectedly,   [same(ExitedExpectedly),   same(ExitedExpectedly),   same(ExitedExpectedly),   (Starting, vec![Spawn]), same(ExitedExpectedly)]),
        (ExitedUnexpectedly, [same(ExitedUnexpectedly), same(ExitedUnexpectedly), same(ExitedUnexpectedly), (Starting, vec![Spawn]), same(ExitedUnexpectedly)]),
        (Fatal,       [same(Fatal),               same(Fatal),          same(Fatal),         same(Fatal),               same(Fatal)]),
    ];
    for (state, row) in &table {
        for (ev, (want_state, want_acts)) in events.iter().zip(row) {
            let (next, acts) = step(&at(*state), ev, &cfg());
            assert_eq!(
                (next.state, &acts),
                (*want_state, want_acts),
                "{state:?} × {ev:?}"
            );
        }
    }
}

#[test]
fn never_ready_is_a_failed_start_until_fatal() {
    let c = cfg();
    let (mut p, acts) = step(&at(NotStarted), &Event::Start, &c);
    assert_eq!(acts, vec![Disarm, Spawn]);
    let mut spawns = 1;
    loop {
        p = step(&p, &Event::Spawned, &c).0;
        let (n, acts) = step(&p, &Event::Deadline, &c);
        assert_eq!(
            (n.state, &acts[..1]),
            (Stopping, &[Signal(libc::SIGTERM)][..])
        );
        assert_eq!(n.message, "not ready after 1.0s; stopping it");
        // It obeys its stopsignal: the end is a failed start, not STOPPED.
        let (n, acts) = step(&n, &exit(0, 2), &c);
        assert_eq!(acts[..2], [Disarm, KillGroup]);
        assert_eq!(n.verdict, None);
        if n.state == Fatal {
            assert_eq!(n.message, "gave up after 4 attempts: not ready after 1.0s");
            break;
        }
        assert_eq!(n.state, Backoff);
        assert!(
            n.message.starts_with("not ready after 1.0s; retry in "),
            "{}",
            n.message
        );
        let (n, acts) = step(&n, &Event::Deadline, &c);
        assert_eq!((n.state, acts), (Starting, vec![Spawn]));
        spawns += 1;
        p = n;
    }
    assert_eq!(spawns, 4, "startretries 3 = 4 spawns");
}

#[test]
fn ready_wins_over_starttime_and_zero_means_no_bound() {
    let mut c = cfg();
    let (p, _) = step(&at(Starting), &Event::Spawned, &c);
    let (p, acts) = step(
        &p,
        &Event::Ready {
            uptime: Duration::from_millis(300),
        },
        &c,
    );
    assert_eq!((p.state, acts), (Running, vec![Disarm]));
    c.starttime = Duration::ZERO;
    let (p, acts) = step(&at(Starting), &Event::Spawned, &c);
    assert_eq!((p.state, acts), (Starting, vec![]), "waits for the probe");
    // An exit before readiness is a failed start however long it ran.
    let (p, _) = step(&p, &exit(0, 3600), &c);
    assert_eq!(p.state, Backoff);
    assert!(p
        .message
        .starts_with("exited before it was ready (exit status 0)"));
}

#[test]
fn unhealthy_end_is_an_unexpected_exit_whatever_its_code() {
    let mut c = cfg();
    let (p, acts) = step(&at(Running), &Event::Unhealthy("timed out".into()), &c);
    assert_eq!(
        acts,
        vec![Signal(libc::SIGTERM), Arm(Duration::from_secs(5))]
    );
    assert_eq!(p.verdict, Some(Verdict::Unhealthy));
    assert_eq!(p.message, "unhealthy: timed out; stopping it");
    // exit 0 is in exitcodes, but the daemon stopped it for being unhealthy.
    let (n, acts) = step(&p, &exit(0, 60), &c);
    assert_eq!(
        acts,
        vec![Disarm, KillGroup, Passed(ExitedUnexpectedly), Disarm, Spawn]
    );
    assert_eq!((n.state, n.restarts), (Starting, 1));
    assert!(
        n.message
            .starts_with("unhealthy, exit status 0, unexpected"),
        "{}",
        n.message
    );
    c.autorestart = AutoRestart::Never;
    let (n, _) = step(&p, &exit(0, 60), &c);
    assert_eq!(n.state, ExitedUnexpectedly);
    // SIGKILL after stoptime does not change how it ends.
    let (p, acts) = step(&p, &Event::Deadline, &c);
    assert_eq!((p.state, acts), (Stopping, vec![KillGroup]));
    let killed = Event::Exited {
        exit: Exit::Signal(libc::SIGKILL),
        uptime: Duration::from_secs(60),
    };
    assert_eq!(step(&p, &killed, &c).0.state, ExitedUnexpectedly);
}

#[test]
fn the_operator_wins_over_a_verdict() {
    let c = cfg();
    let (p, _) = step(&at(Running), &Event::Unhealthy("refused".into()), &c);
    // stop: it ends STOPPED, not restarted.
    let (s, _) = step(&p, &Event::Stop, &c);
    assert_eq!((s.state, s.verdict.clone()), (Stopping, None));
    assert_eq!(step(&s, &exit(0, 60), &c).0.state, Stopped);
    // start (restart): a fresh start with reset counters.
    let (s, _) = step(&p, &Event::Start, &c);
    let (n, acts) = step(&s, &exit(0, 60), &c);
    assert_eq!((n.state, n.restarts), (Starting, 0));
    assert_eq!(acts, vec![Disarm, KillGroup, Spawn]);
    // A not-ready process being stopped: a stop ends it STOPPED too.
    let (p, _) = step(&at(Starting), &Event::Deadline, &c);
    let (s, _) = step(&p, &Event::Stop, &c);
    assert_eq!(step(&s, &exit(0, 2), &c).0.state, Stopped);
}

/// With a probe, starttime is only an upper bound: a process ready after 1 s
/// that crashes 25 s later ran 24 s, a stable run, not a crash loop (the old
/// clock, uptime − starttime, saw 0 s and slowed every restart down).
#[test]
fn the_crash_loop_clock_starts_when_the_probe_passed() {
    let mut c = cfg();
    c.starttime = Duration::from_secs(30);
    c.autorestart = AutoRestart::Always;
    let mut p = at(Starting);
    for round in 0..3 {
        (p, _) = step(&p, &Event::Spawned, &c);
        let ready = Event::Ready {
            uptime: Duration::from_secs(1),
        };
        (p, _) = step(&p, &ready, &c);
        assert_eq!(
            (p.state, p.ready_after),
            (Running, Some(Duration::from_secs(1)))
        );
        let acts;
        (p, acts) = step(&p, &exit(1, 25), &c);
        assert_eq!(
            (p.state, p.crashes),
            (Starting, 0),
            "round {round}: {}",
            p.message
        );
        assert!(acts.contains(&Spawn), "round {round}: restarted at once");
    }
    // A real crash loop (ready, then dead within 10 s) still backs off.
    (p, _) = step(&p, &Event::Spawned, &c);
    assert_eq!(p.ready_after, None, "a new spawn has not been ready yet");
    for _ in 0..2 {
        let ready = Event::Ready {
            uptime: Duration::from_secs(1),
        };
        (p, _) = step(&p, &ready, &c);
        (p, _) = step(&p, &exit(1, 3), &c);
        if p.state == Starting {
            (p, _) = step(&p, &Event::Spawned, &c);
        }
    }
    assert!(p.message.contains("restarting in"), "{}", p.message);
}
