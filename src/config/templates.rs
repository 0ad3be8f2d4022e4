//! Applies the `%(…)` expansions (expand.rs) to a program's `cmd`, `env`,
//! `workingdir`, `stdout` and `stderr` (and the probe strings, probe_expand.rs)
//! once all its keys are read.
//! (A child module of `fields`, so it shares its error collector.)

use super::Ctx;
use crate::config::expand::{expand, Expanded, PerProcess, Vars};
use crate::config::Program;
use std::path::PathBuf;

/// The expanded keys as written.
#[derive(Default)]
pub(super) struct Raw {
    pub cmd: Option<String>,
    pub workingdir: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
    pub ready: Option<super::probes::RawProbe>,
    pub healthcheck: Option<super::probes::RawProbe>,
}

impl Ctx<'_> {
    /// Fills `p`'s expanded fields with process 0's values, and its template
    /// for the others when some string uses `%(process_num)`.
    pub(super) fn expand_program(&mut self, p: &mut Program, raw: Raw) {
        let here = self.dir.display().to_string();
        let name = p.name.clone();
        let vars = Vars {
            program: &name,
            here: &here,
            numprocs: p.numprocs,
        };
        let mut t = PerProcess::default();
        let key = |k: &'static str| ["programs", name.as_str(), k];
        if let Some(text) = raw.cmd {
            match expand(&text, &vars) {
                Err(e) => self.err(&key("cmd"), e),
                Ok(e) => {
                    if let Some((text, argv)) = self.cmd(&key("cmd"), e.for_index(0)) {
                        (p.cmd_text, p.argv) = (text, argv);
                    }
                    if let Expanded::PerProcess(tpl) = e {
                        t.cmd = Some(tpl);
                    }
                }
            }
        }
        for i in 0..p.env.len() {
            let (var, value) = p.env[i].clone();
            let path = ["programs", name.as_str(), "env", var.as_str()];
            if let Some(e) = self.expand_str(&path, p, &value) {
                p.env[i].1 = e.for_index(0);
                if let Expanded::PerProcess(tpl) = e {
                    t.env.push((var, tpl));
                }
            }
        }
        for (k, text, field, tpl) in [
            (
                "workingdir",
                raw.workingdir,
                &mut p.workingdir,
                &mut t.workingdir,
            ),
            ("stdout", raw.stdout, &mut p.stdout, &mut t.stdout),
            ("stderr", raw.stderr, &mut p.stderr, &mut t.stderr),
        ] {
            let Some(text) = text else { continue };
            match expand(&text, &vars) {
                Err(e) => self.err(&key(k), e),
                Ok(e) => {
                    *field = Some(self.dir.join(e.for_index(0)));
                    if let Expanded::PerProcess(rel) = e {
                        // The folder joins the template as literal text.
                        let dir = self.dir.to_str().map(|d| d.replace('%', "%%"));
                        match dir {
                            Some(d) => *tpl = PathBuf::from(d).join(rel).to_str().map(String::from),
                            None => self
                                .err(&key(k), "expected %(process_num) only under a UTF-8 folder"),
                        }
                    }
                }
            }
        }
        if t != PerProcess::default() {
            p.rare.per_process = Some(Box::new(t));
        }
        if let Some(r) = raw.ready {
            p.rare.ready = self.finish_probe(p, "ready", r).map(Box::new);
        }
        if let Some(r) = raw.healthcheck {
            p.rare.healthcheck = self.finish_probe(p, "healthcheck", r).map(Box::new);
        }
    }

    /// `text`, a string of program `p` at `path`, after the load-time step
    /// (`for_index` completes it per process); an error is reported with the
    /// file, line and key. For any other expanded string of a program (the
    /// probe strings of `ready`/`healthcheck`), once `p.numprocs` is known.
    pub(super) fn expand_str(
        &mut self,
        path: &[&str],
        p: &Program,
        text: &str,
    ) -> Option<Expanded> {
        let here = self.dir.display().to_string();
        let vars = Vars {
            program: &p.name,
            here: &here,
            numprocs: p.numprocs,
        };
        expand(text, &vars).map_err(|e| self.err(path, e)).ok()
    }

    /// A command line split like a shell.
    pub(super) fn cmd(&mut self, path: &[&str], text: String) -> Option<(String, Vec<String>)> {
        match shell_words::split(&text) {
            Ok(argv) if argv.is_empty() => self.err(path, "expected a command, got an empty one"),
            Ok(mut argv) => {
                // Kept for the daemon's life: no spare capacity per program.
                argv.shrink_to_fit();
                return Some((text, argv));
            }
            Err(_) => self.err(path, "unterminated quote in the command line"),
        }
        None
    }
}
