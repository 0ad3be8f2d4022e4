//! Property tests on valid configs damaged a few bytes at a time (flips,
//! insertions, deletions, pasted YAML tokens): the loader never panics, never
//! stalls, and every error names the file and says where: a key or a line.

use super::{programs, render, style, FILE, TOKENS};
use crate::config::{load, parse, ConfigError};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

use super::values::top_keys;

/// One edit of the text's bytes, at a position taken modulo its length.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR with a non-zero byte: anything from a changed letter to invalid UTF-8.
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index, usize),
    Token(prop::sample::Index, &'static str),
    /// A line repeated: duplicate keys, and deeper or shallower structure.
    Repeat(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<prop::sample::Index>;
    // Bytes that mean something to YAML are the interesting insertions.
    let yaml_byte = prop::sample::select(b"\n \t:-[]{},#&*!|>'\"?%@`\\\r\x00\xff".to_vec());
    prop_oneof![
        (at(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (at(), prop_oneof![yaml_byte, any::<u8>()]).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (at(), 1usize..8).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (at(), prop::sample::select(TOKENS)).prop_map(|(i, t)| Mutation::Token(i, t)),
        at().prop_map(Mutation::Repeat),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match m {
        Mutation::Flip(i, x) => bytes[i.index(len)] ^= x,
        Mutation::Insert(i, b) => bytes.insert(i.index(len + 1), *b),
        Mutation::Delete(i, n) => {
            let from = i.index(len);
            bytes.drain(from..(from + n).min(len));
        }
        Mutation::Token(i, t) => {
            let at = i.index(len + 1);
            bytes.splice(at..at, t.bytes());
        }
        Mutation::Repeat(i) => {
            let at = i.index(len);
            let start = bytes[..at]
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(0, |p| p + 1);
            let end = bytes[at..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(len, |p| at + p + 1);
            let line = bytes[start..end].to_vec();
            bytes.splice(start..start, line);
        }
    }
}

/// CPU time of this thread: a stall shows in it whatever else the machine
/// runs, while wall time grows with the load.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Each error names `file`, and a key or a line within the text.
fn located(errors: &[ConfigError], file: &str, lines: usize) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty());
    for e in errors {
        prop_assert_eq!(&e.file, file);
        prop_assert!(e.to_string().starts_with(&format!("{file}:")), "{}", e);
        prop_assert!(!e.key.is_empty() || e.line.is_some(), "nowhere: {}", e);
        if let Some(l) = e.line {
            prop_assert!((1..=lines + 1).contains(&l), "{} of {} lines", e, lines);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_env::cases(256)))]

    #[test]
    fn mutated_configs_load_or_say_where(
        gens in programs(),
        top in top_keys(),
        style in style(),
        edits in prop::collection::vec(mutation(), 1..8),
    ) {
        let (text, _) = render(&gens, &top, style);
        let mut bytes = text.into_bytes();
        for m in &edits {
            apply(&mut bytes, m);
        }
        let lines = bytes.split(|b| *b == b'\n').count();
        let cpu = thread_cpu();
        match String::from_utf8(bytes) {
            Ok(text) => {
                if let Err(errors) = parse(Path::new(FILE), &text) {
                    located(&errors, FILE, lines)
                        .map_err(|e| TestCaseError::fail(format!("{e}\n{text:?}")))?;
                }
            }
            // Invalid UTF-8 is found by the reader: through a real file.
            Err(e) => {
                let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
                let path = dir.path().join("t.yaml");
                std::fs::write(&path, e.as_bytes())
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let errors = match load(&path) {
                    Ok(_) => return Err(TestCaseError::fail("invalid UTF-8 loaded")),
                    Err(errors) => errors,
                };
                located(&errors, &path.display().to_string(), lines)?;
            }
        }
        // A config of a few hundred bytes parses in milliseconds.
        let spent = thread_cpu().saturating_sub(cpu);
        prop_assert!(spent < Duration::from_secs(1), "{:?} of CPU", spent);
    }
}
