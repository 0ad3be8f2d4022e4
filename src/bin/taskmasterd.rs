//! taskmasterd: supervises the programs of a YAML file (see docs/architecture.md).

use std::path::PathBuf;
use std::process::ExitCode;
use taskmaster::{config, daemonize, eventlog, notify, preflight, reactor::Reactor, spawn};
use taskmaster::{say, tell};

const USAGE: &str = "usage: taskmasterd [-c FILE] [--check] [-d] [--pidfile PATH] [--no-pidfd]
       taskmasterd --version
  -c, --config FILE  the configuration (default: taskmaster.yaml)
  --check            validate FILE, print a summary, exit 0 (or every error, exit 1)
  --import FILE.conf print the YAML equivalent of a supervisord config on stdout,
                     one warning per setting without an equivalent on stderr
  -d, --daemon       detach once the socket is bound (also `daemonize: true`);
                     exits 0 once the daemon serves, or 1 with its errors
  --pidfile PATH     write the daemon's pid there once serving (also `pidfile:`)
  --no-pidfd         watch children with SIGCHLD + waitpid instead of pidfds
                     (also TASKMASTER_NO_PIDFD=1)";

struct Args {
    config: PathBuf,
    check: bool,
    no_pidfd: bool,
    daemon: bool,
    pidfile: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        config: PathBuf::from("taskmaster.yaml"),
        check: false,
        no_pidfd: std::env::var_os("TASKMASTER_NO_PIDFD").is_some_and(|v| v == "1"),
        daemon: false,
        pidfile: None,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-c" | "--config") => {
                args.config = it.next().map(PathBuf::from).ok_or("-c needs a FILE")?;
            }
            Some("--check") => args.check = true,
            Some("--import") => {
                let file = it
                    .next()
                    .map(PathBuf::from)
                    .ok_or("--import needs a FILE")?;
                std::process::exit(import(&file));
            }
            Some("--no-pidfd") => args.no_pidfd = true,
            Some("-d" | "--daemon") => args.daemon = true,
            Some("--pidfile") => {
                args.pidfile = it.next().map(PathBuf::from);
                if args
                    .pidfile
                    .as_ref()
                    .is_none_or(|p| p.as_os_str().is_empty())
                {
                    return Err("--pidfile needs a PATH".into());
                }
            }
            Some("-h" | "--help") => {
                say!("{USAGE}");
                std::process::exit(0);
            }
            Some("-V" | "--version") => {
                say!("taskmasterd {}", taskmaster::avail::VERSION);
                std::process::exit(0);
            }
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    Ok(args)
}

/// `--import FILE`: the YAML on stdout, warnings on stderr; 1 if FILE cannot be read.
fn import(file: &std::path::Path) -> i32 {
    match config::import::import(file) {
        Ok(i) => {
            use std::io::Write;
            let mut err = std::io::stderr().lock();
            for w in &i.warnings {
                let _ = writeln!(err, "warning: {w}");
            }
            // A closed stdout (`| head`) is an error to report, not a panic.
            let mut out = std::io::stdout().lock();
            match out.write_all(i.yaml.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => 0,
                Err(e) => {
                    let _ = writeln!(err, "taskmasterd: writing the YAML: {e}");
                    1
                }
            }
        }
        Err(e) => {
            tell!("taskmasterd: {e}");
            1
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            tell!("taskmasterd: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                tell!("{e}");
            }
            tell!(
                "taskmasterd: {} in {}",
                preflight::errors(config::error_count(&errors)),
                args.config.display()
            );
            return ExitCode::from(1);
        }
    };
    if args.check {
        return check(&args, &config);
    }
    let pidfile = args.pidfile.as_deref().or(config.pidfile.as_deref());
    if let Some(p) = pidfile {
        if let Err(e) = daemonize::check_pidfile(p) {
            tell!("taskmasterd: {e}");
            return ExitCode::from(1);
        }
    }
    daemonize::set_pidfile(pidfile);
    // Before any child exists: none may inherit it.
    notify::init();
    let detach = args.daemon || config.daemonize;
    if detach {
        // The launcher stays here until the daemon serves, then exits for it.
        daemonize::launch();
    }
    spawn::sanitize_daemon();
    if let Err(e) = eventlog::init(
        &config.logfile,
        config.logfile_maxbytes,
        config.logfile_backups,
    ) {
        tell!("taskmasterd: {e}");
        return ExitCode::from(1);
    }
    if let Some(note) = eventlog::set_syslog(config.syslog.as_deref()) {
        log::warn!("{note}");
    }
    if let Err(e) = taskmaster::fdlimit::ensure(config.minfds()) {
        log::error!("{e}");
        tell!("taskmasterd: {e}");
        return ExitCode::from(1);
    }
    let use_pidfd = !args.no_pidfd && taskmaster::reap::pidfd_supported();
    let reactor = Reactor::new(config, use_pidfd).and_then(|r| {
        if detach {
            daemonize::detach()?;
        }
        Ok(r)
    });
    match reactor {
        Ok(r) => {
            let code = r.run();
            daemonize::exiting();
            ExitCode::from(code as u8)
        }
        Err(e) => {
            log::error!("{e}");
            tell!("taskmasterd: {e}");
            ExitCode::from(1)
        }
    }
}

/// `--check` once the file loaded: what would stop the start (exit 1), what
/// would fail later (warnings, exit 0), then the summary.
fn check(args: &Args, config: &config::Config) -> ExitCode {
    let found = preflight::check(config);
    for w in &found.warnings {
        tell!("warning: {w}");
    }
    for e in &found.errors {
        tell!("{e}");
    }
    if !found.errors.is_empty() {
        tell!(
            "taskmasterd: {} in {}: it would not start",
            preflight::errors(found.errors.len()),
            args.config.display()
        );
        return ExitCode::from(1);
    }
    say!(
        "{}: OK, {}, {}",
        args.config.display(),
        preflight::programs(config.programs.len()),
        preflight::processes(config.process_count())
    );
    ExitCode::SUCCESS
}
