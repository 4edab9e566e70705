//! The HTTP tracker codec (BEP 3, 23, 7, 48, 31), sans-IO: parse `/announce` and `/scrape`
//! query strings into typed values, and write bencoded replies into caller-owned buffers.
//!
//! Requests: [`parse_announce`], [`parse_scrape`] (errors are [`QueryError`], whose text is the
//! `failure reason` to send). Replies: [`write_announce`], [`write_scrape`], [`write_failure`],
//! [`write_failure_retry`]. Failures travel as a bencoded dict with HTTP status 200.

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
