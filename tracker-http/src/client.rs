//! Who is the client? The TCP peer, or, behind a trusted reverse proxy, the rightmost address of
//! `X-Forwarded-For` that is not itself a trusted proxy (then `X-Real-IP`).

use std::net::IpAddr;

use hyper::header::HeaderMap;
use ipnet::IpNet;

/// A forwarding header from a trusted proxy that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientAddrError {
    /// An `X-Forwarded-For` entry that is not an IP address.
    #[error("invalid X-Forwarded-For header")]
    BadForwardedFor,
    /// An `X-Real-IP` value that is not an IP address.
    #[error("invalid X-Real-IP header")]
    BadRealIp,
}

/// Normalises IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) to IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// The client's address. Forwarding headers are read only when `peer` is in `trusted`; they are
/// walked right to left, skipping trusted proxies, and the first untrusted entry is the client
/// (entries further left are the client's own claims and could be forged). If every entry is
/// trusted, the leftmost one is taken. Without headers the TCP peer is the client.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Result<IpAddr, ClientAddrError> {
    let peer = canonical(peer);
    if trusted.is_empty() || !is_trusted(peer, trusted) {
        return Ok(peer);
    }
    let mut leftmost = None;
    // Several X-Forwarded-For headers form one list, in order; walk it from the right.
    let values: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    for value in values.iter().rev() {
        let text = value
            .to_str()
            .map_err(|_| ClientAddrError::BadForwardedFor)?;
        for entry in text.rsplit(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let ip = parse_forwarded_ip(entry).ok_or(ClientAddrError::BadForwardedFor)?;
            let ip = canonical(ip);
            if !is_trusted(ip, trusted) {
                return Ok(ip);
            }
            leftmost = Some(ip);
        }
    }
    if let Some(ip) = leftmost {
        return Ok(ip);
    }
    if let Some(value) = headers.get("x-real-ip") {
        let text = value.to_str().map_err(|_| ClientAddrError::BadRealIp)?;
        let ip = parse_forwarded_ip(text.trim()).ok_or(ClientAddrError::BadRealIp)?;
        return Ok(canonical(ip));
    }
    Ok(peer)
}

/// Parses `1.2.3.4`, `::1`, `[::1]`, and forms with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "9.9.9.9"), ("x-real-ip", "8.8.8.8")]);
        assert_eq!(client_ip(ip("1.1.1.1"), &h, &[]).unwrap(), ip("1.1.1.1"));
        let t = nets(&["10.0.0.0/8"]);
        assert_eq!(client_ip(ip("1.1.1.1"), &h, &t).unwrap(), ip("1.1.1.1"));
    }

    #[test]
    fn rightmost_untrusted_entry_wins() {
        let t = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 5.5.5.5, 10.1.1.1")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t).unwrap(), ip("5.5.5.5"));
        // Split across headers, same order.
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "5.5.5.5, 10.1.1.1"),
        ]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t).unwrap(), ip("5.5.5.5"));
    }

    #[test]
    fn all_trusted_takes_leftmost_then_real_ip_then_peer() {
        let t = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.2.2.2, 10.1.1.1")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t).unwrap(), ip("10.2.2.2"));
        let h = headers(&[("x-real-ip", "7.7.7.7")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &h, &t).unwrap(), ip("7.7.7.7"));
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &t).unwrap(),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn ipv6_ports_and_mapped_addresses() {
        let t = nets(&["::1/128", "127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "[2001:db8::1]:443")]);
        assert_eq!(client_ip(ip("::1"), &h, &t).unwrap(), ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "::ffff:5.5.5.5")]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &t).unwrap(),
            ip("5.5.5.5")
        );
    }

    /// Header values as a client can send them through a proxy: any bytes a header value may
    /// hold (not only ASCII), often shaped like address lists.
    fn header_value() -> impl proptest::strategy::Strategy<Value = HeaderValue> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..80),
            "[0-9a-f:.,\\[\\] ]{0,60}".prop_map(String::into_bytes),
        ]
        .prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok())
    }

    /// An address outside the trusted `10.0.0.0/8`, either family (IPv4-mapped included).
    fn untrusted_ip() -> impl proptest::strategy::Strategy<Value = IpAddr> {
        use proptest::prelude::*;
        prop_oneof![
            any::<[u8; 4]>()
                .prop_filter("trusted", |o| o[0] != 10)
                .prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from).prop_filter(
                "trusted",
                |ip| !matches!(ip.to_canonical(), IpAddr::V4(v4) if v4.octets()[0] == 10)
            ),
        ]
    }

    proptest::proptest! {
        /// Whatever the headers hold, a peer that is not a trusted proxy is its own client,
        /// and a trusted one never makes the server panic.
        #[test]
        fn headers_never_panic_and_bind_only_trusted_peers(
            values in proptest::collection::vec(header_value(), 0..4),
            real_ip in proptest::option::of(header_value()),
            peer in untrusted_ip(),
        ) {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v);
            }
            if let Some(v) = real_ip {
                h.append("x-real-ip", v);
            }
            let t = nets(&["10.0.0.0/8"]);
            proptest::prop_assert_eq!(client_ip(peer, &h, &t), Ok(peer.to_canonical()));
            let _ = client_ip(ip("10.0.0.1"), &h, &t);
        }

        /// What a client writes into its own `X-Forwarded-For` (any visible text) cannot change
        /// who it is: the trusted proxies append the address they saw, and that one is taken,
        /// in one header or several.
        #[test]
        fn a_forged_prefix_cannot_change_the_client(
            forged in "[ -~]{0,60}",
            client in untrusted_ip(),
            hops in proptest::collection::vec(proptest::prelude::any::<[u8; 3]>(), 0..3),
            split in proptest::prelude::any::<bool>(),
        ) {
            let chain: Vec<String> = std::iter::once(client.to_string())
                .chain(hops.iter().map(|[a, b, c]| format!("10.{a}.{b}.{c}")))
                .collect();
            let appended = chain.join(", ");
            let mut h = HeaderMap::new();
            if split {
                h.append("x-forwarded-for", HeaderValue::from_str(&forged).unwrap());
                h.append("x-forwarded-for", HeaderValue::from_str(&appended).unwrap());
            } else {
                let one = format!("{forged}, {appended}");
                h.append("x-forwarded-for", HeaderValue::from_str(&one).unwrap());
            }
            let t = nets(&["10.0.0.0/8"]);
            proptest::prop_assert_eq!(client_ip(ip("10.0.0.1"), &h, &t), Ok(client.to_canonical()));
        }
    }

    #[test]
    fn garbage_from_trusted_proxy_is_an_error() {
        let t = nets(&["127.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &h, &t),
            Err(ClientAddrError::BadForwardedFor)
        );
        let h = headers(&[("x-real-ip", "nope")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &h, &t),
            Err(ClientAddrError::BadRealIp)
        );
    }
}
