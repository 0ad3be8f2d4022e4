//! Spawning from a daemon with a big descriptor table (src/spawn/clone.rs):
//! what children get, signals during spawns, exec failures; the same through
//! the std fallback (`TASKMASTER_NO_CLONE_SPAWN=1`).

mod common;
use common::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

const FALLBACK: &[(&str, &str)] = &[("TASKMASTER_NO_CLONE_SPAWN", "1")];

fn daemon_pid(d: &Daemon) -> i32 {
    d.child.as_ref().expect("running").id() as i32
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// The pipe ends `pid` holds.
fn open_pipes(pid: i32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("pipe:"))
        })
        .count()
}

fn running_count(d: &Daemon, prefix: &str) -> usize {
    d.status()
        .iter()
        .filter(|p| p["state"] == "RUNNING" && p["name"].as_str().unwrap_or("").starts_with(prefix))
        .count()
}

#[test]
fn with_200_processes_running_a_child_still_sees_only_0_1_2() {
    for env in [&[][..], FALLBACK] {
        let d = Daemon::start_with(
            "  many:\n    cmd: sleep 1000\n    numprocs: 200\n    starttime: 0\n  fds:\n    cmd: \"sh -c 'exec ls /proc/self/fd'\"\n    autostart: false\n    autorestart: false\n    starttime: 0\n    exitcodes: [0]\n    stdout: fds.txt\n",
            "",
            env,
        );
        wait_until(60.0, "200 RUNNING", || running_count(&d, "many:") == 200);
        // A pidfd and two pipe ends each: the table the children must not get.
        let n = open_fds(daemon_pid(&d));
        assert!(n > 600, "the daemon holds only {n} fds");
        let pipes = open_pipes(daemon_pid(&d));
        assert!(d.cmd("start fds").ends_with("OK\n"));
        wait_until(10.0, "the fds listing", || {
            file_lines(&d.path("fds.txt")) >= 4
        });
        let text = std::fs::read_to_string(d.path("fds.txt")).unwrap();
        let fds: Vec<&str> = text.lines().collect();
        // 0, 1, 2 and the directory ls is reading.
        assert_eq!(fds, ["0", "1", "2", "3"], "{env:?}");
        // Its pipes saw EOF and were closed: the daemon kept no write end
        // (the spawn slots went back to /dev/null).
        d.wait_state("fds:0", "EXITED_EXPECTEDLY", 10.0);
        wait_until(10.0, "the exited child's pipes to close", || {
            open_pipes(daemon_pid(&d)) == pipes
        });
    }
}

/// Signals hitting the daemon while it spawns (all signals are blocked in it
/// around each clone): none may be lost (a SIGHUP reload still happens), the
/// daemon's handlers must not run in a child, and every child starts with
/// default dispositions and nothing blocked.
#[test]
fn a_signal_flood_during_start_all_is_neither_lost_nor_inherited() {
    let programs =
        "  many:\n    cmd: sleep 1000\n    numprocs: 200\n    autostart: false\n    starttime: 0\n";
    let d = Daemon::start(programs);
    let pid = daemon_pid(&d);
    // Only a reload can start `late`: it proves a SIGHUP got through.
    let text = std::fs::read_to_string(&d.conf).unwrap();
    std::fs::write(
        &d.conf,
        format!("{text}  late:\n    cmd: sleep 1000\n    starttime: 0\n"),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let flood = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                unsafe {
                    libc::kill(pid, libc::SIGUSR1);
                    libc::kill(pid, libc::SIGCHLD);
                    if i.is_multiple_of(16) {
                        libc::kill(pid, libc::SIGHUP);
                    }
                }
                i += 1;
                sent.fetch_add(1, Ordering::Relaxed);
                // Pacing only (a signal every ~0.2 ms), not synchronisation.
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
        })
    };
    wait_until(10.0, "the flood to begin", || {
        sent.load(Ordering::Relaxed) > 10
    });
    let before = sent.load(Ordering::Relaxed);
    let reply = d.cmd("start all");
    let during = sent.load(Ordering::Relaxed) - before;
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert!(reply.ends_with("OK\n"), "{reply}");
    assert!(during >= 10, "only {during} signal rounds during the start");
    wait_until(60.0, "200 RUNNING", || running_count(&d, "many:") == 200);
    wait_until(20.0, "the reload's new program", || {
        d.status()
            .iter()
            .any(|p| p["name"] == "late:0" && p["state"] == "RUNNING")
    });
    d.wait_log("SIGUSR1 received and ignored", 10.0);
    assert!(alive(pid), "the daemon died");
    for p in d.status() {
        let child = p["pid"].as_i64().expect("a pid") as i32;
        let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
        for key in ["SigBlk:", "SigIgn:", "SigCgt:"] {
            let line = status.lines().find(|l| l.starts_with(key)).unwrap();
            let mask = u64::from_str_radix(line[key.len()..].trim(), 16).unwrap();
            // Signals 32 and 33 are glibc's own (thread cancel, setxid): the
            // harness's posix_spawn hands the daemon them ignored, and no
            // program can use them; every other one must be at its default.
            let glibc = 3u64 << 31;
            assert_eq!(mask & !glibc, 0, "{}: {line}", p["name"]);
        }
        assert_eq!(parent_of(child), Some(pid), "{}", p["name"]);
    }
    assert!(zombies_of(pid).is_empty(), "zombies: {:?}", zombies_of(pid));
}

/// exec itself fails (the file is there and executable): the reason reaches
/// `status`, the same with either spawn path, and the failed child is reaped.
#[test]
fn a_failing_exec_reports_the_reason() {
    let mut messages = Vec::new();
    for env in [&[][..], FALLBACK] {
        let d = Daemon::configure(
            "  garbage:\n    cmd: ./garbage.bin\n    workingdir: .\n    startretries: 0\n  nointerp:\n    cmd: ./script.sh\n    workingdir: .\n    startretries: 0\n",
            "",
        );
        let write_exec = |name: &str, text: &str| {
            use std::os::unix::fs::PermissionsExt;
            let path = d.path(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        };
        write_exec("garbage.bin", "\x01\x02 not a program\n");
        write_exec("script.sh", "#!/nonexistent/interpreter\necho hi\n");
        let d = d.launch(env);
        d.wait_state("garbage:0", "FATAL", 10.0);
        d.wait_state("nointerp:0", "FATAL", 10.0);
        let msg = |n: &str| d.proc(n)["message"].as_str().unwrap_or("").to_string();
        let (garbage, nointerp) = (msg("garbage:0"), msg("nointerp:0"));
        assert!(garbage.contains("Exec format error"), "{env:?}: {garbage}");
        assert!(
            nointerp.contains("No such file or directory"),
            "{env:?}: {nointerp}"
        );
        assert!(zombies_of(daemon_pid(&d)).is_empty());
        // The temp dir differs between the two daemons; the rest must not.
        let dir = d.dir.path().display().to_string();
        messages.push((garbage.replace(&dir, "DIR"), nointerp.replace(&dir, "DIR")));
    }
    assert_eq!(messages[0], messages[1]);
}

/// `games` (uid 5): a user no other test runs programs as, so the stopper
/// below can signal only this test's children.
const GAMES: u32 = 5;

/// A process of `uid` that sends SIGSTOP, as fast as it can, to the next few
/// pids to be allocated: a child the daemon spawned as `uid` can be stopped
/// between its switch to that user and its exec. Killed and reaped on drop.
struct Stopper(i32);

impl Stopper {
    fn start(uid: u32) -> Stopper {
        // SAFETY: the child makes only async-signal-safe system calls on
        // stack data, then loops until killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            unsafe {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                libc::syscall(libc::SYS_setgid, uid);
                libc::syscall(libc::SYS_setuid, uid);
                if libc::getuid() != uid {
                    libc::_exit(1);
                }
                let mut buf = [0u8; 32];
                loop {
                    let fd = libc::open(c"/proc/sys/kernel/ns_last_pid".as_ptr(), libc::O_RDONLY);
                    let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                    libc::close(fd);
                    let mut last = 0i32;
                    for &b in &buf[..n.max(0) as usize] {
                        if b.is_ascii_digit() {
                            last = last * 10 + i32::from(b - b'0');
                        }
                    }
                    for _ in 0..2000 {
                        for p in last + 1..=last + 3 {
                            libc::kill(p, libc::SIGSTOP);
                        }
                    }
                }
            }
        }
        Stopper(pid)
    }
}

impl Drop for Stopper {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

/// A program's user may SIGSTOP its process after the child has become that
/// user and before its exec. The daemon waited for that exec with no limit
/// (CLONE_VFORK): any process of the user froze the root daemon for good.
/// Now such a child is killed after the deadline and the spawn fails.
#[test]
fn a_child_stopped_before_its_exec_does_not_freeze_the_daemon() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root (programs run as another user)");
        return;
    }
    let d = Daemon::start(
        "  victim:\n    cmd: sleep 1000\n    user: games\n    numprocs: 10\n    starttime: 0\n    startretries: 1000\n",
    );
    wait_until(30.0, "10 RUNNING", || running_count(&d, "victim:") == 10);
    let stopper = Stopper::start(GAMES);
    let mark = "before its exec";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    // Each round respawns 10 children as games while the stopper hunts them;
    // a frozen daemon fails `cmd` at its read timeout.
    while !d.log_text().contains(mark) {
        assert!(
            std::time::Instant::now() < deadline,
            "no child was caught before its exec in 120 s of restarts"
        );
        let reply = d.cmd("restart all");
        assert!(reply.ends_with('\n'), "{reply}");
    }
    drop(stopper);
    // Still serving, and the caught child was killed and reaped.
    assert!(d.cmd("status").contains("victim:0"));
    assert!(zombies_of(daemon_pid(&d)).is_empty());
    assert!(d.log_text().contains("killed"), "{}", d.log_text());
}
