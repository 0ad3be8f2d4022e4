//! taskmasterctl: one-shot commands, scripts on stdin, or an interactive shell.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::time::Duration;
use taskmaster::client::shell::{self, run_line};
use taskmaster::client::{format, socket, Client, DEFAULT_TIMEOUT, EXIT_OK, EXIT_USAGE};
use taskmaster::{say, tell};

const USAGE: &str = "usage: taskmasterctl [-s SOCKET | -c FILE] [-t SECONDS] [COMMAND ARGS...]
  -s, --socket SOCKET    the daemon's control socket
  -c, --config FILE      read the socket path from the daemon's config file
                         (only its `socket` key: the rest may have errors)
                         neither: $TASKMASTER_SOCKET, else ./taskmaster.yaml's
                         socket if that file exists, else the default socket
  -t, --timeout SECONDS  give up on an unresponsive daemon after this long
                         (default 10, fractions allowed); start, stop, restart
                         and shutdown wait as long as the daemon answers checks
  tail -f NAME           follow a process's output until Ctrl-C
  attach NAME            this terminal becomes the process's; Ctrl-] detaches
  -V, --version          taskmasterctl's version (`version`: the daemon's)
  without COMMAND: an interactive shell, or one command per line from stdin";

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let mut socket: Option<PathBuf> = None;
    let mut config_file: Option<PathBuf> = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut words: Vec<String> = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if !words.is_empty() {
            words.push(a);
            continue;
        }
        match a.as_str() {
            "-s" | "--socket" => match args.next() {
                Some(s) => socket = Some(PathBuf::from(s)),
                None => return usage("-s needs a SOCKET"),
            },
            "-c" | "--config" => match args.next() {
                Some(f) => config_file = Some(PathBuf::from(f)),
                None => return usage("-c needs a FILE"),
            },
            "-t" | "--timeout" => match args.next().as_deref().map(parse_timeout) {
                Some(Ok(t)) => timeout = t,
                Some(Err(e)) => return usage(&e),
                None => return usage("-t needs SECONDS"),
            },
            "-h" | "--help" => {
                say!("{USAGE}");
                return EXIT_OK;
            }
            "-V" | "--version" => {
                say!("taskmasterctl {}", taskmaster::avail::VERSION);
                return EXIT_OK;
            }
            s if s.starts_with('-') => return usage(&format!("unknown option {s}")),
            _ => words.push(a),
        }
    }
    let found = socket::find(
        socket,
        config_file.as_deref(),
        std::env::var_os(socket::ENV),
        Path::new(socket::LOCAL_CONFIG),
    );
    let socket = match found {
        Ok(s) => s,
        Err(e) => {
            tell!("taskmasterctl: {e}");
            return EXIT_USAGE;
        }
    };
    let mut client = Client::new(&socket);
    client.set_timeout(timeout);
    let colour = format::use_colour(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    if !words.is_empty() {
        return run_line(&mut client, &words.join(" "), colour);
    }
    if std::io::stdin().is_terminal() {
        return shell::run(&mut client, colour);
    }
    let mut worst = EXIT_OK;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        worst = worst.max(run_line(&mut client, line.trim(), colour));
    }
    worst
}

fn usage(msg: &str) -> i32 {
    tell!("taskmasterctl: {msg}\n{USAGE}");
    EXIT_USAGE
}

/// Seconds, fractions allowed, from a millisecond (less rounds to no wait at
/// all) to a day (a typo must not become a wait of centuries).
fn parse_timeout(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.001..=86400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "-t expects seconds from 0.001 to 86400, got {text:?}"
        )),
    }
}
