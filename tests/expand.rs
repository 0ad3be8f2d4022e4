//! `%(…)` expansions: every process of a program sees its own values (env,
//! cmd, output file), unknown names are refused with file, line and key, and a
//! reload compares the expanded values.
mod common;
use common::*;
use std::process::Command;

/// The environment of `pid`, as NAME=value strings.
fn environ(pid: i32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    raw.split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

const WEB: &str = "  web:\n    cmd: \"sh -c 'echo $0 $PORT $TAG > %(here)s/seen-%(process_num)d; exec sleep 1000' %(program_name)s-%(process_num)02d\"\n    \
     numprocs: 3\n    starttime: 0\n    stdout: \"%(program_name)s.%(process_num)d.log\"\n    \
     env:\n      PORT: \"90%(process_num)02d\"\n      TAG: \"%(ENV_TM_EXPAND_TAG)s 100%%\"\n";

#[test]
fn each_process_sees_its_own_values() {
    let d = Daemon::start_with(WEB, "", &[("TM_EXPAND_TAG", "t,x")]);
    for i in 0..3 {
        let name = format!("web:{i}");
        d.wait_state(&name, "RUNNING", 10.0);
        let seen = d.path(&format!("seen-{i}"));
        wait_until(10.0, "the process's own line", || {
            std::fs::read_to_string(&seen).is_ok_and(|s| s.ends_with('\n'))
        });
        assert_eq!(
            std::fs::read_to_string(&seen).unwrap(),
            format!("web-0{i} 900{i} t,x 100%\n")
        );
        let env = environ(d.pid(&name).expect("a pid"));
        assert!(env.contains(&format!("PORT=900{i}")), "{env:?}");
        assert!(
            env.contains(&format!("TASKMASTER_PROCESS_NUM={i}")),
            "{env:?}"
        );
        // Its own output file exists (opened at spawn).
        assert!(d.path(&format!("web.{i}.log")).exists(), "web.{i}.log");
    }
}

#[test]
fn an_unknown_environment_variable_is_refused_with_file_line_and_key() {
    let d = Daemon::configure(
        "  a:\n    cmd: sleep 1\n    env:\n      X: \"%(ENV_TM_SURELY_NOT_SET_9)s\"\n",
        "",
    );
    let out = Command::new(DAEMON)
        .args(["--check", "-c"])
        .arg(&d.conf)
        .env_remove("TM_SURELY_NOT_SET_9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:7: programs.a.env.X: %(ENV_TM_SURELY_NOT_SET_9)s: TM_SURELY_NOT_SET_9 is not set",
        d.conf.display()
    );
    assert!(err.contains(&want), "{err}");
    // Set, it passes.
    let out = Command::new(DAEMON)
        .args(["--check", "-c"])
        .arg(&d.conf)
        .env("TM_SURELY_NOT_SET_9", "1")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reload_compares_expanded_values() {
    let programs =
        "  w:\n    cmd: \"sleep 10%(process_num)d\"\n    numprocs: 2\n    starttime: 0\n";
    let d = Daemon::start(programs);
    d.wait_state("w:1", "RUNNING", 10.0);
    let pids = [d.pid("w:0"), d.pid("w:1")];
    assert!(!running(&["sleep", "101"]).is_empty());
    let rewrite = |programs: &str| {
        let text = std::fs::read_to_string(&d.conf).unwrap();
        let head = text.split("programs:\n").next().unwrap();
        std::fs::write(&d.conf, format!("{head}programs:\n{programs}")).unwrap();
    };
    // The same values, spelled otherwise: nothing to do.
    rewrite("  w:\n    cmd: \"sleep 1%(process_num)02d\"\n    numprocs: 2\n    starttime: 0\n");
    assert_eq!(d.cmd("reload"), "OK\n");
    assert_eq!([d.pid("w:0"), d.pid("w:1")], pids);
    // Other values: a restart, and the new values.
    rewrite("  w:\n    cmd: \"sleep 20%(process_num)d\"\n    numprocs: 2\n    starttime: 0\n");
    assert_eq!(d.cmd("reload"), "restarted w (cmd changed)\nOK\n");
    wait_until(10.0, "w:1 to run its new cmd", || {
        !running(&["sleep", "201"]).is_empty()
    });
}
