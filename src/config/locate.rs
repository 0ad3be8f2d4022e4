//! Finds the source line of a key path (`programs.web.umask`) in the YAML text.
//!
//! serde_yaml's `Value` carries no positions, so after a successful syntax parse we
//! walk the text itself: a block mapping key sits on its own line, indented more
//! than its parent. When a key cannot be found (flow style, anchors) the nearest
//! found ancestor's line is used, so every error still points somewhere useful.
//!
//! The lines are indexed once (each keyed line under its parent line), so a lookup
//! costs one hash probe per path component: with one lookup per key of every
//! program, scanning the lines instead made loading quadratic in the file size.

use std::collections::HashMap;

/// One non-blank, non-comment line: 1-based number, indentation, key (if any) and
/// the raw text after the colon.
struct Line<'a> {
    number: usize,
    indent: usize,
    key: Option<&'a str>,
    rest: &'a str,
    /// Index of the line it sits under, or ROOT.
    parent: usize,
}

/// Parent of the top-level lines in the index.
const ROOT: usize = usize::MAX;

pub struct Locator<'a> {
    lines: Vec<Line<'a>>,
    /// (parent line index or ROOT, key) → index of the first line with that key
    /// among the parent's children.
    children: HashMap<(usize, &'a str), usize>,
}

impl<'a> Locator<'a> {
    pub fn new(text: &'a str) -> Self {
        let mut lines: Vec<Line<'a>> = text
            .lines()
            .enumerate()
            .filter_map(|(i, raw)| {
                let trimmed = raw.trim_start();
                if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                    return None;
                }
                // `- key: v` opens a mapping whose keys sit at the column after "- ".
                let dash = if trimmed.starts_with("- ") { 2 } else { 0 };
                let indent = raw.len() - trimmed.len() + dash;
                let (key, rest) = split_key(trimmed);
                Some(Line {
                    number: i + 1,
                    indent,
                    key,
                    rest,
                    parent: ROOT,
                })
            })
            .collect();
        // A line's parent is the nearest line above it that is less indented: keep
        // the chain of open ancestors on a stack (amortised O(1) per line).
        let mut children = HashMap::with_capacity(lines.len());
        let mut open: Vec<usize> = Vec::new();
        for i in 0..lines.len() {
            while open
                .last()
                .is_some_and(|&j| lines[j].indent >= lines[i].indent)
            {
                open.pop();
            }
            let parent = open.last().copied().unwrap_or(ROOT);
            lines[i].parent = parent;
            if let Some(key) = lines[i].key {
                children.entry((parent, key)).or_insert(i);
            }
            open.push(i);
        }
        Locator { lines, children }
    }

    /// Index into `lines` of `path`'s key, or of its deepest found ancestor, and
    /// whether the whole path was found.
    fn find(&self, path: &[&str]) -> (Option<usize>, bool) {
        let mut found = None;
        for key in path {
            let parent = found.unwrap_or(ROOT);
            match self.children.get(&(parent, *key)) {
                Some(&i) => found = Some(i),
                None => return (found, false),
            }
        }
        (found, true)
    }

    /// 1-based line of `path` (or of its nearest ancestor found).
    pub fn line(&self, path: &[&str]) -> Option<usize> {
        self.find(path).0.map(|i| self.lines[i].number)
    }

    /// 1-based line of the first key under `parent` that YAML does not read as
    /// a string (`~:`, `&anchor:`, `1:`, `true:`), for "expected string keys".
    pub fn odd_key_line(&self, parent: &[&str]) -> Option<usize> {
        let under = match self.find(parent) {
            (Some(i), true) => i,
            (None, true) => ROOT,
            _ => return None,
        };
        self.lines
            .iter()
            .find(|l| l.parent == under && l.key.is_some_and(not_a_string_key))
            .map(|l| l.number)
    }

    /// The scalar text written after `path`'s colon, without quotes or comment,
    /// only when `path` itself was found on a line of its own.
    pub fn raw_scalar(&self, path: &[&str]) -> Option<String> {
        let (Some(i), true) = self.find(path) else {
            return None;
        };
        let mut v = self.lines[i].rest.trim();
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

/// Whether a plain key's text would be read by YAML as something else than a
/// string: null, a boolean, a number, an anchor or tag in front of nothing, a
/// flow collection or a complex key.
fn not_a_string_key(key: &str) -> bool {
    let k = key.trim();
    k.is_empty()
        || k.starts_with(['&', '*', '!', '?', '[', '{'])
        || matches!(
            k,
            "~" | "null" | "Null" | "NULL" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE"
        )
        || k.parse::<f64>().is_ok()
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

/// The line where a second YAML document starts, if the text has one (for
/// serde_yaml's "more than one document", which comes without a position).
/// Not always a `---`: a root scalar, a comment, then a mapping is two documents
/// to libyaml. So: the shortest run of whole lines that parses as two
/// documents, found by bisection (a few parses, only on this error's path).
pub fn second_document(text: &str) -> Option<usize> {
    let ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(i, _)| i + 1)
        .chain((!text.ends_with('\n')).then_some(text.len()))
        .collect();
    // Not by counting serde_yaml's documents: its iterator can yield without
    // end on a broken text.
    let two = |lines: usize| {
        serde_yaml::from_str::<serde_yaml::Value>(&text[..ends[lines - 1]]).is_err_and(|e| {
            e.location().is_none() && e.to_string().contains("more than one document")
        })
    };
    if ends.is_empty() || !two(ends.len()) {
        return None;
    }
    // two(hi) holds, two(lo) does not (no document fits in zero lines).
    let (mut lo, mut hi) = (0, ends.len());
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if two(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Some(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# comment
socket: /tmp/s
programs:
  web:
    env:
      cmd: shadow
    cmd: \"sleep 1\"
    umask: 022   # octal
  db:
    umask: '077'
    cmd: x
";

    #[test]
    fn finds_keys_that_are_not_strings() {
        let l =
            Locator::new("# c\nsocket: /s\n&anchor: 1\nprograms:\n  web:\n    cmd: x\n    ~: 2\n");
        assert_eq!(l.odd_key_line(&[]), Some(3));
        assert_eq!(l.odd_key_line(&["programs", "web"]), Some(7));
        assert_eq!(l.odd_key_line(&["programs"]), None);
        assert_eq!(l.odd_key_line(&["nope"]), None);
        for key in ["1", "-2.5", "true", "NULL", "? x", "[a]", "!!str"] {
            assert!(not_a_string_key(key), "{key}");
        }
        for key in ["web", "a1", "truthy", "nul"] {
            assert!(!not_a_string_key(key), "{key}");
        }
    }

    #[test]
    fn finds_nested_keys() {
        let l = Locator::new(TEXT);
        assert_eq!(l.line(&["socket"]), Some(2));
        assert_eq!(l.line(&["programs", "web"]), Some(4));
        // A key of the program itself, not the same key deeper down.
        assert_eq!(l.line(&["programs", "web", "cmd"]), Some(7));
        assert_eq!(l.line(&["programs", "web", "env", "cmd"]), Some(6));
        assert_eq!(l.line(&["programs", "web", "umask"]), Some(8));
        assert_eq!(l.line(&["programs", "db", "cmd"]), Some(11));
        // Missing key: the nearest ancestor.
        assert_eq!(l.line(&["programs", "db", "nope"]), Some(9));
        assert_eq!(l.line(&["nope"]), None);
        // Siblings under a sequence item `- key:` stay siblings.
        let l = Locator::new("a:\n- b: 1\n  c: 2\n");
        assert_eq!(l.line(&["a", "c"]), Some(3));
    }

    #[test]
    fn second_documents() {
        for (text, want) in [
            ("a: 1\n", None),
            ("---\na: 1\n", None),
            ("# c\n%YAML 1.2\n---\na: 1\n...\n", None),
            ("a: 1\n---\nb: 2\n", Some(2)),
            ("--- a\n--- b\n", Some(2)),
            ("a: 1\n...\n\n# c\nb: 2\n", Some(5)),
            ("a: 1\n...\n---\n", Some(3)),
            ("a: |\n  ---x\n", None),
            ("root scalar # note\nprograms:\n  a: 1\n", Some(2)),
        ] {
            assert_eq!(second_document(text), want, "{text:?}");
        }
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
        // Only when the key itself is there, not an ancestor of the same name.
        assert_eq!(l.raw_scalar(&["programs", "db", "umask", "umask"]), None);
        let l = Locator::new("p:\n  q: {umask: 022}\n");
        assert_eq!(l.raw_scalar(&["p", "q", "umask"]), None);
    }
}
