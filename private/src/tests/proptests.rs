//! Random announce sequences against a plain model of the accounting rules: the credited and
//! raw totals written by the flushes equal the model's.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::Totals;

const RATE: u64 = 100;
const TIMEOUT_P: u32 = 300;
/// (user index, torrent index, peer byte) of each session.
const SESSIONS: [(usize, usize, u8); 4] = [(0, 0, 1), (0, 0, 2), (0, 1, 1), (1, 0, 1)];
/// (upload, download) multipliers of each torrent.
const MULTIPLIERS: [(f64, f64); 2] = [(1.5, 0.5), (1.0, 0.0)];

#[derive(Debug, Clone)]
enum Op {
    Announce {
        session: usize,
        up: u64,
        down: u64,
        seeding: bool,
        event: Event,
    },
    Advance(u32),
    Flush,
}

fn op() -> impl Strategy<Value = Op> {
    let event = prop_oneof![
        4 => Just(Event::None),
        1 => Just(Event::Started),
        1 => Just(Event::Completed),
        1 => Just(Event::Stopped),
        1 => Just(Event::Paused),
    ];
    prop_oneof![
        6 => (0..SESSIONS.len(), 0u64..5000, 0u64..5000, any::<bool>(), event).prop_map(
            |(session, up, down, seeding, event)| Op::Announce {
                session,
                up,
                down,
                seeding,
                event
            }
        ),
        3 => (0u32..400).prop_map(Op::Advance),
        1 => Just(Op::Flush),
    ]
}

#[derive(Clone, Copy)]
struct Base {
    up: u64,
    down: u64,
    left: u64,
    seen: i64,
}

#[derive(Default)]
struct Model {
    sessions: [Option<Base>; SESSIONS.len()],
    totals: BTreeMap<(usize, usize), Totals>,
}

impl Model {
    fn announce(&mut self, s: usize, up: u64, down: u64, left: u64, event: Event, now: i64) {
        let (user, torrent, _) = SESSIONS[s];
        let (mu, md) = MULTIPLIERS[torrent];
        let t = self.totals.entry((user, torrent)).or_default();
        match self.sessions[s] {
            None => {
                if event == Event::Completed {
                    t.completed += 1;
                }
            }
            Some(b) => {
                let since = (now - b.seen).max(0) as u64;
                let cap = RATE * since.max(1);
                let du = if up >= b.up { up - b.up } else { up };
                let dd = if down >= b.down { down - b.down } else { down };
                if du <= cap {
                    t.raw_uploaded += du;
                    t.uploaded += (du as f64 * mu) as u64;
                }
                if dd <= cap {
                    t.raw_downloaded += dd;
                    t.downloaded += (dd as f64 * md) as u64;
                }
                if b.left == 0 {
                    t.seed_secs += since.min(u64::from(TIMEOUT_P));
                }
                if event == Event::Completed && b.left != 0 {
                    t.completed += 1;
                }
            }
        }
        self.sessions[s] = (event != Event::Stopped).then_some(Base {
            up,
            down,
            left,
            seen: now,
        });
    }

    fn flush(&mut self, now: i64) {
        for s in &mut self.sessions {
            if s.is_some_and(|b| now - b.seen > i64::from(TIMEOUT_P)) {
                *s = None;
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn flushed_totals_match_the_model(ops in proptest::collection::vec(op(), 1..60)) {
        let mut cfg = config(Mode::Private, Path::new(":memory:"));
        cfg.max_rate_bytes_per_sec = RATE;
        cfg.peer_timeout_secs = TIMEOUT_P;
        let fx = Fx::with_config(&cfg);
        let users = [fx.user("u0"), fx.user("u1")];
        for (i, (up, down)) in MULTIPLIERS.iter().enumerate() {
            fx.allow_with(hash(i as u8 + 1), TorrentOptions {
                upload_multiplier: *up,
                download_multiplier: *down,
                ..TorrentOptions::default()
            });
        }
        let mut model = Model::default();
        for op in &ops {
            match *op {
                Op::Announce { session, up, down, seeding, event } => {
                    let (user, torrent, p) = SESSIONS[session];
                    let left = if seeding { 0 } else { 100 };
                    let a = Ann::new(hash(torrent as u8 + 1), Some(&users[user].1))
                        .peer(peer(b"-qB", p))
                        .totals(up, down, left)
                        .event(event);
                    prop_assert!(fx.policy.announce(&a.req()).is_allowed());
                    model.announce(session, up, down, left, event, fx.now());
                }
                Op::Advance(secs) => fx.advance(secs),
                Op::Flush => {
                    fx.policy.flush().unwrap();
                    model.flush(fx.now());
                }
            }
        }
        let live = model.sessions.iter().filter(|s| s.is_some()).count() as u64;
        prop_assert_eq!(fx.policy.stats().sessions, live);
        let mut got = BTreeMap::new();
        for (ui, (uid, _)) in users.iter().enumerate() {
            for rec in fx.policy.user(*uid).unwrap().torrents {
                let ti = (0..MULTIPLIERS.len())
                    .find(|i| hash(*i as u8 + 1).to_string() == rec.info_hash)
                    .unwrap();
                got.insert((ui, ti), rec.totals);
            }
        }
        prop_assert_eq!(got, model.totals);
    }
}
