//! Property tests of the config parser: no input panics, every error names the
//! file (and the key's line when the key is written), and generated configs load
//! to the values they spell, however those values are spelled.

use super::{load, parse, AutoRestart, Program};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const FILE: &str = "/etc/tm/t.yaml";

#[path = "prop_values.rs"]
mod values;
use values::{env_value, output, quote, seconds, signal, top_keys, umask, yaml_special, TopKeys};

#[path = "proptests_mutated.rs"]
mod mutated;

/// One key of a generated program: `name: value`, then `below` lines one level
/// deeper (or, for a block list at the key's own level, `below_level` 0).
#[derive(Clone, Debug)]
struct Key {
    name: String,
    value: String,
    below: Vec<String>,
    below_level: usize,
}

fn key(name: &str, value: impl Into<String>) -> Key {
    Key {
        name: name.to_string(),
        value: value.into(),
        below: Vec::new(),
        below_level: 1,
    }
}

/// A generated program: what it must load to, and its keys in text order.
#[derive(Clone, Debug)]
struct Gen {
    want: Program,
    /// Written unquoted (else in double quotes).
    plain_name: bool,
    keys: Vec<Key>,
}

fn program() -> impl Strategy<Value = Gen> {
    let name = prop_oneof![
        "[a-z][a-zA-Z0-9_.-]{0,10}".prop_map(|n| (n, true)),
        "[a-zA-Z0-9_.-]{1,12}".prop_map(|n| (n, false)),
    ]
    .prop_filter("reserved or not a string", |(n, _)| {
        n != "all" && !yaml_special(n)
    });
    let cmd = (
        "/[a-z]{1,6}",
        prop::collection::vec("[a-z0-9_./-]{1,6}", 0..3),
        0u8..3,
    );
    let env = prop::collection::btree_map(
        "[A-Z_][A-Z0-9_]{0,6}".prop_filter("a YAML keyword", |s| !yaml_special(s)),
        env_value(),
        0..4,
    );
    let exitcodes = (prop::collection::vec(0i32..=255, 1..4), 0u8..3);
    let restart = prop::sample::select(vec![
        ("true", AutoRestart::Always),
        ("false", AutoRestart::Never),
        ("always", AutoRestart::Always),
        ("never", AutoRestart::Never),
        ("unexpected", AutoRestart::Unexpected),
    ]);
    (
        (
            name,
            cmd,
            prop::option::of(1u32..=65536),
            prop::option::of(umask()),
        ),
        (prop::option::of(signal()), prop::option::of(exitcodes), env),
        (
            prop::option::of(restart),
            prop::option::of(any::<bool>()),
            prop::option::of(0u32..=1000),
            prop::option::of(seconds()),
            prop::option::of("/?[a-z]{1,6}"),
        ),
        output(),
    )
        .prop_map(|(first, second, third, out)| {
            let ((name, plain_name), (bin, args, q), numprocs, umask) = first;
            let (signal, exitcodes, env) = second;
            let (restart, autostart, retries, stoptime, workingdir) = third;
            let cmd_text = std::iter::once(bin)
                .chain(args)
                .collect::<Vec<_>>()
                .join(" ");
            let mut want = Program::new(&name, &cmd_text);
            let mut keys = vec![key("cmd", quote(&cmd_text, q))];
            if let Some(n) = numprocs {
                want.numprocs = n;
                keys.push(key("numprocs", n.to_string()));
            }
            if let Some((m, text)) = umask {
                want.umask = Some(m);
                keys.push(key("umask", text));
            }
            if let Some((s, text)) = signal {
                want.stopsignal = s;
                keys.push(key("stopsignal", text));
            }
            if let Some((codes, style)) = exitcodes {
                let list: Vec<String> = codes.iter().map(i32::to_string).collect();
                keys.push(match style {
                    0 if codes.len() == 1 => key("exitcodes", list[0].clone()),
                    0 => key("exitcodes", format!("[{}]", list.join(", "))),
                    _ => Key {
                        below: list.iter().map(|c| format!("- {c}")).collect(),
                        below_level: usize::from(style) - 1,
                        ..key("exitcodes", "")
                    },
                });
                want.exitcodes = codes;
            }
            if !env.is_empty() {
                keys.push(Key {
                    below: env.iter().map(|(k, (v, _))| format!("{k}: {v}")).collect(),
                    ..key("env", "")
                });
                want.env = env.into_iter().map(|(k, (_, v))| (k, v)).collect();
            }
            if let Some((text, policy)) = restart {
                want.autorestart = policy;
                keys.push(key("autorestart", text));
            }
            if let Some(b) = autostart {
                want.autostart = b;
                keys.push(key("autostart", b.to_string()));
            }
            if let Some(n) = retries {
                want.startretries = n;
                keys.push(key("startretries", n.to_string()));
            }
            if let Some(text) = stoptime {
                want.stoptime = Duration::from_secs_f64(text.parse().unwrap_or(0.0));
                keys.push(key("stoptime", text));
            }
            if let Some(dir) = workingdir {
                want.workingdir = Some(Path::new("/etc/tm").join(&dir));
                keys.push(key("workingdir", dir));
            }
            out.apply(&mut want, &mut keys);
            Gen {
                want,
                plain_name,
                keys,
            }
        })
        .prop_flat_map(|g| {
            let keys = g.keys.clone();
            (Just(g), Just(keys).prop_shuffle())
        })
        .prop_map(|(g, keys)| Gen { keys, ..g })
}

/// Programs with distinct names.
fn programs() -> impl Strategy<Value = Vec<Gen>> {
    prop::collection::vec(program(), 1..6).prop_map(|gens| {
        let mut by_name = BTreeMap::new();
        for g in gens {
            by_name.entry(g.want.name.clone()).or_insert(g);
        }
        by_name.into_values().collect()
    })
}

/// Style knobs: indentation unit, comments and blank lines, trailing comments.
type Style = (usize, bool, bool);

/// The YAML text, and the line of each key path (`programs.web.env.A`).
fn render(
    gens: &[Gen],
    top: &TopKeys,
    (unit, comments, trailing): Style,
) -> (String, BTreeMap<String, usize>) {
    let mut out: Vec<String> = Vec::new();
    let mut lines = BTreeMap::new();
    if comments {
        out.push("# generated".into());
    }
    let tail = if trailing { " # note" } else { "" };
    for line in top.lines() {
        out.push(format!("{line}{tail}"));
        if let Some((k, _)) = line.split_once(':') {
            lines.insert(k.to_string(), out.len());
        }
    }
    out.push("programs:".into());
    let pad = |level: usize| " ".repeat(level * unit);
    for g in gens {
        let name = &g.want.name;
        let written = if g.plain_name {
            name.clone()
        } else {
            format!("\"{name}\"")
        };
        out.push(format!("{}{written}:", pad(1)));
        lines.insert(format!("programs.{name}"), out.len());
        if comments {
            out.push(String::new());
            out.push(format!("{}# settings", pad(2)));
        }
        for k in &g.keys {
            let sep = if k.value.is_empty() { "" } else { " " };
            let end = if k.value.is_empty() { "" } else { tail };
            out.push(format!("{}{}:{sep}{}{end}", pad(2), k.name, k.value));
            let path = format!("programs.{name}.{}", k.name);
            lines.insert(path.clone(), out.len());
            for b in &k.below {
                out.push(format!("{}{b}{tail}", pad(2 + k.below_level)));
                if let Some((var, _)) = b.split_once(':') {
                    lines.insert(format!("{path}.{var}"), out.len());
                }
            }
        }
    }
    (out.join("\n") + "\n", lines)
}

fn style() -> impl Strategy<Value = Style> {
    (1usize..=4, any::<bool>(), any::<bool>())
}

/// Pieces of YAML, to glue into text that is almost, or not quite, a config.
const TOKENS: &[&str] = &[
    "programs:",
    "\n",
    "\n  ",
    "\n    ",
    "  ",
    " ",
    "- ",
    ": ",
    ":",
    ",",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    "#",
    "|",
    ">",
    "&a ",
    "*a",
    "!!str ",
    "!!binary ",
    "? ",
    "---\n",
    "...\n",
    "\t",
    "\\",
    "web",
    "cmd",
    "numprocs",
    "umask",
    "env",
    "exitcodes",
    "stopsignal",
    "user",
    "all",
    "0",
    "-1",
    "077",
    "0o8",
    "1e999",
    "65537",
    ".nan",
    "TERM",
    "~",
    "null",
    "true",
    "é",
    "\u{feff}",
    "%YAML 1.2\n",
    "<<: *a\n",
];

/// A tree `levels` collections deep (a spine of lists and mappings, with
/// awkward strings beside it): YAML and JSON spell it in block and flow styles.
fn nested() -> impl Strategy<Value = (usize, serde_json::Value)> {
    // Strings that need quoting, escaping or a block scalar in YAML.
    let text = prop::sample::select(vec![
        "",
        "a",
        "[",
        "]]",
        "{x: [",
        "'",
        "\"",
        "a'b\"c",
        "# x",
        "a #b",
        "k: v",
        "- x",
        "|",
        ">",
        "&a",
        "*a",
        "!t",
        "? q",
        "x\ny [\n{",
        "a\n[[[[[[[[\n{{{{{{{{\n",
        "\t[",
        " ]",
        "%",
        "a,b",
    ]);
    prop::collection::vec((any::<bool>(), text.clone(), text), 1..90).prop_map(|spine| {
        let levels = spine.len();
        let mut v = serde_json::Value::Null;
        for (list, key, other) in spine {
            v = if list {
                serde_json::json!([other, v])
            } else {
                serde_json::json!({ key: v, "other": other })
            };
        }
        (levels, v)
    })
}

/// Each error names the file; a line, when given, is within the text.
fn check_errors(errors: &[super::ConfigError], text_lines: usize) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty());
    for e in errors {
        prop_assert_eq!(&e.file, FILE);
        prop_assert!(e.to_string().starts_with(&format!("{FILE}:")), "{}", e);
        if let Some(l) = e.line {
            prop_assert!((1..=text_lines + 1).contains(&l), "{} of {}", e, text_lines);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::proptest_env::cases(256)))]

    #[test]
    fn any_bytes_load_or_name_the_file(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("t.yaml");
        std::fs::write(&path, &bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Err(errors) = load(&path) {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert_eq!(&e.file, &path.display().to_string());
            }
        }
    }

    #[test]
    fn yamlish_text_loads_or_names_file_and_line(
        tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..60)
    ) {
        let text = tokens.concat();
        if let Err(errors) = parse(Path::new(FILE), &text) {
            check_errors(&errors, text.lines().count())?;
        }
    }

    #[test]
    fn nesting_guard_refuses_only_deep_texts((levels, tree) in nested()) {
        let serialised = [
            serde_json::to_string(&tree).unwrap_or_default(),
            serde_json::to_string_pretty(&tree).unwrap_or_default(),
            serde_yaml::to_string(&tree).unwrap_or_default(),
        ];
        for text in serialised {
            let verdict = super::nesting::check(&text);
            if levels < super::nesting::MAX_DEPTH {
                prop_assert_eq!(verdict, Ok(()), "{}", text);
            } else if text.starts_with('[') || text.starts_with('{') {
                // JSON is all flow style: its depth is counted exactly.
                prop_assert!(verdict.is_err(), "{}", text);
            }
        }
    }

    #[test]
    fn generated_configs_load_to_their_values(
        gens in programs(),
        top in top_keys(),
        style in style(),
    ) {
        let (text, _) = render(&gens, &top, style);
        let config = parse(Path::new(FILE), &text);
        prop_assert!(config.is_ok(), "{:?}\n{}", config.err(), text);
        let config = config.map_err(|_| TestCaseError::fail("checked above"))?;
        top.check(&config)?;
        let want: Vec<&Program> = gens.iter().map(|g| &g.want).collect();
        prop_assert_eq!(config.programs.iter().map(|p| &**p).collect::<Vec<_>>(), want, "{}", text);
    }

    #[test]
    fn a_bad_value_is_reported_at_its_line(
        gens in programs(),
        top in top_keys(),
        style in style(),
        which in any::<prop::sample::Index>(),
        bad in 0usize..18,
    ) {
        let mut gens = gens;
        let g = which.get_mut(&mut gens);
        let (name, value, below) = match bad {
            0 => ("numprocs", "0", None),
            1 => ("umask", "8", None),
            2 => ("stopsignal", "NOPE", None),
            3 => ("exitcodes", "[256]", None),
            4 => ("startretries", "1001", None),
            5 => ("stoptime", "-1", None),
            6 => ("autorestart", "sometimes", None),
            7 => ("autostart", "maybe", None),
            8 => ("cmdd", "x", None),
            9 => ("env", "", Some("NOTHING: ~")),
            10 => ("cmd", "\"\"", None),
            11 => ("workingdir", "''", None),
            12 => ("stdout_maxbytes", "10XB", None),
            13 => ("stderr_backups", "1001", None),
            14 => ("redirect_stderr", "maybe", None),
            15 => ("attach", "2", None),
            16 => ("stderr_maxbytes", "2000GB", None),
            // With a stderr file (added below if missing): the file is the error.
            _ => ("redirect_stderr", "true", None),
        };
        let broken = Key {
            below: below.map(String::from).into_iter().collect(),
            ..key(name, value)
        };
        match g.keys.iter_mut().find(|k| k.name == name) {
            Some(k) => *k = broken,
            None => g.keys.push(broken),
        }
        let mut path = format!("programs.{}.{name}", g.want.name);
        if bad == 9 {
            path.push_str(".NOTHING");
        }
        if bad == 17 {
            if !g.keys.iter().any(|k| k.name == "stderr") {
                g.keys.push(key("stderr", "err.log"));
            }
            path = format!("programs.{}.stderr", g.want.name);
        }
        let (text, lines) = render(&gens, &top, style);
        let errors = match parse(Path::new(FILE), &text) {
            Ok(_) => return Err(TestCaseError::fail(format!("accepted:\n{text}"))),
            Err(e) => e,
        };
        check_errors(&errors, text.lines().count())?;
        let line = lines.get(&path).copied();
        let hit = errors.iter().find(|e| e.key == path);
        prop_assert!(hit.is_some(), "no error for {}: {:?}\n{}", path, errors, text);
        let hit = hit.map(ToString::to_string).unwrap_or_default();
        let want = format!("{FILE}:{}: {path}: ", line.unwrap_or(0));
        prop_assert!(hit.starts_with(&want), "{} !~ {}\n{}", hit, want, text);
    }

    #[test]
    fn a_bad_top_level_value_is_reported_at_its_line(
        gens in programs(),
        top in top_keys(),
        style in style(),
        bad in 0usize..6,
    ) {
        let (name, value) = [
            ("logfile_maxbytes", "1.5MB"),
            ("logfile_maxbytes", "-1"),
            ("logfile_backups", "1001"),
            ("logfile_backups", "five"),
            ("minfds", "-1"),
            ("minfds", "1073741825"),
        ][bad];
        let mut top = top;
        top.set_raw(name, value);
        let (text, lines) = render(&gens, &top, style);
        let errors = match parse(Path::new(FILE), &text) {
            Ok(_) => return Err(TestCaseError::fail(format!("accepted:\n{text}"))),
            Err(e) => e,
        };
        check_errors(&errors, text.lines().count())?;
        prop_assert_eq!(errors.len(), 1, "{:?}\n{}", errors, text);
        let want = format!("{FILE}:{}: {name}: expected ", lines.get(name).copied().unwrap_or(0));
        prop_assert!(errors[0].to_string().starts_with(&want), "{} !~ {}", errors[0], want);
    }
}
