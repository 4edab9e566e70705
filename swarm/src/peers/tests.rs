//! Tests of the peer families, and their invariant checks for the registry's tests.

use super::*;

impl<const N: usize> Family<N> {
    /// Checks every structural invariant; panics with a message on the first violation.
    pub(crate) fn check(&self, ctx: Ctx<'_>) {
        let len = self.peers.len();
        assert!(self.leech_end <= self.partial_end && self.partial_end as usize <= len);
        let mut addrs: Vec<_> = self.peers.iter().map(|p| p.addr).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), len, "duplicate addresses");
        let ids_len = self.extra.as_ref().map_or(0, |e| e.ids.len());
        assert_eq!(
            ids_len,
            if ctx.store_ids { len } else { 0 },
            "peer ids misaligned"
        );
        match self.index() {
            Some(index) => {
                assert!(len >= INDEX_BELOW, "index kept for a small family");
                assert!(index.fits(len));
                assert_eq!(index.occupied(), len);
                for (pos, p) in self.peers.iter().enumerate() {
                    assert_eq!(self.find(ctx, &p.addr), Some(pos), "index lost a peer");
                }
            }
            None => assert!(len <= INDEX_ABOVE, "big family without index"),
        }
        if let Some(extra) = &self.extra {
            assert!(
                !extra.ids.is_empty() || extra.index.is_some(),
                "empty extras kept"
            );
        }
    }

    /// Role, completed flag and id of the peer at `addr` (for tests).
    pub(crate) fn describe(
        &self,
        ctx: Ctx<'_>,
        addr: &[u8; N],
    ) -> Option<(Role, bool, Option<[u8; 20]>)> {
        let pos = self.find(ctx, addr)?;
        let id = self.extra.as_ref().and_then(|e| e.ids.get(pos)).copied();
        Some((
            Role::from_region(self.region_of(pos)),
            self.peers[pos].flags & COMPLETED != 0,
            id,
        ))
    }
}

#[test]
fn peers_are_compact() {
    assert_eq!(std::mem::size_of::<Peer<6>>(), 12);
    assert_eq!(std::mem::size_of::<Peer<18>>(), 24);
    assert!(std::mem::size_of::<Family<6>>() <= 40);
}

#[test]
fn roles_map_to_regions() {
    assert_eq!(Role::from_region(Role::Leecher as usize), Role::Leecher);
    assert_eq!(Role::from_region(Role::Partial as usize), Role::Partial);
    assert_eq!(Role::from_region(Role::Seeder as usize), Role::Seeder);
}
