//! `attach NAME`: a client becomes the terminal of an `attach: true` process.
//! After the one body line the connection is raw both ways; byte 0x1d (Ctrl-])
//! from the client detaches, and the raw stream always ends with 0x1d, CRLF
//! and a final line (`OK` after a detach, `ERR NAME: exited (…)` when the
//! process ends), after which the connection is back in line mode.

use crate::conn::Filled;
use crate::protocol;
use crate::reactor::{Reactor, FOLLOW_MAX};
use log::{info, warn};

/// Ctrl-]: detaches; never sent from the process while attached.
pub const DETACH: u8 = 0x1d;
/// Recent output replayed to a client that attaches.
const REPLAY: usize = 4096;

fn without_marker(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().copied().filter(|b| *b != DETACH).collect()
}

impl Reactor {
    pub(crate) fn begin_attach(&mut self, id: usize, slot: usize, size: Option<(u16, u16)>) {
        let Some(p) = self.sup.get(slot) else { return };
        let name = p.name.clone();
        let pid = p.pid;
        let recent = without_marker(&p.out[0].ring().recent(REPLAY));
        if let Some((rows, cols)) = size {
            self.sup.set_winsize(slot, rows, cols);
        }
        self.sup.attached.insert(slot);
        self.attaches.insert(slot, (id, pid));
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        info!("client {id} ({}): attached to {name}", c.conn.peer);
        c.attached = Some(slot);
        c.conn
            .queue(&format!("attached to {name} (detach: Ctrl-])\n"));
        c.conn.queue_raw(&recent);
        c.conn.flush();
    }

    /// One turn of an attached client: its bytes go to the terminal, up to a
    /// Ctrl-] (what follows it is line-mode input again).
    pub(crate) fn serve_attached(&mut self, id: usize, slot: usize, bytes: &mut usize) -> bool {
        let Some(c) = self.clients.get_mut(&id) else {
            return false;
        };
        let input = c.conn.take_input();
        if input.is_empty() {
            if c.conn.readable && !c.conn.closing {
                if *bytes == 0 {
                    self.wake(id);
                    return false;
                }
                if let Filled::Bytes(n) = c.conn.fill() {
                    *bytes = bytes.saturating_sub(n);
                }
                return true;
            }
            return false;
        }
        let detach = input.iter().position(|b| *b == DETACH);
        let keys = &input[..detach.unwrap_or(input.len())];
        let written = self.sup.write_terminal(slot, keys);
        if written < keys.len() {
            // The terminal is full (the process is not reading): keep the rest,
            // read nothing more from the client, go on at the writable edge.
            if let Some(c) = self.clients.get_mut(&id) {
                c.conn.unread(&input[written..]);
            }
            return false;
        }
        if let Some(at) = detach {
            if let Some(c) = self.clients.get_mut(&id) {
                c.conn.unread(&input[at + 1..]);
            }
            self.detach(id, Ok(()));
        }
        true
    }

    /// Ends client `id`'s attach with the marker and `result` as final line.
    pub(crate) fn detach(&mut self, id: usize, result: Result<(), String>) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        let Some(slot) = c.attached.take() else {
            return;
        };
        c.conn.queue_raw(&[DETACH, b'\r', b'\n']);
        c.conn.queue(&protocol::reply(&[], result));
        c.conn.flush();
        self.attaches.remove(&slot);
        self.sup.attached.remove(&slot);
        self.wake(id);
    }

    /// The terminal output of attached processes goes to their clients; an
    /// attach whose process has ended is closed with the exit.
    pub(crate) fn deliver_raw(&mut self) {
        for (slot, bytes) in std::mem::take(&mut self.sup.raw) {
            let Some(&(id, _)) = self.attaches.get(&slot) else {
                continue;
            };
            let Some(c) = self.clients.get_mut(&id) else {
                continue;
            };
            if !c.conn.stream_out(&without_marker(&bytes), true, FOLLOW_MAX) {
                let peer = &c.conn.peer;
                warn!("client {id} ({peer}): attach dropped, 1 MiB of output unread");
            }
        }
        // Ended: no pid now, or another one (restarted in the same turn).
        let ended: Vec<(usize, usize)> = self
            .attaches
            .iter()
            .filter(|(slot, (_, pid))| self.sup.get(**slot).is_none_or(|p| p.pid != *pid))
            .map(|(s, (id, _))| (*s, *id))
            .collect();
        for (slot, id) in ended {
            let why = match self.sup.get(slot) {
                Some(p) => format!(
                    "{}: exited ({})",
                    p.name,
                    p.proc.last_exit.map_or("gone".into(), |e| e.describe())
                ),
                None => "removed".into(),
            };
            self.detach(id, Err(why));
        }
    }

    /// A client that is gone no longer holds its process's terminal.
    pub(crate) fn forget_attach(&mut self, slot: usize) {
        self.attaches.remove(&slot);
        self.sup.attached.remove(&slot);
    }
}
