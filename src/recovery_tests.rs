//! Unit tests of recovery.rs (state file, survivors, the sorted entries).

use super::*;

#[test]
fn parse_skips_bad_lines_and_foreign_files() {
    assert!(parse("not ours\n1234 5 15 1000 a:0\n").is_empty());
    let text = format!("{HEADER}\n1234 99 15 1500 web:0\nx y\n1 5 15 10 init\n77 1 0 10 bad\n");
    let got = parse(&text);
    assert_eq!(got.len(), 1);
    let (pgid, e) = &got[0];
    assert_eq!((*pgid, e.start, e.signal), (1234, 99, 15));
    assert_eq!(
        (e.stoptime, &*e.name),
        (Duration::from_millis(1500), "web:0")
    );
}

#[test]
fn a_reused_pid_is_not_a_survivor() {
    // This test process is alive, but with another start time than recorded.
    let me = std::process::id() as i32;
    let real = proc_stat(me).expect("own stat").start;
    let e = |start| Entry {
        start,
        signal: libc::SIGTERM,
        stoptime: Duration::ZERO,
        name: "t".into(),
    };
    let snap = Snapshot::take();
    assert!(snap.survivors(me, &e(real + 1)).is_empty());
    assert!(snap.survivors(me, &e(real)).contains(&me));
}

#[test]
fn state_path_is_beside_the_socket() {
    assert_eq!(
        state_path(Path::new("/run/t/s.sock")),
        PathBuf::from("/run/t/s.sock.state")
    );
}

#[test]
fn entries_are_sorted_by_pgid_and_a_repeat_keeps_the_last() {
    let e = |name: &str| Entry {
        start: 1,
        signal: libc::SIGTERM,
        stoptime: Duration::ZERO,
        name: name.into(),
    };
    let got = sorted(vec![(30, e("a")), (10, e("b")), (30, e("c")), (20, e("d"))]);
    let names: Vec<(i32, &str)> = got.iter().map(|(g, e)| (*g, &*e.name)).collect();
    assert_eq!(names, [(10, "b"), (20, "d"), (30, "c")]);
    assert_eq!(got.capacity(), got.len());
    assert_eq!(find(&got, 20).map(|e| &*e.name), Some("d"));
    assert!(find(&got, 25).is_none());
}
