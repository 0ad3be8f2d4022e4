//! How taskmasterctl shows a reply: `status` states in colour on a terminal,
//! plain text everywhere else (pipes, files, `NO_COLOR`).

/// Colours are for people: only on a terminal, and never when `NO_COLOR` is
/// set to anything non-empty (no-color.org).
pub fn use_colour(is_tty: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_tty && no_color.is_none_or(|v| v.is_empty())
}

/// The SGR code of a state, if it gets one.
fn state_colour(state: &str) -> Option<&'static str> {
    Some(match state {
        "RUNNING" => "32",                         // green
        "STARTING" | "STOPPING" => "36",           // cyan: on its way
        "BACKOFF" => "33",                         // yellow: retrying
        "FATAL" | "EXITED_UNEXPECTEDLY" => "1;31", // bold red: needs a human
        "STOPPED" | "EXITED_EXPECTEDLY" | "NOT_STARTED" => "2",
        _ => return None,
    })
}

/// One body line of a human `status` reply with its state coloured. The
/// padding stays outside the escapes, so columns stay aligned.
pub fn colour_status_line(line: &str) -> String {
    let name_end = line.find(' ').unwrap_or(line.len());
    let state_start = line[name_end..]
        .find(|c| c != ' ')
        .map_or(line.len(), |i| name_end + i);
    let state_end = line[state_start..]
        .find(' ')
        .map_or(line.len(), |i| state_start + i);
    match state_colour(&line[state_start..state_end]) {
        Some(sgr) => format!(
            "{}\x1b[{sgr}m{}\x1b[0m{}",
            &line[..state_start],
            &line[state_start..state_end],
            &line[state_end..]
        ),
        None => line.to_string(),
    }
}

/// The body lines of the reply to `command`, ready to print.
pub fn body(command: &str, body: &[String], colour: bool) -> Vec<String> {
    let mut words = command.split_whitespace();
    let human_status = words.next() == Some("status") && !words.any(|w| w == "--json");
    if colour && human_status {
        body.iter().map(|l| colour_status_line(l)).collect()
    } else {
        body.to_vec()
    }
}

/// What to print for an `OK` with no body to `command`, where silence would
/// leave a person wondering whether anything happened. The protocol reply
/// itself stays a bare `OK`.
pub fn silent_ok(command: &str) -> Option<&'static str> {
    match command.split_whitespace().next()? {
        "shutdown" => Some("taskmasterd shut down: every process stopped"),
        "reload" => Some("no changes"),
        "reopen" => Some("reopened the event log and every output file"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_for_silent_successes() {
        assert!(silent_ok("shutdown").is_some_and(|l| l.contains("shut down")));
        assert_eq!(silent_ok("reload"), Some("no changes"));
        assert_eq!(silent_ok("reload --dry-run"), Some("no changes"));
        assert!(silent_ok("reopen").is_some());
        for quiet in ["start web", "status", "", "auth x", "quit"] {
            assert_eq!(silent_ok(quiet), None, "{quiet}");
        }
    }
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
    }

    #[test]
    fn state_word_is_coloured_and_columns_keep_their_width() {
        let line = "web:0  RUNNING              pid 12, uptime 1:02:03";
        let c = colour_status_line(line);
        assert_eq!(
            c,
            "web:0  \x1b[32mRUNNING\x1b[0m              pid 12, uptime 1:02:03"
        );
        let visible = c.replace("\x1b[32m", "").replace("\x1b[0m", "");
        assert_eq!(visible, line);
        assert_eq!(
            colour_status_line("a:0  FATAL  spawn failed: x"),
            "a:0  \x1b[1;31mFATAL\x1b[0m  spawn failed: x"
        );
        assert_eq!(
            colour_status_line("a:0  STOPPED"),
            "a:0  \x1b[2mSTOPPED\x1b[0m"
        );
    }

    #[test]
    fn odd_lines_are_left_alone() {
        for l in ["", "a:0", "a:0  WEIRD  x", "   "] {
            assert_eq!(colour_status_line(l), l);
        }
    }

    #[test]
    fn only_human_status_is_coloured() {
        let b = vec!["a:0  BACKOFF  exit status 1".to_string()];
        assert!(body("status", &b, true)[0].contains("\x1b[33m"));
        assert!(body("status a", &b, true)[0].contains("\x1b[33m"));
        assert_eq!(body("status", &b, false), b);
        assert_eq!(body("status --json", &b, true), b);
        assert_eq!(body("stop a", &b, true), b);
    }
}
