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
}

#[test]
fn every_error_is_printed_and_nothing_starts() {
    let d = Daemon::configure(
        "  a:\n    cmd: \"x 'y\"\n    numprocs: -1\n    stopsignal: NOPE\n  a2:\n    umask: 999\n",
        "",
    );
    let out = Command::new(DAEMON)
        .arg("--check")
        .arg("-c")
        .arg(&d.conf)
        .output()
        .unwrap();
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
