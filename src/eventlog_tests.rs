use super::*;
use nix::sys::termios::{tcgetattr, tcsetattr, InputFlags, SetArg};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

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
    log.write(b"before\n").unwrap();
    std::fs::rename(&path, &moved).unwrap();
    log.write(b"still the moved file\n").unwrap();
    log.reopen_current().unwrap();
    log.write(b"after\n").unwrap();
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
    log.write(b"kept\n").unwrap();
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
