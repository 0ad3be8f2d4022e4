//! report_events and report_command: a real HTTP listener receives the listed
//! events, a real hook script gets its environment and stdin, a hanging hook
//! is killed and reaped, and a dead receiver during a crash loop costs a
//! bounded amount of memory and descriptors.
mod common;
use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// Answers every report sent to `listener` with 204 and collects the
/// bodies, until `done` holds for them or `secs` pass (then panics).
fn collect(listener: &TcpListener, secs: f64, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut got = Vec::new();
    while !done(&got) {
        assert!(Instant::now() < deadline, "reports so far: {got:#?}");
        let s = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            Err(e) => panic!("accept: {e}"),
        };
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
        let mut r = BufReader::new(s);
        let mut len = 0;
        loop {
            let mut l = String::new();
            assert!(r.read_line(&mut l).expect("report head") > 0, "cut head");
            if l == "\r\n" {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).expect("report body");
        let _ = r.get_mut().write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
        got.push(serde_json::from_slice(&body).expect("a JSON body"));
    }
    got
}

fn find<'a>(got: &'a [Value], event: &str, process: &str) -> Option<&'a Value> {
    got.iter()
        .find(|v| v["event"] == event && v["process"] == process)
}

#[test]
fn listed_events_are_posted_with_their_fields() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // `early` dies before its starttime: BACKOFF, then FATAL. `crash` runs,
    // then exits 3: EXITED_UNEXPECTEDLY (restarted at once the first time).
    let progs = "  early:\n    cmd: \"sh -c 'exit 4'\"\n    startretries: 1\n\
                 \x20 crash:\n    cmd: \"sh -c 'sleep 0.3; exit 3'\"\n    starttime: 0\n";
    let extra = format!(
        "fatal_state_report_address: \"{addr}\"\n\
         report_events: [BACKOFF, EXITED_UNEXPECTEDLY, FATAL]\n"
    );
    let d = Daemon::start_with(progs, &extra, &[]);
    let got = collect(&listener, 30.0, |g| {
        find(g, "BACKOFF", "early:0").is_some()
            && find(g, "FATAL", "early:0").is_some()
            && find(g, "EXITED_UNEXPECTEDLY", "crash:0").is_some()
    });
    for v in &got {
        let e = v["event"].as_str().unwrap();
        assert!(
            ["BACKOFF", "EXITED_UNEXPECTEDLY", "FATAL"].contains(&e),
            "only listed events are reported: {v}"
        );
        assert!(v["attempts"].is_u64(), "{v}");
        let t = v["time"].as_str().unwrap();
        assert!(
            t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T",
            "{t}"
        );
    }
    let b = find(&got, "BACKOFF", "early:0").unwrap();
    assert_eq!(b["program"], "early");
    assert_eq!(b["attempts"], 1);
    assert_eq!(b["last_exit"], "exit status 4");
    assert!(b["message"].as_str().unwrap().contains("retry in"), "{b}");
    let x = find(&got, "EXITED_UNEXPECTEDLY", "crash:0").unwrap();
    assert_eq!(x["program"], "crash");
    assert_eq!(x["last_exit"], "exit status 3");
    assert!(
        x["message"].as_str().unwrap().starts_with("exit status 3"),
        "{x}"
    );
    let f = find(&got, "FATAL", "early:0").unwrap();
    assert_eq!(f["attempts"], 2);
    d.wait_log("crash:0: EXITED_UNEXPECTEDLY report sent to", 10.0);
}

/// A hook script that writes its arguments, environment and stdin to
/// `out/EVENT` (atomically: the test reads only whole files).
fn hook_script(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let script = dir.join("hook.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nf={out}/$TASKMASTER_EVENT\n{{ echo \"args: $*\"; env | grep '^TASKMASTER_' | sort; \
             echo ---; cat; }} > $f.tmp && mv $f.tmp $f\n",
            out = out.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn report_command_gets_env_and_the_body_on_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let script = hook_script(tmp.path());
    let progs = format!(
        "  boom:\n    cmd: \"sh -c 'exit 5'\"\n    startretries: 0\n\
         \x20   report_command: \"{} 'one arg' two\"\n",
        script.display()
    );
    let d = Daemon::start(&progs);
    let file = tmp.path().join("out/FATAL");
    wait_until(20.0, "the hook's output", || file.exists());
    let text = std::fs::read_to_string(&file).unwrap();
    let (head, body) = text.split_once("---\n").expect("env, then stdin");
    assert!(head.starts_with("args: one arg two\n"), "{head}");
    let env: Vec<&str> = head.lines().skip(1).collect();
    for want in [
        "TASKMASTER_EVENT=FATAL",
        "TASKMASTER_PROGRAM=boom",
        "TASKMASTER_PROCESS=boom:0",
        "TASKMASTER_EXIT=exit status 5",
    ] {
        assert!(env.contains(&want), "{want} in {env:?}");
    }
    let pid = env.iter().find_map(|l| l.strip_prefix("TASKMASTER_PID="));
    assert!(pid.is_some_and(|p| p.parse::<i32>().is_ok()), "{env:?}");
    assert!(
        env.iter()
            .any(|l| l.starts_with("TASKMASTER_MESSAGE=gave up after 1 attempt:")),
        "{env:?}"
    );
    let v: Value = serde_json::from_str(body).expect("the JSON body on stdin");
    assert_eq!(
        (v["event"].as_str(), v["process"].as_str()),
        (Some("FATAL"), Some("boom:0"))
    );
    d.wait_log("boom:0: FATAL report_command: done", 10.0);
    // Not a supervised process: status knows only boom:0.
    assert_eq!(d.status().len(), 1);
}

#[test]
fn a_hanging_report_command_is_killed_and_reaped() {
    let tmp = tempfile::tempdir().unwrap();
    let pids = tmp.path().join("pids");
    // The hook and a child of its own (same group): both must go.
    let progs = format!(
        "  boom:\n    cmd: \"sh -c 'exit 5'\"\n    startretries: 0\n\
         \x20   report_command: \"sh -c 'sleep 1000 & echo $$ $! > {}; wait'\"\n",
        pids.display()
    );
    let d = Daemon::start_with(&progs, "", &[("TASKMASTER_TEST_HOOK_TIMEOUT_MS", "1000")]);
    wait_until(20.0, "the hook to start", || {
        std::fs::read_to_string(&pids).is_ok_and(|t| t.ends_with('\n'))
    });
    let text = std::fs::read_to_string(&pids).unwrap();
    let both: Vec<i32> = text
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(both.len(), 2, "{text}");
    d.wait_log(
        "boom:0: FATAL report_command failed: killed after its 1s timeout",
        20.0,
    );
    // Reaped, not zombies: /proc has no entry for either any more.
    for pid in both {
        wait_until(10.0, &format!("pid {pid} reaped"), || {
            !Path::new(&format!("/proc/{pid}")).exists()
        });
    }
    assert_eq!(d.status().len(), 1);
    assert!(
        !d.log_text().contains("reaped orphan pid"),
        "a hook is no orphan"
    );
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn a_dead_receiver_during_a_crash_loop_stays_bounded() {
    // Accepts nothing: connections hang until their deadlines.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = dead.local_addr().unwrap();
    let progs = "  crash:\n    cmd: \"sh -c 'exit 1'\"\n    numprocs: 60\n    starttime: 0\n\
                 \x20   autorestart: always\n";
    let extra = format!(
        "fatal_state_report_address: \"{addr}\"\n\
         report_events: [STARTING, RUNNING, EXITED_EXPECTEDLY, EXITED_UNEXPECTEDLY]\n"
    );
    let d = Daemon::start_with(progs, &extra, &[]);
    let pid = d.child.as_ref().unwrap().id();
    d.wait_log("dropped", 20.0);
    let (rss0, fds0) = (rss_kib(pid), fds(pid));
    // Several rounds of the crash loop against the dead receiver.
    let until = Instant::now() + Duration::from_secs(12);
    let (mut rss_max, mut fds_max) = (rss0, fds0);
    while Instant::now() < until {
        assert!(
            d.cmd("status crash:0").ends_with("OK\n"),
            "the daemon serves"
        );
        rss_max = rss_max.max(rss_kib(pid));
        fds_max = fds_max.max(fds(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        rss_max < rss0 + 4096,
        "RSS grew from {rss0} KiB to {rss_max} KiB"
    );
    // 60 processes' pidfds and pipes come and go; reports add at most 4.
    assert!(fds_max <= fds0 + 60 * 3 + 4, "fds {fds0} -> {fds_max}");
    let log = d.log_text();
    let drops = log.matches(&format!("report to {addr} dropped")).count();
    assert!(drops >= 1, "drops are logged");
    assert!(drops <= 3, "rate-limited: {drops} drop lines in ~15s");
    drop(dead);
}
