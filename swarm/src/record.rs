//! One tracked torrent, as its shard's [`Store`](crate::store::Store) holds it: the info hash, the
//! `downloaded` counter and the peers, in 48 bytes.
//!
//! A swarm of at most [`INLINE_PEERS`] IPv4 peers (most swarms hold 1-3 peers) lives in the
//! record itself: no allocation, and an announce to it reads one record, where the key it is
//! found by and the peers it updates and selects from share a cache line or two. A bigger swarm,
//! one with IPv6 peers, or any swarm when peer ids are kept, spills into a [`Swarm`]
//! (role-partitioned vectors, a big-swarm index, ids) in its shard's slab of big swarms
//! ([`Bigs`]); the record keeps its number and its scrape figures, so a scrape still reads the
//! record alone. It moves back in as soon as it fits again (a stop or an expiry leaving two IPv4
//! peers).
//!
//! Which form a swarm takes is invisible outside this module: roles, `downloaded`, selection
//! rules and statistics behave the same.

use swarmd_proto::InfoHash;

use crate::clock::Secs;
use crate::peers::{Ctx, Peer, PeerUpdate, Role};
use crate::registry::{SelectedPeers, SwarmStats};
use crate::slab::Slab;
use crate::swarm::{PeerAddr, RoleCounts, Swarm};

mod inline;
use inline::{inline_counts, select_inline, Body, Inline};

/// Most peers a record holds inline.
pub(crate) const INLINE_PEERS: usize = 2;

/// A shard's big swarms, by number (`None`: vacant).
pub(crate) type Bigs = Slab<Option<Swarm>>;

/// The big swarm numbered `slot` (an empty one if the number is vacant, which would be a bug).
fn big(bigs: &mut Bigs, slot: u32) -> &mut Swarm {
    let swarm = bigs.get_mut(slot);
    debug_assert!(swarm.is_some(), "big swarm {slot} missing");
    swarm.get_or_insert_with(Swarm::default)
}

/// One torrent: its key, its completions and its peers.
#[derive(Debug, Default)]
pub(crate) struct Record {
    key: InfoHash,
    /// Completions (`event=completed`, once per stored peer).
    downloaded: u32,
    body: Body,
}

impl Record {
    /// A new, still empty record for `key`.
    pub(crate) fn new(key: InfoHash) -> Self {
        Self {
            key,
            downloaded: 0,
            body: Body::Empty,
        }
    }

    /// True for a vacant record.
    #[inline]
    pub(crate) fn is_vacant(&self) -> bool {
        matches!(self.body, Body::Vacant)
    }

    #[inline]
    pub(crate) fn key(&self) -> &InfoHash {
        &self.key
    }

    /// The number of its big swarm, if the swarm is big.
    pub(crate) fn big_slot(&self) -> Option<u32> {
        self.body.slot()
    }

    /// Renumbers its big swarm (the store compacting its [`Bigs`]).
    pub(crate) fn set_big_slot(&mut self, to: u32) {
        if let Body::Big { slot, .. } = &mut self.body {
            *slot = to;
        }
    }

    /// Peers of both families.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match &self.body {
            Body::Big {
                complete,
                incomplete,
                ..
            } => *complete as usize + *incomplete as usize,
            body => body.inline().len(),
        }
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The swarm's scrape figures, from the record alone.
    #[inline]
    pub(crate) fn stats(&self) -> SwarmStats {
        match &self.body {
            Body::Big {
                complete,
                incomplete,
                downloaders,
                ..
            } => SwarmStats {
                complete: *complete,
                incomplete: *incomplete,
                downloaded: self.downloaded,
                downloaders: *downloaders,
            },
            body => {
                let peers = body.inline();
                let count = |role| peers.iter().filter(|p| p.role == role).count() as u32;
                let complete = count(Role::Seeder);
                SwarmStats {
                    complete,
                    incomplete: peers.len() as u32 - complete,
                    downloaded: self.downloaded,
                    downloaders: count(Role::Leecher),
                }
            }
        }
    }

    #[inline]
    pub(crate) fn role_counts(&self, bigs: &Bigs) -> RoleCounts {
        match &self.body {
            Body::Big { slot, .. } => bigs.get(*slot).as_ref().map_or([0; 4], Swarm::role_counts),
            body => inline_counts(body.inline()),
        }
    }

    /// Copies a big swarm's figures into the record after a change.
    fn refresh(&mut self, bigs: &Bigs) {
        if let Some(slot) = self.body.slot() {
            let s = bigs
                .get(slot)
                .as_ref()
                .map_or_else(SwarmStats::default, |swarm| swarm.stats(0));
            self.set_figures(&s);
        }
    }

    /// Sets a big swarm's figures.
    #[inline]
    fn set_figures(&mut self, s: &SwarmStats) {
        if let Body::Big {
            complete,
            incomplete,
            downloaders,
            ..
        } = &mut self.body
        {
            (*complete, *incomplete, *downloaders) = (s.complete, s.incomplete, s.downloaders);
        }
    }

    /// Updates or stores the requester (a new peer only if `can_insert`) and samples peers of its
    /// family into `out`, as [`Swarm::announce`] does, spilling the swarm out of the record if
    /// the new peer does not fit inline. Returns whether the requester is stored, and the
    /// swarm's role counts before and after (for the shard counters).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn announce(
        &mut self,
        bigs: &mut Bigs,
        ctx: Ctx<'_>,
        addr: &PeerAddr,
        upd: &PeerUpdate<'_>,
        can_insert: bool,
        numwant: usize,
        out: &mut SelectedPeers,
    ) -> (bool, RoleCounts, RoleCounts) {
        let ((stored, newly_completed), before, after) = match (self.body.slot(), addr) {
            (Some(slot), _) => {
                // The swarm is read once for the counts, the announce and the figures.
                let swarm = big(bigs, slot);
                let before = swarm.role_counts();
                let r = swarm.announce(ctx, addr, upd, can_insert, numwant, out);
                let after = swarm.role_counts();
                let figures = swarm.stats(0);
                self.set_figures(&figures);
                (r, before, after)
            }
            (None, addr) => {
                let before = inline_counts(self.body.inline());
                let r = match addr {
                    PeerAddr::V4(a) => self.announce_inline(ctx, a, upd, can_insert, numwant, out),
                    // No IPv6 peers and no room: nothing to store, nobody to select.
                    PeerAddr::V6(_) if !can_insert => Some((false, false)),
                    PeerAddr::V6(_) => None,
                };
                match r {
                    Some(r) => (r, before, inline_counts(self.body.inline())),
                    None => {
                        let r = self.spill(bigs, ctx, addr, upd, numwant, out);
                        (r, before, self.role_counts(bigs))
                    }
                }
            }
        };
        if newly_completed {
            self.downloaded = self.downloaded.saturating_add(1);
        }
        (stored, before, after)
    }

    /// The announce of an IPv4 peer to an inline swarm. Returns (stored, newly completed), or
    /// `None` if the requester is to be stored but does not fit inline (nothing changed then).
    fn announce_inline(
        &mut self,
        ctx: Ctx<'_>,
        addr: &[u8; 6],
        upd: &PeerUpdate<'_>,
        can_insert: bool,
        numwant: usize,
        out: &mut SelectedPeers,
    ) -> Option<(bool, bool)> {
        let peers = self.body.inline_mut();
        let (me, newly_completed) = match peers.iter().position(|p| p.addr == *addr) {
            Some(i) => {
                let p = &mut peers[i];
                p.last_seen = upd.now;
                p.role = upd.role;
                let newly = upd.completed && !p.completed;
                p.completed |= upd.completed;
                (Some(i), newly)
            }
            None if !can_insert => (None, false),
            None if ctx.store_ids || peers.len() >= INLINE_PEERS => return None,
            None => {
                let i = peers.len();
                self.body.push(Inline {
                    addr: *addr,
                    role: upd.role,
                    completed: upd.completed,
                    last_seen: upd.now,
                });
                (Some(i), upd.completed)
            }
        };
        if numwant > 0 {
            select_inline(
                self.body.inline(),
                me,
                upd.role != Role::Leecher,
                numwant,
                out,
            );
        }
        Some((me.is_some(), newly_completed))
    }

    /// Moves the inline peers into a new big swarm and announces the (new) requester there.
    fn spill(
        &mut self,
        bigs: &mut Bigs,
        ctx: Ctx<'_>,
        addr: &PeerAddr,
        upd: &PeerUpdate<'_>,
        numwant: usize,
        out: &mut SelectedPeers,
    ) -> (bool, bool) {
        let inline = self.body.inline();
        let mut peers = [(Peer::new([0; 6], false, 0), Role::Leecher); INLINE_PEERS];
        for (slot, p) in peers.iter_mut().zip(inline) {
            *slot = (Peer::new(p.addr, p.completed, p.last_seen), p.role);
        }
        let peers = &peers[..inline.len()];
        let room = usize::from(matches!(addr, PeerAddr::V4(_)));
        // Never full: a shard has fewer big swarms than records, and u32 numbers for both.
        let Some(slot) = bigs.insert(Some(Swarm::from_v4(peers, room)), usize::MAX) else {
            debug_assert!(false, "no room for a big swarm");
            return (false, false);
        };
        self.body = Body::Big {
            slot,
            complete: 0,
            incomplete: 0,
            downloaders: 0,
        };
        let r = big(bigs, slot).announce(ctx, addr, upd, true, numwant, out);
        self.refresh(bigs);
        r
    }

    /// Moves a big swarm back into the record if it fits there again, else refreshes its
    /// figures.
    fn settle(&mut self, bigs: &mut Bigs, ctx: Ctx<'_>) {
        let Some(slot) = self.body.slot() else {
            return;
        };
        match bigs.get(slot) {
            Some(swarm) if swarm.fits_inline(ctx, INLINE_PEERS) => {
                self.body = Body::from_inline(swarm.v4_entries().map(Inline::from_entry));
                bigs.take(slot);
            }
            _ => self.refresh(bigs),
        }
    }

    /// Gives up its big swarm, if any (the record is being dropped).
    pub(crate) fn release(&mut self, bigs: &mut Bigs) {
        if let Some(slot) = self.body.slot() {
            bigs.take(slot);
            self.body = Body::Empty;
        }
    }

    /// Samples up to `numwant` peers of one family into `out`, changing nothing.
    pub(crate) fn sample(&self, bigs: &Bigs, ipv6: bool, numwant: usize, out: &mut SelectedPeers) {
        match &self.body {
            Body::Big { slot, .. } => {
                if let Some(swarm) = bigs.get(*slot) {
                    swarm.sample(ipv6, numwant, out);
                }
            }
            _ if ipv6 => {}
            body => select_inline(body.inline(), None, false, numwant, out),
        }
    }

    /// Removes the peer at `addr`; returns whether it was there, and the role counts before and
    /// after.
    pub(crate) fn remove(
        &mut self,
        bigs: &mut Bigs,
        ctx: Ctx<'_>,
        addr: &PeerAddr,
    ) -> (bool, RoleCounts, RoleCounts) {
        let before = self.role_counts(bigs);
        let removed = self.remove_peer(bigs, ctx, addr);
        let after = if removed {
            self.role_counts(bigs)
        } else {
            before
        };
        (removed, before, after)
    }

    fn remove_peer(&mut self, bigs: &mut Bigs, ctx: Ctx<'_>, addr: &PeerAddr) -> bool {
        match (self.body.slot(), addr) {
            (Some(slot), PeerAddr::V4(a)) => match bigs.get(slot) {
                // Leaving a swarm that then fits the record: move the others straight back.
                Some(swarm) if swarm.fits_inline(ctx, INLINE_PEERS + 1) => {
                    if !swarm.v4_entries().any(|(p, _)| p.addr == *a) {
                        return false;
                    }
                    let others = swarm.v4_entries().filter(|(p, _)| p.addr != *a);
                    self.body = Body::from_inline(others.map(Inline::from_entry));
                    bigs.take(slot);
                    true
                }
                _ => self.remove_big(bigs, ctx, slot, addr),
            },
            (Some(slot), PeerAddr::V6(_)) => self.remove_big(bigs, ctx, slot, addr),
            (None, PeerAddr::V4(a)) => match self.body.inline().iter().position(|p| p.addr == *a) {
                Some(i) => {
                    self.body.remove(i);
                    true
                }
                None => false,
            },
            (None, PeerAddr::V6(_)) => false,
        }
    }

    fn remove_big(&mut self, bigs: &mut Bigs, ctx: Ctx<'_>, slot: u32, addr: &PeerAddr) -> bool {
        let removed = big(bigs, slot).remove(ctx, addr);
        if removed {
            self.settle(bigs, ctx);
        }
        removed
    }

    /// Removes peers last seen before `cutoff`; returns how many, and the role counts before
    /// and after.
    pub(crate) fn expire(
        &mut self,
        bigs: &mut Bigs,
        ctx: Ctx<'_>,
        cutoff: Secs,
    ) -> (usize, RoleCounts, RoleCounts) {
        let before = self.role_counts(bigs);
        let removed = self.expire_peers(bigs, ctx, cutoff);
        let after = if removed > 0 {
            self.role_counts(bigs)
        } else {
            before
        };
        (removed, before, after)
    }

    fn expire_peers(&mut self, bigs: &mut Bigs, ctx: Ctx<'_>, cutoff: Secs) -> usize {
        match self.body.slot() {
            Some(slot) => {
                let removed = big(bigs, slot).expire(ctx, cutoff);
                if removed > 0 {
                    self.settle(bigs, ctx);
                }
                removed
            }
            None => {
                let body = &mut self.body;
                let before = body.inline().len();
                let live = |p: &&Inline| p.last_seen >= cutoff;
                if body.inline().iter().all(|p| live(&p)) {
                    return 0;
                }
                let kept = Body::from_inline(body.inline().iter().filter(live).copied());
                *body = kept;
                before - body.inline().len()
            }
        }
    }

    /// Checks the record's invariants (tests): a swarm is big only if it cannot be inline, and
    /// a big swarm's figures are current.
    #[cfg(test)]
    pub(crate) fn check(&self, bigs: &Bigs, ctx: Ctx<'_>) {
        match &self.body {
            Body::Big { slot, .. } => {
                let swarm = bigs.get(*slot).as_ref().expect("big swarm present");
                assert!(
                    !swarm.fits_inline(ctx, INLINE_PEERS),
                    "a swarm that fits its record was left big"
                );
                swarm.check(ctx);
                assert_eq!(self.stats(), swarm.stats(self.downloaded), "stale figures");
            }
            body => {
                assert!(!ctx.store_ids, "peers inline although ids are kept");
                if let [a, b] = body.inline() {
                    assert_ne!(a.addr, b.addr, "duplicate addresses");
                }
            }
        }
    }

    /// Role, completed flag and peer id of the peer at `addr` (tests).
    #[cfg(test)]
    pub(crate) fn describe(
        &self,
        bigs: &Bigs,
        ctx: Ctx<'_>,
        addr: &PeerAddr,
    ) -> Option<(Role, bool, Option<[u8; 20]>)> {
        match (&self.body, addr) {
            (Body::Big { slot, .. }, _) => bigs.get(*slot).as_ref()?.describe(ctx, addr),
            (body, PeerAddr::V4(a)) => {
                let p = body.inline().iter().find(|p| p.addr == *a)?;
                Some((p.role, p.completed, None))
            }
            (_, PeerAddr::V6(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests;
