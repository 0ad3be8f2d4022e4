//! A scripted stand-in for taskmasterd, for client behaviour the real daemon
//! cannot be made to show on demand (exact bytes, dot-stuffed lines, the end
//! of a raw stream): it accepts one connection and runs a script on it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Longest the fake waits for the client, for a connection or for bytes.
const WAIT: Duration = Duration::from_secs(20);

pub struct Fake<T> {
    pub sock: PathBuf,
    _dir: tempfile::TempDir,
    script: Option<JoinHandle<T>>,
}

/// The accepted connection, every read bounded by `WAIT`.
pub struct Conn {
    r: BufReader<UnixStream>,
}

/// A script for one connection.
pub type Script<T> = Box<dyn FnOnce(&mut Conn) -> T + Send>;

impl<T: Send + 'static> Fake<T> {
    /// Listens on a fresh socket; the first client gets `script`.
    pub fn serve(script: impl FnOnce(&mut Conn) -> T + Send + 'static) -> Fake<T> {
        Fake::start(vec![Box::new(script)], |mut all| {
            all.pop().expect("one result")
        })
    }
}

impl<T: Send + 'static> Fake<Vec<T>> {
    /// The n-th connection gets the n-th script; they run side by side.
    pub fn serve_each(scripts: Vec<Script<T>>) -> Fake<Vec<T>> {
        Fake::start(scripts, |all| all)
    }
}

impl<R: Send + 'static> Fake<R> {
    fn start<T: Send + 'static>(
        scripts: Vec<Script<T>>,
        done: impl FnOnce(Vec<T>) -> R + Send + 'static,
    ) -> Fake<R> {
        let dir = tempfile::tempdir().expect("tempdir");
        let sock = dir.path().join("fake.sock");
        let listener = UnixListener::bind(&sock).expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let script = std::thread::spawn(move || {
            let deadline = Instant::now() + WAIT;
            let mut running = Vec::new();
            for script in scripts {
                let stream = loop {
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            assert!(Instant::now() < deadline, "no client connected");
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        Err(e) => panic!("accept: {e}"),
                    }
                };
                stream.set_nonblocking(false).expect("blocking");
                stream.set_read_timeout(Some(WAIT)).expect("read timeout");
                stream.set_write_timeout(Some(WAIT)).expect("write timeout");
                running.push(std::thread::spawn(move || {
                    script(&mut Conn {
                        r: BufReader::new(stream),
                    })
                }));
            }
            let results = running.into_iter().map(|t| match t.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            });
            done(results.collect())
        });
        Fake {
            sock,
            _dir: dir,
            script: Some(script),
        }
    }

    /// What the scripts returned; a script's panic, if one panicked.
    pub fn result(mut self) -> R {
        let script = self.script.take().expect("result taken once");
        match script.join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

impl Conn {
    /// One line from the client, without its `\n`.
    pub fn line(&mut self) -> String {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(_) if l.ends_with('\n') => {
                l.pop();
                l
            }
            Ok(_) => panic!("the client closed mid-line after {l:?}"),
            Err(e) => panic!("no line from the client: {e} (got {l:?})"),
        }
    }

    /// One line from the client, or `None` once it closed.
    pub fn line_or_eof(&mut self) -> Option<String> {
        let mut l = String::new();
        match self.r.read_line(&mut l) {
            Ok(0) => None,
            Ok(_) if l.ends_with('\n') => {
                l.pop();
                Some(l)
            }
            Ok(_) => panic!("the client closed mid-line after {l:?}"),
            Err(e) => panic!("no line from the client: {e} (got {l:?})"),
        }
    }

    /// A line from the client if one comes within `wait`.
    pub fn line_within(&mut self, wait: Duration) -> Option<String> {
        self.r
            .get_ref()
            .set_read_timeout(Some(wait))
            .expect("read timeout");
        let mut l = String::new();
        let got = match self.r.read_line(&mut l) {
            Ok(_) if l.ends_with('\n') => {
                l.pop();
                Some(l)
            }
            Ok(_) => panic!("the client closed mid-line after {l:?}"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                assert!(l.is_empty(), "part of a line, then nothing: {l:?}");
                None
            }
            Err(e) => panic!("reading from the client: {e}"),
        };
        self.r
            .get_ref()
            .set_read_timeout(Some(WAIT))
            .expect("read timeout");
        got
    }

    /// Bytes from the client up to and including `end`.
    pub fn until(&mut self, end: u8) -> Vec<u8> {
        let mut v = Vec::new();
        match self.r.read_until(end, &mut v) {
            Ok(_) if v.last() == Some(&end) => v,
            Ok(_) => panic!("the client closed before {end:#x}; got {v:?}"),
            Err(e) => panic!("no {end:#x} from the client: {e} (got {v:?})"),
        }
    }

    /// Everything the client sends until it closes.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        if let Err(e) = self.r.read_to_end(&mut v) {
            panic!("the client did not close: {e} (got {v:?})");
        }
        v
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.r
            .get_mut()
            .write_all(bytes)
            .expect("send to the client");
    }
}
