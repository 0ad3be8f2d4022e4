//! Which control socket taskmasterctl talks to, in the contract's order:
//! `-s SOCKET`; `-c FILE` (only its `socket` key); `$TASKMASTER_SOCKET`;
//! `./taskmaster.yaml` if it exists (the file `taskmasterd` reads without
//! `-c`); the default rule, the same in both binaries.

use crate::config;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the socket (every child gets it too).
pub const ENV: &str = "TASKMASTER_SOCKET";

/// The config `taskmasterd` reads when started without `-c`.
pub const LOCAL_CONFIG: &str = "taskmaster.yaml";

/// The socket to use. `env` is `$TASKMASTER_SOCKET` (empty counts as unset,
/// as for most variables); `local` is `./taskmaster.yaml`, looked at only
/// when nothing before it decided.
pub fn find(
    flag_socket: Option<PathBuf>,
    flag_config: Option<&Path>,
    env: Option<OsString>,
    local: &Path,
) -> Result<PathBuf, String> {
    if let Some(s) = flag_socket {
        return Ok(s);
    }
    if let Some(c) = flag_config {
        return config::socket_of(c);
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        return Ok(PathBuf::from(e));
    }
    if local.exists() {
        return config::socket_of(local);
    }
    Ok(config::default_socket())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_source_in_order() {
        let t = tempfile::tempdir().unwrap();
        let conf = t.path().join("c.yaml");
        std::fs::write(&conf, "socket: from-c.sock\n").unwrap();
        let local = t.path().join("taskmaster.yaml");
        std::fs::write(&local, "socket: /run/local.sock\nprograms: {oops\n").unwrap();
        let env = || Some(OsString::from("/run/env.sock"));
        let s = |p: &str| Ok(PathBuf::from(p));
        let flag = || Some(PathBuf::from("/run/flag.sock"));
        assert_eq!(
            find(flag(), Some(&conf), env(), &local),
            s("/run/flag.sock")
        );
        assert_eq!(
            find(None, Some(&conf), env(), &local),
            Ok(t.path().join("from-c.sock"))
        );
        assert_eq!(find(None, None, env(), &local), s("/run/env.sock"));
        assert_eq!(
            find(None, None, Some(OsString::new()), &local),
            s("/run/local.sock")
        );
        assert_eq!(find(None, None, None, &local), s("/run/local.sock"));
        let missing = t.path().join("none.yaml");
        assert_eq!(
            find(None, None, None, &missing),
            Ok(config::default_socket())
        );
        // A -c file that cannot be read is an error, not a fall-through.
        assert!(find(None, Some(&missing), env(), &local).is_err());
    }
}
