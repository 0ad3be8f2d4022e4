//! How many cases each property test runs: its own default, small enough to
//! keep `cargo test` quick, or `PROPTEST_CASES` for a longer run (proptest
//! reads that variable only when a test sets no count of its own; ours do).

/// `PROPTEST_CASES` if set to a number, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}
