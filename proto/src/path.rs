//! Tracker URL paths shared by the HTTP tracker and BEP 41 URL data over UDP: `/announce`,
//! `/scrape`, and the passkey forms `/KEY/announce` and `/announce/KEY`.

/// Longest passkey path segment accepted.
pub const MAX_PASSKEY_LEN: usize = 128;

/// What a tracker path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `announce`
    Announce,
    /// `scrape`
    Scrape,
}

fn endpoint(segment: &[u8]) -> Option<Endpoint> {
    match segment {
        b"announce" => Some(Endpoint::Announce),
        b"scrape" => Some(Endpoint::Scrape),
        _ => None,
    }
}

/// Splits a path (without its query string) into the endpoint and the passkey it carries, if
/// any. Anything else (more segments, an empty or over-long key, no leading `/`) is `None`.
pub fn route(path: &[u8]) -> Option<(Endpoint, Option<&[u8]>)> {
    let rest = path.strip_prefix(b"/")?;
    // From the end: in the usual `/KEY/announce` the last `/` is 9 bytes back, so the key is
    // never walked byte by byte here; the `contains` checks below are word-at-a-time.
    match rest.iter().rposition(|&b| b == b'/') {
        None => endpoint(rest).map(|e| (e, None)),
        Some(i) => {
            let (a, b) = (&rest[..i], &rest[i + 1..]);
            let (e, key) = match (endpoint(a), endpoint(b)) {
                (Some(e), None) => (e, b),
                (None, Some(e)) => (e, a),
                _ => return None,
            };
            if key.is_empty() || key.len() > MAX_PASSKEY_LEN || key.contains(&b'/') {
                return None;
            }
            Some((e, Some(key)))
        }
    }
}

/// Splits `path?query` at the first `?`.
pub fn split_query(target: &[u8]) -> (&[u8], &[u8]) {
    // Most targets (all BEP 41 URL data clients send) have no query: ruled out word-at-a-time.
    if !target.contains(&b'?') {
        return (target, &[]);
    }
    match target.iter().position(|&b| b == b'?') {
        Some(i) => (&target[..i], &target[i + 1..]),
        None => (target, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        fn r(p: &str) -> Option<(Endpoint, Option<&[u8]>)> {
            route(p.as_bytes())
        }
        assert_eq!(r("/announce"), Some((Endpoint::Announce, None)));
        assert_eq!(r("/scrape"), Some((Endpoint::Scrape, None)));
        assert_eq!(
            r("/abc/announce"),
            Some((Endpoint::Announce, Some(&b"abc"[..])))
        );
        assert_eq!(
            r("/announce/abc"),
            Some((Endpoint::Announce, Some(&b"abc"[..])))
        );
        assert_eq!(
            r("/abc/scrape"),
            Some((Endpoint::Scrape, Some(&b"abc"[..])))
        );
        for bad in [
            "/",
            "/announce/",
            "//announce",
            "/a/b/announce",
            "/announce/scrape",
            "/x/y",
            "announce",
            "",
        ] {
            assert_eq!(r(bad), None, "{bad:?}");
        }
        let long = format!("/{}/announce", "k".repeat(MAX_PASSKEY_LEN + 1));
        assert_eq!(r(&long), None);
    }

    /// The routing rule stated as segments: after the leading `/`, one segment that names an
    /// endpoint, or two of which exactly one does and the other is a usable key.
    fn by_segments(path: &[u8]) -> Option<(Endpoint, Option<&[u8]>)> {
        let usable = |k: &[u8]| !k.is_empty() && k.len() <= MAX_PASSKEY_LEN;
        let segments: Vec<&[u8]> = path.strip_prefix(b"/")?.split(|&b| b == b'/').collect();
        match segments[..] {
            [only] => endpoint(only).map(|e| (e, None)),
            [a, b] => match (endpoint(a), endpoint(b)) {
                (Some(e), None) if usable(b) => Some((e, Some(b))),
                (None, Some(e)) if usable(a) => Some((e, Some(a))),
                _ => None,
            },
            _ => None,
        }
    }

    /// `split_query` splits at the first `?`, if any.
    fn check_split(p: &[u8]) {
        let (path, query) = split_query(p);
        let at = p.iter().position(|&b| b == b'?');
        assert_eq!(path, &p[..at.unwrap_or(p.len())]);
        assert_eq!(query, at.map_or(&b""[..], |i| &p[i + 1..]));
    }

    /// `route` agrees with [`by_segments`] on every path of up to five parts.
    #[test]
    fn routes_as_the_segment_rule_says() {
        let parts: [&[u8]; 6] = [b"/", b"announce", b"scrape", b"k3y", b"", b"?"];
        // Every path of up to five parts.
        let mut paths: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..5 {
            let longer: Vec<Vec<u8>> = paths
                .iter()
                .flat_map(|p| parts.iter().map(move |x| [p.as_slice(), x].concat()))
                .collect();
            paths.extend(longer);
            paths.sort();
            paths.dedup();
        }
        for p in &paths {
            assert_eq!(
                route(p),
                by_segments(p),
                "{:?}",
                p.escape_ascii().to_string()
            );
            check_split(p);
        }
    }

    /// Arbitrary bytes from a client: the same agreement, keys of every length around the
    /// limit, and never a panic.
    fn path_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let segment = prop_oneof![
            Just(b"announce".to_vec()),
            Just(b"scrape".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..=MAX_PASSKEY_LEN + 2),
            (MAX_PASSKEY_LEN - 1..=MAX_PASSKEY_LEN + 1).prop_map(|n| vec![b'k'; n]),
        ];
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..300),
            (any::<bool>(), proptest::collection::vec(segment, 0..4)).prop_map(|(lead, segs)| {
                let mut p = if lead { b"/".to_vec() } else { Vec::new() };
                p.extend(segs.join(&b'/'));
                p
            }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn routes_arbitrary_bytes_as_the_segment_rule_says(p in path_bytes()) {
            let routed = route(&p);
            proptest::prop_assert_eq!(routed, by_segments(&p));
            if let Some((_, Some(key))) = routed {
                proptest::prop_assert!(!key.is_empty() && key.len() <= MAX_PASSKEY_LEN);
                proptest::prop_assert!(!key.contains(&b'/'));
            }
            check_split(&p);
        }
    }

    #[test]
    fn splits_query() {
        assert_eq!(
            split_query(b"/announce?a=1"),
            (&b"/announce"[..], &b"a=1"[..])
        );
        assert_eq!(split_query(b"/announce"), (&b"/announce"[..], &b""[..]));
    }
}
