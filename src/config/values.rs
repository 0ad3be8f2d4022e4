//! Scalar values of the config: strings, paths, numbers, sizes, booleans,
//! seconds, umask, restart policy, exit codes, signals, env, addresses —
//! each checked, with its error naming the key.

use super::*;

impl Ctx<'_> {
    pub(super) fn string(&mut self, path: &[&str], v: &Value, what: &str) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.err(path, format!("expected {what}, got {}", show(v)));
                None
            }
        }
    }

    /// A scalar as the user typed it: YAML numbers keep their spelling (`1.50`, `077`).
    pub(super) fn scalar_text(&mut self, path: &[&str], v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(self.loc.raw_scalar(path).unwrap_or_else(|| n.to_string())),
            _ => None,
        }
    }

    pub(super) fn path(&mut self, path: &[&str], v: &Value) -> Option<PathBuf> {
        self.path_text(path, v).map(|s| self.dir.join(s))
    }

    /// A path as written (before expansion and joining).
    pub(super) fn path_text(&mut self, path: &[&str], v: &Value) -> Option<String> {
        let s = self.string(path, v, "a path")?;
        if s.is_empty() || s.contains('\0') {
            self.err(path, "expected a non-empty path");
            return None;
        }
        Some(s)
    }

    pub(super) fn uint(&mut self, path: &[&str], v: &Value, min: u64, max: u64) -> Option<u64> {
        match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.err(
                    path,
                    format!("expected an integer from {min} to {max}, got {}", show(v)),
                );
                None
            }
        }
    }

    /// A byte size: an integer, or a string with a KB/MB/GB suffix.
    pub(super) fn size(&mut self, path: &[&str], v: &Value) -> Option<u64> {
        let parsed = match v {
            Value::String(s) => parse_size(s),
            Value::Number(n) if n.is_u64() => parse_size(&n.to_string()),
            _ => Err(format!("{SIZE}, got {}", show(v))),
        };
        parsed.map_err(|e| self.err(path, e)).ok()
    }

    /// How many rotated files to keep.
    pub(super) fn backups(&mut self, path: &[&str], v: &Value) -> u32 {
        self.uint(path, v, 0, MAX_BACKUPS)
            .map_or(DEFAULT_BACKUPS, |n| n as u32)
    }

    pub(super) fn boolean(&mut self, path: &[&str], v: &Value) -> Option<bool> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                self.err(path, format!("expected true or false, got {}", show(v)));
                None
            }
        }
    }

    pub(super) fn seconds(&mut self, path: &[&str], v: &Value) -> Option<Duration> {
        match v.as_f64() {
            Some(s) if (0.0..=MAX_SECONDS).contains(&s) => Some(Duration::from_secs_f64(s)),
            _ => {
                self.err(
                    path,
                    format!(
                        "expected seconds, a number from 0 to {MAX_SECONDS}, got {}",
                        show(v)
                    ),
                );
                None
            }
        }
    }

    pub(super) fn umask(&mut self, path: &[&str], v: &Value) -> Option<u32> {
        let text = self.scalar_text(path, v).unwrap_or_default();
        let digits = text.strip_prefix("0o").unwrap_or(&text);
        let ok =
            (1..=4).contains(&digits.len()) && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
        match u32::from_str_radix(digits, 8) {
            Ok(m) if ok && m <= 0o777 => Some(m),
            _ => {
                self.err(
                    path,
                    format!(
                        "expected an octal umask such as 022 or 077, got {}",
                        show(v)
                    ),
                );
                None
            }
        }
    }

    pub(super) fn autorestart(&mut self, path: &[&str], v: &Value) -> AutoRestart {
        match v {
            Value::Bool(true) => AutoRestart::Always,
            Value::Bool(false) => AutoRestart::Never,
            Value::String(s) if s == "always" => AutoRestart::Always,
            Value::String(s) if s == "never" => AutoRestart::Never,
            Value::String(s) if s == "unexpected" => AutoRestart::Unexpected,
            _ => {
                self.err(
                    path,
                    format!("expected always, never or unexpected, got {}", show(v)),
                );
                AutoRestart::Unexpected
            }
        }
    }

    pub(super) fn exitcodes(&mut self, path: &[&str], v: &Value) -> Vec<i32> {
        let items: Vec<&Value> = match v {
            Value::Sequence(s) => s.iter().collect(),
            other => vec![other],
        };
        let mut codes = Vec::new();
        for item in items {
            match item.as_u64() {
                Some(n) if n <= 255 => codes.push(n as i32),
                _ => self.err(
                    path,
                    format!(
                        "expected exit codes from 0 to 255 (one or a list), got {}",
                        show(item)
                    ),
                ),
            }
        }
        codes
    }

    pub(super) fn signal(&mut self, path: &[&str], v: &Value) -> Option<i32> {
        let parsed = self
            .scalar_text(path, v)
            .and_then(|t| crate::signals::parse(&t));
        if parsed.is_none() {
            self.err(
                path,
                format!(
                    "expected a signal name such as TERM, SIGUSR1 or a number, got {}",
                    show(v)
                ),
            );
        }
        parsed.map(|s| s as i32)
    }

    pub(super) fn env(&mut self, path: &[&str], v: &Value) -> Vec<(String, String)> {
        let Value::Mapping(map) = v else {
            self.err(
                path,
                format!("expected a mapping of VARIABLE: value, got {}", show(v)),
            );
            return Vec::new();
        };
        let mut vars = Vec::new();
        for (k, val) in map {
            let Some(key) = self.key(path, k) else {
                continue;
            };
            let full: Vec<&str> = path.iter().copied().chain([key]).collect();
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                self.err(&full, "invalid variable name (empty, or contains `=`)");
                continue;
            }
            match self.scalar_text(&full, val) {
                Some(text) if !text.contains('\0') => vars.push((key.to_string(), text)),
                _ => self.err(
                    &full,
                    format!("expected a string, number or boolean, got {}", show(val)),
                ),
            }
        }
        vars
    }

    pub(super) fn address(&mut self, path: &[&str], v: &Value) -> Option<SocketAddr> {
        let s = self.string(path, v, "an address HOST:PORT")?;
        parse_address(&s).map_err(|e| self.err(path, e)).ok()
    }
}
