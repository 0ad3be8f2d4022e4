//! `taskmasterd -d`: the launcher's verdict, the pidfile, and the systemd
//! notifications on NOTIFY_SOCKET.
mod common;
use common::*;
use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A detached daemon, ended by the test if it fails halfway.
struct Detached(i32);

impl Drop for Detached {
    fn drop(&mut self) {
        if alive(self.0) {
            unsafe { libc::kill(self.0, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(self.0) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}

/// Runs the launcher; its exit status and stderr, both within a deadline (a
/// daemon that kept the launcher's pipes would make this fail, not hang).
fn launch(args: &[&str]) -> (ExitStatus, String) {
    let mut child = Command::new(DAEMON)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn taskmasterd");
    let mut err = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    let mut status = None;
    wait_until(20.0, "the launcher to exit", || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    let text = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("the launcher's stderr closes when it exits");
    (status.expect("status"), text)
}

fn pid_in(path: &Path) -> i32 {
    let text = std::fs::read_to_string(path).expect("pidfile");
    text.trim().parse().expect("a pid")
}

#[test]
fn detached_daemon_serves_writes_its_pidfile_and_removes_it() {
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n    starttime: 0.1\n", "");
    let pidfile = d.path("d.pid");
    let conf = d.conf.to_str().expect("utf-8");
    let (status, err) = launch(&[
        "-c",
        conf,
        "-d",
        "--pidfile",
        pidfile.to_str().expect("utf-8"),
    ]);
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    // Serving already: no waiting for the socket.
    assert!(d.cmd("status").contains("a:0"));
    let pid = pid_in(&pidfile);
    let _guard = Detached(pid);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("daemon alive");
    assert!(stat.contains("(taskmasterd)"), "{stat}");
    // Detached: a session of its own, and no terminal.
    let sid = unsafe { libc::getsid(pid) };
    assert_eq!(sid, unsafe { libc::getpgid(pid) });
    assert_ne!(sid, unsafe { libc::getsid(0) });
    d.wait_state("a:0", "RUNNING", 5.0);
    assert_eq!(d.cmd("shutdown"), "OK\n");
    wait_until(10.0, "the daemon to exit", || !alive(pid));
    assert!(!pidfile.exists(), "pidfile removed on exit");
}

#[test]
fn daemonize_key_and_pidfile_key() {
    let d = Daemon::configure(
        "  a:\n    cmd: sleep 100\n",
        "daemonize: true\npidfile: d.pid\n",
    );
    let (status, err) = launch(&["-c", d.conf.to_str().expect("utf-8")]);
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    // A relative pidfile is beside the config, not in the daemon's `/`.
    let pidfile = d.path("d.pid");
    let pid = pid_in(&pidfile);
    let _guard = Detached(pid);
    assert_eq!(d.cmd("shutdown"), "OK\n");
    wait_until(10.0, "the daemon to exit", || !alive(pid));
    assert!(!pidfile.exists());
}

#[test]
fn errors_reach_the_terminal_and_exit_1() {
    // A config error, found before detaching.
    let d = Daemon::configure("  a:\n    cmdx: sleep 100\n", "");
    let (status, err) = launch(&["-c", d.conf.to_str().expect("utf-8"), "-d"]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("t.yaml:") && err.contains("cmdx"), "{err}");
    // An error of the daemon process itself (the socket cannot be bound).
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let text = std::fs::read_to_string(&d.conf).expect("conf");
    let missing = d.path("missing/s.sock");
    let text = text.replace(
        &d.sock.display().to_string(),
        &missing.display().to_string(),
    );
    std::fs::write(&d.conf, text).expect("write conf");
    let (status, err) = launch(&["-c", d.conf.to_str().expect("utf-8"), "-d"]);
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("cannot bind"), "{err}");
}

#[test]
fn a_live_pidfile_refuses_a_second_start() {
    let a = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let pidfile = a.path("d.pid");
    let pf = pidfile.to_str().expect("utf-8");
    let (status, err) = launch(&["-c", a.conf.to_str().expect("utf-8"), "-d", "--pidfile", pf]);
    assert_eq!(status.code(), Some(0), "{err}");
    let pid = pid_in(&pidfile);
    let _guard = Detached(pid);
    // Another socket, the same pidfile.
    let b = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let (status, err) = launch(&["-c", b.conf.to_str().expect("utf-8"), "-d", "--pidfile", pf]);
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains(&format!("already running (pid {pid}")),
        "{err}"
    );
    assert!(!b.sock.exists());
    assert_eq!(pid_in(&pidfile), pid);
    assert_eq!(a.cmd("shutdown"), "OK\n");
    wait_until(10.0, "the daemon to exit", || !alive(pid));
    // A stale pidfile (no such process) is replaced.
    std::fs::write(&pidfile, "999999999\n").expect("write");
    let (status, err) = launch(&["-c", b.conf.to_str().expect("utf-8"), "-d", "--pidfile", pf]);
    assert_eq!(status.code(), Some(0), "{err}");
    let pid = pid_in(&pidfile);
    let _guard = Detached(pid);
    assert_eq!(b.cmd("shutdown"), "OK\n");
    wait_until(10.0, "the daemon to exit", || !alive(pid));
}

fn recv(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn notify_socket_gets_ready_reloading_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify");
    let sock = UnixDatagram::bind(&path).expect("bind");
    sock.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    // The child prints what it inherited: NOTIFY_SOCKET must not be there.
    let prog = "  a:\n    cmd: \"sh -c 'echo N=$NOTIFY_SOCKET; sleep 100'\"\n    starttime: 0.1\n";
    let mut d = Daemon::configure(prog, "");
    d.relaunch(&[("NOTIFY_SOCKET", path.to_str().expect("utf-8"))]);
    assert_eq!(recv(&sock), "READY=1");
    d.wait_state("a:0", "RUNNING", 5.0);
    wait_until(5.0, "the child's output", || d.cmd("tail a").contains("N="));
    assert!(d.cmd("tail a").contains("N=\n"), "{}", d.cmd("tail a"));
    d.signal(libc::SIGHUP);
    let reloading = recv(&sock);
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    assert_eq!(recv(&sock), "READY=1");
    d.cmd("reload");
    assert!(recv(&sock).starts_with("RELOADING=1"));
    assert_eq!(recv(&sock), "READY=1");
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert_eq!(recv(&sock), "STOPPING=1");
    assert!(d.wait_exit(10.0).success());
}

#[test]
fn notify_socket_in_the_abstract_namespace() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!(
        "taskmaster-test-{}-{:?}",
        std::process::id(),
        Instant::now()
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("addr");
    let sock = UnixDatagram::bind_addr(&addr).expect("bind");
    sock.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let mut d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    d.relaunch(&[("NOTIFY_SOCKET", &format!("@{name}"))]);
    assert_eq!(recv(&sock), "READY=1");
    d.signal(libc::SIGTERM);
    assert_eq!(recv(&sock), "STOPPING=1");
    assert!(d.wait_exit(10.0).success());
}

#[test]
fn an_unreachable_notify_socket_is_logged_once_and_harmless() {
    let mut d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let nowhere = d.path("nobody-listens");
    d.relaunch(&[("NOTIFY_SOCKET", nowhere.to_str().expect("utf-8"))]);
    d.wait_log("cannot send READY=1", 5.0);
    d.signal(libc::SIGHUP);
    d.wait_log("reload", 5.0);
    assert_eq!(d.cmd("shutdown"), "OK\n");
    assert!(d.wait_exit(10.0).success());
    assert_eq!(d.log_text().matches("NOTIFY_SOCKET").count(), 1);
}

#[test]
fn a_fifo_at_the_pidfile_path_is_refused_not_waited_on() {
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let fifo = d.path("d.pid");
    let c = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Opening a FIFO for reading blocks until a writer comes: the launcher
    // must not (launch() fails the test after its deadline if it does).
    let (status, err) = launch(&[
        "-c",
        d.conf.to_str().expect("utf-8"),
        "-d",
        "--pidfile",
        fifo.to_str().expect("utf-8"),
    ]);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn the_detached_daemon_keeps_no_inherited_fd() {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let d = Daemon::configure("  a:\n    cmd: sleep 100\n", "");
    let pidfile = d.path("d.pid");
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let wfd = w.as_raw_fd();
    let mut cmd = Command::new(DAEMON);
    cmd.arg("-c")
        .arg(&d.conf)
        .arg("-d")
        .arg("--pidfile")
        .arg(&pidfile)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // Only this launcher inherits the write end (as fd 9, without CLOEXEC),
    // as a shell's `$(…)` or a service manager's pipe would be inherited.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(wfd, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut child = cmd.spawn().expect("spawn taskmasterd");
    let mut status = None;
    wait_until(20.0, "the launcher to exit", || {
        status = child.try_wait().expect("try_wait");
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    let _guard = Detached(pid_in(&pidfile));
    drop(w);
    // Every writer gone (the launcher exited, the daemon closed its copy):
    // the reader sees end of file, within a deadline.
    let mut reader = std::fs::File::from(r);
    unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
    let mut eof = false;
    wait_until(10.0, "end of file on the inherited pipe", || {
        let mut buf = [0u8; 16];
        eof = matches!(reader.read(&mut buf), Ok(0));
        eof
    });
    assert!(eof);
    assert_eq!(d.cmd("shutdown"), "OK\n");
}
