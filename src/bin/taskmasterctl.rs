//! taskmasterctl: one-shot commands, scripts on stdin, or an interactive shell.

use rustyline::error::ReadlineError;
use rustyline::DefaultEditor;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use taskmaster::client::{self, Client, EXIT_OK, EXIT_USAGE};
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
    if !words.is_empty() {
        return one(&mut client, &words.join(" "));
    }
    if std::io::stdin().is_terminal() {
        return shell(&mut client);
    }
    let mut worst = EXIT_OK;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line.trim().is_empty() {
            continue;
        }
        worst = worst.max(one(&mut client, line.trim()));
    }
    worst
}

fn usage(msg: &str) -> i32 {
    eprintln!("taskmasterctl: {msg}\n{USAGE}");
    EXIT_USAGE
}

/// Runs one command, prints its reply, returns its exit code.
fn one(client: &mut Client, line: &str) -> i32 {
    match client.request(line) {
        Ok(reply) => {
            for l in &reply.body {
                println!("{l}");
            }
            if let Some(e) = &reply.error {
                eprintln!("ERR {e}");
            }
            client::exit_code(line, &reply)
        }
        Err(e) => {
            eprintln!("taskmasterctl: {e}");
            EXIT_USAGE
        }
    }
}

fn shell(client: &mut Client) -> i32 {
    let Ok(mut rl) = DefaultEditor::new() else {
        eprintln!("taskmasterctl: cannot open the terminal");
        return EXIT_USAGE;
    };
    let prompt = format!("taskmaster({})> ", client.path().display());
    loop {
        match rl.readline(&prompt) {
            Ok(line) => {
                let line = line.trim();
                if line.is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line);
                if matches!(line, "quit" | "exit") {
                    return EXIT_OK;
                }
                one(client, line);
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => return EXIT_OK,
        }
    }
}
