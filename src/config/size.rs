//! Byte sizes as operators write them: `1048576`, `10MB`, `"512 KB"`, `1gb`.
//!
//! Suffixes are powers of 1024 (as supervisord's `logfile_maxbytes`), any case,
//! with optional spaces before them. Only whole numbers: `1.5MB` is refused
//! rather than rounded, so the file size in the config is the size on disk.

/// Largest size accepted (1 TiB): far above any sane rotation threshold, and low
/// enough that a typo (`10000GB`) is caught instead of meaning "never rotate".
pub const MAX_SIZE: u64 = 1 << 40;

/// What a size looks like, for error messages.
pub const EXPECTED: &str =
    "expected a size in bytes: an integer, or one with KB, MB or GB (e.g. 10MB, \"512 KB\")";

/// `text` in bytes, or why it is not a size (the message follows `EXPECTED`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, suffix) = t.split_at(split);
    let unit: u64 = match suffix
        .trim_start_matches([' ', '\t'])
        .to_ascii_lowercase()
        .as_str()
    {
        "" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        _ => return Err(format!("{EXPECTED}, got {text:?}")),
    };
    if digits.is_empty() {
        return Err(format!("{EXPECTED}, got {text:?}"));
    }
    // Digits only (no sign), so a parse failure can only be an overflow.
    let bytes = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit));
    match bytes {
        Some(b) if b <= MAX_SIZE => Ok(b),
        _ => Err(format!(
            "expected a size of at most 1 TB (1024GB), got {text:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_numbers_and_suffixes() {
        for (text, want) in [
            ("0", 0),
            ("1", 1),
            ("1048576", 1 << 20),
            ("0KB", 0),
            ("1KB", 1024),
            ("1kb", 1024),
            ("1Kb", 1024),
            ("1kB", 1024),
            ("10MB", 10 << 20),
            ("10 MB", 10 << 20),
            ("512  kb", 512 << 10),
            ("1gb", 1 << 30),
            ("1 GB", 1 << 30),
            (" 7mb ", 7 << 20),
            ("007KB", 7 << 10),
            ("1024GB", MAX_SIZE),
            ("1099511627776", MAX_SIZE),
        ] {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn everything_else_is_refused_with_the_expected_forms() {
        for bad in [
            "",
            " ",
            "MB",
            "KB",
            "-1",
            "+1",
            "-1KB",
            "1.5MB",
            "1,000",
            "1_000",
            "1 000",
            "1B",
            "1K",
            "1M",
            "1G",
            "1KiB",
            "1TB",
            "1 MB MB",
            "MB1",
            "1MBx",
            "0x10",
            "ten",
            "1\u{a0}MB",
        ] {
            let e = parse_size(bad).unwrap_err();
            assert!(e.starts_with(EXPECTED), "{bad:?}: {e}");
            assert!(e.ends_with(&format!("got {bad:?}")), "{bad:?}: {e}");
        }
    }

    #[test]
    fn above_one_terabyte_and_overflows_are_refused() {
        for big in [
            "1025GB",
            "1099511627777",
            "1048577MB",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999GB",
            "17179869184GB",
        ] {
            let e = parse_size(big).unwrap_err();
            assert!(
                e.starts_with("expected a size of at most 1 TB"),
                "{big}: {e}"
            );
        }
    }
}
