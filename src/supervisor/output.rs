//! The supervisor's side of process output: pipes made at spawn, read when
//! readable (budgeted, with leftovers on a ready list), drained before an exit
//! is judged, and new lines handed to the reactor for `tail -f` followers.

use super::Supervisor;
use crate::output::{self, Which, READ_PER_TURN};
use crate::rotate::Sink;
use crate::spawn::ChildIo;
use log::{debug, warn};
use mio::unix::SourceFd;
use mio::{Interest, Token};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Tokens `OUT_TOKEN + 2 * slot + stream` are output pipes.
pub const OUT_TOKEN: usize = 4 << 32;
/// Most bytes read from one stream while draining it at its process's exit.
const DRAIN_AT_EXIT: usize = 4 * 1024 * 1024;
/// Most bytes read from all streams in one turn of the loop (each stream gets
/// at most `READ_PER_TURN` of it): with many processes flooding at once, a
/// turn stays short and clients are served in between. Nothing is lost: the
/// streams left wait in line (first come, first read) for the next turns.
pub const READ_PER_TURN_ALL: usize = 1024 * 1024;

/// New lines of (slot, stream) for its `tail -f` followers: dot-stuffed, each
/// ending in `\n`, all of one read together (one write per follower).
pub struct OutLine {
    pub slot: usize,
    pub which: Which,
    pub text: String,
}

impl Supervisor {
    /// Pipes (or a pty) and files for a spawn of `slot`: returns the child's side.
    pub(super) fn prepare_output(&mut self, slot: usize) -> Result<ChildIo, String> {
        // What an earlier incarnation left in its pipes is read first.
        for which in Which::BOTH {
            self.close_pipe(slot, which, true);
        }
        let Some(p) = self.get(slot) else {
            return Err("removed".into());
        };
        let (rc, index) = (p.cfg.clone(), p.index);
        // Its own `%(process_num)` file names, if it has any.
        let cfg = rc.for_process(index);
        let join = cfg.stderr_joins_stdout() || (cfg.stderr.is_some() && cfg.stderr == cfg.stdout);
        let files: [(Option<&PathBuf>, u64, u32); 2] = [
            (
                cfg.stdout.as_ref(),
                cfg.rare.stdout_maxbytes,
                cfg.rare.stdout_backups,
            ),
            (
                cfg.stderr.as_ref().filter(|_| !join),
                cfg.rare.stderr_maxbytes,
                cfg.rare.stderr_backups,
            ),
        ];
        let mut sinks = Vec::with_capacity(2);
        for (which, (path, max, backups)) in Which::BOTH.into_iter().zip(files) {
            let keep = self
                .get(slot)
                .and_then(|p| p.out[which as usize].sink.as_ref());
            sinks.push(match (path, keep) {
                (Some(path), Some(s)) if s.path() == path.as_path() => None,
                (Some(path), _) => Some(Some(Box::new(Sink::open(
                    path,
                    which.name(),
                    max,
                    backups,
                )?))),
                (None, _) => Some(None),
            });
        }
        let (out_r, err_r, io) = if cfg.attach {
            let (m, s) = output::pty(24, 80).map_err(|e| format!("pty: {e}"))?;
            (m, None, ChildIo::Pty(s))
        } else {
            let (out_r, out_w) = output::pipe().map_err(|e| format!("pipe: {e}"))?;
            let (err_r, err_w) = if join {
                (None, out_w.try_clone().map_err(|e| format!("pipe: {e}"))?)
            } else {
                let (r, w) = output::pipe().map_err(|e| format!("pipe: {e}"))?;
                (Some(r), w)
            };
            let io = ChildIo::Pipes {
                stdout: out_w,
                stderr: err_w,
            };
            (out_r, err_r, io)
        };
        for (which, read) in [(Which::Stdout, Some(out_r)), (Which::Stderr, err_r)] {
            let Some(fd) = read else { continue };
            let token = Token(OUT_TOKEN + 2 * slot + which as usize);
            // A terminal is written to as well (an attached client's keys):
            // its writable edge resumes input that did not fit.
            let interest = if cfg.attach {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            self.reg
                .register(&mut SourceFd(&fd.as_raw_fd()), token, interest)
                .map_err(|e| format!("cannot watch the {} pipe: {e}", which.name()))?;
            if let Some(p) = self.get_mut(slot) {
                p.out[which as usize].pipe = Some(fd);
                p.out[which as usize].busy = None;
            }
        }
        if let Some(p) = self.get_mut(slot) {
            for (i, sink) in sinks.into_iter().enumerate() {
                if let Some(s) = sink {
                    p.out[i].sink = s;
                } else if let Some(s) = &mut p.out[i].sink {
                    s.set_limits(files[i].1, files[i].2);
                }
            }
        }
        Ok(io)
    }

    /// `slot`'s `which` pipe is readable: read it now, or, when the turn's
    /// budget is spent or other streams wait with output left, queue it
    /// behind them.
    pub fn on_output(&mut self, slot: usize, which: Which) {
        if self.read_this_turn >= READ_PER_TURN_ALL || !self.out_ready.is_empty() {
            return self.enqueue(slot, which);
        }
        self.read_output(slot, which, false);
    }

    /// Puts `slot`'s `which` stream at the end of the line, unless it is on it.
    fn enqueue(&mut self, slot: usize, which: Which) {
        let Some(p) = self.get_mut(slot) else { return };
        let stream = &mut p.out[which as usize];
        if !std::mem::replace(&mut stream.queued, true) {
            self.out_ready.push_back((slot, which));
        }
    }

    /// Reads what is in `slot`'s `which` pipe (one turn's budget, or up to
    /// `DRAIN_AT_EXIT` when `drain`), closing it at EOF.
    fn read_output(&mut self, slot: usize, which: Which, drain: bool) {
        let follow = self.followed.contains_key(&(slot, which));
        let raw = which == Which::Stdout && self.attached.contains(&slot);
        let Some(p) = self.get_mut(slot) else { return };
        let name = p.name.clone();
        let stream = &mut p.out[which as usize];
        let budget = if drain { DRAIN_AT_EXIT } else { READ_PER_TURN };
        let mut got = stream.read(budget, follow, raw);
        let tail = if got.eof { stream.take_partial() } else { None };
        self.read_this_turn += got.bytes;
        if !got.raw.is_empty() {
            self.raw.push((slot, std::mem::take(&mut got.raw)));
        }
        if let Some(e) = &got.error {
            warn!("{name}: {} file: {e}", which.name());
        }
        let mut text = String::new();
        for line in got.lines.iter().chain(tail.iter().filter(|_| follow)) {
            text.push_str(&crate::protocol::stuff(line));
            text.push('\n');
        }
        if !text.is_empty() {
            self.lines.push(OutLine { slot, which, text });
        }
        if got.eof {
            self.close_pipe(slot, which, false);
        } else if got.more && !drain {
            self.enqueue(slot, which);
        }
    }

    /// Streams with unread output left over, in order, while the turn's
    /// budget lasts.
    pub fn output_again(&mut self) {
        for _ in 0..self.out_ready.len() {
            if self.read_this_turn >= READ_PER_TURN_ALL {
                return;
            }
            if let Some((slot, which)) = self.out_ready.pop_front() {
                if let Some(p) = self.get_mut(slot) {
                    p.out[which as usize].queued = false;
                }
                self.read_output(slot, which, false);
            }
        }
    }

    /// Reads everything now in `slot`'s pipes: a process's output lands in its
    /// file before its exit is logged.
    pub(super) fn drain_output(&mut self, slot: usize) {
        for which in Which::BOTH {
            if self
                .get(slot)
                .is_some_and(|p| p.out[which as usize].pipe.is_some())
            {
                self.read_output(slot, which, true);
            }
        }
    }

    /// Deregisters and closes a pipe (after reading what is left, if `drain`).
    pub(super) fn close_pipe(&mut self, slot: usize, which: Which, drain: bool) {
        if drain
            && self
                .get(slot)
                .is_some_and(|p| p.out[which as usize].pipe.is_some())
        {
            self.read_output(slot, which, true);
        }
        let Some(p) = self.procs.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        p.out[which as usize].busy = None;
        // Closing the pipe's read end, which only the daemon holds (it is
        // close-on-exec and every spawn has exec'd when it returns), takes it
        // out of the epoll set: no EPOLL_CTL_DEL first.
        if p.out[which as usize].pipe.take().is_some() {
            debug!("{}: {} pipe closed", p.name, which.name());
        }
        if std::mem::take(&mut p.out[which as usize].queued) {
            self.out_ready.retain(|r| *r != (slot, which));
        }
    }

    /// Bytes typed by an attached client, for the process's terminal: how many
    /// it took (the rest waits for the terminal's writable edge).
    pub fn write_terminal(&mut self, slot: usize, bytes: &[u8]) -> usize {
        let Some(fd) = self.get(slot).and_then(|p| p.out[0].pipe.as_ref()) else {
            return 0;
        };
        let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
        n.max(0) as usize
    }

    /// The attached client's window size, for the process's terminal.
    pub fn set_winsize(&self, slot: usize, rows: u16, cols: u16) {
        if let Some(fd) = self.get(slot).and_then(|p| p.out[0].pipe.as_ref()) {
            output::set_winsize(fd, rows, cols);
        }
    }

    /// `reopen` and SIGUSR2: every process output file is opened again.
    pub fn reopen_outputs(&mut self) -> Vec<String> {
        let mut failed = Vec::new();
        for p in self.procs.iter_mut().flatten() {
            for s in p.out.iter_mut() {
                if let Some(sink) = &mut s.sink {
                    if let Err(e) = sink.reopen() {
                        failed.push(format!("{}: {e}", p.name));
                    }
                }
            }
        }
        failed
    }
}
