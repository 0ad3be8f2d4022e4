//! Alias bombs: `taskmasterd --check` refuses them in little CPU time and
//! memory, measured on the real binary from outside (wait4's rusage: CPU time
//! does not grow when the machine is loaded, wall time would).
mod common;
use common::*;
use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What one `--check` run cost.
struct Run {
    code: Option<i32>,
    output: String,
    cpu: Duration,
    max_rss_kib: i64,
}

/// Runs `taskmasterd --check -c path`, killed if it is still running after 60 s.
// Reaped by wait4 (for its rusage), which std's `Child` does not see.
#[allow(clippy::zombie_processes)]
fn check(path: &Path) -> Run {
    let dir = path.parent().expect("a file in a directory");
    let out = dir.join("check.out");
    let mut child = Command::new(DAEMON)
        .args(["--check", "-c"])
        .arg(path)
        .stdin(Stdio::null())
        .stdout(File::create(&out).expect("output file"))
        .stderr(File::create(dir.join("check.err")).expect("output file"))
        .spawn()
        .expect("spawn taskmasterd --check");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let deadline = Instant::now() + Duration::from_secs(60);
    // SAFETY: `pid` is our child; status and usage are valid pointers.
    while unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) } != pid {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "taskmasterd --check {} still running after 60 s",
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    let output = std::fs::read_to_string(&out).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("check.err")).unwrap_or_default();
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        output,
        cpu: time(usage.ru_utime) + time(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    }
}

/// One anchored list of `n` items, named by `n` aliases: text grows as `n`,
/// the expanded document as `n²`.
fn wide(n: usize) -> String {
    let items = vec!["x"; n].join(",");
    let refs = vec!["*b"; n].join(",");
    format!("big: &b [{items}]\nrefs: [{refs}]\nprograms:\n  a:\n    cmd: /bin/true\n")
}

/// Nine levels of nine aliases of the level below (the classic).
fn laughs() -> String {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text + "programs:\n  a:\n    cmd: /bin/true\n    env:\n      A: *a9\n"
}

/// Each mapping of a chain holds the one before it twice, as keys and values.
fn chained_maps() -> String {
    let mut text = String::from("m0: &m0 {a: 1, b: 2, c: 3, d: 4}\n");
    for i in 1..40 {
        let p = i - 1;
        text.push_str(&format!(
            "m{i}: &m{i} {{x: *m{p}, y: *m{p}, ? *m{p} : z}}\n"
        ));
    }
    text + "programs:\n  a:\n    cmd: /bin/true\n"
}

/// Before the alias guard a 15 KB `wide(3000)` took 10 s and 900 MiB, and a
/// 50 KB `wide(10000)` more than 2 GiB. Now each is refused in
/// well under a second of CPU (debug build) and a few MiB.
#[test]
fn alias_bombs_are_refused_quickly_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        ("wide3000", wide(3000)),
        ("wide10000", wide(10_000)),
        ("laughs", laughs()),
        ("chained", chained_maps()),
    ] {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &text).unwrap();
        let run = check(&path);
        eprintln!("{name}: {:?} CPU, {} KiB", run.cpu, run.max_rss_kib);
        assert_eq!(run.code, Some(1), "{name}: {}", run.output);
        let want = format!("{}:", path.display());
        assert!(
            run.output.contains(&want) && run.output.contains("invalid YAML: aliases expand"),
            "{name}: {}",
            run.output
        );
        assert!(
            run.cpu < Duration::from_secs(1),
            "{name} ({} bytes) took {:?} of CPU",
            text.len(),
            run.cpu
        );
        assert!(
            run.max_rss_kib < 64 * 1024,
            "{name} ({} bytes) peaked at {} KiB",
            text.len(),
            run.max_rss_kib
        );
    }
}

/// The guard does not refuse what aliases are for: one `env` shared by 2000
/// programs (and the measurement above is not vacuous: this one loads).
#[test]
fn a_shared_env_block_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let vars: String = (0..20).map(|i| format!("    V{i}: value{i}\n")).collect();
    let mut text = format!("x-env: &env\n{vars}programs:\n");
    for i in 0..2000 {
        text.push_str(&format!("  p{i}:\n    cmd: /bin/true\n    env: *env\n"));
    }
    let path = dir.path().join("shared.yaml");
    std::fs::write(&path, text).unwrap();
    let run = check(&path);
    // Only the unknown top-level key is wrong: the aliases were accepted.
    assert_eq!(run.code, Some(1), "{}", run.output);
    assert!(run.output.contains("x-env: unknown key"), "{}", run.output);
    assert!(!run.output.contains("aliases expand"), "{}", run.output);
}
