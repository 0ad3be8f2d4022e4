use super::*;

#[test]
fn parses_commands() {
    assert_eq!(parse(""), Ok(None));
    assert_eq!(parse("   "), Ok(None));
    assert_eq!(
        parse("status"),
        Ok(Some(Request::Status {
            names: vec![],
            json: false
        }))
    );
    assert_eq!(
        parse("status  web:0 --json db"),
        Ok(Some(Request::Status {
            names: vec!["web:0".into(), "db".into()],
            json: true
        }))
    );
    assert_eq!(
        parse("start all"),
        Ok(Some(Request::Start(vec!["all".into()])))
    );
    assert_eq!(
        parse("stop a b"),
        Ok(Some(Request::Stop(vec!["a".into(), "b".into()])))
    );
    assert_eq!(
        parse("restart a"),
        Ok(Some(Request::Restart(vec!["a".into()])))
    );
    assert_eq!(
        parse("reload"),
        Ok(Some(Request::Reload { dry_run: false }))
    );
    assert_eq!(
        parse("reload --dry-run"),
        Ok(Some(Request::Reload { dry_run: true }))
    );
    assert_eq!(parse("shutdown"), Ok(Some(Request::Shutdown)));
    assert_eq!(parse("help"), Ok(Some(Request::Help(None))));
    assert_eq!(
        parse("help stop"),
        Ok(Some(Request::Help(Some("stop".into()))))
    );
    assert_eq!(parse("quit\r"), Ok(Some(Request::Quit)));
}

#[test]
fn help_covers_every_command() {
    let all = help(None).unwrap();
    for c in COMMANDS {
        assert!(all.iter().any(|l| l.starts_with(&c.usage())), "{}", c.name);
        let one = help(Some(c.name)).unwrap();
        assert_eq!(one[0], format!("usage: {}", c.usage()));
        // Every command the parser knows is in the table, and back.
        let sample = match c.name {
            "start" | "stop" | "restart" => format!("{} all", c.name),
            n => n.to_string(),
        };
        assert!(parse(&sample).is_ok(), "{sample}");
    }
    assert!(help(Some("bogus")).unwrap_err().contains("no command"));
    assert!(parse("help a b").is_err());
}

#[test]
fn rejects_bad_input() {
    for bad in [
        "start",
        "stop",
        "frobnicate x",
        "shutdown now",
        "quit now",
        "reload --force",
        "status --yaml",
        "start --all",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    assert!(parse("bogus").unwrap_err().contains("unknown command"));
}

#[test]
fn replies() {
    assert_eq!(reply(&[], Ok(())), "OK\n");
    assert_eq!(
        reply(&["a".into(), "b".into()], Err("2 failed".into())),
        "a\nb\nERR 2 failed\n"
    );
    assert_eq!(reply(&[], Err("x\ny".into())), "ERR x y\n");
}

fn view(name: &str, state: State) -> ProcessView {
    ProcessView {
        name: name.into(),
        program: name.split(':').next().unwrap_or("").into(),
        index: 0,
        state,
        pid: None,
        uptime: None,
        last_exit: None,
        restarts: 0,
        message: String::new(),
    }
}

#[test]
fn status_human_is_aligned() {
    let mut a = view("web:0", State::Running);
    a.pid = Some(1234);
    a.uptime = Some(Duration::from_secs(65));
    let mut b = view("longer_name:1", State::ExitedUnexpectedly);
    b.last_exit = Some(Exit::Signal(9));
    let mut c = view("x:0", State::Backoff);
    c.message = "spawn error: nope: command not found in PATH; retry in 1.0s".into();
    let lines = status_lines(&[a, b, c, view("n:0", State::NotStarted)]);
    assert_eq!(
        lines[0],
        "web:0          RUNNING              pid 1234, uptime 0:01:05"
    );
    assert_eq!(
        lines[1],
        "longer_name:1  EXITED_UNEXPECTEDLY  killed by SIGKILL"
    );
    assert!(lines[2].starts_with("x:0            BACKOFF              spawn error: nope"));
    assert_eq!(lines[3], "n:0            NOT_STARTED          not started");
    assert_eq!(hms(Duration::from_secs(3600 * 27 + 61)), "27:01:01");
}

#[test]
fn status_json_shape() {
    let mut a = view("web:1", State::Running);
    a.index = 1;
    a.pid = Some(42);
    a.uptime = Some(Duration::from_millis(65_900));
    a.restarts = 2;
    let mut b = view("db:0", State::Stopped);
    b.last_exit = Some(Exit::Signal(15));
    let mut c = view("q:0", State::Fatal);
    c.last_exit = Some(Exit::Code(3));
    c.message = "say \"hi\"\n\\".into();
    assert_eq!(
        status_json(&[a, b, c]),
        "[{\"name\":\"web:1\",\"program\":\"web\",\"index\":1,\"state\":\"RUNNING\",\"pid\":42,\"uptime_s\":65,\"exit_code\":null,\"signal\":null,\"restarts\":2,\"message\":\"pid 42, uptime 0:01:05\"},\
{\"name\":\"db:0\",\"program\":\"db\",\"index\":0,\"state\":\"STOPPED\",\"pid\":null,\"uptime_s\":null,\"exit_code\":null,\"signal\":\"SIGTERM\",\"restarts\":0,\"message\":\"killed by SIGTERM\"},\
{\"name\":\"q:0\",\"program\":\"q\",\"index\":0,\"state\":\"FATAL\",\"pid\":null,\"uptime_s\":null,\"exit_code\":3,\"signal\":null,\"restarts\":0,\"message\":\"say \\\"hi\\\"\\n\\\\\"}]"
    );
    assert_eq!(status_json(&[]), "[]");
    assert_eq!(json_str("\u{1}é"), "\"\\u0001é\"");
}

/// Text that hand-written escaping gets wrong: quotes, backslashes, every
/// control character, DEL, non-ASCII and the JavaScript line separators.
fn awkward() -> String {
    let mut s: String = (0u8..0x20).map(char::from).collect();
    s.push_str("\u{7f} \"quoted\" back\\slash \\\" é 漢字 🦀 \u{2028}\u{2029} end");
    s
}

#[test]
fn json_strings_round_trip() {
    for s in ["", "plain", "\"", "\\", "\u{0}", "\u{1f}", "é", &awkward()] {
        let encoded = json_str(s);
        assert!(!encoded.contains('\n'), "{encoded:?}");
        let back: String = serde_json::from_str(&encoded).unwrap();
        assert_eq!(back, s);
    }
}

#[test]
fn status_json_item_round_trips_awkward_text() {
    let mut p = view("", State::Backoff);
    p.name = format!("{}:3", awkward());
    p.program = awkward();
    p.index = 3;
    p.message = awkward();
    p.last_exit = Some(Exit::Code(-1));
    let line = status_json_item(&p);
    // One line, one object: the status reply stays a single line.
    assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["name"], p.name.as_str());
    assert_eq!(v["program"], p.program.as_str());
    assert_eq!(v["index"], 3);
    assert_eq!(v["state"], "BACKOFF");
    assert_eq!(v["message"], p.detail().as_str());
    assert_eq!(v["exit_code"], -1);
    assert!(v["signal"].is_null() && v["pid"].is_null() && v["uptime_s"].is_null());
    // The array is its items, comma-separated.
    let all = status_json(&[p.clone(), p.clone()]);
    assert_eq!(all, format!("[{line},{line}]"));
    let arr: Vec<serde_json::Value> = serde_json::from_str(&all).unwrap();
    assert_eq!(arr, [v.clone(), v]);
}

#[test]
fn status_json_names_unknown_signals_too() {
    let mut p = view("x:0", State::ExitedUnexpectedly);
    p.last_exit = Some(Exit::Signal(99));
    let v: serde_json::Value = serde_json::from_str(&status_json_item(&p)).unwrap();
    assert_eq!(v["signal"], "signal 99");
    assert!(v["exit_code"].is_null());
}
