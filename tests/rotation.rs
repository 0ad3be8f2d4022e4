//! Rotation of output files and of the event log, through the library API:
//! a real child's output read from its pipe into a `rotate::Sink` (as the
//! daemon does), and the event log fed by the `log` macros.
//!
//! Not yet through a daemon: the config keys (`stdout_maxbytes`,
//! `logfile_maxbytes` …) land on another branch. Once merged, a test of a
//! daemon whose files rotate belongs here too.
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use taskmaster::eventlog;
use taskmaster::rotate::Sink;

fn numbered(path: &Path, i: u32) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

/// FILE.backups … FILE.1, FILE: the files that exist, oldest first.
fn generations(path: &Path, backups: u32) -> Vec<PathBuf> {
    (1..=backups)
        .rev()
        .map(|i| numbered(path, i))
        .chain(std::iter::once(path.to_path_buf()))
        .filter(|p| p.exists())
        .collect()
}

/// A child prints numbered lines; the test reads its pipe in chunks and
/// writes each through a Sink with a small limit. Every file then holds whole
/// chunks only, is within the limit unless it is one chunk alone, and the
/// files, oldest first, are exactly the last chunks in order.
#[test]
fn a_childs_output_rotates_in_whole_chunks_and_nothing_kept_is_out_of_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("out");
    let (maxbytes, backups) = (8192, 3);
    let mut sink = Sink::open(&path, "stdout", maxbytes, backups).expect("open");
    let mut child = Command::new("seq")
        .args(["1", "20000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn seq");
    let mut out = child.stdout.take().expect("pipe");
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    // Odd sizes, so chunks end mid-line as pipe reads do.
    let sizes = [4096, 1000, 17, 9000, 333];
    let mut i = 0;
    loop {
        let mut buf = vec![0u8; sizes[i % sizes.len()]];
        i += 1;
        // Blocking reads end at EOF, which the child's exit brings.
        let n = out.read(&mut buf).expect("read pipe");
        if n == 0 {
            break;
        }
        buf.truncate(n);
        sink.write(&buf).expect("write");
        chunks.push(buf);
    }
    assert!(child.wait().expect("wait").success());

    let files = generations(&path, backups);
    assert_eq!(files.len(), 4, "FILE and 3 backups: {files:?}");
    assert!(!numbered(&path, 4).exists());
    // Match the files against the chunks from the newest back.
    let mut next = chunks.len();
    for f in files.iter().rev() {
        let text = fs::read(f).expect("read file");
        let mut len = 0;
        let mut whole = Vec::new();
        while len < text.len() {
            assert!(next > 0, "{} holds more than was written", f.display());
            next -= 1;
            len += chunks[next].len();
            whole.splice(0..0, chunks[next].iter().copied());
        }
        assert_eq!(text, whole, "{} is not whole chunks in order", f.display());
        let one_chunk = chunks[next].len() == text.len();
        assert!(
            text.len() as u64 <= maxbytes || one_chunk,
            "{} has {} bytes",
            f.display(),
            text.len()
        );
    }
    // The newest file ends with the last line, the rest came before in order.
    let all: String = files
        .iter()
        .map(|f| fs::read_to_string(f).expect("read"))
        .collect();
    let numbers: Vec<u32> = all
        .lines()
        .skip(1) // the first line kept may be the end of a split one
        .map(|l| l.parse().expect("a number"))
        .collect();
    assert_eq!(numbers.last(), Some(&20000));
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1));
}

fn log_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// The number in "… WARN  line N …", for records of this test.
fn record_number(line: &str) -> Option<u32> {
    let rest = line.split(" WARN  line ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// The real event log (env_logger, the global log file): records rotate whole,
/// `reopen_current` after a logrotate-style move starts a new file, and
/// `set_limits` turns rotation off and on. One test: the log is global.
#[test]
fn the_event_log_rotates_whole_records_and_follows_reopen_and_new_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("d.log");
    eventlog::init(&path, 1024, 2).expect("init");
    // WARN, so that a RUST_LOG=warn in the environment does not hide them.
    for i in 0..300 {
        log::warn!("line {i} {}", "x".repeat(i % 50));
    }
    let files = generations(&path, 2);
    assert_eq!(files.len(), 3, "{files:?}");
    assert!(!numbered(&path, 3).exists());
    let mut kept = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).expect("read");
        assert!(text.len() <= 1024, "{}: {} bytes", f.display(), text.len());
        for l in text.lines() {
            let n = record_number(l).unwrap_or_else(|| panic!("not a whole record: {l:?}"));
            assert!(
                l.ends_with(&format!("line {n} {}", "x".repeat(n as usize % 50))),
                "{l:?}"
            );
            kept.push(n);
        }
    }
    assert_eq!(kept.last(), Some(&299));
    assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");

    // logrotate `create`: mv, then the daemon's reopen (SIGUSR2).
    let moved = dir.path().join("d.log.old");
    fs::rename(&path, &moved).expect("mv");
    log::warn!("line 1000 to the moved file");
    eventlog::reopen_current().expect("reopen");
    log::warn!("line 1001 to the new file");
    assert_eq!(
        log_lines(&moved).last().and_then(|l| record_number(l)),
        Some(1000)
    );
    let new: Vec<Option<u32>> = log_lines(&path).iter().map(|l| record_number(l)).collect();
    assert_eq!(new, [Some(1001)]);

    // A reload with logfile_maxbytes 0: no more rotation.
    let before = fs::read(numbered(&path, 1)).expect("read .1");
    eventlog::set_limits(0, 2);
    for i in 2000..2100 {
        log::warn!("line {i} {}", "y".repeat(40));
    }
    assert!(fs::metadata(&path).expect("stat").len() > 1024);
    assert_eq!(fs::read(numbered(&path, 1)).expect("read .1"), before);
    // And back on: the next record rotates the oversized file.
    eventlog::set_limits(1024, 2);
    log::warn!("line 3000 after the limit came back");
    let now: Vec<Option<u32>> = log_lines(&path).iter().map(|l| record_number(l)).collect();
    assert_eq!(now, [Some(3000)]);
    let prev = log_lines(&numbered(&path, 1));
    assert_eq!(prev.last().and_then(|l| record_number(l)), Some(2099));
}
