//! taskmasterctl: one-shot and script modes and their exit codes.
mod common;
#[path = "common/fake.rs"]
mod fake;
use common::*;
use fake::Fake;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest any taskmasterctl run may take in these tests.
const CTL_LIMIT: f64 = 30.0;

fn spawn_ctl(args: &[&OsStr], stdin: Stdio) -> Child {
    Command::new(CTL)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn taskmasterctl")
}

fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut v);
        }
        v
    })
}

/// Waits for `child` at most `secs` (then kills it and fails), calling `tick`
/// meanwhile; its output is read as it comes, so a full pipe cannot stall it.
fn finish(mut child: Child, secs: f64, mut tick: impl FnMut()) -> Output {
    let (out, err) = (drain(child.stdout.take()), drain(child.stderr.take()));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("taskmasterctl still running after {secs}s");
        }
        tick();
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    }
}

fn ctl_at(sock: &Path, args: &[&str]) -> Output {
    let mut all = vec!["-s".as_ref(), sock.as_os_str()];
    all.extend(args.iter().map(OsStr::new));
    finish(spawn_ctl(&all, Stdio::null()), CTL_LIMIT, || {})
}

fn ctl(d: &Daemon, args: &[&str]) -> Output {
    ctl_at(&d.sock, args)
}

/// taskmasterctl in script mode: `args`, then `input` on its stdin.
fn script(args: &[&OsStr], input: &[u8]) -> Output {
    let mut child = spawn_ctl(args, Stdio::piped());
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write the script");
    finish(child, CTL_LIMIT, || {})
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn one_shot_exit_codes() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n  b:\n    cmd: sleep 100\n    autostart: false\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = ctl(&d, &["status", "a"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("a:0  RUNNING"));
    let out = ctl(&d, &["status"]);
    assert_eq!(out.status.code(), Some(3), "b is not running");
    let out = ctl(&d, &["start", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stderr), "ERR unknown name: nope\n");
    let out = ctl(&d, &["start", "b"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(0), "b:0: started\n".into())
    );
    assert_eq!(ctl(&d, &["status", "--json"]).status.code(), Some(0));
    assert_eq!(ctl(&d, &["--bogus"]).status.code(), Some(2));
    let out = ctl_at("/nonexistent/sock".as_ref(), &["status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr)
        .starts_with("taskmasterctl: cannot reach taskmasterd at /nonexistent/sock"));
    for bad in ["0", "-1", "abc", "nan", "1e9"] {
        let out = ctl(&d, &["-t", bad, "status"]);
        assert_eq!(out.status.code(), Some(2), "-t {bad}");
        assert!(text(&out.stderr).contains("-t expects seconds"), "-t {bad}");
    }
    assert_eq!(ctl(&d, &["-t"]).status.code(), Some(2));
    let out = ctl(&d, &["--timeout", "0.5", "status", "a"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn script_mode_and_config_socket() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = script(
        &["-c".as_ref(), d.conf.as_os_str()],
        b"status\n\nstop a\nstart zzz\nstatus a\n",
    );
    assert_eq!(out.status.code(), Some(3), "highest of 0, 0, 1, 3");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("a:0: stopped\n"), "{stdout}");
    assert!(stdout.contains("a:0  STOPPED"), "{stdout}");
    assert_eq!(text(&out.stderr), "ERR unknown name: zzz\n");
}

#[test]
fn piped_output_is_plain_and_help_works_without_a_daemon() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = ctl(&d, &["status"]);
    assert!(!text(&out.stdout).contains('\x1b'), "{:?}", out.stdout);
    let out = ctl_at("/nonexistent/sock".as_ref(), &["help", "restart"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("usage: restart NAMES\n"));
    let out = ctl(&d, &["help", "bogus"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn script_mode_shuts_down_without_asking() {
    let mut d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let out = script(&["-s".as_ref(), d.sock.as_os_str()], b"shutdown\n");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(d.wait_exit(10.0).success());
}

/// The lines taskmasterctl wrote on stderr.
fn err_lines(out: &Output) -> Vec<String> {
    text(&out.stderr).lines().map(str::to_string).collect()
}

#[test]
fn a_daemon_that_accepts_and_never_answers_gives_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("silent.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut held = Vec::new();
    for (cmd, why) in [
        ("status", "no reply within 0.5s".to_string()),
        // A deferred reply waits while the daemon answers liveness checks:
        // this one accepts them too, and answers none.
        (
            "stop a",
            "no reply to `stop a` yet, and a liveness check got no answer within 0.5s".into(),
        ),
    ] {
        let mut args = vec![
            "-s".as_ref(),
            sock.as_os_str(),
            "-t".as_ref(),
            "0.5".as_ref(),
        ];
        args.extend(cmd.split(' ').map(OsStr::new));
        let t0 = Instant::now();
        let out = finish(spawn_ctl(&args, Stdio::null()), 10.0, || {
            while let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
        });
        let took = t0.elapsed();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let line = format!(
            "taskmasterctl: taskmasterd at {} is not responding ({why})",
            sock.display()
        );
        assert_eq!(err_lines(&out), vec![line], "{cmd}");
        assert!(took < Duration::from_secs(5), "{cmd} took {took:?}");
    }
    assert_eq!(
        held.len(),
        3,
        "two requests and one liveness check connected"
    );
}

#[test]
fn a_listener_that_never_accepts_times_the_connect_out() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("full.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    // The smallest backlog, filled by connects that are kept open: the next
    // connect() has to wait for an accept() that never comes.
    assert_eq!(unsafe { libc::listen(listener.as_raw_fd(), 0) }, 0);
    let mut queued = Vec::new();
    loop {
        match mio::net::UnixStream::connect(&sock) {
            Ok(s) => queued.push(s),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("filling the backlog: {e}"),
        }
        assert!(queued.len() < 1000, "the backlog never filled");
    }
    let t0 = Instant::now();
    let out = ctl_at(&sock, &["-t", "0.5", "status"]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(2));
    let line = format!(
        "taskmasterctl: taskmasterd at {} is not responding (connect timed out after 0.5s)",
        sock.display()
    );
    assert_eq!(err_lines(&out), vec![line]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    drop(queued);
}

/// A program that ignores its stopsignal: `stop` takes the whole stoptime.
const STUBBORN: &str =
    "  stubborn:\n    cmd: sh -c 'trap \"\" TERM; sleep 100'\n    starttime: 0\n    stoptime: 3\n";

/// Waits until the stubborn process ignores SIGTERM: its shell forked `sleep`
/// after the trap, so both are in its group.
fn wait_stubborn(d: &Daemon) {
    d.wait_state("stubborn:0", "RUNNING", 5.0);
    let pid = d.pid("stubborn:0").expect("a pid");
    wait_until(5.0, "the trap to be set", || group_members(pid).len() >= 2);
}

#[test]
fn deferred_replies_wait_past_the_timeout_while_the_daemon_answers() {
    let mut d = Daemon::start(STUBBORN);
    wait_stubborn(&d);
    let t0 = Instant::now();
    let out = ctl(&d, &["-t", "0.5", "stop", "stubborn"]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "stubborn:0: stopped\n");
    assert!(
        took >= Duration::from_secs(2),
        "SIGKILL comes after 3s: {took:?}"
    );
    // shutdown too: the daemon answers checks until it removes its socket.
    assert_eq!(ctl(&d, &["start", "stubborn"]).status.code(), Some(0));
    wait_stubborn(&d);
    let t0 = Instant::now();
    let out = ctl(&d, &["-t", "0.5", "shutdown"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(t0.elapsed() >= Duration::from_secs(2));
    assert!(d.wait_exit(10.0).success());
}

/// SIGCONTs the daemon when dropped, even if the test fails while it is stopped.
struct Frozen(i32);

impl Drop for Frozen {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[test]
fn a_deferred_reply_gives_up_when_the_daemon_stops_answering() {
    let d = Daemon::start(STUBBORN);
    wait_stubborn(&d);
    let args = [
        "-s",
        d.sock.to_str().unwrap(),
        "-t",
        "0.5",
        "stop",
        "stubborn",
    ];
    let child = spawn_ctl(&args.map(OsStr::new), Stdio::null());
    wait_until(5.0, "stubborn to be STOPPING", || {
        d.state("stubborn:0") == "STOPPING"
    });
    let pid = d.child.as_ref().expect("running").id() as i32;
    let frozen = Frozen(pid);
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let out = finish(child, 10.0, || {});
    drop(frozen);
    assert_eq!(out.status.code(), Some(2));
    let line = format!(
        "taskmasterctl: taskmasterd at {} is not responding (no reply to `stop stubborn` yet, \
         and a liveness check got no answer within 0.5s)",
        d.sock.display()
    );
    assert_eq!(err_lines(&out), vec![line]);
    // The daemon carries on with the stop once it runs again.
    d.wait_state("stubborn:0", "STOPPED", 10.0);
}

#[test]
fn config_socket_is_read_even_from_a_broken_file() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 5.0);
    let valid = std::fs::read_to_string(&d.conf).unwrap();
    let conf = ["-c".as_ref(), d.conf.as_os_str(), "status".as_ref()];
    let broken = [
        // Being edited: an unknown key and a bad value.
        format!("{valid}    numprocs: zero\nbogus: 1\n"),
        // Not even YAML any more.
        format!("{valid}  b: [\n    cmd: \"sleep\n"),
    ];
    for file in broken {
        std::fs::write(&d.conf, &file).unwrap();
        assert!(taskmaster::config::load(&d.conf).is_err(), "{file}");
        let out = finish(spawn_ctl(&conf, Stdio::null()), CTL_LIMIT, || {});
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with("a:0  RUNNING"), "{file}");
    }
    std::fs::write(&d.conf, "socket: 42\nprograms: {}\n").unwrap();
    let out = finish(spawn_ctl(&conf, Stdio::null()), CTL_LIMIT, || {});
    assert_eq!(out.status.code(), Some(2));
    let line = format!(
        "taskmasterctl: {}: socket: expected a path",
        d.conf.display()
    );
    assert_eq!(err_lines(&out), vec![line]);
}

#[test]
fn tail_body_lines_are_unstuffed() {
    let fake = Fake::serve(|c| {
        let asked = c.line();
        c.send(b"..x\n.OK\n.ERR not the end\n.\nplain\nOK\n");
        asked
    });
    let out = ctl_at(&fake.sock, &["tail", "-n", "5", "web:0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), ".x\nOK\nERR not the end\n\nplain\n");
    assert_eq!(fake.result(), "tail -n 5 web:0");
}

#[test]
fn tail_follow_prints_lines_as_they_come_and_ctrl_c_ends_it_cleanly() {
    let (asked_tx, asked) = std::sync::mpsc::channel();
    let fake = Fake::serve(move |c| {
        // taskmasterctl handles Ctrl-C before it connects.
        let _ = asked_tx.send(c.line());
        c.send(b"first\n..dots\n");
        // What ends the follow: any line from the client.
        let ended_by = c.line();
        c.send(b".OK\nOK\n");
        ended_by
    });
    let args = ["-s", fake.sock.to_str().unwrap(), "tail", "-f", "web"];
    let child = spawn_ctl(&args.map(OsStr::new), Stdio::null());
    let pid = child.id() as i32;
    let asked = asked.recv_timeout(IO_TIMEOUT).expect("the request");
    assert_eq!(asked, "tail -f web");
    unsafe { libc::kill(pid, libc::SIGINT) };
    let out = finish(child, CTL_LIMIT, || {});
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "first\n.dots\nOK\n");
    assert_eq!(text(&out.stderr), "");
    assert_eq!(fake.result(), "", "an empty line ends the follow");
}

#[test]
fn tail_follow_into_a_pipe_that_closes_ends_the_follow() {
    let fake = Fake::serve(|c| {
        c.line();
        // Lines keep coming, as from a busy process, until the client says stop.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut sent = 0;
        let ended_by = loop {
            assert!(Instant::now() < deadline, "the follow was never ended");
            c.send(format!("line {sent}\n").as_bytes());
            sent += 1;
            if let Some(l) = c.line_within(Duration::from_millis(20)) {
                break l;
            }
        };
        c.send(b"OK\n");
        ended_by
    });
    let args = [
        "-s".as_ref(),
        fake.sock.as_os_str(),
        "tail".as_ref(),
        "-f".as_ref(),
        "web".as_ref(),
    ];
    let mut child = spawn_ctl(&args, Stdio::null());
    // As `| head -n 1`: one line read, then the pipe is closed.
    let mut first = [0u8; 7];
    child
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("a line");
    assert_eq!(&first, b"line 0\n");
    let out = finish(child, CTL_LIMIT, || {});
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fake.result(), "");
}

#[test]
fn tail_follow_cut_off_by_the_daemon_is_an_error() {
    let fake = Fake::serve(|c| {
        c.line();
        c.send(b"a line\n");
    });
    let out = ctl_at(&fake.sock, &["tail", "-f", "web"]);
    fake.result();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "a line\n");
    assert_eq!(
        err_lines(&out),
        ["taskmasterctl: the daemon closed the connection"]
    );
    // An unknown name ends a follow at once, as an ERR.
    let fake = Fake::serve(|c| {
        c.line();
        c.send(b"ERR unknown name: nope\n");
    });
    let out = ctl_at(&fake.sock, &["tail", "-f", "nope"]);
    fake.result();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(err_lines(&out), ["ERR unknown name: nope"]);
}

#[test]
fn attach_needs_a_terminal() {
    // Not even a connection is made: stdin is no terminal.
    let out = ctl_at("/nonexistent/sock".as_ref(), &["attach", "web:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err_lines(&out), ["taskmasterctl: attach needs a terminal"]);
}

#[test]
fn a_closed_stdout_ends_the_client_quietly() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n    numprocs: 50\n    starttime: 0\n");
    d.wait_state("a:49", "RUNNING", 10.0);
    for cmd in ["metrics", "status", "help"] {
        // `taskmasterctl metrics | head -0`: the reader is gone before the
        // client writes (the end of the pipe we keep is closed at once).
        let mut child = Command::new(CTL)
            .args(["-s".as_ref(), d.sock.as_os_str(), cmd.as_ref()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn taskmasterctl");
        drop(child.stdout.take());
        let err = drain(child.stderr.take());
        let mut status = None;
        wait_until(CTL_LIMIT, "taskmasterctl to exit", || {
            status = child.try_wait().expect("try_wait");
            status.is_some()
        });
        let err = text(&err.join().expect("stderr"));
        assert!(!err.contains("panicked"), "{cmd}: {err}");
        assert_eq!(status.and_then(|s| s.code()), Some(0), "{cmd}: {err}");
    }
}
