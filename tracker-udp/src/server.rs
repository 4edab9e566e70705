//! The socket side: `SO_REUSEPORT` sockets, one blocking OS thread each, a receive-handle-send
//! loop per thread (plain `recv_from`/`send_to`, or `recvmmsg`/`sendmmsg` batches), and a
//! shutdown that every worker notices within its 100 ms read timeout.

use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle, Thread};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::handler::{Scratch, UdpTracker};
use crate::metrics::{DropReason, Tally};

/// Largest request accepted. BEP 15 requests are at most 98 bytes plus BEP 41 URL data (an
/// announce) or 16 + 20 * 74 (a scrape); bigger datagrams are dropped unread.
pub(crate) const MAX_PACKET: usize = 4096;
/// Receive buffer per packet: one byte more than [`MAX_PACKET`], so a truncated read shows.
pub(crate) const RECV_BUF: usize = MAX_PACKET + 1;
/// How long a worker blocks in a read before it checks for shutdown.
const READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Kernel receive buffer asked for (the kernel caps it at `net.core.rmem_max`).
const SOCKET_RECV_BUFFER: usize = 4 << 20;

/// Running UDP tracker workers, for one or more bind addresses. Dropping it without
/// [`UdpServer::join`] detaches the threads; they still stop when the shutdown token fires.
#[derive(Debug)]
pub struct UdpServer {
    local_addrs: Vec<SocketAddr>,
    pub(crate) workers: Vec<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
    stop: CancellationToken,
}

impl UdpServer {
    /// Binds `workers` (see [`crate::UdpConfig::workers`]) `SO_REUSEPORT` sockets per address
    /// (IPv6 ones IPv6-only; for port 0 the first socket's port is reused by the rest), spawns
    /// one OS thread per socket named `swarmd-udp-N`, and returns at once. Workers stop within
    /// about 100 ms of `shutdown` being cancelled.
    ///
    /// Nothing is left running on error. Bind errors are returned as the OS gave them, so a
    /// caller can tell an address family the host lacks with [`is_family_unavailable`].
    pub fn start(
        addrs: &[SocketAddr],
        tracker: Arc<UdpTracker>,
        shutdown: CancellationToken,
    ) -> io::Result<UdpServer> {
        let per_addr = tracker.config().worker_count();
        let mut sockets = Vec::with_capacity(addrs.len() * per_addr);
        let mut local_addrs = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let first = bind_udp(addr)?;
            let local = first.local_addr()?;
            sockets.push(first);
            for _ in 1..per_addr {
                sockets.push(bind_udp(local)?);
            }
            local_addrs.push(local);
        }

        // A child token: cancelling it on a failed start stops what was spawned without
        // touching the caller's token.
        let stop = shutdown.child_token();
        let flag = Arc::new(AtomicBool::new(false));
        let mut server = UdpServer {
            local_addrs,
            workers: Vec::with_capacity(sockets.len()),
            watcher: None,
            stop: stop.clone(),
        };
        let watch_flag = flag.clone();
        let watch_token = stop.clone();
        server.watcher = Some(spawn_or_stop(
            &server,
            "swarmd-udp-stop".into(),
            move || {
                wait_cancelled(watch_token);
                watch_flag.store(true, Ordering::Relaxed);
            },
        )?);
        for (i, socket) in sockets.into_iter().enumerate() {
            let worker = Worker {
                socket,
                tracker: tracker.clone(),
                stop: flag.clone(),
                scratch: Scratch::default(),
                tally: Tally::default(),
            };
            let handle = spawn_or_stop(&server, format!("swarmd-udp-{i}"), move || worker.run())?;
            server.workers.push(handle);
        }
        Ok(server)
    }

    /// The bound addresses, one per bind address, with their real ports.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// Blocks until every worker has exited: call it after cancelling the shutdown token.
    pub fn join(self) {
        for handle in self.workers.into_iter().chain(self.watcher) {
            if handle.join().is_err() {
                tracing::error!("a udp tracker thread panicked");
            }
        }
    }
}

/// Spawns a named thread; on failure cancels the server's token so the threads already running
/// stop, and returns the error.
fn spawn_or_stop(
    server: &UdpServer,
    name: String,
    f: impl FnOnce() + Send + 'static,
) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(name).spawn(f).inspect_err(|_| {
        server.stop.cancel();
    })
}

/// True if `err` (from [`UdpServer::start`]) means the host cannot use that address family or
/// address at all (no IPv6 stack, or the address is not configured here), rather than, say,
/// the port being taken: callers may then skip the address.
pub fn is_family_unavailable(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::AddrNotAvailable
        || matches!(
            err.raw_os_error(),
            Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL | libc::EPROTONOSUPPORT)
        )
}

/// A blocking UDP socket with `SO_REUSEPORT`, IPv6-only for IPv6, a large receive buffer and
/// the worker read timeout.
fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_port(true)?;
    // Best effort: a smaller buffer only means earlier drops under bursts.
    let _ = socket.set_recv_buffer_size(SOCKET_RECV_BUFFER);
    socket.set_read_timeout(Some(READ_TIMEOUT))?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Wakes a parked thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Blocks the current thread until `token` is cancelled, without an async runtime.
fn wait_cancelled(token: CancellationToken) {
    let mut cancelled = pin!(token.cancelled_owned());
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    while cancelled.as_mut().poll(&mut cx) == Poll::Pending {
        thread::park();
    }
}

/// One socket and its thread's reusable state.
pub(crate) struct Worker {
    pub(crate) socket: UdpSocket,
    pub(crate) tracker: Arc<UdpTracker>,
    /// Set once the shutdown token is cancelled: a relaxed load per packet, never contended.
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) scratch: Scratch,
    pub(crate) tally: Tally,
}

impl Worker {
    fn run(mut self) {
        let batch = self.tracker.config().recv_batch;
        #[cfg(target_os = "linux")]
        if batch > 1 {
            crate::mmsg::run(&mut self, batch);
            self.tally.flush(&self.tracker.metrics);
            return;
        }
        let _ = batch;
        self.run_plain();
        self.tally.flush(&self.tracker.metrics);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Handles a receive error: false if the worker should stop.
    pub(crate) fn on_recv_error(&mut self, e: &io::Error) -> bool {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                // Idle: a good moment to publish the counts.
                self.tally.flush(&self.tracker.metrics);
            }
            io::ErrorKind::Interrupted => {}
            _ => {
                tracing::warn!(error = %e, "udp receive failed");
                // Do not spin on a persistent error.
                thread::sleep(Duration::from_millis(10));
            }
        }
        !self.stopping()
    }

    /// The plain loop: one `recv_from`, one `send_to` per datagram.
    fn run_plain(&mut self) {
        let mut buf = vec![0u8; RECV_BUF];
        let mut out = Vec::with_capacity(self.tracker.config().max_reply_bytes.min(RECV_BUF));
        let mut flushed_at = self.tracker.now();
        while !self.stopping() {
            let (n, src) = match self.socket.recv_from(&mut buf) {
                Ok(r) => r,
                Err(e) => {
                    if self.on_recv_error(&e) {
                        continue;
                    }
                    break;
                }
            };
            let now = self.tracker.now();
            if n > MAX_PACKET {
                self.tally.received(n);
                self.tally.drop(DropReason::TooLong);
            } else if self.tracker.handle_with(
                &buf[..n],
                src,
                now,
                &mut out,
                &mut self.scratch,
                &mut self.tally,
            ) {
                match self.socket.send_to(&out, src) {
                    Ok(sent) => self.tally.sent(sent),
                    Err(_) => self.tally.drop(DropReason::SendError),
                }
            }
            if now != flushed_at {
                flushed_at = now;
                self.tally.flush(&self.tracker.metrics);
            }
        }
    }
}
