//! supervisord's conveniences, with real daemons: `--version` and `version`,
//! `avail`, `PROGRAM:*`, where taskmasterctl finds the socket, a line for the
//! commands that used to succeed silently, `TASKMASTER_SOCKET` in children,
//! and Ctrl-C in the shell leaving no hint behind.
mod common;
#[path = "common/pty.rs"]
mod pty;
use common::*;
use pty::Pty;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// taskmasterctl with `args`, no inherited socket variable, cwd `dir`. It
/// bounds its own waits (-t), so it cannot hang the test.
fn ctl_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(CTL);
    cmd.args(["-t", "20"])
        .args(args)
        .current_dir(dir)
        .env_remove("TASKMASTER_SOCKET")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run taskmasterctl")
}

fn ctl(d: &Daemon, args: &[&str]) -> Output {
    let sock = d.sock.to_str().unwrap();
    let mut all = vec!["-s", sock];
    all.extend_from_slice(args);
    ctl_in(d.dir.path(), &all, &[])
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn versions_of_both_binaries_and_of_the_daemon() {
    for (bin, name) in [(DAEMON, "taskmasterd"), (CTL, "taskmasterctl")] {
        let o = Command::new(bin).arg("--version").output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", err(&o));
        assert_eq!(out(&o), format!("{name} {VERSION}\n"));
    }
    let d = Daemon::start("  a:\n    cmd: sleep 100\n");
    assert_eq!(d.cmd("version"), format!("{VERSION}\nOK\n"));
    assert_eq!(d.cmd("version now"), "ERR version takes no arguments\n");
    let o = ctl(&d, &["version"]);
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(0), format!("{VERSION}\n"))
    );
    // Listed by help (the daemon's and the shell's).
    let help = d.cmd("help");
    assert!(
        help.contains("\nversion ") && help.contains("\navail "),
        "{help}"
    );
    assert!(d.cmd("help avail").contains("removed on reload"));
}

#[test]
fn avail_compares_the_file_on_disk_with_what_runs_and_changes_nothing() {
    let d = Daemon::start(
        "  web:\n    cmd: sleep 100\n    starttime: 0\n  old-worker:\n    cmd: sleep 100\n    starttime: 0\n",
    );
    d.wait_state("web:0", "RUNNING", 10.0);
    assert_eq!(
        d.cmd("avail"),
        "old-worker  in use\nweb         in use\nOK\n"
    );
    // The file now: web changed, old-worker gone, api new.
    let head = format!(
        "socket: {}\nlogfile: {}\n",
        d.sock.display(),
        d.log.display()
    );
    let programs = "programs:\n  web:\n    cmd: sleep 200\n  api:\n    cmd: sleep 100\n";
    std::fs::write(&d.conf, format!("{head}{programs}")).unwrap();
    assert_eq!(
        d.cmd("avail"),
        "api         avail\nweb         in use\nold-worker  removed on reload\nOK\n"
    );
    let o = ctl(&d, &["avail"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert!(out(&o).starts_with("api         avail\n"), "{}", out(&o));
    // Nothing was applied.
    let names: Vec<String> = d.status().iter().map(|p| p["name"].to_string()).collect();
    assert_eq!(names, ["\"old-worker:0\"", "\"web:0\""]);
    // A file that no longer loads: its errors, then ERR, as reload.
    std::fs::write(
        &d.conf,
        format!("{head}programs:\n  web:\n    cmd: sleep 1\n    numprocs: 0\n"),
    )
    .unwrap();
    let reply = d.cmd("avail");
    let conf = d.conf.display().to_string();
    assert!(
        reply.starts_with(&format!("{conf}:6: programs.web.numprocs: ")),
        "{reply}"
    );
    assert!(
        reply.ends_with("ERR invalid configuration (1 error)\n"),
        "{reply}"
    );
    let o = ctl(&d, &["avail"]);
    assert_eq!(o.status.code(), Some(1), "{}", err(&o));
}

#[test]
fn avail_reads_a_huge_or_special_file_no_more_than_reload_does() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n");
    // Sparse, 17 MiB on paper: refused by its size, nothing read.
    std::fs::File::create(&d.conf)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let reply = d.cmd("avail");
    assert!(reply.contains("too large"), "{reply}");
    assert!(
        reply.ends_with("ERR invalid configuration (1 error)\n"),
        "{reply}"
    );
    // A FIFO with no writer would block an open(2) without O_NONBLOCK.
    std::fs::remove_file(&d.conf).unwrap();
    nix::unistd::mkfifo(&d.conf, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let reply = d.cmd("avail");
    assert!(reply.contains("not a regular file"), "{reply}");
    // The daemon serves on.
    assert!(d.cmd("status").contains("a:0"));
}

#[test]
fn program_star_means_program_wherever_names_are_taken() {
    let d = Daemon::start(
        "  web:\n    cmd: sleep 100\n    numprocs: 2\n    starttime: 0\n  db:\n    cmd: sleep 100\n    starttime: 0\n",
    );
    for p in ["web:0", "web:1", "db:0"] {
        d.wait_state(p, "RUNNING", 10.0);
    }
    let status = d.cmd("status web:*");
    assert!(status.contains("web:0") && status.contains("web:1") && !status.contains("db:0"));
    let pids = d.cmd("pid web:*");
    assert_eq!(pids.lines().count(), 3, "{pids}");
    assert_eq!(d.cmd("tail db:*"), "OK\n");
    assert_eq!(
        d.cmd("signal CONT web:*"),
        "web:0: signalled SIGCONT\nweb:1: signalled SIGCONT\nOK\n"
    );
    assert_eq!(d.cmd("stop web:*"), "web:0: stopped\nweb:1: stopped\nOK\n");
    assert_eq!(d.state("db:0"), "RUNNING");
    assert_eq!(
        d.cmd("start web:* db:*"),
        "db:0: already running\nweb:0: started\nweb:1: started\nOK\n"
    );
    assert_eq!(d.cmd("stop nope:*"), "ERR unknown name: nope:*\n");
    let o = ctl(&d, &["restart", "db:*"]);
    assert_eq!(
        (o.status.code(), out(&o)),
        (Some(0), "db:0: started\n".into())
    );
}

#[test]
fn a_line_where_a_command_used_to_succeed_silently() {
    let mut d = Daemon::start("  a:\n    cmd: sleep 100\n    starttime: 0\n");
    d.wait_state("a:0", "RUNNING", 10.0);
    // The protocol reply stays a bare OK.
    assert_eq!(d.cmd("reload"), "OK\n");
    let o = ctl(&d, &["reload"]);
    assert_eq!((o.status.code(), out(&o)), (Some(0), "no changes\n".into()));
    let o = ctl(&d, &["reload", "--dry-run"]);
    assert_eq!(out(&o), "no changes\n");
    let o = ctl(&d, &["reopen"]);
    assert!(out(&o).starts_with("reopened"), "{}", out(&o));
    // A reload with changes prints them, and nothing more.
    let text = std::fs::read_to_string(&d.conf)
        .unwrap()
        .replace("sleep 100", "sleep 101");
    std::fs::write(&d.conf, text).unwrap();
    let o = ctl(&d, &["reload"]);
    assert_eq!(out(&o), "restarted a (cmd changed)\n");
    let o = ctl(&d, &["shutdown"]);
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), "taskmasterd shut down: every process stopped\n");
    assert!(d.wait_exit(15.0).success());
}

#[test]
fn children_get_the_socket_and_taskmasterctl_finds_the_daemon_through_it() {
    let d = Daemon::configure("", "");
    let marker = d.path("child-saw");
    // The child runs taskmasterctl without -s: TASKMASTER_SOCKET leads it.
    let programs = format!(
        "  c:\n    cmd: \"/bin/sh -c 'echo $TASKMASTER_SOCKET > {m}.sock; {ctl} version > {m}; sleep 100'\"\n    starttime: 0\n",
        m = marker.display(),
        ctl = CTL
    );
    let text = std::fs::read_to_string(&d.conf).unwrap() + &programs;
    std::fs::write(&d.conf, text).unwrap();
    let d = d.launch(&[]);
    wait_until(20.0, "the child's taskmasterctl", || {
        std::fs::read_to_string(&marker).is_ok_and(|s| s.ends_with('\n'))
    });
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        format!("{VERSION}\n")
    );
    let seen = std::fs::read_to_string(marker.with_extension("sock")).unwrap();
    assert_eq!(seen.trim_end(), d.sock.display().to_string());
}

#[test]
fn the_socket_is_found_in_the_contracts_order() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n");
    let sock = d.sock.to_str().unwrap();
    let bogus = d.path("nobody-here.sock");
    let bogus = bogus.to_str().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let cwd = elsewhere.path();
    let reached = |o: &Output| o.status.code() == Some(0) && out(o) == format!("{VERSION}\n");
    let missed = |o: &Output| o.status.code() == Some(2) && err(o).contains("nobody-here.sock");
    let env = |v: &str| vec![("TASKMASTER_SOCKET", v.to_string())];
    let run = |args: &[&str], env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ctl_in(cwd, args, &env)
    };
    // 1. -s beats -c and the variable, whatever the order on the line.
    let o = run(
        &["-c", d.conf.to_str().unwrap(), "-s", bogus, "version"],
        &env(sock),
    );
    assert!(missed(&o), "{}", err(&o));
    // 2. -c beats the variable.
    let o = run(&["-c", d.conf.to_str().unwrap(), "version"], &env(bogus));
    assert!(reached(&o), "{}", err(&o));
    // 3. TASKMASTER_SOCKET beats ./taskmaster.yaml.
    std::fs::write(
        cwd.join("taskmaster.yaml"),
        format!("socket: {bogus}\nprograms: {{}}\n"),
    )
    .unwrap();
    let o = run(&["version"], &env(sock));
    assert!(reached(&o), "{}", err(&o));
    // 4. ./taskmaster.yaml (only its socket key, even while it has errors).
    std::fs::write(
        cwd.join("taskmaster.yaml"),
        format!("socket: {sock}\nprograms: {{bad\n"),
    )
    .unwrap();
    let o = run(&["version"], &[]);
    assert!(reached(&o), "{}", err(&o));
    let o = run(&["version"], &env(""));
    assert!(
        reached(&o),
        "an empty variable counts as unset: {}",
        err(&o)
    );
    // 5. Nothing else: the default socket, which the daemon also used.
    std::fs::remove_file(cwd.join("taskmaster.yaml")).unwrap();
    default_socket_step();
}

/// The default rule, with a daemon whose config has no `socket`: as root the
/// default is /run/taskmaster (shared by every test run on the machine), so
/// both binaries run as nobody there, with their own XDG_RUNTIME_DIR.
fn default_socket_step() {
    let t = tempfile::Builder::new().prefix("tmsock").tempdir().unwrap();
    let run = t.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
    let conf = t.path().join("t.yaml");
    std::fs::write(
        &conf,
        format!(
            "logfile: {}\nprograms: {{}}\n",
            t.path().join("d.log").display()
        ),
    )
    .unwrap();
    let mut as_user: Option<(u32, u32)> = None;
    if nix::unistd::geteuid().is_root() {
        let Ok(Some(u)) = nix::unistd::User::from_name("nobody") else {
            eprintln!("skipped the default-socket step: root, and no user nobody to run as");
            return;
        };
        let ids = (u.uid.as_raw(), u.gid.as_raw());
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        chown(&run, Some(ids.0), Some(ids.1)).unwrap();
        chown(t.path(), Some(ids.0), Some(ids.1)).unwrap();
        as_user = Some(ids);
    }
    let command = |bin: &str| {
        let mut c = Command::new(bin);
        c.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", t.path())
            .env("XDG_RUNTIME_DIR", &run)
            .current_dir(t.path())
            .stdin(Stdio::null());
        if let Some((uid, gid)) = as_user {
            c.uid(uid).gid(gid);
        }
        c
    };
    let mut daemon = command(DAEMON);
    daemon
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let child = daemon.spawn().unwrap();
    let _guard = Killed(child);
    let sock = run.join("taskmaster.sock");
    wait_until(10.0, "the default socket", || sock.exists());
    let o = command(CTL).args(["-t", "20", "version"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", err(&o));
    assert_eq!(out(&o), format!("{VERSION}\n"));
}

/// Ends a daemon started outside the harness when the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

#[test]
fn ctrl_c_in_the_shell_leaves_no_hint_on_the_abandoned_line() {
    let d = Daemon::start("  a:\n    cmd: sleep 100\n");
    let mut cmd = Command::new(CTL);
    cmd.arg("-s")
        .arg(&d.sock)
        .env("XDG_STATE_HOME", d.path("state"))
        .env_remove("NO_COLOR");
    let mut sh = Pty::spawn(cmd);
    // Cursor queries answered as a terminal would: rustyline then starts
    // the next prompt on a new line, as a person sees it.
    sh.truthful_cursor();
    let prompt = format!("taskmaster({})> ", d.sock.display());
    sh.expect(&prompt);
    sh.send("stat");
    sh.expect("us [NAMES] [--json]");
    sh.send("\x03");
    // The fresh prompt, on a row of its own (the redraw of the abandoned
    // line shows the prompt too: typing on before the new row is there
    // would land on the old one).
    sh.expect_row(prompt.trim_end());
    sh.send("help quit\r");
    sh.expect("close this connection");
    sh.expect(&prompt);
    let rows = sh.model.rows();
    let abandoned = rows
        .iter()
        .find(|r| r.starts_with(&format!("{prompt}stat")))
        .unwrap_or_else(|| panic!("no abandoned line in {rows:#?}"));
    assert_eq!(abandoned.as_str(), format!("{prompt}stat"), "{rows:#?}");
    sh.send("\x04");
    assert!(sh.wait().success());
}
