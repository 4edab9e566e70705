//! A small, read-only Mainline DHT client (BEP 5) over one tokio UDP socket: iterative
//! `get_peers` lookups and `announce_peer`, against any node (ours or others).
//!
//! It is not a full node: every query carries `ro=1` (BEP 43) and incoming queries are ignored.
//! Replies are matched by transaction id and source address; anything malformed, unsolicited
//! or from the wrong address is dropped. The KRPC codec is [`swarmd_proto::krpc`].
//!
//! A lookup keeps the closest nodes found so far, queries up to `alpha` of them at once among
//! the `k` closest, and stops when those `k` have all answered or failed, when `max_queries`
//! have been sent, or at the overall deadline.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use swarmd_proto::krpc::{parse_message, write_query, Body, Method, Want};
use swarmd_proto::{InfoHash, NodeId};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// Our client version (`v`): `SW` and version 0.1.
const VERSION: &[u8] = b"SW\x00\x01";
/// Largest datagram we read.
const MAX_PACKET: usize = 4096;
/// Most candidate nodes a lookup keeps.
const MAX_CANDIDATES: usize = 256;

/// What can go wrong with the DHT client.
#[derive(Debug, thiserror::Error)]
pub enum DhtError {
    /// The local socket could not be bound.
    #[error("cannot bind the DHT socket on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: io::Error,
    },
    /// Sending or receiving failed.
    #[error("DHT socket error: {0}")]
    Io(#[from] io::Error),
    /// No bootstrap node was given.
    #[error("no bootstrap node given")]
    NoBootstrap,
    /// No node answered at all.
    #[error("no DHT node answered")]
    NoResponse,
}

/// Lookup settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhtConfig {
    /// Queries in flight at once.
    pub alpha: usize,
    /// How many closest nodes a lookup converges on (and announces to).
    pub k: usize,
    /// How long one query waits for its reply.
    pub query_timeout: Duration,
    /// How long a whole lookup (or announce round) may take.
    pub deadline: Duration,
    /// Most queries one lookup sends.
    pub max_queries: usize,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            alpha: 3,
            k: 8,
            query_timeout: Duration::from_secs(2),
            deadline: Duration::from_secs(15),
            max_queries: 64,
        }
    }
}

/// The result of a `get_peers` lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// Peers found (deduplicated, in the order found).
    pub peers: Vec<SocketAddr>,
    /// The closest nodes that answered with a token, closest first (at most `k`).
    pub nodes_with_tokens: Vec<(SocketAddr, Vec<u8>)>,
    /// Our address as the first replier saw it (BEP 42 `ip`), if it said.
    pub reported_addr: Option<SocketAddr>,
}

/// A read-only DHT client bound to one UDP socket.
#[derive(Debug)]
pub struct DhtClient {
    socket: UdpSocket,
    id: NodeId,
    config: DhtConfig,
    next_tid: AtomicU16,
}

/// A reply we asked for, copied out of the packet.
#[derive(Debug, Default)]
struct Reply {
    id: NodeId,
    nodes: Vec<(NodeId, SocketAddr)>,
    values: Vec<SocketAddr>,
    token: Option<Vec<u8>>,
    ip: Option<SocketAddr>,
}

/// What came back for one query.
#[derive(Debug)]
enum Outcome {
    /// A reply (`y`=`r`).
    Reply(Reply),
    /// An error reply, or no reply in time.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Fresh,
    InFlight,
    Done,
    Failed,
}

#[derive(Debug)]
struct Candidate {
    addr: SocketAddr,
    id: Option<NodeId>,
    state: State,
    token: Option<Vec<u8>>,
}

impl Candidate {
    /// Sort key: distance to `target`; nodes of unknown id (bootstrap) come first.
    fn key(&self, target: &NodeId) -> [u8; 20] {
        self.id.map(|id| id.distance(target)).unwrap_or_default()
    }
}

impl DhtClient {
    /// Binds a client on `local` (port 0 for any) with a random node id and default settings.
    pub async fn bind(local: SocketAddr) -> Result<Self, DhtError> {
        Self::bind_with(local, DhtConfig::default()).await
    }

    /// Binds a client on `local` with the given settings.
    pub async fn bind_with(local: SocketAddr, config: DhtConfig) -> Result<Self, DhtError> {
        let socket = UdpSocket::bind(local)
            .await
            .map_err(|source| DhtError::Bind {
                addr: local,
                source,
            })?;
        Ok(Self {
            socket,
            id: NodeId(rand::random()),
            config,
            next_tid: AtomicU16::new(rand::random()),
        })
    }

    /// The socket's local address.
    pub fn local_addr(&self) -> Result<SocketAddr, DhtError> {
        Ok(self.socket.local_addr()?)
    }

    /// Our (random) node id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The settings.
    pub fn config(&self) -> &DhtConfig {
        &self.config
    }

    fn want(&self) -> Want {
        match self.socket.local_addr() {
            Ok(SocketAddr::V6(_)) => Want {
                n4: false,
                n6: true,
            },
            _ => Want {
                n4: true,
                n6: false,
            },
        }
    }

    /// Sends one query to `to`; returns its transaction id.
    async fn send(&self, to: SocketAddr, method: &Method<'_>) -> Result<[u8; 2], DhtError> {
        let tid = self.next_tid.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let mut packet = Vec::with_capacity(256);
        write_query(
            &mut packet,
            &tid,
            self.id,
            method,
            self.want(),
            true,
            Some(VERSION),
        );
        self.socket.send_to(&packet, to).await?;
        Ok(tid)
    }

    /// Waits for the reply to one of `pending` (tid -> (address, sent at)) or for the first of
    /// them to time out, until `deadline`. `None` when the deadline passed with nothing to say.
    async fn next_outcome(
        &self,
        pending: &mut HashMap<[u8; 2], (SocketAddr, Instant)>,
        deadline: Instant,
        buf: &mut [u8],
    ) -> Result<Option<(SocketAddr, Outcome)>, DhtError> {
        loop {
            let now = Instant::now();
            if let Some((&tid, &(addr, _))) = pending
                .iter()
                .find(|(_, (_, sent))| now >= *sent + self.config.query_timeout)
            {
                pending.remove(&tid);
                return Ok(Some((addr, Outcome::Failed)));
            }
            let wake = pending
                .values()
                .map(|(_, sent)| *sent + self.config.query_timeout)
                .min()
                .map_or(deadline, |t| t.min(deadline));
            if now >= deadline {
                return Ok(None);
            }
            let (len, from) = match tokio::time::timeout_at(wake, self.socket.recv_from(buf)).await
            {
                Err(_) => continue,
                Ok(Ok(got)) => got,
                // ICMP errors surface here on some systems; the query just times out.
                Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => continue,
                Ok(Err(e)) => return Err(e.into()),
            };
            let Ok(msg) = parse_message(&buf[..len]) else {
                continue;
            };
            let Ok(tid) = <[u8; 2]>::try_from(msg.transaction_id) else {
                continue;
            };
            match pending.get(&tid) {
                Some(&(addr, _)) if addr == from => {}
                _ => continue,
            }
            let outcome = match msg.body {
                Body::Query(_) => continue,
                Body::Error { .. } => Outcome::Failed,
                Body::Response(r) => {
                    let mut nodes: Vec<(NodeId, SocketAddr)> = Vec::new();
                    nodes.extend(r.nodes.iter().map(|(id, a)| (id, SocketAddr::V4(a))));
                    nodes.extend(r.nodes6.iter().map(|(id, a)| (id, SocketAddr::V6(a))));
                    Outcome::Reply(Reply {
                        id: r.id,
                        nodes,
                        values: r.values.iter().collect(),
                        token: r.token.map(<[u8]>::to_vec),
                        ip: msg.ip,
                    })
                }
            };
            pending.remove(&tid);
            return Ok(Some((from, outcome)));
        }
    }

    /// Iterative `get_peers` lookup of `info_hash`, starting from `bootstrap`.
    pub async fn get_peers(
        &self,
        bootstrap: &[SocketAddr],
        info_hash: InfoHash,
    ) -> Result<Lookup, DhtError> {
        if bootstrap.is_empty() {
            return Err(DhtError::NoBootstrap);
        }
        let target = NodeId::from(info_hash);
        let local = self.socket.local_addr()?;
        let same_family = |a: &SocketAddr| a.is_ipv4() == local.is_ipv4();
        let mut cands: Vec<Candidate> = Vec::new();
        for &addr in bootstrap {
            if same_family(&addr) && !cands.iter().any(|c| c.addr == addr) {
                cands.push(Candidate {
                    addr,
                    id: None,
                    state: State::Fresh,
                    token: None,
                });
            }
        }
        if cands.is_empty() {
            return Err(DhtError::NoBootstrap);
        }
        let deadline = Instant::now() + self.config.deadline;
        let method = Method::GetPeers {
            info_hash,
            noseed: false,
            scrape: false,
        };
        let mut pending = HashMap::new();
        let mut sent = 0usize;
        let mut answered = 0usize;
        let mut lookup = Lookup::default();
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            cands.sort_by_key(|c| c.key(&target));
            // Query the closest fresh nodes among the k closest still alive.
            let mut to_send = Vec::new();
            for c in cands
                .iter_mut()
                .filter(|c| c.state != State::Failed)
                .take(self.config.k)
            {
                if pending.len() + to_send.len() >= self.config.alpha
                    || sent + to_send.len() >= self.config.max_queries
                {
                    break;
                }
                if c.state == State::Fresh {
                    c.state = State::InFlight;
                    to_send.push(c.addr);
                }
            }
            for addr in to_send {
                sent += 1;
                match self.send(addr, &method).await {
                    Ok(tid) => {
                        pending.insert(tid, (addr, Instant::now()));
                    }
                    Err(_) => mark(&mut cands, addr, State::Failed),
                }
            }
            if pending.is_empty() {
                break;
            }
            let Some((from, outcome)) = self.next_outcome(&mut pending, deadline, &mut buf).await?
            else {
                break;
            };
            let reply = match outcome {
                Outcome::Failed => {
                    mark(&mut cands, from, State::Failed);
                    continue;
                }
                Outcome::Reply(r) => r,
            };
            answered += 1;
            if lookup.reported_addr.is_none() {
                lookup.reported_addr = reply.ip;
            }
            if let Some(c) = cands.iter_mut().find(|c| c.addr == from) {
                c.state = State::Done;
                c.id = Some(reply.id);
                c.token = reply.token;
            }
            for peer in reply.values {
                if peer.port() != 0 && !lookup.peers.contains(&peer) {
                    lookup.peers.push(peer);
                }
            }
            for (id, addr) in reply.nodes {
                let usable = addr.port() != 0
                    && !addr.ip().is_unspecified()
                    && same_family(&addr)
                    && addr != local;
                if usable && cands.len() < MAX_CANDIDATES && !cands.iter().any(|c| c.addr == addr) {
                    cands.push(Candidate {
                        addr,
                        id: Some(id),
                        state: State::Fresh,
                        token: None,
                    });
                }
            }
        }
        if answered == 0 {
            return Err(DhtError::NoResponse);
        }
        cands.sort_by_key(|c| c.key(&target));
        lookup.nodes_with_tokens = cands
            .into_iter()
            .filter(|c| c.state == State::Done)
            .filter_map(|c| c.token.map(|t| (c.addr, t)))
            .take(self.config.k)
            .collect();
        Ok(lookup)
    }

    /// Looks `info_hash` up, then announces us (`port`, or with `None` the socket's source port
    /// via `implied_port`) to the closest nodes that gave a token. Returns how many accepted,
    /// with the lookup.
    pub async fn announce_with_lookup(
        &self,
        bootstrap: &[SocketAddr],
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<(usize, Lookup), DhtError> {
        let lookup = self.get_peers(bootstrap, info_hash).await?;
        let deadline = Instant::now() + self.config.deadline;
        let mut pending = HashMap::new();
        for (addr, token) in &lookup.nodes_with_tokens {
            let method = Method::AnnouncePeer {
                info_hash,
                port: port.unwrap_or(0),
                implied_port: port.is_none(),
                token,
                seed: false,
            };
            if let Ok(tid) = self.send(*addr, &method).await {
                pending.insert(tid, (*addr, Instant::now()));
            }
        }
        let mut accepted = 0;
        let mut buf = vec![0u8; MAX_PACKET];
        while !pending.is_empty() {
            match self.next_outcome(&mut pending, deadline, &mut buf).await? {
                None => break,
                Some((_, Outcome::Reply(_))) => accepted += 1,
                Some((_, Outcome::Failed)) => {}
            }
        }
        Ok((accepted, lookup))
    }

    /// Announces `info_hash` (see [`DhtClient::announce_with_lookup`]) and returns how many
    /// nodes accepted.
    pub async fn announce(
        &self,
        bootstrap: &[SocketAddr],
        info_hash: InfoHash,
        port: Option<u16>,
    ) -> Result<usize, DhtError> {
        Ok(self
            .announce_with_lookup(bootstrap, info_hash, port)
            .await?
            .0)
    }
}

fn mark(cands: &mut [Candidate], addr: SocketAddr, state: State) {
    if let Some(c) = cands.iter_mut().find(|c| c.addr == addr) {
        c.state = state;
    }
}

/// Whether `peer` is us, as seen by a node that reported our address.
pub(crate) fn is_self(peer: SocketAddr, reported: Option<SocketAddr>, port: u16) -> bool {
    let ip: Option<IpAddr> = reported.map(|a| a.ip());
    peer.port() == port && ip.is_none_or(|ip| ip == peer.ip())
}

#[cfg(test)]
#[path = "dht_tests.rs"]
mod tests;
