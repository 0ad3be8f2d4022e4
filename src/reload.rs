//! The pure diff between two configurations: what a reload must do to each
//! program, and the lines that say so.

use crate::config::expand::templates_differ;
use crate::config::{probes_differ, Config, Program};

#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    Added,
    Removed,
    Changed {
        /// Keys that change what the process *is*: restart its processes.
        restart: Vec<&'static str>,
        /// Keys that change how it is *watched*: applied in place.
        update: Vec<&'static str>,
        /// numprocs old → new.
        scale: Option<(u32, u32)>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub programs: Vec<(String, Change)>,
}

/// Keys whose change restarts the processes.
fn identity(a: &Program, b: &Program) -> Vec<&'static str> {
    // Compared after expansion: process 0's values, then the others' where
    // a `%(process_num)` template changed.
    let t = templates_differ(a, b);
    let pairs: [(&'static str, bool); 11] = [
        ("cmd", a.argv != b.argv || t[0]),
        ("env", a.env != b.env || t[1]),
        ("workingdir", a.workingdir != b.workingdir || t[2]),
        ("umask", a.umask != b.umask),
        ("stdout", a.stdout != b.stdout || t[3]),
        ("stderr", a.stderr != b.stderr || t[4]),
        ("user", a.user != b.user),
        ("group", a.group != b.group),
        ("rlimits", a.rlimits != b.rlimits),
        // Both change how the child's fds 1 and 2 are set up at spawn.
        ("redirect_stderr", a.redirect_stderr != b.redirect_stderr),
        ("attach", a.attach != b.attach),
    ];
    changed(&pairs)
}

fn changed(pairs: &[(&'static str, bool)]) -> Vec<&'static str> {
    pairs.iter().filter(|(_, c)| *c).map(|(k, _)| *k).collect()
}

/// Keys applied in place.
fn watch(a: &Program, b: &Program) -> Vec<&'static str> {
    let n = a.numprocs.min(b.numprocs);
    let pairs: [(&'static str, bool); 19] = [
        ("autorestart", a.autorestart != b.autorestart),
        ("exitcodes", a.exitcodes != b.exitcodes),
        ("startretries", a.startretries != b.startretries),
        ("starttime", a.starttime != b.starttime),
        ("stopsignal", a.stopsignal != b.stopsignal),
        ("stoptime", a.stoptime != b.stoptime),
        ("autostart", a.autostart != b.autostart),
        (
            "fatal_state_report_address",
            a.rare.report_address != b.rare.report_address,
        ),
        (
            "report_events",
            a.rare.report_events != b.rare.report_events,
        ),
        (
            "report_command",
            a.rare.report_command != b.rare.report_command,
        ),
        ("cmd text", a.cmd_text != b.cmd_text && a.argv == b.argv),
        // Rotation is done by the daemon as it writes: the child never knows.
        (
            "stdout_maxbytes",
            a.rare.stdout_maxbytes != b.rare.stdout_maxbytes,
        ),
        (
            "stdout_backups",
            a.rare.stdout_backups != b.rare.stdout_backups,
        ),
        (
            "stderr_maxbytes",
            a.rare.stderr_maxbytes != b.rare.stderr_maxbytes,
        ),
        (
            "stderr_backups",
            a.rare.stderr_backups != b.rare.stderr_backups,
        ),
        // The order is the supervisor's business: the running child never knows.
        ("depends_on", a.rare.depends_on != b.rare.depends_on),
        ("priority", a.priority != b.priority),
        // Probes are the daemon's: applied from the next check on.
        // Compared after expansion, for the processes both versions have.
        (
            "ready",
            probes_differ(a.rare.ready.as_deref(), b.rare.ready.as_deref(), n),
        ),
        (
            "healthcheck",
            probes_differ(
                a.rare.healthcheck.as_deref(),
                b.rare.healthcheck.as_deref(),
                n,
            ),
        ),
    ];
    changed(&pairs)
}

pub fn diff(old: &Config, new: &Config) -> Plan {
    let mut programs = Vec::new();
    for o in &old.programs {
        match new.programs.iter().find(|n| n.name == o.name) {
            None => programs.push((o.name.clone(), Change::Removed)),
            Some(n) if n == o => {}
            Some(n) => programs.push((
                o.name.clone(),
                Change::Changed {
                    restart: identity(o, n),
                    update: watch(o, n),
                    scale: (o.numprocs != n.numprocs).then_some((o.numprocs, n.numprocs)),
                },
            )),
        }
    }
    for n in &new.programs {
        if !old.programs.iter().any(|o| o.name == n.name) {
            programs.push((n.name.clone(), Change::Added));
        }
    }
    programs.sort_by(|a, b| a.0.cmp(&b.0));
    Plan { programs }
}

/// One line per change, as `reload` replies and the log records.
/// `restarts(name)` says whether an identity change would restart any process
/// of that program (the operator's stopped processes stay stopped).
pub fn lines(plan: &Plan, restarts: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for (name, change) in &plan.programs {
        match change {
            Change::Added => out.push(format!("added {name}")),
            Change::Removed => out.push(format!("removed {name}")),
            Change::Changed {
                restart,
                update,
                scale,
            } => {
                if !restart.is_empty() {
                    if restarts(name) {
                        out.push(format!("restarted {name} ({} changed)", restart.join(", ")));
                    } else {
                        out.push(format!(
                            "updated {name} ({}, stays stopped)",
                            restart.join(", ")
                        ));
                    }
                }
                if !update.is_empty() {
                    out.push(format!("updated {name} ({})", update.join(", ")));
                }
                if let Some((a, b)) = scale {
                    out.push(format!("scaled {name} {a}→{b}"));
                }
            }
        }
    }
    out
}

/// A top-level setting a reload changes by rebinding or reopening.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Top {
    Logfile,
    Socket,
    Listen,
    Metrics,
}

/// The top-level changes from `old` to `new`, in the order they are applied.
pub fn top(old: &Config, new: &Config) -> Vec<Top> {
    let mut v = Vec::new();
    if old.logfile != new.logfile {
        v.push(Top::Logfile);
    }
    if (&old.socket, old.socket_mode, &old.socket_group)
        != (&new.socket, new.socket_mode, &new.socket_group)
    {
        v.push(Top::Socket);
    }
    if old.listen != new.listen {
        v.push(Top::Listen);
    }
    if old.metrics_listen != new.metrics_listen {
        v.push(Top::Metrics);
    }
    v
}

impl Top {
    pub fn key(self) -> &'static str {
        match self {
            Top::Logfile => "logfile",
            Top::Socket => "socket",
            Top::Listen => "listen",
            Top::Metrics => "metrics_listen",
        }
    }

    pub fn value(self, c: &Config) -> String {
        match self {
            Top::Logfile => c.logfile.display().to_string(),
            Top::Socket => c.socket.display().to_string(),
            Top::Listen => c
                .listen
                .map_or_else(|| "off".to_string(), |a| a.to_string()),
            Top::Metrics => crate::listen::show_listen(c.metrics_listen),
        }
    }

    /// The line for a change applied (or, with --dry-run, to apply).
    pub fn line(self, new: &Config) -> String {
        let verb = match self {
            Top::Logfile => "reopened",
            Top::Socket | Top::Listen | Top::Metrics => "rebound",
        };
        format!("{verb} {} {}", self.key(), self.value(new))
    }

    /// Keeps the old value in `new` after the change failed.
    pub fn keep(self, new: &mut Config, old: &Config) {
        match self {
            Top::Logfile => new.logfile = old.logfile.clone(),
            Top::Socket => new.socket = old.socket.clone(),
            Top::Listen => new.listen = old.listen,
            Top::Metrics => new.metrics_listen = old.metrics_listen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::time::Duration;

    fn conf(progs: &[Program]) -> Config {
        let mut c =
            crate::config::parse(Path::new("/t.yaml"), "programs: {}\n").expect("empty config");
        c.programs = progs.iter().cloned().map(std::rc::Rc::new).collect();
        c
    }

    #[test]
    fn unchanged_added_removed() {
        let a = Program::new("a", "sleep 1");
        let b = Program::new("b", "sleep 2");
        let plan = diff(
            &conf(&[a.clone(), b]),
            &conf(&[a.clone(), Program::new("c", "x")]),
        );
        assert_eq!(
            plan.programs,
            vec![
                ("b".to_string(), Change::Removed),
                ("c".to_string(), Change::Added)
            ]
        );
        assert_eq!(lines(&plan, |_| true), ["removed b", "added c"]);
        assert!(diff(&conf(std::slice::from_ref(&a)), &conf(&[a]))
            .programs
            .is_empty());
    }

    #[test]
    fn identity_restarts_watch_updates_numprocs_scales() {
        let old = Program::new("w", "sleep 1");
        let mut new = Program::new("w", "sleep 2");
        new.env = vec![("A".into(), "1".into())];
        new.stoptime = Duration::from_secs(3);
        new.exitcodes = vec![0, 1];
        new.numprocs = 4;
        let plan = diff(&conf(std::slice::from_ref(&old)), &conf(&[new]));
        assert_eq!(
            lines(&plan, |_| true),
            [
                "restarted w (cmd, env changed)",
                "updated w (exitcodes, stoptime)",
                "scaled w 1→4"
            ]
        );
        let mut only_watch = old.clone();
        only_watch.autorestart = crate::config::AutoRestart::Never;
        only_watch.stopsignal = libc::SIGUSR1;
        let plan = diff(&conf(std::slice::from_ref(&old)), &conf(&[only_watch]));
        assert_eq!(
            lines(&plan, |_| true),
            ["updated w (autorestart, stopsignal)"]
        );
        let cmd_only = diff(
            &conf(std::slice::from_ref(&old)),
            &conf(&[Program::new("w", "sleep 9")]),
        );
        assert_eq!(
            lines(&cmd_only, |_| false),
            ["updated w (cmd, stays stopped)"]
        );
        let mut each = Vec::new();
        for f in [
            |p: &mut Program| p.workingdir = Some("/x".into()),
            |p: &mut Program| p.umask = Some(0o22),
            |p: &mut Program| p.stdout = Some("/o".into()),
            |p: &mut Program| p.stderr = Some("/e".into()),
            |p: &mut Program| {
                p.user = Some(Box::new(crate::config::RunAs {
                    name: "u".into(),
                    uid: 1,
                    gid: 1,
                    home: "/".into(),
                    shell: "/bin/sh".into(),
                }))
            },
            |p: &mut Program| p.group = Some(Box::new(("g".into(), 1))),
            |p: &mut Program| {
                p.rlimits = vec![crate::config::Rlimit {
                    name: "nofile",
                    value: Some(64),
                }]
            },
            |p: &mut Program| p.redirect_stderr = true,
            |p: &mut Program| p.attach = true,
        ] {
            let mut n = old.clone();
            f(&mut n);
            each.extend(lines(
                &diff(&conf(std::slice::from_ref(&old)), &conf(&[n])),
                |_| true,
            ));
        }
        assert_eq!(
            each,
            [
                "restarted w (workingdir changed)",
                "restarted w (umask changed)",
                "restarted w (stdout changed)",
                "restarted w (stderr changed)",
                "restarted w (user changed)",
                "restarted w (group changed)",
                "restarted w (rlimits changed)",
                "restarted w (redirect_stderr changed)",
                "restarted w (attach changed)"
            ]
        );
    }

    #[test]
    fn rotation_keys_apply_in_place() {
        let old = Program::new("w", "sleep 1");
        let mut new = old.clone();
        new.rare.stdout_maxbytes = 1 << 20;
        new.rare.stdout_backups = 2;
        new.rare.stderr_maxbytes = 1 << 10;
        new.rare.stderr_backups = 0;
        let plan = diff(&conf(std::slice::from_ref(&old)), &conf(&[new]));
        assert_eq!(
            lines(&plan, |_| true),
            ["updated w (stdout_maxbytes, stdout_backups, stderr_maxbytes, stderr_backups)"]
        );
        let mut joined = old.clone();
        joined.rare.stderr_backups = 9;
        joined.redirect_stderr = true;
        let plan = diff(&conf(std::slice::from_ref(&old)), &conf(&[joined]));
        assert_eq!(
            lines(&plan, |_| true),
            [
                "restarted w (redirect_stderr changed)",
                "updated w (stderr_backups)"
            ]
        );
    }

    #[test]
    fn top_level_rotation_and_minfds_restart_nothing() {
        let a = Program::new("a", "sleep 1");
        let old = conf(std::slice::from_ref(&a));
        let mut new = old.clone();
        new.logfile_maxbytes = 1 << 30;
        new.logfile_backups = 1;
        new.minfds = Some(4096);
        assert!(diff(&old, &new).programs.is_empty());
        assert!(top(&old, &new).is_empty());
    }

    #[test]
    fn report_keys_apply_in_place() {
        let a = Program::new("a", "sleep 1");
        let mut b = a.clone();
        b.rare.report_events = crate::alerts::EventSet::EMPTY;
        b.rare.report_command = Some(vec!["hook".into()]);
        let plan = diff(&conf(std::slice::from_ref(&a)), &conf(&[b]));
        let [(
            _,
            Change::Changed {
                restart, update, ..
            },
        )] = &plan.programs[..]
        else {
            panic!("{plan:?}")
        };
        assert!(restart.is_empty());
        assert_eq!(update, &["report_events", "report_command"]);
    }
}
