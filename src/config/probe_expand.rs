//! The `%(…)` expansions in the check strings of `ready:` and `healthcheck:`
//! (tcp address, http URL, command line, file path), so that each process of
//! a program can probe its own port: `tcp: "127.0.0.1:80%(process_num)02d"`.
//! (A child module of `fields`, so it shares its error collector.)
//!
//! As for `cmd` (templates.rs), memory does not grow with `numprocs`: a
//! string that does not use `%(process_num)` is expanded and parsed once; one
//! that does keeps process 0's check plus its template, and `for_index`
//! builds another process's check when its probe is set up. Every process's
//! value is parsed at load, so a bad one is a config error, never a surprise
//! at run time.

use super::probes::RawProbe;
use super::{parse_address, parse_http, Check, Ctx, Probe};
use crate::config::expand::{process_num, Expanded};
use crate::config::Program;
use std::borrow::Cow;
use std::path::Path;

impl Ctx<'_> {
    /// `raw`'s check expanded for program `p` (whose keys are all read) and
    /// parsed for every process; `key` is `ready` or `healthcheck`.
    pub(super) fn finish_probe(&mut self, p: &Program, key: &str, raw: RawProbe) -> Option<Probe> {
        let RawProbe { mut probe, text } = raw;
        let Some((kind, text)) = text else {
            return Some(probe);
        };
        let path = ["programs", p.name.as_str(), key, kind];
        let result = match self.expand_str(&path, p, &text)? {
            Expanded::Fixed(s) => build(kind, s, &self.dir).map(|c| probe.check = c),
            Expanded::PerProcess(tpl) => self.per_process(kind, tpl, &mut probe, p.numprocs),
        };
        match result {
            Ok(()) => Some(probe),
            Err(e) => {
                self.err(&path, e);
                None
            }
        }
    }

    /// Parses the check of every process from template `tpl`; keeps process
    /// 0's as `probe.check` and the template for the others.
    fn per_process(
        &self,
        kind: &str,
        tpl: String,
        probe: &mut Probe,
        numprocs: u32,
    ) -> Result<(), String> {
        let tpl = if kind == "file" {
            // The folder joins the template as literal text.
            let dir = self.dir.to_str().map(|d| d.replace('%', "%%"));
            let joined = dir.and_then(|d| Path::new(&d).join(&tpl).to_str().map(String::from));
            joined.ok_or("expected %(process_num) only under a UTF-8 folder")?
        } else {
            tpl
        };
        // Only the first bad process is reported: numprocs may be large and
        // the others are most likely wrong the same way.
        for i in 0..numprocs {
            let value = process_num(&tpl, i);
            match build(kind, value.clone(), Path::new("/")) {
                Ok(c) if i == 0 => probe.check = c,
                Ok(_) => {}
                Err(e) => return Err(format!("for process {i} ({value:?}): {e}")),
            }
        }
        probe.per_process = Some(tpl);
        Ok(())
    }
}

/// The check of kind `kind` for one expanded string; a relative file path is
/// under `dir` (the config's folder), as any path.
fn build(kind: &str, text: String, dir: &Path) -> Result<Check, String> {
    match kind {
        "tcp" => parse_address(&text).map(Check::Tcp),
        "http" => parse_http(&text).map(Check::Http),
        "command" => match shell_words::split(&text) {
            Ok(argv) if argv.is_empty() => Err("expected a command, got an empty one".into()),
            Ok(argv) => Ok(Check::Command { text, argv }),
            Err(_) => Err("unterminated quote in the command line".into()),
        },
        _ if text.is_empty() || text.contains('\0') => Err("expected a non-empty path".into()),
        _ => Ok(Check::File(dir.join(text))),
    }
}

impl Probe {
    /// This probe as process `index` runs it: borrowed when its check is the
    /// same for every process, else a copy with that process's check (and no
    /// template), made when the probe is set up.
    pub fn for_index(&self, index: u32) -> Cow<'_, Probe> {
        let Some(tpl) = &self.per_process else {
            return Cow::Borrowed(self);
        };
        let kind = self.check.kind();
        // Every index below numprocs was parsed at load; should a later one
        // not parse, process 0's check is better than none.
        let check = build(kind, process_num(tpl, index), Path::new("/"))
            .unwrap_or_else(|_| self.check.clone());
        Cow::Owned(Probe {
            check,
            per_process: None,
            ..self.clone()
        })
    }
}

/// Whether a reload changes the probe of any of the first `numprocs`
/// processes, compared after expansion: two spellings of the same values are
/// the same. Walks the processes only when a template's text changed.
pub fn probes_differ(a: Option<&Probe>, b: Option<&Probe>, numprocs: u32) -> bool {
    match (a, b) {
        (Some(a), Some(b)) if a.per_process != b.per_process => {
            (0..numprocs).any(|i| a.for_index(i) != b.for_index(i))
        }
        (a, b) => a != b,
    }
}

#[cfg(test)]
#[path = "probe_expand_tests.rs"]
mod tests;
