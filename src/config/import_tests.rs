use super::*;
use std::fs;

fn convert(text: &str) -> (tempfile::TempDir, Import) {
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("supervisord.conf");
    fs::write(&f, text).unwrap();
    let i = import(&f).unwrap();
    (t, i)
}

#[test]
fn programs_and_top_sections_translate() {
    let (t, i) = convert(
        "[unix_http_server]\nfile=%(here)s/s.sock\nchmod=0770\n\n[supervisord]\nlogfile=d.log\n\
         logfile_maxbytes=5MB\nnodaemon=true\nenvironment=GLOBAL=\"g\",A=\"global\"\n\n\
         [rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = x\n\n\
         [program:web]\ncommand=/bin/sh -c \"echo %(process_num)02d\" ; inline\n\
         process_name=%(program_name)s_%(process_num)02d\nnumprocs=2\nautorestart=true\n\
         startsecs=0\nstopwaitsecs=3\nexitcodes=0,2\nstopasgroup=true\nkillasgroup=true\n\
         environment=A=\"x,y\",B='z'\nstdout_logfile=web.log\nredirect_stderr=true\n\
         stderr_logfile=/tmp/never\n",
    );
    let d = t.path().display().to_string();
    let want = format!(
        "socket: \"{d}/s.sock\"\nsocket_mode: \"0770\"\nlogfile: \"{d}/d.log\"\nlogfile_maxbytes: \"5MB\"\n\
         programs:\n  web:\n    cmd: \"/bin/sh -c \\\"echo %(process_num)02d\\\"\"\n    numprocs: 2\n    \
         autorestart: always\n    starttime: 0\n    stoptime: 3\n    exitcodes: [0, 2]\n    \
         stdout: \"{d}/web.log\"\n    redirect_stderr: true\n    env:\n      \"GLOBAL\": \"g\"\n      \
         \"A\": \"x,y\"\n      \"B\": \"z\"\n"
    );
    assert_eq!(i.yaml.split_once('\n').unwrap().1, want);
    // process_name and stderr_logfile have no place here: one warning each.
    assert_eq!(i.warnings.len(), 2, "{:#?}", i.warnings);
    assert!(
        i.warnings[0].contains(":16: [program:web] process_name: processes are always named web:N")
    );
    assert!(i.warnings[1].contains("[program:web] stderr_logfile: ignored with redirect_stderr"));
    // The output loads.
    let yaml = t.path().join("out.yaml");
    fs::write(&yaml, &i.yaml).unwrap();
    let c = crate::config::load(&yaml).unwrap();
    assert_eq!(c.programs[0].for_process(1).argv[2], "echo 01");
}

#[test]
fn untranslatable_settings_say_what_to_do() {
    let (_t, i) = convert(
        "[inet_http_server]\nport=*:9001\nusername=u\npassword=p\n[supervisord]\nloglevel=debug\n\
         [group:g]\nprograms=a,b\n[eventlistener:e]\ncommand=x\n[fcgi-program:f]\ncommand=y\n\
         [program:all]\ncommand=z\nautorestart=sometimes\npriority=x\nstdout_logfile=AUTO\nbogus=1\n\
         [program:nocmd]\nautostart=false\n[weird]\n",
    );
    let w = i.warnings.join("\n");
    for needle in [
        "[inet_http_server] port: written commented out",
        "[inet_http_server] username: no HTTP basic auth",
        "[supervisord] loglevel: set RUST_LOG",
        "[group:g]: no groups",
        // The hooks that replace crashmail-style listeners, not just the POST.
        "[eventlistener:e]: no event listeners: report_events with report_command",
        "[fcgi-program:f]: no FastCGI",
        "[program:all]: renamed `all_`",
        "[program:all] autorestart: \"sometimes\" is not true, false or unexpected",
        "[program:all] priority: \"x\" is not a number",
        "[program:all] stdout_logfile: no automatic log files",
        "[program:all] bogus: unknown setting",
        "[program:nocmd]: no `command`: skipped",
        "[weird]: unknown section",
    ] {
        assert!(w.contains(needle), "{needle} not in\n{w}");
    }
    assert!(
        i.yaml.contains("# listen: \"127.0.0.1:9001\"\n"),
        "{}",
        i.yaml
    );
    assert!(i.yaml.contains("  all_:\n    cmd: \"z\"\n"), "{}", i.yaml);
}

#[test]
fn include_files_are_inlined_and_an_unreadable_file_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    fs::create_dir(d.join("conf.d")).unwrap();
    fs::write(
        d.join("main.conf"),
        "[include]\nfiles = conf.d/*.ini\n[program:a]\ncommand=a\n",
    )
    .unwrap();
    fs::write(
        d.join("conf.d/b.ini"),
        "[program:b]\ncommand=%(here)s/b\n[program:a]\ncommand=dup\n",
    )
    .unwrap();
    let i = import(&d.join("main.conf")).unwrap();
    assert!(
        i.yaml
            .contains(&format!("  b:\n    cmd: \"{}/conf.d/b\"\n", d.display())),
        "{}",
        i.yaml
    );
    assert!(
        i.warnings
            .join("\n")
            .contains("program `a` is defined twice"),
        "{:?}",
        i.warnings
    );
    assert!(import(&d.join("missing.conf"))
        .unwrap_err()
        .contains("cannot read"));
}

#[test]
fn many_programs_and_variables_convert_in_linear_time() {
    // A scan per section (duplicate names) and per variable (the daemon-wide
    // environment against each program's) made these take minutes.
    let vars = |v: u8| -> String {
        let all: Vec<String> = (0..100_000).map(|i| format!("G{i}={v}")).collect();
        all.join(",")
    };
    let global = format!("[supervisord]\nenvironment={}\n", vars(1));
    let mut own = String::new();
    for i in 0..2 {
        own += &format!(
            "[program:e{i}]\ncommand=/bin/true\nenvironment={}\n",
            vars(2)
        );
    }
    let mut many = String::new();
    for i in 0..50_000 {
        many += &format!("[program:p{i}]\ncommand=/bin/true\n");
    }
    many += "[program:p7]\ncommand=/bin/false\n";
    let timed = |text: String| {
        let start = std::time::Instant::now();
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("supervisord.conf");
        fs::write(&f, text).unwrap();
        let i = import(&f);
        assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
        i
    };
    let i = timed(global.clone() + &own).unwrap();
    assert_eq!(i.yaml.matches("\"G7\": \"2\"").count(), 2);
    assert!(!i.yaml.contains("\"G7\": \"1\""));
    let i = timed(many.clone()).unwrap();
    assert_eq!(i.warnings.len(), 1, "{:?}", i.warnings);
    assert!(i.warnings[0].contains("program `p7` is defined twice"));
    // The daemon-wide variables copied into 50 000 programs: far too much.
    let e = timed(global + &many).unwrap_err();
    assert!(e.contains("larger than 16 MiB"), "{e}");
}
