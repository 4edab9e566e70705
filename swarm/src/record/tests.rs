//! Tests of the records: inline swarms, spilling out and moving back.

use super::*;
use ahash::RandomState;

fn v4(n: u8) -> PeerAddr {
    PeerAddr::V4([10, 0, 0, n, 0x1a, 0xe1])
}

fn upd(role: Role, completed: bool, now: Secs) -> PeerUpdate<'static> {
    PeerUpdate {
        role,
        completed,
        now,
        peer_id: &[9; 20],
    }
}

fn is_big(r: &Record) -> bool {
    r.big_slot().is_some()
}

/// Announces with room and 50 wanted; checks the record; returns (stored, peers selected).
fn go(
    r: &mut Record,
    bigs: &mut Bigs,
    ctx: Ctx<'_>,
    a: &PeerAddr,
    u: PeerUpdate<'_>,
) -> (bool, usize) {
    let mut out = SelectedPeers::new();
    let (stored, _, after) = r.announce(bigs, ctx, a, &u, true, 50, &mut out);
    assert_eq!(after, r.role_counts(bigs));
    r.check(bigs, ctx);
    (stored, out.compact.len() / a.entry_len())
}

#[test]
fn small_swarms_live_inline_spill_and_move_back() {
    let hasher = RandomState::new();
    let ctx = Ctx {
        hasher: &hasher,
        store_ids: false,
    };
    let bigs = &mut Bigs::new();
    let mut r = Record::new(InfoHash([1; 20]));
    let r = &mut r;
    assert_eq!(
        go(r, bigs, ctx, &v4(1), upd(Role::Leecher, false, 1)),
        (true, 0)
    );
    // A seeder is given the leecher; its completion counts.
    assert_eq!(
        go(r, bigs, ctx, &v4(2), upd(Role::Seeder, true, 2)),
        (true, 1)
    );
    assert!(matches!(r.body, Body::Two(_)));
    // A third peer spills the swarm, keeping everyone's role, flag and last-seen time.
    assert_eq!(
        go(r, bigs, ctx, &v4(3), upd(Role::Partial, false, 3)),
        (true, 1)
    );
    assert!(is_big(r));
    assert_eq!(bigs.len(), 1);
    let stats = SwarmStats {
        complete: 1,
        incomplete: 2,
        downloaded: 1,
        downloaders: 1,
    };
    assert_eq!(r.stats(), stats);
    assert_eq!(r.len(), 3);
    assert_eq!(r.role_counts(bigs), [1, 2, 0, 0]);
    assert_eq!(
        r.describe(bigs, ctx, &v4(2)),
        Some((Role::Seeder, true, None))
    );
    assert_eq!(
        r.describe(bigs, ctx, &v4(3)),
        Some((Role::Partial, false, None))
    );
    // Removing a stranger changes nothing; removing a peer moves the others back.
    assert_eq!(
        r.remove(bigs, ctx, &v4(9)),
        (false, [1, 2, 0, 0], [1, 2, 0, 0])
    );
    assert!(is_big(r));
    assert_eq!(
        r.remove(bigs, ctx, &v4(1)),
        (true, [1, 2, 0, 0], [1, 1, 0, 0])
    );
    assert!(matches!(r.body, Body::Two(_)));
    assert_eq!(bigs.len(), 0);
    r.check(bigs, ctx);
    assert_eq!(
        r.describe(bigs, ctx, &v4(2)),
        Some((Role::Seeder, true, None))
    );
    assert_eq!(
        r.describe(bigs, ctx, &v4(3)),
        Some((Role::Partial, false, None))
    );
    assert_eq!(r.stats().downloaded, 1);
    // An IPv6 peer spills it too (reusing the big swarm's number); once it expires, the rest
    // moves back.
    let v6 = PeerAddr::V6([0x20; 18]);
    assert_eq!(
        go(r, bigs, ctx, &v6, upd(Role::Leecher, false, 2)),
        (true, 0)
    );
    assert_eq!(r.big_slot(), Some(0));
    assert_eq!(r.role_counts(bigs), [1, 1, 0, 1]);
    assert_eq!(
        go(r, bigs, ctx, &v4(2), upd(Role::Seeder, true, 10)),
        (true, 0)
    );
    assert_eq!(r.expire(bigs, ctx, 5), (2, [1, 1, 0, 1], [1, 0, 0, 0]));
    r.check(bigs, ctx);
    assert!(matches!(r.body, Body::One(_)));
    assert_eq!(bigs.len(), 0);
    assert_eq!(
        r.describe(bigs, ctx, &v4(2)),
        Some((Role::Seeder, true, None))
    );
    assert_eq!(r.stats().downloaded, 1);
    // Inline expiry down to empty.
    assert_eq!(r.expire(bigs, ctx, 10).0, 0);
    assert_eq!(r.expire(bigs, ctx, 11), (1, [1, 0, 0, 0], [0; 4]));
    assert!(r.is_empty() && !r.is_vacant());
}

#[test]
fn kept_peer_ids_always_spill() {
    let hasher = RandomState::new();
    let ctx = Ctx {
        hasher: &hasher,
        store_ids: true,
    };
    let bigs = &mut Bigs::new();
    let mut r = Record::new(InfoHash([1; 20]));
    assert_eq!(
        go(&mut r, bigs, ctx, &v4(1), upd(Role::Leecher, false, 1)),
        (true, 0)
    );
    assert!(is_big(&r));
    assert_eq!(
        r.describe(bigs, ctx, &v4(1)),
        Some((Role::Leecher, false, Some([9; 20])))
    );
    // Dropping the record gives its big swarm back.
    r.release(bigs);
    assert_eq!(bigs.len(), 0);
    // With no room, nothing is stored and nothing spills.
    let mut r = Record::new(InfoHash([2; 20]));
    let mut out = SelectedPeers::new();
    let u = upd(Role::Leecher, false, 1);
    assert!(!r.announce(bigs, ctx, &v4(1), &u, false, 5, &mut out).0);
    assert!(r.is_empty() && !is_big(&r) && bigs.len() == 0);
}

#[test]
fn records_are_small() {
    assert_eq!(std::mem::size_of::<Inline>(), 12);
    assert_eq!(std::mem::size_of::<Body>(), 24);
    assert_eq!(std::mem::size_of::<Record>(), 48);
}
