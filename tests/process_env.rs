//! What the child sees: env, workingdir, umask, stdout/stderr, fds, signals.
mod common;
use common::*;

#[test]
fn env_workingdir_umask_and_outputs_seen_from_inside() {
    let d = Daemon::configure(
        "  probe:\n    cmd: \"sh -c 'echo \\\"$STARTED_BY $ANSWER $RATIO\\\"; pwd; umask; ls /proc/self/fd | sort -n | tr \\\"\\\\n\\\" \\\" \\\"; echo; echo oops >&2; touch made; exec sleep 100'\"\n    workingdir: work\n    umask: 027\n    stdout: out.txt\n    stderr: err.txt\n    starttime: 0.2\n    env:\n      STARTED_BY: taskmaster\n      ANSWER: 42\n      RATIO: 1.50\n",
        "",
    );
    std::fs::create_dir(d.path("work")).unwrap();
    // An fd the test leaves inheritable: the daemon must not pass it on.
    let leaked = unsafe { libc::dup(2) };
    assert!(leaked > 2);
    let d = d.launch(&[]);
    unsafe { libc::close(leaked) };
    d.wait_state("probe:0", "RUNNING", 5.0);
    wait_until(5.0, "the probe's output", || {
        file_lines(&d.path("out.txt")) >= 4
    });
    let out = std::fs::read_to_string(d.path("out.txt")).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "taskmaster 42 1.50");
    assert_eq!(
        lines[1],
        std::fs::canonicalize(d.path("work"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(lines[2], "0027");
    // ls sees 0 1 2 and the directory it is reading (3): nothing of the daemon.
    assert_eq!(lines[3].trim(), "0 1 2 3", "fds in the child: {}", lines[3]);
    assert_eq!(
        std::fs::read_to_string(d.path("err.txt")).unwrap(),
        "oops\n"
    );
    let mode = std::fs::metadata(d.path("work/made")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        mode.permissions().mode() & 0o777,
        0o640,
        "umask 027 applied"
    );
}

#[test]
fn outputs_append_and_discard() {
    let d = Daemon::configure(
        "  a:\n    cmd: \"sh -c 'echo line; echo err >&2'\"\n    stdout: both.txt\n    stderr: both.txt\n    starttime: 0\n    autorestart: never\n  quiet:\n    cmd: \"sh -c 'echo nowhere'\"\n    starttime: 0\n    autorestart: never\n",
        "",
    );
    std::fs::write(d.path("both.txt"), "old\n").unwrap();
    let d = d.launch(&[]);
    d.wait_state("a:0", "EXITED_EXPECTEDLY", 5.0);
    let text = std::fs::read_to_string(d.path("both.txt")).unwrap();
    assert_eq!(text, "old\nline\nerr\n");
    d.wait_state("quiet:0", "EXITED_EXPECTEDLY", 5.0);
}

#[test]
fn children_get_default_signal_dispositions_even_if_the_daemon_inherited_ignores() {
    // Launch the daemon with SIGINT ignored (as `sh -c 'taskmasterd &'` does).
    let d = Daemon::configure(
        "  i:\n    cmd: sleep 100\n    stopsignal: INT\n    stoptime: 5\n    starttime: 0.1\n",
        "",
    );
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "trap '' INT; exec {DAEMON} -c {}",
        d.conf.display()
    ));
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut d = d;
    d.child = Some(cmd.spawn().unwrap());
    let sock = d.sock.clone();
    wait_until(10.0, "socket", || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    });
    d.wait_state("i:0", "RUNNING", 5.0);
    let t0 = std::time::Instant::now();
    assert_eq!(d.cmd("stop i"), "i:0: stopped\nOK\n");
    assert!(
        t0.elapsed().as_secs() < 4,
        "SIGINT stopped it, no SIGKILL needed"
    );
    assert_eq!(d.proc("i:0")["signal"], "SIGINT");
}
