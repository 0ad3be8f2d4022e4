//! A reader for supervisord's INI files, for `taskmasterd --import`:
//! `[section]` headers, `key = value` (or `key: value`), whole-line comments
//! starting with `;` or `#`, an inline comment after ` ;`, and continuation
//! lines (indented lines add to the value before them, as `environment=` lists
//! often do). Also the `environment=` value syntax: `A="x,y",B='z',C=plain`.

use std::collections::HashMap;

/// One `key = value` line, with where it was.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// One `[name]` and its entries.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub name: String,
    pub line: usize,
    pub entries: Vec<Entry>,
}

impl Section {
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// The sections of `text`, and a warning (with its line) for each line that
/// is neither a section, an entry, a continuation nor a comment.
pub fn parse(text: &str) -> (Vec<Section>, Vec<(usize, String)>) {
    let mut sections: Vec<Section> = Vec::new();
    let mut problems = Vec::new();
    // Where each key of the last section is in its entries: a scan per line
    // made a file of many keys quadratic (200 000 keys: minutes).
    let mut at_key: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || trimmed.starts_with('#') {
            continue;
        }
        let continues = raw.starts_with([' ', '\t']);
        let content = strip_comment(trimmed);
        if continues {
            if let Some(e) = sections.last_mut().and_then(|s| s.entries.last_mut()) {
                if !e.value.is_empty() {
                    e.value.push('\n');
                }
                e.value.push_str(content);
                continue;
            }
        }
        if let Some(name) = content.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            at_key.clear();
            sections.push(Section {
                name: name.trim().to_string(),
                line,
                entries: Vec::new(),
            });
            continue;
        }
        let split = content.find(['=', ':']);
        match (split, sections.last_mut()) {
            (Some(at), Some(section)) if at > 0 => {
                // supervisord's keys are lower case; `Command` is `command`.
                let key = content[..at].trim().to_ascii_lowercase();
                let value = content[at + 1..].trim().to_string();
                // A key given twice: the last wins, as in ConfigParser (and
                // sits where the last one is).
                if let Some(old) = at_key.insert(key.clone(), section.entries.len()) {
                    section.entries[old].key.clear();
                }
                section.entries.push(Entry { key, value, line });
            }
            (_, None) => problems.push((line, "a setting before any [section]: skipped".into())),
            _ => problems.push((
                line,
                format!("not `key = value`, a [section] or a comment: {content:?} skipped"),
            )),
        }
    }
    // Drop the entries a later one replaced (a key is never empty otherwise).
    for s in &mut sections {
        s.entries.retain(|e| !e.key.is_empty());
    }
    (sections, problems)
}

/// The text before an inline comment (` ;` after a blank).
fn strip_comment(s: &str) -> &str {
    let b = s.as_bytes();
    for i in 1..b.len() {
        if b[i] == b';' && matches!(b[i - 1], b' ' | b'\t') {
            return s[..i].trim_end();
        }
    }
    s
}

/// `A="x,y",B='z',C=plain` → [(A, "x,y"), (B, "z"), (C, "plain")]. Quotes
/// (single or double, `\"` inside double ones) may surround any part of a
/// value; commas and newlines outside quotes separate the pairs.
pub fn environment(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        for c in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        let key = key.trim().to_string();
        let valid = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(format!("expected NAME=value, got {key:?}"));
        }
        let mut value = String::new();
        let mut quote: Option<char> = None;
        while let Some(c) = chars.next() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (None, ',' | '\n') => break,
                (Some(q), _) if c == q => quote = None,
                (Some('"'), '\\') if matches!(chars.peek(), Some('"' | '\\')) => {
                    value.extend(chars.next());
                }
                _ => value.push(c),
            }
        }
        if let Some(q) = quote {
            return Err(format!("{key}: unterminated {q} quote"));
        }
        out.push((key, value.trim().to_string()));
    }
}

/// supervisord's booleans: true/false, yes/no, on/off, 1/0, any case.
pub fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_entries_comments_continuations() {
        let (s, problems) = parse(
            "; comment\n# another\n[supervisord]\nlogfile = /tmp/x.log ; inline\n\n\
             [program:web]\ncommand=/bin/echo a;b\nenvironment=A=\"1\",\n    B=\"2\"\n\
             Autostart: false\nautostart = true\ngarbage\n",
        );
        assert_eq!(
            problems,
            [(
                12,
                "not `key = value`, a [section] or a comment: \"garbage\" skipped".to_string()
            )]
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].name, "supervisord");
        assert_eq!(s[0].get("logfile").unwrap().value, "/tmp/x.log");
        let web = &s[1];
        assert_eq!((web.name.as_str(), web.line), ("program:web", 6));
        assert_eq!(web.get("command").unwrap().value, "/bin/echo a;b");
        assert_eq!(web.get("environment").unwrap().value, "A=\"1\",\nB=\"2\"");
        assert_eq!(web.get("environment").unwrap().line, 8);
        assert_eq!(web.get("autostart").unwrap().value, "true");
        assert_eq!(parse("x=1\n").1[0].0, 1);
    }

    #[test]
    fn environment_values_with_quotes_and_commas() {
        let env = environment(
            "A=\"x,y\",B='z, \"w\"',C=plain, D = \"a\\\"b\" ,E=\nF=\"%(ENV_HOME)s/bin\"",
        );
        assert_eq!(
            env.unwrap(),
            [
                ("A".into(), "x,y".into()),
                ("B".into(), "z, \"w\"".into()),
                ("C".into(), "plain".into()),
                ("D".into(), "a\"b".into()),
                ("E".into(), String::new()),
                ("F".into(), "%(ENV_HOME)s/bin".into()),
            ]
        );
        assert_eq!(environment("").unwrap(), []);
        assert!(environment("A=\"open")
            .unwrap_err()
            .contains("unterminated"));
        assert!(environment("=x").is_err());
        assert!(environment("A B=x").is_err());
    }

    #[test]
    fn many_keys_parse_in_linear_time() {
        // Quadratic, this took minutes; linear, well under a second.
        let mut text = String::from("[program:x]\ncommand=/bin/true\n");
        for i in 0..200_000 {
            text.push_str(&format!("k{i}=1\n"));
        }
        text.push_str("command=/bin/false\n");
        let start = std::time::Instant::now();
        let (s, _) = parse(&text);
        assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
        assert_eq!(s[0].entries.len(), 200_001);
        assert_eq!(s[0].get("command").unwrap().value, "/bin/false");
        assert_eq!(s[0].entries.last().unwrap().key, "command");
    }

    #[test]
    fn booleans() {
        assert_eq!(boolean("Yes"), Some(true));
        assert_eq!(boolean("off"), Some(false));
        assert_eq!(boolean("maybe"), None);
    }
}
