//! clone.rs against real processes: the slots after a spawn, what the child
//! gets, a failing exec.

use super::*;
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

fn pipe() -> (std::fs::File, OwnedFd) {
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

fn link(fd: RawFd) -> String {
    let l = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
    String::from_utf8_lossy(l.as_os_str().as_bytes()).into_owned()
}

fn cloexec(fd: RawFd) -> bool {
    unsafe { libc::fcntl(fd, libc::F_GETFD) & libc::FD_CLOEXEC != 0 }
}

/// The slots hold /dev/null, close-on-exec, as between spawns.
fn assert_slots_idle() {
    let slots = reserve_slots().unwrap();
    for fd in slots {
        assert!(fd > 2, "slot {fd}");
        assert_eq!(link(fd), "/dev/null", "slot {fd}");
        assert!(cloexec(fd), "slot {fd} inheritable");
    }
}

/// Reads `r` to EOF (which needs every write end closed, the slots' too),
/// failing after 20 s instead of hanging.
fn read_to_eof(r: &mut std::fs::File) -> String {
    let mut pfd = libc::pollfd {
        fd: r.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let (mut out, mut buf) = (Vec::new(), [0u8; 4096]);
    loop {
        let n = unsafe { libc::poll(&mut pfd, 1, 20_000) };
        assert!(n > 0, "no EOF within 20 s: a write end stayed open");
        let got = r.read(&mut buf).unwrap();
        if got == 0 {
            return String::from_utf8_lossy(&out).into_owned();
        }
        out.extend_from_slice(&buf[..got]);
    }
}

fn run(argv: &[&str], umask: Option<libc::mode_t>) -> (Result<i32, Failed>, String, String) {
    assert!(
        usable(),
        "CLOSE_RANGE_UNSHARE (Linux >= 5.9) not usable here"
    );
    let (mut out_r, out_w) = pipe();
    let (mut err_r, err_w) = pipe();
    let args: Vec<CString> = argv.iter().map(|a| CString::new(*a).unwrap()).collect();
    let mut ptrs: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env = [c"PATH=/usr/bin:/bin".as_ptr(), std::ptr::null()];
    let setup = ChildSetup::default();
    let req = Request {
        path: &args[0],
        argv: &ptrs,
        envp: &env,
        io: Io::Pipes {
            stdout: out_w.as_fd(),
            stderr: err_w.as_fd(),
        },
        workingdir: None,
        umask,
        own_group: true,
        setup: &setup,
    };
    let result = spawn(&req);
    assert_slots_idle();
    drop((out_w, err_w));
    let (out, err) = (read_to_eof(&mut out_r), read_to_eof(&mut err_r));
    if let Ok(pid) = result {
        assert_eq!(reap(pid), Some(0), "{argv:?}: {out} {err}");
    }
    (result, out, err)
}

#[test]
fn the_child_gets_only_its_three_streams_and_the_slots_return_to_dev_null() {
    // Many open descriptors in the parent, none inheritable-looking to it.
    let many: Vec<_> = (0..200).map(|_| pipe()).collect();
    let (r, out, err) = run(
        &[
            "/bin/sh",
            "-c",
            "echo oops >&2; umask; exec ls /proc/self/fd",
        ],
        Some(0o027),
    );
    assert!(r.is_ok(), "{r:?}");
    // 0, 1, 2 and the directory ls is reading (3): nothing of ours.
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, ["0027", "0", "1", "2", "3"], "{out}");
    assert_eq!(err, "oops\n");
    drop(many);
}

#[test]
fn a_failing_exec_reports_its_errno_and_is_reaped() {
    let (r, out, err) = run(&["/nonexistent/program"], None);
    match r {
        Err(Failed::Child(code)) => assert_eq!(code, libc::ENOENT, "{code:#x}"),
        other => panic!("{other:?}"),
    }
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
}

#[test]
fn own_group_makes_the_child_a_group_leader() {
    let (r, out, _) = run(&["/bin/sh", "-c", "ps -o pgid= -p $$; echo $$"], None);
    assert!(r.is_ok(), "{r:?}");
    let v: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(v.len(), 2, "{out}");
    assert_eq!(v[0], v[1], "pgid != pid: {out}");
}
