use super::*;
use crate::state::{Exit, State};
use std::time::Duration;

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
            "tail" | "attach" => format!("{} web:0", c.name),
            "signal" => "signal TERM all".into(),
            "auth" => "auth s3cret".into(),
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
        "reopen now",
        "pid --json",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    assert!(parse("bogus").unwrap_err().contains("unknown command"));
}

fn tail(follow: bool, lines: usize, name: &str, stream: Stream) -> Option<Request> {
    Some(Request::Tail {
        follow,
        lines,
        name: name.into(),
        stream,
    })
}

#[test]
fn parses_tail() {
    use Stream::{Stderr, Stdout};
    assert_eq!(parse("tail web:0"), Ok(tail(false, 10, "web:0", Stdout)));
    assert_eq!(parse("tail -f web"), Ok(tail(true, 10, "web", Stdout)));
    assert_eq!(
        parse("tail -n 3 -f web stderr"),
        Ok(tail(true, 3, "web", Stderr))
    );
    assert_eq!(
        parse("tail -f -n 0 web stdout"),
        Ok(tail(true, 0, "web", Stdout))
    );
    assert_eq!(
        parse("tail -n100000 x"),
        Ok(tail(false, 100_000, "x", Stdout))
    );
    // The last -n wins, as with tail(1).
    assert_eq!(parse("tail -n 1 -n 2 x"), Ok(tail(false, 2, "x", Stdout)));
    for bad in [
        "tail",
        "tail -f",
        "tail -n",
        "tail -n x web",
        "tail -n -1 web",
        "tail -n 100001 web",
        "tail -n 99999999999999999999999 web",
        "tail -x web",
        "tail web stdin",
        "tail web stderr more",
        "tail web -f",
    ] {
        let e = parse(bad).unwrap_err();
        assert!(
            e.contains("usage: tail [-f] [-n N] NAME [stdout|stderr]"),
            "{bad}: {e}"
        );
    }
    assert!(parse("tail -n 100001 web")
        .unwrap_err()
        .contains("0 to 100000"));
}

#[test]
fn parses_attach_signal_pid_reopen() {
    let attach = |name: &str, size| {
        Some(Request::Attach {
            name: name.into(),
            size,
        })
    };
    assert_eq!(parse("attach web:0"), Ok(attach("web:0", None)));
    assert_eq!(parse("attach sh 24x80"), Ok(attach("sh", Some((24, 80)))));
    assert_eq!(
        parse("attach sh 65535x1"),
        Ok(attach("sh", Some((65535, 1))))
    );
    for bad in [
        "attach",
        "attach a b c",
        "attach sh 24",
        "attach sh 0x80",
        "attach sh 24x0",
        "attach sh 24x80x1",
        "attach sh x80",
        "attach sh 65536x80",
        "attach sh -24x80",
        "attach -f sh",
    ] {
        let e = parse(bad).unwrap_err();
        assert!(e.contains("usage: attach NAME [ROWSxCOLS]"), "{bad}: {e}");
    }
    let signal = |sig: i32, names: &[&str]| {
        Some(Request::Signal {
            sig,
            names: names.iter().map(|s| s.to_string()).collect(),
        })
    };
    assert_eq!(parse("signal HUP web"), Ok(signal(libc::SIGHUP, &["web"])));
    assert_eq!(
        parse("signal sigusr1 a b:1"),
        Ok(signal(libc::SIGUSR1, &["a", "b:1"]))
    );
    assert_eq!(parse("signal 9 all"), Ok(signal(9, &["all"])));
    assert!(parse("signal")
        .unwrap_err()
        .contains("usage: signal SIG NAMES"));
    assert!(parse("signal TERM").unwrap_err().contains("needs NAMES"));
    assert!(parse("signal BOGUS x")
        .unwrap_err()
        .contains("unknown signal"));
    assert!(parse("signal 0 x").unwrap_err().contains("unknown signal"));
    assert!(parse("signal TERM --all").is_err());
    assert_eq!(parse("pid"), Ok(Some(Request::Pid(vec![]))));
    assert_eq!(
        parse("pid web db:0"),
        Ok(Some(Request::Pid(vec!["web".into(), "db:0".into()])))
    );
    assert_eq!(parse("reopen"), Ok(Some(Request::Reopen)));
    assert_eq!(parse("metrics"), Ok(Some(Request::Metrics)));
    assert!(parse("metrics web").is_err());
    assert_eq!(parse("version"), Ok(Some(Request::Version)));
    assert_eq!(parse("avail"), Ok(Some(Request::Avail)));
    assert!(parse("version x").unwrap_err().contains("no arguments"));
    assert!(parse("avail --all").unwrap_err().contains("no arguments"));
}

#[test]
fn help_keeps_long_usages_readable() {
    let all = help(None).unwrap();
    let i = all
        .iter()
        .position(|l| l == "tail [-f] [-n N] NAME [stdout|stderr]")
        .expect("tail's usage on a line of its own");
    assert!(all[i + 1].starts_with(&" ".repeat(26)), "{:?}", all[i + 1]);
    assert!(all[i + 1].trim_start().starts_with("last lines"));
    assert!(all
        .iter()
        .any(|l| l.starts_with("status [NAMES] [--json]   show processes")));
}

#[test]
fn dot_stuffing() {
    for (line, sent) in [
        ("", ""),
        ("plain", "plain"),
        (".", ".."),
        ("..x", "...x"),
        ("OK", ".OK"),
        ("OK\r", ".OK\r"),
        ("OKAY", "OKAY"),
        (" OK", " OK"),
        ("ok", "ok"),
        ("ERR", ".ERR"),
        ("ERROR: disk", ".ERROR: disk"),
        ("an ERR", "an ERR"),
    ] {
        assert_eq!(stuff(line), sent, "{line:?}");
        assert_eq!(unstuff(sent), line, "{sent:?}");
    }
    // Lines that need nothing are not copied.
    assert!(matches!(stuff("web:0  RUNNING"), Cow::Borrowed(_)));
    assert_eq!(unstuff("x"), "x");
    assert_eq!(
        reply(
            &[".".into(), "OK".into(), "ERR x".into(), "y".into()],
            Ok(())
        ),
        "..\n.OK\n.ERR x\ny\nOK\n"
    );
}

#[test]
fn help_and_status_bodies_need_no_stuffing() {
    for topic in std::iter::once(None).chain(COMMANDS.iter().map(|c| Some(c.name))) {
        for l in help(topic).unwrap() {
            assert_eq!(stuff(&l), l.as_str(), "{l:?}");
        }
    }
}

proptest::proptest! {
    #[test]
    fn stuffing_round_trips_and_never_ends_a_reply(line in "(\\.|OK|ERR|\r|[ -~]|é){0,12}") {
        let sent = stuff(&line);
        proptest::prop_assert_eq!(unstuff(&sent), line.as_str());
        // What a client takes for the final line: the line without its \r.
        let seen = sent.trim_end_matches('\r');
        proptest::prop_assert!(seen != "OK" && !seen.starts_with("ERR"), "{:?}", sent);
    }

    #[test]
    fn parse_never_panics(line in "(tail|attach|signal|pid|reopen|-f|-n|[0-9]{1,6}|x| |[ -~]){0,12}") {
        let _ = parse(&line);
    }

    /// Any text at all, not only text that looks like a command.
    #[test]
    fn parse_never_panics_on_any_text(line in proptest::prelude::any::<String>()) {
        let _ = parse(&line);
    }

    /// A whole reply decodes to its body and its result: the first line a
    /// client takes for final is the real one.
    #[test]
    fn replies_round_trip(
        body in proptest::collection::vec("(\\.|OK|ERR|\r|[ -~]|é){0,12}", 0..8),
        result in proptest::option::of("[ -~\n]{0,20}"),
    ) {
        let sent = reply(&body, result.clone().map_or(Ok(()), Err));
        let lines: Vec<&str> = sent.strip_suffix('\n').unwrap_or(&sent).split('\n').collect();
        let end = lines
            .iter()
            .position(|l| {
                let seen = l.trim_end_matches('\r');
                seen == "OK" || seen.starts_with("ERR")
            })
            .unwrap_or(lines.len());
        proptest::prop_assert_eq!(end, body.len(), "{:?}", sent);
        let got: Vec<&str> = lines[..end].iter().map(|l| unstuff(l)).collect();
        proptest::prop_assert_eq!(got, body);
        match result {
            None => proptest::prop_assert_eq!(lines[end], "OK"),
            Some(e) => proptest::prop_assert_eq!(lines[end], format!("ERR {}", e.replace('\n', " "))),
        }
    }
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
        state,
        ..ProcessView::default()
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
    let ticks = crate::procscan::clock_ticks() * 3 / 2;
    a.usage = Some(crate::procscan::Usage {
        rss_bytes: 2048 * 1024 + 1000,
        cpu_ticks: ticks,
    });
    a.health = Some((1, 3));
    let mut b = view("db:0", State::Stopped);
    b.last_exit = Some(Exit::Signal(15));
    let mut c = view("q:0", State::Fatal);
    c.last_exit = Some(Exit::Code(3));
    c.message = "say \"hi\"\n\\".into();
    assert_eq!(
        status_json(&[a, b, c]),
        "[{\"name\":\"web:1\",\"program\":\"web\",\"index\":1,\"state\":\"RUNNING\",\"pid\":42,\"uptime_s\":65,\"exit_code\":null,\"signal\":null,\"restarts\":2,\"message\":\"pid 42, uptime 0:01:05, unhealthy (1/3)\",\"rss_kb\":2048,\"cpu_s\":1.5,\"healthy\":false},\
{\"name\":\"db:0\",\"program\":\"db\",\"index\":0,\"state\":\"STOPPED\",\"pid\":null,\"uptime_s\":null,\"exit_code\":null,\"signal\":\"SIGTERM\",\"restarts\":0,\"message\":\"killed by SIGTERM\",\"rss_kb\":null,\"cpu_s\":null,\"healthy\":null},\
{\"name\":\"q:0\",\"program\":\"q\",\"index\":0,\"state\":\"FATAL\",\"pid\":null,\"uptime_s\":null,\"exit_code\":3,\"signal\":null,\"restarts\":0,\"message\":\"say \\\"hi\\\"\\n\\\\\",\"rss_kb\":null,\"cpu_s\":null,\"healthy\":null}]"
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

/// `status` writes every line into one buffer: each line lands after what is
/// there, trailing blanks trimmed, and only that line is stuffed.
#[test]
fn status_lines_written_into_one_buffer() {
    let mut out = String::from("ERR:0  STOPPED\n");
    let start = out.len();
    let mut a = view("ERR:1", State::Backoff);
    a.pid = Some(7);
    a.uptime = Some(Duration::from_secs(3599));
    a.message = "exited 1".into();
    write_status_line(&mut out, &a, 6);
    stuff_tail(&mut out, start);
    out.push('\n');
    let start = out.len();
    write_status_line(&mut out, &view("b:0", State::Stopped), 6);
    stuff_tail(&mut out, start);
    assert_eq!(
        out,
        "ERR:0  STOPPED\n.ERR:1   BACKOFF              pid 7, uptime 0:59:59, exited 1\nb:0     STOPPED"
    );
}
