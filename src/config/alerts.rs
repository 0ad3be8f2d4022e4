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
        let text = self.string(path, v, "a command line string")?;
        self.cmd(path, text).map(|(_, argv)| argv)
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

#[cfg(test)]
mod tests {
    use crate::alerts::AlertEvent;
    use crate::config::{parse, Config};
    use crate::state::State;
    use std::path::Path;

    fn load(text: &str) -> Result<Config, Vec<String>> {
        parse(Path::new("/etc/tm/t.yaml"), text)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn top_level_defaults_and_program_overrides() {
        let c = load(
            "report_events: [BACKOFF, UNHEALTHY]\nreport_command: \"notify 'a b'\"\n\
             syslog: true\nprograms:\n  a:\n    cmd: x\n  b:\n    cmd: x\n\
             \x20   report_events: FATAL\n    report_command: other\n  c:\n    cmd: x\n\
             \x20   report_events: []\n",
        )
        .unwrap();
        let [a, b, cc] = &c.programs[..] else {
            panic!()
        };
        assert!(a
            .rare
            .report_events
            .contains(AlertEvent::Entered(State::Backoff)));
        assert!(a.rare.report_events.contains(AlertEvent::Unhealthy));
        assert!(!a
            .rare
            .report_events
            .contains(AlertEvent::Entered(State::Fatal)));
        assert_eq!(
            a.rare.report_command,
            Some(vec!["notify".into(), "a b".into()])
        );
        assert!(b
            .rare
            .report_events
            .contains(AlertEvent::Entered(State::Fatal)));
        assert!(!b
            .rare
            .report_events
            .contains(AlertEvent::Entered(State::Backoff)));
        assert_eq!(b.rare.report_command, Some(vec!["other".into()]));
        assert_eq!(cc.rare.report_events, crate::alerts::EventSet::EMPTY);
        assert_eq!(c.syslog.as_deref(), Some(Path::new("/dev/log")));
        let d = load("syslog: run/log.sock\nprograms:\n  a:\n    cmd: x\n").unwrap();
        assert_eq!(d.syslog.as_deref(), Some(Path::new("/etc/tm/run/log.sock")));
        assert!(d.programs[0]
            .rare
            .report_events
            .contains(AlertEvent::Entered(State::Fatal)));
        assert_eq!(load("syslog: false\nprograms: {}\n").unwrap().syslog, None);
    }

    #[test]
    fn bad_values_name_the_line_and_what_is_expected() {
        let e = load("report_events: [FATAL, CRASHED, 3]\nsyslog: 7\nreport_command: \"\"\nprograms:\n  a:\n    cmd: x\n    report_command: \"x 'open\"\n").unwrap_err();
        assert_eq!(e.len(), 5, "{e:#?}");
        assert!(e[0].contains(":1:") && e[0].contains("UNHEALTHY") && e[0].contains("CRASHED"));
        assert!(e[1].contains("3"));
        assert!(e[2].contains(":2:") && e[2].contains("socket path"));
        assert!(e[3].contains("empty"), "{}", e[3]);
        assert!(e[4].contains(":7:") && e[4].contains("quote"), "{}", e[4]);
    }
}
