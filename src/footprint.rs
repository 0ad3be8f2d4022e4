//! Giving back the memory that only loading a configuration needed.
//!
//! Booting and reloading run code the idle loop never runs again: the dynamic
//! loader, the YAML parser, every check of every key, the first spawns. Their
//! pages stay mapped (and counted in the daemon's resident set) long after, and
//! the kernel maps file pages 64 KiB at a time around each fault ("fault-around"),
//! so one call into a library keeps its neighbours resident too. The heap keeps
//! the free space of the parsed YAML tree. `trim` runs once the loop has settled
//! after a boot or a reload, and after use that faulted pages back in (when:
//! `trimmer`):
//!
//! - every file mapping that holds only clean pages (code, read-only data: its
//!   `Anonymous` and `Swap` counts are 0, so nothing in it exists only in
//!   memory or in swap) is told `MADV_RANDOM` (later faults map one page, not
//!   a 64 KiB window) and
//!   `MADV_DONTNEED` (its pages leave the resident set; the next use maps the
//!   same page back from the page cache, a minor fault);
//! - `malloc_trim(0)` returns the heap's free pages.
//!
//! A mapping with any private page (relocated read-only data, a debugger's
//! breakpoint) is left alone: dropping it would lose what was written there.

use std::ops::Range;

/// Releases the clean file-backed pages and the free heap; returns the bytes of
/// file mappings released (for the log).
pub fn trim() -> usize {
    let released = match std::fs::read_to_string("/proc/self/smaps") {
        Ok(text) => {
            let ranges = clean_file_mappings(&text);
            let mut total = 0;
            for r in ranges {
                let (addr, len) = (r.start as *mut libc::c_void, r.end - r.start);
                // SAFETY: each range is a whole mapping of this process, read
                // only and without private pages, so dropping its pages loses
                // nothing: they are read back from the file on the next access
                // (by any thread). Read-only: nothing writes a page meanwhile.
                let ok = unsafe {
                    libc::madvise(addr, len, libc::MADV_RANDOM);
                    libc::madvise(addr, len, libc::MADV_DONTNEED) == 0
                };
                if ok {
                    total += len;
                }
            }
            total
        }
        Err(_) => 0,
    };
    // After the smaps text is freed, so that its pages go back too.
    // SAFETY: a plain glibc call with no pointer arguments.
    unsafe { libc::malloc_trim(0) };
    released
}

/// The address ranges of the mappings in `smaps` text that are backed by a file,
/// not writable, and hold no anonymous (private, written) page, resident or
/// swapped out.
pub fn clean_file_mappings(smaps: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    // The mapping being read: its range, whether its header qualifies, and
    // whether its `Anonymous` and its `Swap` lines said 0. Both: a private
    // page swapped out is counted in `Swap` only (`Anonymous` counts resident
    // pages), and MADV_DONTNEED would drop it with its swap entry.
    let mut current: Option<(Range<usize>, bool, bool, bool)> = None;
    let done = |c: (Range<usize>, bool, bool, bool)| (c.1 && c.2 && c.3).then_some(c.0);
    let zero = |kb: &str| kb.trim().trim_end_matches("kB").trim().parse::<u64>() == Ok(0);
    for line in smaps.lines() {
        if let Some(header) = mapping_header(line) {
            out.extend(current.take().and_then(done));
            current = Some((header.0, header.1, false, false));
        } else if let Some(c) = current.as_mut() {
            // Unreadable or missing counts as private: only a sure 0 qualifies.
            if let Some(kb) = line.strip_prefix("Anonymous:") {
                c.2 = zero(kb);
            } else if let Some(kb) = line.strip_prefix("Swap:") {
                c.3 = zero(kb);
            }
        }
    }
    out.extend(current.and_then(done));
    out
}

/// A mapping's first line: `start-end perms offset dev inode [path]`. Returns
/// its range and whether it is a read-only mapping of a file.
fn mapping_header(line: &str) -> Option<(Range<usize>, bool)> {
    let mut f = line.split_whitespace();
    let (start, end) = f.next()?.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    let perms = f.next()?;
    // Field lines ("Rss:", "VmFlags:") have no range, so they stop above; a
    // header has exactly four permission characters.
    if perms.len() != 4 || start >= end {
        return None;
    }
    let (_offset, _dev, _inode) = (f.next()?, f.next()?, f.next()?);
    let path = f.next().unwrap_or("");
    let clean = perms.starts_with('r') && perms.as_bytes()[1] == b'-' && path.starts_with('/');
    Some((start..end, clean))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMAPS: &str = "\
55d0c0000000-55d0c0010000 r--p 00000000 08:01 42 /usr/bin/taskmasterd
Size:                 64 kB
Rss:                  64 kB
Anonymous:             0 kB
Swap:                  0 kB
VmFlags: rd mr mw me
55d0c0010000-55d0c0100000 r-xp 00010000 08:01 42 /usr/bin/taskmasterd
Rss:                 400 kB
Anonymous:             0 kB
Swap:                  0 kB
55d0c0100000-55d0c0110000 r--p 00100000 08:01 42 /usr/bin/taskmasterd
Anonymous:            24 kB
55d0c0110000-55d0c0112000 rw-p 00110000 08:01 42 /usr/bin/taskmasterd
Anonymous:             8 kB
55d0c1000000-55d0c1100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           100 kB
7f0000000000-7f0000001000 r--p 00000000 00:00 0
Anonymous:             0 kB
7f0000010000-7f0000020000 r-xp 00000000 08:01 7 /usr/lib/libc.so.6 (deleted)
Anonymous:             0 kB
Swap:                  0 kB
7f0000020000-7f0000030000 r-xp 00000000 08:01 8 /usr/lib/libx.so
Anonymous:           4 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f0000040000-7f0000050000 r-xp 00000000 08:01 9 /usr/lib/liby.so
";

    #[test]
    fn only_clean_read_only_file_mappings() {
        assert_eq!(
            clean_file_mappings(SMAPS),
            [
                0x55d0c0000000..0x55d0c0010000,
                0x55d0c0010000..0x55d0c0100000,
                0x7f0000010000..0x7f0000020000,
            ],
            "relocated data (24 kB private), writable, anonymous, vdso, a \
             patched text page and a mapping with no Anonymous line are kept"
        );
    }

    #[test]
    fn a_private_page_in_swap_keeps_its_mapping() {
        // A relocated page that was swapped out is counted as `Swap`, not as
        // `Anonymous` (smaps counts only resident pages there): dropping the
        // mapping would drop the swap entry, and the page would come back
        // from the file, relocations lost.
        let smaps = "\
1000-3000 r--p 00000000 08:01 42 /usr/lib/libz.so
Anonymous:             0 kB
Swap:                  4 kB
4000-5000 r--p 00000000 08:01 42 /usr/lib/libz.so
Anonymous:             0 kB
Swap:                  0 kB
6000-7000 r--p 00000000 08:01 42 /usr/lib/libz.so
Anonymous:             0 kB
Swap:                  x kB
";
        assert_eq!(
            clean_file_mappings(smaps),
            vec![Range {
                start: 0x4000,
                end: 0x5000
            }]
        );
    }

    #[test]
    fn garbage_is_no_mapping() {
        assert!(clean_file_mappings("").is_empty());
        assert!(
            clean_file_mappings("zz-yy r--p 0 0 0 /x\nAnonymous: 0 kB\nSwap: 0 kB\n").is_empty()
        );
        assert!(
            clean_file_mappings("2000-1000 r--p 0 0 0 /x\nAnonymous: 0 kB\nSwap: 0 kB\n")
                .is_empty()
        );
        assert!(
            clean_file_mappings("1000-2000 r--p 0 0 0 /x\nAnonymous: x kB\nSwap: 0 kB\n")
                .is_empty()
        );
    }

    #[test]
    fn trim_leaves_this_process_working() {
        // The test binary's own code and libc go through the same path; that
        // the test goes on (and the process exits cleanly) is the check.
        let v: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        trim();
        assert_eq!(v.iter().map(|s| s.len()).sum::<usize>(), 2890);
    }
}
