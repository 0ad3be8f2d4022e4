use super::*;
use nix::sys::termios::{tcgetattr, tcsetattr, InputFlags, SetArg};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

const TS: &str = "2000-01-01T00:00:00.000Z";

fn opened(path: &Path) -> LogFile {
    let mut log = LogFile::new();
    log.reopen(path).unwrap();
    log
}

#[test]
fn reopen_current_after_a_move_starts_a_new_file_at_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    let moved = dir.path().join("d.log.1");
    let mut log = opened(&path);
    log.write(b"before\n", TS);
    std::fs::rename(&path, &moved).unwrap();
    log.write(b"still the moved file\n", TS);
    log.reopen_current().unwrap();
    log.write(b"after\n", TS);
    let text = |p: &Path| std::fs::read_to_string(p).unwrap();
    assert_eq!(text(&moved), "before\nstill the moved file\n");
    assert_eq!(text(&path), "after\n");
}

#[test]
fn a_failed_reopen_keeps_the_current_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut log = opened(&path);
    let e = log.reopen(&fifo).unwrap_err();
    assert_eq!(e, format!("logfile {}: not a regular file", fifo.display()));
    // The current path is unchanged too, so a later reopen_current is sane.
    std::fs::remove_file(&path).unwrap();
    log.reopen_current().unwrap();
    log.write(b"kept\n", TS);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "kept\n");
}

#[test]
fn reopen_current_without_a_file_is_an_error() {
    assert!(LogFile::new().reopen_current().is_err());
}

fn nonblocking(fd: &impl AsRawFd) -> bool {
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    flags & libc::O_NONBLOCK != 0
}

/// Reads what the terminal shows (the pty master), without waiting.
fn drain(master: &mut File, seen: &mut String) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = master.read(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

fn record(i: usize) -> Vec<u8> {
    format!("2000-01-01T00:00:00.000Z INFO  record {i}\n").into_bytes()
}

/// The terminal paused with Ctrl-S: every record is dropped and counted, the
/// log file says so once; after Ctrl-Q the terminal gets the count first.
/// (The only test here that uses the global log file.)
#[test]
fn a_paused_terminal_drops_and_counts_then_hears_the_count() {
    let pty = nix::pty::openpty(None, None).unwrap();
    let mut attrs = tcgetattr(&pty.slave).unwrap();
    attrs.input_flags |= InputFlags::IXON;
    tcsetattr(&pty.slave, SetArg::TCSANOW, &attrs).unwrap();
    let echo = Echo::open(Path::new(&format!(
        "/proc/self/fd/{}",
        pty.slave.as_raw_fd()
    )))
    .unwrap();
    assert!(
        !nonblocking(&pty.slave),
        "the original description is left alone"
    );
    assert!(nonblocking(&echo.tty));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    reopen(&path).unwrap();
    let mut tee = Tee { echo: Some(echo) };
    let mut master = File::from(pty.master);
    let flags = unsafe { libc::fcntl(master.as_raw_fd(), libc::F_GETFL) };
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) };
    let dropped = |tee: &Tee| tee.echo.as_ref().map_or(0, |e| e.dropped);

    master.write_all(b"\x13").unwrap(); // Ctrl-S; the tty applies it asynchronously
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut i = 0;
    while dropped(&tee) == 0 {
        assert!(
            Instant::now() < deadline,
            "the paused terminal took every write"
        );
        tee.write_all(&record(i)).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    for _ in 0..100 {
        tee.write_all(&record(i)).unwrap();
        i += 1;
    }
    assert_eq!(dropped(&tee), 101);
    let log = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        log.matches("the terminal is not reading").count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches(" INFO  record ").count(),
        i,
        "the file keeps every record"
    );
    assert!(
        log.contains("2000-01-01T00:00:00.000Z WARN  terminal echo: the terminal is not reading")
    );

    master.write_all(b"\x11").unwrap(); // Ctrl-Q
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while dropped(&tee) != 0 {
        assert!(
            Instant::now() < deadline,
            "the terminal never took the notice"
        );
        drain(&mut master, &mut seen);
        tee.write_all(&record(i)).unwrap();
        i += 1;
        std::thread::sleep(Duration::from_millis(1));
    }
    let log = std::fs::read_to_string(&path).unwrap();
    let resumed: Vec<&str> = log.lines().filter(|l| l.contains("reads again")).collect();
    assert_eq!(resumed.len(), 1, "{log}");
    let n: u64 = resumed[0]
        .split("reads again; ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(n >= 101, "{n}");
    let notice = format!("taskmasterd: {n} log lines dropped on the terminal (it was not reading)");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !seen.contains(&notice) {
        assert!(
            Instant::now() < deadline,
            "no notice on the terminal: {seen:?}"
        );
        drain(&mut master, &mut seen);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A terminal that hung up (its master closed) fails with EIO: echo stops for
/// good after one note, instead of failing once per record.
#[test]
fn a_hung_up_terminal_ends_the_echo_with_one_note() {
    let pty = nix::pty::openpty(None, None).unwrap();
    let path = format!("/proc/self/fd/{}", pty.slave.as_raw_fd());
    let mut echo = Echo::open(Path::new(&path)).unwrap();
    assert!(echo.echo(&record(0)).is_empty());
    drop(pty.master);
    let notes = echo.echo(&record(1));
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("terminal echo: stopped, the terminal failed"),
        "{notes:?}"
    );
    assert!(echo.echo(&record(2)).is_empty());
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Records of varied lengths through a small limit: every file holds whole
/// lines only, within the limit, and together (oldest first) they are the
/// latest records in order.
#[test]
fn rotation_never_splits_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    let mut log = LogFile::new();
    log.set_limits(200, 2);
    log.reopen(&path).unwrap();
    let records: Vec<String> = (0..100)
        .map(|i| format!("{TS} INFO  record {i} {}\n", "x".repeat(i % 37)))
        .collect();
    for r in &records {
        log.write(r.as_bytes(), TS);
    }
    let files = [
        path.with_extension("log.2"),
        path.with_extension("log.1"),
        path.clone(),
    ];
    let mut kept = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.len() <= 200,
            "{} has {} bytes",
            f.display(),
            text.len()
        );
        assert!(text.ends_with('\n'), "{}: {text:?}", f.display());
        kept.extend(lines_of(f));
    }
    assert!(!path.with_extension("log.3").exists());
    let tail: Vec<String> = records[records.len() - kept.len()..]
        .iter()
        .map(|r| r.trim_end().to_string())
        .collect();
    assert_eq!(kept, tail);
}

#[test]
fn set_limits_reaches_the_open_file_and_the_next_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    let other = dir.path().join("e.log");
    let mut log = opened(&path);
    log.write(b"one\n", TS);
    log.set_limits(4, 1);
    log.write(b"two\n", TS);
    assert_eq!(lines_of(&path.with_extension("log.1")), ["one"]);
    log.reopen(&other).unwrap();
    log.write(b"abc\n", TS);
    log.write(b"def\n", TS);
    assert_eq!(lines_of(&other.with_extension("log.1")), ["abc"]);
    assert_eq!(lines_of(&other), ["def"]);
}

/// A file that cannot take records (a full disk): the loss is counted and
/// said in the file as soon as it takes a record again.
#[test]
fn lost_records_are_counted_and_said_once_the_file_works_again() {
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut log = LogFile::new();
    log.sink = Some(Sink::on_file(full, Path::new("/dev/full"), "logfile"));
    for i in 0..3 {
        log.write(&record(i), TS);
    }
    assert_eq!(log.lost, 3);
    assert!(log.lost_why.starts_with("cannot write logfile /dev/full: "));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    // A reload moved the log to a working file: the next record says it.
    log.reopen(&path).unwrap();
    log.write(&record(3), TS);
    let lines = lines_of(&path);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with(&format!(
            "{TS} ERROR logfile: 3 log lines lost: cannot write logfile /dev/full: "
        )),
        "{lines:?}"
    );
    assert_eq!(lines[1], format!("{TS} INFO  record 3"));
    assert_eq!(log.lost, 0);
}

/// A rotation that cannot happen (a directory where FILE.1 would go) loses
/// nothing: the record goes in, followed by a note, and the next attempt (and
/// note) waits for another `maxbytes` of log.
#[test]
fn a_failed_rotation_keeps_the_record_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    std::fs::create_dir(path.with_extension("log.1")).unwrap();
    let mut log = LogFile::new();
    // Records are 40 bytes: 5 fill the limit exactly, the 6th would pass it.
    log.set_limits(200, 1);
    log.reopen(&path).unwrap();
    for i in 0..8 {
        assert_eq!(record(i).len(), 40);
        log.write(&record(i), TS);
    }
    let lines = lines_of(&path);
    let records = lines
        .iter()
        .filter(|l| l.contains(" INFO  record "))
        .count();
    assert_eq!(records, 8, "{lines:?}");
    let note = |l: &String| l.contains(" ERROR cannot rotate logfile ");
    assert!(lines[..6].iter().all(|l| !note(l)), "{lines:?}");
    assert!(note(&lines[6]), "{lines:?}");
    assert!(lines[6].ends_with("is a directory; writing on past logfile_maxbytes"));
    assert!(lines.iter().filter(|l| note(l)).count() < 4, "{lines:?}");
}

/// Held records (a turn of the loop) reach the file only at `flush`, all of
/// them, in order, with one write; held records never cross a rotation.
#[test]
fn held_records_are_written_together_at_flush_and_still_rotate_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    let mut log = LogFile::new();
    // Records are 40 bytes: 5 fill a file.
    log.set_limits(200, 3);
    log.reopen(&path).unwrap();
    log.held = true;
    for i in 0..3 {
        log.write(&record(i), TS);
    }
    assert_eq!(lines_of(&path), Vec::<String>::new(), "held until flush");
    log.flush();
    assert_eq!(lines_of(&path).len(), 3);
    // 9 more: the 6th record overall may not join the held ones (it would
    // cross the limit), so the held ones go first and it rotates.
    for i in 3..12 {
        log.write(&record(i), TS);
    }
    log.flush();
    let files = [
        path.with_extension("log.2"),
        path.with_extension("log.1"),
        path.clone(),
    ];
    let mut all = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.len() <= 200, "{}: {text:?}", f.display());
        all.extend(lines_of(f));
    }
    let want: Vec<String> = (0..12)
        .map(|i| String::from_utf8(record(i)).unwrap().trim_end().to_string())
        .collect();
    assert_eq!(all, want);
}

/// A held batch the file cannot take counts every record in it as lost.
#[test]
fn a_failed_flush_counts_every_held_record() {
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut log = LogFile::new();
    log.sink = Some(Sink::on_file(full, Path::new("/dev/full"), "logfile"));
    log.held = true;
    for i in 0..4 {
        log.write(&record(i), TS);
    }
    assert_eq!(log.lost, 0, "nothing written yet");
    log.flush();
    assert_eq!(log.lost, 4);
    assert!(log.pending.is_empty());
}

/// The held buffer is bounded: past `HELD_MAX` what is held is written.
#[test]
fn held_records_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.log");
    let mut log = opened(&path);
    log.held = true;
    let n = HELD_MAX / 40 + 10;
    for i in 0..n {
        log.write(&record(i), TS);
        assert!(log.pending.len() <= HELD_MAX);
    }
    assert!(!lines_of(&path).is_empty(), "written once full");
    log.flush();
    assert_eq!(lines_of(&path).len(), n);
}

/// A write that went in part (a disk that fills mid-batch; here a pipe with
/// room for part of it) cut a record short: the loss note started right after
/// the cut (`...00:00.002000-01-01T... ERROR logfile: ...`, one line), and
/// the held records that did go in whole were counted as lost too.
#[test]
fn a_record_cut_short_is_ended_before_the_note_and_whole_ones_are_not_lost() {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
    nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    let mut r = File::from(r);
    let mut log = LogFile::new();
    log.sink = Some(Sink::on_file(File::from(w), Path::new("pipe"), "logfile"));
    log.held = true;
    let n = 4096 / record(0).len() + 2;
    for i in 0..n {
        log.write(&record(i), TS);
    }
    log.flush();
    let mut seen = String::new();
    let mut buf = [0u8; 8192];
    while let Ok(k @ 1..) = r.read(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    let whole = seen.matches('\n').count();
    assert!(whole > 0 && !seen.ends_with('\n'), "a record was cut short");
    assert_eq!(
        log.lost,
        (n - whole) as u64,
        "only what did not go in whole"
    );
    log.write(&record(n), TS);
    while let Ok(k @ 1..) = r.read(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    let lines: Vec<&str> = seen.lines().collect();
    let note = lines[whole + 1];
    assert!(
        note.starts_with(&format!(
            "{TS} ERROR logfile: {} log lines lost: ",
            n - whole
        )),
        "{lines:?}"
    );
    assert_eq!(lines[whole + 2], format!("{TS} INFO  record {n}"));
}
