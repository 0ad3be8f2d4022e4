use super::*;
use std::path::Path;

fn ok(text: &str) -> Config {
    match parse(Path::new("/etc/tm/t.yaml"), text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors: {e:?}"),
    }
}

fn errors(text: &str) -> Vec<String> {
    match parse(Path::new("/etc/tm/t.yaml"), text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.iter().map(ToString::to_string).collect(),
    }
}

fn one(extra: &str) -> Program {
    ok(&format!("programs:\n  p:\n    cmd: sleep 1\n{extra}"))
        .programs
        .remove(0)
}

#[test]
fn defaults() {
    let p = one("");
    assert_eq!(p, {
        let mut d = Program::new("p", "sleep 1");
        d.argv = vec!["sleep".into(), "1".into()];
        d
    });
    assert_eq!(p.numprocs, 1);
    assert!(p.autostart);
    assert_eq!(p.autorestart, AutoRestart::Unexpected);
    assert_eq!(p.exitcodes, vec![0]);
    assert_eq!(p.startretries, 3);
    assert_eq!(p.starttime, Duration::from_secs(1));
    assert_eq!(p.stoptime, Duration::from_secs(10));
    assert_eq!(p.stopsignal, libc::SIGTERM);
}

#[test]
fn umask_is_always_octal() {
    for (text, want) in [
        ("022", 0o22),
        ("077", 0o77),
        ("77", 0o77),
        ("0077", 0o77),
        ("'022'", 0o22),
        ("\"0o27\"", 0o27),
        ("0o27", 0o27),
        ("0", 0),
        ("777", 0o777),
    ] {
        assert_eq!(
            one(&format!("    umask: {text}\n")).umask,
            Some(want),
            "{text}"
        );
    }
    for bad in ["08", "1000", "abc", "18", "true", "[1]", "-1"] {
        let e = errors(&format!("programs:\n  p:\n    cmd: x\n    umask: {bad}\n"));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(
            e[0].starts_with("/etc/tm/t.yaml:4: programs.p.umask: expected an octal umask"),
            "{}",
            e[0]
        );
    }
}

#[test]
fn exitcodes_scalar_or_list() {
    assert_eq!(one("    exitcodes: 2\n").exitcodes, vec![2]);
    assert_eq!(one("    exitcodes: [0, 2]\n").exitcodes, vec![0, 2]);
    assert_eq!(
        one("    exitcodes:\n      - 1\n      - 3\n").exitcodes,
        vec![1, 3]
    );
    let e = errors("programs:\n  p:\n    cmd: x\n    exitcodes: [0, 256, -1]\n");
    assert_eq!(e.len(), 2, "{e:?}");
}

#[test]
fn signals_and_restart_policies() {
    assert_eq!(one("    stopsignal: TERM\n").stopsignal, libc::SIGTERM);
    assert_eq!(one("    stopsignal: SIGUSR1\n").stopsignal, libc::SIGUSR1);
    assert_eq!(one("    stopsignal: int\n").stopsignal, libc::SIGINT);
    assert_eq!(one("    stopsignal: 9\n").stopsignal, libc::SIGKILL);
    assert_eq!(
        one("    autorestart: true\n").autorestart,
        AutoRestart::Always
    );
    assert_eq!(
        one("    autorestart: false\n").autorestart,
        AutoRestart::Never
    );
    assert_eq!(
        one("    autorestart: never\n").autorestart,
        AutoRestart::Never
    );
    assert_eq!(
        errors("programs:\n  p:\n    cmd: x\n    stopsignal: TREM\n").len(),
        1
    );
    assert_eq!(
        errors("programs:\n  p:\n    cmd: x\n    autorestart: sometimes\n").len(),
        1
    );
}

#[test]
fn env_values_keep_their_yaml_text() {
    let p = one(
        "    env:\n      A: 42\n      B: 1.50\n      C: true\n      D: \"x y\"\n      E: 077\n",
    );
    let env: Vec<(&str, &str)> = p
        .env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        env,
        [
            ("A", "42"),
            ("B", "1.50"),
            ("C", "true"),
            ("D", "x y"),
            ("E", "077")
        ]
    );
    let e = errors("programs:\n  p:\n    cmd: x\n    env:\n      A: ~\n      B: [1]\n");
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("/etc/tm/t.yaml:5: programs.p.env.A: expected a string"),
        "{}",
        e[0]
    );
}

#[test]
fn cmd_is_split_like_a_shell() {
    let p = one("    workingdir: rel\n    stdout: /abs/out\n");
    assert_eq!(p.workingdir.as_deref(), Some(Path::new("/etc/tm/rel")));
    assert_eq!(p.stdout.as_deref(), Some(Path::new("/abs/out")));
    let p = ok("programs:\n  n:\n    cmd: \"/bin/sh -c 'echo hi; sleep 1'\"\n")
        .programs
        .remove(0);
    assert_eq!(p.argv, ["/bin/sh", "-c", "echo hi; sleep 1"]);
    assert!(errors("programs:\n  n:\n    cmd: \"sh -c 'oops\"\n")[0].contains("unterminated"));
    assert!(errors("programs:\n  n:\n    cmd: \"  \"\n")[0].contains("empty"));
    assert!(errors("programs:\n  n:\n    numprocs: 2\n")[0].contains("missing required key `cmd`"));
}

#[test]
fn every_error_is_reported_with_line_and_key() {
    let e = errors(
        "socket: 12\nbogus: 1\nprograms:\n  web:\n    cmd: x\n    numprocs: 0\n    umaks: 022\n    starttime: -1\n  all:\n    cmd: y\n  \"bad name\":\n    cmd: z\n",
    );
    let want = [
        "/etc/tm/t.yaml:1: socket: expected a path",
        "/etc/tm/t.yaml:2: bogus: unknown key",
        "/etc/tm/t.yaml:6: programs.web.numprocs: expected an integer from 1",
        "/etc/tm/t.yaml:7: programs.web.umaks: unknown key",
        "/etc/tm/t.yaml:8: programs.web.starttime: expected seconds",
        "/etc/tm/t.yaml:9: programs.all: `all` is reserved",
        "/etc/tm/t.yaml:11: programs.bad name: invalid program name",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got} !~ {want}");
    }
}

#[test]
fn duplicates_and_syntax_errors_have_lines() {
    let e = errors("programs:\n  a:\n    cmd: x\n  a:\n    cmd: y\n");
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("duplicate"), "{}", e[0]);
    assert!(e[0].starts_with("/etc/tm/t.yaml:2:"), "{}", e[0]);
    let e = errors("programs:\n\ta: 1\n");
    assert!(
        e[0].starts_with("/etc/tm/t.yaml:2: invalid YAML"),
        "{}",
        e[0]
    );
    assert!(errors("")[0].contains("programs: missing"));
    assert!(errors("- 1\n")[0].contains("expected a mapping"));
}

#[test]
fn globals() {
    let c = ok("socket: run/s.sock\nlisten: localhost:4242\nlogfile: /var/t.log\nfatal_state_report_address: 127.0.0.1:9\nprograms:\n  b:\n    cmd: x\n  a:\n    cmd: x\n    fatal_state_report_address: \"http://127.0.0.1:10/\"\n    numprocs: 3\n");
    assert_eq!(c.socket, Path::new("/etc/tm/run/s.sock"));
    assert_eq!(c.listen, Some("127.0.0.1:4242".parse().unwrap()));
    assert_eq!(c.logfile, Path::new("/var/t.log"));
    assert_eq!(c.programs[0].name, "a");
    assert_eq!(
        c.programs[0].report_address,
        Some("127.0.0.1:10".parse().unwrap())
    );
    assert_eq!(
        c.programs[1].report_address,
        Some("127.0.0.1:9".parse().unwrap())
    );
    assert_eq!(c.process_count(), 4);
    assert!(errors("listen: 0.0.0.0:1\nprograms: {}\n")[0].contains("loopback"));
    assert!(errors("fatal_state_report_address: nowhere\nprograms: {}\n")[0].contains("HOST:PORT"));
}

#[test]
fn user_needs_root() {
    if nix::unistd::geteuid().is_root() {
        assert!(one("    user: root\n").user.is_some());
        assert!(
            errors("programs:\n  p:\n    cmd: x\n    user: no-such-user-xyz\n")[0]
                .contains("no user")
        );
    } else {
        assert!(errors("programs:\n  p:\n    cmd: x\n    user: root\n")[0]
            .contains("not running as root"));
    }
}
