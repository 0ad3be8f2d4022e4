//! The settings of a program that most programs leave at their defaults,
//! behind one pointer: at 1000 programs their room (about 110 bytes each)
//! was 110 KB of heap for values nobody set (docs/benchmarks.md, "Footprint").
//!
//! `Program.rare` reads like the fields themselves (`p.rare.ready`): a
//! program without any rare setting points nowhere and reads the defaults; the
//! first write (`p.rare.stdout_backups = 2`) makes its own copy. Two programs
//! compare equal when their settings are, boxed or not.

use super::{expand::PerProcess, Probe, DEFAULT_BACKUPS};
use crate::alerts::EventSet;
use crate::deps::Condition;
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

/// The rarely set settings of one program.
#[derive(Clone, Debug, PartialEq)]
pub struct RareSettings {
    /// The stdout file rotates before a write would take it past this; 0 = never.
    pub stdout_maxbytes: u64,
    /// Rotated stdout files kept: `FILE.1` … `FILE.N`.
    pub stdout_backups: u32,
    pub stderr_maxbytes: u64,
    pub stderr_backups: u32,
    /// `fatal_state_report_address`.
    pub report_address: Option<SocketAddr>,
    /// The events reported (HTTP to `report_address`, and `report_command`).
    pub report_events: EventSet,
    /// Run without a shell for each reported event.
    pub report_command: Option<Vec<String>>,
    /// Programs whose processes must meet a condition before these start.
    pub depends_on: Vec<(String, Condition)>,
    /// Only when a string uses `%(process_num)`: its template, completed per
    /// process by `for_process` (the program's fields hold process 0's values).
    pub per_process: Option<Box<PerProcess>>,
    /// When STARTING becomes RUNNING (instead of `starttime` alone).
    pub ready: Option<Box<Probe>>,
    /// Checked while RUNNING; enough consecutive failures stop the process.
    pub healthcheck: Option<Box<Probe>>,
}

impl Default for RareSettings {
    fn default() -> Self {
        RareSettings {
            stdout_maxbytes: 0,
            stdout_backups: DEFAULT_BACKUPS,
            stderr_maxbytes: 0,
            stderr_backups: DEFAULT_BACKUPS,
            report_address: None,
            report_events: EventSet::default(),
            report_command: None,
            depends_on: Vec::new(),
            per_process: None,
            ready: None,
            healthcheck: None,
        }
    }
}

/// The defaults every program without a rare setting reads.
fn defaults() -> &'static RareSettings {
    static DEFAULTS: OnceLock<RareSettings> = OnceLock::new();
    DEFAULTS.get_or_init(RareSettings::default)
}

/// `RareSettings`, boxed only when one differs from its default.
#[derive(Clone, Debug, Default)]
pub struct Rare(Option<Box<RareSettings>>);

impl Rare {
    /// Gives back the box if every setting is at its default again (a
    /// parsed program whose keys merely repeat the defaults).
    pub fn settle(&mut self) {
        if self.0.as_deref().is_some_and(|r| r == defaults()) {
            self.0 = None;
        }
    }

    /// Whether a box is held (for the tests of `settle`).
    pub fn is_boxed(&self) -> bool {
        self.0.is_some()
    }
}

impl Deref for Rare {
    type Target = RareSettings;
    fn deref(&self) -> &RareSettings {
        self.0.as_deref().unwrap_or_else(|| defaults())
    }
}

impl DerefMut for Rare {
    fn deref_mut(&mut self) -> &mut RareSettings {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for Rare {
    fn eq(&self, other: &Rare) -> bool {
        **self == **other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_unboxed_and_boxes_on_the_first_write() {
        let mut r = Rare::default();
        assert_eq!(r.stdout_backups, DEFAULT_BACKUPS);
        assert!(r.ready.is_none() && !r.is_boxed());
        r.stdout_backups = 2;
        assert!(r.is_boxed());
        assert_eq!(r.stdout_backups, 2);
        assert_ne!(r, Rare::default());
        r.settle();
        assert!(r.is_boxed(), "a setting differs: kept");
        r.stdout_backups = DEFAULT_BACKUPS;
        assert_eq!(r, Rare::default(), "equal by content, boxed or not");
        r.settle();
        assert!(!r.is_boxed());
    }

    #[test]
    fn a_parsed_program_boxes_only_what_it_sets() {
        let boxed = |yaml: &str| {
            let text = format!("programs:\n  p:\n    cmd: sleep 1\n{yaml}");
            let c = crate::config::parse(std::path::Path::new("/t.yaml"), &text);
            c.expect("a valid config").programs[0].rare.is_boxed()
        };
        assert!(!boxed(""));
        // Written, but the defaults: settled back to none.
        assert!(!boxed(
            "    stdout_backups: 5\n    report_events: [FATAL]\n"
        ));
        assert!(boxed("    stdout_backups: 2\n"));
        assert!(boxed("    ready: {file: /tmp/up}\n"));
        assert!(boxed(
            "    numprocs: 2\n    stdout: /tmp/o%(process_num)d\n"
        ));
    }
}
