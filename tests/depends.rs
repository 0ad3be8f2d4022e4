//! depends_on, priority, ordered stop and shutdown, exit_on_fatal: the order
//! is observed from the children themselves (each appends to a shared file
//! when it starts and when it gets its stop signal).
mod common;
use common::*;
use std::io::{BufReader, Write};
use std::process::Command;

/// A program that appends `start NAME` when it starts and `stop NAME` on
/// SIGTERM, then exits 0. `extra` is more YAML keys (4-space indented).
fn logger(name: &str, file: &std::path::Path, extra: &str) -> String {
    let f = file.display();
    format!(
        "  {name}:\n    cmd: \"sh -c 'echo start {name} >> {f}; trap \\\"echo stop {name} >> {f}; exit 0\\\" TERM; \
         while :; do sleep 0.1; done'\"\n    stoptime: 20\n{extra}"
    )
}

fn lines(file: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// web → api → db, plus an unrelated program; files and daemon.
fn chain() -> (Daemon, std::path::PathBuf) {
    let d = Daemon::configure("", "");
    let f = d.path("order");
    let programs = [
        logger("web", &f, "    starttime: 0.5\n    depends_on: [api]\n"),
        logger(
            "api",
            &f,
            "    starttime: 0.5\n    depends_on: {db: ready}\n",
        ),
        logger("db", &f, "    starttime: 0.5\n"),
    ]
    .concat();
    std::fs::write(
        &d.conf,
        std::fs::read_to_string(&d.conf).unwrap() + &programs,
    )
    .unwrap();
    (d.launch(&[]), f)
}

fn all_running(d: &Daemon, names: &[&str]) {
    for n in names {
        d.wait_state(n, "RUNNING", 20.0);
    }
}

#[test]
fn a_chain_starts_in_order_and_stop_all_stops_dependents_first() {
    let (d, f) = chain();
    all_running(&d, &["web:0", "api:0", "db:0"]);
    assert_eq!(lines(&f), ["start db", "start api", "start web"]);
    assert_eq!(
        d.cmd("stop all"),
        "api:0: stopped\ndb:0: stopped\nweb:0: stopped\nOK\n"
    );
    assert_eq!(
        lines(&f)[3..],
        ["stop web", "stop api", "stop db"],
        "dependents get their stop signal first"
    );
    // `start web` pulls its stopped dependencies along, each with its line.
    assert_eq!(
        d.cmd("start web"),
        "db:0: started\napi:0: started\nweb:0: started\nOK\n"
    );
    assert_eq!(lines(&f)[6..], ["start db", "start api", "start web"]);
}

#[test]
fn shutdown_stops_dependents_first_and_exits_0() {
    let (mut d, f) = chain();
    all_running(&d, &["web:0", "api:0", "db:0"]);
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(60.0).success());
    assert_eq!(lines(&f)[3..], ["stop web", "stop api", "stop db"]);
}

#[test]
fn a_waiting_process_says_what_it_waits_for() {
    // db never becomes RUNNING (starttime far away): api waits, visibly.
    let d = Daemon::start(
        "  db:\n    cmd: sleep 1000\n    starttime: 1000\n  api:\n    cmd: sleep 1000\n    \
         depends_on: [db]\n  late:\n    cmd: sleep 1000\n    autostart: false\n    depends_on: {db: started}\n",
    );
    d.wait_state("db:0", "STARTING", 10.0);
    let api = d.proc("api:0");
    assert_eq!(api["state"], "NOT_STARTED");
    assert_eq!(api["message"], "waiting for db (ready)");
    assert!(d.cmd("status api").contains("waiting for db (ready)"));
    // `started` is met by a STARTING dependency.
    assert_eq!(d.cmd("start late"), "late:0: started\nOK\n");
    // Stopping a waiting process cancels its start.
    assert_eq!(d.cmd("stop api"), "api:0: stopped\nOK\n");
}

#[test]
fn a_fatal_dependency_leaves_dependents_not_started_with_the_reason() {
    let d = Daemon::start(
        "  db:\n    cmd: /nonexistent/db\n    startretries: 0\n  api:\n    cmd: sleep 1000\n    \
         starttime: 0\n    depends_on: [db]\n",
    );
    d.wait_state("db:0", "FATAL", 10.0);
    wait_until(10.0, "api's reason", || {
        d.proc("api:0")["message"] == "dependency db is FATAL"
    });
    assert_eq!(d.state("api:0"), "NOT_STARTED");
    assert_eq!(
        d.cmd("start api"),
        "api:0: failed: dependency db is FATAL\nERR 1 failed\n"
    );
    let out = Command::new(CTL)
        .arg("-s")
        .arg(&d.sock)
        .args(["start", "api"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn completed_waits_for_a_one_shot_and_blocks_on_its_failure() {
    let d = Daemon::configure("", "");
    let f = d.path("order");
    let fl = f.display();
    let programs = format!(
        "  migrate:\n    cmd: \"sh -c 'sleep 0.5; echo migrated >> {fl}; exit 0'\"\n    starttime: 0\n    \
         autorestart: never\n  broken:\n    cmd: \"sh -c 'exit 3'\"\n    starttime: 0\n    autorestart: never\n{}{}",
        logger("app", &f, "    starttime: 0\n    depends_on: {migrate: completed}\n"),
        logger("other", &f, "    starttime: 0\n    depends_on: {broken: completed}\n"),
    );
    std::fs::write(
        &d.conf,
        std::fs::read_to_string(&d.conf).unwrap() + &programs,
    )
    .unwrap();
    let d = d.launch(&[]);
    d.wait_state("app:0", "RUNNING", 20.0);
    assert_eq!(d.state("migrate:0"), "EXITED_EXPECTEDLY");
    assert_eq!(lines(&f), ["migrated", "start app"]);
    d.wait_state("broken:0", "EXITED_UNEXPECTEDLY", 10.0);
    wait_until(10.0, "other's reason", || {
        d.proc("other:0")["message"] == "dependency broken exited unexpectedly"
    });
    assert_eq!(d.state("other:0"), "NOT_STARTED");
}

#[test]
fn priority_orders_spawning() {
    let d = Daemon::start(
        "  a:\n    cmd: sleep 1000\n    starttime: 0\n  b:\n    cmd: sleep 1000\n    starttime: 0\n    \
         priority: 1\n  c:\n    cmd: sleep 1000\n    starttime: 0\n    priority: 500\n",
    );
    all_running(&d, &["a:0", "b:0", "c:0"]);
    let log = d.log_text();
    let at = |n: &str| log.find(&format!("{n}:0: spawned pid")).unwrap();
    assert!(at("b") < at("c") && at("c") < at("a"), "{log}");
}

#[test]
fn reload_adds_a_dependency_that_is_waited_for() {
    let d = Daemon::configure("", "");
    let f = d.path("order");
    let head = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(
        &d.conf,
        head.clone() + &logger("api", &f, "    starttime: 0\n"),
    )
    .unwrap();
    let d = d.launch(&[]);
    d.wait_state("api:0", "RUNNING", 10.0);
    let pid = d.pid("api:0");
    let after = [
        logger("api", &f, "    starttime: 0\n    depends_on: [db]\n"),
        logger("db", &f, "    starttime: 1\n"),
        logger("worker", &f, "    starttime: 0\n    depends_on: [db]\n"),
    ]
    .concat();
    std::fs::write(&d.conf, head + &after).unwrap();
    assert_eq!(
        d.cmd("reload"),
        "updated api (depends_on)\nadded db\nadded worker\nOK\n"
    );
    assert_eq!(d.pid("api:0"), pid, "a watch key: no restart");
    all_running(&d, &["db:0", "worker:0"]);
    assert_eq!(lines(&f), ["start api", "start db", "start worker"]);
}

#[test]
fn exit_on_fatal_shuts_down_with_status_1_and_no_child_left() {
    let mut d = Daemon::start_with(
        "  keep:\n    cmd: sleep 4321\n    starttime: 0\n  fail:\n    cmd: /bin/false\n    \
         autostart: false\n    startretries: 0\n",
        "exit_on_fatal: true\n",
        &[],
    );
    d.wait_state("keep:0", "RUNNING", 10.0);
    let keep = d.pid("keep:0").unwrap();
    // The reply may or may not make it out before the daemon goes.
    let mut s = d.connect();
    std::io::Write::write_all(&mut s, b"start fail\n").unwrap();
    let status = d.wait_exit(30.0);
    assert_eq!(status.code(), Some(1));
    assert_gone(keep);
    assert!(running(&["sleep", "4321"]).is_empty());
    assert!(d.log_text().contains("exit_on_fatal: fail:0 is FATAL"));
}

/// A long chain (attacker-sized config): no recursion, no quadratic work per
/// transition; every program starts after its dependency and stop all
/// reverses it.
#[test]
fn a_long_chain_starts_and_stops_in_order() {
    const N: usize = 150;
    let mut programs = String::from("  p0:\n    cmd: sleep 1000\n    starttime: 0\n");
    for i in 1..N {
        programs += &format!(
            "  p{i}:\n    cmd: sleep 1000\n    starttime: 0\n    depends_on: [p{}]\n",
            i - 1
        );
    }
    let d = Daemon::start(&programs);
    let last = format!("p{}:0", N - 1);
    d.wait_state(&last, "RUNNING", 60.0);
    let log = d.log_text();
    let spawned = |i: usize| log.find(&format!("p{i}:0: spawned pid")).unwrap();
    for i in 1..N {
        assert!(spawned(i - 1) < spawned(i), "p{i} before its dependency");
    }
    let reply = d.cmd("stop all");
    assert!(reply.ends_with("OK\n"), "{reply}");
    let log = d.log_text();
    let stopped = |i: usize| log.find(&format!("p{i}:0: STOPPING -> STOPPED")).unwrap();
    for i in 1..N {
        assert!(
            stopped(i) < stopped(i - 1),
            "p{} stopped before p{i}",
            i - 1
        );
    }
}

fn check(d: &Daemon) -> (Option<i32>, String, String) {
    let out = check_config(&d.conf);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn check_names_the_cycle_and_the_unknown_dependency() {
    let d = Daemon::configure(
        "  web:\n    cmd: /bin/true\n    depends_on: [api]\n  api:\n    cmd: /bin/true\n    \
         depends_on: {db: ready, ghost: started}\n  db:\n    cmd: /bin/true\n    depends_on: [web]\n  \
         ok:\n    cmd: /bin/true\n    depends_on: {db: soon}\n    priority: -1\n",
        "exit_on_fatal: maybe\n",
    );
    let (code, _, err) = check(&d);
    assert_eq!(code, Some(1), "{err}");
    let f = d.conf.display();
    for want in [
        format!("{f}:10: programs.api.depends_on: \"ghost\" is not a program of this file"),
        format!("{f}:10: programs.api.depends_on: dependency cycle: api -> db -> web -> api"),
        format!("{f}:16: programs.ok.depends_on.db: expected ready, started or completed, got string \"soon\""),
        format!("{f}:17: programs.ok.priority: expected an integer from 0 to 4294967295, got number -1"),
        format!("{f}:3: exit_on_fatal: expected true or false, got string \"maybe\""),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // Spelled right, it passes.
    let d = Daemon::configure(
        "  web:\n    cmd: /bin/true\n    depends_on: api\n    priority: 10\n  api:\n    cmd: /bin/true\n    \
         depends_on: {db: completed}\n  db:\n    cmd: /bin/true\n",
        "exit_on_fatal: true\n",
    );
    let (code, out, err) = check(&d);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("OK, 3 programs, 3 processes\n"), "{out}");
}

/// A hostile config: a loop through 20 000 programs is found without
/// recursion (no stack overflow) and named once.
#[test]
fn check_survives_a_huge_cycle() {
    const N: usize = 20_000;
    let mut programs = String::new();
    for i in 0..N {
        programs += &format!(
            "  p{i}:\n    cmd: /bin/true\n    depends_on: [p{}]\n",
            (i + 1) % N
        );
    }
    let d = Daemon::configure(&programs, "");
    let (code, _, err) = check(&d);
    assert_eq!(code, Some(1));
    assert_eq!(
        err.matches("dependency cycle: p0 -> p1 -> p2").count(),
        1,
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(err.contains(&format!("p{} -> p0\n", N - 1)));
}

#[test]
fn shipped_chain_example_is_valid() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/chain.yaml");
    let c = taskmaster::config::load(std::path::Path::new(conf)).unwrap();
    let api = c.programs.iter().find(|p| p.name == "api").unwrap();
    assert_eq!(api.rare.depends_on.len(), 2);
    // Each web process is probed on its own port.
    let web = c.programs.iter().find(|p| p.name == "web").unwrap();
    let ready = web.rare.ready.as_ref().unwrap();
    for (i, port) in [(0, 47320), (1, 47321)] {
        let want = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        assert_eq!(
            ready.for_index(i).check,
            taskmaster::config::Check::Tcp(want)
        );
    }
    let out = Command::new(DAEMON)
        .args(["--check", "-c", conf])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// The shipped example for real (it needs python3 and its four ports): all
/// RUNNING in dependency order, each once its probe passed; shutdown stops
/// web before api before db.
#[test]
fn shipped_chain_example_runs_in_order() {
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        return eprintln!("skipped: conf/chain.yaml needs python3, not found");
    }
    let ports = [47310, 47311, 47320, 47321];
    if let Some(p) = ports
        .iter()
        .find(|&&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_err())
    {
        return eprintln!("skipped: port {p} of conf/chain.yaml is in use");
    }
    let d = Daemon::configure("", "");
    let shipped = include_str!("../conf/chain.yaml");
    // The same file with this test's own socket and log.
    let text: String = shipped
        .lines()
        .map(|l| match l {
            _ if l.starts_with("socket:") => format!("socket: {}\n", d.sock.display()),
            _ if l.starts_with("logfile:") => format!("logfile: {}\n", d.log.display()),
            _ => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&d.conf, text).unwrap();
    let mut d = d.launch(&[]);
    for n in ["db:0", "api:0", "web:0", "web:1"] {
        d.wait_state(n, "RUNNING", 60.0);
    }
    d.wait_state("migrate:0", "EXITED_EXPECTEDLY", 20.0);
    let log = d.log_text();
    let at = |needle: &str| position(&log, needle);
    for n in ["db:0", "api:0", "web:0", "web:1"] {
        assert!(at(&format!("{n}: ready")) < at(&format!("{n}: STARTING -> RUNNING")));
    }
    assert!(at("db:0: STARTING -> RUNNING") < at("migrate:0: spawned"));
    assert!(at("migrate:0: RUNNING -> EXITED_EXPECTEDLY") < at("api:0: spawned"));
    assert!(at("api:0: STARTING -> RUNNING") < at("web:0: spawned"));
    assert!(at("api:0: STARTING -> RUNNING") < at("web:1: spawned"));
    // The log names each process's own command line.
    let spawned = log[at("web:1: spawned")..].lines().next().unwrap_or("");
    assert!(spawned.ends_with(" 47321)"), "{spawned}");
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(60.0).success());
    let log = d.log_text();
    let at = |needle: &str| position(&log, needle);
    for web in ["web:0", "web:1"] {
        assert!(at(&format!("{web}: STOPPING -> STOPPED")) < at("api:0: RUNNING -> STOPPING"));
    }
    assert!(at("api:0: STOPPING -> STOPPED") < at("db:0: RUNNING -> STOPPING"));
}

/// Where `needle` first is in the daemon's log.
fn position(log: &str, needle: &str) -> usize {
    log.find(needle)
        .unwrap_or_else(|| panic!("no {needle:?} in the log:\n{log}"))
}

/// Many processes on both sides: each dependency transition is one count
/// update, and the dependents are released together once the last is RUNNING.
#[test]
fn a_wide_dependency_releases_every_dependent_once_all_are_running() {
    let d = Daemon::start(
        "  db:\n    cmd: sleep 1000\n    numprocs: 200\n    starttime: 0.5\n  api:\n    cmd: sleep 1000\n    \
         numprocs: 200\n    starttime: 0\n    depends_on: [db]\n",
    );
    wait_until(60.0, "every process RUNNING", || {
        d.status().iter().all(|p| p["state"] == "RUNNING")
    });
    let log = d.log_text();
    let last_db = (0..200)
        .map(|i| log.find(&format!("db:{i}: STARTING -> RUNNING")).unwrap())
        .max()
        .unwrap();
    let first_api = (0..200)
        .map(|i| log.find(&format!("api:{i}: spawned pid")).unwrap())
        .min()
        .unwrap();
    assert!(
        last_db < first_api,
        "an api process spawned before every db was RUNNING"
    );
    let reply = d.cmd("stop all");
    assert_eq!(reply.matches(": stopped\n").count(), 400, "{reply}");
}

/// `stop all` holds db's stop while web stops; another client starts web
/// again meanwhile. The held stop must not wait for web forever: it goes,
/// and the `stop all` client gets its reply (it used to hang for good).
#[test]
fn a_dependent_started_again_does_not_hold_its_dependency_stop_forever() {
    let d = Daemon::configure("", "");
    let go = d.path("go");
    let programs = format!(
        "  db:\n    cmd: sleep 1000\n    starttime: 0\n  web:\n    cmd: \"sh -c 'trap \\\"until [ -e {g} ]; \
         do sleep 0.05; done; exit 0\\\" TERM; while :; do sleep 0.05; done'\"\n    starttime: 0\n    \
         stoptime: 30\n    depends_on: [db]\n",
        g = go.display()
    );
    std::fs::write(
        &d.conf,
        std::fs::read_to_string(&d.conf).unwrap() + &programs,
    )
    .unwrap();
    let d = d.launch(&[]);
    all_running(&d, &["db:0", "web:0"]);
    let mut stop = BufReader::new(d.connect());
    stop.get_mut().write_all(b"stop all\n").unwrap();
    d.wait_state("web:0", "STOPPING", 10.0);
    let mut start = BufReader::new(d.connect());
    start.get_mut().write_all(b"start web\n").unwrap();
    // web is still STOPPING; a status round trip proves `start web` was read.
    wait_until(10.0, "db's stop held", || {
        d.state("db:0") == "RUNNING" && d.state("web:0") == "STOPPING"
    });
    std::fs::write(&go, "").unwrap();
    assert_eq!(read_reply(&mut start), "web:0: started\nOK\n");
    let reply = read_reply(&mut stop);
    assert!(reply.contains("db:0: stopped\n"), "{reply}");
    assert_eq!(d.state("db:0"), "STOPPED");
}

#[test]
fn a_retry_waits_for_a_dependency_that_went_down() {
    let d = Daemon::start(
        "  db:\n    cmd: sleep 1000\n    starttime: 0\n  api:\n    cmd: sleep 1000\n    \
         starttime: 60\n    startretries: 10\n    depends_on: [db]\n",
    );
    d.wait_state("db:0", "RUNNING", 10.0);
    d.wait_state("api:0", "STARTING", 10.0);
    let first = d.pid("api:0").expect("api's pid");
    assert_eq!(d.cmd("stop db"), "db:0: stopped\nOK\n");
    // api dies before its starttime: a failed start, retried in about 1 s...
    unsafe { libc::kill(first, libc::SIGKILL) };
    // ...but db is down: the retry waits for it instead of spawning.
    wait_until(10.0, "api to wait for db", || {
        d.proc("api:0")["message"] == "waiting for db (ready)"
    });
    let api = d.proc("api:0");
    assert_eq!(api["state"], "NOT_STARTED", "{api}");
    assert_eq!(api["pid"], serde_json::Value::Null, "{api}");
    // db back: api is started for it, without anyone asking.
    assert_eq!(d.cmd("start db"), "db:0: started\nOK\n");
    d.wait_state("api:0", "STARTING", 10.0);
    assert_ne!(d.pid("api:0"), Some(first));
}
