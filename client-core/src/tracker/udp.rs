//! UDP tracker client (BEP 15) over the codec in `swarmd_proto::udp`.
//!
//! One socket and one cached connection id per tracker address; a connection id is reused for
//! the configured TTL (60 s by default). The n-th try of a request waits `base * 2^n` for a reply
//! with its transaction id (BEP 15: base 15 s, n = 0..=8); a connection id that expires during
//! retransmits is renewed first. Replies with another transaction id, or unparsable ones, are
//! ignored. Peers are 6-byte entries on an IPv4 socket and 18-byte entries on an IPv6 one.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use swarmd_proto::udp::{self, Response, UrlData};
use swarmd_proto::InfoHash;
use tokio::net::UdpSocket;

use super::{
    compact_peers, AnnounceRequest, AnnounceResponse, ClientConfig, ScrapeStats, TrackerError,
    TrackerUrl,
};

/// One tracker's socket and connection id; the async mutex serializes its requests.
#[derive(Debug)]
struct Session {
    socket: UdpSocket,
    connection: Option<(u64, Instant)>,
}

/// The UDP sessions of a [`super::TrackerClient`], by tracker address.
#[derive(Debug, Default)]
pub(crate) struct UdpSessions {
    sessions: Mutex<HashMap<SocketAddr, Arc<tokio::sync::Mutex<Option<Session>>>>>,
    connects: AtomicU64,
    sends: AtomicU64,
}

/// What a reply is expected to be.
enum Expect {
    Connect,
    Other,
}

impl UdpSessions {
    pub(crate) fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    pub(crate) fn sends(&self) -> u64 {
        self.sends.load(Ordering::Relaxed)
    }

    fn slot(&self, addr: SocketAddr) -> Arc<tokio::sync::Mutex<Option<Session>>> {
        let mut map = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(addr).or_default().clone()
    }

    pub(crate) async fn announce(
        &self,
        u: &TrackerUrl,
        req: &AnnounceRequest,
        config: &ClientConfig,
    ) -> Result<AnnounceResponse, TrackerError> {
        let addr = u.resolve().await?;
        let mut url_data = u.announce_path(req.passkey.as_deref());
        if !u.query.is_empty() {
            url_data.push('?');
            url_data.push_str(&u.query);
        }
        if url_data == "/" {
            url_data.clear();
        }
        let build = |out: &mut Vec<u8>, connection_id: u64, transaction_id: u32| {
            udp::write_announce_request(
                out,
                &udp::AnnounceRequest {
                    connection_id,
                    transaction_id,
                    info_hash: req.info_hash,
                    peer_id: req.peer_id,
                    downloaded: req.downloaded,
                    left: req.left,
                    uploaded: req.uploaded,
                    event: req.event,
                    ip: None,
                    key: req.key.unwrap_or(0),
                    num_want: req
                        .numwant
                        .map_or(-1, |n| i32::try_from(n).unwrap_or(i32::MAX)),
                    port: req.port,
                    url_data: UrlData::new(url_data.as_bytes()),
                },
            );
        };
        let reply = self.exchange(addr, config, build).await?;
        match udp::parse_response(&reply) {
            Ok(Response::Announce {
                interval,
                leechers,
                seeders,
                peers,
                ..
            }) => {
                let mut out = Vec::new();
                compact_peers(peers, addr.is_ipv6(), &mut out);
                Ok(AnnounceResponse {
                    interval,
                    complete: Some(seeders),
                    incomplete: Some(leechers),
                    peers: out,
                    ..AnnounceResponse::default()
                })
            }
            _ => Err(TrackerError::Malformed(
                "expected an announce reply".to_owned(),
            )),
        }
    }

    pub(crate) async fn scrape(
        &self,
        u: &TrackerUrl,
        hashes: &[InfoHash],
        config: &ClientConfig,
    ) -> Result<Vec<ScrapeStats>, TrackerError> {
        let addr = u.resolve().await?;
        let mut stats = Vec::with_capacity(hashes.len());
        for chunk in hashes.chunks(udp::MAX_SCRAPE_HASHES) {
            let build = |out: &mut Vec<u8>, cid: u64, tid: u32| {
                udp::write_scrape_request(out, cid, tid, chunk);
            };
            let reply = self.exchange(addr, config, build).await?;
            let Ok(Response::Scrape { entries, .. }) = udp::parse_response(&reply) else {
                return Err(TrackerError::Malformed(
                    "expected a scrape reply".to_owned(),
                ));
            };
            let mut got: Vec<ScrapeStats> = udp::scrape_entries(entries)
                .map(|e| ScrapeStats {
                    complete: e.seeders,
                    downloaded: e.completed,
                    incomplete: e.leechers,
                })
                .collect();
            got.resize(chunk.len(), ScrapeStats::default());
            stats.extend(got);
        }
        Ok(stats)
    }

    /// Sends the request `build` writes (given a connection id and a transaction id), connecting
    /// first when needed, retransmitting per BEP 15; the reply packet with the request's
    /// transaction id. Error packets become [`TrackerError::Failure`].
    async fn exchange(
        &self,
        addr: SocketAddr,
        config: &ClientConfig,
        build: impl Fn(&mut Vec<u8>, u64, u32),
    ) -> Result<Vec<u8>, TrackerError> {
        let slot = self.slot(addr);
        let mut guard = slot.lock().await;
        if guard.is_none() {
            let local: SocketAddr = if addr.is_ipv6() {
                (Ipv6Addr::UNSPECIFIED, 0).into()
            } else {
                (Ipv4Addr::UNSPECIFIED, 0).into()
            };
            let socket = UdpSocket::bind(local).await?;
            socket.connect(addr).await?;
            *guard = Some(Session {
                socket,
                connection: None,
            });
        }
        let Some(session) = guard.as_mut() else {
            return Err(TrackerError::Malformed("no session".to_owned()));
        };
        let mut n: u32 = 0;
        let mut packet = Vec::with_capacity(256);
        loop {
            if n > config.udp_max_retries {
                return Err(TrackerError::Timeout);
            }
            let wait = config
                .udp_base_timeout
                .saturating_mul(1u32.checked_shl(n).unwrap_or(u32::MAX));
            let tid: u32 = rand::rng().random();
            packet.clear();
            let live = session
                .connection
                .filter(|(_, at)| at.elapsed() < config.udp_connection_ttl);
            let expect = match live {
                Some((cid, _)) => {
                    build(&mut packet, cid, tid);
                    Expect::Other
                }
                None => {
                    session.connection = None;
                    udp::write_connect_request(&mut packet, tid);
                    Expect::Connect
                }
            };
            self.sends.fetch_add(1, Ordering::Relaxed);
            session.socket.send(&packet).await?;
            match recv_matching(&session.socket, tid, wait).await? {
                None => n += 1,
                Some(reply) => match (expect, udp::parse_response(&reply)) {
                    (_, Ok(Response::Error { message, .. })) => {
                        return Err(TrackerError::Failure(
                            String::from_utf8_lossy(message).into_owned(),
                        ));
                    }
                    (Expect::Connect, Ok(Response::Connect { connection_id, .. })) => {
                        self.connects.fetch_add(1, Ordering::Relaxed);
                        session.connection = Some((connection_id, Instant::now()));
                    }
                    (Expect::Connect, _) => {
                        return Err(TrackerError::Malformed(
                            "expected a connect reply".to_owned(),
                        ));
                    }
                    (Expect::Other, _) => return Ok(reply),
                },
            }
        }
    }
}

/// Waits up to `wait` for a parsable datagram with transaction id `tid`; `None` on timeout.
async fn recv_matching(
    socket: &UdpSocket,
    tid: u32,
    wait: Duration,
) -> Result<Option<Vec<u8>>, TrackerError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = vec![0u8; 65_536];
    loop {
        let n = match tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
            Err(_) => return Ok(None),
            Ok(Ok(n)) => n,
            // ICMP unreachable and the like: keep waiting, as a lost datagram.
            Ok(Err(_)) => {
                tokio::time::sleep_until(deadline).await;
                return Ok(None);
            }
        };
        let packet = &buf[..n];
        if matches!(udp::parse_response(packet), Ok(r) if r.transaction_id() == tid) {
            return Ok(Some(packet.to_vec()));
        }
    }
}
