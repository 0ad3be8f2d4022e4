//! The `ready:` and `healthcheck:` keys: one check each (tcp, http, command,
//! and for readiness also notify and file), its interval and timeout, and for
//! health checks the number of consecutive failures tolerated.
//! (A child module of `fields`, so it shares its error collector.)
//!
//! The check's string is kept as written here and expanded (`%(…)`) once the
//! whole program is read (`probe_expand.rs`): `numprocs` may come after it.

use super::{parse_address, show, Ctx};
use serde_yaml::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// What one probe looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Check {
    /// A TCP connect to this address succeeds.
    Tcp(SocketAddr),
    /// `GET` answers 2xx.
    Http(HttpTarget),
    /// The command (split like `cmd`, run without a shell) exits 0.
    Command { text: String, argv: Vec<String> },
    /// The process sends `READY=1` to its `NOTIFY_SOCKET`.
    Notify,
    /// The file exists.
    File(PathBuf),
}

impl Check {
    /// The key it was written with, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Tcp(_) => "tcp",
            Check::Http(_) => "http",
            Check::Command { .. } => "command",
            Check::Notify => "notify",
            Check::File(_) => "file",
        }
    }
}

/// `http://HOST:PORT/PATH` taken apart. Only IP addresses and `localhost`:
/// resolving a name could block the loop.
#[derive(Clone, Debug, PartialEq)]
pub struct HttpTarget {
    pub address: SocketAddr,
    /// The `Host:` header, as written.
    pub host: String,
    /// The request target, starting with `/`.
    pub path: String,
}

/// A readiness probe or a health check.
#[derive(Clone, Debug, PartialEq)]
pub struct Probe {
    pub check: Check,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failures before a health check declares the process
    /// unhealthy (unused for readiness: any success counts, failures retry).
    pub retries: u32,
    /// Only when the check's string uses `%(process_num)`: its template
    /// (`check` holds process 0's value); `for_index` completes it.
    pub per_process: Option<String>,
}

/// A probe whose check string (tcp, http, command or file) is not expanded
/// yet: `probe.check` is a placeholder until `finish_probe`.
pub(super) struct RawProbe {
    pub probe: Probe,
    /// The check's key and its text as written; none for `notify`.
    pub text: Option<(&'static str, String)>,
}

/// Readiness: checked often, so a start is noticed quickly.
const READY_INTERVAL: Duration = Duration::from_millis(500);
/// Health: checked rarely, so a healthy daemon mostly sleeps.
const HEALTH_INTERVAL: Duration = Duration::from_secs(10);
const TIMEOUT: Duration = Duration::from_secs(2);
const RETRIES: u32 = 3;
/// Shortest interval or timeout: a zero would make the loop spin.
const MIN_SECONDS: f64 = 0.01;
const MAX_RETRIES: u64 = 1000;

const READY_KEYS: &str = "one of tcp, http, command, notify, file; and interval, timeout";
const HEALTH_KEYS: &str = "one of tcp, http, command; and interval, timeout, retries";

impl Ctx<'_> {
    /// `ready: {tcp|http|command|notify|file: …, interval, timeout}`.
    pub(super) fn ready(&mut self, path: &[&str], v: &Value) -> Option<RawProbe> {
        self.probe(path, v, false)
    }

    /// `healthcheck: {tcp|http|command: …, interval, timeout, retries}`.
    pub(super) fn healthcheck(&mut self, path: &[&str], v: &Value) -> Option<RawProbe> {
        self.probe(path, v, true)
    }

    fn probe(&mut self, path: &[&str], v: &Value, health: bool) -> Option<RawProbe> {
        let keys = if health { HEALTH_KEYS } else { READY_KEYS };
        let Value::Mapping(map) = v else {
            self.err(
                path,
                format!("expected a mapping with {keys}, got {}", show(v)),
            );
            return None;
        };
        let mut probe = Probe {
            check: Check::Notify,
            interval: if health {
                HEALTH_INTERVAL
            } else {
                READY_INTERVAL
            },
            timeout: TIMEOUT,
            retries: RETRIES,
            per_process: None,
        };
        let mut checks = Vec::new();
        let mut ok = true;
        for (k, v) in map {
            let Some(key) = self.key(path, k) else {
                ok = false;
                continue;
            };
            let full: Vec<&str> = path.iter().copied().chain([key]).collect();
            let check = match key {
                "tcp" => self
                    .string(&full, v, "an address HOST:PORT")
                    .map(|t| Some(("tcp", t))),
                "http" => self
                    .string(&full, v, "an http:// URL")
                    .map(|t| Some(("http", t))),
                "command" => self
                    .string(&full, v, "a command line string")
                    .map(|t| Some(("command", t))),
                "notify" | "file" if health => {
                    self.err(&full, format!("is a readiness check only; expected {keys}"));
                    ok = false;
                    continue;
                }
                "notify" => match v {
                    Value::Bool(true) => Some(None),
                    _ => {
                        self.err(&full, format!("expected true, got {}", show(v)));
                        None
                    }
                },
                "file" => self.path_text(&full, v).map(|t| Some(("file", t))),
                "interval" | "timeout" => {
                    match self.positive_seconds(&full, v) {
                        Some(d) if key == "interval" => probe.interval = d,
                        Some(d) => probe.timeout = d,
                        None => ok = false,
                    }
                    continue;
                }
                "retries" if health => {
                    match self.uint(&full, v, 1, MAX_RETRIES) {
                        Some(n) => probe.retries = n as u32,
                        None => ok = false,
                    }
                    continue;
                }
                _ => {
                    self.err(&full, format!("unknown key, expected {keys}"));
                    ok = false;
                    continue;
                }
            };
            match check {
                Some(c) => checks.push((key, c)),
                None => ok = false,
            }
        }
        let text = match checks.len() {
            1 => checks.remove(0).1,
            0 if ok => {
                self.err(path, format!("missing the check: expected {keys}"));
                return None;
            }
            0 => return None,
            _ => {
                let names: Vec<&str> = checks.iter().map(|(k, _)| *k).collect();
                self.err(
                    path,
                    format!(
                        "expected exactly one check, got {} ({})",
                        names.len(),
                        names.join(", ")
                    ),
                );
                return None;
            }
        };
        ok.then_some(RawProbe { probe, text })
    }

    fn positive_seconds(&mut self, path: &[&str], v: &Value) -> Option<Duration> {
        match v.as_f64() {
            Some(s) if (MIN_SECONDS..=super::MAX_SECONDS).contains(&s) => {
                Some(Duration::from_secs_f64(s))
            }
            _ => {
                self.err(
                    path,
                    format!(
                        "expected seconds, a number from {MIN_SECONDS} to {}, got {}",
                        super::MAX_SECONDS,
                        show(v)
                    ),
                );
                None
            }
        }
    }
}

/// `http://127.0.0.1:8080/health` → address, Host header, path.
pub fn parse_http(text: &str) -> Result<HttpTarget, String> {
    let bad = || {
        format!(
            "expected http://HOST[:PORT][/PATH] with an IP address or localhost \
             (e.g. http://127.0.0.1:8080/health), got {text:?}"
        )
    };
    let rest = text.strip_prefix("http://").ok_or_else(bad)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    // The path goes into the request line as it is: no space, control byte or
    // fragment may break the request.
    if path.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') || authority.contains('@') {
        return Err(bad());
    }
    let address = if let Ok(a) = authority.parse::<SocketAddr>() {
        a
    } else if let Ok(ip) = authority.trim_matches(['[', ']']).parse::<IpAddr>() {
        SocketAddr::new(ip, 80)
    } else if authority == "localhost" {
        SocketAddr::from((Ipv4Addr::LOCALHOST, 80))
    } else {
        parse_address(authority).map_err(|_| bad())?
    };
    Ok(HttpTarget {
        address,
        host: authority.to_string(),
        path: path.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use std::path::Path;

    fn program(extra: &str) -> Result<crate::config::Program, Vec<String>> {
        let text = format!("programs:\n  p:\n    cmd: sleep 1\n{extra}");
        match parse(Path::new("/etc/tm/t.yaml"), &text) {
            Ok(mut c) => Ok(std::rc::Rc::unwrap_or_clone(c.programs.remove(0))),
            Err(e) => Err(e.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn defaults_and_each_kind() {
        let p = program("    ready: {tcp: \"127.0.0.1:5432\"}\n").unwrap();
        let r = p.rare.ready.clone().unwrap();
        assert_eq!(r.check, Check::Tcp("127.0.0.1:5432".parse().unwrap()));
        assert_eq!(r.interval, Duration::from_millis(500));
        assert_eq!(r.timeout, Duration::from_secs(2));
        let p = program("    healthcheck:\n      command: \"pg_isready -q\"\n").unwrap();
        let h = p.rare.healthcheck.clone().unwrap();
        assert_eq!(
            h.check,
            Check::Command {
                text: "pg_isready -q".into(),
                argv: vec!["pg_isready".into(), "-q".into()]
            }
        );
        assert_eq!(
            (h.interval, h.timeout, h.retries),
            (Duration::from_secs(10), Duration::from_secs(2), 3)
        );
        let p = program("    ready: {notify: true, interval: 0.2, timeout: 1}\n").unwrap();
        assert_eq!(p.rare.ready.clone().unwrap().check, Check::Notify);
        let p = program("    ready: {file: run/ready}\n").unwrap();
        assert_eq!(
            p.rare.ready.clone().unwrap().check,
            Check::File("/etc/tm/run/ready".into())
        );
        let p = program("    healthcheck: {http: \"http://localhost:8080/h?x=1\", retries: 5}\n")
            .unwrap();
        let h = p.rare.healthcheck.clone().unwrap();
        assert_eq!(h.retries, 5);
        assert_eq!(
            h.check,
            Check::Http(HttpTarget {
                address: "127.0.0.1:8080".parse().unwrap(),
                host: "localhost:8080".into(),
                path: "/h?x=1".into()
            })
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "    ready: {}\n",
                "/etc/tm/t.yaml:4: programs.p.ready: missing the check",
            ),
            (
                "    ready:\n      tcp: \"127.0.0.1:1\"\n      file: /x\n",
                "/etc/tm/t.yaml:4: programs.p.ready: expected exactly one check, got 2 (tcp, file)",
            ),
            (
                "    healthcheck:\n      notify: true\n",
                "/etc/tm/t.yaml:5: programs.p.healthcheck.notify: is a readiness check only",
            ),
            (
                "    ready:\n      file: /x\n      retries: 3\n",
                "/etc/tm/t.yaml:6: programs.p.ready.retries: unknown key",
            ),
            (
                "    ready:\n      notify: false\n",
                "/etc/tm/t.yaml:5: programs.p.ready.notify: expected true",
            ),
            (
                "    ready:\n      tcp: db:5432\n",
                "/etc/tm/t.yaml:5: programs.p.ready.tcp: expected HOST:PORT",
            ),
            (
                "    ready:\n      http: https://x/\n",
                "/etc/tm/t.yaml:5: programs.p.ready.http: expected http://HOST",
            ),
            (
                "    ready:\n      file: /x\n      interval: 0\n",
                "/etc/tm/t.yaml:6: programs.p.ready.interval: expected seconds",
            ),
            (
                "    healthcheck:\n      tcp: \"127.0.0.1:1\"\n      retries: 0\n",
                "/etc/tm/t.yaml:6: programs.p.healthcheck.retries: expected an integer from 1",
            ),
            (
                "    ready: 3\n",
                "/etc/tm/t.yaml:4: programs.p.ready: expected a mapping",
            ),
        ];
        for (yaml, want) in cases {
            let errors = program(yaml).expect_err(yaml);
            assert!(
                errors.iter().any(|e| e.starts_with(want)),
                "{yaml}: {errors:?}"
            );
        }
    }

    #[test]
    fn http_urls() {
        let t = parse_http("http://127.0.0.1").unwrap();
        assert_eq!((t.address.port(), t.path.as_str()), (80, "/"));
        let t = parse_http("http://[::1]:9/x").unwrap();
        assert_eq!(t.address, "[::1]:9".parse().unwrap());
        for bad in [
            "http://example.com/",
            "http://127.0.0.1:99999/",
            "http://u@127.0.0.1/",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/a\r\nX: y",
            "ftp://127.0.0.1/",
            "",
        ] {
            assert!(parse_http(bad).is_err(), "{bad}");
        }
    }
}
