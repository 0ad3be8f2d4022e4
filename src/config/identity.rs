//! Who a program runs as and with which limits: `user`, `group`, `rlimits`.
//!
//! Names are resolved here, at load time, so an unknown user or group is a
//! config error with its line, not a spawn failure at 3 a.m. The supplementary
//! groups are not: they are read at each spawn (spawn.rs), as `login` does.

use super::{show, Ctx};
use serde_yaml::Value;
use std::path::PathBuf;

/// A `user:` resolved from the password database.
#[derive(Clone, Debug, PartialEq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    /// The user's primary group (the gid unless `group` says otherwise).
    pub gid: u32,
    pub home: PathBuf,
    pub shell: PathBuf,
}

/// One `rlimits:` entry; `None` is `unlimited`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rlimit {
    pub name: &'static str,
    pub value: Option<u64>,
}

/// The limits `rlimits:` knows, in the order they are applied and shown.
pub const RLIMIT_NAMES: [&str; 8] = [
    "nofile", "nproc", "core", "as", "fsize", "stack", "memlock", "cpu",
];

impl Ctx<'_> {
    pub(super) fn user(&mut self, path: &[&str], v: &Value) -> Option<RunAs> {
        let name = self.string(path, v, "a user name")?;
        let user = match nix::unistd::User::from_name(&name) {
            Ok(Some(u)) => u,
            _ => {
                self.err(
                    path,
                    format!("expected an existing user, no user named {name:?}"),
                );
                return None;
            }
        };
        let me = nix::unistd::geteuid();
        if !me.is_root() && user.uid != me {
            self.err(
                path,
                format!("cannot run as {name:?}: the daemon is not running as root"),
            );
            return None;
        }
        Some(RunAs {
            name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir,
            shell: user.shell,
        })
    }

    pub(super) fn group(&mut self, path: &[&str], v: &Value) -> Option<(String, u32)> {
        let name = self.string(path, v, "a group name")?;
        let group = match nix::unistd::Group::from_name(&name) {
            Ok(Some(g)) => g,
            _ => {
                self.err(
                    path,
                    format!("expected an existing group, no group named {name:?}"),
                );
                return None;
            }
        };
        if !nix::unistd::geteuid().is_root() && group.gid != nix::unistd::getegid() {
            self.err(
                path,
                format!("cannot run as group {name:?}: the daemon is not running as root"),
            );
            return None;
        }
        Some((name, group.gid.as_raw()))
    }

    pub(super) fn rlimits(&mut self, path: &[&str], v: &Value) -> Vec<Rlimit> {
        let Value::Mapping(map) = v else {
            self.err(
                path,
                format!("expected a mapping of LIMIT: value, got {}", show(v)),
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, val) in map {
            let Some(key) = self.key(path, k) else {
                continue;
            };
            let full: Vec<&str> = path.iter().copied().chain([key]).collect();
            let Some(name) = RLIMIT_NAMES.iter().find(|n| **n == key) else {
                let msg = match crate::config::hint::nearest(key, &RLIMIT_NAMES) {
                    Some(near) => format!("unknown limit, did you mean `{near}`?"),
                    None => format!("unknown limit, expected one of {}", RLIMIT_NAMES.join(", ")),
                };
                self.err(&full, msg);
                continue;
            };
            let value = match val {
                Value::String(s) if s == "unlimited" => None,
                // RLIM_INFINITY is u64::MAX: a number that large means it too.
                Value::Number(n) if n.is_u64() => n.as_u64().filter(|n| *n != u64::MAX),
                _ => {
                    self.err(
                        &full,
                        format!(
                            "expected a non-negative integer or unlimited, got {}",
                            show(val)
                        ),
                    );
                    continue;
                }
            };
            out.push(Rlimit { name, value });
        }
        // One canonical order, so a reload compares limits, not their spelling.
        out.sort_by_key(|r| RLIMIT_NAMES.iter().position(|n| *n == r.name));
        out
    }
}
