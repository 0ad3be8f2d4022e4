//! `tail -f`: a reply that goes on until the user ends it with Ctrl-C.
//!
//! A follow has no reply timeout and no liveness checks: it is silent for as
//! long as the process is, which is normal, and checking every timeout would
//! wake an otherwise idle daemon for as long as someone watches a quiet
//! process. The daemon's health is judged where it matters: the connect is
//! bounded, and once Ctrl-C has sent the line that ends the follow, the final
//! `OK` must come within the timeout.

use super::wire::{self, Line, Partial, Stop};
use super::{secs, Client, Reply};
use std::io::{BufReader, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one wait lasts while nothing bounds the follow (it is renewed).
const FOLLOW_SLICE: Duration = Duration::from_secs(3600);

impl Client {
    /// Sends `line` (a `tail -f`) on a connection of its own and writes each
    /// body line to `out` as it arrives, until the daemon ends the reply.
    /// Ctrl-C, or `out` going away (`| head`), sends the empty line that ends
    /// the follow; the reply is then the daemon's final line. A daemon that
    /// closes after that counts as the follow having ended.
    pub fn follow(&mut self, line: &str, out: &mut dyn Write) -> Result<Reply, String> {
        let flag = self.sigint_flag();
        flag.store(false, Ordering::Relaxed);
        let timeout = self.timeout;
        let stream =
            wire::connect(&self.path, timeout, Some(&flag)).map_err(|e| self.connect_failed(&e))?;
        let mut reader = BufReader::new(stream);
        let _ = reader.get_ref().set_write_timeout(Some(timeout));
        if let Err(e) = reader.get_mut().write_all(format!("{line}\n").as_bytes()) {
            return Err(match e.kind() {
                ErrorKind::WouldBlock | ErrorKind::TimedOut => {
                    self.not_responding(&format!("could not send within {}", secs(timeout)))
                }
                _ => format!("send failed: {e}"),
            });
        }
        let mut part = Partial::new();
        // When the line that ends the follow was sent.
        let mut ended: Option<Instant> = None;
        // Whether `out` failed (its reader left): nothing more is written.
        let mut out_gone = false;
        loop {
            let until = match ended {
                Some(t) => t + timeout,
                None => Instant::now() + FOLLOW_SLICE,
            };
            let stop = match part.next_line(&mut reader, until, Some(&flag)) {
                Ok(Line::Final(reply)) => return Ok(reply),
                Ok(Line::Body(l)) => {
                    // Flushed line by line: a follow is read as it happens.
                    // Lines that come after Ctrl-C were written before it.
                    if !out_gone && writeln!(out, "{l}").and_then(|_| out.flush()).is_err() {
                        out_gone = true;
                        ended = ended.or_else(|| Some(end_follow(&mut reader)));
                    }
                    continue;
                }
                Err(stop) => stop,
            };
            match stop {
                Stop::Interrupted if ended.is_none() => {
                    flag.store(false, Ordering::Relaxed);
                    ended = Some(end_follow(&mut reader));
                }
                // A second Ctrl-C: the user does not want to wait for the OK.
                Stop::Interrupted => return Err("interrupted".into()),
                Stop::TimedOut if ended.is_none() => {}
                Stop::TimedOut => {
                    let what = format!("no OK within {} after ending the follow", secs(timeout));
                    return Err(self.not_responding(&what));
                }
                Stop::Eof if ended.is_some() => {
                    return Ok(Reply {
                        body: Vec::new(),
                        error: None,
                    })
                }
                Stop::Eof => return Err("the daemon closed the connection".into()),
                Stop::Failed(e) => return Err(format!("read failed: {e}")),
            }
        }
    }

    /// The flag SIGINT sets: the shell's, or one registered now (one-shot and
    /// script modes kill on Ctrl-C until a follow needs it as a request).
    fn sigint_flag(&mut self) -> Arc<AtomicBool> {
        if let Some(f) = &self.interrupt {
            return f.clone();
        }
        let flag = Arc::new(AtomicBool::new(false));
        // Without the handler Ctrl-C kills taskmasterctl, which the daemon
        // takes as the follow's end too: worse manners, same outcome.
        if signal_hook::flag::register(signal_hook::consts::SIGINT, flag.clone()).is_ok() {
            self.interrupt = Some(flag.clone());
        }
        flag
    }
}

/// Sends the line that ends a follow; when, for the wait for the final line.
/// A failed send is left to the read, which then sees the connection end.
fn end_follow(reader: &mut BufReader<std::os::unix::net::UnixStream>) -> Instant {
    let _ = reader.get_mut().write_all(b"\n");
    Instant::now()
}
