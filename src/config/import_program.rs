//! `[program:x]` → `programs: x:` for `--import` (a child of import.rs).

use super::{folder, ini, octal, path, quote, size, Out, Program, Source};

impl Out {
    pub(super) fn program(&mut self, src: &Source, raw_name: &str) {
        let s = src.section;
        let file = src.file;
        let name = program_name(raw_name);
        if name != raw_name {
            let msg = format!(
                "renamed `{name}`: names are letters, digits, `_`, `-`, `.`, and `all` is reserved"
            );
            self.warn(file, s.line, &format!("[{}]", s.name), msg);
        }
        if self.names.contains(&name) {
            let msg = format!("program `{name}` is defined twice: this one is skipped");
            return self.warn(file, s.line, &format!("[{}]", s.name), msg);
        }
        let dir = folder(file);
        let redirect = s
            .get("redirect_stderr")
            .and_then(|e| ini::boolean(&e.value))
            == Some(true);
        let mut p = Program {
            name,
            keys: Vec::new(),
            env: Vec::new(),
        };
        for e in &s.entries {
            let what = format!("[{}] {}", s.name, e.key);
            let v = e.value.as_str();
            let bad = |kind: &str| format!("{v:?} is not {kind}: skipped (our default applies)");
            let key: &'static str = match e.key.as_str() {
                "command" => "cmd",
                "numprocs" => "numprocs",
                "directory" => "workingdir",
                "umask" => "umask",
                "autostart" => "autostart",
                "autorestart" => "autorestart",
                "startsecs" => "starttime",
                "startretries" => "startretries",
                "exitcodes" => "exitcodes",
                "stopsignal" => "stopsignal",
                "stopwaitsecs" => "stoptime",
                "priority" => "priority",
                "user" => "user",
                "redirect_stderr" => "redirect_stderr",
                "stdout_logfile" => "stdout",
                "stderr_logfile" => "stderr",
                "stdout_logfile_maxbytes" => "stdout_maxbytes",
                "stdout_logfile_backups" => "stdout_backups",
                "stderr_logfile_maxbytes" => "stderr_maxbytes",
                "stderr_logfile_backups" => "stderr_backups",
                "environment" => {
                    match ini::environment(v) {
                        Ok(env) => p.env = env,
                        Err(err) => self.warn(file, e.line, &what, format!("{err}: skipped")),
                    }
                    continue;
                }
                "process_name" => {
                    if v != "%(program_name)s" {
                        let msg = format!(
                            "processes are always named {}:N (N from 0), not {v:?}; \
                             %(process_num)d in cmd, env or paths gives each its own values",
                            p.name
                        );
                        self.warn(file, e.line, &what, msg);
                    }
                    continue;
                }
                "stopasgroup" | "killasgroup" => {
                    if ini::boolean(v) != Some(true) {
                        let msg = "always on here: the stop signal and SIGKILL go to the whole process group";
                        self.warn(file, e.line, &what, msg.into());
                    }
                    continue;
                }
                "numprocs_start" if v == "0" => continue,
                "serverurl" if v.eq_ignore_ascii_case("auto") => continue,
                other => {
                    let msg = instead(other);
                    self.warn(file, e.line, &what, msg.into());
                    continue;
                }
            };
            let value = match key {
                "cmd" if !v.trim().is_empty() => Ok(quote(&path_cmd(v, &dir))),
                "cmd" => Err(bad("a command")),
                "workingdir" => Ok(quote(&path(v, &dir))),
                "stdout" | "stderr" => match v {
                    "NONE" | "none" => continue,
                    "AUTO" | "auto" => Err(format!(
                        "no automatic log files: set `{key}` to a path (`tail` shows the last 64 KiB meanwhile)"
                    )),
                    _ if key == "stderr" && redirect => Err(
                        "ignored with redirect_stderr = true, as supervisord: stderr goes to the stdout file".into(),
                    ),
                    "/dev/stdout" | "/dev/stderr" => Err(format!(
                        "{v}: the daemon's own output is not a log file here: set a file path"
                    )),
                    _ => Ok(quote(&path(v, &dir))),
                },
                "umask" => octal(v).map(|_| quote(v)).ok_or_else(|| bad("an octal umask")),
                "autostart" | "redirect_stderr" => ini::boolean(v)
                    .map(|b| b.to_string())
                    .ok_or_else(|| bad("a boolean")),
                "autorestart" => match ini::boolean(v).map(|b| if b { "always" } else { "never" }) {
                    Some(policy) => Ok(policy.into()),
                    None if v.eq_ignore_ascii_case("unexpected") => Ok("unexpected".into()),
                    None => Err(bad("true, false or unexpected")),
                },
                "numprocs" => v.parse::<u32>().ok().filter(|n| *n >= 1).map(|n| n.to_string()).ok_or_else(|| bad("a number of processes")),
                "startretries" | "stdout_backups" | "stderr_backups" | "priority" => {
                    v.parse::<u32>().map(|n| n.to_string()).map_err(|_| bad("a number"))
                }
                "starttime" | "stoptime" => v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| *s >= 0.0)
                    .map(|_| v.to_string())
                    .ok_or_else(|| bad("a number of seconds")),
                "exitcodes" => {
                    let codes: Option<Vec<u8>> = v.split(',').map(|c| c.trim().parse().ok()).collect();
                    codes
                        .map(|c| format!("{c:?}"))
                        .ok_or_else(|| bad("a list of exit codes"))
                }
                "stopsignal" => crate::signals::parse(v).map(|_| quote(v)).ok_or_else(|| bad("a signal")),
                "stdout_maxbytes" | "stderr_maxbytes" => size(v).ok_or_else(|| bad("a size")),
                // user
                _ => Ok(quote(v)),
            };
            match value {
                Ok(value) => p.keys.push((key, value)),
                Err(msg) => self.warn(file, e.line, &what, msg),
            }
        }
        if !p.keys.iter().any(|(k, _)| *k == "cmd") {
            let msg = "no `command`: skipped (a program needs one)";
            return self.warn(file, s.line, &format!("[{}]", s.name), msg.into());
        }
        self.names.insert(p.name.clone());
        self.programs.push(p);
    }
}

/// `%(here)s` written out in a command (its relative words stay relative:
/// they are looked up in PATH or against `directory`, as supervisord).
fn path_cmd(v: &str, dir: &str) -> String {
    v.replace("%(here)s", &dir.replace('%', "%%"))
}

/// A program name we accept: other characters become `_`.
fn program_name(raw: &str) -> String {
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match name.as_str() {
        "" => "_".into(),
        "all" => "all_".into(),
        _ => name,
    }
}

/// What to do instead of a supervisord program setting we do not have.
fn instead(key: &str) -> &'static str {
    match key {
        "numprocs_start" => "processes are numbered from 0: %(process_num)d starts at 0",
        "serverurl" => "children find the daemon through TASKMASTER_SOCKET in their environment",
        "stdout_capture_maxbytes" | "stderr_capture_maxbytes" => {
            "no capture mode: `tail` keeps the last 64 KiB of each stream"
        }
        "stdout_events_enabled" | "stderr_events_enabled" => {
            "no event listeners: `tail -f NAME` follows the output"
        }
        "stdout_syslog" | "stderr_syslog" => "no syslog: write to a file with stdout/stderr",
        _ => "unknown setting: skipped",
    }
}
