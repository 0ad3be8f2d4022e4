use super::*;

fn vars() -> Vars<'static> {
    Vars {
        program: "web",
        here: "/etc/tm",
        numprocs: 4,
    }
}

fn fixed(text: &str) -> String {
    match expand(text, &vars()) {
        Ok(Expanded::Fixed(s)) => s,
        other => panic!("{text}: {other:?}"),
    }
}

fn each(text: &str, index: u32) -> String {
    expand_for(text, &vars(), index).unwrap()
}

#[test]
fn names_and_literal_percents() {
    assert_eq!(fixed("plain"), "plain");
    assert_eq!(fixed("%(program_name)s-%(group_name)s"), "web-web");
    assert_eq!(fixed("%(here)s/log"), "/etc/tm/log");
    assert_eq!(fixed("n=%(numprocs)d"), "n=4");
    assert_eq!(fixed("100%% sure"), "100% sure");
    // A `%` not followed by `(` or `%` stays: printf formats keep working.
    assert_eq!(fixed("printf '%s %d\\n' 50%"), "printf '%s %d\\n' 50%");
    // No set_var: other tests' threads may read the environment meanwhile.
    let path = std::env::var("PATH").unwrap();
    assert_eq!(fixed("x=%(ENV_PATH)s"), format!("x={path}"));
}

#[test]
fn process_num_is_per_process_with_printf_formats() {
    assert_eq!(
        expand("p%(process_num)d", &vars()),
        Ok(Expanded::PerProcess("p%(process_num)d".into()))
    );
    assert_eq!(each("port %(process_num)d", 3), "port 3");
    assert_eq!(each("%(process_num)02d", 7), "07");
    assert_eq!(each("%(process_num)03d", 12), "012");
    assert_eq!(each("[%(process_num)-3d]", 5), "[5  ]");
    assert_eq!(each("[%(process_num)3d]", 5), "[  5]");
    assert_eq!(each("%(process_num)+d", 5), "+5");
    assert_eq!(each("%(process_num).3d", 5), "005");
    assert_eq!(each("%(process_num)s", 11), "11");
    // Literal percents, and a value with `%` in it, survive the template.
    let odd = Vars {
        program: "web",
        here: "/50%(x)",
        numprocs: 1,
    };
    assert_eq!(
        expand_for("%% %(here)s %(program_name)s_%(process_num)d %", &odd, 2).unwrap(),
        "% /50%(x) web_2 %"
    );
}

#[test]
fn text_formats() {
    assert_eq!(fixed("[%(program_name)5s]"), "[  web]");
    assert_eq!(fixed("[%(program_name)-5s]"), "[web  ]");
    assert_eq!(fixed("[%(program_name).2s]"), "[we]");
}

#[test]
fn errors_name_what_is_wrong() {
    let err = |t: &str| expand(t, &vars()).unwrap_err();
    let e = err("%(ENV_TM_SURELY_UNSET_42)s");
    assert!(e.contains("TM_SURELY_UNSET_42 is not set"), "{e}");
    assert!(err("%(nope)s").starts_with("unknown expansion %(nope)"));
    assert!(err("%(ENV_)s").starts_with("unknown expansion"));
    assert!(err("x %(program_name").contains("unterminated"));
    assert!(err("%(program_name)").contains("conversion"));
    assert!(err("%(program_name)x").contains("conversion"));
    assert!(err("%(program_name)d").contains("is text"));
    assert!(err("%(a b)s").contains("name of letters"));
    assert!(err("%(process_num)0999999999d").contains("width over"));
    assert!(err("%(process_num)99d").contains("width over"));
}

#[test]
fn programs_complete_their_templates_per_process() {
    let mut p = Program::new("w", "serve --port 800%(process_num)d");
    p.argv = vec!["serve".into(), "--port".into(), "8000".into()];
    p.env = vec![("A".into(), "1".into()), ("PORT".into(), "8000".into())];
    p.stdout = Some("/l/w-0.log".into());
    p.rare.per_process = Some(Box::new(PerProcess {
        cmd: Some("serve --port 800%(process_num)d".into()),
        env: vec![("PORT".into(), "800%(process_num)d".into())],
        stdout: Some("/l/w-%(process_num)d.log".into()),
        ..PerProcess::default()
    }));
    assert!(matches!(p.for_process(0), Cow::Borrowed(_)));
    let q = p.for_process(2);
    assert_eq!(q.argv, ["serve", "--port", "8002"]);
    assert_eq!(
        q.env,
        [("A".into(), "1".into()), ("PORT".into(), "8002".into())]
    );
    assert_eq!(q.stdout, Some("/l/w-2.log".into()));
    assert_eq!(q.stderr, None);
    assert_eq!(q.rare.per_process, None);
    let plain = Program::new("x", "sleep 1");
    assert!(matches!(plain.for_process(5), Cow::Borrowed(_)));
}

#[test]
fn loaded_programs_and_reload_compare_expanded_values() {
    let load = |text: &str| crate::config::parse(std::path::Path::new("/etc/tm/t.yaml"), text);
    let c = load(
        "programs:\n  w:\n    cmd: \"srv --port 90%(process_num)02d %(here)s\"\n    numprocs: 3\n    \
         stdout: \"%(program_name)s-%(process_num)d.log\"\n    env:\n      N: \"%(numprocs)d\"\n",
    )
    .unwrap();
    let w = &c.programs[0];
    assert_eq!(w.argv, ["srv", "--port", "9000", "/etc/tm"]);
    assert_eq!(w.env, [("N".to_string(), "3".to_string())]);
    let two = w.for_process(2);
    assert_eq!(two.argv, ["srv", "--port", "9002", "/etc/tm"]);
    assert_eq!(two.stdout, Some("/etc/tm/w-2.log".into()));
    // A different spelling of the same values is no change; another value is.
    let same = load(
        "programs:\n  w:\n    cmd: \"srv --port 90%(process_num)02d /etc/tm\"\n    numprocs: 3\n    \
         stdout: /etc/tm/w-%(process_num)d.log\n    env: {N: 3}\n",
    )
    .unwrap();
    assert_eq!(crate::reload::diff(&c, &same).programs, []);
    let other = load(
        "programs:\n  w:\n    cmd: \"srv --port 90%(process_num)03d /etc/tm\"\n    numprocs: 3\n    \
         stdout: /etc/tm/w-%(process_num)d.log\n    env: {N: 3}\n",
    )
    .unwrap();
    let lines = crate::reload::lines(&crate::reload::diff(&c, &other), |_| true);
    assert_eq!(lines, ["restarted w (cmd changed)"]);
    let e = load("programs:\n  w:\n    cmd: x\n    env:\n      A: \"%(ENV_TM_NOT_SET_X)s\"\n")
        .unwrap_err();
    assert_eq!(e.len(), 1);
    assert_eq!(
        e[0].to_string(),
        "/etc/tm/t.yaml:5: programs.w.env.A: %(ENV_TM_NOT_SET_X)s: TM_NOT_SET_X is not set in the daemon's environment"
    );
}
