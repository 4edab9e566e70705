//! Helpers shared by the end-to-end tests: a server on port 0 with a manual clock, a minimal
//! HTTP/1.1 client (so tests control every header and byte), and bencode accessors.

#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod krpc;
pub mod served;
pub mod transfer;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_bencode::value::Value;
use swarmd::config::Config;
use swarmd::{Options, Running};
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::ManualClock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A config for tests: loopback listeners on port 0 (IPv4 and IPv6), a fast sweeper.
pub fn test_config() -> Config {
    let mut c = Config::default();
    c.http.bind = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
    c.udp.bind = vec!["127.0.0.1:0".parse().unwrap(), "[::1]:0".parse().unwrap()];
    c.udp.workers = 2;
    // Never the public routers: tests stay on loopback.
    c.dht.bind = vec!["127.0.0.1:0".parse().unwrap()];
    c.dht.bootstrap_nodes = Vec::new();
    c.dht.rate_limit_per_sec = 0;
    c.admin.bind = vec!["127.0.0.1:0".parse().unwrap()];
    c.registry.sweep_interval_ms = 20;
    c.registry.shards = 16;
    c.registry.sweep_shards_per_step = 16;
    c.server.shutdown_timeout_secs = 2;
    c
}

pub struct TestServer {
    pub running: Running,
    pub clock: Arc<ManualClock>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        Self::start_with_policy(config, Arc::new(OpenPolicy)).await
    }

    pub async fn start_with_policy(
        config: Config,
        policy: Arc<dyn swarmd_swarm::access::AccessPolicy>,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(1_000));
        let running = swarmd::start(
            config,
            Options {
                clock: clock.clone(),
                policy,
            },
        )
        .await
        .expect("server starts");
        Self { running, clock }
    }

    pub fn dht_v4(&self) -> SocketAddr {
        *self
            .running
            .dht_addrs()
            .iter()
            .find(|a| a.is_ipv4())
            .expect("an IPv4 DHT socket")
    }

    pub fn http_v4(&self) -> SocketAddr {
        *self
            .running
            .http_addrs()
            .iter()
            .find(|a| a.is_ipv4())
            .expect("an IPv4 listener")
    }

    pub fn http_v6(&self) -> SocketAddr {
        *self
            .running
            .http_addrs()
            .iter()
            .find(|a| a.is_ipv6())
            .expect("an IPv6 listener")
    }

    pub fn udp_v4(&self) -> SocketAddr {
        *self
            .running
            .udp_addrs()
            .iter()
            .find(|a| a.is_ipv4())
            .expect("an IPv4 UDP listener")
    }

    pub fn udp_v6(&self) -> SocketAddr {
        *self
            .running
            .udp_addrs()
            .iter()
            .find(|a| a.is_ipv6())
            .expect("an IPv6 UDP listener")
    }

    pub fn admin(&self) -> SocketAddr {
        self.running.admin_addrs()[0]
    }
}

/// One HTTP response as the tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn bencode(&self) -> BTreeMap<Vec<u8>, Value> {
        match serde_bencode::from_bytes::<Value>(&self.body) {
            Ok(Value::Dict(d)) => d.into_iter().collect(),
            other => panic!("not a bencoded dict: {other:?} from {:?}", self.text()),
        }
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Sends `GET target` with extra header lines and reads one response.
    pub async fn get(&mut self, target: &str, extra_headers: &[(&str, &str)]) -> Reply {
        let mut req = format!("GET {target} HTTP/1.1\r\nHost: tracker\r\n");
        for (k, v) in extra_headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.stream.write_all(req.as_bytes()).await.unwrap();
        self.read_reply().await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> Reply {
        self.stream.write_all(bytes).await.unwrap();
        self.read_reply().await
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk))
            .await
            .expect("reply within 10 s")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    async fn read_reply(&mut self) -> Reply {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            assert!(self.fill().await, "connection closed before a reply");
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while self.buf.len() < body_start + len {
            assert!(self.fill().await, "connection closed mid-body");
        }
        let body = self.buf[body_start..body_start + len].to_vec();
        self.buf.drain(..body_start + len);
        Reply {
            status,
            headers,
            body,
        }
    }
}

/// One request on a fresh connection.
pub async fn get(addr: SocketAddr, target: &str) -> Reply {
    Conn::open(addr).await.get(target, &[]).await
}

pub async fn get_with(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Reply {
    Conn::open(addr).await.get(target, headers).await
}

/// Percent-encodes every byte (what careful clients do for binary values).
pub fn enc(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

/// An announce target for `info_hash`/`peer_id`, with extra query text appended.
pub fn announce_url(
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    port: u16,
    left: u64,
    extra: &str,
) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&uploaded=0&downloaded=0&left={left}{extra}",
        enc(&info_hash),
        enc(&peer_id)
    )
}

pub fn int(d: &BTreeMap<Vec<u8>, Value>, key: &str) -> i64 {
    match d.get(key.as_bytes()) {
        Some(Value::Int(i)) => *i,
        other => panic!("{key}: expected an int, got {other:?}"),
    }
}

pub fn bytes<'a>(d: &'a BTreeMap<Vec<u8>, Value>, key: &str) -> &'a [u8] {
    match d.get(key.as_bytes()) {
        Some(Value::Bytes(b)) => b,
        other => panic!("{key}: expected a byte string, got {other:?}"),
    }
}

pub fn failure(reply: &Reply) -> Option<String> {
    assert_eq!(reply.status, 200, "tracker errors are sent with HTTP 200");
    reply
        .bencode()
        .get(&b"failure reason"[..])
        .map(|v| match v {
            Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("failure reason is not a string: {other:?}"),
        })
}

/// Compact IPv4 peers as socket addresses.
pub fn peers_v4(b: &[u8]) -> Vec<SocketAddr> {
    assert_eq!(b.len() % 6, 0, "compact peers come in 6-byte entries");
    b.chunks_exact(6)
        .map(|c| SocketAddr::from(([c[0], c[1], c[2], c[3]], u16::from_be_bytes([c[4], c[5]]))))
        .collect()
}

/// Compact IPv6 peers as socket addresses.
pub fn peers_v6(b: &[u8]) -> Vec<SocketAddr> {
    assert_eq!(
        b.len() % 18,
        0,
        "compact IPv6 peers come in 18-byte entries"
    );
    b.chunks_exact(18)
        .map(|c| {
            let ip: [u8; 16] = c[..16].try_into().unwrap();
            SocketAddr::from((ip, u16::from_be_bytes([c[16], c[17]])))
        })
        .collect()
}

/// Polls `cond` until it holds or `deadline` passes.
pub async fn wait_until<F, Fut>(deadline: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = Instant::now() + deadline;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A BEP 15 client over a real UDP socket, built on the codec in `swarmd_proto::udp`.
pub struct UdpClient {
    sock: tokio::net::UdpSocket,
    server: SocketAddr,
    tid: u32,
}

/// What an announce over UDP asks for.
pub struct UdpAnnounce<'a> {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub port: u16,
    pub left: u64,
    pub event: swarmd_proto::Event,
    pub num_want: i32,
    pub url: &'a [u8],
    pub uploaded: u64,
    pub downloaded: u64,
}

impl<'a> UdpAnnounce<'a> {
    pub fn new(info_hash: [u8; 20], peer_id: [u8; 20], port: u16, left: u64) -> Self {
        Self {
            info_hash,
            peer_id,
            port,
            left,
            event: swarmd_proto::Event::None,
            num_want: -1,
            url: b"",
            uploaded: 0,
            downloaded: 0,
        }
    }
}

impl UdpClient {
    /// A client socket on the loopback address of the server's family.
    pub async fn new(server: SocketAddr) -> Self {
        let local: SocketAddr = if server.is_ipv4() {
            "127.0.0.1:0".parse().unwrap()
        } else {
            "[::1]:0".parse().unwrap()
        };
        Self::new_from(server, local).await
    }

    /// A client socket bound to `local` (e.g. another loopback address such as 127.0.0.2).
    pub async fn new_from(server: SocketAddr, local: SocketAddr) -> Self {
        Self {
            sock: tokio::net::UdpSocket::bind(local).await.unwrap(),
            server,
            tid: 0x5157_0000,
        }
    }

    pub fn next_tid(&mut self) -> u32 {
        self.tid = self.tid.wrapping_add(1);
        self.tid
    }

    /// Sends `packet`; returns the reply, or `None` if none came within `wait`.
    pub async fn exchange(&self, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
        self.sock.send_to(packet, self.server).await.unwrap();
        let mut buf = vec![0u8; 65536];
        match tokio::time::timeout(wait, self.sock.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                assert_eq!(from, self.server);
                buf.truncate(n);
                Some(buf)
            }
            Ok(Err(e)) => panic!("recv: {e}"),
            Err(_) => None,
        }
    }

    pub async fn connect(&mut self) -> u64 {
        let tid = self.next_tid();
        let mut p = Vec::new();
        swarmd_proto::udp::write_connect_request(&mut p, tid);
        let reply = self
            .exchange(&p, Duration::from_secs(5))
            .await
            .expect("connect reply");
        assert_eq!(reply.len(), 16, "a connect reply is exactly 16 bytes");
        match swarmd_proto::udp::parse_response(&reply).unwrap() {
            swarmd_proto::udp::Response::Connect {
                transaction_id,
                connection_id,
            } => {
                assert_eq!(transaction_id, tid);
                connection_id
            }
            other => panic!("expected a connect reply, got {other:?}"),
        }
    }

    /// The raw announce packet for `a` under `connection_id`.
    pub fn announce_packet(&mut self, connection_id: u64, a: &UdpAnnounce<'_>) -> (u32, Vec<u8>) {
        let tid = self.next_tid();
        let req = swarmd_proto::udp::AnnounceRequest {
            connection_id,
            transaction_id: tid,
            info_hash: swarmd_proto::InfoHash(a.info_hash),
            peer_id: swarmd_proto::PeerId(a.peer_id),
            downloaded: a.downloaded,
            left: a.left,
            uploaded: a.uploaded,
            event: a.event,
            ip: None,
            key: 7,
            num_want: a.num_want,
            port: a.port,
            url_data: swarmd_proto::udp::UrlData::new(a.url),
        };
        let mut p = Vec::new();
        swarmd_proto::udp::write_announce_request(&mut p, &req);
        (tid, p)
    }

    /// Announces and returns the raw reply (panics on silence).
    pub async fn announce_raw(&mut self, connection_id: u64, a: &UdpAnnounce<'_>) -> Vec<u8> {
        let (_, p) = self.announce_packet(connection_id, a);
        self.exchange(&p, Duration::from_secs(5))
            .await
            .expect("announce reply")
    }

    pub async fn scrape_raw(&mut self, connection_id: u64, hashes: &[[u8; 20]]) -> Option<Vec<u8>> {
        let tid = self.next_tid();
        let hashes: Vec<swarmd_proto::InfoHash> =
            hashes.iter().map(|h| swarmd_proto::InfoHash(*h)).collect();
        let mut p = Vec::new();
        swarmd_proto::udp::write_scrape_request(&mut p, connection_id, tid, &hashes);
        self.exchange(&p, Duration::from_secs(5)).await
    }
}

/// An announce reply's (leechers, seeders, peers).
pub fn udp_announce_reply(reply: &[u8]) -> (u32, u32, Vec<u8>) {
    match swarmd_proto::udp::parse_response(reply).unwrap() {
        swarmd_proto::udp::Response::Announce {
            leechers,
            seeders,
            peers,
            ..
        } => (leechers, seeders, peers.to_vec()),
        other => panic!("expected an announce reply, got {other:?}"),
    }
}

/// An error reply's message, or `None` for any other packet.
pub fn udp_error(reply: &[u8]) -> Option<String> {
    match swarmd_proto::udp::parse_response(reply).ok()? {
        swarmd_proto::udp::Response::Error { message, .. } => {
            Some(String::from_utf8_lossy(message).into_owned())
        }
        _ => None,
    }
}
