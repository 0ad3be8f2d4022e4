//! Hot reload through `reload` and SIGHUP: only what changed is touched.
mod common;
use common::*;

const BEFORE: &str = "  keep:\n    cmd: sleep 100\n    starttime: 0\n  edit:\n    cmd: sleep 100\n    starttime: 0\n  gone:\n    cmd: \"sh -c 'sleep 100 & wait'\"\n    starttime: 0\n  scale:\n    cmd: sleep 100\n    numprocs: 3\n    starttime: 0\n  watch:\n    cmd: \"sh -c 'sleep 0.3; exit 3'\"\n    starttime: 0.1\n    autorestart: unexpected\n";

const AFTER: &str = "  keep:\n    cmd: sleep 100\n    starttime: 0\n  edit:\n    cmd: sleep 101\n    starttime: 0\n  new:\n    cmd: sleep 100\n    starttime: 0\n  scale:\n    cmd: sleep 100\n    numprocs: 2\n    starttime: 0\n  watch:\n    cmd: \"sh -c 'sleep 0.3; exit 3'\"\n    starttime: 0.1\n    autorestart: unexpected\n    exitcodes: [0, 3]\n";

fn rewrite(d: &Daemon, programs: &str) {
    let text = std::fs::read_to_string(&d.conf).unwrap();
    let head = &text[..text.find("programs:\n").unwrap()];
    std::fs::write(&d.conf, format!("{head}programs:\n{programs}")).unwrap();
}

fn running(d: &Daemon, names: &[&str]) -> Vec<i32> {
    names
        .iter()
        .map(|n| {
            d.wait_state(n, "RUNNING", 5.0);
            d.pid(n).unwrap()
        })
        .collect()
}

fn check_reload(via_sighup: bool) {
    let d = Daemon::start(BEFORE);
    let names = [
        "keep:0", "edit:0", "gone:0", "scale:0", "scale:1", "scale:2",
    ];
    let before = running(&d, &names);
    let gone_pgid = before[2];
    wait_until(5.0, "gone's child", || group_members(gone_pgid).len() == 2);
    rewrite(&d, AFTER);
    if via_sighup {
        d.signal(libc::SIGHUP);
        d.wait_log("reload: scaled scale 3→2", 5.0);
    } else {
        let dry = d.cmd("reload --dry-run");
        assert_eq!(
            dry,
            "restarted edit (cmd changed)\nremoved gone\nadded new\nscaled scale 3→2\nupdated watch (exitcodes)\nOK\n"
        );
        assert_eq!(d.pid("edit:0"), Some(before[1]), "dry run changes nothing");
        assert_eq!(d.cmd("reload"), dry);
    }
    // Unchanged survive; changed restart; removed die with their children; added start.
    assert_eq!(d.pid("keep:0"), Some(before[0]));
    wait_until(5.0, "edit restarted", || {
        d.pid("edit:0").is_some_and(|p| p != before[1])
    });
    assert_gone(before[1]);
    wait_until(5.0, "gone removed", || {
        d.status().iter().all(|p| p["program"] != "gone")
    });
    wait_until(5.0, "gone's tree dead", || {
        group_members(gone_pgid).is_empty()
    });
    d.wait_state("new:0", "RUNNING", 5.0);
    // Scale down stops only the highest index.
    assert_eq!(d.pid("scale:0"), Some(before[3]));
    assert_eq!(d.pid("scale:1"), Some(before[4]));
    assert_gone(before[5]);
    assert!(d.status().iter().all(|p| p["name"] != "scale:2"));
    assert!(d.cmd("status scale:2").starts_with("ERR unknown name"));
    // Monitoring-only change applies in place: exit 3 is now expected.
    d.wait_state("watch:0", "EXITED_EXPECTEDLY", 5.0);
    let log = d.log_text();
    for line in [
        "reload: added new",
        "reload: removed gone",
        "reload: restarted edit (cmd changed)",
        "reload: updated watch (exitcodes)",
    ] {
        assert!(log.contains(line), "missing {line}");
    }
}

#[test]
fn reload_command_changes_only_what_changed() {
    check_reload(false);
}

#[test]
fn sighup_changes_only_what_changed() {
    check_reload(true);
}

#[test]
fn scale_up_keeps_existing_pids() {
    let d = Daemon::start("  w:\n    cmd: sleep 100\n    starttime: 0\n");
    let old = running(&d, &["w:0"]);
    rewrite(
        &d,
        "  w:\n    cmd: sleep 100\n    starttime: 0\n    numprocs: 3\n",
    );
    assert_eq!(d.cmd("reload"), "scaled w 1→3\nOK\n");
    assert_eq!(running(&d, &["w:0"]), old);
    running(&d, &["w:1", "w:2"]);
}

#[test]
fn a_broken_file_changes_nothing() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    let old = running(&d, &["a:0"]);
    rewrite(
        &d,
        "  a:\n    cmd: sleep 100\n    numprocs: zero\n  b:\n    cmdd: x\n",
    );
    let reply = d.cmd("reload");
    assert!(
        reply.ends_with("ERR invalid configuration, nothing changed\n"),
        "{reply}"
    );
    assert!(
        reply.contains("programs.a.numprocs: expected an integer"),
        "{reply}"
    );
    assert!(reply.contains("programs.b.cmdd: unknown key"), "{reply}");
    d.signal(libc::SIGHUP);
    d.wait_log("reload refused", 5.0);
    assert_eq!(running(&d, &["a:0"]), old);
    assert!(d.cmd("status").ends_with("OK\n"));
}

#[test]
fn removing_a_stopping_process_still_kills_it_after_stoptime() {
    let d = Daemon::start("  s:\n    cmd: \"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.1; done'\"\n    stoptime: 0.5\n    starttime: 0\n");
    let old = running(&d, &["s:0"]);
    rewrite(&d, "");
    let text = std::fs::read_to_string(&d.conf)
        .unwrap()
        .replace("programs:\n", "programs: {}\n");
    std::fs::write(&d.conf, text).unwrap();
    assert_eq!(d.cmd("reload"), "removed s\nOK\n");
    assert_eq!(
        d.cmd("reload"),
        "OK\n",
        "a second reload during the stop changes nothing"
    );
    assert_gone(old[0]);
    assert!(group_members(old[0]).is_empty());
    d.wait_log("s:0: removed", 5.0);
    assert_eq!(d.cmd("status"), "OK\n");
}

#[test]
fn globals_logfile_reopened_socket_rebound_clients_kept() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    let old = running(&d, &["a:0"]);
    // A client connected before the reload keeps being served after it.
    let kept = std::os::unix::net::UnixStream::connect(&d.sock).unwrap();
    let mut kept = std::io::BufReader::new(kept);
    let text = std::fs::read_to_string(&d.conf).unwrap();
    let (log2, sock2) = (d.path("new.log"), d.path("new.sock"));
    let text = text
        .replace(&d.log.display().to_string(), &log2.display().to_string())
        .replace(&d.sock.display().to_string(), &sock2.display().to_string());
    std::fs::write(&d.conf, text).unwrap();
    let reply = d.cmd("reload");
    assert_eq!(
        reply,
        format!(
            "reopened logfile {}\nrebound socket {}\nOK\n",
            log2.display(),
            sock2.display()
        )
    );
    assert!(!d.sock.exists());
    assert!(std::fs::read_to_string(&log2)
        .unwrap()
        .contains("reload: rebound socket"));
    use std::io::Write;
    kept.get_mut().write_all(b"status a\n").unwrap();
    assert!(read_reply(&mut kept).starts_with("a:0  RUNNING"));
    let s = std::os::unix::net::UnixStream::connect(&sock2).unwrap();
    let mut r = std::io::BufReader::new(s);
    r.get_mut().write_all(b"status --json\n").unwrap();
    assert!(read_reply(&mut r).contains(&format!("\"pid\":{}", old[0])));
    // Shut down through the new socket (Drop would also do it by signal).
    r.get_mut().write_all(b"shutdown\n").unwrap();
    assert_eq!(read_reply(&mut r), "OK\n");
    assert!(!sock2.exists());
}

/// A reload that changes what a process is never overrides the operator: a
/// process being stopped stays stopped (its pending `stop` still succeeds),
/// a stopped one stays stopped, and both take the new settings.
#[test]
fn reload_respects_a_stop_in_progress_and_stopped_processes() {
    let d = Daemon::start(
        "  slow:\n    cmd: \"sh -c 'trap \\\"sleep 1; exit 0\\\" TERM; while :; do sleep 0.1; done'\"\n    starttime: 0\n  idle:\n    cmd: sleep 100\n    starttime: 0\n",
    );
    d.wait_state("slow:0", "RUNNING", 5.0);
    d.wait_state("idle:0", "RUNNING", 5.0);
    assert_eq!(d.cmd("stop idle"), "idle:0: stopped\nOK\n");
    let mut stopper = d.connect();
    std::io::Write::write_all(&mut stopper, b"stop slow\n").unwrap();
    d.wait_state("slow:0", "STOPPING", 5.0);
    rewrite(
        &d,
        "  slow:\n    cmd: \"sh -c 'trap \\\"sleep 1; exit 0\\\" TERM; while :; do sleep 0.2; done'\"\n    starttime: 0\n  idle:\n    cmd: sleep 101\n    starttime: 0\n",
    );
    assert_eq!(
        d.cmd("reload"),
        "updated idle (cmd, stays stopped)\nupdated slow (cmd, stays stopped)\nOK\n"
    );
    let mut r = std::io::BufReader::new(stopper);
    assert_eq!(read_reply(&mut r), "slow:0: stopped\nOK\n");
    assert_eq!(d.state("slow:0"), "STOPPED");
    assert_eq!(d.state("idle:0"), "STOPPED");
    // The new settings apply at the next start.
    assert_eq!(d.cmd("start idle"), "idle:0: started\nOK\n");
    let pid = d.pid("idle:0").unwrap();
    // The kernel sets a new program's arguments a moment after its exec has
    // released the daemon's wait: an empty read is that moment, not an answer.
    let mut cmdline = Vec::new();
    wait_until(5.0, "the new process's arguments", || {
        cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        !cmdline.is_empty()
    });
    assert_eq!(cmdline, b"sleep\x00101\x00");
}

#[test]
fn reload_during_shutdown_is_refused_as_such() {
    let d = Daemon::start(
        "  stubborn:\n    cmd: \"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.1; done'\"\n    starttime: 0\n    stoptime: 3\n",
    );
    d.wait_state("stubborn:0", "RUNNING", 5.0);
    let mut closer = d.connect();
    std::io::Write::write_all(&mut closer, b"shutdown\n").unwrap();
    d.wait_state("stubborn:0", "STOPPING", 5.0);
    assert_eq!(d.cmd("reload"), "ERR shutting down\n");
    assert_eq!(d.cmd("start stubborn"), "ERR shutting down\n");
    let mut r = std::io::BufReader::new(closer);
    assert_eq!(read_reply(&mut r), "OK\n");
}
