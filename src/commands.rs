//! The commands about one process's output and signals: `tail`, `signal`,
//! `pid` (the deferred and status commands are in `control`).

use crate::output::Which;
use crate::protocol::{self, Stream};
use crate::supervisor::Supervisor;

/// `tail`: the body (dot-stuffed lines, no final line) and what to follow.
pub struct Tail {
    pub slot: usize,
    pub which: Which,
    pub body: String,
    pub follow: bool,
}

pub fn which(s: Stream) -> Which {
    match s {
        Stream::Stdout => Which::Stdout,
        Stream::Stderr => Which::Stderr,
    }
}

pub fn tail(
    sup: &mut Supervisor,
    name: &str,
    stream: Stream,
    lines: usize,
    follow: bool,
) -> Result<Tail, String> {
    let slot = sup.resolve_one(name)?;
    let which = which(stream);
    let Some(p) = sup.get_mut_for_tail(slot) else {
        return Err(format!("{name}: removed"));
    };
    let s = &mut p.out[which as usize];
    // A follower gets the line being written once it is complete.
    let text = s.ring().last_lines(lines, !follow);
    if follow {
        s.seed_partial();
    }
    let mut body = String::new();
    for l in &text {
        body.push_str(&protocol::stuff(l));
        body.push('\n');
    }
    Ok(Tail {
        slot,
        which,
        body,
        follow,
    })
}

/// `signal SIG NAMES`: to each process's group.
pub fn signal(sup: &Supervisor, sig: i32, names: &[String]) -> String {
    let slots = match sup.resolve(names) {
        Ok(s) => s,
        Err(e) => return protocol::reply(&[], Err(e)),
    };
    let signame = crate::signals::name(sig);
    let mut body = Vec::with_capacity(slots.len());
    let mut failed = 0;
    for slot in slots {
        let Some(p) = sup.get(slot) else { continue };
        match p.pid {
            Some(pid) if p.proc.state.is_alive() => {
                log::info!(
                    "{}: sending {signame} to process group {pid} (signal command)",
                    p.name
                );
                crate::reap::signal_group(p.pgid.unwrap_or(pid), sig);
                body.push(format!("{}: signalled {signame}", p.name));
            }
            _ => {
                failed += 1;
                body.push(format!("{}: not running", p.name));
            }
        }
    }
    let result = if failed == 0 {
        Ok(())
    } else {
        Err(format!("{failed} failed"))
    };
    protocol::reply(&body, result)
}

/// `pid [NAMES]`: the daemon's pid, or one `PROGRAM:N PID` line per process.
pub fn pid(sup: &Supervisor, names: &[String]) -> String {
    if names.is_empty() {
        return protocol::reply(&[std::process::id().to_string()], Ok(()));
    }
    match sup.resolve(names) {
        Ok(slots) => {
            let body: Vec<String> = slots
                .iter()
                .filter_map(|s| sup.get(*s))
                .map(|p| format!("{} {}", p.name, p.pid.unwrap_or(0)))
                .collect();
            protocol::reply(&body, Ok(()))
        }
        Err(e) => protocol::reply(&[], Err(e)),
    }
}
