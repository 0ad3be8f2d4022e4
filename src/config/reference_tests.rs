//! docs/configuration.md stays in step with the keys the loader knows: every
//! key of `TOP_KEYS` and `PROGRAM_KEYS` has its `### `key`` section, and every
//! section is a key the loader knows or one being added (`PENDING`).

use super::{PROGRAM_KEYS, TOP_KEYS};

const DOC: &str = include_str!("../../docs/configuration.md");

/// Keys documented from the contract while other branches add them to the
/// loader; once one is in TOP_KEYS or PROGRAM_KEYS it can leave this list.
const PENDING: &[&str] = &[];

fn keys(list: &str) -> Vec<&str> {
    list.split(',').map(str::trim).collect()
}

/// The `### `key`` headings of the section that starts with `## {title}`.
fn documented(title: &str) -> Vec<&'static str> {
    let start = DOC
        .find(&format!("\n## {title}\n"))
        .unwrap_or_else(|| panic!("docs/configuration.md has no `## {title}`"));
    let rest = &DOC[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |i| i + 3);
    rest[..end]
        .lines()
        .filter_map(|l| l.strip_prefix("### `")?.strip_suffix('`'))
        .collect()
}

#[test]
fn every_key_is_documented_and_every_documented_key_exists() {
    for (title, list) in [("Top-level keys", TOP_KEYS), ("Program keys", PROGRAM_KEYS)] {
        let doc = documented(title);
        let code = keys(list);
        for k in &code {
            assert!(
                doc.contains(k),
                "docs/configuration.md, {title}: no `### `{k}``"
            );
        }
        for k in &doc {
            assert!(
                code.contains(k) || PENDING.contains(k),
                "docs/configuration.md, {title}: `{k}` is no key of the loader"
            );
        }
    }
    // Each documented key says its default (or that it is required) and
    // what a reload does.
    for section in DOC.split("\n### `").skip(1) {
        let name = section.split('`').next().unwrap_or("");
        let section = section.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            section.contains("Default") || section.contains("required"),
            "`{name}`: no default"
        );
        assert!(
            section.contains("On reload"),
            "`{name}`: no reload behaviour"
        );
    }
}
