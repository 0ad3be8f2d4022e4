//! Finds the source line of a key path (`programs.web.umask`) in the YAML text.
//!
//! serde_yaml's `Value` carries no positions, so after a successful syntax parse we
//! walk the text itself: a block mapping key sits on its own line, indented more
//! than its parent. When a key cannot be found (flow style, anchors) the nearest
//! found ancestor's line is used, so every error still points somewhere useful.

/// One non-blank, non-comment line: 1-based number, indentation, key (if any) and
/// the raw text after the colon.
struct Line<'a> {
    number: usize,
    indent: usize,
    key: Option<&'a str>,
    rest: &'a str,
}

pub struct Locator<'a> {
    lines: Vec<Line<'a>>,
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str) -> Self {
        let lines = text
            .lines()
            .enumerate()
            .filter_map(|(i, raw)| {
                let trimmed = raw.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                    return None;
                }
                let indent = raw.len() - trimmed.len();
                let (key, rest) = split_key(trimmed);
                Some(Line {
                    number: i + 1,
                    indent,
                    key,
                    rest,
                })
            })
            .collect();
        Locator { lines }
    }

    /// Index into `lines` of `path`'s key, or of its deepest found ancestor.
    fn find(&self, path: &[&str]) -> Option<usize> {
        let mut found = None;
        let (mut from, mut to, mut parent_indent) = (0, self.lines.len(), None::<usize>);
        for key in path {
            let hit = (from..to).find(|&i| {
                let l = &self.lines[i];
                parent_indent.is_none_or(|p| l.indent > p) && l.key == Some(*key)
            });
            let Some(i) = hit else { break };
            found = Some(i);
            let indent = self.lines[i].indent;
            from = i + 1;
            to = (from..to)
                .find(|&j| self.lines[j].indent <= indent)
                .unwrap_or(to);
            parent_indent = Some(indent);
        }
        found
    }

    /// 1-based line of `path` (or of its nearest ancestor found).
    pub fn line(&self, path: &[&str]) -> Option<usize> {
        self.find(path).map(|i| self.lines[i].number)
    }

    /// The scalar text written after `path`'s colon, without quotes or comment,
    /// only when `path` itself was found on a line of its own.
    pub fn raw_scalar(&self, path: &[&str]) -> Option<String> {
        let i = self.find(path)?;
        let l = &self.lines[i];
        if l.key != path.last().copied() || self.line(&path[..path.len() - 1]) == Some(l.number) {
            return None;
        }
        let mut v = l.rest.trim();
        if let Some(pos) = v.find(" #") {
            v = v[..pos].trim_end();
        }
        for q in ['"', '\''] {
            if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
                v = &v[1..v.len() - 1];
            }
        }
        (!v.is_empty()).then(|| v.to_string())
    }
}

/// `key: rest` → (Some(key), rest), with the key's quotes removed.
fn split_key(line: &str) -> (Option<&str>, &str) {
    let body = line.strip_prefix("- ").unwrap_or(line);
    let (key, rest) = if let Some(q) = body.chars().next().filter(|c| *c == '"' || *c == '\'') {
        match body[1..].find(q) {
            Some(end) => (&body[1..end + 1], &body[end + 2..]),
            None => return (None, body),
        }
    } else {
        match body
            .find(": ")
            .or_else(|| body.strip_suffix(':').map(|s| s.len()))
        {
            Some(end) => (&body[..end], &body[end..]),
            None => return (None, body),
        }
    };
    match rest.trim_start().strip_prefix(':') {
        Some(rest) => (Some(key.trim_end()), rest),
        None => (None, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
socket: /tmp/s
programs:
  web:
    cmd: \"sleep 1\"
    env:
      cmd: shadow
    umask: 022   # octal
  db:
    umask: '077'
    cmd: x
";

    #[test]
    fn finds_nested_keys() {
        let l = Locator::new(TEXT);
        assert_eq!(l.line(&["socket"]), Some(2));
        assert_eq!(l.line(&["programs", "web"]), Some(4));
        assert_eq!(l.line(&["programs", "web", "cmd"]), Some(5));
        assert_eq!(l.line(&["programs", "web", "umask"]), Some(8));
        assert_eq!(l.line(&["programs", "db", "cmd"]), Some(11));
        // Missing key: the nearest ancestor.
        assert_eq!(l.line(&["programs", "db", "nope"]), Some(9));
        assert_eq!(l.line(&["nope"]), None);
    }

    #[test]
    fn raw_scalars() {
        let l = Locator::new(TEXT);
        assert_eq!(
            l.raw_scalar(&["programs", "web", "umask"]).as_deref(),
            Some("022")
        );
        assert_eq!(
            l.raw_scalar(&["programs", "db", "umask"]).as_deref(),
            Some("077")
        );
        assert_eq!(l.raw_scalar(&["programs", "db", "stoptime"]), None);
    }
}
