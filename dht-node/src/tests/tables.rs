//! The routing table, the trie and the verified table against brute force.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use swarmd_proto::NodeId;

use crate::routing::{Inserted, RoutingTable, K};
use crate::store::{NodeStore, Stored};
use crate::verified::{Admitted, VerifiedTable};
use crate::NodeInfo;

fn node(id: [u8; 20], i: u32) -> NodeInfo {
    NodeInfo {
        id: NodeId(id),
        addr: super::addr(i),
    }
}

/// The `n` closest of `all` to `target` by sorting everything.
fn brute(all: &[NodeInfo], target: &NodeId, n: usize) -> Vec<NodeInfo> {
    let mut v = all.to_vec();
    v.sort_by_key(|x| target.distance(&x.id));
    v.truncate(n);
    v
}

#[test]
fn buckets_split_around_our_id() {
    let now = Instant::now();
    let own = NodeId([0; 20]);
    let mut t = RoutingTable::new(own, now);
    // 8 nodes in the far half, then 8 more in the far half: the 9th goes to the cache.
    for i in 0..8u8 {
        let mut id = [0x80; 20];
        id[19] = i;
        assert_eq!(
            t.insert_verified(node(id, u32::from(i)), now),
            Inserted::Added
        );
    }
    let mut id = [0x80; 20];
    id[19] = 99;
    // The full bucket holding our id splits, so the far half stays in bucket 0 and the
    // newcomer, also in the far half, waits as a replacement.
    assert_eq!(t.insert_verified(node(id, 99), now), Inserted::Cached);
    // Near nodes keep splitting the last bucket.
    for i in 0..40u32 {
        let mut id = [0u8; 20];
        id[1] = (i as u8) + 1;
        assert_ne!(
            t.insert_verified(node(id, 100 + i), now),
            Inserted::Rejected
        );
    }
    t.check();
    assert!(t.len() <= 160 * K);
    assert_eq!(
        t.insert_verified(node([0; 20], 500), now),
        Inserted::Rejected,
        "our own id"
    );
}

#[test]
fn bad_nodes_are_replaced_from_the_cache() {
    let now = Instant::now();
    let mut t = RoutingTable::new(NodeId([0; 20]), now);
    let far: Vec<NodeInfo> = (0..9u8)
        .map(|i| {
            let mut id = [0xff; 20];
            id[19] = i;
            node(id, u32::from(i))
        })
        .collect();
    for n in &far {
        t.insert_verified(*n, now);
    }
    // Fill the near side so bucket 0 is no longer the splittable one.
    t.insert_verified(node([0x01; 20], 50), now);
    assert!(!t.contains(&far[8].id, far[8].addr) || t.len() <= 9);
    let victim = t
        .entries()
        .find(|e| e.node.id.0[0] == 0xff)
        .map(|e| e.node)
        .unwrap();
    let later = now + Duration::from_secs(1);
    t.failed(&victim.id, victim.addr, later);
    assert!(
        t.contains(&victim.id, victim.addr),
        "one failure is not bad"
    );
    // A failing node is not handed out.
    let mut out = Vec::new();
    t.closest(&victim.id, 8, &mut out);
    assert!(!out.contains(&victim));
    t.failed(&victim.id, victim.addr, later);
    t.check();
    if t.entries().filter(|e| e.node.id.0[0] == 0xff).count() == K {
        assert!(
            !t.contains(&victim.id, victim.addr),
            "a bad node gave way to a replacement"
        );
    }
}

#[test]
fn questionable_nodes_are_pinged_once_and_refresh_targets_fall_in_their_bucket() {
    let now = Instant::now();
    let own = NodeId([0x55; 20]);
    let mut t = RoutingTable::new(own, now);
    for i in 0..30u32 {
        let id: [u8; 20] = rand::random();
        t.insert_verified(node(id, i), now);
    }
    let mut out = Vec::new();
    t.questionable(now, Duration::from_secs(4), 100, &mut out);
    assert!(out.is_empty(), "all good");
    let later = now + Duration::from_secs(16 * 60);
    t.questionable(later, Duration::from_secs(4), 100, &mut out);
    assert_eq!(out.len(), t.len());
    let mut again = Vec::new();
    t.questionable(later, Duration::from_secs(4), 100, &mut again);
    assert!(again.is_empty(), "already being pinged");
    let mut rng = rand::rng();
    let targets = t.all_refresh_targets(later, &mut rng);
    for (i, target) in targets.iter().enumerate() {
        let cpl = own.common_prefix_len(target) as usize;
        if i + 1 < targets.len() {
            assert_eq!(cpl, i);
        } else {
            assert!(cpl >= i);
        }
    }
    assert!(
        t.refresh_target(later, &mut rng).is_none(),
        "timers restarted"
    );
    assert!(t
        .refresh_target(later + Duration::from_secs(15 * 60), &mut rng)
        .is_some());
}

#[test]
fn a_rebuilt_table_keeps_its_nodes() {
    let now = Instant::now();
    let mut t = RoutingTable::new(NodeId([0; 20]), now);
    let nodes: Vec<NodeInfo> = (0..20u32).map(|i| node(rand::random(), i)).collect();
    for n in &nodes {
        t.insert_verified(*n, now);
    }
    let before = t.len();
    let r = t.rebuilt(NodeId([0xff; 20]), now);
    r.check();
    assert!(r.len() >= before.min(8));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever was inserted, `closest` returns exactly the table's n closest usable nodes.
    #[test]
    fn routing_closest_matches_brute_force(
        own in any::<[u8; 20]>(),
        ids in proptest::collection::vec(any::<[u8; 20]>(), 0..300),
        clustered in proptest::collection::vec(any::<[u8; 4]>(), 0..60),
        targets in proptest::collection::vec(any::<[u8; 20]>(), 1..8),
        n in 1usize..20,
    ) {
        let now = Instant::now();
        let own = NodeId(own);
        let mut t = RoutingTable::new(own, now);
        let mut i = 0;
        // Random ids, and ids sharing long prefixes with ours (deep buckets).
        let near = clustered.iter().map(|c| {
            let mut id = own.0;
            id[16..].copy_from_slice(c);
            id
        });
        for id in ids.into_iter().chain(near) {
            i += 1;
            t.insert_verified(node(id, i), now);
        }
        t.check();
        let all: Vec<NodeInfo> = t.entries().map(|e| e.node).collect();
        let mut out = Vec::new();
        for target in targets.into_iter().map(NodeId).chain([own]) {
            t.closest(&target, n, &mut out);
            prop_assert_eq!(&out, &brute(&all, &target, n));
        }
    }

    /// The trie's closest, after inserts and removals, matches brute force; its invariants hold.
    #[test]
    fn trie_closest_matches_brute_force(
        ids in proptest::collection::vec(any::<[u8; 20]>(), 0..400),
        prefixed in proptest::collection::vec(any::<[u8; 3]>(), 0..100),
        remove_every in 2usize..6,
        root_bits in 6u32..10,
        targets in proptest::collection::vec(any::<[u8; 20]>(), 1..8),
        n in 1usize..24,
    ) {
        let mut s: NodeStore<[u8; 4]> = NodeStore::new(root_bits);
        let mut all = Vec::new();
        let clustered = prefixed.iter().map(|p| {
            let mut id = [0x42; 20];
            id[17..].copy_from_slice(p);
            id
        });
        for (i, id) in ids.into_iter().chain(clustered).enumerate() {
            let e = Stored { id, ip: [10, 0, 0, 1], port: i as u16 + 1, verified: 0, fails: 0, pinging: false };
            if s.insert(e) {
                all.push(e);
            }
        }
        s.check();
        let mut kept = Vec::new();
        for (i, e) in all.iter().enumerate() {
            if i % remove_every == 0 {
                prop_assert!(s.remove(&e.id).is_some());
            } else {
                kept.push(e.info());
            }
        }
        s.check();
        prop_assert_eq!(s.len(), kept.len());
        for target in targets.into_iter().map(NodeId) {
            let mut out = Vec::new();
            s.closest(&target.0, n, |_| true, &mut out);
            prop_assert_eq!(out, brute(&kept, &target, n));
        }
    }
}

#[test]
fn trie_sweeps_every_leaf_in_order() {
    let mut s: NodeStore<[u8; 4]> = NodeStore::new(8);
    for i in 0..5000u32 {
        let mut id: [u8; 20] = rand::random();
        id[19] = i as u8;
        s.insert(Stored {
            id,
            ip: [1, 2, 3, 4],
            port: 1,
            verified: 0,
            fails: 0,
            pinging: false,
        });
    }
    let mut seen = 0;
    let mut cursor = [0u8; 20];
    loop {
        let next = s.visit_leaf(&cursor, |_| seen += 1);
        match next {
            Some(n) => {
                assert!(n > cursor);
                cursor = n;
            }
            None => break,
        }
    }
    assert_eq!(seen, s.len());
}

fn verified_node(i: u32) -> NodeInfo {
    let mut id: [u8; 20] = rand::random();
    id[..4].copy_from_slice(&i.to_be_bytes());
    NodeInfo {
        id: NodeId(id),
        addr: SocketAddr::from(([10, 1, (i >> 8) as u8, i as u8], 6881)),
    }
}

#[test]
fn verified_table_evicts_suspects_then_stale_nodes_and_refuses_otherwise() {
    let t0 = Instant::now();
    let hour = Duration::from_secs(3600);
    let mut v = VerifiedTable::new(4, hour, t0);
    let nodes: Vec<NodeInfo> = (0..4).map(verified_node).collect();
    for n in &nodes {
        assert_eq!(v.admit(*n, t0), Admitted::Added);
    }
    assert_eq!(v.admit(nodes[0], t0), Admitted::Updated);
    let newcomer = verified_node(100);
    assert_eq!(v.admit(newcomer, t0), Admitted::Full, "everyone is fresh");
    // A missed ping makes a suspect, not handed out, evicted first.
    v.failed(nodes[2]);
    assert!(!v.contains(&nodes[2].id, nodes[2].addr));
    assert_eq!(v.admit(newcomer, t0), Admitted::Added);
    assert!(!v.knows(&nodes[2].id, nodes[2].addr));
    // Two misses remove a node.
    v.failed(nodes[1]);
    v.failed(nodes[1]);
    assert!(!v.knows(&nodes[1].id, nodes[1].addr));
    // Stale nodes are due for re-verification and may give way.
    let later = t0 + hour + Duration::from_secs(1);
    let mut due = Vec::new();
    v.due(later, 10, &mut due);
    assert_eq!(due.len(), v.lens().0);
    let mut again = Vec::new();
    v.due(later, 10, &mut again);
    assert!(again.is_empty(), "already being pinged");
    v.check();
}

#[test]
fn restored_nodes_are_reverified_soon() {
    let t0 = Instant::now() + Duration::from_secs(7200);
    let mut v = VerifiedTable::new(100, Duration::from_secs(3600), Instant::now());
    let n = verified_node(1);
    v.restore(n, t0);
    assert!(v.contains(&n.id, n.addr));
    let mut due = Vec::new();
    v.due(t0, 10, &mut due);
    assert_eq!(due, vec![n]);
}
