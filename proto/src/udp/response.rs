//! Response side of the UDP tracker (BEP 15): the server's writers for connect, announce, scrape
//! and error replies, and the client's parser for them.
//!
//! Every response opens with action (u32) and transaction id (u32). Then:
//! - connect (action 0): the connection id (u64); 16 bytes in all.
//! - announce (action 1): interval, leechers, seeders (u32 each), then compact peers, 6 bytes
//!   each over IPv4, 18 over IPv6 (the family of the packet, which the receiver knows).
//! - scrape (action 2): per requested hash, in request order: seeders, completed, leechers.
//! - error (action 3): a message running to the end of the packet.

use super::wire::{put_action_tid, Reader};
use super::{
    action, ANNOUNCE_RESPONSE_HEADER_LEN, CONNECT_RESPONSE_LEN, ERROR_RESPONSE_HEADER_LEN,
    SCRAPE_ENTRY_LEN, SCRAPE_RESPONSE_HEADER_LEN,
};

/// Appends a connect reply (16 bytes).
pub fn write_connect_response(out: &mut Vec<u8>, transaction_id: u32, connection_id: u64) {
    out.reserve(CONNECT_RESPONSE_LEN);
    put_action_tid(out, action::CONNECT, transaction_id);
    out.extend_from_slice(&connection_id.to_be_bytes());
}

/// Appends an announce reply: 20 bytes, then `peers` as given (already compact: 6 bytes per IPv4
/// peer or 18 per IPv6 peer, in the family of the request's packet).
pub fn write_announce_response(
    out: &mut Vec<u8>,
    transaction_id: u32,
    interval: u32,
    leechers: u32,
    seeders: u32,
    peers: &[u8],
) {
    out.reserve(ANNOUNCE_RESPONSE_HEADER_LEN + peers.len());
    put_action_tid(out, action::ANNOUNCE, transaction_id);
    out.extend_from_slice(&interval.to_be_bytes());
    out.extend_from_slice(&leechers.to_be_bytes());
    out.extend_from_slice(&seeders.to_be_bytes());
    out.extend_from_slice(peers);
}

/// Appends the 8-byte start of a scrape reply; follow it with one
/// [`write_scrape_response_entry`] per requested hash, in request order.
pub fn write_scrape_response_header(out: &mut Vec<u8>, transaction_id: u32) {
    out.reserve(SCRAPE_RESPONSE_HEADER_LEN);
    put_action_tid(out, action::SCRAPE, transaction_id);
}

/// Appends one 12-byte scrape reply entry (an unknown torrent gets zeros).
pub fn write_scrape_response_entry(out: &mut Vec<u8>, seeders: u32, completed: u32, leechers: u32) {
    out.reserve(SCRAPE_ENTRY_LEN);
    out.extend_from_slice(&seeders.to_be_bytes());
    out.extend_from_slice(&completed.to_be_bytes());
    out.extend_from_slice(&leechers.to_be_bytes());
}

/// Appends an error reply: 8 bytes, then `message` (no terminator). Send one only to a source
/// whose connection id verified (see [`RequestError`](super::RequestError)).
pub fn write_error_response(out: &mut Vec<u8>, transaction_id: u32, message: &str) {
    out.reserve(ERROR_RESPONSE_HEADER_LEN + message.len());
    put_action_tid(out, action::ERROR, transaction_id);
    out.extend_from_slice(message.as_bytes());
}

/// A parsed response. Borrowed parts point into the packet; the caller matches the transaction
/// id against its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response<'a> {
    /// Action 0.
    Connect {
        /// The request's transaction id.
        transaction_id: u32,
        /// The id to send in the next requests.
        connection_id: u64,
    },
    /// Action 1.
    Announce {
        /// The request's transaction id.
        transaction_id: u32,
        /// Seconds to wait before the next regular announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// Compact peers, raw: 6 bytes each over IPv4, 18 over IPv6 (the caller knows which);
        /// possibly ending in a partial entry, which the caller ignores.
        peers: &'a [u8],
    },
    /// Action 2.
    Scrape {
        /// The request's transaction id.
        transaction_id: u32,
        /// 12 bytes per hash, in request order (a trailing partial entry is dropped); read them
        /// with [`scrape_entries`].
        entries: &'a [u8],
    },
    /// Action 3.
    Error {
        /// The request's transaction id.
        transaction_id: u32,
        /// The message, raw (usually ASCII text).
        message: &'a [u8],
    },
}

impl Response<'_> {
    /// The transaction id, to match against the request's.
    pub const fn transaction_id(&self) -> u32 {
        match self {
            Self::Connect { transaction_id, .. }
            | Self::Announce { transaction_id, .. }
            | Self::Scrape { transaction_id, .. }
            | Self::Error { transaction_id, .. } => *transaction_id,
        }
    }
}

/// Why a response was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Shorter than its action requires (8 bytes for any response, 16 for connect, 20 for
    /// announce); carries the packet length.
    #[error("response too short ({0} bytes)")]
    TooShort(usize),
    /// An action other than connect, announce, scrape or error.
    #[error("unknown action {0} in response")]
    UnknownAction(u32),
}

/// One entry of a scrape reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ScrapeEntry {
    /// Seeders.
    pub seeders: u32,
    /// Completed downloads reported so far.
    pub completed: u32,
    /// Leechers.
    pub leechers: u32,
}

/// The entries of a scrape reply's `entries` bytes (a trailing partial entry is ignored).
pub fn scrape_entries(entries: &[u8]) -> impl ExactSizeIterator<Item = ScrapeEntry> + Clone + '_ {
    entries.chunks_exact(SCRAPE_ENTRY_LEN).map(|e| {
        let mut r = Reader::new(e);
        ScrapeEntry {
            seeders: r.u32().unwrap_or_default(),
            completed: r.u32().unwrap_or_default(),
            leechers: r.u32().unwrap_or_default(),
        }
    })
}

/// Parses a response datagram. Bytes after a connect reply's 16 are ignored. Allocates nothing;
/// never panics.
pub fn parse_response(packet: &[u8]) -> Result<Response<'_>, ResponseError> {
    let too_short = ResponseError::TooShort(packet.len());
    let mut r = Reader::new(packet);
    let (Some(action), Some(transaction_id)) = (r.u32(), r.u32()) else {
        return Err(too_short);
    };
    match action {
        action::CONNECT => Ok(Response::Connect {
            transaction_id,
            connection_id: r.u64().ok_or(too_short)?,
        }),
        action::ANNOUNCE => {
            let (Some(interval), Some(leechers), Some(seeders)) = (r.u32(), r.u32(), r.u32())
            else {
                return Err(too_short);
            };
            Ok(Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers: r.rest(),
            })
        }
        action::SCRAPE => {
            let body = r.rest();
            Ok(Response::Scrape {
                transaction_id,
                entries: body
                    .get(..body.len() - body.len() % SCRAPE_ENTRY_LEN)
                    .unwrap_or_default(),
            })
        }
        action::ERROR => Ok(Response::Error {
            transaction_id,
            message: r.rest(),
        }),
        other => Err(ResponseError::UnknownAction(other)),
    }
}

#[cfg(test)]
mod tests;
