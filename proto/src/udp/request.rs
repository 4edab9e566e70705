//! Request side of the UDP tracker (BEP 15 + BEP 41): parsing connect, announce and scrape
//! requests, and the client's writers for them.
//!
//! Every request opens with a 16-byte header: connection id (u64), action (u32), transaction id
//! (u32). Then:
//! - connect (action 0): the connection id must be [`PROTOCOL_ID`]; bytes after the header are
//!   ignored.
//! - announce (action 1): at least [`ANNOUNCE_REQUEST_LEN`] bytes; what follows is BEP 41
//!   options (see [`UrlData`]).
//! - scrape (action 2): one or more 20-byte info hashes. Trailing bytes that do not make a whole
//!   hash are ignored (BEP 15: "clients and trackers should not assume packets to be of a certain
//!   size"). More than [`MAX_SCRAPE_HASHES`](super::MAX_SCRAPE_HASHES) parse; the server caps what it answers.

use std::fmt;
use std::net::Ipv4Addr;

use super::options::{parse_options, write_url_data, UrlData};
use super::wire::Reader;
use super::{action, ANNOUNCE_REQUEST_LEN, PROTOCOL_ID};
use crate::{Event, InfoHash, PeerId};

/// Length of an info hash in a scrape request.
const HASH_LEN: usize = 20;

/// A parsed request. Borrowed parts point into the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Action 0, carrying [`PROTOCOL_ID`]: asks for a connection id.
    Connect {
        /// Echoed in the reply.
        transaction_id: u32,
    },
    /// Action 1.
    Announce(AnnounceRequest<'a>),
    /// Action 2.
    Scrape(ScrapeRequest<'a>),
}

impl Request<'_> {
    /// The transaction id, echoed in any reply.
    pub const fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id } => *transaction_id,
            Self::Announce(a) => a.transaction_id,
            Self::Scrape(s) => s.transaction_id,
        }
    }

    /// The connection id to verify, or `None` for a connect request (which has none).
    pub const fn connection_id(&self) -> Option<u64> {
        match self {
            Self::Connect { .. } => None,
            Self::Announce(a) => Some(a.connection_id),
            Self::Scrape(s) => Some(s.connection_id),
        }
    }
}

/// An announce request (98 bytes, then BEP 41 options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceRequest<'a> {
    /// The connection id from an earlier connect reply; the server must verify it.
    pub connection_id: u64,
    /// Echoed in the reply.
    pub transaction_id: u32,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The announcing peer's id.
    pub peer_id: PeerId,
    /// Bytes downloaded so far.
    pub downloaded: u64,
    /// Bytes still missing (0 for a seeder).
    pub left: u64,
    /// Bytes uploaded so far.
    pub uploaded: u64,
    /// On the wire (BEP 15 numbering): 0 none, 1 completed, 2 started, 3 stopped, and 4 paused
    /// (BEP 21 partial seed, as libtorrent sends it). Others are rejected.
    pub event: Event,
    /// The optional IPv4 address field; 0 on the wire is `None`. Whether to trust it is the
    /// server's policy.
    pub ip: Option<Ipv4Addr>,
    /// A client key, stable across the client's announces.
    pub key: u32,
    /// Peers wanted; signed, and <= 0 (conventionally -1) means the server's default.
    pub num_want: i32,
    /// The port the peer listens on; never 0 in a parsed request.
    pub port: u16,
    /// BEP 41 URL data (path and query of the tracker URL), possibly empty.
    pub url_data: UrlData<'a>,
}

/// A scrape request: a header and one or more info hashes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ScrapeRequest<'a> {
    /// The connection id from an earlier connect reply; the server must verify it.
    pub connection_id: u64,
    /// Echoed in the reply.
    pub transaction_id: u32,
    /// 20 bytes per info hash, at least one.
    hashes: &'a [u8],
}

impl<'a> ScrapeRequest<'a> {
    /// How many info hashes the request carries (at least 1 when parsed).
    pub const fn len(&self) -> usize {
        self.hashes.len() / HASH_LEN
    }

    /// Whether the request carries no info hash (never, for a parsed request).
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The info hashes, in request order (the order of the reply's entries).
    pub fn info_hashes(&self) -> impl ExactSizeIterator<Item = InfoHash> + Clone + 'a {
        self.hashes
            .chunks_exact(HASH_LEN)
            .map(|h| InfoHash(<[u8; HASH_LEN]>::try_from(h).unwrap_or_default()))
    }
}

impl fmt::Debug for ScrapeRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Hashes<'a>(ScrapeRequest<'a>);
        impl fmt::Debug for Hashes<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.info_hashes()).finish()
            }
        }
        f.debug_struct("ScrapeRequest")
            .field("connection_id", &self.connection_id)
            .field("transaction_id", &self.transaction_id)
            .field("info_hashes", &Hashes(*self))
            .finish()
    }
}

/// Why a request was rejected, and what the server may do about it.
///
/// A UDP source address is spoofable, so the server stays silent unless [`header`] is present
/// *and* its connection id verifies; only then may it send an error packet, with the header's
/// transaction id and the kind's text as message. A connect request (whose connection id is the
/// protocol id, not a cookie) never gets an error reply.
///
/// [`header`]: RequestError::header
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct RequestError {
    /// What is wrong; its text is the error packet's message.
    pub kind: RequestErrorKind,
    /// The header fields, when the packet was long enough to carry them (>= 16 bytes): the server
    /// verifies the connection id and only then may send an error packet with this transaction id.
    pub header: Option<RequestHeader>,
}

/// The 16 bytes that open every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    /// The connection id ([`PROTOCOL_ID`] for a connect request).
    pub connection_id: u64,
    /// The action (see [`action`](super::action)).
    pub action: u32,
    /// The transaction id, for an error reply.
    pub transaction_id: u32,
}

/// What is wrong with a request. The `Display` text is the message to send in an error packet:
/// short and precise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestErrorKind {
    /// Fewer than 16 bytes, or an announce shorter than 98 bytes.
    #[error("packet too short")]
    TooShort,
    /// A connect request without [`PROTOCOL_ID`].
    #[error("bad protocol id")]
    BadProtocolId,
    /// An action other than connect, announce or scrape.
    #[error("unknown action {0}")]
    UnknownAction(u32),
    /// An announce event above 4.
    #[error("unknown event {0}")]
    UnknownEvent(u32),
    /// An announce with port 0.
    #[error("port must not be 0")]
    PortZero,
    /// A scrape without a (whole) info hash.
    #[error("no info_hash to scrape")]
    NoInfoHash,
    /// BEP 41: an option without its length byte, or a length running past the end.
    #[error("malformed BEP 41 options")]
    BadOptions,
}

/// The BEP 15 `event` number of an event: 0 none, 1 completed, 2 started, 3 stopped, 4 paused.
pub const fn event_to_udp(event: Event) -> u32 {
    match event {
        Event::None => 0,
        Event::Completed => 1,
        Event::Started => 2,
        Event::Stopped => 3,
        Event::Paused => 4,
    }
}

/// The event of a BEP 15 `event` number (see [`event_to_udp`]); `None` above 4.
pub const fn event_from_udp(code: u32) -> Option<Event> {
    match code {
        0 => Some(Event::None),
        1 => Some(Event::Completed),
        2 => Some(Event::Started),
        3 => Some(Event::Stopped),
        4 => Some(Event::Paused),
        _ => None,
    }
}

/// Parses a request datagram. Allocates nothing; never panics.
pub fn parse_request(packet: &[u8]) -> Result<Request<'_>, RequestError> {
    let mut r = Reader::new(packet);
    let (Some(connection_id), Some(action), Some(transaction_id)) = (r.u64(), r.u32(), r.u32())
    else {
        return Err(RequestError {
            kind: RequestErrorKind::TooShort,
            header: None,
        });
    };
    let header = RequestHeader {
        connection_id,
        action,
        transaction_id,
    };
    let fail = |kind| RequestError {
        kind,
        header: Some(header),
    };
    match action {
        action::CONNECT if connection_id == PROTOCOL_ID => Ok(Request::Connect { transaction_id }),
        action::CONNECT => Err(fail(RequestErrorKind::BadProtocolId)),
        action::ANNOUNCE => parse_announce(header, r)
            .map(Request::Announce)
            .map_err(fail),
        action::SCRAPE => {
            let body = r.rest();
            let whole = body.len() - body.len() % HASH_LEN;
            match body.get(..whole) {
                Some(hashes) if !hashes.is_empty() => Ok(Request::Scrape(ScrapeRequest {
                    connection_id,
                    transaction_id,
                    hashes,
                })),
                _ => Err(fail(RequestErrorKind::NoInfoHash)),
            }
        }
        other => Err(fail(RequestErrorKind::UnknownAction(other))),
    }
}

/// The announce fields after the header, then the options.
fn parse_announce<'a>(
    h: RequestHeader,
    mut r: Reader<'a>,
) -> Result<AnnounceRequest<'a>, RequestErrorKind> {
    let fixed = (|| {
        Some((
            r.array::<20>()?,
            r.array::<20>()?,
            r.u64()?,
            r.u64()?,
            r.u64()?,
            r.u32()?,
            r.array::<4>()?,
            r.u32()?,
            r.i32()?,
            r.u16()?,
        ))
    })();
    let Some((info_hash, peer_id, downloaded, left, uploaded, event, ip, key, num_want, port)) =
        fixed
    else {
        return Err(RequestErrorKind::TooShort);
    };
    let event = event_from_udp(event).ok_or(RequestErrorKind::UnknownEvent(event))?;
    if port == 0 {
        return Err(RequestErrorKind::PortZero);
    }
    let url_data = parse_options(r.rest()).ok_or(RequestErrorKind::BadOptions)?;
    Ok(AnnounceRequest {
        connection_id: h.connection_id,
        transaction_id: h.transaction_id,
        info_hash: InfoHash(info_hash),
        peer_id: PeerId(peer_id),
        downloaded,
        left,
        uploaded,
        event,
        ip: (ip != [0; 4]).then(|| Ipv4Addr::from(ip)),
        key,
        num_want,
        port,
        url_data,
    })
}

/// Appends a connect request (16 bytes).
pub fn write_connect_request(out: &mut Vec<u8>, transaction_id: u32) {
    out.reserve(16);
    out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
    out.extend_from_slice(&action::CONNECT.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

/// Appends an announce request: the 98 fixed bytes, then, if `req.url_data` is not empty, BEP 41
/// `URLData` options (at most 255 bytes each) and an `EndOfOptions`. Build the URL data to send
/// with [`UrlData::new`]. An `ip` of `None` is written as 0.
pub fn write_announce_request(out: &mut Vec<u8>, req: &AnnounceRequest<'_>) {
    out.reserve(ANNOUNCE_REQUEST_LEN);
    out.extend_from_slice(&req.connection_id.to_be_bytes());
    out.extend_from_slice(&action::ANNOUNCE.to_be_bytes());
    out.extend_from_slice(&req.transaction_id.to_be_bytes());
    out.extend_from_slice(&req.info_hash.0);
    out.extend_from_slice(&req.peer_id.0);
    out.extend_from_slice(&req.downloaded.to_be_bytes());
    out.extend_from_slice(&req.left.to_be_bytes());
    out.extend_from_slice(&req.uploaded.to_be_bytes());
    out.extend_from_slice(&event_to_udp(req.event).to_be_bytes());
    out.extend_from_slice(&req.ip.map_or([0; 4], |ip| ip.octets()));
    out.extend_from_slice(&req.key.to_be_bytes());
    out.extend_from_slice(&req.num_want.to_be_bytes());
    out.extend_from_slice(&req.port.to_be_bytes());
    write_url_data(out, &req.url_data);
}

/// Appends a scrape request for `hashes` (16 + 20n bytes). To stay within one MTU, send at most
/// [`MAX_SCRAPE_HASHES`](super::MAX_SCRAPE_HASHES) per request.
pub fn write_scrape_request(
    out: &mut Vec<u8>,
    connection_id: u64,
    transaction_id: u32,
    hashes: &[InfoHash],
) {
    out.reserve(16 + HASH_LEN * hashes.len());
    out.extend_from_slice(&connection_id.to_be_bytes());
    out.extend_from_slice(&action::SCRAPE.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
    for h in hashes {
        out.extend_from_slice(&h.0);
    }
}

#[cfg(test)]
mod tests;
