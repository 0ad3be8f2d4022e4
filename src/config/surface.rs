//! The control-surface keys: `socket_mode`, `socket_group`, `listen`,
//! `listen_secret_file`, `listen_open`, and the rules that tie them together.
//! (A child module of `fields`, so it shares its error collector.)

use super::{show, Ctx};
use crate::config::{parse_address, Config, Secret};
use serde_yaml::Value;
use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// A secret longer than this is a mistake (a wrong file named), not a secret.
const MAX_SECRET: u64 = 4096;

impl Ctx<'_> {
    /// `"0770"`: the socket's final mode. The owner keeps read and write (the
    /// daemon's own user must be able to connect); nothing above 0777.
    pub(super) fn socket_mode(&mut self, path: &[&str], v: &Value) -> Option<u32> {
        let text = self.scalar_text(path, v).unwrap_or_default();
        let digits = text.strip_prefix("0o").unwrap_or(&text);
        let ok =
            (1..=4).contains(&digits.len()) && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
        match u32::from_str_radix(digits, 8) {
            Ok(m) if ok && m <= 0o777 && m & 0o600 == 0o600 => Some(m),
            _ => {
                self.err(
                    path,
                    format!(
                        "expected an octal mode such as \"0770\" (at most 0777, owner rw kept), got {}",
                        show(v)
                    ),
                );
                None
            }
        }
    }

    /// An existing group, by name: (name, gid).
    pub(super) fn socket_group(&mut self, path: &[&str], v: &Value) -> Option<(String, u32)> {
        let name = self.string(path, v, "a group name")?;
        match nix::unistd::Group::from_name(&name) {
            Ok(Some(g)) => Some((name, g.gid.as_raw())),
            _ => {
                self.err(
                    path,
                    format!("expected an existing group, no group named {name:?}"),
                );
                None
            }
        }
    }

    /// Any address here; whether it may be used depends on the other keys
    /// (see `check_listen`).
    pub(super) fn listen(&mut self, path: &[&str], v: &Value) -> Option<SocketAddr> {
        let s = self.string(path, v, "an address HOST:PORT")?;
        parse_address(&s).map_err(|e| self.err(path, e)).ok()
    }

    /// `metrics_listen`: loopback only, since `GET /metrics` has no
    /// authentication (every local user may read it, nobody else).
    pub(super) fn metrics_listen(&mut self, path: &[&str], v: &Value) -> Option<SocketAddr> {
        let a = self.listen(path, v)?;
        if a.ip().is_loopback() {
            return Some(a);
        }
        self.err(
            path,
            format!("expected a loopback address (127.0.0.1:PORT or [::1]:PORT), got {a}: metrics are served without authentication"),
        );
        None
    }

    /// Reads the secret now, so a bad file stops the start (or the reload).
    pub(super) fn secret_file(&mut self, path: &[&str], v: &Value) -> Option<Secret> {
        let file = self.path(path, v)?;
        read_secret(&file).map_err(|e| self.err(path, e)).ok()
    }

    /// The rules between `listen`, `listen_secret_file` and `listen_open`.
    pub(super) fn check_listen(&mut self, c: &Config) {
        if c.listen_secret.is_some() && c.listen_open {
            self.err(
                &["listen_open"],
                "listen_open and listen_secret_file exclude each other: choose one",
            );
        }
        let Some(addr) = c.listen else { return };
        if !addr.ip().is_loopback() && c.listen_secret.is_none() {
            self.err(
                &["listen"],
                format!(
                    "{addr} is not a loopback address: other addresses need listen_secret_file"
                ),
            );
        } else if c.listen_secret.is_none() && !c.listen_open {
            self.err(
                &["listen"],
                "any local user can reach a TCP port: set listen_secret_file (clients \
                 send `auth SECRET` first), or listen_open: true to let every local user \
                 control the daemon",
            );
        }
    }
}

/// The secret in `file`: surrounding whitespace trimmed, one word. Refused if
/// group or others may read or write it, or if it is not a regular file.
pub fn read_secret(file: &Path) -> Result<Secret, String> {
    let shown = file.display();
    // O_NOFOLLOW: the mode checked must be the secret's own, not a link's
    // target chosen by someone else.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(file)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(format!(
            "{shown} is owned by uid {}, not by the daemon's user ({me}) or root: its owner could read the secret",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o066 != 0 {
        return Err(format!(
            "{shown} can be read or written by group or others (mode {mode:04o}): chmod 600 it"
        ));
    }
    let mut bytes = Vec::new();
    f.by_ref()
        .take(MAX_SECRET + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > MAX_SECRET {
        return Err(format!("{shown}: longer than {MAX_SECRET} bytes"));
    }
    let text = String::from_utf8(bytes).map_err(|_| format!("{shown}: not UTF-8 text"))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{shown} is empty"));
    }
    if secret.chars().any(char::is_whitespace) {
        return Err(format!(
            "{shown}: the secret must be one word (`auth SECRET` is one line of words)"
        ));
    }
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, ConfigError};
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn errors(text: &str) -> Vec<ConfigError> {
        parse(Path::new("/t.yaml"), text).unwrap_err()
    }

    fn secret_file(mode: u32, text: &str) -> (tempfile::TempDir, String) {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("secret");
        std::fs::write(&f, text).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
        let shown = f.display().to_string();
        (t, shown)
    }

    #[test]
    fn listen_needs_a_secret_or_listen_open() {
        let e = errors("listen: 127.0.0.1:0\nprograms: {}\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!((e[0].key.as_str(), e[0].line), ("listen", Some(1)));
        assert!(e[0].message.contains("listen_open"), "{e:?}");
        let c = parse(
            Path::new("/t.yaml"),
            "listen: 127.0.0.1:0\nlisten_open: true\nprograms: {}\n",
        )
        .unwrap();
        assert!(c.listen_open && c.listen_secret.is_none());
    }

    #[test]
    fn a_secret_is_read_trimmed_and_allows_other_addresses() {
        let (_t, f) = secret_file(0o600, "  s3cret\n");
        let text = format!("listen: 0.0.0.0:9001\nlisten_secret_file: {f}\nprograms: {{}}\n");
        let c = parse(Path::new("/t.yaml"), &text).unwrap();
        let s = c.listen_secret.unwrap();
        assert!(s.matches("s3cret") && !s.matches("s3cre") && !s.matches("s3cretx"));
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn secret_file_errors() {
        let (_t, f) = secret_file(0o640, "s3cret\n");
        let e = errors(&format!(
            "listen: 127.0.0.1:1\nlisten_secret_file: {f}\nprograms: {{}}\n"
        ));
        assert!(
            e.iter()
                .any(|e| e.key == "listen_secret_file" && e.message.contains("group or others")),
            "{e:?}"
        );
        let e = errors("listen_secret_file: /nonexistent/x\nprograms: {}\n");
        assert!(e[0].message.contains("cannot read"), "{e:?}");
        let (_t2, f2) = secret_file(0o600, "two words\n");
        let e = errors(&format!(
            "listen_secret_file: {f2}\nlisten_open: true\nprograms: {{}}\n"
        ));
        assert!(e.iter().any(|e| e.message.contains("one word")), "{e:?}");
        let (_t3, f3) = secret_file(0o600, "x\n");
        let e = errors(&format!(
            "listen_secret_file: {f3}\nlisten_open: true\nprograms: {{}}\n"
        ));
        assert!(e.iter().any(|e| e.message.contains("exclude")), "{e:?}");
    }

    #[test]
    fn a_non_loopback_address_without_a_secret_is_refused() {
        let e = errors("listen: 0.0.0.0:1\nlisten_open: true\nprograms: {}\n");
        assert!(e[0].message.contains("not a loopback"), "{e:?}");
    }

    #[test]
    fn metrics_listen_is_loopback_only() {
        for bad in ["0.0.0.0:9187", "192.0.2.1:9187", "\"[::]:9187\""] {
            let e = errors(&format!("metrics_listen: {bad}\nprograms: {{}}\n"));
            assert_eq!((e[0].key.as_str(), e[0].line), ("metrics_listen", Some(1)));
            assert!(e[0].message.contains("loopback"), "{e:?}");
        }
        let e = errors("metrics_listen: nowhere\nprograms: {}\n");
        assert_eq!(e[0].key, "metrics_listen", "{e:?}");
        for good in ["127.0.0.1:9187", "localhost:0", "\"[::1]:9187\""] {
            let text = format!("metrics_listen: {good}\nprograms: {{}}\n");
            let c = parse(Path::new("/t.yaml"), &text).expect(good);
            assert!(c.metrics_listen.is_some_and(|a| a.ip().is_loopback()));
        }
    }

    #[test]
    fn socket_mode_and_group() {
        let c = parse(
            Path::new("/t.yaml"),
            "socket_mode: \"0770\"\nsocket_group: root\nprograms: {}\n",
        )
        .unwrap();
        assert_eq!(c.socket_mode, Some(0o770));
        assert_eq!(c.socket_group, Some(("root".to_string(), 0)));
        for bad in ["\"0999\"", "\"0070\"", "\"01777\"", "rw"] {
            let e = errors(&format!("socket_mode: {bad}\nprograms: {{}}\n"));
            assert_eq!(e[0].key, "socket_mode", "{bad}: {e:?}");
        }
        let e = errors("socket_group: no-such-group-x\nprograms: {}\n");
        assert!(e[0].message.contains("no group named"), "{e:?}");
    }
}
