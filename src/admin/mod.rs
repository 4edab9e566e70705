//! The admin listener: `/metrics` (Prometheus text format), `/healthz` (the process is alive),
//! `/readyz` (every listener is bound and the process is not shutting down), `/stats` (a small
//! JSON summary), and the bearer-token REST API under `/api/v1/` ([`api`]). It binds to
//! localhost by default.

pub mod api;
pub mod token;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use swarmd_private::PrivatePolicy;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The Prometheus text exposition format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the admin endpoints read.
pub struct AdminState {
    /// The process's metric set.
    pub metrics: Metrics,
    /// The shared registry, for `/stats`.
    pub registry: Arc<Registry>,
    /// Set once every listener is bound; cleared when shutdown begins.
    pub ready: Arc<AtomicBool>,
    /// When the process started.
    pub started: Instant,
    /// Where the HTTP tracker listens.
    pub http_addrs: Vec<SocketAddr>,
    /// Where the UDP tracker listens.
    pub udp_addrs: Vec<SocketAddr>,
    /// Where the DHT node listens.
    pub dht_addrs: Vec<SocketAddr>,
    /// The private-mode policy (listed and private modes), which the API manages.
    pub private: Option<Arc<PrivatePolicy>>,
    /// The API's bearer token.
    pub token: token::AdminToken,
    /// Public announce URLs to personalise with passkeys (`access.announce_urls`).
    pub announce_urls: Vec<String>,
}

impl AdminState {
    /// Re-reads the token file and the private policy's users, keys, allow list and client rules
    /// from the database, without touching peers or pending accounting (SIGHUP,
    /// `POST /api/v1/reload`). Blocking.
    pub fn reload(&self) -> anyhow::Result<()> {
        use anyhow::Context as _;
        self.token
            .reload()
            .context("cannot reload the admin token")?;
        if let Some(p) = &self.private {
            p.reload().context("cannot reload the access policy")?;
        }
        Ok(())
    }
}

fn respond(state: &AdminState, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let mut body = Vec::with_capacity(16 * 1024);
            match state.metrics.encode_text(&mut body) {
                Ok(()) => with_type(StatusCode::OK, body.into(), PROMETHEUS_TEXT),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode metrics");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n")
                }
            }
        }
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            if state.ready.load(Ordering::Relaxed) {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        "/stats" => {
            let c = state.registry.counts();
            let body = serde_json::json!({
                "version": env!("CARGO_PKG_VERSION"),
                "uptime_secs": state.started.elapsed().as_secs(),
                "torrents": c.torrents,
                "peers": {
                    "seeders": c.seeders_v4 + c.seeders_v6,
                    "leechers": c.leechers_v4 + c.leechers_v6,
                    "ipv4": c.seeders_v4 + c.leechers_v4,
                    "ipv6": c.seeders_v6 + c.leechers_v6,
                },
                "http": { "listeners": state.http_addrs },
                "udp": { "listeners": state.udp_addrs },
                "dht": { "listeners": state.dht_addrs },
            });
            let mut bytes = body.to_string().into_bytes();
            bytes.push(b'\n');
            with_type(StatusCode::OK, bytes.into(), "application/json")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

pub(crate) fn with_type(
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(
        status,
        Bytes::from_static(body.as_bytes()),
        "text/plain; charset=utf-8",
    )
}

/// Serves the admin endpoints on `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, shutdown: CancellationToken) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    loop {
        let (stream, _) = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let state = state.clone();
            async move {
                let response = if req.uri().path().starts_with(api::PREFIX) {
                    api::handle(state, req).await
                } else {
                    respond(&state, &req)
                };
                Ok::<_, Infallible>(response)
            }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}
