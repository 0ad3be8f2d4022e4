//! `tail -f` followers: who follows which process stream, and the delivery of
//! new lines to them (a follower 1 MiB behind is dropped).

use crate::output::Which;
use crate::protocol;
use crate::reactor::{Reactor, FOLLOW_MAX};
use log::warn;

impl Reactor {
    /// New lines of followed streams go to their followers; a follower that
    /// lets 1 MiB pile up is dropped, and a stream whose process was removed
    /// ends its follows.
    pub(crate) fn deliver_lines(&mut self) {
        for l in std::mem::take(&mut self.sup.lines) {
            let Some(ids) = self.followers.get(&(l.slot, l.which)).cloned() else {
                continue;
            };
            for id in ids {
                let Some(c) = self.clients.get_mut(&id) else {
                    continue;
                };
                if c.conn.dead || c.follow.is_none() {
                    continue;
                }
                if !c.conn.stream_out(l.text.as_bytes(), false, FOLLOW_MAX) {
                    // Told why, then closed once what it has is sent.
                    let peer = c.conn.peer.clone();
                    c.conn.dead = false;
                    c.conn.queue(&protocol::reply(
                        &[],
                        Err("tail -f dropped: more than 1 MiB behind".into()),
                    ));
                    c.conn.close_after_flush();
                    self.unfollow(id, (l.slot, l.which));
                    warn!("client {id} ({peer}): tail -f dropped, 1 MiB of output unread");
                }
            }
        }
        let removed: Vec<(usize, Which)> = self
            .followers
            .keys()
            .filter(|(slot, _)| self.sup.get(*slot).is_none())
            .copied()
            .collect();
        for key in removed {
            for id in self.followers.remove(&key).unwrap_or_default() {
                if let Some(c) = self.clients.get_mut(&id) {
                    c.follow = None;
                    c.conn
                        .queue(&protocol::reply(&[], Err("the process was removed".into())));
                    c.conn.flush();
                    self.wake(id);
                }
            }
            self.sup.followed.remove(&key);
        }
    }

    /// Client `id` follows `key` from now on.
    pub(crate) fn follow(&mut self, id: usize, key: (usize, Which)) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.follow = Some(key);
        }
        self.followers.entry(key).or_default().push(id);
        *self.sup.followed.entry(key).or_default() += 1;
    }

    /// Client `id` no longer follows `key`.
    pub(crate) fn unfollow(&mut self, id: usize, key: (usize, Which)) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.follow = None;
        }
        if let Some(v) = self.followers.get_mut(&key) {
            v.retain(|x| *x != id);
            if v.is_empty() {
                self.followers.remove(&key);
            }
        }
        if let Some(n) = self.sup.followed.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.sup.followed.remove(&key);
            }
        }
    }
}
