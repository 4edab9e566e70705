//! What the rest of the session tells a connection ([`Cmd`]: `have`, choke decisions, endgame
//! cancels, refills, data ready, close) and the connection's once-a-second clock: idle and
//! request timeouts, keep-alives, and the request pipeline depth following the peer's rate.

use std::sync::Arc;

use swarmd_proto::wire::Message;
use tokio::time::Instant;

use super::{Close, Peer, PIPELINE_SECS};
use crate::picker::{PieceSet, BLOCK_LEN};
use crate::session::shared::{Cmd, State};

impl Peer {
    pub(super) fn on_cmd(&mut self, cmd: Cmd) -> Result<(), Close> {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        match cmd {
            Cmd::Have(index) => {
                let has = st
                    .peers
                    .get(&self.key)
                    .is_some_and(|e| e.pieces.has_piece(index));
                if !has {
                    self.send(Message::Have { index });
                }
                self.sync_interest(&mut st)?;
            }
            Cmd::Choke | Cmd::Unchoke => self.sync_choke(&st),
            Cmd::Cancel(b) => {
                if let Some(i) = self.outstanding.iter().position(|r| *r == b) {
                    self.outstanding.remove(i);
                    self.send(Message::Cancel {
                        index: b.piece,
                        begin: b.begin,
                        length: b.length,
                    });
                }
            }
            Cmd::Refill => {}
            Cmd::Ready => self.on_ready(&mut st)?,
            Cmd::Close => return Err(Close::Asked),
        }
        self.refill(&mut st);
        Ok(())
    }

    /// Applies the choker's decision for this peer (its entry holds the truth).
    fn sync_choke(&mut self, st: &State) {
        let Some(choke) = st.peers.get(&self.key).map(|e| e.am_choking) else {
            return;
        };
        if choke == self.am_choking {
            return;
        }
        self.am_choking = choke;
        if !choke {
            self.send(Message::Unchoke);
            return;
        }
        self.send(Message::Choke);
        let mut dropped = Vec::new();
        self.serve.choke(&self.allowed_out, &mut dropped);
        if self.fast {
            for r in dropped {
                self.send(Message::Reject {
                    index: r.piece,
                    begin: r.begin,
                    length: r.length,
                });
            }
        }
    }

    /// Once a second: timeouts, keep-alive, pipeline depth, stalled requests, metadata.
    pub(super) fn on_tick(&mut self) -> Result<(), Close> {
        let now = Instant::now();
        let t = self.shared.config.timeouts;
        if now.duration_since(self.last_recv) >= t.idle {
            return Err(Close::Timeout("idle"));
        }
        if self.out_pos == self.out.len() && now.duration_since(self.last_send) >= t.keepalive {
            self.send(Message::KeepAlive);
        }
        self.rate = (self.rate + self.recv_tick) / 2;
        self.recv_tick = 0;
        let floor = self
            .shared
            .config
            .limits
            .initial_request_queue
            .min(self.max_depth);
        let target = self.rate * PIPELINE_SECS / u64::from(BLOCK_LEN);
        self.depth = usize::try_from(target)
            .unwrap_or(usize::MAX)
            .clamp(floor.max(1), self.max_depth);
        self.hold_refill = false;
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        if !self.outstanding.is_empty() && now.duration_since(self.last_progress) >= t.request {
            // Stalled: its requests go to other peers; it keeps a shallow pipeline.
            if let Some(d) = &mut st.data {
                d.picker.peer_dropped(self.key);
            }
            for b in std::mem::take(&mut self.outstanding) {
                self.send(Message::Cancel {
                    index: b.piece,
                    begin: b.begin,
                    length: b.length,
                });
            }
            self.depth = floor.max(1);
            self.hold_refill = true;
            st.refill_all();
        }
        self.request_metadata(&mut st, now);
        self.refill(&mut st);
        Ok(())
    }
}
