//! Property tests of the whole request path (routing, parsing, policy, registry, reply writing)
//! without sockets: any query string gets a well-formed bencoded dictionary, never a panic.

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::header::HeaderMap;
use hyper::{Method, Uri};
use proptest::prelude::*;
use swarmd_swarm::access::OpenPolicy;
use swarmd_swarm::clock::ManualClock;
use swarmd_swarm::metrics::Metrics;
use swarmd_swarm::{Registry, RegistryConfig};
use swarmd_tracker_http::{Tracker, TrackerConfig};

fn tracker() -> Tracker {
    Tracker::new(
        TrackerConfig {
            full_scrape: true,
            ..TrackerConfig::default()
        },
        Arc::new(Registry::new(RegistryConfig {
            shards: 4,
            ..RegistryConfig::default()
        })),
        Arc::new(OpenPolicy),
        Arc::new(ManualClock::new(100)),
        &Metrics::new().unwrap(),
    )
}

fn body_of(r: hyper::Response<http_body_util::Full<bytes::Bytes>>) -> (u16, Vec<u8>) {
    let status = r.status().as_u16();
    let body = match futures_executor_block_on(r.into_body().collect()) {
        Ok(c) => c.to_bytes().to_vec(),
        Err(never) => match never {},
    };
    (status, body)
}

/// `Full` bodies are ready at once, so polling once suffices; no runtime needed.
fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a Full body is always ready"),
    }
}

/// Is `b` exactly one bencoded dictionary (recursively well formed)?
fn is_bencoded_dict(b: &[u8]) -> bool {
    fn value(b: &[u8], i: &mut usize, depth: usize) -> bool {
        if depth > 16 || *i >= b.len() {
            return false;
        }
        match b[*i] {
            b'i' => {
                let Some(end) = b[*i..].iter().position(|&c| c == b'e') else {
                    return false;
                };
                let digits = &b[*i + 1..*i + end];
                *i += end + 1;
                std::str::from_utf8(digits)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .is_some()
            }
            b'l' | b'd' => {
                let dict = b[*i] == b'd';
                *i += 1;
                let mut n = 0usize;
                while *i < b.len() && b[*i] != b'e' {
                    // Dictionary keys (even positions) are byte strings.
                    if dict && n % 2 == 0 && !b[*i].is_ascii_digit() {
                        return false;
                    }
                    n += 1;
                    if !value(b, i, depth + 1) {
                        return false;
                    }
                }
                *i += 1;
                *i <= b.len() && (!dict || n % 2 == 0)
            }
            b'0'..=b'9' => {
                let Some(colon) = b[*i..].iter().position(|&c| c == b':') else {
                    return false;
                };
                let Ok(len) = std::str::from_utf8(&b[*i..*i + colon])
                    .unwrap()
                    .parse::<usize>()
                else {
                    return false;
                };
                *i += colon + 1 + len;
                *i <= b.len()
            }
            _ => false,
        }
    }
    let mut i = 0;
    b.first() == Some(&b'd') && value(b, &mut i, 0) && i == b.len()
}

/// Query text made of URI-legal characters, percent escapes (valid or not) and known keys.
fn query() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("info_hash=".to_string()),
        Just("peer_id=".to_string()),
        Just("port=".to_string()),
        Just("left=".to_string()),
        Just("event=".to_string()),
        Just("compact=0".to_string()),
        Just("numwant=".to_string()),
        Just("&".to_string()),
        Just("=".to_string()),
        any::<u8>().prop_map(|b| format!("%{b:02X}")),
        "%[0-9a-zA-Z]{0,2}",
        "[a-zA-Z0-9._~!$'()*+,;:@/?-]{0,8}",
        (0u64..u64::MAX).prop_map(|n| n.to_string()),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_query_gets_a_bencoded_dict(q in query(), scrape in any::<bool>(), key in any::<bool>()) {
        let t = tracker();
        let path = match (scrape, key) {
            (false, false) => "/announce",
            (true, false) => "/scrape",
            (false, true) => "/k3y/announce",
            (true, true) => "/scrape/k3y",
        };
        let Ok(uri) = format!("{path}?{q}").parse::<Uri>() else { return Ok(()) };
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let (status, body) = body_of(t.respond(&Method::GET, &uri, &HeaderMap::new(), peer));
        prop_assert_eq!(status, 200);
        prop_assert!(is_bencoded_dict(&body), "not bencode: {:?}", String::from_utf8_lossy(&body));
    }

    #[test]
    fn valid_announces_always_succeed(
        ih in any::<[u8; 20]>(), id in any::<[u8; 20]>(), port in 1u16.., left in any::<u64>(),
        numwant in any::<i32>(), compact in any::<bool>(),
    ) {
        let t = tracker();
        let enc = |b: &[u8]| b.iter().map(|x| format!("%{x:02x}")).collect::<String>();
        let uri: Uri = format!(
            "/announce?info_hash={}&peer_id={}&port={port}&left={left}&numwant={numwant}&compact={}",
            enc(&ih), enc(&id), u8::from(compact)
        ).parse().unwrap();
        let peer: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        let (_, body) = body_of(t.respond(&Method::GET, &uri, &HeaderMap::new(), peer));
        prop_assert!(is_bencoded_dict(&body));
        prop_assert!(!body.windows(14).any(|w| w == b"failure reason"),
            "{}", String::from_utf8_lossy(&body));
    }
}
