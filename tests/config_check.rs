//! `taskmasterd --check`: a summary, or every error with file and line.
mod common;
use common::*;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn shipped_example_is_valid() {
    let conf = concat!(env!("CARGO_MANIFEST_DIR"), "/conf/taskmaster.yaml");
    let out = Command::new(DAEMON)
        .args(["--check", "-c", conf])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("OK, 2 programs, 10 processes\n"));
    // The example documents the output keys, and loads to what its comments say.
    let text = std::fs::read_to_string(conf).unwrap();
    for key in [
        "logfile_maxbytes:",
        "logfile_backups:",
        "minfds:",
        "stdout_maxbytes:",
        "stdout_backups:",
        "stderr_maxbytes:",
        "stderr_backups:",
        "redirect_stderr:",
        "attach:",
    ] {
        assert!(text.contains(key), "conf/taskmaster.yaml lacks {key}");
    }
    let c = taskmaster::config::load(Path::new(conf)).unwrap();
    assert_eq!((c.logfile_maxbytes, c.logfile_backups), (10 << 20, 5));
    assert_eq!(c.minfds(), 10 * 5 + 256);
    let nginx = &c.programs[0];
    assert_eq!(
        (nginx.rare.stdout_maxbytes, nginx.rare.stdout_backups),
        (1 << 20, 3)
    );
    assert_eq!(
        (nginx.rare.stderr_maxbytes, nginx.rare.stderr_backups),
        (512 << 10, 3)
    );
    assert!(!nginx.stderr_joins_stdout());
}

#[test]
fn output_keys_spelled_right_pass_the_check() {
    let d = Daemon::configure(
        "  a:\n    cmd: /bin/true\n    numprocs: 3\n    stdout: out.log\n    redirect_stderr: true\n    \
         stdout_maxbytes: 10MB\n    stdout_backups: 0\n    stderr_maxbytes: 1048576\n    \
         stderr_backups: 1000\n  b:\n    cmd: /bin/true\n    attach: true\n    \
         stdout_maxbytes: \"512 KB\"\n",
        "logfile_maxbytes: 1gb\nlogfile_backups: 0\nminfds: 64\n",
    );
    let out = check_config(&d.conf);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).ends_with("OK, 2 programs, 4 processes\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_output_key_error_is_printed_with_its_line() {
    let d = Daemon::configure(
        "  a:\n    cmd: /bin/true\n    stdout_maxbytes: 10 XB\n    stdout_backups: -1\n    \
         redirect_stderr: yes\n    stderr_maxbytes: 2000GB\n    stderr_backups: 1001\n    \
         attach: 1\n  b:\n    cmd: /bin/true\n    stderr: b.err\n    redirect_stderr: true\n",
        "logfile_maxbytes: 1.5MB\nlogfile_backups: lots\nminfds: -3\n",
    );
    let out = check_config(&d.conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = d.conf.display().to_string();
    let want = [
        "3: logfile_maxbytes: expected a size in bytes",
        "4: logfile_backups: expected an integer from 0 to 1000",
        "5: minfds: expected an integer from 0",
        "9: programs.a.stdout_maxbytes: expected a size in bytes",
        "10: programs.a.stdout_backups: expected an integer from 0 to 1000",
        "11: programs.a.redirect_stderr: expected true or false",
        "12: programs.a.stderr_maxbytes: expected a size of at most 1 TB",
        "13: programs.a.stderr_backups: expected an integer from 0 to 1000",
        "14: programs.a.attach: expected true or false",
        "17: programs.b.stderr: expected no stderr file with redirect_stderr: true",
    ];
    for w in want {
        assert!(
            err.contains(&format!("{file}:{w}")),
            "missing {w:?} in:\n{err}"
        );
    }
    let errors = err.lines().filter(|l| l.starts_with(&format!("{file}:")));
    assert_eq!(errors.count(), want.len(), "{err}");
}

#[test]
fn every_error_is_printed_and_nothing_starts() {
    let d = Daemon::configure(
        "  a:\n    cmd: \"x 'y\"\n    numprocs: -1\n    stopsignal: NOPE\n  a2:\n    umask: 999\n",
        "",
    );
    let out = check_config(&d.conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let file = d.conf.display().to_string();
    for want in [
        format!("{file}:5: programs.a.cmd: unterminated quote"),
        format!("{file}:6: programs.a.numprocs: expected an integer from 1"),
        format!("{file}:7: programs.a.stopsignal: expected a signal name"),
        format!("{file}:9: programs.a2.umask: expected an octal umask"),
        format!("{file}:8: programs.a2: missing required key `cmd`"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    // Running (not --check) refuses too, and creates no socket.
    let out = Command::new(DAEMON)
        .arg("-c")
        .arg(&d.conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!d.sock.exists());
}

/// `taskmasterd --check -c conf` with a deadline: (exit code, stdout, stderr).
/// The output goes to files, so a chatty check cannot block on a full pipe, and
/// a check that hangs (a FIFO) is killed and fails the test instead of hanging it.
fn check_within(secs: f64, conf: &Path) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(DAEMON)
        .arg("--check")
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("--check on {} took more than {secs}s", conf.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    (status.code(), read(&out), read(&err))
}

/// `n` programs with a few keys each, as an operator would write them.
fn many_programs(n: usize) -> String {
    let mut text = String::from("programs:\n");
    for i in 0..n {
        text.push_str(&format!(
            "  p{i}:\n    cmd: \"/bin/sleep {i}\"\n    numprocs: 2\n    umask: 022\n    \
             stopsignal: TERM\n    exitcodes: [0, 2]\n    env:\n      A: {i}\n      B: 1.50\n"
        ));
    }
    text
}

#[test]
fn large_configs_load_in_linear_time() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("big.yaml");
    // Quadratic lookups took ~6 s in release here, minutes in debug; linear takes
    // well under a second in release and a few in this debug build.
    std::fs::write(&conf, many_programs(20_000)).unwrap();
    let (code, out, err) = check_within(10.0, &conf);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.ends_with("OK, 20000 programs, 40000 processes\n"),
        "{out}"
    );

    let text: String = (0..3)
        .map(|i| format!("  p{i}:\n    cmd: sleep 1\n    numprocs: 65536\n"))
        .collect();
    std::fs::write(&conf, format!("programs:\n{text}")).unwrap();
    let (code, out, err) = check_within(10.0, &conf);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.ends_with("OK, 3 programs, 196608 processes\n"), "{out}");
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("deep.yaml");
    let block: String = (1..=5000)
        .map(|i| format!("{}k:\n", " ".repeat(i)))
        .collect();
    for (text, line) in [
        (format!("programs: {}\n", "[".repeat(100_000)), 1),
        (format!("programs:\n  a: {}\n", "{x: ".repeat(100_000)), 2),
        (format!("programs:\n{block}"), 65),
    ] {
        std::fs::write(&conf, text).unwrap();
        let (code, _, err) = check_within(5.0, &conf);
        assert_eq!(code, Some(1), "{err}");
        let want = format!(
            "{}:{line}: invalid YAML: nested more than 64 levels deep",
            conf.display()
        );
        assert!(err.starts_with(&want), "{err}");
    }
}

#[test]
fn oversized_and_special_files_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    // Sparse: 17 MiB on paper, nothing to read if the size check works.
    let big = dir.path().join("big.yaml");
    File::create(&big)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    let (code, _, err) = check_within(5.0, &big);
    assert_eq!(code, Some(1), "{err}");
    let want = format!(
        "{}: too large (17825792 bytes, the limit is 16 MiB)\n",
        big.display()
    );
    assert!(err.starts_with(&want), "{err}");

    // No writer: a blocking open would wait forever.
    let fifo = dir.path().join("fifo.yaml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (code, _, err) = check_within(5.0, &fifo);
    assert_eq!(code, Some(1), "{err}");
    let want = format!("{}: not a regular file (a FIFO)", fifo.display());
    assert!(err.starts_with(&want), "{err}");

    let (code, _, err) = check_within(5.0, Path::new("/dev/zero"));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("/dev/zero: not a regular file (a device)"),
        "{err}"
    );
}

/// Errors come in the order of the file's lines, so a user fixes the file from
/// the top down (a missing or empty `cmd` is only checked once the program's
/// other keys are read, and used to be listed after them).
#[test]
fn errors_are_listed_in_line_order() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("t.yaml");
    std::fs::write(
        &conf,
        "programs:\n  x:\n    cmd: \"\"\n    numprocs: 0\n    bogus: 1\n  y:\n    numprocs: 0\n",
    )
    .unwrap();
    let out = check_config(&conf);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<usize> = err
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{}:", conf.display())))
        .filter_map(|l| l.split(':').next()?.parse().ok())
        .collect();
    assert_eq!(lines.len(), 5, "{err}");
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "{err}");
}
