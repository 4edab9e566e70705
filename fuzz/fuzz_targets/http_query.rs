//! Fuzzes the HTTP tracker query parsers with arbitrary bytes, then writes a reply from whatever
//! parsed, so the writers see every shape of value the parsers can produce; the same bytes go
//! through the path router (`/KEY/announce`, `/announce/KEY`), as a request target or BEP 41 URL
//! data would.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmd_proto::http::{
    parse_announce, parse_scrape, percent_decode_into, write_announce, write_failure,
    write_failure_retry, write_scrape, AnnounceResponse, Peers, ScrapeFile,
};
use swarmd_proto::path::{route, split_query, MAX_PASSKEY_LEN};

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();

    match parse_announce(data) {
        Ok(q) => {
            assert_ne!(q.port, 0, "port 0 must be rejected");
            // Echo the requester as its own (only) peer, in the shape it asked for.
            let mut v4 = [0u8; 6];
            let mut v6 = [0u8; 18];
            let (v4, v6): (&[u8], &[u8]) = match q.ip {
                Some(std::net::IpAddr::V4(ip)) => {
                    v4[..4].copy_from_slice(&ip.octets());
                    v4[4..].copy_from_slice(&q.port.to_be_bytes());
                    (&v4, &[])
                }
                Some(std::net::IpAddr::V6(ip)) => {
                    v6[..16].copy_from_slice(&ip.octets());
                    v6[16..].copy_from_slice(&q.port.to_be_bytes());
                    (&[], &v6)
                }
                None => (&[], &[]),
            };
            let id = q.peer_id.0;
            let peers = if q.compact {
                Peers::Compact { v4, v6 }
            } else {
                let ids = (!q.no_peer_id).then_some(&id[..]);
                Peers::Dicts {
                    v4,
                    v6,
                    v4_ids: ids,
                    v6_ids: ids,
                }
            };
            let numwant = q.numwant.unwrap_or(50);
            let r = AnnounceResponse {
                interval: numwant,
                min_interval: u32::try_from(q.left % 7200).unwrap_or(0),
                complete: u32::from(q.port),
                incomplete: u32::try_from(q.uploaded >> 32).unwrap_or(0),
                downloaded: u32::try_from(q.downloaded & 0xffff_ffff).unwrap_or(0),
                tracker_id: q.tracker_id,
                warning: q.key.and_then(|k| std::str::from_utf8(k).ok()),
                peers,
            };
            write_announce(&mut out, &r);
            assert!(out.starts_with(b"d8:completei") && out.ends_with(b"e"));
            if let Some(t) = q.tracker_id {
                let mut decoded = Vec::new();
                let _ = percent_decode_into(t, &mut decoded);
            }
        }
        Err(e) => {
            let reason = e.to_string();
            assert!(!reason.is_empty() && reason.len() < 128, "reason: {reason}");
            write_failure(&mut out, &reason);
            write_failure_retry(&mut out, &reason, Some(5));
            write_failure_retry(&mut out, &reason, None);
        }
    }

    out.clear();
    let mut hashes = Vec::new();
    let max = usize::from(data.first().copied().unwrap_or(0) % 80);
    if parse_scrape(data, max, &mut hashes).is_ok() {
        assert!(hashes.len() <= max);
        let mut files: Vec<ScrapeFile> = hashes
            .iter()
            .enumerate()
            .map(|(i, &info_hash)| ScrapeFile {
                info_hash,
                complete: u32::try_from(i).unwrap_or(u32::MAX),
                ..ScrapeFile::default()
            })
            .collect();
        write_scrape(&mut out, &mut files, Some(900));
        assert!(files.windows(2).all(|w| w[0].info_hash <= w[1].info_hash));
    }

    let (path, query) = split_query(data);
    assert_eq!(
        path.len() + query.len() + usize::from(path.len() < data.len()),
        data.len()
    );
    assert!(!path.contains(&b'?'));
    if let Some((_, key)) = route(path) {
        assert!(path.starts_with(b"/"));
        if let Some(key) = key {
            assert!(!key.is_empty() && key.len() <= MAX_PASSKEY_LEN && !key.contains(&b'/'));
        }
    }
});
