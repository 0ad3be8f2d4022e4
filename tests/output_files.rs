//! A program's stdout/stderr must be a regular file or /dev/null: a FIFO or a
//! device would block the daemon in open(), so it is a spawn error instead.
mod common;
use common::*;
use std::fs::OpenOptions;
use std::io::{BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
}

/// One `status` round trip, bounded: a stalled daemon fails here, not hangs.
fn timed_status(d: &Daemon) -> Duration {
    let t = Instant::now();
    let s = UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut r = BufReader::new(s);
    r.get_mut().write_all(b"status\n").unwrap();
    let reply = read_reply(&mut r);
    assert!(reply.ends_with("OK\n"), "{reply}");
    t.elapsed()
}

/// The open-file flags of `fd` in process `pid` (octal in /proc).
fn fd_flags(pid: i32, fd: i32) -> u32 {
    let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}")).expect("fdinfo");
    let flags = info
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .expect("a flags line");
    u32::from_str_radix(flags.trim(), 8).expect("octal flags")
}

#[test]
fn fifo_and_device_outputs_are_spawn_errors_and_the_daemon_stays_responsive() {
    let d = Daemon::configure("", "");
    let lonely = d.path("lonely.fifo");
    let heard = d.path("heard.fifo");
    mkfifo(&lonely);
    mkfifo(&heard);
    // A reader holding the FIFO open: an open for writing would succeed, so
    // only the file-type check stands between the daemon and a blocking write.
    let _reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&heard)
        .expect("open the FIFO for reading");
    let programs = format!(
        "  lonely:\n    cmd: sleep 100\n    stdout: {}\n    startretries: 0\n\
         \x20 heard:\n    cmd: sleep 100\n    stdout: {}\n    startretries: 1\n\
         \x20 device:\n    cmd: sleep 100\n    stderr: /dev/zero\n    startretries: 0\n\
         \x20 ok:\n    cmd: sleep 100\n    starttime: 0\n",
        lonely.display(),
        heard.display()
    );
    let text = std::fs::read_to_string(&d.conf).unwrap() + &programs;
    std::fs::write(&d.conf, text).unwrap();
    let d = d.launch(&[]);
    // Bounded first: before the fix the daemon hangs in open() right at boot,
    // and the harness's own reads would then wait forever.
    let t = timed_status(&d);
    assert!(t < Duration::from_secs(1), "status took {t:?}");

    d.wait_state("lonely:0", "FATAL", 5.0);
    d.wait_state("device:0", "FATAL", 5.0);
    d.wait_state("ok:0", "RUNNING", 5.0);
    let heard_state = d.state("heard:0");
    assert!(
        heard_state == "BACKOFF" || heard_state == "FATAL",
        "{heard_state}"
    );
    d.wait_state("heard:0", "FATAL", 10.0);
    let msg = |n: &str| d.proc(n)["message"].as_str().unwrap_or("").to_string();
    for (name, want) in [
        (
            "lonely:0",
            format!(
                "spawn error: stdout {}: not a regular file",
                lonely.display()
            ),
        ),
        (
            "heard:0",
            format!(
                "spawn error: stdout {}: not a regular file",
                heard.display()
            ),
        ),
        (
            "device:0",
            "spawn error: stderr /dev/zero: not a regular file".to_string(),
        ),
    ] {
        let m = msg(name);
        assert!(m.contains(&want), "{name}: {m}");
    }
    let human = d.cmd("status lonely");
    assert!(human.contains("not a regular file"), "{human}");
    for _ in 0..20 {
        let t = timed_status(&d);
        assert!(t < Duration::from_secs(1), "status took {t:?}");
    }
}

#[test]
fn dev_null_and_regular_files_work_and_reach_the_child_with_ordinary_flags() {
    let d = Daemon::start(
        "  quiet:\n    cmd: \"sh -c 'echo out; echo err >&2; exec sleep 100'\"\n    stdout: /dev/null\n    stderr: /dev/null\n    starttime: 0\n\
         \x20 logged:\n    cmd: \"sh -c 'echo out; echo err >&2; exec sleep 100'\"\n    workingdir: .\n    stdout: out.txt\n    stderr: out.txt\n    starttime: 0\n",
    );
    d.wait_state("quiet:0", "RUNNING", 5.0);
    d.wait_state("logged:0", "RUNNING", 5.0);
    let out = d.path("out.txt");
    wait_until(5.0, "both lines in out.txt", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s.contains("out\n") && s.contains("err\n"))
    });
    // The child writes into the daemon's pipes, which are blocking on its
    // side (back-pressure slows a flooding child instead of losing bytes).
    let nonblock = libc::O_NONBLOCK as u32;
    for name in ["quiet:0", "logged:0"] {
        let pid = d.pid(name).expect("a pid");
        for fd in [1, 2] {
            let flags = fd_flags(pid, fd);
            assert_eq!(flags & nonblock, 0, "{name} fd {fd}: {flags:o}");
            let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
            assert!(target.to_string_lossy().starts_with("pipe:"), "{target:?}");
        }
    }
}

/// An output path that is a symlink is never followed: a program running as
/// another user could swap its file for a link to a root file.
#[test]
fn a_symlinked_output_path_is_refused() {
    let d = Daemon::configure(
        "  p:\n    cmd: \"echo hi\"\n    workingdir: .\n    stdout: link.out\n    startretries: 0\n",
        "",
    );
    std::fs::write(d.path("victim"), "untouched\n").unwrap();
    std::os::unix::fs::symlink(d.path("victim"), d.path("link.out")).unwrap();
    let d = d.launch(&[]);
    d.wait_state("p:0", "FATAL", 10.0);
    let msg = d.proc("p:0")["message"].as_str().unwrap().to_string();
    assert!(msg.contains("is a symlink"), "{msg}");
    assert_eq!(
        std::fs::read_to_string(d.path("victim")).unwrap(),
        "untouched\n"
    );
}
