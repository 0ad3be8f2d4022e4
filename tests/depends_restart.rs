//! A restart (the `restart` command, or a reload that changes what a process
//! is) is a start too: it waits for the dependencies like any other, instead
//! of spawning the dependent again the moment its stop completes.
mod common;
use common::*;

/// db is RUNNING a second after its spawn; web needs it RUNNING.
const PROGRAMS: &str = "  db:\n    cmd: sleep 1000\n    starttime: 1\n  web:\n    \
                        cmd: sleep 1001\n    starttime: 0\n    depends_on: [db]\n";

#[test]
fn restart_waits_for_the_dependency_it_pulls_along() {
    let d = Daemon::start(PROGRAMS);
    d.wait_state("web:0", "RUNNING", 20.0);
    assert_eq!(d.cmd("stop db"), "db:0: stopped\nOK\n");
    assert_eq!(d.cmd("restart web"), "db:0: started\nweb:0: started\nOK\n");
    let log = d.log_text();
    let db_up = log.rfind("db:0: STARTING -> RUNNING").expect("db RUNNING");
    let web_spawned = log.rfind("web:0: spawned").expect("web spawned");
    assert!(
        web_spawned > db_up,
        "web was spawned again before db was RUNNING:\n{log}"
    );
}

#[test]
fn a_reload_restart_waits_for_a_stopped_dependency() {
    let d = Daemon::start(PROGRAMS);
    d.wait_state("web:0", "RUNNING", 20.0);
    assert_eq!(d.cmd("stop db"), "db:0: stopped\nOK\n");
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, text.replace("sleep 1001", "sleep 1002")).unwrap();
    assert!(d.cmd("reload").contains("restarted web"));
    // Stopped, then waiting: a reload does not start db, and web needs it.
    d.wait_state("web:0", "NOT_STARTED", 20.0);
    let web = d.proc("web:0");
    assert_eq!(web["message"], "waiting for db (ready)", "{web}");
    assert_eq!(d.state("db:0"), "STOPPED");
    // Once db is up, web starts with its new command.
    assert_eq!(d.cmd("start db"), "db:0: started\nOK\n");
    d.wait_state("web:0", "RUNNING", 20.0);
    let pid = d.pid("web:0").expect("web's pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    assert_eq!(cmdline, b"sleep\x001002\x00");
}

#[test]
fn a_reload_restart_of_a_fatal_dependent_waits_too() {
    let d = Daemon::start(
        "  db:\n    cmd: sleep 1000\n    starttime: 1\n  web:\n    \
         cmd: sh -c 'exit 3'\n    starttime: 0.5\n    startretries: 0\n    depends_on: [db]\n",
    );
    d.wait_state("web:0", "FATAL", 20.0);
    assert_eq!(d.cmd("stop db"), "db:0: stopped\nOK\n");
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(&d.conf, text.replace("exit 3", "exec sleep 1003")).unwrap();
    assert!(d.cmd("reload").contains("restarted web"));
    d.wait_state("web:0", "NOT_STARTED", 20.0);
    assert!(!d.log_text().contains("sleep 1003"), "web was spawned");
    assert_eq!(d.cmd("start db"), "db:0: started\nOK\n");
    d.wait_state("web:0", "RUNNING", 20.0);
}

#[test]
fn restart_pulls_along_a_dependency_being_stopped() {
    // db takes its whole stoptime to stop: `restart web` comes meanwhile.
    let d = Daemon::start(
        "  db:\n    cmd: sh -c 'trap \"\" TERM; sleep 1000'\n    starttime: 1\n    stoptime: 2\n  \
         web:\n    cmd: sleep 1001\n    starttime: 0\n    depends_on: [db]\n",
    );
    d.wait_state("web:0", "RUNNING", 20.0);
    use std::io::Write;
    let mut stop = d.connect();
    stop.write_all(b"stop db\n").unwrap();
    d.wait_state("db:0", "STOPPING", 20.0);
    // It was left waiting for a db nothing would start (NOT_STARTED, and
    // this reply never came).
    assert_eq!(d.cmd("restart web"), "db:0: started\nweb:0: started\nOK\n");
    // The stop is answered too: overridden by the start that came after it,
    // as a `start db` would (db is RUNNING again).
    let mut r = std::io::BufReader::new(stop);
    assert_eq!(read_reply(&mut r), "db:0: failed: RUNNING\nERR 1 failed\n");
    assert_eq!(d.state("web:0"), "RUNNING");
}
