//! Value strategies of the property tests: each value the parser must accept,
//! with the many ways an operator may spell it, and what it must load to.

use super::{key, Key};
use crate::config::{Config, Program};
use nix::sys::signal::Signal;
use proptest::prelude::*;
use std::path::Path;

/// Names YAML would read as something other than a string.
pub(super) fn yaml_special(s: &str) -> bool {
    ["true", "false", "null"].contains(&s.to_ascii_lowercase().as_str())
}

pub(super) fn quote(text: &str, style: u8) -> String {
    match style {
        1 => format!("'{text}'"),
        2 => format!("\"{text}\""),
        _ => text.to_string(),
    }
}

pub(super) fn umask() -> impl Strategy<Value = (u32, String)> {
    (0u32..=0o777, 0usize..=3, any::<bool>(), 0u8..3).prop_map(|(m, pad, prefix, q)| {
        let digits = format!("{m:o}");
        let width = (digits.len() + pad).min(4);
        let text = format!("{}{digits:0>width$}", if prefix { "0o" } else { "" });
        (m, quote(&text, q))
    })
}

pub(super) fn signal() -> impl Strategy<Value = (i32, String)> {
    let all: Vec<Signal> = Signal::iterator().collect();
    (prop::sample::select(all), 0u8..5, 0u8..3).prop_map(|(s, how, q)| {
        let full = s.as_str();
        let text = match how {
            0 => full.to_string(),
            1 => full.trim_start_matches("SIG").to_string(),
            2 => full.to_ascii_lowercase(),
            3 => full[3..].to_ascii_lowercase(),
            _ => (s as i32).to_string(),
        };
        (s as i32, quote(&text, q))
    })
}

/// `2`, `2.5`: seconds and how they are written.
pub(super) fn seconds() -> impl Strategy<Value = String> {
    (0u32..=3600, prop::option::of(1u32..10)).prop_map(|(s, f)| match f {
        Some(f) => format!("{s}.{f}"),
        None => s.to_string(),
    })
}

/// An env value as written, and the text the program must get.
pub(super) fn env_value() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        "[a-z]{1,6}( [a-z]{1,6})?".prop_map(|s| (format!("\"{s}\""), s)),
        "[a-z]{1,6}"
            .prop_filter("a YAML keyword", |s| !yaml_special(s))
            .prop_map(|s| (s.clone(), s)),
        "(0[0-7]{1,3}|[1-9][0-9]{0,4}|[0-9]\\.[0-9]{1,2}0)".prop_map(|s| (s.clone(), s)),
        any::<bool>().prop_map(|b| (b.to_string(), b.to_string())),
    ]
}

/// A byte size and one way to write it: `1048576`, `10MB`, `'512 kb'`, `"1  Gb"`.
pub(super) fn size() -> impl Strategy<Value = (u64, String)> {
    let suffixed = (
        0u64..=1024,
        0usize..3,
        any::<[bool; 2]>(),
        0usize..3,
        0u8..3,
    )
        .prop_map(|(n, unit, case, spaces, q)| {
            let (name, shift) = [("kb", 10), ("mb", 20), ("gb", 30)][unit];
            let suffix: String = name
                .chars()
                .zip(case)
                .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
                .collect();
            let text = format!("{n}{}{suffix}", " ".repeat(spaces));
            (n << shift, quote(&text, q))
        });
    let plain = (0u64..=1 << 40, 0u8..3).prop_map(|(n, q)| (n, quote(&n.to_string(), q)));
    prop_oneof![suffixed, plain]
}

/// The output keys of one program, each present or not.
#[derive(Clone, Debug)]
pub(super) struct Output {
    redirect_stderr: Option<bool>,
    attach: Option<bool>,
    /// stdout, stderr.
    maxbytes: [Option<(u64, String)>; 2],
    backups: [Option<u32>; 2],
    /// Only when stderr has a stream of its own (else it is an error).
    stderr: Option<String>,
}

pub(super) fn output() -> impl Strategy<Value = Output> {
    let flag = || prop::option::of(any::<bool>());
    let backups = || prop::option::of(0u32..=1000);
    (
        (flag(), flag()),
        [prop::option::of(size()), prop::option::of(size())],
        [backups(), backups()],
        prop::option::of("/?[a-z]{1,6}"),
    )
        .prop_map(|((redirect_stderr, attach), maxbytes, backups, stderr)| {
            let joined = redirect_stderr == Some(true) || attach == Some(true);
            Output {
                redirect_stderr,
                attach,
                maxbytes,
                backups,
                stderr: stderr.filter(|_| !joined),
            }
        })
}

impl Output {
    /// Adds the keys to `keys` and their values to `want`.
    pub(super) fn apply(self, want: &mut Program, keys: &mut Vec<Key>) {
        if let Some(b) = self.redirect_stderr {
            want.redirect_stderr = b;
            keys.push(key("redirect_stderr", b.to_string()));
        }
        if let Some(b) = self.attach {
            want.attach = b;
            keys.push(key("attach", b.to_string()));
        }
        let [out_max, err_max] = self.maxbytes;
        if let Some((n, text)) = out_max {
            want.rare.stdout_maxbytes = n;
            keys.push(key("stdout_maxbytes", text));
        }
        if let Some((n, text)) = err_max {
            want.rare.stderr_maxbytes = n;
            keys.push(key("stderr_maxbytes", text));
        }
        let [out_backups, err_backups] = self.backups;
        if let Some(n) = out_backups {
            want.rare.stdout_backups = n;
            keys.push(key("stdout_backups", n.to_string()));
        }
        if let Some(n) = err_backups {
            want.rare.stderr_backups = n;
            keys.push(key("stderr_backups", n.to_string()));
        }
        if let Some(path) = self.stderr {
            want.stderr = Some(Path::new("/etc/tm").join(&path));
            keys.push(key("stderr", path));
        }
    }
}

/// The top-level keys beside `programs:`, each present or not.
#[derive(Clone, Debug, Default)]
pub(super) struct TopKeys {
    logfile_maxbytes: Option<(u64, String)>,
    logfile_backups: Option<u32>,
    minfds: Option<u64>,
    /// A key written with this text instead (a bad value).
    raw: Option<(&'static str, &'static str)>,
}

pub(super) fn top_keys() -> impl Strategy<Value = TopKeys> {
    (
        prop::option::of(size()),
        prop::option::of(0u32..=1000),
        prop::option::of(0u64..=1 << 30),
    )
        .prop_map(|(logfile_maxbytes, logfile_backups, minfds)| TopKeys {
            logfile_maxbytes,
            logfile_backups,
            minfds,
            raw: None,
        })
}

impl TopKeys {
    /// `key: value` lines, in text order.
    pub(super) fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, text)) = &self.logfile_maxbytes {
            out.push(format!("logfile_maxbytes: {text}"));
        }
        if let Some(n) = self.logfile_backups {
            out.push(format!("logfile_backups: {n}"));
        }
        if let Some(n) = self.minfds {
            out.push(format!("minfds: {n}"));
        }
        if let Some((key, text)) = self.raw {
            out.push(format!("{key}: {text}"));
        }
        out
    }

    /// Writes `key` as `text` (once: the other keys keep their values).
    pub(super) fn set_raw(&mut self, key: &'static str, text: &'static str) {
        match key {
            "logfile_maxbytes" => self.logfile_maxbytes = None,
            "logfile_backups" => self.logfile_backups = None,
            _ => self.minfds = None,
        }
        self.raw = Some((key, text));
    }

    /// `config` has these values, or the defaults of the absent keys.
    pub(super) fn check(&self, config: &Config) -> Result<(), TestCaseError> {
        let maxbytes = self.logfile_maxbytes.as_ref().map_or(0, |(n, _)| *n);
        prop_assert_eq!(config.logfile_maxbytes, maxbytes);
        prop_assert_eq!(config.logfile_backups, self.logfile_backups.unwrap_or(5));
        prop_assert_eq!(config.minfds, self.minfds);
        let computed = config.process_count() * 5 + 256;
        prop_assert_eq!(config.minfds(), self.minfds.unwrap_or(computed));
        Ok(())
    }
}
