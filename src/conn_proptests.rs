//! Property test of line framing: any bytes, cut into any chunks, come out
//! as exactly the lines they hold, whatever the cuts.

use super::*;
use proptest::prelude::*;
use std::io::Write;

/// The lines `input` holds, as `next_line` must give them: split at `\n`, one
/// trailing `\r` dropped, a last line without `\n` given at EOF.
fn expected(input: &[u8]) -> Vec<Line> {
    let mut parts: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
    if parts.last().is_some_and(|l| l.is_empty()) {
        parts.pop();
    }
    parts
        .into_iter()
        .map(|l| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            match std::str::from_utf8(l) {
                Ok(s) => Line::Text(s.to_string()),
                Err(_) => Line::Invalid,
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_env::cases(256)))]

    #[test]
    fn any_chunks_give_the_lines(
        input in prop::collection::vec(
            prop_oneof![any::<u8>(), prop::sample::select(b"\n\r\n \xc3\xa9\xff".to_vec())],
            0..2000,
        ),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..30),
    ) {
        let (a, mut peer) = std::os::unix::net::UnixStream::pair()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        a.set_nonblocking(true).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let raw = std::os::fd::AsRawFd::as_raw_fd(&a);
        let mut c = Conn::new(Stream::Unix(UnixStream::from_std(a)), "test".into(), Instant::now());
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(input.len() + 1)).collect();
        at.extend([0, input.len()]);
        at.sort_unstable();
        let mut got = Vec::new();
        for w in at.windows(2) {
            peer.write_all(&input[w[0]..w[1]]).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // A chunk is smaller than the socket buffer: it is all there now.
            while let Filled::Bytes(_) = c.fill() {
                while let Some(line) = c.next_line() {
                    got.push(line);
                }
            }
        }
        drop(peer);
        // The close shows only once every copy of `peer` is closed: a child
        // that another test thread is spawning holds one until its exec.
        let mut last = c.fill();
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while last == Filled::WouldBlock && Instant::now() < deadline {
            let mut p = libc::pollfd { fd: raw, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd; `raw` is open (owned by `c`).
            unsafe { libc::poll(&mut p, 1, 100) };
            last = c.fill();
        }
        prop_assert_eq!(last, Filled::Eof);
        while let Some(line) = c.next_line() {
            got.push(line);
        }
        prop_assert_eq!(got, expected(&input));
        prop_assert!(c.input.len() <= 2000);
    }
}
