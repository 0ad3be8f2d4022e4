//! Property test of the state table against a model of the world it drives:
//! random but possible event sequences (an exit only from a live process, a
//! deadline only when armed, `Spawned` or `SpawnFailed` right after a
//! `Spawn`) never leave the allowed transitions and never lose a process.
//!
//! "Never lose a pid", from the Action stream: every `Spawn` is matched by
//! exactly one end (its exit, or `SpawnFailed`) before the next `Spawn`, and
//! what its group left behind is killed first; a live process always shows a
//! live state (the daemon still watches it), a live state always has a
//! process or a group being drained; a state that waits for a timer has one,
//! and one that waits for nothing has neither a timer nor a group left.

use super::super::*;
use super::ALLOWED;
use proptest::prelude::*;
use Action::*;
use State::*;

/// What exists outside the table, as the supervisor would see it.
#[derive(Debug, Default)]
struct World {
    /// A spawned leader not yet reaped.
    leader: bool,
    /// Members of its process group other than the leader are alive.
    members: bool,
    /// The process's one deadline is set.
    armed: bool,
}

/// One step's randomness: which possible event, and its details.
#[derive(Clone, Debug)]
struct Pick {
    which: prop::sample::Index,
    exit: Exit,
    uptime: Duration,
    /// A child of the leader lives on after it (its group is not empty).
    left: bool,
    spawn_ok: bool,
    autostart: bool,
}

fn pick() -> impl Strategy<Value = Pick> {
    let exit = prop_oneof![
        (0i32..3).prop_map(Exit::Code),
        prop::sample::select(vec![libc::SIGKILL, libc::SIGTERM]).prop_map(Exit::Signal),
    ];
    let uptime = prop::sample::select(vec![0u64, 500, 1000, 3000, 30_000]);
    (
        any::<prop::sample::Index>(),
        exit,
        uptime,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(which, exit, ms, left, spawn_ok, autostart)| Pick {
            which,
            exit,
            uptime: Duration::from_millis(ms),
            left,
            spawn_ok,
            autostart,
        })
}

fn program() -> impl Strategy<Value = Program> {
    let policy = prop::sample::select(vec![
        AutoRestart::Always,
        AutoRestart::Never,
        AutoRestart::Unexpected,
    ]);
    let shape = (any::<bool>(), 0u32..4, policy, any::<bool>(), any::<bool>());
    shape.prop_map(|(zero, retries, policy, two, probe)| {
        let mut c = Program::new("t", "sleep 1");
        // With a `ready:` probe, STARTING ends by `Ready` or by starttime
        // running out (a failed start); healthchecks feed `Unhealthy`.
        if probe {
            let p = crate::config::Probe {
                check: crate::config::Check::File("/nonexistent".into()),
                interval: Duration::from_millis(500),
                timeout: Duration::from_secs(2),
                retries: 3,
                per_process: None,
            };
            c.rare.ready = Some(Box::new(p.clone()));
            c.rare.healthcheck = Some(Box::new(p));
        }
        c.starttime = if zero {
            Duration::ZERO
        } else {
            Duration::from_secs(1)
        };
        c.startretries = retries;
        c.autorestart = policy;
        c.exitcodes = if two { vec![0, 2] } else { vec![0] };
        c
    })
}

/// The events the supervisor could feed now (never `Spawned`/`SpawnFailed`:
/// those follow a `Spawn` at once).
fn possible(p: &Proc, w: &World, k: &Pick) -> Vec<Event> {
    let mut evs = vec![
        Event::Start,
        Event::Stop,
        Event::Kill,
        Event::Reconfigured {
            autostart: k.autostart,
        },
        // The dependency gate holds a start back (any state: the table
        // ignores it for live ones).
        Event::Wait("waiting for db (ready)".into()),
    ];
    if w.leader {
        // Probe verdicts come only while the process they checked lives.
        evs.push(Event::Ready {
            uptime: Duration::from_millis(300),
        });
        evs.push(Event::Unhealthy("timed out".into()));
    }
    let group_gone = p.drain.is_some() && !w.members;
    if w.armed {
        // supervisor::on_deadline: a drained group found empty is done.
        evs.push(if group_gone {
            Event::GroupGone
        } else {
            Event::Deadline
        });
    }
    if group_gone {
        evs.push(Event::GroupGone); // the SIGCHLD sweep noticed
    }
    if w.leader {
        // supervisor::exited: members left behind by a live state's leader.
        let (exit, uptime) = (k.exit, k.uptime);
        evs.push(if k.left && matches!(p.state, Starting | Running) {
            Event::LeaderExited { exit, uptime }
        } else {
            Event::Exited { exit, uptime }
        });
    }
    evs
}

/// Applies `ev`'s effect on the world before the table sees it.
fn before(w: &mut World, ev: &Event, k: &Pick) {
    match ev {
        Event::Deadline | Event::GroupGone => w.armed = false,
        Event::LeaderExited { .. } => (w.leader, w.members) = (false, k.left),
        // From a STOPPING state the exit is `Exited` even with members left.
        Event::Exited { .. } => (w.leader, w.members) = (false, k.left),
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_env::cases(1024)))]

    #[test]
    fn random_lives_keep_every_process_accounted_for(
        cfg in program(),
        picks in prop::collection::vec(pick(), 1..80),
    ) {
        let mut p = Proc::new(7);
        let mut w = World::default();
        let mut trace = Vec::new();
        for k in &picks {
            let evs = possible(&p, &w, k);
            let mut ev = evs[k.which.index(evs.len())].clone();
            // An event, then at once the outcome of any Spawn it asked for.
            loop {
                before(&mut w, &ev, k);
                let (n, acts) = step(&p, &ev, &cfg);
                trace.push(format!("{:?} --{ev:?}--> {:?} {acts:?}", p.state, n.state));
                prop_assert!(
                    n.state == p.state || ALLOWED.contains(&(p.state, n.state)),
                    "not allowed:\n{}", trace.join("\n")
                );
                let mut spawned = false;
                for a in &acts {
                    match a {
                        Spawn => {
                            prop_assert!(!w.leader, "spawned over a live process:\n{}", trace.join("\n"));
                            prop_assert!(!w.members, "spawned before the old group was killed:\n{}", trace.join("\n"));
                            spawned = true;
                        }
                        // SIGKILL to the group: its members are gone (the
                        // leader, if alive, exits later: that is an event).
                        KillGroup => w.members = false,
                        Arm(_) => w.armed = true,
                        Disarm => w.armed = false,
                        Signal(_) | Passed(_) => {}
                    }
                }
                p = n;
                if !spawned {
                    break;
                }
                w.leader = k.spawn_ok;
                ev = if k.spawn_ok {
                    Event::Spawned
                } else {
                    Event::SpawnFailed("ENOENT".into())
                };
            }
            let t = || trace.join("\n");
            prop_assert!(!w.leader || p.state.is_alive(), "a live process is forgotten:\n{}", t());
            prop_assert!(
                !matches!(p.state, Starting | Running) || w.leader,
                "no process behind {:?}:\n{}", p.state, t()
            );
            prop_assert!(p.state != Stopping || w.leader || p.drain.is_some(), "stopping nothing:\n{}", t());
            prop_assert!(p.drain.is_none() || (p.state == Stopping && !w.leader), "bad drain:\n{}", t());
            prop_assert!(p.state != Backoff || w.armed, "BACKOFF without a timer:\n{}", t());
            prop_assert!(
                !matches!(p.state, NotStarted | Stopped | Fatal) || !w.armed,
                "a stale timer in {:?}:\n{}", p.state, t()
            );
            prop_assert!(
                !matches!(p.state, NotStarted | Stopped | Fatal) || !w.members,
                "a group left behind in {:?}:\n{}", p.state, t()
            );
            prop_assert!(
                p.state != Starting || cfg.starttime.is_zero() || w.armed,
                "STARTING without a timer:\n{}", t()
            );
            prop_assert!(
                !p.message.contains("restarting in") || w.armed || p.state != ExitedUnexpectedly,
                "a restart that never comes:\n{}", t()
            );
        }
    }
}
