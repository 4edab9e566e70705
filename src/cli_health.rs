//! `swarmd health URL`: one plain-HTTP GET of a health endpoint (such as the admin listener's
//! `/readyz`) for container `HEALTHCHECK`s and scripts, which often have no curl: exits 0 on
//! HTTP 200, and 1 otherwise with the reason on one line.

use std::time::Duration;

use anyhow::{bail, Context as _};
use bytes::Bytes;
use clap::Args;
use http_body_util::Empty;
use hyper::header::HOST;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;

/// Arguments of `swarmd health`.
#[derive(Args, Debug)]
pub(crate) struct HealthArgs {
    /// The URL to get, plain HTTP, such as http://127.0.0.1:6970/readyz.
    url: String,
    /// Give up after this many seconds (connect and answer together).
    #[arg(long, value_name = "SECS", default_value_t = 3)]
    timeout: u64,
}

pub(crate) fn run(args: HealthArgs) -> anyhow::Result<()> {
    let uri: Uri = args
        .url
        .parse()
        .with_context(|| format!("bad URL {:?}", args.url))?;
    if uri.scheme_str() != Some("http") {
        bail!("{}: only http:// URLs are supported", args.url);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let limit = Duration::from_secs(args.timeout);
    let status = runtime
        .block_on(async { tokio::time::timeout(limit, get(&uri)).await })
        .with_context(|| format!("{}: no answer within {limit:?}", args.url))?
        .with_context(|| args.url.clone())?;
    if status != StatusCode::OK {
        bail!("{}: {status}", args.url);
    }
    Ok(())
}

/// The status of `GET uri`, on a fresh connection.
async fn get(uri: &Uri) -> anyhow::Result<StatusCode> {
    let authority = uri.authority().context("the URL has no host")?;
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host, port))
        .await
        .context("cannot connect")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake failed")?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::get(path)
        .header(HOST, authority.as_str())
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await.context("request failed")?;
    Ok(resp.status())
}
