//! The small glob of `include:`: `*`, `?` and `[...]` within one path
//! component, as the shell has them (a leading `.` is matched only by a
//! pattern that starts with `.`). Matches are sorted per folder.

use std::path::{Component, Path, PathBuf};

/// Whether `pattern` has a wildcard at all.
pub fn is_pattern(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Paths matching `pattern` (relative to `dir` unless absolute), sorted; more
/// than `limit` is an error. A pattern without wildcards names its one path,
/// whether it exists or not (reading it says so).
pub fn glob(dir: &Path, pattern: &str, limit: usize) -> Result<Vec<PathBuf>, String> {
    let path = Path::new(pattern);
    if !is_pattern(pattern) {
        return Ok(vec![dir.join(path)]);
    }
    let mut found = vec![if path.is_absolute() {
        PathBuf::from("/")
    } else {
        dir.to_path_buf()
    }];
    for comp in path.components() {
        let part = match comp {
            Component::RootDir | Component::Prefix(_) => continue,
            Component::CurDir => continue,
            Component::ParentDir => "..",
            Component::Normal(s) => match s.to_str() {
                Some(s) => s,
                None => return Err(format!("{pattern:?}: not UTF-8")),
            },
        };
        if !is_pattern(part) {
            found.iter_mut().for_each(|p| p.push(part));
            continue;
        }
        let mut next = Vec::new();
        for base in &found {
            // A folder that cannot be read (missing, not a folder) matches nothing.
            let Ok(entries) = std::fs::read_dir(base) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| matches(part, n))
                .collect();
            names.sort();
            for n in names {
                if next.len() >= limit {
                    return Err(format!("{pattern:?} matches more than {limit} files"));
                }
                next.push(base.join(n));
            }
        }
        found = next;
    }
    found.retain(|p| p.symlink_metadata().is_ok());
    Ok(found)
}

/// Whether the file name `name` matches the one-component `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    if n.first() == Some(&'.') && p.first() != Some(&'.') {
        return false;
    }
    // Two pointers; on a mismatch, go back to just after the last `*` and let
    // it take one more character (linear in practice, never exponential).
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
                continue;
            }
            Some('?') => Some(pi + 1),
            Some('[') => class(&p, pi, n[ni]),
            Some(&c) if c == n[ni] => Some(pi + 1),
            _ => None,
        };
        match (step, star) {
            (Some(next), _) => {
                pi = next;
                ni += 1;
            }
            (None, Some((sp, sn))) => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `[...]` at `p[at]` against `c`: the index after the class if `c` is in
/// it. An unclosed `[` is a literal `[`.
fn class(p: &[char], at: usize, c: char) -> Option<usize> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let first = i;
    let mut hit = false;
    while let Some(&x) = p.get(i) {
        if x == ']' && i > first {
            return (hit != negate).then_some(i + 1);
        }
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&y| y != ']') {
            hit |= (x..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= x == c;
            i += 1;
        }
    }
    (c == '[').then_some(at + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(matches("*.yaml", "web.yaml"));
        assert!(!matches("*.yaml", "web.yaml~"));
        assert!(!matches("*.yaml", ".hidden.yaml"));
        assert!(matches(".*.yaml", ".hidden.yaml"));
        assert!(matches("a?c", "abc") && !matches("a?c", "ac"));
        assert!(matches("[0-9][!a]*", "1b") && !matches("[0-9][!a]*", "1a"));
        assert!(matches("[]x]", "]") && matches("[]x]", "x"));
        assert!(matches("x[", "x[") && !matches("x[", "xa"));
        assert!(matches("*a*b*c*", "zzazzbzzczz"));
        assert!(!matches("*a*b*c", "zzazzbzzczz"));
        assert!(matches("*", "x") && matches("**", ""));
        // No blow-up on a hostile pattern.
        assert!(!matches(
            &"*a".repeat(30),
            &"a".repeat(200)[..199].replace('a', "b")
        ));
    }

    #[test]
    fn globs_a_tree_sorted_and_bounded() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path();
        std::fs::create_dir_all(d.join("conf.d/sub")).unwrap();
        for f in ["b.yaml", "a.yaml", "c.txt", ".h.yaml", "sub/x.yaml"] {
            std::fs::write(d.join("conf.d").join(f), "").unwrap();
        }
        let got = glob(d, "conf.d/*.yaml", 10).unwrap();
        assert_eq!(
            got,
            [d.join("conf.d/a.yaml"), d.join("conf.d/b.yaml")],
            "sorted, no dotfile"
        );
        let abs = format!("{}/conf.d/*/x.yaml", d.display());
        assert_eq!(
            glob(Path::new("/elsewhere"), &abs, 10).unwrap(),
            [d.join("conf.d/sub/x.yaml")]
        );
        assert_eq!(glob(d, "none/*.yaml", 10).unwrap(), Vec::<PathBuf>::new());
        assert_eq!(glob(d, "plain.yaml", 10).unwrap(), [d.join("plain.yaml")]);
        let e = glob(d, "conf.d/*", 2).unwrap_err();
        assert!(e.contains("more than 2 files"), "{e}");
    }
}
