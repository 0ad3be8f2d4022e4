//! taskmasterctl on a real pseudo-terminal: keys in, screen bytes out.
// Each test uses a part of the harness.
#![allow(dead_code)]

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::pty::{openpty, Winsize};
use nix::sys::termios::{tcgetattr, tcsetattr, SetArg, Termios};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// rustyline asks where the cursor is before each prompt.
const CURSOR_QUERY: &[u8] = b"\x1b[6n";

pub struct Pty {
    master: File,
    child: Child,
    /// Everything the program wrote since the last `expect`.
    pub screen: Vec<u8>,
    eof: bool,
}

impl Pty {
    /// Runs `cmd` with a pty as its controlling terminal and stdio.
    pub fn spawn(cmd: Command) -> Pty {
        Pty::spawn_with(cmd, |_| {})
    }

    /// `spawn`, with the terminal's settings changed by `tweak` first.
    pub fn spawn_with(mut cmd: Command, tweak: impl FnOnce(&mut Termios)) -> Pty {
        let size = Winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).expect("openpty");
        let slave = File::from(pty.slave);
        let mut settings = tcgetattr(&slave).expect("tcgetattr");
        tweak(&mut settings);
        tcsetattr(&slave, SetArg::TCSANOW, &settings).expect("tcsetattr");
        cmd.stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave)
            .env("TERM", "xterm");
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on the pty");
        drop(cmd);
        Pty {
            master: File::from(pty.master),
            child,
            screen: Vec::new(),
            eof: false,
        }
    }

    pub fn send(&mut self, keys: &str) {
        self.master
            .write_all(keys.as_bytes())
            .expect("write to pty");
    }

    /// Reads what is ready within `wait`; answers cursor queries.
    fn pump(&mut self, wait: Duration) {
        if self.eof {
            return;
        }
        let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(ms)).unwrap_or(0) <= 0 {
            return;
        }
        let mut buf = [0u8; 4096];
        match self.master.read(&mut buf) {
            // EIO: the last holder of the slave side is gone.
            Ok(0) | Err(_) => self.eof = true,
            Ok(n) => {
                let chunk = &buf[..n];
                let queries = chunk
                    .windows(CURSOR_QUERY.len())
                    .filter(|w| *w == CURSOR_QUERY)
                    .count();
                for _ in 0..queries {
                    self.send("\x1b[1;1R");
                }
                self.screen.extend_from_slice(chunk);
            }
        }
    }

    /// The terminal's current settings (the master reads the slave's).
    pub fn termios(&self) -> Termios {
        tcgetattr(&self.master).expect("tcgetattr")
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.screen).into_owned()
    }

    /// Waits until the screen shows `needle`, then forgets the screen up to it.
    pub fn expect(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = self.text();
            if let Some(i) = text.find(needle) {
                let end = i + needle.len();
                let seen = text[..end].to_string();
                self.screen = text.as_bytes()[end..].to_vec();
                return seen;
            }
            assert!(
                Instant::now() < deadline && !self.eof,
                "never saw {needle:?}; the screen shows {text:?}"
            );
            self.pump(Duration::from_millis(50));
        }
    }

    /// Reads until the program exits and its output is all read; its status.
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // What it wrote just before exiting may still be in the pty.
                while !self.eof && Instant::now() < deadline {
                    self.pump(Duration::from_millis(20));
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running; screen {:?}",
                self.text()
            );
            self.pump(Duration::from_millis(20));
        }
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
