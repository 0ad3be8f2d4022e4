//! `include:` — more programs from other files (`conf.d/*.yaml`), globbed
//! relative to the config's folder, merged in sorted order. Each included file
//! holds `programs:` only; its relative paths and `%(here)s` mean its own
//! folder, and its errors name it. A program defined twice is an error naming
//! both places. A reload loads the whole config again, so it re-globs.
//! (A child module of `fields`, so it shares its error collector.)

use super::alerts::Inherited;
use super::Ctx;
use crate::config::glob::glob;
use crate::config::locate::Locator;
use crate::config::{nesting, read, ConfigError, Program};
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Most files included: far above any real `conf.d/`, low enough that a
/// pattern matching a huge folder is an error, not a long stall.
pub const MAX_FILES: usize = 1000;
/// Most bytes read from all included files together (the main file has its own limit).
pub const MAX_TOTAL: usize = read::MAX_BYTES as usize;

impl Ctx<'_> {
    /// Adds the programs of the files `v` names to `programs`.
    pub(super) fn include(
        &mut self,
        v: &Value,
        programs: &mut Vec<Rc<Program>>,
        report: &Inherited,
        main: &Path,
    ) {
        let patterns: Vec<&str> = match v {
            Value::String(s) => vec![s.as_str()],
            Value::Sequence(items) if items.iter().all(Value::is_string) => {
                items.iter().filter_map(Value::as_str).collect()
            }
            Value::Null => Vec::new(),
            _ => {
                self.err(
                    &["include"],
                    "expected a list of file patterns such as [\"conf.d/*.yaml\"]",
                );
                return;
            }
        };
        let mut files: Vec<PathBuf> = Vec::new();
        for pattern in patterns {
            if pattern.is_empty() || pattern.contains('\0') {
                self.err(&["include"], "expected a non-empty file pattern");
                continue;
            }
            match glob(&self.dir, pattern, MAX_FILES) {
                Ok(found) => {
                    // The main file itself, when a pattern catches it, is no include.
                    let main = main.canonicalize().ok();
                    for f in found {
                        if !files.contains(&f) && f.canonicalize().ok() != main {
                            files.push(f);
                        }
                    }
                }
                Err(e) => self.err(&["include"], e),
            }
            if files.len() > MAX_FILES {
                self.err(
                    &["include"],
                    format!("more than {MAX_FILES} files to include"),
                );
                return;
            }
        }
        // Where each program was defined, for the error about a second definition.
        let mut origin: HashMap<String, (String, Option<usize>)> = programs
            .iter()
            .map(|p| {
                let line = self.loc.line(&["programs", &p.name]);
                (p.name.clone(), (self.file.clone(), line))
            })
            .collect();
        let mut total = 0;
        for f in files {
            let text = match read::read(&f) {
                Ok(t) => t,
                Err(e) => {
                    self.push(e);
                    continue;
                }
            };
            total += text.len();
            if total > MAX_TOTAL {
                self.err(
                    &["include"],
                    format!(
                        "the included files together are larger than {} MiB",
                        MAX_TOTAL >> 20
                    ),
                );
                return;
            }
            self.include_file(&f, &text, report, programs, &mut origin);
        }
    }

    fn include_file(
        &mut self,
        file: &Path,
        text: &str,
        report: &Inherited,
        programs: &mut Vec<Rc<Program>>,
        origin: &mut HashMap<String, (String, Option<usize>)>,
    ) {
        let shown = file.display().to_string();
        let fail = |line, message: String| ConfigError {
            file: shown.clone(),
            line,
            key: String::new(),
            message,
        };
        if let Err(line) = nesting::check(text) {
            let max = nesting::MAX_DEPTH;
            let e = fail(
                Some(line),
                format!("invalid YAML: nested more than {max} levels deep"),
            );
            return self.push(e);
        }
        let doc: Value = match serde_yaml::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| l.line());
                return self.push(fail(line, format!("invalid YAML: {e}")));
            }
        };
        let mut sub = Ctx {
            file: shown.clone(),
            dir: file.parent().map(Path::to_path_buf).unwrap_or_default(),
            loc: Locator::new(text),
            errors: Vec::new(),
            unshown: 0,
            room: self.room.saturating_sub(self.errors.len()),
        };
        let mut found = Vec::new();
        match &doc {
            Value::Null => {}
            Value::Mapping(m) => {
                for (k, v) in m {
                    match sub.key(&[], k) {
                        Some("programs") => sub.programs_of(v, report, &mut found),
                        Some(key) => sub.err(
                            &[key],
                            "an included file holds `programs:` only (other keys belong \
                             in the main config file)",
                        ),
                        None => {}
                    }
                }
            }
            _ => sub.err(&[], "expected a mapping with a `programs:` key"),
        }
        for p in found {
            if let Some((first, line)) = origin.get(&p.name) {
                let at = line.map_or(first.clone(), |l| format!("{first}:{l}"));
                let key = ["programs", p.name.as_str()];
                sub.err(
                    &key,
                    format!("program `{}` is defined twice: also at {at}", p.name),
                );
                continue;
            }
            let line = sub.loc.line(&["programs", &p.name]);
            origin.insert(p.name.clone(), (shown.clone(), line));
            programs.push(p.into());
        }
        // The count of what was not listed goes into the main file's last line.
        self.unshown += sub.unshown;
        self.errors.append(&mut sub.errors);
    }

    /// The programs of a `programs:` mapping.
    fn programs_of(&mut self, v: &Value, report: &Inherited, out: &mut Vec<Program>) {
        match v {
            Value::Mapping(m) => {
                for (k, v) in m {
                    let Some(name) = self.key(&["programs"], k) else {
                        continue;
                    };
                    if let Some(p) = self.program(name, v, report) {
                        out.push(p);
                    }
                }
            }
            Value::Null => {}
            _ => self.err(&["programs"], "expected a mapping of program names"),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::load;
    use std::fs;

    #[test]
    fn included_files_add_programs_with_their_own_folder() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir(d.join("conf.d")).unwrap();
        fs::write(
            d.join("main.yaml"),
            "include: [\"conf.d/*.yaml\"]\nprograms:\n  a:\n    cmd: x\n",
        )
        .unwrap();
        fs::write(
            d.join("conf.d/b.yaml"),
            "programs:\n  b:\n    cmd: \"%(here)s/run\"\n    stdout: b.log\n",
        )
        .unwrap();
        fs::write(d.join("conf.d/c.yaml"), "programs: {c: {cmd: y}}\n").unwrap();
        let c = load(&d.join("main.yaml")).unwrap();
        let names: Vec<&str> = c.programs.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let b = &c.programs[1];
        let cd = d.join("conf.d");
        assert_eq!(b.argv, [format!("{}/run", cd.display())]);
        assert_eq!(b.stdout, Some(cd.join("b.log")));
    }

    #[test]
    fn errors_name_the_included_file_and_both_places_of_a_duplicate() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        fs::create_dir(d.join("conf.d")).unwrap();
        fs::write(
            d.join("main.yaml"),
            "include: conf.d/*.yaml\nprograms:\n  a:\n    cmd: x\n",
        )
        .unwrap();
        fs::write(d.join("conf.d/1.yaml"), "programs:\n  b:\n    cmd: y\n").unwrap();
        fs::write(
            d.join("conf.d/2.yaml"),
            "socket: /tmp/x\nprograms:\n  zz:\n    cmd: z\n    numprocs: 0\n  a:\n    cmd: y\n  b:\n    cmd: y\n",
        )
        .unwrap();
        let e: Vec<String> = load(&d.join("main.yaml"))
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        let two = d.join("conf.d/2.yaml").display().to_string();
        let want = [
            format!("{two}:1: socket: an included file holds `programs:` only"),
            format!("{two}:5: programs.zz.numprocs: expected an integer"),
            format!(
                "{two}:6: programs.a: program `a` is defined twice: also at {}:3",
                d.join("main.yaml").display()
            ),
            format!(
                "{two}:8: programs.b: program `b` is defined twice: also at {}:2",
                d.join("conf.d/1.yaml").display()
            ),
        ];
        assert_eq!(e.len(), want.len(), "{e:#?}");
        for (got, want) in e.iter().zip(&want) {
            assert!(got.starts_with(want.as_str()), "{got} !~ {want}");
        }
        fs::write(d.join("main.yaml"), "include: [nope.yaml]\nprograms: {}\n").unwrap();
        let e = load(&d.join("main.yaml")).unwrap_err();
        assert!(e[0].to_string().contains("nope.yaml: cannot read"), "{e:?}");
        fs::write(d.join("main.yaml"), "include: {a: 1}\nprograms: {}\n").unwrap();
        let e = load(&d.join("main.yaml")).unwrap_err();
        assert_eq!((e[0].key.as_str(), e[0].line), ("include", Some(1)));
    }
}
