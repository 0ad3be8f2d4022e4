//! Reads a config file without ever blocking or reading without end.
//!
//! The path comes from the operator and may name a FIFO (open would wait for a
//! writer, read for its data), a device (`/dev/zero` never ends) or a file that
//! grows while we read it. So: open with O_NONBLOCK, fstat the opened descriptor
//! (not the path, which could be swapped in between), accept only a regular file,
//! and read at most one byte more than the limit.

use super::ConfigError;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Largest config file read: far above any real config (20 000 programs take
/// about 4 MiB), low enough that parsing it stays a matter of seconds.
pub const MAX_BYTES: u64 = 16 * 1024 * 1024;

/// The text of `path`, or one error naming the file.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    let fail = |line: Option<usize>, message: String| ConfigError {
        file: path.display().to_string(),
        line,
        key: String::new(),
        message,
    };
    let file = OpenOptions::new()
        .read(true)
        // O_NOCTTY: a terminal given as the config must not become the daemon's
        // controlling terminal.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| fail(None, format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(None, format!("cannot read: {e}")))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "a special file"
        };
        return Err(fail(
            None,
            format!("not a regular file ({what}): expected a YAML file"),
        ));
    }
    if meta.len() > MAX_BYTES {
        return Err(fail(None, too_large(&meta.len().to_string())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    read_capped(file, &mut bytes).map_err(|e| fail(None, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_BYTES {
        // It grew after the fstat.
        return Err(fail(None, too_large(&format!("more than {MAX_BYTES}"))));
    }
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        fail(
            Some(line),
            "invalid UTF-8: a config file must be UTF-8 text".to_string(),
        )
    })
}

/// Reads at most `MAX_BYTES + 1` bytes: one more than allowed tells "too large"
/// without reading the rest.
fn read_capped(file: File, into: &mut Vec<u8>) -> std::io::Result<()> {
    file.take(MAX_BYTES + 1).read_to_end(into).map(drop)
}

fn too_large(size: &str) -> String {
    format!(
        "too large ({size} bytes, the limit is {} MiB)",
        MAX_BYTES / 1024 / 1024
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_BYTES).unwrap();
        assert_eq!(read(&path).map(|t| t.len()), Ok(MAX_BYTES as usize));
        file.set_len(MAX_BYTES + 1).unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(
            e.ends_with(": too large (16777217 bytes, the limit is 16 MiB)"),
            "{e}"
        );
    }

    #[test]
    fn invalid_utf8_has_its_line_and_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, b"programs:\n  a:\n    cmd: \"\xc3\x28\"\n").unwrap();
        let e = read(&path).unwrap_err();
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("UTF-8"), "{e}");
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not a regular file (a directory)"), "{e}");
    }
}
