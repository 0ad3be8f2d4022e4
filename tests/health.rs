//! `healthcheck:` while RUNNING: failures counted in `status`, `retries` in a
//! row stop the process and its end is an unexpected exit.
mod common;
use common::*;
use std::io::Write;
use std::net::TcpListener;

fn message(d: &Daemon, name: &str) -> String {
    d.proc(name)["message"].as_str().unwrap_or("").to_string()
}

#[test]
fn failing_health_checks_restart_with_a_new_pid() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let d = Daemon::start(&format!(
        "  web:\n    cmd: sleep 100\n    starttime: 0\n    stoptime: 2\n    healthcheck: {{tcp: \"127.0.0.1:{port}\", interval: 0.4, retries: 3}}\n"
    ));
    d.wait_state("web:0", "RUNNING", 20.0);
    let first = d.pid("web:0").expect("a pid");
    wait_until(20.0, "a passed health check", || {
        d.proc("web:0")["healthy"] == true
    });
    drop(listener);
    // Failures accumulate in status before it is declared unhealthy.
    let mut seen = String::new();
    wait_until(20.0, "unhealthy (N/3) in status", || {
        seen = message(&d, "web:0");
        seen.contains("unhealthy (1/3)") || seen.contains("unhealthy (2/3)")
    });
    assert_eq!(d.proc("web:0")["healthy"], false);
    let mut second = None;
    wait_until(30.0, "a new pid", || {
        second = d.pid("web:0").filter(|p| *p != first);
        second.is_some()
    });
    assert_gone(first);
    d.wait_log("web:0: unhealthy: 3 health checks failed in a row", 5.0);
    let p = d.proc("web:0");
    assert_eq!(p["restarts"], 1, "{p}");
    assert_eq!(
        p["exit_code"],
        serde_json::Value::Null,
        "killed by SIGTERM: {p}"
    );
    assert_eq!(p["signal"], "SIGTERM", "{p}");
}

#[test]
fn unhealthy_with_autorestart_never_stays_exited_unexpectedly() {
    // A server that answers 500: an HTTP health check that always fails.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming().take(20).flatten() {
            let mut s = s;
            let _ = s.write_all(b"HTTP/1.1 500 Broken\r\n\r\n");
        }
    });
    let d = Daemon::start(&format!(
        "  api:\n    cmd: sh -c 'trap \"exit 0\" TERM; while :; do sleep 0.1; done'\n    starttime: 0\n    autorestart: never\n    healthcheck: {{http: \"http://127.0.0.1:{port}/\", interval: 0.2, retries: 2}}\n"
    ));
    d.wait_state("api:0", "EXITED_UNEXPECTEDLY", 30.0);
    // It exited 0 on its stopsignal, and still counts as unexpected.
    let p = d.proc("api:0");
    assert_eq!(p["exit_code"], 0, "{p}");
    assert!(
        p["message"].as_str().unwrap_or("").starts_with("unhealthy"),
        "{p}"
    );
    d.wait_log("HTTP/1.1 500 Broken", 5.0);
}

#[test]
fn a_hanging_health_command_times_out_and_counts_as_a_failure() {
    let d = Daemon::start(
        "  h:\n    cmd: sleep 100\n    starttime: 0\n    autorestart: never\n    healthcheck: {command: \"sleep 986\", interval: 0.2, timeout: 0.3, retries: 2}\n",
    );
    let daemon = d.child.as_ref().unwrap().id() as i32;
    d.wait_state("h:0", "EXITED_UNEXPECTEDLY", 30.0);
    d.wait_log("killed after its 0.3s timeout", 5.0);
    wait_until(10.0, "the probe commands gone", || {
        running(&["sleep", "986"]).is_empty()
    });
    wait_until(10.0, "no zombie", || zombies_of(daemon).is_empty());
}

#[test]
fn checks_pause_while_not_running_and_healthy_is_null_without_one() {
    let d = Daemon::start(
        "  a:\n    cmd: sleep 100\n    starttime: 0\n    healthcheck: {command: \"true\", interval: 0.1}\n  b:\n    cmd: sleep 100\n    starttime: 0\n",
    );
    d.wait_state("a:0", "RUNNING", 20.0);
    d.wait_state("b:0", "RUNNING", 20.0);
    wait_until(20.0, "a healthy check", || d.proc("a:0")["healthy"] == true);
    assert_eq!(d.proc("b:0")["healthy"], serde_json::Value::Null);
    assert_eq!(d.cmd("stop a"), "a:0: stopped\nOK\n");
    assert_eq!(d.proc("a:0")["healthy"], serde_json::Value::Null, "paused");
}

#[test]
fn a_peer_that_never_answers_fails_at_the_timeout() {
    // Bound, never accepted, never answered: the connect completes in the
    // kernel's backlog and the GET waits for a status line that never comes.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let d = Daemon::start(&format!(
        "  s:\n    cmd: sleep 100\n    starttime: 0\n    autorestart: never\n    healthcheck: {{http: \"http://127.0.0.1:{port}/\", interval: 0.2, timeout: 0.3, retries: 2}}\n"
    ));
    d.wait_state("s:0", "EXITED_UNEXPECTEDLY", 30.0);
    d.wait_log("no answer within 0.3s", 5.0);
    // The daemon answered status all along (it never waited on the peer).
    assert_eq!(d.cmd("status s").lines().last(), Some("OK"));
    drop(silent);
}

#[test]
fn reload_adds_a_healthcheck_in_place() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n    autorestart: never\n");
    d.wait_state("a:0", "RUNNING", 20.0);
    let pid = d.pid("a:0");
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(
        &d.conf,
        text + "    healthcheck: {command: \"false\", interval: 0.2, retries: 2}\n",
    )
    .unwrap();
    assert_eq!(d.cmd("reload"), "updated a (healthcheck)\nOK\n");
    assert_eq!(d.pid("a:0"), pid, "not restarted by the reload");
    // Applied to the running process: its checks now fail, and it is stopped.
    d.wait_state("a:0", "EXITED_UNEXPECTEDLY", 30.0);
    d.wait_log("a:0: health check failed (1/2)", 5.0);
}

#[test]
fn unhealthy_is_reported_and_counted() {
    // A port nothing listens on: every check fails.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("events");
    let d = Daemon::start(&format!(
        "  web:\n    cmd: sleep 100\n    starttime: 0\n    stoptime: 2\n    autorestart: never\n\
         \x20   healthcheck: {{tcp: \"127.0.0.1:{port}\", interval: 0.2, retries: 2}}\n\
         \x20   report_events: [UNHEALTHY]\n\
         \x20   report_command: \"sh -c 'echo $TASKMASTER_EVENT $TASKMASTER_PROCESS >> {}'\"\n",
        out.display()
    ));
    wait_until(20.0, "the UNHEALTHY hook", || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("UNHEALTHY web:0"))
    });
    d.wait_state("web:0", "EXITED_UNEXPECTEDLY", 20.0);
    // Only the listed event was reported.
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "UNHEALTHY web:0\n");
    let metrics = d.cmd("metrics");
    assert!(
        metrics.contains("taskmaster_events_total{event=\"UNHEALTHY\"} 1\n"),
        "{metrics}"
    );
}
