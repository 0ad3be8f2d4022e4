//! Once settled after a boot or a reload, the daemon gives back the pages only
//! loading needed (src/footprint.rs), and goes on working from the pages it
//! maps back on use.
mod common;
use common::*;

/// Resident KiB and whether `MADV_RANDOM` was given ("rr"), for the daemon's
/// own code mapping.
fn own_code(pid: u32) -> Option<(u64, bool)> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    let exe = exe.to_str()?;
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let mut lines = smaps.lines();
    lines.find(|l| l.contains(" r-xp ") && l.ends_with(exe))?;
    let (mut rss, mut random) = (None, false);
    for l in lines {
        if let Some(v) = l.strip_prefix("Rss:") {
            rss = v.split_whitespace().next()?.parse().ok();
        }
        if let Some(flags) = l.strip_prefix("VmFlags:") {
            random = flags.split_whitespace().any(|f| f == "rr");
            break;
        }
    }
    Some((rss?, random))
}

#[test]
fn settled_daemon_releases_start_up_pages_and_keeps_working() {
    let mut d = Daemon::start(
        "  w:\n    cmd: sleep 100\n    numprocs: 3\n    starttime: 0.2\n    autorestart: always\n",
    );
    let pid = d.child.as_ref().unwrap().id();
    for i in 0..3 {
        d.wait_state(&format!("w:{i}"), "RUNNING", 10.0);
    }
    // No deadline is left once every process is RUNNING: the loop settles.
    wait_until(10.0, "the start-up pages to be released", || {
        own_code(pid).is_some_and(|(_, random)| random)
    });
    // Everything works from pages mapped back on demand: status, a crash and
    // its replacement, output, a reload that adds a program, stop.
    let victim = d.pid("w:1").expect("w:1 has a pid");
    unsafe { libc::kill(victim, libc::SIGKILL) };
    wait_until(10.0, "w:1 replaced", || {
        d.pid("w:1").is_some_and(|p| p != victim) && d.state("w:1") == "RUNNING"
    });
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(
        &d.conf,
        format!("{text}  e:\n    cmd: sh -c 'echo hello; sleep 100'\n"),
    )
    .unwrap();
    assert!(d.cmd("reload").contains("added e"));
    d.wait_state("e:0", "RUNNING", 10.0);
    wait_until(10.0, "e's output in its tail", || {
        d.cmd("tail e").contains("hello")
    });
    assert!(d.cmd("stop all").ends_with("OK\n"));
    assert!(own_code(pid).is_some_and(|(rss, _)| rss > 0));
    d.signal(libc::SIGTERM);
    assert!(d.wait_exit(20.0).success());
}
