//! `status` views: one process as `status` shows it, the aligned human
//! lines and the JSON form (`status --json`), written into one buffer.

use super::stuff;
use crate::state::{Exit, State};
use serde::Serialize;
use std::borrow::Cow;
use std::time::Duration;

/// What `status` shows of one process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessView {
    pub name: String,
    pub program: String,
    pub index: u32,
    pub state: State,
    pub pid: Option<i32>,
    pub uptime: Option<Duration>,
    pub last_exit: Option<Exit>,
    pub restarts: u32,
    pub message: String,
    /// Memory and CPU of its process group (`status --json` only).
    pub usage: Option<crate::procscan::Usage>,
    /// (consecutive failed health checks, retries) while a health check runs.
    pub health: Option<(u32, u32)>,
}

impl ProcessView {
    /// The human detail column, with `unhealthy (N/R)` while failures accumulate.
    pub fn detail(&self) -> String {
        let mut out = String::new();
        self.write_detail(&mut out);
        out
    }

    /// The detail column appended to `out`: `status` of a thousand processes
    /// writes every line into one buffer instead of a string per piece.
    pub fn write_detail(&self, out: &mut String) {
        use std::fmt::Write;
        match (self.pid, self.uptime) {
            // A live process shows its pid, not the text of its previous exit.
            (Some(pid), Some(up)) => {
                out.push_str("pid ");
                if pid < 0 {
                    out.push('-');
                }
                push_int(out, pid.unsigned_abs().into());
                out.push_str(", uptime ");
                write_hms(out, up);
                if !self.message.is_empty()
                    && !matches!(self.state, State::Starting | State::Running)
                {
                    out.push_str(", ");
                    out.push_str(&self.message);
                }
            }
            _ if !self.message.is_empty() => out.push_str(&self.message),
            _ => match (self.state, self.last_exit) {
                (State::NotStarted, _) => out.push_str("not started"),
                (_, Some(e)) => out.push_str(&e.describe()),
                _ => {}
            },
        }
        if let Some((n, retries)) = self.health.filter(|(n, _)| *n > 0) {
            let _ = write!(out, ", unhealthy ({n}/{retries})");
        }
    }
}

/// `H:MM:SS`.
pub fn hms(d: Duration) -> String {
    let mut out = String::new();
    write_hms(&mut out, d);
    out
}

/// `H:MM:SS` appended to `out`. By hand, like `push_int` and the padding of
/// `write_status_line`: `core::fmt`'s machinery (a `Formatter` per argument,
/// one `write_char` per padding space) was most of the daemon's CPU for a
/// `status` of 1000 processes (docs/benchmarks.md).
fn write_hms(out: &mut String, d: Duration) {
    let s = d.as_secs();
    push_int(out, s / 3600);
    for part in [s / 60 % 60, s % 60] {
        out.push(':');
        out.push(char::from(b'0' + (part / 10) as u8));
        out.push(char::from(b'0' + (part % 10) as u8));
    }
}

/// `v` in decimal, as `{}` writes it.
fn push_int(out: &mut String, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    for &d in &digits[i..] {
        out.push(char::from(d));
    }
}

/// `s` then spaces up to `width` characters, as `{:width$}` writes it.
fn push_padded(out: &mut String, s: &str, width: usize) {
    const SPACES: &str = "                                                                ";
    out.push_str(s);
    let chars = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    let mut pad = width.saturating_sub(chars);
    while pad > 0 {
        let n = pad.min(SPACES.len());
        out.push_str(&SPACES[..n]);
        pad -= n;
    }
}

/// Aligned `name state detail` lines, no header.
pub fn status_lines(procs: &[ProcessView]) -> Vec<String> {
    let width = procs.iter().map(|p| p.name.len()).max().unwrap_or(0);
    procs.iter().map(|p| status_line(p, width)).collect()
}

/// One `status` line with the name column `width` wide.
pub fn status_line(p: &ProcessView, width: usize) -> String {
    let mut out = String::new();
    write_status_line(&mut out, p, width);
    out
}

/// One `status` line appended to `out`, without its `\n`.
pub fn write_status_line(out: &mut String, p: &ProcessView, width: usize) {
    let start = out.len();
    push_padded(out, &p.name, width);
    out.push_str("  ");
    push_padded(out, p.state.token(), 19);
    out.push_str("  ");
    p.write_detail(out);
    let end = out[start..].trim_end().len();
    out.truncate(start + end);
}

/// `stuff` for the line that starts at `start` in `out` and runs to its end.
pub fn stuff_tail(out: &mut String, start: usize) {
    if matches!(stuff(&out[start..]), Cow::Owned(_)) {
        out.insert(start, '.');
    }
}

/// One `status --json` object, field for field as the contract lists them.
#[derive(Serialize)]
struct StatusItem<'a> {
    name: &'a str,
    program: &'a str,
    index: u32,
    state: &'static str,
    pid: Option<i32>,
    uptime_s: Option<u64>,
    exit_code: Option<i32>,
    signal: Option<String>,
    restarts: u32,
    message: String,
    rss_kb: Option<u64>,
    cpu_s: Option<f64>,
    /// null without a running health check.
    healthy: Option<bool>,
}

/// The one-line JSON array of `status --json`.
pub fn status_json(procs: &[ProcessView]) -> String {
    let mut out = String::from("[");
    for (i, p) in procs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&status_json_item(p));
    }
    out.push(']');
    out
}

/// One element of the `status --json` array (an object, one line), so a big
/// reply can be sent object by object.
pub fn status_json_item(p: &ProcessView) -> String {
    let (exit_code, signal) = match p.last_exit {
        Some(Exit::Code(c)) => (Some(c), None),
        Some(Exit::Signal(s)) => (None, Some(crate::signals::name(s))),
        None => (None, None),
    };
    let item = StatusItem {
        name: &p.name,
        program: &p.program,
        index: p.index,
        state: p.state.token(),
        pid: p.pid,
        uptime_s: p.uptime.map(|u| u.as_secs()),
        exit_code,
        signal,
        restarts: p.restarts,
        message: p.detail(),
        rss_kb: p.usage.map(|u| u.rss_kb()),
        cpu_s: p.usage.map(|u| u.cpu_seconds()),
        healthy: p.health.map(|(failures, _)| failures == 0),
    };
    serde_json::to_string(&item).expect(ENCODES)
}

/// A JSON string literal, escaped.
pub fn json_str(s: &str) -> String {
    serde_json::to_string(s).expect(ENCODES)
}

/// Why encoding cannot fail: serde_json fails only on map keys that are not
/// strings, or on an error raised by a hand-written `Serialize`; strings,
/// numbers and derived structs of them have neither.
const ENCODES: &str = "strings, numbers and derived structs always encode";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The line as `format!` wrote it before it was written by hand.
    fn by_format(p: &ProcessView, width: usize) -> String {
        let detail = match (p.pid, p.uptime) {
            (Some(pid), Some(up)) => {
                let s = up.as_secs();
                let mut d = format!(
                    "pid {pid}, uptime {}:{:02}:{:02}",
                    s / 3600,
                    s / 60 % 60,
                    s % 60
                );
                if !p.message.is_empty() && !matches!(p.state, State::Starting | State::Running) {
                    d = format!("{d}, {}", p.message);
                }
                if let Some((n, r)) = p.health.filter(|(n, _)| *n > 0) {
                    d = format!("{d}, unhealthy ({n}/{r})");
                }
                d
            }
            _ => p.detail(),
        };
        let line = format!("{:width$}  {:19}  {detail}", p.name, p.state.token());
        line.trim_end().to_string()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_env::cases(512)))]

        /// Byte for byte what `format!` wrote: any name (multi-byte ones are
        /// padded by characters, as `{:width$}` does), any pid, any uptime.
        #[test]
        fn hand_written_line_is_what_format_wrote(
            name in "\\PC{0,12}|[a-z:0-9_]{0,70}",
            width in 0usize..90,
            state in 0usize..9,
            pid in proptest::option::of(any::<i32>()),
            up in proptest::option::of(prop_oneof![0u64..400_000, any::<u64>()]),
            message in "|[ a-z()]{0,20}",
            health in proptest::option::of((0u32..5, 0u32..5)),
        ) {
            let p = ProcessView {
                name,
                state: State::ALL[state],
                pid,
                uptime: up.map(Duration::from_secs),
                message,
                health,
                ..Default::default()
            };
            let mut out = String::from("before\n");
            write_status_line(&mut out, &p, width);
            prop_assert_eq!(&out["before\n".len()..], by_format(&p, width));
        }
    }

    #[test]
    fn hms_edges() {
        let up = |s| hms(Duration::from_secs(s));
        assert_eq!(up(0), "0:00:00");
        assert_eq!(up(59), "0:00:59");
        assert_eq!(up(3599), "0:59:59");
        assert_eq!(up(360_000), "100:00:00");
        let max = u64::MAX;
        assert_eq!(
            up(max),
            format!("{}:{:02}:{:02}", max / 3600, max / 60 % 60, max % 60)
        );
    }
}
