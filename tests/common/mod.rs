//! Test harness: a real taskmasterd on a private temp dir and socket.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const DAEMON: &str = env!("CARGO_BIN_EXE_taskmasterd");
pub const CTL: &str = env!("CARGO_BIN_EXE_taskmasterctl");

/// Longest a test waits on one socket read or write: a stuck daemon fails the
/// test with a message instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub log: PathBuf,
    pub conf: PathBuf,
    pub child: Option<Child>,
}

/// Polls `cond` every 10 ms until it holds or `secs` pass.
pub fn wait_until(secs: f64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {secs}s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn alive(pid: i32) -> bool {
    // A zombie counts as gone: it runs no more code.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// `taskmasterd --check -c CONF`, run to its end.
pub fn check_config(conf: impl AsRef<std::ffi::OsStr>) -> std::process::Output {
    Command::new(DAEMON)
        .arg("--check")
        .arg("-c")
        .arg(conf)
        .output()
        .expect("run taskmasterd --check")
}

/// Every pid /proc lists now.
pub fn all_pids() -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// The fields of /proc/PID/stat after the command name: state, ppid, pgrp, …
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit(')').next()?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    let pgid = pgid.to_string();
    (all_pids().into_iter())
        .filter(|pid| stat_fields(*pid).is_some_and(|f| f.len() > 2 && f[0] != "Z" && f[2] == pgid))
        .collect()
}

/// The parent pid of `pid`, if it is alive.
pub fn parent_of(pid: i32) -> Option<i32> {
    stat_fields(pid)?.get(1)?.parse().ok()
}

/// Zombie children of `ppid`.
pub fn zombies_of(ppid: i32) -> Vec<i32> {
    let ppid = ppid.to_string();
    (all_pids().into_iter())
        .filter(|pid| stat_fields(*pid).is_some_and(|f| f.len() > 1 && f[0] == "Z" && f[1] == ppid))
        .collect()
}

impl Daemon {
    /// Writes `programs` (YAML under `programs:`) plus `extra` top-level keys and starts the daemon.
    pub fn start(programs: &str) -> Daemon {
        Daemon::start_with(programs, "", &[])
    }

    pub fn start_with(programs: &str, extra: &str, env: &[(&str, &str)]) -> Daemon {
        let d = Daemon::configure(programs, extra);
        d.launch(env)
    }

    pub fn configure(programs: &str, extra: &str) -> Daemon {
        let dir = tempfile::Builder::new()
            .prefix("tm")
            .tempdir()
            .expect("tempdir");
        let sock = dir.path().join("s.sock");
        let log = dir.path().join("d.log");
        let conf = dir.path().join("t.yaml");
        let text = format!(
            "socket: {}\nlogfile: {}\n{extra}programs:\n{programs}",
            sock.display(),
            log.display()
        );
        std::fs::write(&conf, text).unwrap();
        Daemon {
            dir,
            sock,
            log,
            conf,
            child: None,
        }
    }

    pub fn launch(mut self, env: &[(&str, &str)]) -> Daemon {
        self.relaunch(env);
        self
    }

    /// Starts the daemon (again, after `wait_exit`) on the same config.
    pub fn relaunch(&mut self, env: &[(&str, &str)]) {
        assert!(self.child.is_none(), "already running");
        let mut cmd = Command::new(DAEMON);
        cmd.arg("-c")
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn taskmasterd"));
        let sock = self.sock.clone();
        wait_until(10.0, "the control socket", || {
            UnixStream::connect(&sock).is_ok()
        });
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A fresh connection to the control socket, with read and write timeouts.
    pub fn connect(&self) -> UnixStream {
        connect(&self.sock)
    }

    /// Sends one command on a fresh connection and returns the whole reply.
    pub fn cmd(&self, line: &str) -> String {
        let mut r = BufReader::new(self.connect());
        if let Err(e) = r.get_mut().write_all(format!("{line}\n").as_bytes()) {
            panic!("sending {line:?} to taskmasterd failed: {e}");
        }
        read_reply(&mut r)
    }

    pub fn status(&self) -> Vec<Value> {
        let reply = self.cmd("status --json");
        let line = reply.lines().next().expect("a JSON line");
        assert!(reply.ends_with("OK\n"), "{reply}");
        match serde_json::from_str(line) {
            Ok(Value::Array(a)) => a,
            other => panic!("bad status JSON {line}: {other:?}"),
        }
    }

    pub fn proc(&self, name: &str) -> Value {
        self.status()
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    pub fn state(&self, name: &str) -> String {
        self.proc(name)["state"].as_str().unwrap_or("").to_string()
    }

    pub fn pid(&self, name: &str) -> Option<i32> {
        self.proc(name)["pid"].as_i64().map(|p| p as i32)
    }

    pub fn wait_state(&self, name: &str, state: &str, secs: f64) {
        let mut last = String::new();
        wait_until(secs, &format!("{name} to be {state}"), || {
            last = self.state(name);
            last == state
        });
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, secs: f64) {
        wait_until(secs, &format!("log line {needle:?}"), || {
            self.log_text().contains(needle)
        });
    }

    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("running").id() as i32;
        unsafe { libc::kill(pid, sig) };
    }

    /// Waits for the daemon to exit and returns its status.
    pub fn wait_exit(&mut self, secs: f64) -> ExitStatus {
        let child = self.child.as_mut().expect("running");
        let mut status = None;
        wait_until(secs, "taskmasterd to exit", || {
            status = child.try_wait().unwrap();
            status.is_some()
        });
        self.child = None;
        status.unwrap()
    }
}

/// The port of the metrics listener (`metrics_listen: "127.0.0.1:0"`), from the log.
pub fn metrics_port(d: &Daemon) -> u16 {
    let mark = "metrics listener (GET /metrics) on 127.0.0.1:";
    d.wait_log(mark, 10.0);
    let log = d.log_text();
    log.rsplit(mark)
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .expect("the bound port in the log")
}

/// Connects to `sock` with read and write timeouts of [`IO_TIMEOUT`].
pub fn connect(sock: &Path) -> UnixStream {
    let s =
        UnixStream::connect(sock).unwrap_or_else(|e| panic!("connect to {}: {e}", sock.display()));
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("read timeout");
    s.set_write_timeout(Some(IO_TIMEOUT))
        .expect("write timeout");
    s
}

/// Reads body lines up to and including the final OK/ERR line. Panics on
/// EOF, and on a read timeout (set one on the socket: [`connect`] does).
pub fn read_reply(r: &mut impl BufRead) -> String {
    use std::io::ErrorKind::{TimedOut, WouldBlock};
    let mut out = String::new();
    loop {
        let mut l = String::new();
        match r.read_line(&mut l) {
            Ok(0) => panic!("connection closed mid-reply after {out:?}"),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), WouldBlock | TimedOut) => panic!(
                "no complete reply within the read timeout (stuck daemon?); got {:?}",
                out + &l
            ),
            Err(e) => panic!("reading a reply failed after {out:?}: {e}"),
        }
        out.push_str(&l);
        if !l.ends_with('\n') {
            continue; // only at EOF: the next read panics
        }
        if l == "OK\n" || l.starts_with("ERR") {
            return out;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            // A test that left a process ignoring SIGTERM with a long
            // stoptime: kill the daemon, and its children's groups with it,
            // so that no test leaves a process behind.
            let pid = child.id();
            let kids = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
                .unwrap_or_default();
            unsafe { libc::kill(pid as i32, libc::SIGINT) };
            let _ = child.kill();
            let _ = child.wait();
            for kid in kids
                .split_whitespace()
                .filter_map(|k| k.parse::<i32>().ok())
            {
                unsafe {
                    libc::kill(-kid, libc::SIGKILL);
                    libc::kill(kid, libc::SIGKILL);
                }
            }
        }
    }
}

/// Reads everything a socket sends until it closes.
pub fn read_all(mut s: impl Read) -> String {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

pub fn assert_gone(pid: i32) {
    wait_until(5.0, &format!("pid {pid} to be gone"), || !alive(pid));
}

pub fn file_lines(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// Resident memory of `pid`, in KiB (0 if gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Live processes whose command line is exactly `argv`.
pub fn running(argv: &[&str]) -> Vec<i32> {
    let want = argv.join("\0") + "\0";
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want.as_bytes())
            && alive(pid)
        {
            out.push(pid);
        }
    }
    out
}

/// Starts the daemon on `d`'s config with RLIMIT_NOFILE `soft`/`hard`.
pub fn launch_limited(d: &mut Daemon, soft: u64, hard: u64) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(DAEMON);
    cmd.arg("-c")
        .arg(&d.conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    unsafe {
        cmd.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    d.child = Some(cmd.spawn().expect("spawn taskmasterd"));
}
