//! The accept loop: one task per connection, HTTP/1.1 keep-alive, a connection cap, timeouts on
//! slow or idle clients, and a graceful drain when the shutdown token fires.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::handler::Tracker;

/// Most header lines in one request; trackers need a handful.
const MAX_HEADERS: usize = 64;

/// Serves `listener` until `shutdown` fires, then stops accepting and waits up to `grace` for
/// open connections to finish their in-flight requests (idle keep-alive connections are closed
/// at once).
pub async fn serve(
    listener: TcpListener,
    tracker: Arc<Tracker>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let local = listener.local_addr().ok();
    let cfg = tracker.config().clone();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.request_timeout)
        .max_buf_size(cfg.max_request_bytes)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    let graceful = GracefulShutdown::new();

    loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = limit.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of file descriptors or a connection reset before accept: back off
                    // briefly instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // TCP_NODELAY is inherited from the listener (see `bind_tcp`).
        let handler = tracker.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let response = handler.respond(req.method(), req.uri(), req.headers(), peer);
            std::future::ready(Ok::<_, Infallible>(response))
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        let tracker = tracker.clone();
        tracker.connection_opened();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::trace!(error = %e, %peer, "http connection ended with an error");
            }
            tracker.connection_closed();
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {
            tracing::debug!(addr = ?local, "http listener drained");
        }
        () = tokio::time::sleep(grace) => {
            tracing::warn!(addr = ?local, "http connections still open after the grace period; closing them");
        }
    }
}
