//! Unit tests of response writing and parsing: exact byte layouts and errors.

use super::*;

#[test]
fn connect_layout() {
    let mut out = Vec::new();
    write_connect_response(&mut out, 0xdead_beef, 0x0102_0304_0506_0708);
    let expected = [
        0, 0, 0, 0, // action: connect
        0xde, 0xad, 0xbe, 0xef, // transaction id
        1, 2, 3, 4, 5, 6, 7, 8, // connection id
    ];
    assert_eq!(out, expected);
    assert_eq!(out.len(), CONNECT_RESPONSE_LEN);
    let r = parse_response(&out).unwrap();
    assert_eq!(
        r,
        Response::Connect {
            transaction_id: 0xdead_beef,
            connection_id: 0x0102_0304_0506_0708
        }
    );
    assert_eq!(r.transaction_id(), 0xdead_beef);
    let longer = [&out[..], b"trailing"].concat();
    assert_eq!(parse_response(&longer), Ok(r));
}

#[test]
fn announce_v4_layout() {
    let peers = [192, 0, 2, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0xc8, 0xd5];
    let mut out = Vec::new();
    write_announce_response(&mut out, 7, 1800, 3, 4, &peers);
    let expected = [
        &[0, 0, 0, 1][..],   // action: announce
        &[0, 0, 0, 7],       // transaction id
        &[0, 0, 0x07, 0x08], // interval 1800
        &[0, 0, 0, 3],       // leechers
        &[0, 0, 0, 4],       // seeders
        &peers,
    ]
    .concat();
    assert_eq!(out, expected);
    assert_eq!(out.len(), ANNOUNCE_RESPONSE_HEADER_LEN + 6 * 2);
    assert_eq!(
        parse_response(&out),
        Ok(Response::Announce {
            transaction_id: 7,
            interval: 1800,
            leechers: 3,
            seeders: 4,
            peers: &peers
        })
    );
}

#[test]
fn announce_v6_layout() {
    let mut peers = [0u8; 18 * 3];
    for (i, p) in peers.chunks_exact_mut(18).enumerate() {
        p[..16].copy_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        p[15] = i as u8;
        p[16..].copy_from_slice(&6881u16.to_be_bytes());
    }
    let mut out = Vec::new();
    write_announce_response(&mut out, 1, 2, 3, 4, &peers);
    assert_eq!(out.len(), 20 + 18 * 3);
    assert_eq!(
        &out[..20],
        &[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]
    );
    assert_eq!(&out[20..], &peers);
    // No peers: exactly 20 bytes.
    out.clear();
    write_announce_response(&mut out, 1, 2, 3, 4, &[]);
    assert_eq!(out.len(), ANNOUNCE_RESPONSE_HEADER_LEN);
    assert!(matches!(
        parse_response(&out),
        Ok(Response::Announce { peers: [], .. })
    ));
}

#[test]
fn scrape_layout() {
    let mut out = Vec::new();
    write_scrape_response_header(&mut out, 0x0102_0304);
    write_scrape_response_entry(&mut out, 5, 6, 7);
    write_scrape_response_entry(&mut out, 0, 0, 0x0100_0000);
    let expected = [
        &[0, 0, 0, 2][..], // action: scrape
        &[1, 2, 3, 4],     // transaction id
        &[0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0, 7],
        &[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0],
    ]
    .concat();
    assert_eq!(out, expected);
    assert_eq!(out.len(), SCRAPE_RESPONSE_HEADER_LEN + 2 * SCRAPE_ENTRY_LEN);
    let Ok(Response::Scrape {
        transaction_id,
        entries,
    }) = parse_response(&out)
    else {
        panic!("not a scrape");
    };
    assert_eq!(transaction_id, 0x0102_0304);
    let got: Vec<ScrapeEntry> = scrape_entries(entries).collect();
    assert_eq!(
        got,
        [
            ScrapeEntry {
                seeders: 5,
                completed: 6,
                leechers: 7
            },
            ScrapeEntry {
                seeders: 0,
                completed: 0,
                leechers: 0x0100_0000
            },
        ]
    );
    // A trailing partial entry is dropped.
    out.extend_from_slice(&[9; 11]);
    assert!(
        matches!(parse_response(&out), Ok(Response::Scrape { entries: e, .. }) if e.len() == 24)
    );
    assert_eq!(scrape_entries(&out[8..]).len(), 2);
}

#[test]
fn error_layout() {
    let mut out = Vec::new();
    write_error_response(&mut out, 9, "unknown event 7");
    assert_eq!(
        out,
        [&[0, 0, 0, 3, 0, 0, 0, 9][..], b"unknown event 7"].concat()
    );
    assert_eq!(out.len(), ERROR_RESPONSE_HEADER_LEN + 15);
    assert_eq!(
        parse_response(&out),
        Ok(Response::Error {
            transaction_id: 9,
            message: b"unknown event 7"
        })
    );
    out.clear();
    write_error_response(&mut out, 9, "");
    assert_eq!(
        parse_response(&out),
        Ok(Response::Error {
            transaction_id: 9,
            message: b""
        })
    );
}

#[test]
fn errors() {
    let mut connect = Vec::new();
    write_connect_response(&mut connect, 1, 2);
    for n in 0..16 {
        assert_eq!(
            parse_response(&connect[..n]),
            Err(ResponseError::TooShort(n))
        );
    }
    let mut announce = Vec::new();
    write_announce_response(&mut announce, 1, 2, 3, 4, &[]);
    for n in 0..20 {
        assert_eq!(
            parse_response(&announce[..n]),
            Err(ResponseError::TooShort(n))
        );
    }
    assert!(parse_response(&[0, 0, 0, 2, 0, 0, 0, 1]).is_ok());
    assert_eq!(
        parse_response(&[0, 0, 0, 4, 0, 0, 0, 1]),
        Err(ResponseError::UnknownAction(4))
    );
    assert_eq!(
        ResponseError::TooShort(3).to_string(),
        "response too short (3 bytes)"
    );
    assert_eq!(
        ResponseError::UnknownAction(4).to_string(),
        "unknown action 4 in response"
    );
}
