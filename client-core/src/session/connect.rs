//! Getting connections: the accept loop, outbound dials with a timeout, the BEP 3 handshake
//! (with the extension protocol and fast extension bits), and entering and leaving the peer
//! table (limits, bans, ourselves, duplicate connections to one peer).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use swarmd_proto::wire::{Handshake, Reserved, WireError, HANDSHAKE_LEN};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

use super::peer::{Close, Peer, READ_BUF};
use super::shared::{Cmd, PeerEntry, PeerKey, Shared};

/// Disconnections remembered for [`TorrentHandle::recent_closes`](super::TorrentHandle).
const RECENT_CLOSES: usize = 32;

/// A connection that lasted this long counts as having worked, even if no payload moved.
const USEFUL: Duration = Duration::from_secs(60);

/// Our reserved bits: BEP 10 extension protocol and BEP 6 fast extension.
pub(crate) fn our_reserved() -> Reserved {
    Reserved::default().with_extensions(true).with_fast(true)
}

/// Accepts peers until shutdown.
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = shared.shutdown_signal() => return,
        };
        match accepted {
            Ok((stream, addr)) => {
                let full = shared.lock().peers.len() >= shared.config.limits.max_peers;
                if !full {
                    let s = Arc::clone(&shared);
                    shared.tasks.spawn(connection(s, stream, addr, None));
                }
            }
            // Out of descriptors, say: wait a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Dials `addr` (already counted in `half_open`) and runs the connection.
pub(crate) async fn dial(shared: Arc<Shared>, addr: SocketAddr) {
    let t = shared.config.timeouts.connect;
    let connected = tokio::select! {
        r = timeout(t, TcpStream::connect(addr)) => r.ok().and_then(Result::ok),
        () = shared.shutdown_signal() => None,
    };
    {
        let mut st = shared.lock();
        st.swarm.half_open -= 1;
        if connected.is_none() {
            st.swarm.disconnected(addr, Instant::now(), false, false);
        }
    }
    if let Some(stream) = connected {
        connection(shared, stream, addr, Some(addr)).await;
    }
}

/// Runs one connection: handshake, registration, the peer task, cleanup. `dialed` is the
/// address we dialed (outbound), `None` for an inbound connection.
pub(crate) async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    remote: SocketAddr,
    dialed: Option<SocketAddr>,
) {
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut inbuf = vec![0u8; READ_BUF];
    let mut end = 0;
    let t = shared.config.timeouts.handshake;
    let hs = tokio::select! {
        r = timeout(t, handshake(&shared, &mut rd, &mut wr, &mut inbuf, &mut end)) => {
            r.ok().and_then(Result::ok)
        }
        () = shared.shutdown_signal() => None,
    };
    let registered = hs.and_then(|hs| register(&shared, &hs, remote, dialed).map(|r| (hs, r)));
    let Some((hs, (key, rx))) = registered else {
        if let Some(addr) = dialed {
            shared
                .lock()
                .swarm
                .disconnected(addr, Instant::now(), false, false);
        }
        return;
    };
    inbuf.copy_within(HANDSHAKE_LEN..end, 0);
    end -= HANDSHAKE_LEN;
    let fast = hs.reserved.fast();
    let ext = hs.reserved.extensions();
    let peer = Peer::new(Arc::clone(&shared), key, remote, fast, ext);
    let why = peer.drive(rd, wr, rx, inbuf, end).await;
    unregister(&shared, key, &why);
}

#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("connection closed during the handshake")]
    Eof,
}

/// Sends our handshake and reads the peer's into `inbuf[..end]` (bytes after it stay there).
async fn handshake(
    shared: &Shared,
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    inbuf: &mut [u8],
    end: &mut usize,
) -> Result<Handshake, HandshakeError> {
    let mut out = Vec::with_capacity(HANDSHAKE_LEN);
    Handshake {
        reserved: our_reserved(),
        info_hash: shared.info_hash,
        peer_id: shared.peer_id,
    }
    .encode(&mut out);
    wr.write_all(&out).await?;
    loop {
        if let Some(h) = Handshake::decode(&inbuf[..*end])? {
            return Ok(h);
        }
        let n = rd.read(&mut inbuf[*end..]).await?;
        if n == 0 {
            return Err(HandshakeError::Eof);
        }
        *end += n;
    }
}

/// Enters a peer in the table, or refuses it: another torrent, ourselves, banned, full, or a
/// second connection to a peer already connected (of two, both sides keep the one opened by
/// the peer with the lower id, so they agree).
fn register(
    shared: &Shared,
    hs: &Handshake,
    remote: SocketAddr,
    dialed: Option<SocketAddr>,
) -> Option<(PeerKey, mpsc::UnboundedReceiver<Cmd>)> {
    let mut st = shared.lock();
    let now = Instant::now();
    if hs.info_hash != shared.info_hash {
        return None;
    }
    if hs.peer_id == shared.peer_id {
        if let Some(addr) = dialed {
            st.swarm.ourselves(addr);
        }
        return None;
    }
    let ban_key = dialed.unwrap_or(remote);
    if st.swarm.is_banned(Some(ban_key), Some(&hs.peer_id))
        || st.peers.len() >= shared.config.limits.max_peers
    {
        return None;
    }
    let outbound = dialed.is_some();
    if let Some(old) = st.peers.values().find(|e| e.peer_id == hs.peer_id) {
        let ours_opened_by_lower = if outbound {
            shared.peer_id.0 < hs.peer_id.0
        } else {
            hs.peer_id.0 < shared.peer_id.0
        };
        if old.outbound == outbound || !ours_opened_by_lower {
            return None;
        }
        old.send(Cmd::Close);
    }
    let key = PeerKey(st.next_key);
    st.next_key = st.next_key.wrapping_add(1);
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(addr) = dialed {
        st.swarm.connected(addr, now);
    }
    st.peers.insert(
        key,
        PeerEntry {
            addr: remote,
            ban_key,
            peer_id: hs.peer_id,
            outbound,
            tx,
            pieces: Default::default(),
            wanted: 0,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            last_unchoked: None,
            last_block: now,
            downloaded: 0,
            uploaded: 0,
            down: Default::default(),
            up: Default::default(),
            client: None,
            since: now,
        },
    );
    Some((key, rx))
}

/// Takes a peer out of the table: its availability and requests go back to the picker.
fn unregister(shared: &Shared, key: PeerKey, why: &Close) {
    let mut st = shared.lock();
    let st = &mut *st;
    let Some(e) = st.peers.remove(&key) else {
        return;
    };
    if st.closes.len() == RECENT_CLOSES {
        st.closes.pop_front();
    }
    st.closes.push_back((e.addr, why.to_string()));
    let n = st.piece_count();
    let mut released = false;
    if let Some(d) = &mut st.data {
        d.picker.peer_gone(&e.pieces);
        released = !d.picker.peer_dropped(key).is_empty();
    }
    if released {
        st.refill_all();
    }
    st.fetch.release(key);
    if st.choke.optimistic == Some(key) {
        st.choke.optimistic = None;
    }
    if !st.peers.values().any(|o| o.ban_key == e.ban_key) {
        // A peer that hangs up at once, again and again, is retried ever more slowly.
        let now = Instant::now();
        let worked = e.downloaded + e.uploaded > 0 || now.duration_since(e.since) >= USEFUL;
        let seed = e.pieces.is_seed(n);
        st.swarm.disconnected(e.ban_key, now, worked, seed);
    }
}
