//! Fuzzes the UDP tracker codec (BEP 15 + BEP 41) with arbitrary datagrams: `parse_request` and
//! `parse_response` on the same bytes; whatever parses is assembled (URL data) and written back,
//! and must parse again to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmd_proto::udp::{
    parse_request, parse_response, scrape_entries, write_announce_request, write_announce_response,
    write_connect_request, write_connect_response, write_error_response, write_scrape_request,
    write_scrape_response_entry, write_scrape_response_header, Request, Response,
    ANNOUNCE_REQUEST_LEN, CONNECT_RESPONSE_LEN,
};
use swarmd_proto::InfoHash;

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();

    match parse_request(data) {
        Ok(Request::Connect { transaction_id }) => {
            // The reply is 16 bytes: never more than the request carried.
            assert!(data.len() >= CONNECT_RESPONSE_LEN);
            write_connect_request(&mut out, transaction_id);
            assert_eq!(out[..], data[..16]);
        }
        Ok(Request::Announce(a)) => {
            assert!(data.len() >= ANNOUNCE_REQUEST_LEN && a.port != 0);
            let mut url = Vec::new();
            a.url_data.write_to(&mut url);
            assert_eq!(url.len(), a.url_data.len());
            assert_eq!(url, a.url_data.chunks().collect::<Vec<_>>().concat());
            if let Some(whole) = a.url_data.as_contiguous() {
                assert_eq!(whole, &url[..]);
            }
            write_announce_request(&mut out, &a);
            assert_eq!(out[..ANNOUNCE_REQUEST_LEN], data[..ANNOUNCE_REQUEST_LEN]);
            assert_eq!(parse_request(&out), Ok(Request::Announce(a)));
        }
        Ok(Request::Scrape(s)) => {
            assert!(!s.is_empty() && s.info_hashes().len() == s.len());
            let hashes: Vec<InfoHash> = s.info_hashes().collect();
            write_scrape_request(&mut out, s.connection_id, s.transaction_id, &hashes);
            assert_eq!(out[..], data[..out.len()]);
            assert_eq!(parse_request(&out), Ok(Request::Scrape(s)));
        }
        Err(e) => {
            assert_eq!(e.header.is_some(), data.len() >= 16);
            let message = e.to_string();
            assert!(!message.is_empty() && message.len() < 64, "{message}");
            if let Some(h) = e.header {
                write_error_response(&mut out, h.transaction_id, &message);
                assert!(parse_response(&out).is_ok());
            }
        }
    }

    out.clear();
    match parse_response(data) {
        Ok(Response::Connect {
            transaction_id,
            connection_id,
        }) => {
            write_connect_response(&mut out, transaction_id, connection_id);
        }
        Ok(Response::Announce {
            transaction_id,
            interval,
            leechers,
            seeders,
            peers,
        }) => {
            write_announce_response(&mut out, transaction_id, interval, leechers, seeders, peers);
        }
        Ok(Response::Scrape {
            transaction_id,
            entries,
        }) => {
            write_scrape_response_header(&mut out, transaction_id);
            for e in scrape_entries(entries) {
                write_scrape_response_entry(&mut out, e.seeders, e.completed, e.leechers);
            }
            assert!(data.len() - out.len() < 12);
        }
        Ok(Response::Error {
            transaction_id,
            message,
        }) => match std::str::from_utf8(message) {
            Ok(text) => write_error_response(&mut out, transaction_id, text),
            Err(_) => return,
        },
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    }
    assert_eq!(out[..], data[..out.len()]);
});
