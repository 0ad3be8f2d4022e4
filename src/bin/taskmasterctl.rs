//! taskmasterctl: one-shot commands, scripts on stdin, or an interactive shell.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use taskmaster::client::shell::{self, run_line};
use taskmaster::client::{format, Client, EXIT_OK, EXIT_USAGE};
use taskmaster::config;

const USAGE: &str = "usage: taskmasterctl [-s SOCKET | -c FILE] [COMMAND ARGS...]
  -s, --socket SOCKET  the daemon's control socket
  -c, --config FILE    read the socket path from the daemon's config file
  without COMMAND: an interactive shell, or one command per line from stdin";

fn main() {
    std::process::exit(run());
}

fn run() -> i32 {
    let mut socket: Option<PathBuf> = None;
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
                Some(f) => match config::load(f.as_ref()) {
                    Ok(c) => socket = Some(c.socket),
                    Err(errors) => {
                        for e in errors {
                            eprintln!("{e}");
                        }
                        return EXIT_USAGE;
                    }
                },
                None => return usage("-c needs a FILE"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return EXIT_OK;
            }
            s if s.starts_with('-') => return usage(&format!("unknown option {s}")),
            _ => words.push(a),
        }
    }
    let mut client = Client::new(&socket.unwrap_or_else(config::default_socket));
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
    eprintln!("taskmasterctl: {msg}\n{USAGE}");
    EXIT_USAGE
}
