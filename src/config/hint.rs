//! What to say about an unknown key: supervisord's name for one of ours, what
//! to do instead when supervisord has a setting we do not, or the nearest
//! known key by edit distance ("did you mean").

/// Where the key was found: supervisord's names differ by section.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The top level (supervisord's `[supervisord]`, `[unix_http_server]`…).
    Top,
    /// A program's settings (supervisord's `[program:x]`).
    Program,
    /// Any other mapping (`rlimits`, …): only the edit distance applies.
    Nested,
}

/// supervisord's program keys: ours, or what to do instead.
const PROGRAM: &[(&str, Hint)] = &[
    ("command", Hint::Ours("cmd")),
    ("directory", Hint::Ours("workingdir")),
    ("startsecs", Hint::Ours("starttime")),
    ("stopwaitsecs", Hint::Ours("stoptime")),
    ("environment", Hint::Ours("env")),
    ("stdout_logfile", Hint::Ours("stdout")),
    ("stderr_logfile", Hint::Ours("stderr")),
    ("stdout_logfile_maxbytes", Hint::Ours("stdout_maxbytes")),
    ("stdout_logfile_backups", Hint::Ours("stdout_backups")),
    ("stderr_logfile_maxbytes", Hint::Ours("stderr_maxbytes")),
    ("stderr_logfile_backups", Hint::Ours("stderr_backups")),
    (
        "process_name",
        Hint::Instead(
            "processes are always named PROGRAM:N (N from 0); use %(process_num)d in cmd, \
             env or paths for what differs between them",
        ),
    ),
    (
        "stopasgroup",
        Hint::Instead("always on: the stop signal goes to the whole process group"),
    ),
    (
        "killasgroup",
        Hint::Instead("always on: SIGKILL goes to the whole process group"),
    ),
    (
        "numprocs_start",
        Hint::Instead("processes are numbered from 0; no offset can be set"),
    ),
    (
        "serverurl",
        Hint::Instead("children find the daemon through TASKMASTER_SOCKET in their environment"),
    ),
    (
        "stdout_capture_maxbytes",
        Hint::Instead("no capture mode: `tail` keeps the last 64 KiB of each stream"),
    ),
    (
        "stderr_capture_maxbytes",
        Hint::Instead("no capture mode: `tail` keeps the last 64 KiB of each stream"),
    ),
    (
        "stdout_events_enabled",
        Hint::Instead("no event listeners: `tail -f` follows output"),
    ),
    (
        "stderr_events_enabled",
        Hint::Instead("no event listeners: `tail -f` follows output"),
    ),
    (
        "stdout_syslog",
        Hint::Instead("no syslog: write to a file with `stdout`"),
    ),
    (
        "stderr_syslog",
        Hint::Instead("no syslog: write to a file with `stderr`"),
    ),
];

/// supervisord's `[supervisord]` and `[unix_http_server]` keys.
const TOP: &[(&str, Hint)] = &[
    ("file", Hint::Ours("socket")),
    ("chmod", Hint::Ours("socket_mode")),
    (
        "chown",
        Hint::Instead("use socket_group: the socket keeps the daemon's user"),
    ),
    ("port", Hint::Ours("listen")),
    (
        "loglevel",
        Hint::Instead("set RUST_LOG (error, warn, info, debug) in the daemon's environment"),
    ),
    (
        "nodaemon",
        Hint::Instead("the daemon runs in the foreground by default; `daemonize: true` detaches"),
    ),
    (
        "user",
        Hint::Instead("start the daemon as that user, or give each program its `user`"),
    ),
    ("umask", Hint::Instead("set `umask` on each program")),
    (
        "directory",
        Hint::Instead("set `workingdir` on each program"),
    ),
    ("environment", Hint::Instead("set `env` on each program")),
    (
        "childlogdir",
        Hint::Instead("give each program its `stdout`/`stderr` file"),
    ),
    (
        "minprocs",
        Hint::Instead("set `rlimits: {nproc: N}` on the programs that need it"),
    ),
    (
        "username",
        Hint::Instead(
            "the unix socket has no password: socket_mode and socket_group decide who connects; \
             for TCP, listen_secret_file",
        ),
    ),
    (
        "password",
        Hint::Instead(
            "the unix socket has no password: socket_mode and socket_group decide who connects; \
             for TCP, listen_secret_file",
        ),
    ),
];

#[derive(Clone, Copy)]
enum Hint {
    /// The same setting under our name.
    Ours(&'static str),
    /// No equivalent: what to do instead.
    Instead(&'static str),
}

/// The message for `key`, not one of `known`: starts with "unknown key".
pub fn unknown_key(key: &str, known: &[&str], level: Level) -> String {
    let table = match level {
        Level::Top => TOP,
        Level::Program => PROGRAM,
        Level::Nested => &[],
    };
    match table.iter().find(|(k, _)| *k == key) {
        Some((_, Hint::Ours(ours))) if known.contains(ours) => {
            format!("unknown key: supervisord's `{key}` is `{ours}` here")
        }
        Some((_, Hint::Instead(what))) => {
            format!("unknown key: supervisord's `{key}` has no equivalent here: {what}")
        }
        _ => match nearest(key, known) {
            Some(k) => format!("unknown key, did you mean `{k}`?"),
            None => format!("unknown key, expected one of {}", known.join(", ")),
        },
    }
}

/// The known word closest to `word`, if it is close enough to be a typo.
pub fn nearest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let w = word.to_ascii_lowercase();
    // Short words need a closer match: `a` is no typo of `cmd`.
    let limit = match w.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    known
        .iter()
        .map(|k| (distance(&w, k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Edit distance with adjacent transpositions (`umaks` is one edit from
/// `umask`). Bounded: keys longer than 64 characters are not compared.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    // Three rows of the dynamic-programming table are enough.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(before[j - 2] + 1);
            }
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["cmd", "numprocs", "umask", "stoptime", "starttime", "env"];

    #[test]
    fn distances() {
        assert_eq!(distance("umaks", "umask"), 1);
        assert_eq!(distance("stoptim", "stoptime"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance(&"a".repeat(65), "a"), usize::MAX);
    }

    #[test]
    fn typos_get_the_nearest_key() {
        assert_eq!(nearest("umaks", KEYS), Some("umask"));
        assert_eq!(nearest("CMD", KEYS), Some("cmd"));
        assert_eq!(nearest("numproc", KEYS), Some("numprocs"));
        assert_eq!(nearest("stoptimes", KEYS), Some("stoptime"));
        assert_eq!(nearest("x", KEYS), None);
        assert_eq!(nearest("completely_else", KEYS), None);
    }

    #[test]
    fn supervisord_keys_are_translated_by_level() {
        let known = &["cmd", "workingdir", "env", "starttime", "stoptime"];
        assert_eq!(
            unknown_key("command", known, Level::Program),
            "unknown key: supervisord's `command` is `cmd` here"
        );
        assert_eq!(
            unknown_key("directory", known, Level::Program),
            "unknown key: supervisord's `directory` is `workingdir` here"
        );
        assert!(unknown_key("process_name", known, Level::Program).contains("PROGRAM:N"));
        assert!(unknown_key("killasgroup", known, Level::Program).contains("always on"));
        // At the top level `directory` means the daemon's folder.
        assert!(unknown_key("directory", known, Level::Top).contains("each program"));
        assert_eq!(
            unknown_key("stoptme", known, Level::Nested),
            "unknown key, did you mean `stoptime`?"
        );
        assert_eq!(
            unknown_key("zzzzzz", &["a", "b"], Level::Nested),
            "unknown key, expected one of a, b"
        );
    }
}
