//! `avail` and `version`: what the config file on disk holds now against what
//! the daemon runs, as supervisorctl's `avail`; and the daemon's version.

use crate::config::{self, Config};
use crate::protocol;

/// The version of the running daemon: the crate's, fixed at build time.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `version`: one body line, the daemon's version.
pub fn version_reply() -> String {
    protocol::reply(&[VERSION.to_string()], Ok(()))
}

/// `avail`: re-reads `running.file` exactly as a reload does (the same
/// bounded read and checks), changes nothing, and lists every program.
/// A file that no longer loads gives its errors as body lines and ERR.
pub fn reply(running: &Config) -> String {
    match config::load(&running.file) {
        Ok(on_disk) => protocol::reply(&lines(running, &on_disk), Ok(())),
        Err(errors) => {
            let body: Vec<String> = errors.iter().map(ToString::to_string).collect();
            let n = config::error_count(&errors);
            let what = if n == 1 { "error" } else { "errors" };
            protocol::reply(&body, Err(format!("invalid configuration ({n} {what})")))
        }
    }
}

/// One aligned `NAME  in use` line per program: each of the file's programs,
/// `in use` when the daemon runs it and `avail` when a reload would add it;
/// then those the daemon runs that the file no longer has, `removed on reload`.
/// Both lists are sorted by name (the loader sorts programs).
pub fn lines(running: &Config, on_disk: &Config) -> Vec<String> {
    let runs = |name: &str| {
        running
            .programs
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .is_ok()
    };
    let on_file = |name: &str| {
        on_disk
            .programs
            .binary_search_by(|p| p.name.as_str().cmp(name))
            .is_ok()
    };
    let mut rows: Vec<(&str, &str)> = on_disk
        .programs
        .iter()
        .map(|p| {
            let n = p.name.as_str();
            (n, if runs(n) { "in use" } else { "avail" })
        })
        .collect();
    rows.extend(
        running
            .programs
            .iter()
            .filter(|p| !on_file(&p.name))
            .map(|p| (p.name.as_str(), "removed on reload")),
    );
    let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(n, what)| format!("{n:width$}  {what}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Program;
    use std::path::Path;

    fn conf(names: &[&str]) -> Config {
        let text: String = names
            .iter()
            .map(|n| format!("  {n}:\n    cmd: sleep 1\n"))
            .collect();
        let text = if text.is_empty() {
            " {}\n".into()
        } else {
            format!("\n{text}")
        };
        config::parse(Path::new("/t.yaml"), &format!("programs:{text}")).unwrap()
    }

    #[test]
    fn in_use_avail_and_removed_aligned() {
        let running = conf(&["db", "web", "worker"]);
        let on_disk = conf(&["api-gateway", "db", "web"]);
        assert_eq!(
            lines(&running, &on_disk),
            [
                "api-gateway  avail",
                "db           in use",
                "web          in use",
                "worker       removed on reload",
            ]
        );
        assert!(lines(&conf(&[]), &conf(&[])).is_empty());
        // Programs are matched by name only: a changed cmd is still in use.
        let mut changed = conf(&["db"]);
        changed.programs[0] = Program::new("db", "sleep 2").into();
        assert_eq!(lines(&conf(&["db"]), &changed), ["db  in use"]);
    }

    #[test]
    fn an_unreadable_file_is_an_error_with_its_reasons() {
        let mut running = conf(&["a"]);
        running.file = "/nonexistent/taskmaster.yaml".into();
        let text = reply(&running);
        assert!(text.starts_with("/nonexistent/taskmaster.yaml"), "{text}");
        assert!(
            text.ends_with("ERR invalid configuration (1 error)\n"),
            "{text}"
        );
        assert_eq!(version_reply(), format!("{VERSION}\nOK\n"));
    }
}
