//! `depends_on` and `priority` per program, and the graph they make: every
//! name must be a program of the file, and no program may wait for itself
//! through a loop. (A child module of `fields`, so it shares its error collector.)

use super::{show, Ctx};
use crate::config::{Config, ConfigError};
use crate::deps::{self, Condition, Problem};
use serde_yaml::Value;

const CONDITIONS: &str = "ready, started or completed";

impl Ctx<'_> {
    /// `[db, cache]`, `db`, or `{db: ready, migrate: completed}`.
    pub(super) fn depends_on(&mut self, path: &[&str], v: &Value) -> Vec<(String, Condition)> {
        let mut out: Vec<(String, Condition)> = Vec::new();
        let mut add = |cx: &mut Self, name: &Value, cond: Condition| {
            let Value::String(name) = name else {
                cx.err(path, format!("expected program names, got {}", show(name)));
                return;
            };
            if out.iter().any(|(n, _)| n == name) {
                cx.err(path, format!("{name} is listed twice"));
            } else {
                out.push((name.clone(), cond));
            }
        };
        match v {
            Value::String(_) => add(self, v, Condition::Ready),
            Value::Sequence(items) => {
                for item in items {
                    add(self, item, Condition::Ready);
                }
            }
            Value::Mapping(map) => {
                for (name, cond) in map {
                    let parsed = match cond {
                        Value::Null => Some(Condition::Ready),
                        Value::String(s) => Condition::parse(s),
                        _ => None,
                    };
                    match parsed {
                        Some(c) => add(self, name, c),
                        None => {
                            let key = name.as_str().unwrap_or("?");
                            let full: Vec<&str> = path.iter().copied().chain([key]).collect();
                            self.err(&full, format!("expected {CONDITIONS}, got {}", show(cond)));
                        }
                    }
                }
            }
            _ => self.err(
                path,
                format!(
                    "expected a list of program names or a mapping of name: condition \
                     ({CONDITIONS}), got {}",
                    show(v)
                ),
            ),
        }
        out
    }

    pub(super) fn priority(&mut self, path: &[&str], v: &Value) -> u32 {
        self.uint(path, v, 0, u64::from(u32::MAX))
            .map_or(deps::DEFAULT_PRIORITY, |n| n as u32)
    }

    /// Unknown names and cycles, each at the `depends_on` of the program
    /// concerned (the first of a cycle).
    pub(super) fn check_graph(&mut self, config: &Config) {
        let programs: Vec<(String, Vec<String>)> = config
            .programs
            .iter()
            .map(|p| {
                let names = p.rare.depends_on.iter().map(|(n, _)| n.clone()).collect();
                (p.name.clone(), names)
            })
            .collect();
        for problem in deps::check(&programs) {
            let (program, at, message) = match problem {
                Problem::Unknown { program, dep } => {
                    let message = format!("{dep:?} is not a program of this file");
                    (program, Some(dep), message)
                }
                Problem::Cycle(c) => {
                    let first = c[0].clone();
                    let message = format!("dependency cycle: {} -> {first}", c.join(" -> "));
                    (first, None, message)
                }
            };
            let key = ["programs", program.as_str(), "depends_on"];
            // The map form has the name as a key: point at its own line.
            let line = match &at {
                Some(dep) => self.loc.line(&[key[0], key[1], key[2], dep]),
                None => self.loc.line(&key),
            };
            self.errors.push(ConfigError {
                file: self.file.clone(),
                line,
                key: key.join("."),
                message,
            });
        }
    }
}
