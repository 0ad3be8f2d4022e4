//! Where the socket and the event log go when the config does not say, and
//! the creation of their folders without trusting anything another user may
//! have put in the way (a squatted folder, a symlink to a file of theirs).
//!
//! Both binaries compute the same paths; only the daemon creates folders.

use nix::unistd::{geteuid, getuid};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const ROOT_RUN: &str = "/run/taskmaster";
const ROOT_LOG: &str = "/var/log/taskmaster";

/// The private folder of a user without `$XDG_RUNTIME_DIR`: `/tmp/taskmaster-$UID`.
fn private_tmp() -> PathBuf {
    PathBuf::from(format!("/tmp/taskmaster-{}", getuid()))
}

/// An absolute path from the environment variable `var`, if set to one.
fn env_dir(var: &str) -> Option<PathBuf> {
    let v = PathBuf::from(std::env::var_os(var)?);
    v.is_absolute().then_some(v)
}

/// The default control socket: as root `/run/taskmaster/taskmaster.sock`,
/// else `$XDG_RUNTIME_DIR/taskmaster.sock`, else `/tmp/taskmaster-$UID/sock`.
pub fn default_socket() -> PathBuf {
    if geteuid().is_root() {
        return Path::new(ROOT_RUN).join("taskmaster.sock");
    }
    match env_dir("XDG_RUNTIME_DIR") {
        Some(dir) => dir.join("taskmaster.sock"),
        None => private_tmp().join("sock"),
    }
}

/// The default event log: as root `/var/log/taskmaster/taskmasterd.log`, else
/// under `$XDG_STATE_HOME/taskmaster/`, else `~/.local/state/taskmaster/`
/// (if that home folder exists), else in the private folder
/// `/tmp/taskmaster-$UID/`.
pub fn default_logfile() -> PathBuf {
    let dir = if geteuid().is_root() {
        PathBuf::from(ROOT_LOG)
    } else if let Some(state) = env_dir("XDG_STATE_HOME") {
        state.join("taskmaster")
    } else if let Some(home) = env_dir("HOME").filter(|h| h.is_dir()) {
        // A HOME that does not exist (`nobody`'s /nonexistent, a service
        // account) is no place to create a tree in: the private folder is.
        home.join(".local/state/taskmaster")
    } else {
        private_tmp()
    };
    dir.join("taskmasterd.log")
}

/// Whether `path` is one of the default paths (created with the care below,
/// opened without following a symlink).
pub fn is_default_path(path: &Path) -> bool {
    path == default_socket() || path == default_logfile()
}

/// Creates the folder of the default path `path` if needed, and checks it:
/// a real folder (never a symlink), the daemon's own, that nobody else may
/// write into. Paths that are not defaults are left alone.
pub fn prepare_default_path(path: &Path) -> Result<(), String> {
    if !is_default_path(path) {
        return Ok(());
    }
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if dir == Path::new(ROOT_RUN) {
        shared_dir(dir, 0o755)
    } else if dir == Path::new(ROOT_LOG) {
        shared_dir(dir, 0o750)
    } else if dir == private_tmp() {
        private_dir(dir, geteuid().as_raw())
    } else if path == default_logfile() {
        // `$XDG_STATE_HOME/taskmaster` or `~/.local/state/taskmaster`: the
        // user's own tree, created 0700 as the XDG spec asks.
        if let Some(parent) = dir.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        private_dir(dir, geteuid().as_raw())
    } else {
        // `$XDG_RUNTIME_DIR`: made by the login manager, private already.
        Ok(())
    }
}

/// For `taskmasterd --check`, without creating anything: whether the daemon
/// will be able to create `path` (the socket or the event log) in its
/// folder. It creates only the folders of its default paths, and checks
/// those as `prepare_default_path` does.
pub fn check_folder_of(path: &Path) -> Result<(), String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let shown = dir.display();
    let uid = geteuid().as_raw();
    let default = is_default_path(path);
    // (forbidden mode bits, whether mkdir -p) of a folder the daemon creates.
    let made = if !default {
        None
    } else if dir == Path::new(ROOT_RUN) || dir == Path::new(ROOT_LOG) {
        Some((0o022, false))
    } else if dir == private_tmp() {
        Some((0o077, false))
    } else if path == default_logfile() {
        Some((0o077, true))
    } else {
        None // $XDG_RUNTIME_DIR: the login manager's, never created here
    };
    match std::fs::metadata(dir) {
        Ok(meta) => {
            if let Some((forbidden, _)) = made {
                check(dir, uid, forbidden)?;
            } else if !meta.is_dir() {
                return Err(format!("{shown} is not a folder"));
            }
            writable(dir)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match made {
            None => Err(format!(
                "the folder {shown} does not exist (taskmasterd creates only the folders of its default paths)"
            )),
            Some((_, deep)) => {
                let mut up = dir.parent();
                while let Some(a) = up.filter(|a| deep && !a.exists()) {
                    up = a.parent();
                }
                let Some(base) = up.filter(|a| a.is_dir()) else {
                    return Err(format!(
                        "the folder {shown} does not exist and cannot be created: its parent does not exist"
                    ));
                };
                writable(base).map_err(|e| {
                    format!("the folder {shown} does not exist and cannot be created: {e}")
                })
            }
        },
        Err(e) => Err(format!("cannot stat {shown}: {e}")),
    }
}

/// Whether this user may create entries in `dir` (root may, but not on a
/// read-only file system).
fn writable(dir: &Path) -> Result<(), String> {
    use nix::unistd::{access, AccessFlags};
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| format!("{} is not writable ({e})", dir.display()))
}

/// Creates `dir` with `mode` (exactly, whatever the umask) unless it exists;
/// then it must be a folder owned by the daemon's user that no one else can
/// write into, so no one else can put a symlink or a socket in it.
fn shared_dir(dir: &Path, mode: u32) -> Result<(), String> {
    if create(dir, mode)? {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
    }
    check(dir, geteuid().as_raw(), 0o022)
}

/// Creates `dir` 0700 unless it exists; then it must be a folder owned by
/// `uid` without any group or other access.
pub fn private_dir(dir: &Path, uid: u32) -> Result<(), String> {
    create(dir, 0o700)?;
    check(dir, uid, 0o077)
}

/// mkdir; true if it made the folder, false if something was there.
fn create(dir: &Path, mode: u32) -> Result<bool, String> {
    match std::fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

/// lstat, never stat: a symlink is refused, not followed.
fn check(dir: &Path, uid: u32, forbidden: u32) -> Result<(), String> {
    let shown = dir.display();
    let meta = std::fs::symlink_metadata(dir).map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if meta.file_type().is_symlink() {
        return Err(format!("{shown} is a symlink: refusing to follow it"));
    }
    if !meta.is_dir() {
        return Err(format!("{shown} exists and is not a folder"));
    }
    if meta.uid() != uid {
        return Err(format!(
            "{shown} belongs to uid {}, not to uid {uid}: refusing to use it",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden != 0 {
        return Err(format!(
            "{shown} has mode {mode:04o}: others could put files in it (or read them); refusing to use it"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_folder_is_created_0700() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("p");
        private_dir(&d, geteuid().as_raw()).unwrap();
        let m = std::fs::metadata(&d).unwrap().mode() & 0o777;
        assert_eq!(m, 0o700);
        // Again: it exists and is fine.
        private_dir(&d, geteuid().as_raw()).unwrap();
    }

    #[test]
    fn a_private_folder_open_to_others_or_a_symlink_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("p");
        std::fs::create_dir(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
        let e = private_dir(&d, geteuid().as_raw()).unwrap_err();
        assert!(e.contains("mode 0750"), "{e}");
        let link = t.path().join("l");
        std::os::unix::fs::symlink(t.path(), &link).unwrap();
        let e = private_dir(&link, geteuid().as_raw()).unwrap_err();
        assert!(e.contains("symlink"), "{e}");
    }

    #[test]
    fn folders_the_daemon_cannot_use_are_found_without_creating_anything() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(check_folder_of(&t.path().join("s.sock")), Ok(()));
        let missing = t.path().join("no/such/s.sock");
        let e = check_folder_of(&missing).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        assert!(!t.path().join("no").exists());
        let file = t.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = check_folder_of(&file.join("x.log")).unwrap_err();
        assert!(e.contains("not a folder"), "{e}");
    }

    #[test]
    fn a_private_folder_of_another_user_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("p");
        std::fs::create_dir(&d).unwrap();
        let other = geteuid().as_raw() + 1;
        let e = private_dir(&d, other).unwrap_err();
        assert!(e.contains("belongs to uid"), "{e}");
    }
}
