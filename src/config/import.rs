//! `taskmasterd --import FILE.conf`: a supervisord INI config turned into our
//! YAML, and one warning for every setting that has no equivalent, saying
//! what to do instead. `%(…)s` expansions are kept (ours are supervisord's),
//! except `%(here)s`, which is written out: the YAML may be saved elsewhere.
//! Relative paths become absolute for the same reason.

use super::glob::glob;
use super::ini::{self, Section};
use super::{parse_size, read};
use std::collections::HashSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Most files `[include]` may bring in, and most bytes in all of them.
const MAX_FILES: usize = 1000;
const MAX_TOTAL: usize = read::MAX_BYTES as usize;

/// The YAML, and the warnings (each names its file, line and setting).
#[derive(Debug)]
pub struct Import {
    pub yaml: String,
    pub warnings: Vec<String>,
}

/// A section and the file it came from.
struct Source<'a> {
    file: &'a Path,
    section: &'a Section,
}

#[derive(Default)]
struct Out {
    top: Vec<(&'static str, String)>,
    /// Lines written as comments: settings the user must decide on.
    commented: Vec<String>,
    programs: Vec<Program>,
    /// Their names, for the check of a second definition (a scan of
    /// `programs` per section made 100 000 sections take minutes).
    names: HashSet<String>,
    /// `[supervisord] environment`, given to every program.
    env: Vec<(String, String)>,
    warnings: Vec<String>,
}

struct Program {
    name: String,
    keys: Vec<(&'static str, String)>,
    env: Vec<(String, String)>,
}

/// Reads `path` (and the files of its `[include]`): `Err` when the main file
/// cannot be read, or when the YAML would be larger than taskmasterd reads.
pub fn import(path: &Path) -> Result<Import, String> {
    let text = read::read(path).map_err(|e| e.to_string())?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = Out::default();
    let mut files: Vec<(PathBuf, Vec<Section>)> = Vec::new();
    let (sections, problems) = ini::parse(&text);
    for (line, p) in problems {
        out.warn(&abs, line, "", p);
    }
    let included = include(&abs, &sections, &mut out);
    files.push((abs.clone(), sections));
    for (file, text) in included {
        let (sections, problems) = ini::parse(&text);
        for (line, p) in problems {
            out.warn(&file, line, "", p);
        }
        files.push((file, sections));
    }
    for (file, sections) in &files {
        for section in sections {
            out.section(&Source { file, section }, file == &abs);
        }
    }
    Ok(Import {
        yaml: out.yaml(&abs)?,
        warnings: out.warnings,
    })
}

/// The texts of the files `[include] files=` names (space-separated globs
/// relative to the main file's folder), in order, each once.
fn include(main: &Path, sections: &[Section], out: &mut Out) -> Vec<(PathBuf, String)> {
    let dir = main.parent().unwrap_or(Path::new("/"));
    let mut found: Vec<PathBuf> = Vec::new();
    for s in sections.iter().filter(|s| s.name == "include") {
        let Some(files) = s.get("files") else {
            out.warn(
                main,
                s.line,
                "[include]",
                "no `files =`: nothing included".into(),
            );
            continue;
        };
        for pattern in files.value.split_whitespace() {
            match glob(dir, pattern, MAX_FILES) {
                Ok(list) => found.extend(list.into_iter().filter(|f| f != main)),
                Err(e) => out.warn(main, files.line, "[include] files", e),
            }
        }
    }
    let mut texts: Vec<(PathBuf, String)> = Vec::new();
    let mut total = 0;
    for f in found {
        if texts.iter().any(|(g, _)| *g == f) {
            continue;
        }
        if texts.len() == MAX_FILES || total > MAX_TOTAL {
            let why = format!(
                "more than {MAX_FILES} files or {} MiB: the rest skipped",
                MAX_TOTAL >> 20
            );
            out.warn(main, 0, "[include]", why);
            break;
        }
        match read::read(&f) {
            Ok(t) => {
                total += t.len();
                texts.push((f, t));
            }
            Err(e) => out.warnings.push(format!("{e}: skipped")),
        }
    }
    texts
}

impl Out {
    fn warn(&mut self, file: &Path, line: usize, what: &str, message: String) {
        let at = if line > 0 {
            format!(":{line}")
        } else {
            String::new()
        };
        let sep = if what.is_empty() { "" } else { ": " };
        self.warnings
            .push(format!("{}{at}: {what}{sep}{message}", file.display()));
    }

    fn section(&mut self, src: &Source, main: bool) {
        let s = src.section;
        let (kind, name) = s.name.split_once(':').unwrap_or((s.name.as_str(), ""));
        let what = format!("[{}]", s.name);
        match kind {
            "program" => self.program(src, name),
            "include" if main => {}
            "include" => self.warn(src.file, s.line, &what, "an included file's [include] is not read (as supervisord)".into()),
            "supervisord" => self.supervisord(src),
            "unix_http_server" => self.unix_http_server(src),
            "inet_http_server" => self.inet_http_server(src),
            "supervisorctl" => {
                for e in s.entries.iter().filter(|e| e.key != "serverurl") {
                    let msg = "taskmasterctl has no such setting: `taskmasterctl -c FILE` finds the socket in the config";
                    self.warn(src.file, e.line, &format!("{what} {}", e.key), msg.into());
                }
            }
            // The standard XML-RPC interface: what our protocol is instead.
            "rpcinterface" if name == "supervisor" => {}
            "group" => self.warn(src.file, s.line, &what, "no groups: name programs together instead (`start a b`); `all` names every process".into()),
            "eventlistener" => self.warn(src.file, s.line, &what, "no event listeners: report_events with report_command runs a command of yours per event (a mail script: docs/monitoring.md), fatal_state_report_address POSTs them as JSON".into()),
            "fcgi-program" => self.warn(src.file, s.line, &what, "no FastCGI socket sharing: run it as a [program] that opens its own socket".into()),
            _ => self.warn(src.file, s.line, &what, "unknown section: skipped".into()),
        }
    }

    fn supervisord(&mut self, src: &Source) {
        let dir = folder(src.file);
        for e in &src.section.entries {
            let what = format!("[supervisord] {}", e.key);
            let v = e.value.as_str();
            let instead = match e.key.as_str() {
                "logfile" | "pidfile" => {
                    let key = if e.key == "logfile" {
                        "logfile"
                    } else {
                        "pidfile"
                    };
                    self.top.push((key, quote(&path(v, &dir))));
                    continue;
                }
                "logfile_maxbytes" => match size(v) {
                    Some(s) => {
                        self.top.push(("logfile_maxbytes", s));
                        continue;
                    }
                    None => "not a size: keep the default or set logfile_maxbytes",
                },
                "logfile_backups" | "minfds" => match v.parse::<u64>() {
                    Ok(n) => {
                        let key = if e.key == "minfds" {
                            "minfds"
                        } else {
                            "logfile_backups"
                        };
                        self.top.push((key, n.to_string()));
                        continue;
                    }
                    Err(_) => "not a number: skipped",
                },
                "nodaemon" => match ini::boolean(v) {
                    Some(true) => continue,
                    Some(false) => {
                        self.top.push(("daemonize", "true".into()));
                        continue;
                    }
                    None => "not a boolean: skipped (the daemon stays in the foreground)",
                },
                "environment" => match ini::environment(v) {
                    Ok(env) => {
                        self.env = env;
                        continue;
                    }
                    Err(err) => {
                        self.warn(src.file, e.line, &what, format!("{err}: skipped"));
                        continue;
                    }
                },
                "loglevel" => "set RUST_LOG (error, warn, info, debug) in the daemon's environment",
                "user" => "start the daemon as that user, or give each program its `user`",
                "umask" => "set `umask` on each program",
                "directory" => "set `workingdir` on each program",
                "childlogdir" => {
                    "no automatic log files: give each program its `stdout`/`stderr` file"
                }
                "minprocs" => "set `rlimits: {nproc: N}` on the programs that need it",
                "identifier" => "not needed: `version` names the daemon",
                "nocleanup" => "no automatic log files to clean up",
                "strip_ansi" => "output is kept as written",
                "silent" => "the daemon logs to its logfile; run it in the foreground to see it",
                _ => "unknown setting: skipped",
            };
            self.warn(src.file, e.line, &what, instead.into());
        }
    }

    fn unix_http_server(&mut self, src: &Source) {
        let dir = folder(src.file);
        for e in &src.section.entries {
            let what = format!("[unix_http_server] {}", e.key);
            match e.key.as_str() {
                "file" => self.top.push(("socket", quote(&path(&e.value, &dir)))),
                "chmod" if octal(&e.value).is_some_and(|m| m & 0o600 == 0o600) => {
                    self.top.push(("socket_mode", quote(&e.value)));
                }
                "chmod" => self.warn(src.file, e.line, &what, "expected an octal mode that keeps the owner's rw: skipped (the socket is 0700)".into()),
                "chown" => {
                    let (user, group) = e.value.split_once(':').unwrap_or((&e.value, ""));
                    if !group.is_empty() {
                        self.top.push(("socket_group", quote(group)));
                    }
                    let msg = format!("the socket stays owned by the daemon's user, not {user:?}: socket_group and socket_mode decide who connects");
                    self.warn(src.file, e.line, &what, msg);
                }
                "username" | "password" => self.warn(src.file, e.line, &what, "the unix socket has no password: socket_mode and socket_group decide who connects".into()),
                _ => self.warn(src.file, e.line, &what, "unknown setting: skipped".into()),
            }
        }
    }

    fn inet_http_server(&mut self, src: &Source) {
        for e in &src.section.entries {
            let what = format!("[inet_http_server] {}", e.key);
            match e.key.as_str() {
                "port" => {
                    // `*:9001` and `:9001` mean every interface: a TCP control
                    // port open to the network needs a secret file, so the
                    // listener is written out commented, for the user to decide.
                    let port = e.value.rsplit(':').next().unwrap_or("");
                    let host = e.value.strip_suffix(port).and_then(|h| h.strip_suffix(':'));
                    let host = match host {
                        Some("" | "*") | None => "127.0.0.1",
                        Some(h) => h,
                    };
                    self.commented.push(format!("listen: \"{host}:{port}\""));
                    self.commented.push("listen_secret_file: /etc/taskmaster/secret   # or listen_open: true (every local user)".into());
                    self.warn(src.file, e.line, &what, "written commented out: a TCP listener needs listen_secret_file (clients send `auth SECRET`) or listen_open: true; choose and uncomment".into());
                }
                "username" | "password" => self.warn(src.file, e.line, &what, "no HTTP basic auth: put a secret in a file only the daemon's user reads and set listen_secret_file".into()),
                _ => self.warn(src.file, e.line, &what, "unknown setting: skipped".into()),
            }
        }
    }

    /// The YAML; `Err` past `read::MAX_BYTES`: the daemon-wide environment
    /// is written into every program, so a small INI file (many variables,
    /// many programs) could make gigabytes that no daemon would read.
    fn yaml(&self, main: &Path) -> Result<String, String> {
        let mut y = format!(
            "# Converted by `taskmasterd --import` from {}\n",
            main.display()
        );
        for (k, v) in &self.top {
            let _ = writeln!(y, "{k}: {v}");
        }
        for c in &self.commented {
            let _ = writeln!(y, "# {c}");
        }
        if self.programs.is_empty() {
            y.push_str("programs: {}\n");
            return Ok(y);
        }
        y.push_str("programs:\n");
        for p in &self.programs {
            let _ = writeln!(y, "  {}:", p.name);
            for (k, v) in &p.keys {
                let _ = writeln!(y, "    {k}: {v}");
            }
            // The daemon-wide environment first; the program's own wins.
            let own: HashSet<&str> = p.env.iter().map(|(k, _)| k.as_str()).collect();
            let mut env: Vec<&(String, String)> = self
                .env
                .iter()
                .filter(|(k, _)| !own.contains(k.as_str()))
                .collect();
            env.extend(&p.env);
            if !env.is_empty() {
                y.push_str("    env:\n");
                for (k, v) in env {
                    let _ = writeln!(y, "      {}: {}", quote(k), quote(v));
                    if y.len() as u64 > read::MAX_BYTES {
                        return Err(format!(
                            "the converted config would be larger than {} MiB, the most \
                             taskmasterd reads ([supervisord] environment is copied into each \
                             of the {} programs): split it",
                            read::MAX_BYTES >> 20,
                            self.programs.len()
                        ));
                    }
                }
            }
        }
        Ok(y)
    }
}

#[path = "import_program.rs"]
mod program;

/// `%(here)s` written out, and a relative path made absolute, against `dir`.
fn path(v: &str, dir: &str) -> String {
    let v = v.replace("%(here)s", &dir.replace('%', "%%"));
    if v.starts_with('/') || v.starts_with("%(") {
        v
    } else {
        format!("{}/{v}", dir.replace('%', "%%"))
    }
}

/// The folder of `file`, as text.
fn folder(file: &Path) -> String {
    file.parent()
        .unwrap_or(Path::new("/"))
        .display()
        .to_string()
}

/// A size our parser takes, quoted.
fn size(v: &str) -> Option<String> {
    parse_size(v).ok().map(|_| quote(v))
}

fn octal(v: &str) -> Option<u32> {
    let ok = (1..=4).contains(&v.len()) && v.bytes().all(|b| (b'0'..=b'7').contains(&b));
    u32::from_str_radix(v, 8).ok().filter(|m| ok && *m <= 0o777)
}

/// A YAML double-quoted scalar.
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
