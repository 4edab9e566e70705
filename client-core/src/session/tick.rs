//! The torrent's clock, once a second: rolling rates of every peer and of the torrent, the
//! choke round every [`Timeouts::choke_round`](super::Timeouts) ([`rechoke`] with a round
//! counter and the session's seeded RNG, leecher or seed role, anti-snubbing), and outbound
//! dials within the connection limits (also woken at once when peers are added).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use super::connect;
use super::shared::{Cmd, Shared, State};
use crate::choke::{is_snubbed, rechoke, PeerState, Role};

/// Runs until shutdown.
pub(crate) async fn tick_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let round = shared.config.timeouts.choke_round;
    let mut next_round = Instant::now();
    let mut dials = Vec::new();
    loop {
        let second = tokio::select! {
            () = shared.shutdown_signal() => return,
            _ = tick.tick() => true,
            () = shared.wake_dialer.notified() => false,
        };
        let now = Instant::now();
        {
            let mut st = shared.lock();
            if second {
                measure(&mut st);
                if now >= next_round {
                    choke_round(&shared, &mut st, now);
                    next_round = now + round;
                }
            }
            pick_dials(&shared, &mut st, now, &mut dials);
        }
        for addr in dials.drain(..) {
            shared.tasks.spawn(connect::dial(Arc::clone(&shared), addr));
        }
    }
}

/// Feeds the rate meters their running totals.
fn measure(st: &mut State) {
    for e in st.peers.values_mut() {
        e.down.tick(e.downloaded);
        e.up.tick(e.uploaded);
    }
    let t = &mut st.totals;
    t.down.tick(t.downloaded);
    t.up.tick(t.uploaded);
}

/// One choke round: the pure choker decides, the peers are told.
fn choke_round(shared: &Shared, st: &mut State, now: Instant) {
    let role = if st.is_complete() || shared.config.seed_only {
        Role::Seed
    } else {
        Role::Leecher
    };
    let peers: Vec<PeerState<_>> = st
        .peers
        .iter()
        .map(|(k, e)| PeerState {
            id: *k,
            interested: e.peer_interested,
            choked: e.am_choking,
            download_rate: e.down.rate(),
            upload_rate: e.up.rate(),
            last_unchoked: e.last_unchoked,
            snubbed: is_snubbed(e.am_interested, now.duration_since(e.last_block)),
        })
        .collect();
    let d = rechoke(
        &peers,
        role,
        st.choke.round,
        st.choke.optimistic,
        &mut st.rng,
    );
    st.choke.round += 1;
    st.choke.optimistic = d.optimistic;
    let ms = shared.millis();
    for (k, e) in &mut st.peers {
        let unchoke = d.unchoke.contains(k);
        if unchoke && e.am_choking {
            e.am_choking = false;
            e.last_unchoked = Some(ms);
            e.send(Cmd::Unchoke);
        } else if !unchoke && !e.am_choking {
            e.am_choking = true;
            e.send(Cmd::Choke);
        }
    }
}

/// Chooses addresses to dial within `max_peers` and `max_half_open`.
fn pick_dials(shared: &Shared, st: &mut State, now: Instant, out: &mut Vec<std::net::SocketAddr>) {
    // Only once the data is ready (a `.torrent` rechecks first) or while fetching metadata.
    if st.data.is_none() && st.meta.is_some() {
        return;
    }
    let l = shared.config.limits;
    let used = st.peers.len() + st.swarm.half_open;
    let budget = l
        .max_peers
        .saturating_sub(used)
        .min(l.max_half_open.saturating_sub(st.swarm.half_open));
    if budget == 0 {
        return;
    }
    let complete = st.is_complete() || shared.config.seed_only;
    st.swarm.pick_dials(now, budget, complete, out);
    st.swarm.half_open += out.len();
}
