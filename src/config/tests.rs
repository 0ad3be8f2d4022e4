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
        .as_ref()
        .clone()
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

/// A key YAML reads as null (an anchor in front of nothing) has no name to
/// show: its line says where it is (found by the property test).
#[test]
fn a_key_that_is_not_a_string_has_its_line() {
    let e =
        errors("# generated\n&logfile_maxbytes: '35'\nprograms:\n  a:\n    cmd: /a\n    1: x\n");
    assert!(
        e[0].starts_with("/etc/tm/t.yaml:2: expected string keys, got nothing"),
        "{e:?}"
    );
    assert!(
        e[1].starts_with("/etc/tm/t.yaml:6: programs.a: expected string keys"),
        "{e:?}"
    );
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
        "/etc/tm/t.yaml:7: programs.web.umaks: unknown key, did you mean `umask`?",
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
    let c = ok("socket: run/s.sock\nlisten: localhost:4242\nlisten_open: true\nlogfile: /var/t.log\nfatal_state_report_address: 127.0.0.1:9\nprograms:\n  b:\n    cmd: x\n  a:\n    cmd: x\n    fatal_state_report_address: \"http://127.0.0.1:10/\"\n    numprocs: 3\n");
    assert_eq!(c.socket, Path::new("/etc/tm/run/s.sock"));
    assert_eq!(c.listen, Some("127.0.0.1:4242".parse().unwrap()));
    assert_eq!(c.logfile, Path::new("/var/t.log"));
    assert_eq!(c.programs[0].name, "a");
    assert_eq!(
        c.programs[0].rare.report_address,
        Some("127.0.0.1:10".parse().unwrap())
    );
    assert_eq!(
        c.programs[1].rare.report_address,
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

#[test]
fn user_and_group_resolve_or_fail_with_their_line() {
    let root = nix::unistd::geteuid().is_root();
    let me = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .expect("the test runs as a known user");
    let p = one(&format!("    user: {}\n", me.name));
    let u = p.user.expect("user parsed");
    assert_eq!((u.uid, u.gid), (me.uid.as_raw(), me.gid.as_raw()));
    assert_eq!((u.home, u.shell), (me.dir, me.shell));
    let own = nix::unistd::Group::from_gid(nix::unistd::getegid())
        .ok()
        .flatten()
        .expect("the test runs in a known group");
    let p = one(&format!("    group: {}\n", own.name));
    assert_eq!(
        p.group.as_deref(),
        Some(&(own.name.clone(), own.gid.as_raw()))
    );
    bad_program_key(
        "group",
        "no-such-group-xyz",
        "expected an existing group, no group named \"no-such-group-xyz\"",
    );
    bad_program_key("user", "[a]", "expected a user name");
    if !root {
        bad_program_key("group", "root", "cannot run as group \"root\"");
    }
}

#[test]
fn rlimits_take_integers_or_unlimited() {
    let p = one("    rlimits:\n      cpu: unlimited\n      nofile: 4096\n      core: 0\n");
    let got: Vec<(&str, Option<u64>)> = p.rlimits.iter().map(|r| (r.name, r.value)).collect();
    assert_eq!(
        got,
        [("nofile", Some(4096)), ("core", Some(0)), ("cpu", None)],
        "canonical order, whatever the file's"
    );
    assert!(one("").rlimits.is_empty());
    let e = errors(
        "programs:\n  p:\n    cmd: x\n    rlimits:\n      nofiles: 1\n      nproc: -1\n      as: lots\n",
    );
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(
        e[0].starts_with(
            "/etc/tm/t.yaml:5: programs.p.rlimits.nofiles: unknown limit, did you mean `nofile`?"
        ),
        "{e:?}"
    );
    let int = "expected a non-negative integer or unlimited";
    assert!(
        e[1].starts_with(&format!(
            "/etc/tm/t.yaml:6: programs.p.rlimits.nproc: {int}"
        )),
        "{e:?}"
    );
    assert!(
        e[2].starts_with(&format!("/etc/tm/t.yaml:7: programs.p.rlimits.as: {int}")),
        "{e:?}"
    );
    bad_program_key("rlimits", "64", "expected a mapping of LIMIT: value");
}

/// `key: value` in program `p` fails with one error, on line 4, for that key.
fn bad_program_key(key: &str, value: &str, expected: &str) {
    let e = errors(&format!(
        "programs:\n  p:\n    cmd: x\n    {key}: {value}\n"
    ));
    let want = format!("/etc/tm/t.yaml:4: programs.p.{key}: {expected}");
    assert_eq!(e.len(), 1, "{key}: {value}: {e:?}");
    assert!(e[0].starts_with(&want), "{} !~ {want}", e[0]);
}

#[test]
fn output_keys_default_to_no_rotation_and_five_backups() {
    let p = one("");
    assert!(!p.redirect_stderr && !p.attach && !p.stderr_joins_stdout());
    assert_eq!((p.rare.stdout_maxbytes, p.rare.stdout_backups), (0, 5));
    assert_eq!((p.rare.stderr_maxbytes, p.rare.stderr_backups), (0, 5));
    let c = ok("programs:\n  a:\n    cmd: x\n    numprocs: 3\n  b:\n    cmd: y\n");
    assert_eq!((c.logfile_maxbytes, c.logfile_backups), (0, 5));
    assert_eq!(c.minfds, None);
    assert_eq!(c.minfds(), 4 * 5 + 256);
    assert_eq!(ok("programs: {}\n").minfds(), 256);
}

#[test]
fn sizes_take_integers_and_suffixes() {
    for (text, want) in [
        ("0", 0),
        ("1048576", 1 << 20),
        ("'1024'", 1024),
        ("10MB", 10 << 20),
        ("10mb", 10 << 20),
        ("\"512 KB\"", 512 << 10),
        ("512 kb", 512 << 10),
        ("1gb", 1 << 30),
        ("1024GB", 1 << 40),
    ] {
        let p = one(&format!(
            "    stdout_maxbytes: {text}\n    stderr_maxbytes: {text}\n"
        ));
        assert_eq!(
            (p.rare.stdout_maxbytes, p.rare.stderr_maxbytes),
            (want, want),
            "{text}"
        );
        let c = ok(&format!("logfile_maxbytes: {text}\nprograms: {{}}\n"));
        assert_eq!(c.logfile_maxbytes, want, "{text}");
    }
    for bad in [
        "-1", "1.5", "1.5MB", "10XB", "10 M B", "MB", "true", "[1]", "~", "{}", "''", "1e3",
    ] {
        bad_program_key("stdout_maxbytes", bad, "expected a size in bytes");
        bad_program_key("stderr_maxbytes", bad, "expected a size in bytes");
    }
    for big in [
        "1025GB",
        "1099511627777",
        "18446744073709551615",
        "\"99999999999999999999\"",
    ] {
        bad_program_key("stdout_maxbytes", big, "expected a size of at most 1 TB");
    }
    let e = errors("logfile_maxbytes: 2TB\nprograms: {}\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("/etc/tm/t.yaml:1: logfile_maxbytes: expected a size in bytes"),
        "{}",
        e[0]
    );
}

#[test]
fn backups_are_0_to_1000() {
    let p = one("    stdout_backups: 0\n    stderr_backups: 1000\n");
    assert_eq!((p.rare.stdout_backups, p.rare.stderr_backups), (0, 1000));
    assert_eq!(
        ok("logfile_backups: 12\nprograms: {}\n").logfile_backups,
        12
    );
    for bad in ["-1", "1001", "2.5", "'5'", "true", "~", "[5]"] {
        for key in ["stdout_backups", "stderr_backups"] {
            bad_program_key(key, bad, "expected an integer from 0 to 1000");
        }
    }
    let e = errors("logfile_backups: many\nprograms: {}\n");
    assert!(
        e[0].starts_with("/etc/tm/t.yaml:1: logfile_backups: expected an integer from 0 to 1000"),
        "{}",
        e[0]
    );
}

#[test]
fn redirect_stderr_and_attach_are_booleans_kept_as_written() {
    let p = one("    redirect_stderr: true\n");
    assert!(p.redirect_stderr && !p.attach && p.stderr_joins_stdout());
    let p = one("    attach: true\n");
    assert!(!p.redirect_stderr && p.attach && p.stderr_joins_stdout());
    let p = one("    attach: true\n    redirect_stderr: true\n");
    assert!(p.redirect_stderr && p.attach);
    let p = one("    attach: false\n    redirect_stderr: false\n");
    assert!(!p.stderr_joins_stdout());
    for bad in ["yes", "1", "'true'", "~", "on"] {
        bad_program_key("redirect_stderr", bad, "expected true or false");
        bad_program_key("attach", bad, "expected true or false");
    }
}

#[test]
fn a_stderr_file_that_would_never_be_written_is_an_error() {
    let with = |extra: &str| {
        format!("programs:\n  p:\n    cmd: x\n    stderr: /tmp/e\n    stdout: /tmp/o\n{extra}")
    };
    for (extra, why) in [
        ("    redirect_stderr: true\n", "redirect_stderr: true"),
        ("    attach: true\n", "attach: true"),
        (
            "    attach: true\n    redirect_stderr: true\n",
            "redirect_stderr: true",
        ),
    ] {
        let e = errors(&with(extra));
        assert_eq!(e.len(), 1, "{e:?}");
        let want =
            format!("/etc/tm/t.yaml:4: programs.p.stderr: expected no stderr file with {why}");
        assert!(e[0].starts_with(&want), "{} !~ {want}", e[0]);
        assert!(e[0].contains("would never be written"), "{}", e[0]);
    }
    // A joined stream keeps its stdout file; a bad boolean is reported once.
    assert!(one("    redirect_stderr: true\n    stdout: o\n")
        .stdout
        .is_some());
    assert!(one("    redirect_stderr: false\n    stderr: e\n")
        .stderr
        .is_some());
    assert_eq!(errors(&with("    redirect_stderr: yes\n")).len(), 1);
}

#[test]
fn minfds_is_set_or_computed() {
    let c = ok("minfds: 4096\nprograms:\n  a:\n    cmd: x\n    numprocs: 2000\n");
    assert_eq!((c.minfds, c.minfds()), (Some(4096), 4096));
    assert_eq!(ok("minfds: 0\nprograms: {}\n").minfds(), 0);
    let c = ok("programs:\n  a:\n    cmd: x\n    numprocs: 2000\n");
    assert_eq!(c.minfds(), 10256);
    for bad in ["-1", "1.5", "lots", "~", "1073741825"] {
        let e = errors(&format!("minfds: {bad}\nprograms: {{}}\n"));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(
            e[0].starts_with("/etc/tm/t.yaml:1: minfds: expected an integer from 0 to 1073741824"),
            "{}",
            e[0]
        );
    }
}

#[test]
fn every_output_key_error_is_reported_at_once() {
    let e = errors(
        "logfile_maxbytes: 1TB\nlogfile_backups: -1\nminfds: x\nprograms:\n  a:\n    cmd: x\n    stdout_maxbytes: 1.5MB\n    stdout_backups: 1001\n    redirect_stderr: maybe\n    stderr_maxbytes: big\n    stderr_backups: ~\n    attach: 1\n  b:\n    cmd: y\n    stderr: e\n    redirect_stderr: true\n",
    );
    let want = [
        "/etc/tm/t.yaml:1: logfile_maxbytes: expected a size",
        "/etc/tm/t.yaml:2: logfile_backups: expected an integer",
        "/etc/tm/t.yaml:3: minfds: expected an integer",
        "/etc/tm/t.yaml:7: programs.a.stdout_maxbytes: expected a size",
        "/etc/tm/t.yaml:8: programs.a.stdout_backups: expected an integer",
        "/etc/tm/t.yaml:9: programs.a.redirect_stderr: expected true or false",
        "/etc/tm/t.yaml:10: programs.a.stderr_maxbytes: expected a size",
        "/etc/tm/t.yaml:11: programs.a.stderr_backups: expected an integer",
        "/etc/tm/t.yaml:12: programs.a.attach: expected true or false",
        "/etc/tm/t.yaml:15: programs.b.stderr: expected no stderr file",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got} !~ {want}");
    }
}

#[test]
fn supervisord_keys_and_typos_get_hints_at_every_level() {
    let e = errors(
        "file: /tmp/s\nprogram: {}\nprograms:\n  w:\n    command: x\n    stopwaitsecs: 3\n    \
         process_name: \"%(program_name)s_%(process_num)02d\"\n    autorestrat: true\n",
    );
    let want = [
        "/etc/tm/t.yaml:1: file: unknown key: supervisord's `file` is `socket` here",
        "/etc/tm/t.yaml:2: program: unknown key, did you mean `programs`?",
        "/etc/tm/t.yaml:4: programs.w: missing required key `cmd`",
        "/etc/tm/t.yaml:5: programs.w.command: unknown key: supervisord's `command` is `cmd` here",
        "/etc/tm/t.yaml:6: programs.w.stopwaitsecs: unknown key: supervisord's `stopwaitsecs` is `stoptime` here",
        "/etc/tm/t.yaml:7: programs.w.process_name: unknown key: supervisord's `process_name` has no equivalent here: processes are always named PROGRAM:N",
        "/etc/tm/t.yaml:8: programs.w.autorestrat: unknown key, did you mean `autorestart`?",
    ];
    assert_eq!(e.len(), want.len(), "{e:#?}");
    for (got, want) in e.iter().zip(want) {
        assert!(got.starts_with(want), "{got} !~ {want}");
    }
}

#[test]
fn a_flood_of_errors_lists_a_hundred_and_counts_the_rest() {
    let mut text = String::from("programs:\n  p:\n    cmd: sleep 1\n");
    for i in 0..20_000 {
        text.push_str(&format!("    unknown_key_{i}: 1\n"));
    }
    let t = std::time::Instant::now();
    let e = errors(&text);
    assert_eq!(e.len(), 101, "{:?}", &e[..3]);
    assert!(e[0].contains("unknown_key_0"), "{}", e[0]);
    assert!(e[100].ends_with("… and 19900 more errors"), "{}", e[100]);
    // Counted in full where a total is given (--check, avail), not as 101.
    let all = super::parse(std::path::Path::new("t.yaml"), &text).unwrap_err();
    assert_eq!(super::error_count(&all), 20_000);
    // No hint computed for the ones not shown (that took a minute before).
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}
