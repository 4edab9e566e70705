//! Peer discovery: tracker announces in BEP 12 tier order (`started`, then regular announces at
//! the tracker's interval, `completed` the moment the last piece verifies, `stopped` on the way
//! out) with the torrent's real uploaded / downloaded / left; and DHT lookups with announces
//! when DHT nodes are configured (never for a private torrent). Peers found go to the swarm.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use swarmd_proto::Event;
use tokio::time::Instant;

use super::shared::{Shared, State};
use super::stats::TorrentState;
use crate::dht::{is_self, DhtClient};
use crate::tracker::{AnnounceRequest, Tiers, TrackerClient};

/// `left` announced while a magnet's size is unknown: anything but 0, which would make us a
/// seed in the tracker's eyes (and get us only leechers).
const UNKNOWN_LEFT: u64 = 16 * 1024;

/// Adds peer addresses to the swarm (skipping ourselves) and wakes the dialer.
pub(crate) fn add_peers(shared: &Shared, st: &mut State, peers: &[SocketAddr]) {
    let now = Instant::now();
    let mut added = false;
    for &p in peers {
        if !is_our_listen_addr(shared.listen, p) {
            added |= st.swarm.add(p, now);
        }
    }
    if added {
        shared.wake_dialer.notify_one();
    }
}

/// Whether `peer` is our own listening socket, as trackers hand it back to us.
fn is_our_listen_addr(listen: SocketAddr, peer: SocketAddr) -> bool {
    peer.port() == listen.port()
        && (peer.ip() == listen.ip()
            || (peer.ip().is_loopback()
                && (listen.ip().is_unspecified() || listen.ip().is_loopback())))
}

/// The announce we would send now.
fn request(shared: &Shared, event: Event, key: u32) -> AnnounceRequest {
    let st = shared.lock();
    let left = match (&st.data, &st.meta) {
        (Some(d), _) => d.meta.layout.total_length() - d.have_bytes,
        (None, Some(m)) => m.layout.total_length(),
        (None, None) => UNKNOWN_LEFT,
    };
    AnnounceRequest {
        uploaded: st.totals.uploaded,
        downloaded: st.totals.downloaded,
        left,
        event,
        numwant: (event != Event::Stopped).then_some(shared.config.announce.numwant),
        key: Some(key),
        ..AnnounceRequest::new(shared.info_hash, shared.peer_id, shared.listen.port(), left)
    }
}

/// Whether `completed` is owed: the torrent completed during this session.
fn completed_here(shared: &Shared) -> bool {
    shared
        .lock()
        .data
        .as_ref()
        .is_some_and(|d| d.completed_here)
}

/// Announces to the trackers until shutdown, then sends `stopped`.
pub(crate) async fn tracker_loop(shared: Arc<Shared>, tiers: Vec<Vec<String>>) {
    let cfg = shared.config.announce.clone();
    let client = TrackerClient::new(cfg.client);
    let mut tiers = Tiers::new(tiers);
    let key: u32 = rand::random();
    let mut phase = shared.phase.subscribe();
    let mut event = Event::Started;
    let mut started = false;
    let mut completed_sent = false;
    let mut retry = cfg.retry;
    loop {
        let req = request(&shared, event, key);
        let announce = tiers.announce(&client, &req);
        tokio::pin!(announce);
        let result = tokio::select! {
            r = &mut announce => r,
            () = shared.shutdown_signal() => {
                // The tracker may have this announce already: let it answer (within the stop
                // timeout) before `stopped` goes out, or it could apply this one after
                // `stopped` and keep listing us (and a `started` it took, with no `stopped`
                // ever sent, would do the same).
                let t = shared.config.timeouts.stop_announce;
                if let Ok(Ok(_)) = tokio::time::timeout(t, &mut announce).await {
                    started = true;
                }
                break;
            }
        };
        let wait = match result {
            Ok((_, reply)) => {
                let mut st = shared.lock();
                st.totals.announces += 1;
                st.totals.announce_error = None;
                add_peers(&shared, &mut st, &reply.peers);
                started = true;
                completed_sent |= event == Event::Completed;
                event = Event::None;
                retry = cfg.retry;
                let interval = reply.interval.max(reply.min_interval.unwrap_or(0));
                Duration::from_secs(u64::from(interval)).max(cfg.min_interval)
            }
            Err(e) => {
                shared.lock().totals.announce_error = Some(e.to_string());
                let w = retry;
                retry = (retry * 2).min(cfg.max_retry);
                w
            }
        };
        if started && !completed_sent && event == Event::None && completed_here(&shared) {
            event = Event::Completed;
            continue;
        }
        let deadline = Instant::now() + wait;
        loop {
            let watch_completion = started && !completed_sent && event == Event::None;
            tokio::select! {
                () = shared.shutdown_signal() => break,
                () = tokio::time::sleep_until(deadline) => break,
                r = phase.changed(), if watch_completion => {
                    if r.is_err() {
                        break;
                    }
                    let seeding = *phase.borrow_and_update() == TorrentState::Seeding;
                    if seeding && completed_here(&shared) {
                        event = Event::Completed;
                        break;
                    }
                }
            }
        }
        if shared.is_shut_down() {
            break;
        }
    }
    if started {
        let req = request(&shared, Event::Stopped, key);
        let t = shared.config.timeouts.stop_announce;
        let _ = tokio::time::timeout(t, tiers.announce(&client, &req)).await;
    }
}

/// Looks the torrent up in the DHT and announces us, until shutdown: retried from
/// `retry` (doubling) while no peer is connected, every `dht_interval` after.
pub(crate) async fn dht_loop(shared: Arc<Shared>, nodes: Vec<SocketAddr>) {
    let local = match nodes.first() {
        Some(SocketAddr::V6(_)) => SocketAddr::from(([0u16; 8], 0)),
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let client = match DhtClient::bind(local).await {
        Ok(c) => c,
        Err(e) => {
            shared.lock().totals.announce_error = Some(e.to_string());
            return;
        }
    };
    let cfg = shared.config.announce.clone();
    let port = shared.listen.port();
    let mut retry = cfg.retry;
    loop {
        if shared
            .lock()
            .meta
            .as_ref()
            .is_some_and(|m| m.metainfo.private())
        {
            return;
        }
        let result = tokio::select! {
            r = client.announce_with_lookup(&nodes, shared.info_hash, Some(port)) => r,
            () = shared.shutdown_signal() => return,
        };
        let connected = {
            let mut st = shared.lock();
            match result {
                Ok((_, lookup)) => {
                    let found: Vec<SocketAddr> = lookup
                        .peers
                        .into_iter()
                        .filter(|p| !is_self(*p, lookup.reported_addr, port))
                        .collect();
                    add_peers(&shared, &mut st, &found);
                }
                Err(e) => st.totals.announce_error = Some(format!("DHT: {e}")),
            }
            !st.peers.is_empty()
        };
        let wait = if connected {
            retry = cfg.retry;
            cfg.dht_interval
        } else {
            let w = retry;
            retry = (retry * 2).min(cfg.max_retry);
            w
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.shutdown_signal() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_our_listen_addr;
    use std::net::SocketAddr;

    #[test]
    fn recognises_our_own_address() {
        let any: SocketAddr = "0.0.0.0:6881".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        assert!(is_our_listen_addr(any, lo));
        assert!(is_our_listen_addr(lo, lo));
        assert!(!is_our_listen_addr(any, "127.0.0.1:6882".parse().unwrap()));
        assert!(!is_our_listen_addr(lo, "10.0.0.1:6881".parse().unwrap()));
    }
}
