use super::*;
use std::fs;

/// A temp dir and a FILE path in it.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    (dir, path)
}

fn numbered(path: &Path, i: u32) -> PathBuf {
    PathBuf::from(format!("{}.{i}", path.display()))
}

/// FILE's content, or None when it does not exist.
fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn backup(path: &Path, i: u32) -> Option<String> {
    read(&numbered(path, i))
}

fn put(sink: &mut Sink, s: &str) {
    sink.write(s.as_bytes()).unwrap();
}

#[test]
fn a_write_landing_exactly_on_the_limit_does_not_rotate_the_next_byte_does() {
    let (_dir, path) = setup();
    let mut sink = Sink::open(&path, "stdout", 10, 3).unwrap();
    put(&mut sink, "aaaa");
    put(&mut sink, "bbbbbb");
    assert_eq!(read(&path).unwrap(), "aaaabbbbbb");
    assert_eq!(backup(&path, 1), None, "10 bytes of 10: no rotation yet");
    put(&mut sink, "c");
    assert_eq!(backup(&path, 1).unwrap(), "aaaabbbbbb");
    assert_eq!(read(&path).unwrap(), "c");
}

#[test]
fn backups_are_numbered_newest_first_and_the_oldest_beyond_the_count_is_deleted() {
    let (_dir, path) = setup();
    let mut sink = Sink::open(&path, "stdout", 4, 2).unwrap();
    for s in ["1111", "2222", "3333", "4444", "5555"] {
        put(&mut sink, s);
    }
    assert_eq!(read(&path).unwrap(), "5555");
    assert_eq!(backup(&path, 1).unwrap(), "4444");
    assert_eq!(backup(&path, 2).unwrap(), "3333");
    assert_eq!(backup(&path, 3), None);
}

#[test]
fn backups_zero_starts_the_file_afresh_and_keeps_nothing() {
    let (_dir, path) = setup();
    let mut sink = Sink::open(&path, "stdout", 4, 0).unwrap();
    put(&mut sink, "1111");
    put(&mut sink, "22");
    assert_eq!(read(&path).unwrap(), "22");
    put(&mut sink, "333");
    assert_eq!(read(&path).unwrap(), "333");
    assert_eq!(backup(&path, 1), None);
}

#[test]
fn a_chunk_larger_than_the_limit_goes_whole_into_a_fresh_file() {
    let (_dir, path) = setup();
    let mut sink = Sink::open(&path, "stdout", 4, 3).unwrap();
    // Into an empty file: no rotation, nothing to rotate.
    put(&mut sink, "0123456789");
    assert_eq!(backup(&path, 1), None);
    assert_eq!(read(&path).unwrap(), "0123456789");
    put(&mut sink, "ab");
    put(&mut sink, "ABCDEFGHIJ");
    assert_eq!(read(&path).unwrap(), "ABCDEFGHIJ");
    assert_eq!(backup(&path, 1).unwrap(), "ab");
    assert_eq!(backup(&path, 2).unwrap(), "0123456789");
}

#[test]
fn the_size_at_open_counts_so_output_appends_across_restarts() {
    let (_dir, path) = setup();
    fs::write(&path, "12345678").unwrap();
    let mut sink = Sink::open(&path, "stdout", 10, 1).unwrap();
    put(&mut sink, "9A");
    assert_eq!(read(&path).unwrap(), "123456789A");
    put(&mut sink, "B");
    assert_eq!(backup(&path, 1).unwrap(), "123456789A");
    assert_eq!(read(&path).unwrap(), "B");
}

/// logrotate `create`: mv FILE FILE.moved, then `reopen`.
#[test]
fn reopen_after_an_external_rename_starts_a_new_file_with_its_own_size() {
    let (dir, path) = setup();
    let moved = dir.path().join("out.moved");
    let mut sink = Sink::open(&path, "stdout", 6, 2).unwrap();
    put(&mut sink, "old");
    fs::rename(&path, &moved).unwrap();
    put(&mut sink, "+");
    assert_eq!(
        read(&moved).unwrap(),
        "old+",
        "until reopen: the moved file"
    );
    sink.reopen().unwrap();
    assert_eq!(sink.path(), path);
    put(&mut sink, "new");
    assert_eq!(read(&path).unwrap(), "new");
    put(&mut sink, "123");
    assert_eq!(
        backup(&path, 1),
        None,
        "6 bytes in the new file: at the limit"
    );
    put(&mut sink, "x");
    assert_eq!(backup(&path, 1).unwrap(), "new123");
    assert_eq!(read(&moved).unwrap(), "old+");

    // Something already at the path when reopening: its size counts.
    fs::write(&path, "abcde").unwrap();
    sink.reopen().unwrap();
    put(&mut sink, "f");
    assert_eq!(backup(&path, 2), None);
    put(&mut sink, "g");
    assert_eq!(backup(&path, 1).unwrap(), "abcdef");
}

#[test]
fn a_failed_reopen_keeps_the_current_file() {
    let (dir, path) = setup();
    let moved = dir.path().join("out.moved");
    let mut sink = Sink::open(&path, "stdout", 0, 2).unwrap();
    fs::rename(&path, &moved).unwrap();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = sink.reopen().unwrap_err();
    assert_eq!(e, format!("stdout {}: not a regular file", path.display()));
    put(&mut sink, "kept");
    assert_eq!(read(&moved).unwrap(), "kept");
}

#[test]
fn set_limits_applies_from_the_next_write() {
    let (_dir, path) = setup();
    let mut sink = Sink::open(&path, "stdout", 0, 1).unwrap();
    put(&mut sink, &"x".repeat(100));
    assert_eq!(backup(&path, 1), None, "maxbytes 0 never rotates");
    sink.set_limits(10, 2);
    put(&mut sink, "y");
    assert_eq!(backup(&path, 1).unwrap(), "x".repeat(100));
    assert_eq!(read(&path).unwrap(), "y");
    sink.set_limits(1, 1);
    put(&mut sink, "z");
    assert_eq!(backup(&path, 1).unwrap(), "y");
    assert_eq!(backup(&path, 2), None, "one backup kept now");
    sink.set_limits(0, 1);
    put(&mut sink, "more");
    assert_eq!(read(&path).unwrap(), "zmore");
}

#[test]
fn missing_backups_leave_gaps_that_move_up_and_nothing_is_overwritten() {
    let (_dir, path) = setup();
    fs::write(&path, "cur").unwrap();
    fs::write(numbered(&path, 1), "one").unwrap();
    fs::write(numbered(&path, 3), "three").unwrap();
    let mut sink = Sink::open(&path, "stdout", 3, 4).unwrap();
    put(&mut sink, "new");
    assert_eq!(read(&path).unwrap(), "new");
    assert_eq!(backup(&path, 1).unwrap(), "cur");
    assert_eq!(backup(&path, 2).unwrap(), "one");
    assert_eq!(backup(&path, 3), None);
    assert_eq!(backup(&path, 4).unwrap(), "three");
    put(&mut sink, "nxt");
    assert_eq!(backup(&path, 4), None, "the oldest went beyond 4");
    assert_eq!(backup(&path, 3).unwrap(), "one");
    assert_eq!(backup(&path, 2).unwrap(), "cur");
    assert_eq!(backup(&path, 1).unwrap(), "new");
}

/// A directory among the names stops the rotation (nothing is moved); the
/// chunk still goes into the current file, and the next attempt comes only
/// after another `maxbytes`.
#[test]
fn a_directory_among_the_backups_is_never_moved_or_replaced() {
    let (_dir, path) = setup();
    for i in [2, 3] {
        let d = numbered(&path, i);
        fs::create_dir(&d).unwrap();
        fs::write(d.join("inside"), "precious").unwrap();
        fs::write(numbered(&path, 1), "one").unwrap();
        fs::write(&path, "").unwrap();
        let mut sink = Sink::open(&path, "stdout", 4, 3).unwrap();
        put(&mut sink, "abcd");
        let e = sink.write(b"e").unwrap_err();
        let want = format!(
            "cannot rotate stdout {}: {} is a directory; writing on past stdout_maxbytes",
            path.display(),
            d.display()
        );
        assert_eq!(e, WriteError::NotRotated(want.clone()));
        assert_eq!(String::from(e), want);
        assert_eq!(read(&path).unwrap(), "abcde", "written anyway");
        put(&mut sink, "fg");
        assert_eq!(
            sink.write(b"h"),
            Ok(()),
            "no new attempt before 4 more bytes"
        );
        assert!(matches!(sink.write(b"i"), Err(WriteError::NotRotated(_))));
        assert_eq!(fs::read_to_string(d.join("inside")).unwrap(), "precious");
        assert_eq!(backup(&path, 1).unwrap(), "one");
        fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn symlinks_among_the_backups_are_renamed_or_removed_never_followed() {
    let (dir, path) = setup();
    let target1 = dir.path().join("target1");
    let target2 = dir.path().join("target2");
    fs::write(&target1, "t1").unwrap();
    fs::write(&target2, "t2").unwrap();
    std::os::unix::fs::symlink(&target1, numbered(&path, 1)).unwrap();
    std::os::unix::fs::symlink(&target2, numbered(&path, 2)).unwrap();
    let mut sink = Sink::open(&path, "stdout", 2, 2).unwrap();
    put(&mut sink, "ab");
    put(&mut sink, "cd");
    assert_eq!(read(&target1).unwrap(), "t1");
    assert_eq!(read(&target2).unwrap(), "t2", "only the link was deleted");
    let link = fs::symlink_metadata(numbered(&path, 2)).unwrap();
    assert!(
        link.file_type().is_symlink(),
        "FILE.1's link moved to FILE.2"
    );
    assert_eq!(backup(&path, 1).unwrap(), "ab");
}

#[test]
fn dev_null_never_rotates_even_through_a_symlink() {
    let mut sink = Sink::open(Path::new("/dev/null"), "stdout", 1, 3).unwrap();
    for _ in 0..10 {
        put(&mut sink, "xyz");
    }
    assert!(!Path::new("/dev/null.1").exists());
    let (dir, path) = setup();
    std::os::unix::fs::symlink("/dev/null", &path).unwrap();
    let mut sink = Sink::open(&path, "stdout", 1, 3).unwrap();
    for _ in 0..10 {
        put(&mut sink, "xyz");
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_fifo_is_refused() {
    let (_dir, path) = setup();
    nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let e = Sink::open(&path, "stderr", 10, 1).err().unwrap();
    assert_eq!(e, format!("stderr {}: not a regular file", path.display()));
}

/// logrotate `copytruncate` empties the file behind our back: the size is
/// asked of the file before a rotation, so an almost empty file is not rotated.
#[test]
fn an_external_truncation_is_noticed_before_rotating() {
    let (_dir, path) = setup();
    let mut sink = Sink::open(&path, "stdout", 10, 1).unwrap();
    put(&mut sink, "12345678");
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    put(&mut sink, "abcde");
    assert_eq!(backup(&path, 1), None);
    assert_eq!(read(&path).unwrap(), "abcde");
}

/// A full disk: the chunk is reported dropped, with the count, and the sink
/// goes on (the next chunk is tried afresh, no retry of the lost one).
#[test]
fn a_failed_write_reports_the_dropped_bytes() {
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let mut sink = Sink::on_file(full, Path::new("/dev/full"), "stdout");
    let e = sink.write(b"hello").unwrap_err();
    assert!(matches!(e, WriteError::Dropped(_)));
    let text = e.to_string();
    assert!(
        text.starts_with("cannot write stdout /dev/full: "),
        "{text}"
    );
    assert!(text.ends_with("; 5 bytes dropped"), "{text}");
    assert!(sink.write(b"again").is_err());
    assert_eq!(sink.write(b""), Ok(()), "nothing to write, nothing to fail");
}

#[test]
fn new_files_get_the_mode_asked_for() {
    use std::os::unix::fs::PermissionsExt;
    let (_dir, path) = setup();
    // Read, not set: the umask is the whole test process's.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        .unwrap();
    let mut sink = Sink::open_mode(&path, "logfile", 0o640, 2, 1).unwrap();
    put(&mut sink, "ab");
    put(&mut sink, "cd");
    for p in [path.clone(), numbered(&path, 1)] {
        let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640 & !umask, "{}", p.display());
    }
}
