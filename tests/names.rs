//! Names → processes: `PROGRAM`, `PROGRAM:N`, `PROGRAM:*` among programs whose
//! names prefix each other, and processes a reload retired (still stopping)
//! that no name reaches any more. The names are resolved by a binary search
//! over the status order (src/supervisor/names.rs), not a map of names.
mod common;
use common::*;

/// The process names of a `status` reply, in order.
fn names(reply: &str) -> Vec<String> {
    assert!(reply.ends_with("OK\n"), "{reply}");
    reply
        .lines()
        .filter(|l| *l != "OK")
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

const STUBBORN: &str = "\"sh -c 'trap \\\"\\\" TERM; while :; do sleep 0.1; done'\"";

#[test]
fn program_names_that_prefix_each_other_resolve_exactly() {
    let progs = "  a:\n    cmd: sleep 100\n    numprocs: 3\n    starttime: 0\n  \
                 ab:\n    cmd: sleep 100\n    starttime: 0\n  \
                 b:\n    cmd: sleep 100\n    numprocs: 2\n    starttime: 0\n";
    let d = Daemon::start(progs);
    for n in ["a:0", "a:1", "a:2", "ab:0", "b:0", "b:1"] {
        d.wait_state(n, "RUNNING", 10.0);
    }
    assert_eq!(names(&d.cmd("status a")), ["a:0", "a:1", "a:2"]);
    assert_eq!(names(&d.cmd("status a:*")), ["a:0", "a:1", "a:2"]);
    assert_eq!(names(&d.cmd("status ab")), ["ab:0"]);
    assert_eq!(names(&d.cmd("status a:2")), ["a:2"]);
    assert_eq!(
        names(&d.cmd("status b a:1 a")),
        ["a:0", "a:1", "a:2", "b:0", "b:1"]
    );
    assert_eq!(d.cmd("status a:3"), "ERR unknown name: a:3\n");
    assert_eq!(d.cmd("status abc"), "ERR unknown name: abc\n");
    assert_eq!(d.cmd("status 0"), "ERR unknown name: 0\n");
    assert_eq!(d.cmd("status :0"), "ERR unknown name: :0\n");
}

/// Replaces the programs of `d`'s config file.
fn set_programs(d: &Daemon, programs: &str) {
    let text = std::fs::read_to_string(&d.conf).unwrap();
    let (head, _) = text.split_once("programs:\n").unwrap();
    std::fs::write(&d.conf, format!("{head}programs:\n{programs}")).unwrap();
}

#[test]
fn retired_processes_are_not_named_by_their_program() {
    // They ignore SIGTERM: once scaled or removed away they stay STOPPING, retired.
    let a = |n: u32| {
        format!(
            "  a:\n    cmd: {STUBBORN}\n    numprocs: {n}\n    starttime: 0\n    stoptime: 60\n"
        )
    };
    let b = format!("  b:\n    cmd: {STUBBORN}\n    starttime: 0\n    stoptime: 60\n");
    let mut d = Daemon::start(&format!("{}{b}", a(3)));
    let mut pids = Vec::new();
    for n in ["a:0", "a:1", "a:2", "b:0"] {
        d.wait_state(n, "RUNNING", 10.0);
        pids.push(d.pid(n).unwrap());
    }
    set_programs(&d, &a(1));
    let reply = d.cmd("reload");
    assert!(
        reply.ends_with("OK\n") && reply.contains("removed b"),
        "{reply}"
    );
    wait_until(10.0, "the retired processes STOPPING", || {
        let all = d.cmd("status");
        ["a:1", "a:2", "b:0"].iter().all(|n| {
            all.lines()
                .any(|l| l.starts_with(n) && l.contains("STOPPING"))
        })
    });
    // Still listed by `status`, but no name reaches them.
    assert_eq!(names(&d.cmd("status a")), ["a:0"]);
    assert_eq!(d.cmd("status a:1"), "ERR unknown name: a:1\n");
    assert_eq!(d.cmd("status b"), "ERR unknown name: b\n");
    assert_eq!(d.cmd("stop b:0"), "ERR unknown name: b:0\n");
    // Scaled up again: the new a:1 is named, the retired one still is not.
    set_programs(&d, &a(2));
    assert!(d.cmd("reload").ends_with("OK\n"));
    let reply = d.cmd("status a:1");
    assert_eq!(names(&reply), ["a:1"]);
    assert!(!reply.contains("STOPPING"), "{reply}");
    assert_eq!(names(&d.cmd("status a")), ["a:0", "a:1"]);
    // A second SIGTERM kills the stubborn ones at once.
    d.signal(libc::SIGTERM);
    d.wait_log("shutting down", 5.0);
    d.signal(libc::SIGTERM);
    assert_eq!(d.wait_exit(10.0).code(), Some(0));
    for pid in pids {
        assert!(!alive(pid), "{pid} survived");
    }
}
