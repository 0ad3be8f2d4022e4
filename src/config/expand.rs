//! supervisord's `%(name)s` expansions in `cmd`, `env`, `workingdir`, `stdout`
//! and `stderr` (and the probe strings of `ready`/`healthcheck`).
//!
//! Expansion happens at load, in two steps, so that memory does not grow with
//! `numprocs`: everything that is the same for every process of a program
//! (`%(program_name)s`, `%(here)s`, `%(ENV_X)s`, `%%` …) is expanded once; a
//! string that uses `%(process_num)` stays a template in which only that and
//! `%%` are left, completed by `for_process` when a process is spawned. A
//! program none of whose strings use `%(process_num)` carries no template.
//!
//! The syntax is Python's `%` formatting as supervisord uses it: `%(NAME)` then
//! printf flags (`-+ 0#`), a width, a precision and a conversion (`s`, `d` or
//! `i`). A `%` followed by neither `(` nor `%` stays as it is, so `printf '%s'`
//! in a cmd keeps working.

use super::Program;
use std::borrow::Cow;
use std::path::PathBuf;

/// Widest field a format may ask for: `%(process_num)0999999999d` must not
/// allocate a gigabyte.
const MAX_WIDTH: usize = 64;

/// The names every expansion can use, for error messages.
const KNOWN: &str = "program_name, process_num, numprocs, here, group_name, host_node_name \
     or ENV_NAME (a variable of the daemon's environment)";

/// What the strings of one program may refer to.
pub struct Vars<'a> {
    pub program: &'a str,
    /// The folder of the file the program is defined in.
    pub here: &'a str,
    pub numprocs: u32,
}

/// A string after the load-time step.
#[derive(Clone, Debug, PartialEq)]
pub enum Expanded {
    /// The same for every process.
    Fixed(String),
    /// Uses `%(process_num)`: a template for `process_num`.
    PerProcess(String),
}

impl Expanded {
    /// The value of process `index`.
    pub fn for_index(&self, index: u32) -> String {
        match self {
            Expanded::Fixed(s) => s.clone(),
            Expanded::PerProcess(t) => process_num(t, index),
        }
    }
}

/// The templates of the strings of a program that differ between its
/// processes; `Program` holds process 0's values in its usual fields.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PerProcess {
    pub cmd: Option<String>,
    /// Only the variables whose value depends on the process.
    pub env: Vec<(String, String)>,
    /// Paths already joined to the config's folder.
    pub workingdir: Option<String>,
    pub stdout: Option<String>,
    pub stderr: Option<String>,
}

impl Program {
    /// This program's settings as process `index` sees them: borrowed when no
    /// string depends on the process (or for process 0), else a copy made for
    /// the spawn and dropped after it.
    pub fn for_process(&self, index: u32) -> Cow<'_, Program> {
        let Some(t) = self.rare.per_process.as_deref().filter(|_| index > 0) else {
            return Cow::Borrowed(self);
        };
        let mut p = self.clone();
        p.rare.per_process = None;
        if let Some(cmd) = &t.cmd {
            let text = process_num(cmd, index);
            // Digits and spaces cannot unbalance quotes: process 0's split
            // succeeded, so this one does too (else process 0's argv stays).
            if let Ok(argv) = shell_words::split(&text) {
                if !argv.is_empty() {
                    p.argv = argv;
                    p.cmd_text = text;
                }
            }
        }
        for (k, v) in &t.env {
            if let Some(slot) = p.env.iter_mut().find(|(n, _)| n == k) {
                slot.1 = process_num(v, index);
            }
        }
        let path = |t: &Option<String>| t.as_ref().map(|t| PathBuf::from(process_num(t, index)));
        if t.workingdir.is_some() {
            p.workingdir = path(&t.workingdir);
        }
        if t.stdout.is_some() {
            p.stdout = path(&t.stdout);
        }
        if t.stderr.is_some() {
            p.stderr = path(&t.stderr);
        }
        Cow::Owned(p)
    }
}

/// Which of `cmd`, `env`, `workingdir`, `stdout`, `stderr` differ between
/// two versions of a program for a process both have (index 1 up: process 0's
/// values are the fields themselves), compared after expansion: two
/// spellings of the same values are the same. Costs a walk over the
/// processes only when a template's text changed.
pub fn templates_differ(a: &Program, b: &Program) -> [bool; 5] {
    let none = PerProcess::default();
    let (ta, tb) = (
        a.rare.per_process.as_deref().unwrap_or(&none),
        b.rare.per_process.as_deref().unwrap_or(&none),
    );
    let n = a.numprocs.min(b.numprocs);
    // A string with no template has process 0's value for every process.
    let differ =
        |x: Option<&String>, fx: Option<String>, y: Option<&String>, fy: Option<String>| {
            let of = |t: Option<&String>, f: Option<String>| match t {
                Some(t) => Some(Expanded::PerProcess(t.clone())),
                None => f.map(Expanded::Fixed),
            };
            let (x, y) = (of(x, fx), of(y, fy));
            x != y
                && (1..n).any(|i| {
                    x.as_ref().map(|e| e.for_index(i)) != y.as_ref().map(|e| e.for_index(i))
                })
        };
    let path = |p: &Option<PathBuf>| p.as_ref().and_then(|p| p.to_str().map(String::from));
    let var = |p: &Program, k: &str| p.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let cmd = {
        let split = |t: Option<&String>, p: &Program, i: u32| match t {
            Some(t) => shell_words::split(&process_num(t, i)).ok(),
            None => Some(p.argv.clone()),
        };
        ta.cmd != tb.cmd
            && (1..n).any(|i| split(ta.cmd.as_ref(), a, i) != split(tb.cmd.as_ref(), b, i))
    };
    let env = ta
        .env
        .iter()
        .chain(&tb.env)
        .any(|(k, _)| differ(env_tpl(ta, k), var(a, k), env_tpl(tb, k), var(b, k)));
    [
        cmd,
        env,
        differ(
            ta.workingdir.as_ref(),
            path(&a.workingdir),
            tb.workingdir.as_ref(),
            path(&b.workingdir),
        ),
        differ(
            ta.stdout.as_ref(),
            path(&a.stdout),
            tb.stdout.as_ref(),
            path(&b.stdout),
        ),
        differ(
            ta.stderr.as_ref(),
            path(&a.stderr),
            tb.stderr.as_ref(),
            path(&b.stderr),
        ),
    ]
}

/// The template of variable `k`, if it has one.
fn env_tpl<'t>(t: &'t PerProcess, k: &str) -> Option<&'t String> {
    t.env.iter().find(|(n, _)| n == k).map(|(_, v)| v)
}

/// One string fully expanded for process `index`: the function to call on
/// any other per-process string (the probe strings of `ready`/`healthcheck`).
pub fn expand_for(text: &str, vars: &Vars, index: u32) -> Result<String, String> {
    expand(text, vars).map(|e| e.for_index(index))
}

/// The load-time step: every name but `process_num` expanded; an error names
/// the expansion at fault.
pub fn expand(text: &str, vars: &Vars) -> Result<Expanded, String> {
    if !text.contains('%') {
        return Ok(Expanded::Fixed(text.to_string()));
    }
    // Built twice at once: the final text, and the template (literal `%`
    // escaped) in case a `%(process_num)` turns up.
    let (mut fixed, mut template, mut per_process) = (String::new(), String::new(), false);
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        let lit = &rest[..at];
        fixed.push_str(lit);
        template.push_str(lit);
        let after = &rest[at + 1..];
        match after.as_bytes().first() {
            Some(b'%') => {
                fixed.push('%');
                template.push_str("%%");
                rest = &after[1..];
            }
            Some(b'(') => {
                let (name, spec, len) = parse_ref(after)?;
                rest = &after[len..];
                let value = match name {
                    "process_num" => {
                        per_process = true;
                        template.push('%');
                        template.push_str(&after[..len]);
                        continue;
                    }
                    "program_name" | "group_name" => Value::Text(vars.program.to_string()),
                    "here" => Value::Text(vars.here.to_string()),
                    "numprocs" => Value::Num(vars.numprocs),
                    "host_node_name" => Value::Text(host_name()),
                    _ => match name.strip_prefix("ENV_") {
                        Some(var) if !var.is_empty() => match std::env::var(var) {
                            Ok(v) => Value::Text(v),
                            Err(std::env::VarError::NotPresent) => {
                                return Err(format!(
                                    "%({name})s: {var} is not set in the daemon's environment"
                                ))
                            }
                            Err(_) => {
                                return Err(format!(
                                    "%({name})s: {var} in the daemon's environment is not UTF-8"
                                ))
                            }
                        },
                        _ => return Err(format!("unknown expansion %({name}), expected {KNOWN}")),
                    },
                };
                let s = spec.format(name, &value)?;
                fixed.push_str(&s);
                template.push_str(&s.replace('%', "%%"));
            }
            _ => {
                // A lone `%`: kept as written.
                fixed.push('%');
                template.push_str("%%");
                rest = after;
            }
        }
    }
    fixed.push_str(rest);
    template.push_str(rest);
    Ok(if per_process {
        Expanded::PerProcess(template)
    } else {
        Expanded::Fixed(fixed)
    })
}

/// Completes a template from `expand`: its `%(process_num)…` for `index`,
/// `%%` → `%`. A template comes from `expand`, so it is well formed.
pub fn process_num(template: &str, index: u32) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if after.starts_with('(') {
            if let Ok((_, spec, len)) = parse_ref(after) {
                let n = spec.format("process_num", &Value::Num(index));
                out.push_str(&n.unwrap_or_default());
                rest = &after[len..];
                continue;
            }
        }
        out.push('%');
        rest = after.strip_prefix('%').unwrap_or(after);
    }
    out.push_str(rest);
    out
}

enum Value {
    Text(String),
    Num(u32),
}

/// `-+ 0#` flags, width, precision and conversion of one reference.
#[derive(Default)]
struct Spec {
    left: bool,
    zero: bool,
    plus: bool,
    space: bool,
    width: usize,
    precision: Option<usize>,
    conv: u8,
}

/// `(NAME)FORMAT…` (after the `%`) → the name, the format, and the length read.
fn parse_ref(s: &str) -> Result<(&str, Spec, usize), String> {
    let Some(close) = s.find(')') else {
        return Err(format!(
            "unterminated `%(` in {:?}: expected %(NAME)s, or %% for a literal %",
            cut(s)
        ));
    };
    let name = &s[1..close];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "`%({})`: expected a name of letters, digits and `_` (%% for a literal %)",
            cut(name)
        ));
    }
    let b = s.as_bytes();
    let mut i = close + 1;
    let mut spec = Spec::default();
    while let Some(&c) = b.get(i) {
        match c {
            b'-' => spec.left = true,
            b'0' => spec.zero = true,
            b'+' => spec.plus = true,
            b' ' => spec.space = true,
            b'#' => {}
            _ => break,
        }
        i += 1;
    }
    let number = |i: &mut usize| -> Result<Option<usize>, String> {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        if start == *i {
            return Ok(None);
        }
        match s[start..*i].parse::<usize>() {
            Ok(n) if n <= MAX_WIDTH => Ok(Some(n)),
            _ => Err(format!("%({name}): a width over {MAX_WIDTH}")),
        }
    };
    spec.width = number(&mut i)?.unwrap_or(0);
    if b.get(i) == Some(&b'.') {
        i += 1;
        spec.precision = Some(number(&mut i)?.unwrap_or(0));
    }
    match b.get(i) {
        Some(&c @ (b's' | b'd' | b'i')) => spec.conv = c,
        _ => {
            return Err(format!(
                "%({name}) must be followed by a conversion: %({name})s, or %({name})d for a number"
            ))
        }
    }
    Ok((name, spec, i + 1))
}

impl Spec {
    fn format(&self, name: &str, value: &Value) -> Result<String, String> {
        let body = match (value, self.conv) {
            (Value::Text(_), b'd' | b'i') => {
                return Err(format!("%({name})d: {name} is text, write %({name})s"))
            }
            (Value::Text(t), _) => match self.precision {
                Some(p) => t.chars().take(p).collect(),
                None => t.clone(),
            },
            (Value::Num(n), b's') => n.to_string(),
            (Value::Num(n), _) => {
                let digits = n.to_string();
                let digits = match self.precision {
                    Some(p) if p > digits.len() => "0".repeat(p - digits.len()) + &digits,
                    _ => digits,
                };
                let sign = if self.plus {
                    "+"
                } else if self.space {
                    " "
                } else {
                    ""
                };
                let len = sign.len() + digits.len();
                if self.zero && !self.left && self.precision.is_none() && self.width > len {
                    return Ok(format!("{sign}{}{digits}", "0".repeat(self.width - len)));
                }
                format!("{sign}{digits}")
            }
        };
        let pad = self.width.saturating_sub(body.chars().count());
        Ok(if self.left {
            body + &" ".repeat(pad)
        } else {
            " ".repeat(pad) + &body
        })
    }
}

/// This machine's name, as `uname -n`.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it when the name fits, and we stop at the first NUL anyway.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The start of a long string, for an error message.
fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
#[path = "expand_tests.rs"]
mod tests;
