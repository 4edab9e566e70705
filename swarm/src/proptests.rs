//! Model-based property tests: random sequences of announces (every event, both families,
//! v4-mapped addresses, limits hit), clock moves and sweeps, applied to the registry and to a
//! plain `BTreeMap` model; counts, stats, membership, sample validity and the registry's
//! internal invariants (partitions, indexes, id alignment, shard counters) are checked after
//! every operation. A second model run keeps to a handful of peers, so swarms live inline in
//! their records, spill out of them and move back.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proptest::prelude::*;
use swarmd_proto::{Event, InfoHash, PeerId};

use crate::peers::Role;
use crate::{
    Announce, AnnounceError, Registry, RegistryConfig, RegistryCounts, SelectedPeers, SwarmStats,
};

const TORRENTS: u8 = 4;
const MAX_TORRENTS: usize = 3;
const MAX_PEERS: usize = 70;
const TIMEOUT: u32 = 200;

#[derive(Debug, Clone)]
enum Op {
    Announce {
        torrent: u8,
        peer: u8,
        /// 0: IPv4, 1: IPv6, 2: the IPv4 peer written as IPv4-mapped IPv6.
        family: u8,
        event: u8,
        seeder: bool,
        numwant: u8,
        id: u8,
    },
    Advance(u8),
    Sweep,
    Remove(u8),
}

fn op() -> impl Strategy<Value = Op> {
    op_among(120)
}

/// Operations on peers `0..peers` (a few peers keep swarms small: inline in their records,
/// spilling out and moving back).
fn op_among(peers: u8) -> impl Strategy<Value = Op> {
    let announce = (
        prop_oneof![3 => Just(0u8), 1 => 0..TORRENTS],
        0..peers,
        prop_oneof![6 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8)],
        0..5u8,
        any::<bool>(),
        prop_oneof![1 => Just(0u8), 4 => 1..60u8],
        0..3u8,
    )
        .prop_map(
            |(torrent, peer, family, event, seeder, numwant, id)| Op::Announce {
                torrent,
                peer,
                family,
                event,
                seeder,
                numwant,
                id,
            },
        );
    prop_oneof![40 => announce, 3 => prop_oneof![8 => 0..30u8, 1 => 100..250u8].prop_map(Op::Advance), 1 => Just(Op::Sweep), 1 => (0..TORRENTS).prop_map(Op::Remove)]
}

/// The peer's canonical address, and the address it announces from.
fn addrs(peer: u8, family: u8) -> (SocketAddr, SocketAddr) {
    let port = 6881 + u16::from(peer % 3);
    let v4 = Ipv4Addr::new(10, 0, 0, peer / 3);
    match family {
        0 => (SocketAddr::from((v4, port)), SocketAddr::from((v4, port))),
        1 => {
            let a = SocketAddr::from((
                Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(peer / 3)),
                port,
            ));
            (a, a)
        }
        _ => (
            SocketAddr::from((v4, port)),
            SocketAddr::from((v4.to_ipv6_mapped(), port)),
        ),
    }
}

#[derive(Debug, Clone)]
struct MPeer {
    role: Role,
    completed: bool,
    last_seen: u32,
    id: [u8; 20],
}

#[derive(Debug, Default)]
struct MSwarm {
    peers: BTreeMap<SocketAddr, MPeer>,
    downloaded: u32,
}

impl MSwarm {
    fn stats(&self) -> SwarmStats {
        let count =
            |f: &dyn Fn(&MPeer) -> bool| self.peers.values().filter(|p| f(p)).count() as u32;
        SwarmStats {
            complete: count(&|p| p.role == Role::Seeder),
            incomplete: count(&|p| p.role != Role::Seeder),
            downloaded: self.downloaded,
            downloaders: count(&|p| p.role == Role::Leecher),
        }
    }
}

fn event_of(e: u8) -> Event {
    [
        Event::None,
        Event::Started,
        Event::Completed,
        Event::Stopped,
        Event::Paused,
    ][usize::from(e % 5)]
}

struct Harness {
    reg: Registry,
    model: BTreeMap<u8, MSwarm>,
    now: u32,
    store_ids: bool,
    max_peers: usize,
    out: SelectedPeers,
}

impl Harness {
    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::Advance(s) => self.now += u32::from(s),
            Op::Sweep => {
                let s = self.reg.sweep(self.now, self.reg.shard_count());
                let (mut peers, mut torrents) = (0, 0);
                let now = self.now;
                self.model.retain(|_, sw| {
                    let before = sw.peers.len();
                    sw.peers.retain(|_, p| p.last_seen + TIMEOUT >= now);
                    peers += before - sw.peers.len();
                    torrents += usize::from(sw.peers.is_empty());
                    !sw.peers.is_empty()
                });
                prop_assert_eq!((s.peers_removed, s.torrents_removed), (peers, torrents));
            }
            Op::Remove(t) => {
                let known = self.model.remove(&t).is_some();
                prop_assert_eq!(self.reg.remove(&InfoHash([t; 20])), known);
            }
            Op::Announce {
                torrent,
                peer,
                family,
                event,
                seeder,
                numwant,
                id,
            } => self.announce(torrent, peer, family, event_of(event), seeder, numwant, id)?,
        }
        self.check()
    }

    #[allow(clippy::too_many_arguments)]
    fn announce(
        &mut self,
        torrent: u8,
        peer: u8,
        family: u8,
        event: Event,
        seeder: bool,
        numwant: u8,
        id: u8,
    ) -> Result<(), TestCaseError> {
        let (key, from) = addrs(peer, family);
        let req = Announce {
            info_hash: InfoHash([torrent; 20]),
            peer_id: PeerId([id; 20]),
            addr: from,
            event,
            left: if seeder { 0 } else { 1 },
            numwant: usize::from(numwant),
        };
        let res = self.reg.announce(&req, self.now, &mut self.out);
        if event == Event::Stopped {
            let o = res.map_err(|e| TestCaseError::fail(e.to_string()))?;
            let stats = match self.model.get_mut(&torrent) {
                None => SwarmStats::default(),
                Some(sw) => {
                    sw.peers.remove(&key);
                    let s = sw.stats();
                    if sw.peers.is_empty() {
                        self.model.remove(&torrent);
                    }
                    s
                }
            };
            prop_assert_eq!(o.stats, stats);
            prop_assert!(!o.stored && o.peers == 0 && self.out.is_empty());
            return Ok(());
        }
        if !self.model.contains_key(&torrent) && self.model.len() >= MAX_TORRENTS {
            prop_assert_eq!(res, Err(AnnounceError::TorrentLimit));
            return Ok(());
        }
        let o = res.map_err(|e| TestCaseError::fail(e.to_string()))?;
        let sw = self.model.entry(torrent).or_default();
        let role = if seeder {
            Role::Seeder
        } else if event == Event::Paused {
            Role::Partial
        } else {
            Role::Leecher
        };
        let completed = event == Event::Completed;
        let full = sw.peers.len() >= self.max_peers;
        let stored = match sw.peers.get_mut(&key) {
            Some(p) => {
                p.role = role;
                p.last_seen = self.now;
                p.id = [id; 20];
                if completed && !p.completed {
                    p.completed = true;
                    sw.downloaded += 1;
                }
                true
            }
            None if !full => {
                sw.peers.insert(
                    key,
                    MPeer {
                        role,
                        completed,
                        last_seen: self.now,
                        id: [id; 20],
                    },
                );
                sw.downloaded += u32::from(completed);
                true
            }
            None => false,
        };
        prop_assert_eq!(o.stored, stored);
        prop_assert_eq!(o.stats, sw.stats());

        // The sample: right size, distinct, own family, never the requester, role rule.
        let candidates: BTreeMap<SocketAddr, &MPeer> = sw
            .peers
            .iter()
            .filter(|(a, p)| {
                a.is_ipv4() == key.is_ipv4()
                    && **a != key
                    && (role == Role::Leecher || p.role == Role::Leecher)
            })
            .map(|(a, p)| (*a, p))
            .collect();
        let got: Vec<SocketAddr> = self.out.addrs().collect();
        prop_assert_eq!(got.len(), usize::from(numwant).min(candidates.len()));
        prop_assert_eq!(o.peers, got.len());
        prop_assert_eq!(
            self.out.compact.len(),
            got.len() * if key.is_ipv4() { 6 } else { 18 }
        );
        prop_assert_eq!(got.iter().collect::<HashSet<_>>().len(), got.len());
        if self.store_ids {
            prop_assert_eq!(self.out.peer_ids.len(), got.len() * 20);
        } else {
            prop_assert!(self.out.peer_ids.is_empty());
        }
        for (i, a) in got.iter().enumerate() {
            let p = candidates.get(a);
            prop_assert!(p.is_some(), "{} is not a candidate", a);
            if self.store_ids {
                prop_assert_eq!(
                    &self.out.peer_ids[i * 20..i * 20 + 20],
                    &p.map_or([0; 20], |p| p.id)[..]
                );
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        self.reg.check_invariants();
        let mut want = RegistryCounts {
            torrents: self.model.len() as u64,
            ..Default::default()
        };
        for t in 0..TORRENTS {
            let got = self.reg.scrape(&InfoHash([t; 20]));
            prop_assert_eq!(got, self.model.get(&t).map(MSwarm::stats));
        }
        for sw in self.model.values() {
            for (a, p) in &sw.peers {
                let seeder = u64::from(p.role == Role::Seeder);
                match a.ip() {
                    IpAddr::V4(_) => {
                        want.seeders_v4 += seeder;
                        want.leechers_v4 += 1 - seeder;
                    }
                    IpAddr::V6(_) => {
                        want.seeders_v6 += seeder;
                        want.leechers_v6 += 1 - seeder;
                    }
                }
            }
        }
        prop_assert_eq!(self.reg.counts(), want);
        Ok(())
    }

    /// Every model peer is stored with the same role, flag and id, and nothing else is.
    fn check_membership(&self) -> Result<(), TestCaseError> {
        for (t, sw) in &self.model {
            for (a, p) in &sw.peers {
                let id = self.store_ids.then_some(p.id);
                prop_assert_eq!(
                    self.reg.describe(&InfoHash([*t; 20]), *a),
                    Some((p.role, p.completed, id))
                );
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn registry_matches_model(
        shards in prop_oneof![Just(1usize), Just(2), Just(4)],
        store_ids in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..500),
    ) {
        let reg = Registry::new(RegistryConfig {
            shards,
            max_torrents: MAX_TORRENTS,
            max_peers_per_torrent: MAX_PEERS,
            peer_timeout: TIMEOUT,
            store_peer_ids: store_ids,
        });
        let mut h = Harness { reg, model: BTreeMap::new(), now: 0, store_ids, max_peers: MAX_PEERS, out: SelectedPeers::new() };
        for (i, op) in ops.iter().enumerate() {
            h.apply(op)?;
            if i % 50 == 0 {
                h.check_membership()?;
            }
        }
        h.check_membership()?;
    }

    #[test]
    fn small_swarms_match_model(
        store_ids in any::<bool>(),
        ops in proptest::collection::vec(op_among(6), 1..300),
    ) {
        let reg = Registry::new(RegistryConfig {
            shards: 2,
            max_torrents: MAX_TORRENTS,
            max_peers_per_torrent: 4,
            peer_timeout: TIMEOUT,
            store_peer_ids: store_ids,
        });
        let mut h = Harness { reg, model: BTreeMap::new(), now: 0, store_ids, max_peers: 4, out: SelectedPeers::new() };
        for op in &ops {
            h.apply(op)?;
            h.check_membership()?;
        }
    }
}
