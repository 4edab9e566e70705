//! Helpers shared by the end-to-end tests: a server on port 0 with a manual clock, a minimal
//! HTTP/1.1 client (so tests control every header and byte), and bencode accessors.

#![allow(dead_code, unreachable_pub, missing_docs)]

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
        let clock = Arc::new(ManualClock::new(1_000));
        let running = swarmd::start(
            config,
            Options {
                clock: clock.clone(),
                policy: Arc::new(OpenPolicy),
            },
        )
        .await
        .expect("server starts");
        Self { running, clock }
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
