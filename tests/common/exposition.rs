//! A checker of the Prometheus text format 0.0.4, line by line: names,
//! labels and their escapes, values, HELP and TYPE before a family's samples,
//! a family's samples together, no sample twice.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};

/// One sample line of the exposition.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut chars = s.chars();
    let first_ok = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    chars.next().is_some_and(first_ok) && chars.all(|c| first_ok(c) || c.is_ascii_digit())
}

/// A metric name, then the rest of the line.
fn take_name(s: &str) -> Result<(&str, &str), String> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    let (name, rest) = s.split_at(end);
    if !is_name(name, true) {
        return Err(format!("bad metric name in {s:?}"));
    }
    Ok((name, rest))
}

type Labels = Vec<(String, String)>;

/// `{a="x",b="y"}` (the braces included) → labels, rest of the line.
fn take_labels(s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let (name, r) = rest
            .split_once("=\"")
            .ok_or_else(|| format!("label without =\" in {s:?}"))?;
        if !is_name(name, false) || name.starts_with("__") {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = r.char_indices();
        let after = loop {
            match chars.next() {
                None => return Err(format!("unterminated label value in {s:?}")),
                Some((i, '"')) => break &r[i + 1..],
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?} in {s:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        labels.push((name.to_string(), value));
        rest = match after.strip_prefix(',') {
            Some(r) => r,
            None if after.starts_with('}') => after,
            None => return Err(format!("expected , or }} after a label in {s:?}")),
        };
    }
}

fn value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| format!("bad value {s:?}")),
    }
}

/// Parses text format 0.0.4, checking: every line well formed; every
/// family has HELP and TYPE before its samples; a family's samples are
/// together; no sample (name and labels) twice. Returns the samples.
pub fn parse_exposition(text: &str) -> Result<Vec<Sample>, String> {
    if !text.ends_with('\n') {
        return Err("the text must end with a newline".into());
    }
    let (mut help, mut typ) = (HashSet::new(), HashMap::new());
    let mut done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut seen = HashSet::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            return Err("empty line".into());
        }
        if let Some(c) = line.strip_prefix("# ") {
            let mut w = c.splitn(3, ' ');
            let (kw, name, rest) = (w.next(), w.next(), w.next());
            match (kw, name) {
                (Some("HELP"), Some(n)) => {
                    if !is_name(n, true) || !help.insert(n.to_string()) {
                        return Err(format!("bad or second HELP: {line:?}"));
                    }
                    if rest.unwrap_or("").contains('\\') {
                        return Err(format!("unexpected escape in HELP: {line:?}"));
                    }
                }
                (Some("TYPE"), Some(n)) => {
                    let t = rest.unwrap_or("");
                    let known = ["counter", "gauge", "histogram", "summary", "untyped"];
                    if !is_name(n, true) || !known.contains(&t) {
                        return Err(format!("bad TYPE line: {line:?}"));
                    }
                    if typ.insert(n.to_string(), t.to_string()).is_some() {
                        return Err(format!("second TYPE for {n}"));
                    }
                    if done.contains(n) || seen.iter().any(|(s, _): &(String, _)| s == n) {
                        return Err(format!("TYPE of {n} after its samples"));
                    }
                }
                _ => {} // any other comment
            }
            continue;
        }
        let (name, rest) = take_name(line)?;
        let (labels, rest) = take_labels(rest)?;
        let rest = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("no space before the value: {line:?}"))?;
        let mut parts = rest.split(' ');
        let v = value(parts.next().unwrap_or(""))?;
        if let Some(ts) = parts.next() {
            ts.parse::<i64>()
                .map_err(|_| format!("bad timestamp: {line:?}"))?;
        }
        if parts.next().is_some() {
            return Err(format!("trailing text: {line:?}"));
        }
        if !help.contains(name) || !typ.contains_key(name) {
            return Err(format!("sample before HELP and TYPE of {name}: {line:?}"));
        }
        if current.as_deref() != Some(name) {
            if done.contains(name) {
                return Err(format!("samples of {name} are not together"));
            }
            if let Some(prev) = current.replace(name.to_string()) {
                done.insert(prev);
            }
        }
        if typ[name] == "counter" && (v < 0.0 || v.is_nan()) {
            return Err(format!("a counter below 0: {line:?}"));
        }
        let mut key = labels.clone();
        key.sort();
        if !seen.insert((name.to_string(), key)) {
            return Err(format!("sample twice: {line:?}"));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value: v,
        });
    }
    Ok(samples)
}
