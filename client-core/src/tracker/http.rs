//! HTTP tracker client: builds the announce/scrape URL (binary values percent-encoded), GETs it
//! over one HTTP/1.1 connection with hyper, and parses the bencoded reply. The parsers never
//! panic on hostile replies.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;
use swarmd_proto::bencode::Value;
use swarmd_proto::http::percent_encode_into;
use swarmd_proto::{Event, InfoHash};

use super::{
    compact_peers, AnnounceRequest, AnnounceResponse, ScrapeStats, TrackerError, TrackerUrl,
};

/// Largest reply body accepted.
const MAX_BODY: usize = 4 << 20;

/// The request target (`path?query`) of an announce.
pub(crate) fn announce_target(u: &TrackerUrl, req: &AnnounceRequest) -> String {
    let mut t = u.announce_path(req.passkey.as_deref());
    t.push('?');
    if !u.query.is_empty() {
        t.push_str(&u.query);
        t.push('&');
    }
    t.push_str("info_hash=");
    percent_encode_into(&req.info_hash.0, &mut t);
    t.push_str("&peer_id=");
    percent_encode_into(&req.peer_id.0, &mut t);
    t.push_str(&format!(
        "&port={}&uploaded={}&downloaded={}&left={}&compact=1",
        req.port, req.uploaded, req.downloaded, req.left
    ));
    let event = match req.event {
        Event::None => None,
        Event::Started => Some("started"),
        Event::Completed => Some("completed"),
        Event::Stopped => Some("stopped"),
        Event::Paused => Some("paused"),
    };
    if let Some(e) = event {
        t.push_str("&event=");
        t.push_str(e);
    }
    if let Some(n) = req.numwant {
        t.push_str(&format!("&numwant={n}"));
    }
    if let Some(k) = req.key {
        t.push_str(&format!("&key={k:08x}"));
    }
    t
}

pub(crate) async fn announce(
    u: &TrackerUrl,
    req: &AnnounceRequest,
    timeout: Duration,
) -> Result<AnnounceResponse, TrackerError> {
    let body = get(u, &announce_target(u, req), timeout).await?;
    parse_announce_reply(&body)
}

pub(crate) async fn scrape(
    u: &TrackerUrl,
    hashes: &[InfoHash],
    timeout: Duration,
) -> Result<Vec<ScrapeStats>, TrackerError> {
    let mut t = u.scrape_path().ok_or(TrackerError::NoScrape)?;
    let mut sep = '?';
    if !u.query.is_empty() {
        t.push('?');
        t.push_str(&u.query);
        sep = '&';
    }
    for h in hashes {
        t.push(sep);
        t.push_str("info_hash=");
        percent_encode_into(&h.0, &mut t);
        sep = '&';
    }
    let body = get(u, &t, timeout).await?;
    parse_scrape_reply(&body, hashes)
}

/// GETs `target` from the tracker; the body of a 200 reply, or of any reply carrying a
/// bencoded `failure reason` (surfaced as [`TrackerError::Failure`]).
async fn get(u: &TrackerUrl, target: &str, timeout: Duration) -> Result<Vec<u8>, TrackerError> {
    let addr: SocketAddr = u.resolve().await?;
    let work = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| TrackerError::Http(e.to_string()))?;
        let driver = tokio::spawn(conn);
        let request = hyper::Request::get(target)
            .header(hyper::header::HOST, u.host_header())
            .header(hyper::header::USER_AGENT, "swarmd/0.1")
            .header(hyper::header::CONNECTION, "close")
            .body(Empty::<Bytes>::new())
            .map_err(|e| TrackerError::Http(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| TrackerError::Http(e.to_string()))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_BODY)
            .collect()
            .await
            .map_err(|e| TrackerError::Http(e.to_string()))?
            .to_bytes();
        driver.abort();
        if status != 200 {
            // Many trackers send a bencoded failure with a 4xx status.
            if let Ok(v) = Value::decode(&body) {
                if let Some(reason) = v.get(b"failure reason").and_then(Value::as_bytes) {
                    return Err(TrackerError::Failure(
                        String::from_utf8_lossy(reason).into_owned(),
                    ));
                }
            }
            return Err(TrackerError::HttpStatus(status));
        }
        Ok(body.to_vec())
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| TrackerError::Timeout)?
}

fn malformed(what: &str) -> TrackerError {
    TrackerError::Malformed(what.to_owned())
}

fn text(v: &Value<'_>) -> Option<String> {
    v.as_bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn count(v: Option<&Value<'_>>) -> Option<u32> {
    v.and_then(Value::as_int)
        .map(|n| u32::try_from(n.max(0)).unwrap_or(u32::MAX))
}

/// Parses a bencoded announce reply: `failure reason` becomes [`TrackerError::Failure`];
/// `peers` may be compact (6-byte entries) or a list of dictionaries (`ip`, `port`), and
/// `peers6` holds 18-byte entries. Unparsable peer entries are skipped.
pub fn parse_announce_reply(body: &[u8]) -> Result<AnnounceResponse, TrackerError> {
    let v = Value::decode(body).map_err(|e| TrackerError::Malformed(e.to_string()))?;
    if v.as_dict().is_none() {
        return Err(malformed("reply is not a dictionary"));
    }
    if let Some(reason) = v.get(b"failure reason") {
        return Err(TrackerError::Failure(
            text(reason).unwrap_or_else(|| "(no text)".to_owned()),
        ));
    }
    let interval = count(v.get(b"interval")).ok_or_else(|| malformed("no `interval`"))?;
    let mut peers = Vec::new();
    match v.get(b"peers") {
        Some(Value::Bytes(b)) => compact_peers(b, false, &mut peers),
        Some(Value::List(list)) => {
            for p in list {
                let ip = p
                    .get(b"ip")
                    .and_then(Value::as_bytes)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|s| s.parse::<std::net::IpAddr>().ok());
                let port = p
                    .get(b"port")
                    .and_then(Value::as_int)
                    .and_then(|n| u16::try_from(n).ok());
                if let (Some(ip), Some(port)) = (ip, port) {
                    peers.push(SocketAddr::new(ip, port));
                }
            }
        }
        _ => {}
    }
    if let Some(b) = v.get(b"peers6").and_then(Value::as_bytes) {
        compact_peers(b, true, &mut peers);
    }
    Ok(AnnounceResponse {
        interval,
        min_interval: count(v.get(b"min interval")),
        complete: count(v.get(b"complete")),
        incomplete: count(v.get(b"incomplete")),
        peers,
        warning: v.get(b"warning message").and_then(text),
        tracker_id: v
            .get(b"tracker id")
            .and_then(Value::as_bytes)
            .map(<[u8]>::to_vec),
    })
}

/// Parses a bencoded scrape reply (`files` keyed by raw info hash) into stats in `hashes`
/// order; hashes missing from the reply get zeros.
pub fn parse_scrape_reply(
    body: &[u8],
    hashes: &[InfoHash],
) -> Result<Vec<ScrapeStats>, TrackerError> {
    let v = Value::decode(body).map_err(|e| TrackerError::Malformed(e.to_string()))?;
    if let Some(reason) = v.get(b"failure reason") {
        return Err(TrackerError::Failure(
            text(reason).unwrap_or_else(|| "(no text)".to_owned()),
        ));
    }
    let files = v
        .get(b"files")
        .and_then(Value::as_dict)
        .ok_or_else(|| malformed("no `files` dictionary"))?;
    Ok(hashes
        .iter()
        .map(|h| {
            files
                .iter()
                .find(|(k, _)| *k == h.0.as_slice())
                .map(|(_, f)| ScrapeStats {
                    complete: count(f.get(b"complete")).unwrap_or(0),
                    downloaded: count(f.get(b"downloaded")).unwrap_or(0),
                    incomplete: count(f.get(b"incomplete")).unwrap_or(0),
                })
                .unwrap_or_default()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compact_dict_and_v6_peers() {
        let r = parse_announce_reply(
            b"d8:completei2e10:incompletei1e8:intervali1800e12:min intervali60e5:peers6:\x7f\x00\x00\x01\x1a\xe16:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x5015:warning message4:slowe",
        )
        .unwrap();
        assert_eq!(r.interval, 1800);
        assert_eq!(r.min_interval, Some(60));
        assert_eq!((r.complete, r.incomplete), (Some(2), Some(1)));
        assert_eq!(
            r.peers,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "[::1]:80".parse().unwrap()
            ]
        );
        assert_eq!(r.warning.as_deref(), Some("slow"));

        let r = parse_announce_reply(
            b"d8:intervali5e5:peersld2:ip9:10.0.0.154:porti7eed2:ip3:bad4:porti1eed2:ip3:::14:porti99999eeee",
        )
        .unwrap();
        assert_eq!(r.peers, vec!["10.0.0.15:7".parse().unwrap()]);
    }

    #[test]
    fn hostile_replies_are_errors() {
        for body in [
            &b""[..],
            b"le",
            b"d5:peers0:e",
            b"d8:intervali-5e5:peers7:1234567e",
            b"d8:intervali99999999999999999999ee",
            b"<html>",
        ] {
            let r = parse_announce_reply(body);
            // Either a clean error or a clamped, sane value; never a panic.
            if let Ok(r) = r {
                assert!(r.peers.len() <= 1);
            }
        }
        match parse_announce_reply(b"d14:failure reason7:go awaye") {
            Err(TrackerError::Failure(m)) => assert_eq!(m, "go away"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn scrape_reply() {
        let h = InfoHash([b'a'; 20]);
        let body =
            b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei3e10:downloadedi4e10:incompletei5eeee";
        let s = parse_scrape_reply(body, &[h, InfoHash([0; 20])]).unwrap();
        assert_eq!(
            s[0],
            ScrapeStats {
                complete: 3,
                downloaded: 4,
                incomplete: 5
            }
        );
        assert_eq!(s[1], ScrapeStats::default());
    }

    proptest! {
        #[test]
        fn parser_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_announce_reply(&body);
            let _ = parse_scrape_reply(&body, &[InfoHash([0; 20])]);
        }

        #[test]
        fn parser_never_panics_on_near_valid(peers in proptest::collection::vec(any::<u8>(), 0..64), n in any::<i64>()) {
            let mut body = format!("d8:intervali{n}e5:peers{}:", peers.len()).into_bytes();
            body.extend_from_slice(&peers);
            body.extend_from_slice(b"e");
            let r = parse_announce_reply(&body).unwrap();
            prop_assert_eq!(r.peers.len(), peers.len() / 6);
        }
    }
}
