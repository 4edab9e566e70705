//! Unit tests of the bencode writers: exact bytes for each shape of reply.

use super::*;

fn resp(peers: Peers<'_>) -> AnnounceResponse<'_> {
    AnnounceResponse {
        interval: 1800,
        min_interval: 900,
        complete: 3,
        incomplete: 2,
        downloaded: 7,
        tracker_id: None,
        warning: None,
        peers,
    }
}

fn announce(r: &AnnounceResponse<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write_announce(&mut out, r);
    out
}

const HEAD: &[u8] =
    b"d8:completei3e10:downloadedi7e10:incompletei2e8:intervali1800e12:min intervali900e";

#[test]
fn compact_empty_still_has_peers() {
    let out = announce(&resp(Peers::Compact { v4: &[], v6: &[] }));
    assert_eq!(out, [HEAD, b"5:peers0:e"].concat());
}

#[test]
fn compact_v4_v6_and_optional_keys() {
    let v4 = [1, 2, 3, 4, 0x1a, 0xe1, 5, 6, 7, 8, 0, 80];
    let mut v6 = [0u8; 18];
    v6[15] = 1;
    v6[16..].copy_from_slice(&6881u16.to_be_bytes());
    let mut r = resp(Peers::Compact { v4: &v4, v6: &v6 });
    r.tracker_id = Some(b"t1");
    r.warning = Some("slow down");
    let out = announce(&r);
    let want = [
        HEAD,
        b"5:peers12:",
        &v4,
        b"6:peers618:",
        &v6,
        b"10:tracker id2:t115:warning message9:slow downe",
    ]
    .concat();
    assert_eq!(out, want);
}

#[test]
fn partial_entries_ignored() {
    let v4 = [1, 2, 3, 4, 0, 80, 9, 9, 9];
    let v6 = [0u8; 17];
    let out = announce(&resp(Peers::Compact { v4: &v4, v6: &v6 }));
    assert_eq!(out, [HEAD, b"5:peers6:", &v4[..6], b"e"].concat());

    let ids = [b'x'; 25];
    let out = announce(&resp(Peers::Dicts {
        v4: &v4,
        v6: &v6,
        v4_ids: Some(&ids),
        v6_ids: None,
    }));
    let want = [
        HEAD,
        b"5:peersld2:ip7:1.2.3.47:peer id20:",
        &[b'x'; 20],
        b"4:porti80eeee",
    ]
    .concat();
    assert_eq!(out, want);
}

#[test]
fn min_interval_clamped_to_interval() {
    let mut r = resp(Peers::Compact { v4: &[], v6: &[] });
    r.min_interval = 5000;
    let out = announce(&r);
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("8:intervali1800e12:min intervali1800e"),
        "{text}"
    );
}

#[test]
fn dicts_with_and_without_ids() {
    let v4 = [10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 1];
    let mut v6 = [0u8; 18];
    v6[..2].copy_from_slice(&[0x20, 0x01]);
    v6[15] = 9;
    v6[16..].copy_from_slice(&443u16.to_be_bytes());

    let out = announce(&resp(Peers::Dicts {
        v4: &v4,
        v6: &v6,
        v4_ids: None,
        v6_ids: None,
    }));
    let want = [
        HEAD,
        b"5:peersl",
        b"d2:ip8:10.0.0.14:porti6881ee",
        b"d2:ip8:10.0.0.24:porti1ee",
        b"d2:ip7:2001::94:porti443ee",
        b"ee",
    ]
    .concat();
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );

    let ids4 = [[b'a'; 20], [b'b'; 20]].concat();
    let ids6 = [b'c'; 20];
    let out = announce(&resp(Peers::Dicts {
        v4: &v4,
        v6: &v6,
        v4_ids: Some(&ids4),
        v6_ids: Some(&ids6),
    }));
    let want = [
        HEAD,
        b"5:peersl",
        b"d2:ip8:10.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881ee",
        b"d2:ip8:10.0.0.27:peer id20:bbbbbbbbbbbbbbbbbbbb4:porti1ee",
        b"d2:ip7:2001::97:peer id20:cccccccccccccccccccc4:porti443ee",
        b"ee",
    ]
    .concat();
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn dicts_longest_ipv6_text() {
    let v6 = [0xff; 18];
    let out = announce(&resp(Peers::Dicts {
        v4: &[],
        v6: &v6,
        v4_ids: None,
        v6_ids: None,
    }));
    let want = [
        HEAD,
        b"5:peersld2:ip39:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff4:porti65535eeee",
    ]
    .concat();
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
}

#[test]
fn appends_to_existing_buffer() {
    let mut out = b"HTTP".to_vec();
    write_failure(&mut out, "x");
    assert_eq!(out, b"HTTPd14:failure reason1:xe");
}

#[test]
fn failures() {
    let mut out = Vec::new();
    write_failure(&mut out, "missing info_hash");
    assert_eq!(out, b"d14:failure reason17:missing info_hashe");
    out.clear();
    write_failure(&mut out, "");
    assert_eq!(out, b"d14:failure reason0:e");
    out.clear();
    write_failure_retry(&mut out, "overloaded", Some(5));
    assert_eq!(out, b"d14:failure reason10:overloaded8:retry ini5ee");
    out.clear();
    write_failure_retry(&mut out, "unregistered torrent", None);
    assert_eq!(
        out,
        b"d14:failure reason20:unregistered torrent8:retry in5:nevere"
    );
}

#[test]
fn scrape_sorted_deduplicated_with_flags() {
    let f = |b: u8, n: u32| ScrapeFile {
        info_hash: InfoHash([b; 20]),
        complete: n,
        downloaded: n + 1,
        incomplete: n + 2,
        downloaders: n + 3,
    };
    let mut files = [f(b'z', 1), f(b'a', 10), f(b'z', 1)];
    let mut out = Vec::new();
    write_scrape(&mut out, &mut files, Some(900));
    let want = [
        &b"d5:filesd20:"[..],
        &[b'a'; 20],
        b"d8:completei10e10:downloadedi11e11:downloadersi13e10:incompletei12ee20:",
        &[b'z'; 20],
        b"d8:completei1e10:downloadedi2e11:downloadersi4e10:incompletei3ee",
        b"e5:flagsd20:min_request_intervali900eee",
    ]
    .concat();
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(files[0].info_hash, InfoHash([b'a'; 20]), "sorted in place");
}

#[test]
fn scrape_empty() {
    let mut out = Vec::new();
    write_scrape(&mut out, &mut [], None);
    assert_eq!(out, b"d5:filesdee");
}
