//! Just the control socket of a config file, for `taskmasterctl -c FILE`.
//!
//! The client must reach the daemon while the file is being edited, or when
//! its other keys cannot be checked by this user (`user:` as a non-root
//! operator): so only `socket` is read, resolved as the full loader does
//! (relative to the file's folder; the default socket when absent), and
//! nothing else in the file can make it fail.

use serde_yaml::Value;
use std::path::{Path, PathBuf};

/// The socket the daemon started on `path` listens on.
pub fn socket_of(path: &Path) -> Result<PathBuf, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    socket_in(path, &text)
}

/// [`socket_of`] for `text` as if read from `path`.
pub fn socket_in(path: &Path, text: &str) -> Result<PathBuf, String> {
    let file = path.display();
    // The loader's guards first: an alias bomb or deep nesting is scanned.
    let guarded = super::nesting::check(text).is_ok() && super::aliases::check(text).is_ok();
    let found = match guarded.then(|| serde_yaml::from_str::<Value>(text)) {
        Some(Ok(Value::Mapping(m))) => m.get("socket").map(|v| (String::new(), v.clone())),
        Some(Ok(_)) => None,
        // Half-edited YAML: the top-level `socket:` line may still be fine.
        _ => scan(text)
            .map_err(|n| format!("{file}:{n}: socket: cannot read its value"))?
            .map(|(n, v)| (format!(":{n}"), v)),
    };
    let Some((at, value)) = found else {
        return Ok(super::default_socket());
    };
    match value {
        // The loader's rule (fields.rs, `path`): non-empty, no NUL, joined
        // to the folder of the file's absolute path.
        Value::String(s) if !s.is_empty() && !s.contains('\0') => {
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
            Ok(dir.join(s))
        }
        Value::String(_) => Err(format!("{file}{at}: socket: expected a non-empty path")),
        _ => Err(format!("{file}{at}: socket: expected a path")),
    }
}

/// The first top-level `socket:` line of text that is not valid YAML as a
/// whole: its 1-based line number and its value; Err(line number) when that
/// value does not parse.
fn scan(text: &str) -> Result<Option<(usize, Value)>, usize> {
    for (i, raw) in text.lines().enumerate() {
        // Top level means no indentation; deeper keys may also be named socket.
        let rest = ["socket", "\"socket\"", "'socket'"]
            .iter()
            .find_map(|k| raw.strip_prefix(k))
            .and_then(|r| r.trim_start_matches([' ', '\t']).strip_prefix(':'));
        let Some(rest) = rest else { continue };
        if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
            continue; // `socket:x` is a plain scalar, not a key
        }
        // The value alone, parsed by the same YAML rules (quotes, comments).
        return match serde_yaml::from_str::<Value>(rest) {
            Ok(v) => Ok(Some((i + 1, v))),
            Err(_) => Err(i + 1),
        };
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(text: &str) -> Result<PathBuf, String> {
        socket_in(Path::new("/etc/tm/t.yaml"), text)
    }

    #[test]
    fn only_the_socket_key_matters() {
        let p = |s: &str| Ok(PathBuf::from(s));
        assert_eq!(
            sock("socket: /run/a.sock\nprograms: {}\n"),
            p("/run/a.sock")
        );
        // Relative to the file's folder, as the loader does.
        assert_eq!(sock("socket: run/a.sock\n"), p("/etc/tm/run/a.sock"));
        // Unknown keys, bad values, a missing `programs`: valid YAML, ignored.
        let bad = "bogus: 1\nsocket: '/run/b.sock'\nprograms:\n  x:\n    numprocs: -3\n";
        assert_eq!(sock(bad), p("/run/b.sock"));
        // No socket key, or not a mapping at all: the default.
        assert_eq!(sock("programs: {}\n"), Ok(crate::config::default_socket()));
        assert_eq!(sock(""), Ok(crate::config::default_socket()));
        assert_eq!(sock("- a\n- b\n"), Ok(crate::config::default_socket()));
        // A nested `socket` is not the daemon's.
        assert_eq!(
            sock("programs:\n  socket:\n    cmd: x\n"),
            Ok(crate::config::default_socket())
        );
    }

    /// An alias bomb is not expanded (it took seconds and hundreds of MiB):
    /// the `socket:` line is read on its own.
    #[test]
    fn an_alias_bomb_is_scanned_not_expanded() {
        let items = vec!["x"; 3000].join(",");
        let refs = vec!["*b"; 3000].join(",");
        let text = format!("socket: /run/f.sock\nbig: &b [{items}]\nrefs: [{refs}]\n");
        let t = std::time::Instant::now();
        assert_eq!(sock(&text), Ok(PathBuf::from("/run/f.sock")));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn broken_yaml_falls_back_to_the_socket_line() {
        let p = |s: &str| Ok(PathBuf::from(s));
        // Unbalanced quote further down, tabs, duplicate keys: not YAML.
        let text = "socket: /run/c.sock   # mine\nprograms:\n  x:\n    cmd: \"sh\n";
        assert_eq!(sock(text), p("/run/c.sock"));
        let text = "programs:\n\tx: 1\nsocket : \"rel/d.sock\"\n";
        assert_eq!(sock(text), p("/etc/tm/rel/d.sock"));
        let text = "socket: /run/e.sock\nlogfile: a\nlogfile: b\n";
        assert_eq!(sock(text), p("/run/e.sock"));
        assert_eq!(
            sock("programs: [\n  socket: /nested\n"),
            Ok(crate::config::default_socket())
        );
        assert_eq!(
            sock("socket:/x\nprograms: [\n"),
            Ok(crate::config::default_socket())
        );
    }

    #[test]
    fn a_bad_socket_value_is_an_error() {
        let e = sock("socket: 42\n").unwrap_err();
        assert_eq!(e, "/etc/tm/t.yaml: socket: expected a path");
        let e = sock("socket:\n").unwrap_err();
        assert_eq!(e, "/etc/tm/t.yaml: socket: expected a path");
        let e = sock("socket: ''\n").unwrap_err();
        assert_eq!(e, "/etc/tm/t.yaml: socket: expected a non-empty path");
        let e = sock("socket: \"open\nprograms: [\n").unwrap_err();
        assert_eq!(e, "/etc/tm/t.yaml:1: socket: cannot read its value");
        let e = sock("x: [\nsocket: [1]\n").unwrap_err();
        assert_eq!(e, "/etc/tm/t.yaml:2: socket: expected a path");
    }

    #[test]
    fn reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.yaml");
        std::fs::write(&f, "socket: s.sock\nprograms: {bad\n").unwrap();
        assert_eq!(socket_of(&f), Ok(dir.path().join("s.sock")));
        let e = socket_of(&dir.path().join("none.yaml")).unwrap_err();
        assert!(e.contains("none.yaml: cannot read: "), "{e}");
    }
}
