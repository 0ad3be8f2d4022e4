//! Signal names: the config accepts `TERM`, `SIGTERM`, `term` or `15`; the protocol
//! and the log always print the `SIGTERM` form.

use nix::sys::signal::Signal;

/// Parses a signal given by name (any case, with or without `SIG`) or number.
pub fn parse(text: &str) -> Option<Signal> {
    let t = text.trim();
    if let Ok(n) = t.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let upper = t.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    // Aliases nix does not spell the same way.
    let full = match full.as_str() {
        "SIGPOLL" => "SIGIO".to_string(),
        "SIGIOT" => "SIGABRT".to_string(),
        "SIGCLD" => "SIGCHLD".to_string(),
        _ => full,
    };
    Signal::iterator().find(|s| s.as_str() == full)
}

/// `SIGTERM` for 15; a number for anything nix does not know (real-time signals).
pub fn name(sig: i32) -> String {
    match Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        for t in ["TERM", "SIGTERM", "term", "SigTerm", "15", " TERM "] {
            assert_eq!(parse(t), Some(Signal::SIGTERM), "{t}");
        }
        assert_eq!(parse("USR1"), Some(Signal::SIGUSR1));
        assert_eq!(parse("poll"), Some(Signal::SIGIO));
        assert_eq!(parse("NOPE"), None);
        assert_eq!(parse("0"), None);
        assert_eq!(parse("99"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn names() {
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(40), "signal 40");
    }
}
