//! The alert keys: `report_events`, `report_command` (top level defaults and
//! per program) and the top-level `syslog`.

use super::{show, Ctx};
use crate::alerts::{EventSet, NAMES};
use serde_yaml::Value;
use std::path::PathBuf;

/// What a program inherits from the top level when it does not say.
#[derive(Clone, Default)]
pub(super) struct Inherited {
    pub address: Option<std::net::SocketAddr>,
    pub events: EventSet,
    pub command: Option<Vec<String>>,
}

/// Where syslog lines go when `syslog: true`.
pub const DEFAULT_SYSLOG: &str = "/dev/log";

impl Ctx<'_> {
    /// A list of event names (one name alone is a list of one).
    pub(super) fn report_events(&mut self, path: &[&str], v: &Value) -> EventSet {
        let items: Vec<&Value> = match v {
            Value::Sequence(s) => s.iter().collect(),
            Value::Null => Vec::new(),
            other => vec![other],
        };
        let mut set = EventSet::EMPTY;
        for item in items {
            let ok = matches!(item, Value::String(s) if set.insert(s));
            if !ok {
                self.err(
                    path,
                    format!(
                        "expected a list of events from {}, got {}",
                        NAMES.join(", "),
                        show(item)
                    ),
                );
            }
        }
        set
    }

    /// A command line, split like `cmd` (it is run without a shell).
    pub(super) fn report_command(&mut self, path: &[&str], v: &Value) -> Option<Vec<String>> {
        self.cmd(path, v).map(|(_, argv)| argv)
    }

    /// `true` (the default socket), `false`, or a socket path.
    pub(super) fn syslog(&mut self, path: &[&str], v: &Value) -> Option<PathBuf> {
        match v {
            Value::Bool(true) => Some(PathBuf::from(DEFAULT_SYSLOG)),
            Value::Bool(false) => None,
            Value::String(_) => self.path(path, v),
            _ => {
                self.err(
                    path,
                    format!("expected true, false or a socket path, got {}", show(v)),
                );
                None
            }
        }
    }
}
