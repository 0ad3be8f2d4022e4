use super::*;

fn names() -> Names {
    let body: Vec<String> = [
        "db:0    RUNNING  pid 12, uptime 0:00:03",
        "web:0   STOPPED  not started",
        "web:1   FATAL    spawn failed: No such file or directory",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Names::from_status(&body)
}

fn words(line: &str) -> Vec<String> {
    complete(line, line.len(), &names()).1
}

#[test]
fn names_come_from_the_status_first_column() {
    let n = names();
    assert_eq!(n.programs, ["db", "web"]);
    assert_eq!(n.processes, ["db:0", "web:0", "web:1"]);
    assert_eq!(Names::from_status(&[]), Names::default());
    // A program name with a colon-free index form is kept whole.
    assert_eq!(
        Names::from_status(&["a.b-c:10  RUNNING".into()]).programs,
        ["a.b-c"]
    );
}

#[test]
fn first_word_completes_commands() {
    assert_eq!(words("st"), ["status ", "start ", "stop "]);
    assert_eq!(words("sh"), ["shutdown "]);
    assert_eq!(words("e"), ["exit "]);
    assert_eq!(words("q"), ["quit "]);
    assert!(words("x").is_empty());
    assert_eq!(words("").len(), COMMANDS.len() + SHELL_ONLY.len());
}

#[test]
fn name_arguments_complete_live_names() {
    assert_eq!(words("stop w"), ["web ", "web:0 ", "web:1 "]);
    // supervisorctl's PROGRAM:* once a `:` is typed.
    assert_eq!(words("stop web:"), ["web:0 ", "web:1 ", "web:* "]);
    assert_eq!(words("stop web:*"), ["web:* "]);
    assert_eq!(words("status d:"), Vec::<String>::new());
    assert_eq!(words("tail db:"), ["db:0 "]);
    assert_eq!(words("attach db:"), ["db:0 "]);
    assert_eq!(words("signal HUP db:"), ["db:0 ", "db:* "]);
    assert_eq!(words("restart a"), ["all "]);
    assert_eq!(
        words("start "),
        ["all ", "db ", "web ", "db:0 ", "web:0 ", "web:1 "]
    );
    // Names already on the line are not offered again.
    assert_eq!(words("stop web web"), ["web:0 ", "web:1 "]);
    assert_eq!(words("status --"), ["--json "]);
    assert!(words("stop --").is_empty());
}

#[test]
fn other_arguments() {
    assert_eq!(words("help st"), ["status ", "start ", "stop "]);
    assert!(words("help stop s").is_empty());
    assert_eq!(words("reload "), ["--dry-run "]);
    assert!(words("shutdown ").is_empty());
    assert!(words("bogus w").is_empty());
}

#[test]
fn completes_the_word_under_the_cursor() {
    // Cursor after "stop w" in "stop w db": only the text before it counts.
    let (start, w) = complete("stop w db", 6, &names());
    assert_eq!(start, 5);
    assert_eq!(w, ["web ", "web:0 ", "web:1 "]);
    // A position past the end or inside a char does not panic.
    assert_eq!(complete("stop", 99, &names()).0, 0);
    assert_eq!(complete("é", 1, &names()).0, 0);
}

#[test]
fn hints() {
    let h = |l: &str| hint(l, l.len());
    assert_eq!(
        h("stat"),
        Some(LineHint {
            display: "us [NAMES] [--json]".into(),
            completion: Some("us".into())
        })
    );
    assert_eq!(h("st"), None, "ambiguous");
    assert_eq!(h("shut").map(|h| h.display), Some("down".into()));
    assert_eq!(
        h("stop "),
        Some(LineHint {
            display: "NAMES".into(),
            completion: None
        })
    );
    assert_eq!(h("stop").map(|h| h.display), Some(" NAMES".into()));
    assert_eq!(h("stop w"), None);
    assert_eq!(h("shutdown "), None);
    assert_eq!(h(""), None);
    assert_eq!(hint("stat", 2), None, "cursor not at the end");
}

#[test]
fn tail_offers_options_names_then_the_stream() {
    assert_eq!(
        words("tail "),
        ["-f ", "-n ", "db ", "db:0 ", "web:0 ", "web:1 "]
    );
    assert_eq!(words("tail -"), ["-f ", "-n "]);
    assert_eq!(words("tail -f -"), ["-n "]);
    // `web` has two processes: tail would refuse it, so it is not offered.
    assert_eq!(words("tail w"), ["web:0 ", "web:1 "]);
    // `all` is no single process.
    assert!(words("tail a").is_empty());
    assert!(words("tail -n ").is_empty(), "a number comes after -n");
    assert_eq!(words("tail -n 5 web:"), ["web:0 ", "web:1 "]);
    assert_eq!(words("tail -f web:0 "), ["stdout ", "stderr "]);
    assert_eq!(words("tail -n 5 db std"), ["stdout ", "stderr "]);
    assert_eq!(words("tail db stde"), ["stderr "]);
    assert!(words("tail db stdout ").is_empty());
}

#[test]
fn attach_signal_pid_reopen() {
    assert_eq!(words("att"), ["attach "]);
    assert_eq!(
        words("attach w"),
        ["web:0 ", "web:1 "],
        "web has two processes"
    );
    assert!(words("attach a").is_empty());
    assert!(
        words("attach web:0 ").is_empty(),
        "the size is taskmasterctl's"
    );
    assert_eq!(words("signal U"), ["USR1 ", "USR2 "]);
    assert_eq!(words("signal SIGT"), ["SIGTERM "]);
    assert_eq!(words("signal ").len(), SIGNALS.len());
    assert_eq!(words("signal HUP w"), ["web ", "web:0 ", "web:1 "]);
    assert_eq!(words("signal HUP web a"), ["all "]);
    assert_eq!(
        words("pid "),
        ["all ", "db ", "web ", "db:0 ", "web:0 ", "web:1 "]
    );
    assert_eq!(words("re"), ["restart ", "reload ", "reopen "]);
    assert!(words("reopen ").is_empty());
    assert_eq!(words("help ta"), ["tail "]);
}

#[test]
fn hints_for_the_new_commands() {
    let h = |l: &str| hint(l, l.len()).map(|h| h.display);
    assert_eq!(h("tail "), Some("[-f] [-n N] NAME [stdout|stderr]".into()));
    assert_eq!(h("att"), Some("ach NAME [ROWSxCOLS]".into()));
    assert_eq!(h("signal "), Some("SIG NAMES".into()));
    assert_eq!(h("pi"), Some("d [NAMES]".into()));
    assert_eq!(h("reop"), Some("en".into()));
}
