//! Tab completion and inline hints for the shell, as pure functions over the
//! line and the names last fetched from the daemon; `Helper` plugs them into
//! rustyline.

use crate::protocol::{self, COMMANDS};
use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::Context;
use std::borrow::Cow;

/// Words the shell understands besides the protocol's commands.
const SHELL_ONLY: &[&str] = &["exit"];

/// The live names a command line can refer to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Names {
    /// Program names, sorted, no duplicates.
    pub programs: Vec<String>,
    /// Process names (`PROGRAM:N`), in status order.
    pub processes: Vec<String>,
}

impl Names {
    /// From the body of a human `status` reply: the first column of each line.
    pub fn from_status(body: &[String]) -> Names {
        let processes: Vec<String> = body
            .iter()
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        let mut programs: Vec<String> = processes
            .iter()
            .map(|p| p.rsplit_once(':').map_or(p.as_str(), |(prog, _)| prog))
            .map(str::to_string)
            .collect();
        programs.sort();
        programs.dedup();
        Names {
            programs,
            processes,
        }
    }
}

/// Where the word under the cursor starts and what it can become (each
/// candidate followed by a space, so a unique match moves on).
pub fn complete(line: &str, pos: usize, names: &Names) -> (usize, Vec<String>) {
    let before = line.get(..pos).unwrap_or(line);
    let start = before.rfind(' ').map_or(0, |i| i + 1);
    let word = &before[start..];
    let mut earlier = before[..start].split_whitespace();
    let pool: Vec<Cow<str>> = match earlier.next() {
        None => COMMANDS
            .iter()
            .map(|c| c.name)
            .chain(SHELL_ONLY.iter().copied())
            .map(Cow::Borrowed)
            .collect(),
        Some(cmd) => {
            let typed: Vec<&str> = earlier.collect();
            arguments(cmd, &typed, word, names)
        }
    };
    let mut out: Vec<String> = pool
        .into_iter()
        .filter(|c| c.starts_with(word))
        .map(|c| format!("{c} "))
        .collect();
    out.dedup();
    (start, out)
}

/// Signals offered after `signal`, by their short names (`SIG…` once typed).
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "STOP", "CONT", "WINCH",
];

/// What the word after `cmd typed…` can be.
fn arguments<'a>(cmd: &str, typed: &[&str], word: &str, names: &'a Names) -> Vec<Cow<'a, str>> {
    let stars = stars(word, names);
    let live = || {
        names
            .programs
            .iter()
            .chain(&names.processes)
            .map(|n| Cow::Borrowed(n.as_str()))
            .chain(stars.iter().cloned())
    };
    let with_all = || std::iter::once(Cow::Borrowed("all")).chain(live());
    let fixed = |words: &[&'static str]| words.iter().map(|w| Cow::Borrowed(*w)).collect();
    let pool: Vec<Cow<str>> = match (cmd, typed) {
        // One process only: `PROGRAM:*` names them all, so is not offered.
        ("tail", _) => return tail_arguments(typed, names),
        ("attach", []) => single_process_programs(names)
            .chain(&names.processes)
            .map(|n| Cow::Borrowed(n.as_str()))
            .collect(),
        ("signal", []) if word.starts_with("SIG") => SIGNALS
            .iter()
            .map(|s| Cow::Owned(format!("SIG{s}")))
            .collect(),
        ("signal", []) => fixed(SIGNALS),
        ("signal", _) => with_all().collect(),
        ("status", _) => with_all().chain([Cow::Borrowed("--json")]).collect(),
        ("help", []) => COMMANDS.iter().map(|c| Cow::Borrowed(c.name)).collect(),
        ("reload", []) => fixed(&["--dry-run"]),
        _ => match protocol::command(cmd) {
            Some(c) if c.takes_names => with_all().collect(),
            _ => Vec::new(),
        },
    };
    // Names already on the line are not offered again.
    pool.into_iter()
        .filter(|n| !typed.contains(&n.as_ref()))
        .collect()
}

/// supervisorctl's `PROGRAM:*` (the same as `PROGRAM`), offered once a word
/// has a `:`, so the plain listing is not doubled.
fn stars<'a>(word: &str, names: &Names) -> Vec<Cow<'a, str>> {
    if !word.contains(':') {
        return Vec::new();
    }
    let stars = names.programs.iter().map(|p| Cow::Owned(format!("{p}:*")));
    stars.collect()
}

/// `tail [-f] [-n N] NAME [stdout|stderr]`: options or a name until the name
/// is there, then the stream, then nothing.
fn tail_arguments<'a>(typed: &[&str], names: &'a Names) -> Vec<Cow<'a, str>> {
    let mut after_n = false;
    let mut name_at = None;
    for (i, w) in typed.iter().enumerate() {
        if after_n {
            after_n = false;
        } else if *w == "-n" {
            after_n = true;
        } else if !w.starts_with('-') {
            name_at = Some(i);
            break;
        }
    }
    match name_at {
        // A number comes after -n: nothing to offer.
        None if after_n => Vec::new(),
        None => ["-f", "-n"]
            .iter()
            .filter(|o| !typed.contains(o))
            .map(|o| Cow::Borrowed(*o))
            .chain(
                single_process_programs(names)
                    .chain(&names.processes)
                    .map(|n| Cow::Borrowed(n.as_str())),
            )
            .collect(),
        Some(i) if i + 1 == typed.len() => vec!["stdout".into(), "stderr".into()],
        Some(_) => Vec::new(),
    }
}

/// Programs of one process: `tail` (and `attach`) take one process, so a
/// program name stands for one only when it has a single process.
fn single_process_programs(names: &Names) -> impl Iterator<Item = &String> {
    let mut count: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for p in &names.processes {
        if let Some((program, _)) = p.rsplit_once(':') {
            *count.entry(program).or_default() += 1;
        }
    }
    (names.programs.iter()).filter(move |p| count.get(p.as_str()) == Some(&1))
}

/// Grey text after the cursor. Right-arrow accepts only the `completion`
/// part: the rest of a command name, never the argument synopsis.
#[derive(Debug, PartialEq)]
pub struct LineHint {
    pub display: String,
    pub completion: Option<String>,
}

impl rustyline::hint::Hint for LineHint {
    fn display(&self) -> &str {
        &self.display
    }

    fn completion(&self) -> Option<&str> {
        self.completion.as_deref()
    }
}

/// The rest of a command name once it is unambiguous, then its arguments;
/// or the arguments after `COMMAND `.
pub fn hint(line: &str, pos: usize) -> Option<LineHint> {
    if pos != line.len() || line.starts_with(' ') {
        return None;
    }
    match line.split_once(' ') {
        None if !line.is_empty() => {
            let mut matches = COMMANDS.iter().filter(|c| c.name.starts_with(line));
            let c = matches.next()?;
            if matches.next().is_some() {
                return None;
            }
            let rest = &c.name[line.len()..];
            let display = if c.args.is_empty() {
                rest.to_string()
            } else {
                format!("{rest} {}", c.args)
            };
            Some(LineHint {
                display,
                completion: (!rest.is_empty()).then(|| rest.to_string()),
            })
        }
        Some((cmd, "")) => {
            let c = protocol::command(cmd)?;
            (!c.args.is_empty()).then(|| LineHint {
                display: c.args.to_string(),
                completion: None,
            })
        }
        _ => None,
    }
}

/// rustyline's view of the above.
pub struct Helper {
    pub names: Names,
    /// Dim hints; off when colours are.
    pub colour: bool,
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = complete(line, pos, &self.names);
        let pairs = words
            .into_iter()
            .map(|w| Pair {
                display: w.trim_end().to_string(),
                replacement: w,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Helper {
    type Hint = LineHint;

    fn hint(&self, line: &str, pos: usize, _: &Context<'_>) -> Option<LineHint> {
        hint(line, pos)
    }
}

impl Highlighter for Helper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        if self.colour {
            Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
        } else {
            Cow::Borrowed(hint)
        }
    }
}

impl Validator for Helper {}
impl rustyline::Helper for Helper {}

#[cfg(test)]
#[path = "complete_tests.rs"]
mod tests;
