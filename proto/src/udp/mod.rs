//! The UDP tracker codec (BEP 15, with BEP 41 URL data), sans-IO: parse requests and responses
//! from datagrams, and write them into caller-owned buffers.
//!
//! Server side: [`parse_request`] (errors are [`RequestError`], whose kind's text is the message
//! of an error packet), then [`write_connect_response`], [`write_announce_response`],
//! [`write_scrape_response_header`] + [`write_scrape_response_entry`], [`write_error_response`].
//! Client side: [`write_connect_request`], [`write_announce_request`], [`write_scrape_request`],
//! then [`parse_response`].
//!
//! Every integer is big endian. Parsing borrows from the packet and allocates nothing; writers
//! only append to the caller's `Vec`. No input makes any of them panic.
//!
//! A UDP source address is spoofable: the server answers a malformed packet with an error only
//! once the packet's connection id checks out (see [`RequestError::header`]), and never sends an
//! unauthenticated packet more bytes than it carried (a connect request is at least
//! [`CONNECT_REQUEST_LEN`] bytes, its reply exactly [`CONNECT_RESPONSE_LEN`]).
//!
//! ```
//! use swarmd_proto::udp::{
//!     parse_request, write_announce_request, write_announce_response, AnnounceRequest, Request,
//!     UrlData,
//! };
//! use swarmd_proto::{Event, InfoHash, PeerId};
//!
//! // A client announces through `udp://tracker.example:6969/KEY/announce?x=1`.
//! let mut packet = Vec::new();
//! write_announce_request(&mut packet, &AnnounceRequest {
//!     connection_id: 0x1234_5678_9abc_def0, transaction_id: 7,
//!     info_hash: InfoHash([0xaa; 20]), peer_id: PeerId(*b"-qB4650-abcdefghijkl"),
//!     downloaded: 0, left: 1000, uploaded: 0, event: Event::Started,
//!     ip: None, key: 42, num_want: -1, port: 6881,
//!     url_data: UrlData::new(b"/KEY/announce?x=1"),
//! });
//! assert_eq!(packet.len(), 98 + 2 + 17 + 1); // fixed part, one URLData option, EndOfOptions
//!
//! let Ok(Request::Announce(a)) = parse_request(&packet) else { panic!() };
//! assert_eq!((a.port, a.num_want, a.event), (6881, -1, Event::Started));
//! assert_eq!(a.url_data.as_contiguous(), Some(&b"/KEY/announce?x=1"[..]));
//!
//! let mut reply = Vec::new();
//! let peers = [192, 0, 2, 1, 0x1a, 0xe1]; // from the registry, compact
//! write_announce_response(&mut reply, a.transaction_id, 1800, 0, 1, &peers);
//! assert_eq!(reply.len(), 20 + 6);
//! ```

mod options;
mod request;
mod response;
mod wire;

pub use options::UrlData;
pub use request::{
    event_from_udp, event_to_udp, parse_request, write_announce_request, write_connect_request,
    write_scrape_request, AnnounceRequest, Request, RequestError, RequestErrorKind, RequestHeader,
    ScrapeRequest,
};
pub use response::{
    parse_response, scrape_entries, write_announce_response, write_connect_response,
    write_error_response, write_scrape_response_entry, write_scrape_response_header, Response,
    ResponseError, ScrapeEntry,
};

/// The magic connection id of a connect request (BEP 15): `0x41727101980`.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Size of a connect request: protocol id, action, transaction id.
pub const CONNECT_REQUEST_LEN: usize = 16;
/// Size of an announce request without BEP 41 options; options start at this offset.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;
/// Size of the smallest valid scrape request: the 16-byte header and one info hash.
pub const MIN_SCRAPE_REQUEST_LEN: usize = 36;
/// How many info hashes a scrape request carries within a ~1500-byte MTU (16 + 74 * 20 = 1496
/// bytes); the server answers at most this many. Parsing accepts more.
pub const MAX_SCRAPE_HASHES: usize = 74;
/// Size of a connect response: action, transaction id, connection id.
pub const CONNECT_RESPONSE_LEN: usize = 16;
/// Size of an announce response before its peers (action, transaction id, interval, leechers,
/// seeders); then 6 bytes per IPv4 peer or 18 per IPv6 peer.
pub const ANNOUNCE_RESPONSE_HEADER_LEN: usize = 20;
/// Size of a scrape response before its entries (action, transaction id).
pub const SCRAPE_RESPONSE_HEADER_LEN: usize = 8;
/// Size of one scrape response entry: seeders, completed, leechers.
pub const SCRAPE_ENTRY_LEN: usize = 12;
/// Size of an error response before its message (action, transaction id).
pub const ERROR_RESPONSE_HEADER_LEN: usize = 8;

/// The `action` field of every packet (BEP 15).
pub mod action {
    /// Connect: obtain a connection id.
    pub const CONNECT: u32 = 0;
    /// Announce.
    pub const ANNOUNCE: u32 = 1;
    /// Scrape.
    pub const SCRAPE: u32 = 2;
    /// Error (responses only).
    pub const ERROR: u32 = 3;
}
