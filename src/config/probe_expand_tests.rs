use super::super::parse;
use super::*;
use crate::config::HttpTarget;
use std::path::PathBuf;

fn program(extra: &str) -> Result<Program, Vec<String>> {
    let text = format!("programs:\n  p:\n    cmd: sleep 1\n{extra}");
    match parse(Path::new("/etc/tm/t.yaml"), &text) {
        Ok(mut c) => Ok(std::rc::Rc::unwrap_or_clone(c.programs.remove(0))),
        Err(e) => Err(e.iter().map(ToString::to_string).collect()),
    }
}

fn tcp(s: &str) -> Check {
    Check::Tcp(s.parse().unwrap())
}

#[test]
fn strings_equal_for_every_process_are_expanded_once() {
    let p = program(
        "    numprocs: 2\n    ready: {command: \"check %(program_name)s 100%%\"}\n    \
         healthcheck: {http: \"http://127.0.0.1:8080/%(program_name)s/h\"}\n",
    )
    .unwrap();
    let r = p.rare.ready.clone().unwrap();
    assert_eq!(
        r.check,
        Check::Command {
            text: "check p 100%".into(),
            argv: vec!["check".into(), "p".into(), "100%".into()]
        }
    );
    // No template, so no copy per process.
    assert_eq!(r.per_process, None);
    assert!(matches!(r.for_index(1), Cow::Borrowed(_)));
    let h = p.rare.healthcheck.clone().unwrap();
    assert_eq!(
        h.check,
        Check::Http(HttpTarget {
            address: "127.0.0.1:8080".parse().unwrap(),
            host: "127.0.0.1:8080".into(),
            path: "/p/h".into()
        })
    );
    let p = program("    ready: {file: \"%(here)s/%(program_name)s.up\"}\n").unwrap();
    assert_eq!(
        p.rare.ready.clone().unwrap().check,
        Check::File("/etc/tm/p.up".into())
    );
}

#[test]
fn each_process_gets_its_own_check_even_with_numprocs_after_ready() {
    // numprocs comes after the probe: expansion waits for the whole program.
    let p = program(
        "    ready: {tcp: \"127.0.0.1:90%(process_num)02d\", interval: 0.2}\n    \
         healthcheck: {http: \"http://127.0.0.1:81%(process_num)02d/%(program_name)s\", \
         retries: 2}\n    numprocs: 3\n",
    )
    .unwrap();
    let r = p.rare.ready.clone().unwrap();
    assert_eq!(r.check, tcp("127.0.0.1:9000"));
    assert!(r.per_process.is_some());
    for (i, want) in [
        (0, "127.0.0.1:9000"),
        (1, "127.0.0.1:9001"),
        (2, "127.0.0.1:9002"),
    ] {
        let own = r.for_index(i);
        assert_eq!(own.check, tcp(want));
        // The rest of the probe is the program's; the copy carries no template.
        assert_eq!((own.interval, own.per_process.as_ref()), (r.interval, None));
    }
    let h = p.rare.healthcheck.clone().unwrap();
    let own = h.for_index(2);
    assert_eq!(
        own.check,
        Check::Http(HttpTarget {
            address: "127.0.0.1:8102".parse().unwrap(),
            host: "127.0.0.1:8102".into(),
            path: "/p".into()
        })
    );
    assert_eq!(own.retries, 2);
    let p = program("    numprocs: 2\n    ready: {file: \"run/%(process_num)d.ok\"}\n").unwrap();
    let r = p.rare.ready.clone().unwrap();
    assert_eq!(r.check, Check::File("/etc/tm/run/0.ok".into()));
    assert_eq!(r.for_index(1).check, Check::File("/etc/tm/run/1.ok".into()));
    let p = program("    numprocs: 2\n    healthcheck: {command: \"ping -p %(process_num)d\"}\n")
        .unwrap();
    assert_eq!(
        p.rare.healthcheck.clone().unwrap().for_index(1).check,
        Check::Command {
            text: "ping -p 1".into(),
            argv: vec!["ping".into(), "-p".into(), "1".into()]
        }
    );
}

#[test]
fn a_folder_with_percent_joins_file_templates_literally() {
    let text = "programs:\n  p:\n    cmd: sleep 1\n    numprocs: 2\n    \
                ready: {file: \"r%(process_num)d\"}\n";
    let c = parse(Path::new("/srv/100%/t.yaml"), text).unwrap();
    let r = c.programs[0].rare.ready.as_ref().unwrap();
    assert_eq!(r.check, Check::File(PathBuf::from("/srv/100%/r0")));
    assert_eq!(r.for_index(1).check, Check::File("/srv/100%/r1".into()));
}

#[test]
fn errors_name_file_line_key_and_the_process() {
    let cases = [
        (
            "    numprocs: 7\n    ready:\n      tcp: \"127.0.0.1:6553%(process_num)d\"\n",
            "/etc/tm/t.yaml:6: programs.p.ready.tcp: for process 6 (\"127.0.0.1:65536\"): \
             expected HOST:PORT",
        ),
        (
            "    healthcheck:\n      http: \"http://127.0.0.1:6553%(process_num)d/\"\n    \
             numprocs: 9\n",
            "/etc/tm/t.yaml:5: programs.p.healthcheck.http: for process 6 \
             (\"http://127.0.0.1:65536/\"): expected http://HOST",
        ),
        (
            "    ready:\n      tcp: \"%(program_name)s:80\"\n",
            "/etc/tm/t.yaml:5: programs.p.ready.tcp: expected HOST:PORT",
        ),
        (
            "    ready:\n      command: \"'%(program_name)s\"\n",
            "/etc/tm/t.yaml:5: programs.p.ready.command: unterminated quote",
        ),
        (
            "    ready:\n      file: \"%(nope)s\"\n",
            "/etc/tm/t.yaml:5: programs.p.ready.file: unknown expansion %(nope)",
        ),
        (
            "    healthcheck:\n      tcp: \"127.0.0.1:%(program_name)d\"\n",
            "/etc/tm/t.yaml:5: programs.p.healthcheck.tcp: %(program_name)d: program_name is text",
        ),
        (
            "    ready:\n      tcp: \"127.0.0.1:%(ENV_TASKMASTER_SURELY_UNSET_42)s\"\n",
            "/etc/tm/t.yaml:5: programs.p.ready.tcp: %(ENV_TASKMASTER_SURELY_UNSET_42)s: \
             TASKMASTER_SURELY_UNSET_42 is not set",
        ),
    ];
    for (yaml, want) in cases {
        let errors = program(yaml).expect_err(yaml);
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "{yaml}: {errors:?}"
        );
        // One bad string, one error: not one per process.
        assert_eq!(errors.len(), 1, "{errors:?}");
    }
}

#[test]
fn reload_compares_expanded_values() {
    let ready = |yaml: &str| program(yaml).unwrap().rare.ready.clone();
    let differ = |a: &str, b: &str, n| probes_differ(ready(a).as_deref(), ready(b).as_deref(), n);
    let t = |s: &str| format!("    numprocs: 3\n    ready: {{tcp: \"127.0.0.1:{s}\"}}\n");
    // Two spellings of the same ports.
    assert!(!differ(
        &t("900%(process_num)d"),
        &t("900%(process_num)1d"),
        3
    ));
    assert!(!differ(&t("9000"), &t("900%(process_num)d"), 1));
    assert!(!differ(
        &t("90%(process_num)02d"),
        &t("90%(process_num)02d"),
        3
    ));
    // Process 0 is the same, process 1 is not.
    assert!(differ(&t("9000"), &t("900%(process_num)d"), 3));
    assert!(differ(
        &t("900%(process_num)d"),
        &t("910%(process_num)d"),
        3
    ));
    assert!(differ(&t("9000"), "", 3));
    assert!(!differ("", "", 3));
    let old = t("900%(process_num)d").replace("tcp", "interval: 1, tcp");
    assert!(differ(&old, &t("900%(process_num)d"), 3));
}
