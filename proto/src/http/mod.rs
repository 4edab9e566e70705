//! The HTTP tracker codec (BEP 3, 23, 7, 48, 31), sans-IO: parse `/announce` and `/scrape`
//! query strings into typed values, and write bencoded replies into caller-owned buffers.
//!
//! Requests: [`parse_announce`], [`parse_scrape`] (errors are [`QueryError`], whose text is the
//! `failure reason` to send). Replies: [`write_announce`], [`write_scrape`], [`write_failure`],
//! [`write_failure_retry`]. Failures travel as a bencoded dict with HTTP status 200.
//!
//! ```
//! use swarmd_proto::http::{parse_announce, write_announce, write_failure, AnnounceResponse, Peers};
//!
//! let query = b"info_hash=%124Vx%9A%BC%DE%F1%23Eg%89%AB%CD%EF%124Vx%9A\
//!               &peer_id=-qB4650-abcdefghijkl&port=6881&left=0&event=started";
//! let q = parse_announce(query).unwrap();
//! assert_eq!(q.port, 6881);
//!
//! let mut body = Vec::new();
//! let peers = [192, 0, 2, 1, 0x1a, 0xe1]; // from the registry, compact
//! write_announce(&mut body, &AnnounceResponse {
//!     interval: 1800, min_interval: 900, complete: 1, incomplete: 0, downloaded: 0,
//!     tracker_id: None, warning: None,
//!     peers: Peers::Compact { v4: &peers, v6: &[] },
//! });
//! assert!(body.ends_with(b"5:peers6:\xc0\x00\x02\x01\x1a\xe1e"));
//!
//! let err = parse_announce(b"port=0").unwrap_err();
//! body.clear();
//! write_failure(&mut body, &err.to_string());
//! assert_eq!(body, b"d14:failure reason18:port must not be 0e");
//! ```

mod query;
mod response;

pub use query::{
    parse_announce, parse_scrape, percent_decode_into, percent_encode_into, AnnounceQuery,
    QueryError, Snippet,
};
pub use response::{
    write_announce, write_failure, write_failure_retry, write_scrape, AnnounceResponse, Peers,
    ScrapeFile,
};
