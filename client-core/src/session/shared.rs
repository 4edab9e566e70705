//! The state every task of a torrent shares: one [`State`] behind a mutex (never held across an
//! `.await`), the shutdown signal, the task counter, and per-peer entries with the command
//! channel that tells a connection task what to send.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rand::rngs::StdRng;
use swarmd_proto::{InfoHash, PeerId};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

use super::config::TorrentConfig;
use super::metadata::{Meta, MetaFetch};
use super::pieces::Data;
use super::stats::{RateMeter, TorrentState};
use super::swarm::Swarm;
use crate::picker::{BlockRequest, PieceSet};
use crate::storage::RecheckProgress;

/// A connection's handle in the picker and the peer table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PeerKey(pub(crate) u32);

/// What a connection task is told to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// We verified a piece: announce it.
    Have(u32),
    /// The choker chokes the peer.
    Choke,
    /// The choker unchokes the peer.
    Unchoke,
    /// Withdraw a request (endgame: another peer delivered the block).
    Cancel(BlockRequest),
    /// Blocks were released (a peer left, a piece failed): request more.
    Refill,
    /// The torrent's data became available (metadata fetched, recheck done).
    Ready,
    /// Close the connection (banned, duplicate, or both sides seeds).
    Close,
}

/// The pieces a peer told us it has. Before the metadata is known the piece count is not, so
/// the bits grow with what the peer sends and are checked when the metadata arrives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PeerPieces {
    pub(crate) bits: Vec<u8>,
    pub(crate) all: bool,
    pub(crate) ones: u32,
}

impl PeerPieces {
    /// Sets piece `p`; true if it was not set.
    pub(crate) fn set(&mut self, p: u32) -> bool {
        if self.all || self.has_piece(p) {
            return false;
        }
        let byte = (p / 8) as usize;
        if self.bits.len() <= byte {
            self.bits.resize(byte + 1, 0);
        }
        self.bits[byte] |= 0x80 >> (p % 8);
        self.ones += 1;
        true
    }

    /// Replaces the set with a wire bitfield.
    pub(crate) fn set_bitfield(&mut self, bits: &[u8]) {
        self.bits.clear();
        self.bits.extend_from_slice(bits);
        self.all = false;
        self.ones = bits.iter().map(|b| b.count_ones()).sum();
    }

    /// How many pieces it has, out of `total`.
    pub(crate) fn count(&self, total: u32) -> u32 {
        if self.all {
            total
        } else {
            self.ones
        }
    }

    /// Whether it has all `total` pieces.
    pub(crate) fn is_seed(&self, total: u32) -> bool {
        total > 0 && self.count(total) >= total
    }
}

impl PieceSet for PeerPieces {
    fn has_piece(&self, piece: u32) -> bool {
        self.all || self.bits.has_piece(piece)
    }
}

/// What the session keeps of one connected peer.
#[derive(Debug)]
pub(crate) struct PeerEntry {
    pub(crate) addr: SocketAddr,
    /// The address it is banned under if it cheats: where it listens, as far as we know.
    pub(crate) ban_key: SocketAddr,
    pub(crate) peer_id: PeerId,
    pub(crate) outbound: bool,
    pub(crate) tx: mpsc::UnboundedSender<Cmd>,
    pub(crate) pieces: PeerPieces,
    /// Pieces it has that we lack: we are interested while this is above 0.
    pub(crate) wanted: u32,
    pub(crate) am_choking: bool,
    pub(crate) am_interested: bool,
    pub(crate) peer_choking: bool,
    pub(crate) peer_interested: bool,
    /// Milliseconds since the session started, when we last unchoked it.
    pub(crate) last_unchoked: Option<u64>,
    /// When it last sent a block, or when we became interested (anti-snubbing).
    pub(crate) last_block: Instant,
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    pub(crate) down: RateMeter,
    pub(crate) up: RateMeter,
    pub(crate) client: Option<String>,
    /// When the connection was registered.
    pub(crate) since: Instant,
}

impl PeerEntry {
    /// Sends a command; a closed channel means the task is exiting, which needs nothing more.
    pub(crate) fn send(&self, cmd: Cmd) {
        let _ = self.tx.send(cmd);
    }
}

/// Transfer totals of the torrent.
#[derive(Debug, Default)]
pub(crate) struct Totals {
    pub(crate) downloaded: u64,
    pub(crate) uploaded: u64,
    pub(crate) wasted: u64,
    pub(crate) hash_failures: u64,
    pub(crate) down: RateMeter,
    pub(crate) up: RateMeter,
    pub(crate) announces: u64,
    pub(crate) announce_error: Option<String>,
}

/// The choker's memory between rounds.
#[derive(Debug, Default)]
pub(crate) struct ChokeMemory {
    pub(crate) round: u64,
    pub(crate) optimistic: Option<PeerKey>,
}

/// Everything mutable about a torrent.
pub(crate) struct State {
    pub(crate) meta: Option<Arc<Meta>>,
    pub(crate) data: Option<Data>,
    pub(crate) fetch: MetaFetch,
    pub(crate) peers: HashMap<PeerKey, PeerEntry>,
    pub(crate) next_key: u32,
    pub(crate) swarm: Swarm,
    pub(crate) rng: StdRng,
    pub(crate) choke: ChokeMemory,
    pub(crate) totals: Totals,
    pub(crate) recheck: Option<RecheckProgress>,
    pub(crate) state: TorrentState,
    /// The last connections closed, and why.
    pub(crate) closes: VecDeque<(SocketAddr, String)>,
}

impl State {
    /// Sends `cmd` to every connected peer.
    pub(crate) fn broadcast(&self, cmd: Cmd) {
        for p in self.peers.values() {
            p.send(cmd);
        }
    }

    /// Tells every peer we download from to top up its requests (blocks were released).
    pub(crate) fn refill_all(&self) {
        for p in self.peers.values() {
            if p.am_interested {
                p.send(Cmd::Refill);
            }
        }
    }

    /// Pieces in the torrent, 0 before the metadata.
    pub(crate) fn piece_count(&self) -> u32 {
        self.data.as_ref().map_or(0, |d| d.picker.piece_count())
    }

    /// Whether we hold every piece (false before the data is ready).
    pub(crate) fn is_complete(&self) -> bool {
        self.data.as_ref().is_some_and(|d| d.picker.is_complete())
    }
}

/// Counts live tasks so [`Tasks::wait`] can return when all are gone.
#[derive(Debug)]
pub(crate) struct Tasks {
    live: watch::Sender<usize>,
}

struct TaskGuard(watch::Sender<usize>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n -= 1);
    }
}

impl Tasks {
    fn new() -> Self {
        Self {
            live: watch::Sender::new(0),
        }
    }

    /// Spawns `fut` on the runtime, counted until it finishes.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.live.send_modify(|n| *n += 1);
        let guard = TaskGuard(self.live.clone());
        tokio::spawn(async move {
            let _guard = guard;
            fut.await;
        });
    }

    /// Waits until no counted task is left.
    pub(crate) async fn wait(&self) {
        let mut rx = self.live.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// What every task of a torrent reaches through an `Arc`.
pub(crate) struct Shared {
    pub(crate) info_hash: InfoHash,
    pub(crate) peer_id: PeerId,
    pub(crate) config: TorrentConfig,
    pub(crate) listen: SocketAddr,
    pub(crate) state: Mutex<State>,
    pub(crate) tasks: Tasks,
    shutdown: watch::Sender<bool>,
    /// The torrent's state, for waiters.
    pub(crate) phase: watch::Sender<TorrentState>,
    /// Wakes the connection manager (new peer addresses).
    pub(crate) wake_dialer: Notify,
    pub(crate) started: Instant,
}

impl Shared {
    pub(crate) fn new(
        info_hash: InfoHash,
        peer_id: PeerId,
        config: TorrentConfig,
        listen: SocketAddr,
        state: State,
    ) -> Self {
        let phase = watch::Sender::new(state.state.clone());
        Self {
            info_hash,
            peer_id,
            config,
            listen,
            state: Mutex::new(state),
            tasks: Tasks::new(),
            shutdown: watch::Sender::new(false),
            phase,
            wake_dialer: Notify::new(),
            started: Instant::now(),
        }
    }

    /// Locks the state. Nothing panics while holding it, so a poisoned lock is still sound.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sets the torrent's state (under the lock held as `st`) and wakes waiters.
    pub(crate) fn set_state(&self, st: &mut State, new: TorrentState) {
        if st.state != new {
            st.state = new.clone();
            self.phase.send_replace(new);
        }
    }

    /// Asks every task to finish.
    pub(crate) fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Whether shutdown was asked.
    pub(crate) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Completes once shutdown is asked.
    pub(crate) async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Milliseconds since the session started (the choker's clock).
    pub(crate) fn millis(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_pieces_grow_and_count() {
        let mut p = PeerPieces::default();
        assert!(p.set(9));
        assert!(!p.set(9));
        assert!(p.has_piece(9) && !p.has_piece(8) && !p.has_piece(1000));
        assert_eq!(p.bits, [0, 0x40]);
        assert_eq!(p.count(10), 1);
        p.set_bitfield(&[0xff, 0xc0]);
        assert!(p.is_seed(10));
        assert!(!p.is_seed(11));
        let all = PeerPieces {
            all: true,
            ..PeerPieces::default()
        };
        assert!(all.is_seed(5) && all.has_piece(4) && !all.clone().set(3));
        assert!(!PeerPieces::default().is_seed(0));
    }

    #[tokio::test]
    async fn tasks_wait_for_all() {
        let tasks = Tasks::new();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = rx.await;
        });
        assert_eq!(*tasks.live.borrow(), 1);
        tx.send(()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), tasks.wait())
            .await
            .unwrap();
        tasks.wait().await;
    }
}
