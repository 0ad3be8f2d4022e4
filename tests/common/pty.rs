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
    /// What a terminal would show of everything written since
    /// `truthful_cursor` was called.
    pub model: Screen,
    /// Answer cursor queries with the model's real position, as a terminal
    /// does, instead of always "row 1, column 1" (see `truthful_cursor`).
    truthful: bool,
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
            model: Screen::default(),
            truthful: false,
        }
    }

    /// From now on, cursor queries get the position a real terminal would
    /// report. rustyline starts a new line before its prompt when the cursor
    /// is not in the first column, so what a person sees after an abandoned
    /// line can only be checked this way.
    pub fn truthful_cursor(&mut self) {
        self.truthful = true;
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
                // The model costs an allocation per byte: only for the tests
                // that asked for it (others pump megabytes).
                if self.truthful {
                    for (row, col) in self.model.feed(chunk) {
                        self.send(&format!("\x1b[{};{}R", row + 1, col + 1));
                    }
                } else {
                    let queries = chunk
                        .windows(CURSOR_QUERY.len())
                        .filter(|w| *w == CURSOR_QUERY)
                        .count();
                    for _ in 0..queries {
                        self.send("\x1b[1;1R");
                    }
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

    /// Waits until the screen model (`truthful_cursor`) has a row that reads
    /// exactly `row`: unlike `expect`, a redraw of an older line that merely
    /// contains the same text does not count.
    pub fn expect_row(&mut self, row: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.model.rows().iter().any(|r| r == row) {
            assert!(
                Instant::now() < deadline && !self.eof,
                "no row {row:?} in {:#?}",
                self.model.rows()
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

/// A minimal terminal: enough of VT100 for rustyline's output (text, CR, LF,
/// cursor moves, erase in line and display; colours ignored), no wrapping.
#[derive(Default)]
pub struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// An escape sequence, or a UTF-8 character, cut by the end of a read.
    partial: Vec<u8>,
}

impl Screen {
    /// Interprets `bytes`; the cursor position at each cursor query.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<(usize, usize)> {
        let mut queries = Vec::new();
        for &b in bytes {
            self.partial.push(b);
            let p = std::mem::take(&mut self.partial);
            match p.as_slice() {
                [0x1b] | [0x1b, b'['] => self.partial = p,
                [0x1b, b'[', .., last] if !(0x40..=0x7e).contains(last) => self.partial = p,
                [0x1b, b'[', params @ .., last] => {
                    let text = String::from_utf8_lossy(params);
                    if *last == b'n' && text == "6" {
                        queries.push((self.row, self.col));
                    }
                    self.csi(&text, *last);
                }
                [0x1b, _] => {}
                [b'\r'] => self.col = 0,
                [b'\n'] => self.row += 1,
                [8] => self.col = self.col.saturating_sub(1),
                [c] if *c < 0x20 || *c == 0x7f => {}
                _ => match std::str::from_utf8(&p) {
                    Ok(s) => s.chars().for_each(|c| self.put(c)),
                    Err(e) if e.error_len().is_none() => self.partial = p,
                    Err(_) => self.put('?'),
                },
            }
        }
        queries
    }

    fn csi(&mut self, params: &str, cmd: u8) {
        let nums: Vec<usize> = params
            .trim_start_matches('?')
            .split(';')
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let n = nums.first().copied().unwrap_or(0).max(1);
        let mode = nums.first().copied().unwrap_or(0);
        match cmd {
            b'A' => self.row = self.row.saturating_sub(n),
            b'B' => self.row += n,
            b'C' => self.col += n,
            b'D' => self.col = self.col.saturating_sub(n),
            b'H' => {
                self.row = nums.first().copied().unwrap_or(1).saturating_sub(1);
                self.col = nums.get(1).copied().unwrap_or(1).saturating_sub(1);
            }
            b'K' if mode == 2 => self.line().clear(),
            b'K' => {
                let col = self.col;
                self.line().truncate(col);
            }
            b'J' => {
                let col = self.col;
                self.line().truncate(col);
                self.rows.truncate(self.row + 1);
            }
            _ => {} // colours, modes, queries
        }
    }

    fn line(&mut self) -> &mut Vec<char> {
        if self.rows.len() <= self.row {
            self.rows.resize(self.row + 1, Vec::new());
        }
        &mut self.rows[self.row]
    }

    fn put(&mut self, c: char) {
        let col = self.col;
        let line = self.line();
        if line.len() <= col {
            line.resize(col + 1, ' ');
        }
        line[col] = c;
        self.col += 1;
    }

    /// The rows as a person would read them, trailing blanks removed.
    pub fn rows(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| r.iter().collect::<String>().trim_end().to_string())
            .collect()
    }
}
