//! One peer connection after the handshake, as a single task: it reads and decodes the peer's
//! messages ([`decode`] over a reused receive buffer), writes from an output buffer, serves
//! requests through batched reads off the runtime, runs its timers once a second, and obeys
//! the [`Cmd`]s of the rest of the session (`have`, choke decisions, endgame cancels).
//!
//! Reading and writing are branches of one `select!`, so a peer that does not read cannot stop
//! us reading from it (two clients both blocked writing to each other cannot deadlock). The
//! state lock is taken once per batch of messages read, never across an `.await`.

mod control;
mod message;
mod serve;

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sha1::{Digest, Sha1};
use swarmd_proto::wire::{allowed_fast_set, decode, ExtHandshake, Limits, Message, WireError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::pieces;
use super::shared::{Cmd, PeerKey, Shared, State};
use crate::picker::BlockRequest;
use crate::storage::Storage;
use serve::{Job, Serve};

/// The extended message id under which we receive `ut_metadata` (our BEP 10 `m`).
pub(crate) const UT_METADATA_ID: u8 = 1;
/// Our BEP 10 `v`.
const CLIENT: &[u8] = b"swarmd 0.1";
/// Size of the receive buffer (it grows for a larger message, up to the limits).
pub(crate) const READ_BUF: usize = 256 << 10;
/// Most allowed-fast pieces a peer may give us (more are ignored).
const MAX_ALLOWED_IN: usize = 64;
/// Metadata pieces asked of one peer at once.
const METADATA_PIPELINE: usize = 2;
/// A peer that lets this much of our output pile up (it asks, but does not read) is dropped.
const MAX_PENDING_OUT: usize = 8 << 20;
/// The output buffer drops its written front once that is this large (and half of it).
const COMPACT_OUT: usize = 256 << 10;
/// Seconds of a peer's rate kept in flight as requests.
const PIPELINE_SECS: u64 = 2;

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Close {
    /// A socket error.
    #[error("socket: {0}")]
    Io(std::io::Error),
    /// The peer closed the connection.
    #[error("closed by the peer")]
    Eof,
    /// The peer broke the framing or the limits.
    #[error("wire: {0}")]
    Wire(WireError),
    /// The peer broke the protocol in a way the codec cannot see.
    #[error("protocol: {0}")]
    Protocol(&'static str),
    /// A timer ran out.
    #[error("{0} timeout")]
    Timeout(&'static str),
    /// The session closed it (shutdown, ban, duplicate).
    #[error("closed by the session")]
    Asked,
    /// We both have every piece.
    #[error("both seeds")]
    BothSeeds,
    /// Reading a block to upload failed.
    #[error("storage read failed")]
    Storage,
}

/// One connected peer, as its task sees it.
pub(crate) struct Peer {
    shared: Arc<Shared>,
    key: PeerKey,
    addr: SocketAddr,
    fast: bool,
    ext: bool,
    limits: Limits,
    out: Vec<u8>,
    out_pos: usize,
    scratch: Vec<u8>,
    picks: Vec<BlockRequest>,
    meta_picks: Vec<u32>,
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    /// Requests in flight to the peer, oldest first.
    outstanding: VecDeque<BlockRequest>,
    depth: usize,
    max_depth: usize,
    allowed_in: Vec<u32>,
    allowed_out: Vec<u32>,
    their_metadata_id: Option<u8>,
    their_metadata_size: Option<u64>,
    metadata_refused: bool,
    serve: Serve,
    storage: Option<(Arc<dyn Storage>, u64)>,
    ready: bool,
    last_recv: Instant,
    last_send: Instant,
    last_progress: Instant,
    hold_refill: bool,
    recv_tick: u64,
    rate: u64,
}

impl Peer {
    /// A peer that just completed its handshake (`fast`, `ext`: both sides set the bits).
    pub(crate) fn new(
        shared: Arc<Shared>,
        key: PeerKey,
        addr: SocketAddr,
        fast: bool,
        ext: bool,
    ) -> Self {
        let now = Instant::now();
        let l = shared.config.limits;
        let max_depth = l.max_request_queue.max(1);
        Self {
            shared,
            key,
            addr,
            fast,
            ext,
            limits: Limits::default(),
            out: Vec::new(),
            out_pos: 0,
            scratch: Vec::new(),
            picks: Vec::new(),
            meta_picks: Vec::new(),
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            outstanding: VecDeque::new(),
            depth: l.initial_request_queue.clamp(1, max_depth),
            max_depth,
            allowed_in: Vec::new(),
            allowed_out: Vec::new(),
            their_metadata_id: None,
            their_metadata_size: None,
            metadata_refused: false,
            serve: Serve::default(),
            storage: None,
            ready: false,
            last_recv: now,
            last_send: now,
            last_progress: now,
            hold_refill: false,
            recv_tick: 0,
            rate: 0,
        }
    }

    /// Runs the connection until it ends; `inbuf[..end]` holds bytes read after the handshake.
    pub(crate) async fn drive(
        mut self,
        mut rd: OwnedReadHalf,
        mut wr: OwnedWriteHalf,
        mut rx: mpsc::UnboundedReceiver<Cmd>,
        mut inbuf: Vec<u8>,
        mut end: usize,
    ) -> Close {
        let shared = Arc::clone(&self.shared);
        if let Err(c) = self.start() {
            return c;
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut job: Option<JoinHandle<Job>> = None;
        // Bytes that came with the handshake are handled first.
        let mut fresh = end > 0;
        loop {
            if std::mem::take(&mut fresh) {
                match self.process(&inbuf[..end]) {
                    Ok(used) => {
                        inbuf.copy_within(used..end, 0);
                        end -= used;
                    }
                    Err(c) => return c,
                }
                make_room(&mut inbuf, end);
            }
            if job.is_none() {
                if let Some((storage, piece_len)) = &self.storage {
                    job = self
                        .serve
                        .start(storage, *piece_len, self.out.len() - self.out_pos);
                }
            }
            let step = tokio::select! {
                () = shared.shutdown_signal() => Err(Close::Asked),
                r = rd.read(&mut inbuf[end..]) => match r {
                    Ok(0) => Err(Close::Eof),
                    Ok(n) => {
                        end += n;
                        fresh = true;
                        self.last_recv = Instant::now();
                        Ok(())
                    }
                    Err(e) => Err(Close::Io(e)),
                },
                r = wr.write(&self.out[self.out_pos..]), if self.out_pos < self.out.len() => {
                    match r {
                        Ok(0) => Err(Close::Io(std::io::ErrorKind::WriteZero.into())),
                        Ok(n) => {
                            self.wrote(n);
                            Ok(())
                        }
                        Err(e) => Err(Close::Io(e)),
                    }
                }
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd),
                    None => Err(Close::Asked),
                },
                r = wait_job(&mut job) => {
                    job = None;
                    match r {
                        Some(j) => self.served(j),
                        None => Err(Close::Storage),
                    }
                }
                _ = tick.tick() => self.on_tick(),
            };
            if let Err(c) = step {
                return c;
            }
            if self.out.len() - self.out_pos > MAX_PENDING_OUT {
                return Close::Protocol("not reading what we send");
            }
        }
    }

    fn wrote(&mut self, n: usize) {
        self.out_pos += n;
        self.last_send = Instant::now();
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= COMPACT_OUT && self.out_pos >= self.out.len() / 2 {
            // Written bytes go, so a peer that always has more coming does not grow the buffer.
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Appends a message to the output.
    fn send(&mut self, msg: Message<'_>) {
        msg.encode(&mut self.out);
    }

    /// Appends an extended message whose payload is in `self.scratch`.
    fn send_scratch(&mut self, id: u8) {
        Message::Extended {
            id,
            payload: &self.scratch,
        }
        .encode(&mut self.out);
    }

    /// Decodes and handles every complete message of `buf`, under one lock; returns the bytes
    /// used.
    fn process(&mut self, buf: &[u8]) -> Result<usize, Close> {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        let now = Instant::now();
        let mut at = 0;
        while let Some((msg, used)) = decode(&buf[at..], &self.limits).map_err(Close::Wire)? {
            self.on_message(&mut st, msg, now)?;
            at += used;
        }
        self.refill(&mut st);
        Ok(at)
    }

    /// A batch of blocks was read for upload.
    fn served(&mut self, job: Job) -> Result<(), Close> {
        let (mut buf, bytes, result) = self.serve.finish(job);
        if self.out_pos == self.out.len() {
            self.out_pos = 0;
            std::mem::swap(&mut self.out, &mut buf);
        } else {
            self.out.extend_from_slice(&buf);
        }
        self.serve.recycle(buf);
        {
            let mut st = self.shared.lock();
            st.totals.uploaded += bytes;
            if let Some(e) = st.peers.get_mut(&self.key) {
                e.uploaded += bytes;
            }
        }
        result.map_err(|_| Close::Storage)
    }

    /// The first messages: what we have, our extension handshake, allowed-fast pieces.
    fn start(&mut self) -> Result<(), Close> {
        let shared = Arc::clone(&self.shared);
        let mut st = shared.lock();
        if let Some(d) = &st.data {
            let (n, have) = (d.picker.piece_count(), d.picker.have_count());
            self.become_ready(&st);
            if self.fast && n > 0 && have == n {
                self.send(Message::HaveAll);
            } else if self.fast && have == 0 {
                self.send(Message::HaveNone);
            } else if have > 0 {
                Message::Bitfield(&d.have).encode(&mut self.out);
            }
        } else if self.fast {
            self.send(Message::HaveNone);
        }
        if self.ext {
            self.send_ext_handshake(&st);
        }
        self.send_allowed_fast(&st);
        self.sync_interest(&mut st)
    }

    /// Takes what serving and requesting need once the torrent's data is ready.
    fn become_ready(&mut self, st: &State) {
        if let Some(d) = &st.data {
            self.ready = true;
            self.limits = Limits::for_pieces(d.picker.piece_count());
            self.storage = Some((Arc::clone(&d.storage), d.meta.layout.piece_length()));
        }
    }

    /// The data became ready while connected (a magnet's metadata arrived and was checked).
    fn on_ready(&mut self, st: &mut State) -> Result<(), Close> {
        if self.ready || st.data.is_none() {
            return Ok(());
        }
        self.become_ready(st);
        if self.ext {
            // Again, now with `metadata_size`.
            self.send_ext_handshake(st);
        }
        if let (Some(d), Some(e)) = (&st.data, st.peers.get(&self.key)) {
            for index in 0..d.picker.piece_count() {
                if d.picker.have(index) && !crate::picker::PieceSet::has_piece(&e.pieces, index) {
                    Message::Have { index }.encode(&mut self.out);
                }
            }
        }
        self.send_allowed_fast(st);
        self.sync_interest(st)
    }

    fn send_ext_handshake(&mut self, st: &State) {
        let cfg = &self.shared.config;
        let hs = ExtHandshake {
            m: vec![(b"ut_metadata", UT_METADATA_ID)],
            p: Some(self.shared.listen.port()),
            v: Some(CLIENT),
            yourip: Some(self.addr.ip()),
            ipv4: None,
            ipv6: None,
            reqq: u32::try_from(cfg.limits.max_peer_requests).ok(),
            metadata_size: st.meta.as_ref().map(|m| m.info.len() as u64),
            upload_only: cfg.seed_only || st.is_complete(),
        };
        self.scratch.clear();
        hs.encode(&mut self.scratch);
        self.send_scratch(0);
    }

    /// BEP 6: offers the peer a few pieces it may request while choked.
    fn send_allowed_fast(&mut self, st: &State) {
        let k = self.shared.config.limits.allowed_fast;
        let (true, IpAddr::V4(ip), Some(d)) = (self.fast && k > 0, self.addr.ip(), &st.data) else {
            return;
        };
        let n = d.picker.piece_count();
        let set = allowed_fast_set(ip, &self.shared.info_hash, n, k, |b| Sha1::digest(b).into());
        for index in set {
            if d.picker.have(index) && !self.allowed_out.contains(&index) {
                self.allowed_out.push(index);
                self.send(Message::AllowedFast { index });
            }
        }
    }
}

/// The finished batch read, if one is running (pending forever otherwise); `None` if the
/// blocking task died.
async fn wait_job(job: &mut Option<JoinHandle<Job>>) -> Option<Job> {
    match job {
        Some(j) => j.await.ok(),
        None => std::future::pending().await,
    }
}

/// Grows `inbuf` when the partial message at its start fills it (the codec refused any length
/// above the limits already, so this is bounded).
fn make_room(inbuf: &mut Vec<u8>, end: usize) {
    if end < inbuf.len() {
        return;
    }
    let need = match inbuf.first_chunk::<4>() {
        Some(p) => 4 + u32::from_be_bytes(*p) as usize,
        None => 0,
    };
    let len = need.max(inbuf.len() * 2);
    inbuf.resize(len, 0);
}

/// Stores a block (see [`pieces::on_block`]) and spawns the verification of a piece it
/// completes.
fn store_block(shared: &Arc<Shared>, st: &mut State, key: PeerKey, b: BlockRequest, data: &[u8]) {
    if let Some((piece, buf)) = pieces::on_block(st, key, b, data, Instant::now()) {
        shared
            .tasks
            .spawn(pieces::verify(Arc::clone(shared), piece, buf));
    }
}
