//! Property test of the real daemon's protocol: any bytes, sent in any
//! chunks, get exactly one final line (`OK` or `ERR …`) per non-blank line,
//! and nothing else that looks like one (body lines are dot-stuffed).
mod common;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::io::Write;
use std::net::Shutdown;

/// Lines that mean something to the daemon, and may get a body (help,
/// status) or an error; never one that ends or takes over the connection.
const COMMANDS: &[&str] = &[
    "status",
    "status --json",
    "status web",
    "status nosuch",
    "help",
    "help status",
    "pid",
    "pid web:0",
    "signal",
    "signal HUP nosuch",
    "start nosuch",
    "stop nosuch:3",
    "restart",
    "auth x",
    "bogus",
    "",
    " \t ",
    "\r",
    ".",
    "OK",
    "ERR",
    "é",
    "\u{a0}",
];

/// Commands that close the connection, stop the daemon, or stream.
fn ends_the_exchange(line: &[u8]) -> bool {
    let first = String::from_utf8_lossy(line)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string();
    ["quit", "shutdown", "attach", "tail"].contains(&first.as_str())
}

/// Replies due for `input`: one per line (the last may lack its `\n`) that is
/// not UTF-8 or has a word in it, once its trailing `\r` is dropped.
fn replies_due(input: &[u8]) -> usize {
    let mut lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
        .iter()
        .filter(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            std::str::from_utf8(l).map_or(true, |s| s.split_whitespace().next().is_some())
        })
        .count()
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    let word = prop::sample::select(COMMANDS).prop_map(|c| c.as_bytes().to_vec());
    let junk = prop::collection::vec(
        any::<u8>().prop_filter("a line break", |b| *b != b'\n'),
        0..40,
    );
    prop_oneof![
        3 => word.clone(),
        2 => (word, junk.clone()).prop_map(|(w, j)| [w, b" ".to_vec(), j].concat()),
        1 => junk,
    ]
}

#[test]
fn every_line_gets_exactly_one_final_line() {
    let d = Daemon::start("  web:\n    cmd: sleep 1000\n    starttime: 0\n");
    d.wait_state("web:0", "RUNNING", 10.0);
    let cases = taskmaster::proptest_env::cases(48);
    // No failure file: a failing case is printed in full by the panic.
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::with_cases(cases)
    });
    let input = (
        prop::collection::vec(line(), 0..30),
        any::<bool>(),
        prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    );
    let result = runner.run(&input, |(lines, newline_at_end, cuts)| {
        prop_assume!(!lines.iter().any(|l| ends_the_exchange(l)));
        let mut bytes = lines.join(&b'\n');
        if newline_at_end {
            bytes.push(b'\n');
        }
        let due = replies_due(&bytes);
        let mut s = d.connect();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.extend([0, bytes.len()]);
        at.sort_unstable();
        for w in at.windows(2) {
            s.write_all(&bytes[w[0]..w[1]])
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
        // EOF: the daemon answers what it has (a last line without `\n`
        // too), then closes; the read times out if it never does.
        s.shutdown(Shutdown::Write)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Read errors are part of the verdict (a reset would otherwise look
        // like missing replies).
        let mut raw = Vec::new();
        let read = std::io::Read::read_to_end(&mut &s, &mut raw);
        let out = String::from_utf8_lossy(&raw).into_owned();
        prop_assert!(read.is_ok(), "read: {:?} after {:?}", read, out);
        let finals = out
            .lines()
            .filter(|l| *l == "OK" || l.starts_with("ERR"))
            .count();
        prop_assert_eq!(
            finals,
            due,
            "sent {:?}\ngot {}",
            String::from_utf8_lossy(&bytes),
            out
        );
        prop_assert!(out.is_empty() || out.ends_with('\n'), "{}", out);
        if due > 0 {
            let last = out.lines().last().unwrap_or("");
            prop_assert!(last == "OK" || last.starts_with("ERR"), "{}", out);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The daemon is still serving, and still supervising.
    assert!(d.cmd("status web").contains("RUNNING"));
}
