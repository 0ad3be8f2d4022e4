//! The interactive shell: rustyline with emacs keys, persistent bounded
//! history, completion of live names, hints, and a daemon that may come and
//! go between commands.

use super::complete::{Helper, Names};
use super::{format, Client, EXIT_OK, EXIT_USAGE};
use crate::protocol;
use crate::{say, tell};
use rustyline::config::{CompletionType, Config, EditMode};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::Editor;
use rustyline::{Cmd, ConditionalEventHandler, Event, EventContext, EventHandler, KeyEvent};
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Entries kept in the history file.
pub const HISTORY_MAX: usize = 1000;

/// `$XDG_STATE_HOME/taskmaster/history`, else `~/.local/state/taskmaster/history`.
/// A relative XDG_STATE_HOME is ignored, as the XDG spec says.
pub fn history_file(xdg_state: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let base = match xdg_state.map(PathBuf::from) {
        Some(x) if x.is_absolute() => x,
        _ => PathBuf::from(home.filter(|h| !h.is_empty())?).join(".local/state"),
    };
    Some(base.join("taskmaster").join("history"))
}

/// `taskmaster(~/run/tm.sock)> `: which daemon this shell talks to.
pub fn prompt(socket: &Path, home: Option<&Path>) -> String {
    let home = home.filter(|h| h.parent().is_some());
    let shown = match home.and_then(|h| socket.strip_prefix(h).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => socket.display().to_string(),
    };
    format!("taskmaster({shown})> ")
}

/// Runs one command line, prints its reply, returns its exit code.
pub fn run_line(client: &mut Client, line: &str, colour: bool) -> i32 {
    let mut words = line.split_whitespace();
    if words.next() == Some("help") {
        // Answered here: help works even when the daemon is down.
        let topic: Vec<&str> = words.collect();
        return match protocol::help(topic.first().copied()) {
            Ok(body) if topic.len() <= 1 => {
                body.iter().for_each(|l| say!("{l}"));
                EXIT_OK
            }
            Ok(_) => {
                tell!("ERR usage: help [COMMAND]");
                super::EXIT_ERR
            }
            Err(e) => {
                tell!("ERR {e}");
                super::EXIT_ERR
            }
        };
    }
    let reply = match protocol::parse(line) {
        Ok(Some(protocol::Request::Attach { name, size })) => return client.attach(&name, size),
        Ok(Some(protocol::Request::Tail { follow: true, .. })) => {
            client.follow(line, &mut std::io::stdout())
        }
        _ => client.request(line),
    };
    match reply {
        Ok(reply) => {
            for l in format::body(line, &reply.body, colour) {
                say!("{l}");
            }
            if reply.body.is_empty() && reply.error.is_none() {
                if let Some(l) = format::silent_ok(line) {
                    say!("{l}");
                }
            }
            if let Some(e) = &reply.error {
                tell!("ERR {e}");
            }
            super::exit_code(line, &reply)
        }
        Err(e) => {
            tell!("taskmasterctl: {e}");
            EXIT_USAGE
        }
    }
}

fn fetch_names(client: &mut Client) -> Result<Names, String> {
    let reply = client.request("status")?;
    Ok(Names::from_status(&reply.body))
}

fn save(rl: &mut Editor<Helper, FileHistory>, path: &Path) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir);
    }
    // Saved after every command: a killed shell loses nothing.
    let _ = rl.save_history(path);
}

fn confirm(rl: &mut Editor<Helper, FileHistory>, question: &str) -> bool {
    match rl.readline(question) {
        Ok(answer) => matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"),
        Err(_) => false,
    }
}

/// Ctrl-C at the prompt. rustyline's own Ctrl-C (Interrupt) leaves the grey
/// hint on the abandoned line, where it reads as typed text; only accepting
/// a line redraws it without its hint. So while a hint shows, Ctrl-C accepts
/// the line and marks it abandoned, and the shell drops it unrun.
struct CtrlC(Arc<AtomicBool>);

impl ConditionalEventHandler for CtrlC {
    fn handle(&self, _: &Event, _: u16, _: bool, ctx: &EventContext) -> Option<Cmd> {
        if !ctx.has_hint() {
            return None; // rustyline's Interrupt
        }
        self.0.store(true, Ordering::Relaxed);
        Some(Cmd::AcceptLine)
    }
}

/// The shell; returns taskmasterctl's exit code.
pub fn run(client: &mut Client, colour: bool) -> i32 {
    let config = Config::builder()
        .edit_mode(EditMode::Emacs)
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .history_ignore_space(true);
    let config = match config
        .history_ignore_dups(true)
        .and_then(|c| c.max_history_size(HISTORY_MAX))
    {
        Ok(c) => c.build(),
        Err(e) => {
            tell!("taskmasterctl: {e}");
            return EXIT_USAGE;
        }
    };
    let mut rl: Editor<Helper, FileHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            tell!("taskmasterctl: cannot open the terminal: {e}");
            return EXIT_USAGE;
        }
    };
    // Ctrl-C while a reply is awaited (the terminal is cooked then) abandons
    // the wait instead of killing the shell; at the prompt rustyline reads it.
    let interrupted = Arc::new(AtomicBool::new(false));
    if signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted.clone()).is_ok() {
        client.interruptible(interrupted);
    }
    let names = fetch_names(client).unwrap_or_else(|e| {
        tell!("taskmasterctl: {e}");
        Names::default()
    });
    rl.set_helper(Some(Helper { names, colour }));
    let abandon = Arc::new(AtomicBool::new(false));
    rl.bind_sequence(
        KeyEvent::ctrl('C'),
        EventHandler::Conditional(Box::new(CtrlC(abandon.clone()))),
    );
    let history = history_file(std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let prompt = prompt(client.path(), home.as_deref());
    loop {
        let line = match rl.readline(&prompt) {
            // Ctrl-C while a hint showed: the line came back only so that
            // rustyline would redraw it without the hint (see `CtrlC`).
            Ok(_) if abandon.swap(false, Ordering::Relaxed) => continue,
            Ok(line) => line,
            // Ctrl-C: rustyline already dropped the line; start a fresh one.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return EXIT_OK,
            Err(e) => {
                tell!("taskmasterctl: {e}");
                return EXIT_USAGE;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        // Untrimmed: a line typed with a leading space stays out of history.
        let _ = rl.add_history_entry(line.trim_end());
        let line = line.trim();
        if let Some(h) = &history {
            save(&mut rl, h);
        }
        match line.split_whitespace().next() {
            Some("quit" | "exit") => return EXIT_OK,
            Some("shutdown")
                if !confirm(
                    &mut rl,
                    "Stop every process and shut taskmasterd down? [y/N] ",
                ) =>
            {
                say!("not shutting down");
                continue;
            }
            _ => {}
        }
        run_line(client, line, colour);
        // Names change with reloads and restarts: refresh after each command.
        if let (Ok(names), Some(h)) = (fetch_names(client), rl.helper_mut()) {
            h.names = names;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_location() {
        let h = |x: Option<&str>, home: Option<&str>| {
            history_file(x.map(OsString::from), home.map(OsString::from))
        };
        assert_eq!(
            h(Some("/s"), Some("/home/u")),
            Some(PathBuf::from("/s/taskmaster/history"))
        );
        assert_eq!(
            h(None, Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/taskmaster/history"))
        );
        assert_eq!(
            h(Some("rel"), Some("/home/u")),
            Some(PathBuf::from("/home/u/.local/state/taskmaster/history"))
        );
        assert_eq!(h(None, None), None);
        assert_eq!(h(Some(""), Some("")), None);
    }

    #[test]
    fn prompt_names_the_socket() {
        let home = Path::new("/home/u");
        assert_eq!(
            prompt(Path::new("/home/u/run/tm.sock"), Some(home)),
            "taskmaster(~/run/tm.sock)> "
        );
        assert_eq!(
            prompt(Path::new("/tmp/t.sock"), Some(home)),
            "taskmaster(/tmp/t.sock)> "
        );
        assert_eq!(
            prompt(Path::new("/tmp/t.sock"), None),
            "taskmaster(/tmp/t.sock)> "
        );
        let root = Some(Path::new("/"));
        assert_eq!(prompt(Path::new("/t.sock"), root), "taskmaster(/t.sock)> ");
    }
}
