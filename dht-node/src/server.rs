//! The tokio driver: binds one IPv4 and/or one IPv6 (v6-only) UDP socket, runs one task that
//! owns the [`DhtNode`] (packets from both sockets, a 100 ms tick, commands from
//! [`DhtHandle`]s, resolved bootstrap addresses), resolves bootstrap names with back-off in a
//! second task, and loads/saves the node table file around the run.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use swarmd_proto::{InfoHash, NodeId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::DhtConfig;
use crate::lookup::{LookupId, LookupKind, LookupResult};
use crate::node::{DhtEvent, DhtNode, NodeStats, MAX_PACKET};
use crate::persist;
use crate::DhtDeps;

/// How often the core's timers run.
const TICK: Duration = Duration::from_millis(100);
/// Datagrams handled per socket wake-up before yielding to the other branches.
const DRAIN: usize = 64;
/// Kernel receive buffer asked for.
const SOCKET_RECV_BUFFER: usize = 4 << 20;
/// Bootstrap names are resolved again this often after a success.
const RERESOLVE_EVERY: Duration = Duration::from_secs(30 * 60);

enum Command {
    Lookup {
        kind: LookupKind,
        target: NodeId,
        ipv6: bool,
        reply: oneshot::Sender<LookupResult>,
    },
    Stats(oneshot::Sender<(NodeId, NodeStats)>),
    Bootstrap(Vec<SocketAddr>),
}

/// A cloneable handle to a running [`DhtServer`]: runs lookups and reads its state. Every
/// method returns `None` once the server has stopped.
#[derive(Debug, Clone)]
pub struct DhtHandle {
    tx: mpsc::Sender<Command>,
    ipv6_only: bool,
}

impl DhtHandle {
    /// Runs an iterative lookup of `target` over IPv6 (`ipv6`) or IPv4.
    pub async fn lookup(
        &self,
        kind: LookupKind,
        target: NodeId,
        ipv6: bool,
    ) -> Option<LookupResult> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Lookup {
            kind,
            target,
            ipv6,
            reply,
        };
        self.tx.send(cmd).await.ok()?;
        rx.await.ok()
    }

    /// `find_node` lookup (IPv4 if the server has an IPv4 socket).
    pub async fn find_node(&self, target: NodeId) -> Option<LookupResult> {
        self.lookup(LookupKind::FindNode, target, self.ipv6_only)
            .await
    }

    /// `get_peers` lookup: peers stored under `info_hash` in the network.
    pub async fn get_peers(&self, info_hash: InfoHash) -> Option<LookupResult> {
        self.lookup(LookupKind::GetPeers, NodeId(info_hash.0), self.ipv6_only)
            .await
    }

    /// Announces `port` (or, with `implied_port`, our socket's port) under `info_hash` to the
    /// closest nodes.
    pub async fn announce(
        &self,
        info_hash: InfoHash,
        port: u16,
        implied_port: bool,
        seed: bool,
    ) -> Option<LookupResult> {
        let kind = LookupKind::Announce {
            port,
            implied_port,
            seed,
        };
        self.lookup(kind, NodeId(info_hash.0), self.ipv6_only).await
    }

    /// Our node id and table sizes.
    pub async fn stats(&self) -> Option<(NodeId, NodeStats)> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Command::Stats(reply)).await.ok()?;
        rx.await.ok()
    }

    /// Adds bootstrap addresses (a bootstrap starts if the routing table is empty).
    pub async fn add_bootstrap_nodes(&self, addrs: Vec<SocketAddr>) -> Option<()> {
        self.tx.send(Command::Bootstrap(addrs)).await.ok()
    }
}

/// A running DHT node. Stops when the shutdown token passed to [`DhtServer::start`] fires,
/// saving the node table if [`DhtConfig::state_file`] is set; [`DhtServer::join`] waits for it.
#[derive(Debug)]
pub struct DhtServer {
    local_addrs: Vec<SocketAddr>,
    handle: DhtHandle,
    task: JoinHandle<()>,
}

impl DhtServer {
    /// Binds `addrs` (at most one IPv4 and one IPv6 address; IPv6 sockets are v6-only) and
    /// spawns the node on the current tokio runtime. An IPv6 wildcard the host cannot bind
    /// (no IPv6 stack) is skipped with a warning when another address is bound. The state file,
    /// if configured, is loaded in the background before the first packet is handled.
    ///
    /// Errors: bind errors as the OS gave them; `InvalidInput` for no address or two of one
    /// family.
    ///
    /// Must be called from within a tokio runtime (it spawns its tasks there).
    pub fn start(
        addrs: &[SocketAddr],
        config: DhtConfig,
        deps: DhtDeps,
        shutdown: CancellationToken,
    ) -> io::Result<DhtServer> {
        let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidInput, m.to_string());
        let (mut v4, mut v6) = (None, None);
        for &addr in addrs {
            let slot = if addr.is_ipv4() { &mut v4 } else { &mut v6 };
            if slot.is_some() {
                return Err(invalid("dht: at most one bind address per address family"));
            }
            match bind_udp(addr) {
                Ok(s) => *slot = Some(s),
                Err(e) if addr.is_ipv6() && addr.ip().is_unspecified() && no_ipv6(&e) => {
                    tracing::warn!(%addr, error = %e, "IPv6 is not available; the dht node runs on IPv4 only");
                }
                Err(e) => return Err(e),
            }
        }
        if v4.is_none() && v6.is_none() {
            return Err(invalid("dht: no address bound"));
        }
        let local_addrs = v4
            .iter()
            .chain(&v6)
            .map(UdpSocket::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let (tx, rx) = mpsc::channel(64);
        let handle = DhtHandle {
            tx,
            ipv6_only: v4.is_none(),
        };
        let mut core = DhtNode::new(config.clone(), deps, Instant::now());
        core.set_families(v4.is_some(), v6.is_some());
        let names = config.bootstrap_nodes.clone();
        let families = (v4.is_some(), v6.is_some());
        if !names.is_empty() {
            tokio::spawn(resolve(names, families, handle.clone(), shutdown.clone()));
        }
        let task = tokio::spawn(run(core, v4, v6, rx, shutdown, config.state_file));
        Ok(DhtServer {
            local_addrs,
            handle,
            task,
        })
    }

    /// The bound addresses, with their real ports.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// A handle to run lookups on this node.
    pub fn handle(&self) -> DhtHandle {
        self.handle.clone()
    }

    /// Waits until the node has stopped (after the shutdown token fired) and saved its table.
    pub async fn join(self) {
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "the dht task failed");
        }
    }
}

fn no_ipv6(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::AddrNotAvailable || matches!(e.raw_os_error(), Some(97 | 99))
}

/// A non-blocking UDP socket, IPv6-only for IPv6, with a large receive buffer.
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    let _ = socket.set_recv_buffer_size(SOCKET_RECV_BUFFER);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

async fn recv(s: &Option<UdpSocket>, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    match s {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// The sockets and the core, with reusable buffers.
struct Driver {
    core: DhtNode,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    out: Vec<u8>,
    waiting: HashMap<LookupId, oneshot::Sender<LookupResult>>,
}

impl Driver {
    fn socket(&self, dst: SocketAddr) -> Option<&UdpSocket> {
        if dst.is_ipv4() {
            self.v4.as_ref()
        } else {
            self.v6.as_ref()
        }
    }

    async fn send(&mut self, dst: SocketAddr, payload: &[u8]) {
        let Some(socket) = self.socket(dst) else {
            self.core.note_send_error();
            return;
        };
        let r = match socket.try_send_to(payload, dst) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => socket.send_to(payload, dst).await,
            r => r,
        };
        if r.is_err() {
            self.core.note_send_error();
        }
    }

    /// Handles one datagram and sends its reply.
    async fn packet(&mut self, packet: &[u8], src: SocketAddr) {
        let mut out = std::mem::take(&mut self.out);
        if self.core.handle(packet, src, Instant::now(), &mut out) {
            self.send(src, &out).await;
        }
        self.out = out;
    }

    /// Sends queued queries and delivers finished lookups.
    async fn flush(&mut self) {
        while let Some(t) = self.core.poll_transmit() {
            self.send(t.dst, &t.payload).await;
        }
        while let Some(DhtEvent::LookupDone { id, result }) = self.core.poll_event() {
            if let Some(reply) = self.waiting.remove(&id) {
                let _ = reply.send(result);
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Lookup {
                kind,
                target,
                ipv6,
                reply,
            } => {
                let id = self.core.start_lookup(kind, target, ipv6, now);
                self.waiting.insert(id, reply);
            }
            Command::Stats(reply) => {
                let _ = reply.send((self.core.id(), self.core.stats()));
            }
            Command::Bootstrap(addrs) => self.core.add_bootstrap_nodes(&addrs, now),
        }
    }
}

async fn run(
    core: DhtNode,
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    mut commands: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
    state_file: Option<PathBuf>,
) {
    let mut d = Driver {
        core,
        v4,
        v6,
        out: Vec::with_capacity(1500),
        waiting: HashMap::new(),
    };
    if let Some(path) = state_file.clone() {
        match tokio::task::spawn_blocking(move || persist::load(&path)).await {
            Ok(Ok(snapshot)) => {
                let n = snapshot.nodes.len();
                d.core.restore(snapshot, Instant::now());
                tracing::info!(nodes = n, "dht node table loaded");
            }
            Ok(Err(persist::PersistError::Io(e))) if e.kind() == io::ErrorKind::NotFound => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "dht node table not loaded; starting empty"),
            Err(e) => tracing::warn!(error = %e, "dht node table not loaded"),
        }
    }
    let mut buf4 = vec![0u8; MAX_PACKET + 1];
    let mut buf6 = vec![0u8; MAX_PACKET + 1];
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = recv(&d.v4, &mut buf4) => {
                if let Ok((n, src)) = r {
                    d.packet(&buf4[..n], src).await;
                    drain(&mut d, false, &mut buf4).await;
                }
            }
            r = recv(&d.v6, &mut buf6) => {
                if let Ok((n, src)) = r {
                    d.packet(&buf6[..n], src).await;
                    drain(&mut d, true, &mut buf6).await;
                }
            }
            _ = tick.tick() => d.core.tick(Instant::now()),
            Some(cmd) = commands.recv() => d.command(cmd),
        }
        d.flush().await;
    }
    d.core.publish();
    if let Some(path) = state_file {
        let snapshot = d.core.snapshot();
        let n = snapshot.nodes.len();
        match tokio::task::spawn_blocking(move || persist::save(&path, &snapshot)).await {
            Ok(Ok(())) => tracing::info!(nodes = n, "dht node table saved"),
            Ok(Err(e)) => tracing::warn!(error = %e, "dht node table not saved"),
            Err(e) => tracing::warn!(error = %e, "dht node table not saved"),
        }
    }
}

/// Handles datagrams already queued on one socket, up to [`DRAIN`].
async fn drain(d: &mut Driver, ipv6: bool, buf: &mut [u8]) {
    for _ in 0..DRAIN {
        let socket = if ipv6 { d.v6.as_ref() } else { d.v4.as_ref() };
        let Some(Ok((n, src))) = socket.map(|s| s.try_recv_from(buf)) else {
            return;
        };
        d.packet(&buf[..n], src).await;
    }
}

/// Resolves the bootstrap names, retrying with back-off (5 s doubling to 15 minutes) while
/// none resolves, and again every 30 minutes after a success; logs the first failure only.
async fn resolve(
    names: Vec<String>,
    families: (bool, bool),
    handle: DhtHandle,
    shutdown: CancellationToken,
) {
    let mut delay = Duration::from_secs(5);
    let mut warned = false;
    loop {
        let mut addrs = Vec::new();
        for name in &names {
            match tokio::net::lookup_host(name.as_str()).await {
                Ok(found) => {
                    addrs.extend(found.filter(
                        |a| {
                            if a.is_ipv4() {
                                families.0
                            } else {
                                families.1
                            }
                        },
                    ))
                }
                Err(e) => {
                    tracing::debug!(name = %name, error = %e, "dht bootstrap name not resolved")
                }
            }
        }
        let wait = if addrs.is_empty() {
            if !warned {
                tracing::info!(retry_in = ?delay, "no dht bootstrap name resolved; retrying with back-off");
                warned = true;
            }
            let d = delay;
            delay = (delay * 2).min(Duration::from_secs(15 * 60));
            d
        } else {
            delay = Duration::from_secs(5);
            if handle.add_bootstrap_nodes(addrs).await.is_none() {
                return;
            }
            RERESOLVE_EVERY
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
