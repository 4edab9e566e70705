//! What a connection does with each message the peer sends, and the two decisions it takes
//! after them: whether we are interested ([`Peer::sync_interest`]) and which blocks to request
//! ([`Peer::refill`]). Everything here runs under the state lock.

use std::sync::Arc;

use swarmd_proto::wire::{check_bitfield, ExtHandshake, Message, MetadataMsg};
use tokio::time::Instant;

use super::{store_block, Close, Peer, MAX_ALLOWED_IN, METADATA_PIPELINE, UT_METADATA_ID};
use crate::choke::MAX_UNCHOKED;
use crate::picker::{AllPieces, BlockRequest, PieceSet};
use crate::session::activate;
use crate::session::shared::{PeerEntry, State};

/// A peer's pieces restricted to those it allows us while choked (BEP 6 allowed fast).
struct AllowedFast<'a> {
    has: &'a dyn PieceSet,
    allowed: &'a [u32],
}

impl PieceSet for AllowedFast<'_> {
    fn has_piece(&self, piece: u32) -> bool {
        self.allowed.contains(&piece) && self.has.has_piece(piece)
    }
}

impl Peer {
    fn entry<'a>(&self, st: &'a mut State) -> Result<&'a mut PeerEntry, Close> {
        st.peers.get_mut(&self.key).ok_or(Close::Asked)
    }

    pub(super) fn on_message(
        &mut self,
        st: &mut State,
        msg: Message<'_>,
        now: Instant,
    ) -> Result<(), Close> {
        match msg {
            Message::KeepAlive
            | Message::Port(_)
            | Message::Suggest { .. }
            | Message::Unknown { .. } => {}
            Message::Choke => {
                self.peer_choking = true;
                self.entry(st)?.peer_choking = true;
                if !self.fast {
                    // BEP 3: a choke drops every request. (BEP 6: each gets a reject.)
                    self.outstanding.clear();
                    if let Some(d) = &mut st.data {
                        if !d.picker.peer_dropped(self.key).is_empty() {
                            st.refill_all();
                        }
                    }
                }
            }
            Message::Unchoke => {
                self.peer_choking = false;
                self.entry(st)?.peer_choking = false;
            }
            Message::Interested => self.on_interested(st)?,
            Message::NotInterested => self.entry(st)?.peer_interested = false,
            Message::Have { index } => self.on_have(st, index)?,
            Message::Bitfield(bits) => self.on_bitfield(st, Some(bits))?,
            Message::HaveAll => self.on_bitfield(st, None)?,
            Message::HaveNone => {}
            Message::Request {
                index,
                begin,
                length,
            } => self.on_request(
                st,
                BlockRequest {
                    piece: index,
                    begin,
                    length,
                },
            ),
            Message::Piece {
                index,
                begin,
                block,
            } => {
                let b = BlockRequest {
                    piece: index,
                    begin,
                    length: block.len() as u32,
                };
                match self.outstanding.front() {
                    Some(f) if *f == b => {
                        self.outstanding.pop_front();
                    }
                    _ => {
                        if let Some(i) = self.outstanding.iter().position(|r| *r == b) {
                            self.outstanding.remove(i);
                        }
                    }
                }
                self.last_progress = now;
                self.recv_tick += block.len() as u64;
                store_block(&self.shared, st, self.key, b, block);
            }
            Message::Cancel {
                index,
                begin,
                length,
            } => {
                let r = BlockRequest {
                    piece: index,
                    begin,
                    length,
                };
                if self.serve.cancel(r) && self.fast {
                    self.send(Message::Reject {
                        index,
                        begin,
                        length,
                    });
                }
            }
            Message::Reject {
                index,
                begin,
                length,
            } => {
                let b = BlockRequest {
                    piece: index,
                    begin,
                    length,
                };
                if let Some(i) = self.outstanding.iter().position(|r| *r == b) {
                    self.outstanding.remove(i);
                    if let Some(d) = &mut st.data {
                        d.picker.cancel(self.key, b);
                    }
                    // Not again from this peer until the next tick.
                    self.hold_refill = true;
                }
            }
            Message::AllowedFast { index } => {
                if self.allowed_in.len() < MAX_ALLOWED_IN && !self.allowed_in.contains(&index) {
                    self.allowed_in.push(index);
                }
            }
            Message::Extended { id: 0, payload } => self.on_ext_handshake(st, payload)?,
            Message::Extended {
                id: UT_METADATA_ID,
                payload,
            } => self.on_metadata(st, payload, now),
            Message::Extended { .. } => {}
        }
        Ok(())
    }

    fn on_interested(&mut self, st: &mut State) -> Result<(), Close> {
        let unchoked = st.peers.values().filter(|e| !e.am_choking).count();
        let ready = st.data.is_some();
        let ms = self.shared.millis();
        let e = self.entry(st)?;
        e.peer_interested = true;
        // A free upload slot is filled at once rather than at the next choke round.
        if ready && e.am_choking && unchoked < MAX_UNCHOKED {
            e.am_choking = false;
            e.last_unchoked = Some(ms);
            self.am_choking = false;
            self.send(Message::Unchoke);
        }
        Ok(())
    }

    fn on_have(&mut self, st: &mut State, index: u32) -> Result<(), Close> {
        let bound = match &st.data {
            Some(d) => d.picker.piece_count(),
            None => self.limits.max_bitfield_len.saturating_mul(8),
        };
        if index >= bound {
            return Err(Close::Protocol("have beyond the last piece"));
        }
        let State { data, peers, .. } = st;
        let e = peers.get_mut(&self.key).ok_or(Close::Asked)?;
        if e.pieces.set(index) {
            if let Some(d) = data {
                d.picker.peer_has(index);
                if !d.picker.have(index) {
                    e.wanted += 1;
                }
            }
        }
        self.sync_interest(st)
    }

    /// A bitfield, or `None` for `have all`.
    fn on_bitfield(&mut self, st: &mut State, bits: Option<&[u8]>) -> Result<(), Close> {
        let State { data, peers, .. } = st;
        let e = peers.get_mut(&self.key).ok_or(Close::Asked)?;
        if let Some(d) = data {
            if let Some(bits) = bits {
                check_bitfield(bits, d.picker.piece_count()).map_err(Close::Wire)?;
            }
            d.picker.peer_gone(&e.pieces);
        }
        match bits {
            Some(bits) => e.pieces.set_bitfield(bits),
            None => e.pieces.all = true,
        }
        if let Some(d) = data {
            if e.pieces.all {
                d.picker.peer_bitfield(&AllPieces);
            } else {
                d.picker.peer_bitfield(&e.pieces);
            }
            e.wanted = d.wanted_in(&e.pieces);
        }
        self.sync_interest(st)
    }

    fn on_request(&mut self, st: &State, r: BlockRequest) {
        let valid = st.data.as_ref().is_some_and(|d| {
            d.picker.have(r.piece)
                && r.length > 0
                && u64::from(r.begin) + u64::from(r.length)
                    <= u64::from(d.picker.piece_size(r.piece))
        });
        let allowed = !self.am_choking || self.allowed_out.contains(&r.piece);
        let room = self.serve.len() < self.shared.config.limits.max_peer_requests;
        if valid && allowed && room {
            self.serve.push(r);
        } else if self.fast {
            self.send(Message::Reject {
                index: r.piece,
                begin: r.begin,
                length: r.length,
            });
        }
    }

    fn on_ext_handshake(&mut self, st: &mut State, payload: &[u8]) -> Result<(), Close> {
        let hs =
            ExtHandshake::parse(payload).map_err(|_| Close::Protocol("bad extension handshake"))?;
        self.their_metadata_id = hs.ext_id(b"ut_metadata");
        self.their_metadata_size = hs.metadata_size.or(self.their_metadata_size);
        if let Some(q) = hs.reqq {
            let cap = self.shared.config.limits.max_request_queue;
            self.max_depth = usize::try_from(q).unwrap_or(cap).clamp(1, cap.max(1));
            self.depth = self.depth.min(self.max_depth);
        }
        let now = Instant::now();
        let outbound;
        {
            let e = self.entry(st)?;
            e.client = hs.v.map(|v| String::from_utf8_lossy(v).into_owned());
            outbound = e.outbound;
        }
        if let (false, Some(port)) = (outbound, hs.p) {
            // An inbound peer: where it listens is what it is known (and banned) by.
            let listen = std::net::SocketAddr::new(self.addr.ip(), port);
            if st.swarm.is_banned(Some(listen), None) {
                return Err(Close::Asked);
            }
            self.entry(st)?.ban_key = listen;
            st.swarm.connected(listen, now);
        }
        self.request_metadata(st, now);
        Ok(())
    }

    fn on_metadata(&mut self, st: &mut State, payload: &[u8], now: Instant) {
        let Ok(msg) = MetadataMsg::parse(payload) else {
            self.metadata_refused = true;
            return;
        };
        match msg {
            MetadataMsg::Request { piece } => {
                let Some(id) = self.their_metadata_id else {
                    return;
                };
                let meta = st.meta.clone();
                self.scratch.clear();
                match meta.as_ref().and_then(|m| Some((m, m.info_piece(piece)?))) {
                    Some((m, data)) => MetadataMsg::Data {
                        piece,
                        total_size: m.info.len() as u64,
                        data,
                    }
                    .encode(&mut self.scratch),
                    None => MetadataMsg::Reject { piece }.encode(&mut self.scratch),
                }
                self.send_scratch(id);
            }
            MetadataMsg::Data {
                piece,
                total_size,
                data,
            } => {
                if st.meta.is_none() {
                    if let Some(info) = st.fetch.on_data(piece, total_size, data) {
                        let shared = Arc::clone(&self.shared);
                        self.shared
                            .tasks
                            .spawn(activate::metadata_fetched(shared, info));
                    }
                }
                self.request_metadata(st, now);
            }
            MetadataMsg::Reject { piece } => {
                st.fetch.on_reject(self.key, piece);
                self.metadata_refused = true;
            }
            MetadataMsg::Unknown { .. } => {}
        }
    }

    /// Asks the peer for metadata pieces, while we lack the metadata and it has it.
    pub(super) fn request_metadata(&mut self, st: &mut State, now: Instant) {
        if st.meta.is_some() || self.metadata_refused {
            return;
        }
        let (Some(id), Some(size)) = (self.their_metadata_id, self.their_metadata_size) else {
            return;
        };
        if !st.fetch.offer(size) {
            return;
        }
        let timeout = self.shared.config.timeouts.metadata_request;
        let mut picks = std::mem::take(&mut self.meta_picks);
        picks.clear();
        st.fetch
            .pick(self.key, now, timeout, METADATA_PIPELINE, &mut picks);
        for &piece in &picks {
            self.scratch.clear();
            MetadataMsg::Request { piece }.encode(&mut self.scratch);
            self.send_scratch(id);
        }
        self.meta_picks = picks;
    }

    /// Sends `interested` / `not interested` when that changes; closes the connection when we
    /// both are seeds (or we only upload and it has everything).
    pub(super) fn sync_interest(&mut self, st: &mut State) -> Result<(), Close> {
        let n = st.piece_count();
        let uploader = st.is_complete() || self.shared.config.seed_only;
        let ready = st.data.is_some();
        let e = self.entry(st)?;
        if ready && uploader && e.pieces.is_seed(n) {
            return Err(Close::BothSeeds);
        }
        let want = ready && !self.shared.config.seed_only && e.wanted > 0;
        if want != self.am_interested {
            self.am_interested = want;
            e.am_interested = want;
            if want {
                e.last_block = Instant::now();
            }
            self.send(if want {
                Message::Interested
            } else {
                Message::NotInterested
            });
        }
        Ok(())
    }

    /// Tops up the requests in flight to the pipeline depth.
    pub(super) fn refill(&mut self, st: &mut State) {
        let choked = self.peer_choking;
        if !self.am_interested || self.hold_refill || (choked && self.allowed_in.is_empty()) {
            return;
        }
        let room = self.depth.saturating_sub(self.outstanding.len());
        if room == 0 {
            return;
        }
        let State {
            data: Some(d),
            peers,
            rng,
            ..
        } = st
        else {
            return;
        };
        let Some(e) = peers.get(&self.key) else {
            return;
        };
        self.picks.clear();
        let has: &dyn PieceSet = &e.pieces;
        if choked {
            let set = AllowedFast {
                has,
                allowed: &self.allowed_in,
            };
            d.picker
                .pick_blocks(self.key, &set, room, rng, &mut self.picks);
        } else {
            d.picker
                .pick_blocks(self.key, has, room, rng, &mut self.picks);
        }
        if self.outstanding.is_empty() && !self.picks.is_empty() {
            self.last_progress = Instant::now();
        }
        for i in 0..self.picks.len() {
            let b = self.picks[i];
            self.send(Message::Request {
                index: b.piece,
                begin: b.begin,
                length: b.length,
            });
            self.outstanding.push_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_fast_set_restricts_pieces() {
        let all = AllPieces;
        let set = AllowedFast {
            has: &all,
            allowed: &[3, 5],
        };
        assert!(set.has_piece(3) && set.has_piece(5) && !set.has_piece(4));
        let bits: Vec<u8> = vec![0b0001_0000];
        let set = AllowedFast {
            has: &bits,
            allowed: &[3, 5],
        };
        assert!(set.has_piece(3) && !set.has_piece(5));
    }
}
