//! Response side of the HTTP tracker: hand-written bencode writers for announce, scrape and
//! failure replies, appending straight into a caller-owned buffer.
//!
//! Bencode requires dictionary keys in sorted raw-byte order; every writer here emits its keys
//! in that order (the tests re-encode the output canonically and compare byte for byte).
//! Peer slices whose length is not a multiple of the entry size have their trailing partial
//! entry ignored; nothing here panics on any input.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{InfoHash, COMPACT_V4_LEN, COMPACT_V6_LEN};

/// Length of a peer id in `peer id` keys and in the `ids` slices of [`Peers::Dicts`].
const ID_LEN: usize = 20;

/// The peers of an announce reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peers<'a> {
    /// BEP 23 / BEP 7: `peers` holds the IPv4 peers, 6 bytes each (always written, even
    /// empty); `peers6` the IPv6 peers, 18 bytes each (written only if non-empty).
    Compact {
        /// Compact IPv4 peers.
        v4: &'a [u8],
        /// Compact IPv6 peers.
        v6: &'a [u8],
    },
    /// `compact=0`: `peers` is a list of dicts `{ip, peer id, port}`, IPv4 peers first, then
    /// IPv6, with `ip` in text form. `peer id` is written only when ids are given: 20 bytes per
    /// peer, aligned with the peers; a peer beyond the end of its ids gets no `peer id`.
    Dicts {
        /// Compact IPv4 peers.
        v4: &'a [u8],
        /// Compact IPv6 peers.
        v6: &'a [u8],
        /// Peer ids of the IPv4 peers, or `None` for no `peer id` keys.
        v4_ids: Option<&'a [u8]>,
        /// Peer ids of the IPv6 peers, or `None` for no `peer id` keys.
        v6_ids: Option<&'a [u8]>,
    },
}

/// A successful announce reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceResponse<'a> {
    /// `interval`: seconds the client should wait between regular announces.
    pub interval: u32,
    /// `min interval`: seconds the client must wait; written as at most `interval`.
    pub min_interval: u32,
    /// `complete`: seeders in the swarm.
    pub complete: u32,
    /// `incomplete`: leechers in the swarm.
    pub incomplete: u32,
    /// `downloaded`: completed downloads reported so far.
    pub downloaded: u32,
    /// `tracker id`: echoed back by the client as `trackerid` on later announces.
    pub tracker_id: Option<&'a [u8]>,
    /// `warning message`: shown to the user; the announce still succeeded.
    pub warning: Option<&'a str>,
    /// The selected peers (never the requester itself).
    pub peers: Peers<'a>,
}

/// One entry of a scrape reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScrapeFile {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Seeders.
    pub complete: u32,
    /// Completed downloads reported so far.
    pub downloaded: u32,
    /// Leechers.
    pub incomplete: u32,
    /// BEP 48 `downloaders`: peers currently downloading (leechers that are not paused).
    pub downloaders: u32,
}

/// Appends `<len>:<bytes>`.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Appends `i<v>e`.
fn put_int(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.push(b'i');
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    out.push(b'e');
}

/// Appends an already-encoded key followed by an integer value.
fn put_key_int(out: &mut Vec<u8>, encoded_key: &[u8], v: impl itoa::Integer) {
    out.extend_from_slice(encoded_key);
    put_int(out, v);
}

/// The whole entries of `bytes`, ignoring a trailing partial one.
fn whole(bytes: &[u8], entry: usize) -> &[u8] {
    &bytes[..bytes.len() - bytes.len() % entry]
}

/// Splits a compact peer (4 or 16 address bytes, then a big-endian port) into ip and port.
fn split_peer(peer: &[u8]) -> Option<(IpAddr, u16)> {
    let (addr, port) = peer.split_at_checked(peer.len().checked_sub(2)?)?;
    let port = u16::from_be_bytes([port[0], port[1]]);
    let ip = match <[u8; 4]>::try_from(addr) {
        Ok(a) => IpAddr::V4(Ipv4Addr::from(a)),
        Err(_) => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(addr).ok()?)),
    };
    Some((ip, port))
}

/// Dotted-quad text of `ip` into `buf` (at most 15 bytes); returns its length. Faster than
/// `Display`, which matters for `compact=0` replies.
fn write_v4_text(ip: Ipv4Addr, buf: &mut [u8; 48]) -> usize {
    let mut len = 0;
    let mut digits = itoa::Buffer::new();
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            buf[len] = b'.';
            len += 1;
        }
        let d = digits.format(octet).as_bytes();
        buf[len..len + d.len()].copy_from_slice(d);
        len += d.len();
    }
    len
}

/// Appends `d2:ip<text>[7:peer id20:<id>]4:porti<port>e` for one compact peer.
fn put_peer_dict(out: &mut Vec<u8>, peer: &[u8], id: Option<&[u8]>) {
    let Some((ip, port)) = split_peer(peer) else {
        return;
    };
    // Longest textual IPv6 address is 45 bytes; format on the stack to learn the length.
    let mut text = [0u8; 48];
    let text_len = match ip {
        IpAddr::V4(v4) => write_v4_text(v4, &mut text),
        IpAddr::V6(v6) => {
            let mut cursor = &mut text[..];
            if write!(cursor, "{v6}").is_err() {
                return;
            }
            48 - cursor.len()
        }
    };
    out.extend_from_slice(b"d2:ip");
    put_bytes(out, &text[..text_len]);
    if let Some(id) = id {
        out.extend_from_slice(b"7:peer id");
        put_bytes(out, id);
    }
    put_key_int(out, b"4:port", port);
    out.push(b'e');
}

fn put_peer_dicts(out: &mut Vec<u8>, peers: &[u8], entry: usize, ids: Option<&[u8]>) {
    for (i, peer) in peers.chunks_exact(entry).enumerate() {
        let id = ids.and_then(|ids| ids.get(i * ID_LEN..(i + 1) * ID_LEN));
        put_peer_dict(out, peer, id);
    }
}

/// Appends a bencoded announce reply.
///
/// Keys, in sorted order: `complete`, `downloaded`, `incomplete`, `interval`, `min interval`,
/// `peers`, `peers6` (compact, non-empty only), `tracker id`, `warning message`.
pub fn write_announce(out: &mut Vec<u8>, r: &AnnounceResponse<'_>) {
    let peer_bytes = match r.peers {
        Peers::Compact { v4, v6 } => v4.len() + v6.len(),
        // Per dict: up to 45 bytes of ip text, a 20-byte id and some 40 bytes of framing.
        Peers::Dicts { v4, v6, .. } => {
            (v4.len() / COMPACT_V4_LEN) * 80 + (v6.len() / COMPACT_V6_LEN) * 110
        }
    };
    out.reserve(160 + peer_bytes);
    out.push(b'd');
    put_key_int(out, b"8:complete", r.complete);
    put_key_int(out, b"10:downloaded", r.downloaded);
    put_key_int(out, b"10:incomplete", r.incomplete);
    put_key_int(out, b"8:interval", r.interval);
    put_key_int(out, b"12:min interval", r.min_interval.min(r.interval));
    out.extend_from_slice(b"5:peers");
    match r.peers {
        Peers::Compact { v4, v6 } => {
            put_bytes(out, whole(v4, COMPACT_V4_LEN));
            let v6 = whole(v6, COMPACT_V6_LEN);
            if !v6.is_empty() {
                out.extend_from_slice(b"6:peers6");
                put_bytes(out, v6);
            }
        }
        Peers::Dicts {
            v4,
            v6,
            v4_ids,
            v6_ids,
        } => {
            out.push(b'l');
            put_peer_dicts(out, v4, COMPACT_V4_LEN, v4_ids);
            put_peer_dicts(out, v6, COMPACT_V6_LEN, v6_ids);
            out.push(b'e');
        }
    }
    if let Some(id) = r.tracker_id {
        out.extend_from_slice(b"10:tracker id");
        put_bytes(out, id);
    }
    if let Some(warning) = r.warning {
        out.extend_from_slice(b"15:warning message");
        put_bytes(out, warning.as_bytes());
    }
    out.push(b'e');
}

/// Appends `d14:failure reason<len>:<reason>e`.
pub fn write_failure(out: &mut Vec<u8>, reason: &str) {
    out.reserve(24 + reason.len());
    out.extend_from_slice(b"d14:failure reason");
    put_bytes(out, reason.as_bytes());
    out.push(b'e');
}

/// Appends a failure with the BEP 31 `retry in` key: the number of **minutes** after which the
/// client may retry, or, for `None`, the string `never` (the tracker will not serve this
/// request at all, e.g. an unregistered torrent on a private tracker).
pub fn write_failure_retry(out: &mut Vec<u8>, reason: &str, retry_in_minutes: Option<u32>) {
    out.reserve(40 + reason.len());
    out.extend_from_slice(b"d14:failure reason");
    put_bytes(out, reason.as_bytes());
    out.extend_from_slice(b"8:retry in");
    match retry_in_minutes {
        Some(minutes) => put_int(out, minutes),
        None => out.extend_from_slice(b"5:never"),
    }
    out.push(b'e');
}

/// Appends a bencoded scrape reply:
/// `d5:filesd<20-byte hash>d8:completei..e10:downloadedi..e11:downloadersi..e10:incompletei..ee..e`
/// then, when `min_request_interval` is given, `5:flagsd20:min_request_intervali..ee`, then `e`.
///
/// Dictionary keys must be sorted and unique, so `files` is first sorted by info hash in place
/// (without allocating), and only the first of equal hashes is written.
pub fn write_scrape(
    out: &mut Vec<u8>,
    files: &mut [ScrapeFile],
    min_request_interval: Option<u32>,
) {
    files.sort_unstable_by_key(|f| f.info_hash);
    out.reserve(32 + files.len() * 96);
    out.extend_from_slice(b"d5:filesd");
    let mut prev: Option<InfoHash> = None;
    for f in files.iter() {
        if prev == Some(f.info_hash) {
            continue;
        }
        prev = Some(f.info_hash);
        put_bytes(out, f.info_hash.as_bytes());
        out.push(b'd');
        put_key_int(out, b"8:complete", f.complete);
        put_key_int(out, b"10:downloaded", f.downloaded);
        put_key_int(out, b"11:downloaders", f.downloaders);
        put_key_int(out, b"10:incomplete", f.incomplete);
        out.push(b'e');
    }
    out.push(b'e');
    if let Some(secs) = min_request_interval {
        out.extend_from_slice(b"5:flagsd");
        put_key_int(out, b"20:min_request_interval", secs);
        out.push(b'e');
    }
    out.push(b'e');
}

#[cfg(test)]
mod tests;
