//! Writing KRPC messages: hand-written bencode appended to a caller-owned buffer, every
//! dictionary's keys in sorted raw-byte order (canonical bencode), no allocation beyond the
//! buffer's growth.
//!
//! Top-level keys in order: `a`, `e`, `ip`, `q`, `r`, `ro`, `t`, `v`, `y`.

use std::net::SocketAddr;

use super::bencode::{put_bytes, put_int};
use super::message::{Method, Want};
use super::{COMPACT_NODE_V4_LEN, COMPACT_NODE_V6_LEN};
use crate::{NodeId, COMPACT_V4_LEN, COMPACT_V6_LEN};

/// Everything a reply may carry; which fields are set depends on the query answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseFields<'a> {
    /// `id`: our node id.
    pub id: NodeId,
    /// `nodes`: raw compact IPv4 nodes, 26n bytes (written if non-empty; a trailing partial
    /// entry is dropped).
    pub nodes: &'a [u8],
    /// `nodes6`: raw compact IPv6 nodes, 38n bytes (written if non-empty; a trailing partial
    /// entry is dropped).
    pub nodes6: &'a [u8],
    /// `values`: compact peers, written as a LIST of 6-byte strings (or 18-byte if
    /// `values_v6`) if non-empty; a trailing partial entry is dropped.
    pub values: &'a [u8],
    /// Whether `values` holds 18-byte IPv6 peers rather than 6-byte IPv4 ones.
    pub values_v6: bool,
    /// `token` (get_peers replies).
    pub token: Option<&'a [u8]>,
    /// BEP 51 `samples`: concatenated info hashes (written if `Some`, even empty).
    pub samples: Option<&'a [u8]>,
    /// BEP 51 `interval`.
    pub interval: Option<i64>,
    /// BEP 51 `num`.
    pub num: Option<i64>,
}

impl<'a> ResponseFields<'a> {
    /// A reply carrying only `id` (a ping or announce_peer reply); set other fields with struct
    /// update syntax.
    pub const fn new(id: NodeId) -> Self {
        Self {
            id,
            nodes: &[],
            nodes6: &[],
            values: &[],
            values_v6: false,
            token: None,
            samples: None,
            interval: None,
            num: None,
        }
    }
}

/// The whole entries of `bytes`, ignoring a trailing partial one.
fn whole(bytes: &[u8], entry: usize) -> &[u8] {
    &bytes[..bytes.len() - bytes.len() % entry]
}

/// Appends an address in compact form: 4 + 2 bytes for IPv4, 16 + 2 for IPv6, big endian.
pub fn write_compact_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Appends a compact node: the 20-byte id, then the compact address (26 or 38 bytes in all).
pub fn write_compact_node(out: &mut Vec<u8>, id: &NodeId, addr: SocketAddr) {
    out.extend_from_slice(&id.0);
    write_compact_addr(out, addr);
}

/// Appends the top-level `ip` key (BEP 42): the requester's address as we see it.
fn put_ip(out: &mut Vec<u8>, requester: Option<SocketAddr>) {
    let Some(addr) = requester else {
        return;
    };
    out.extend_from_slice(if addr.is_ipv4() {
        &b"2:ip6:"[..]
    } else {
        &b"2:ip18:"[..]
    });
    write_compact_addr(out, addr);
}

/// Appends `1:t<tid>` and, if any, `1:v<version>`, then `1:y1:<y>` and closes the message.
fn put_tail(out: &mut Vec<u8>, transaction_id: &[u8], version: Option<&[u8]>, y: u8) {
    out.extend_from_slice(b"1:t");
    put_bytes(out, transaction_id);
    if let Some(v) = version {
        out.extend_from_slice(b"1:v");
        put_bytes(out, v);
    }
    out.extend_from_slice(b"1:y1:");
    out.push(y);
    out.push(b'e');
}

/// Appends a reply (`y`=`r`): `ip` (BEP 42, if `requester` is given), `r`, `t`, `v` (if given).
///
/// Keys of `r`, in order: `id`, `interval`, `nodes`, `nodes6`, `num`, `samples`, `token`,
/// `values`; each optional one is written only when set (see [`ResponseFields`]).
pub fn write_response(
    out: &mut Vec<u8>,
    transaction_id: &[u8],
    requester: Option<SocketAddr>,
    version: Option<&[u8]>,
    r: &ResponseFields<'_>,
) {
    let (values, entry) = if r.values_v6 {
        (whole(r.values, COMPACT_V6_LEN), COMPACT_V6_LEN)
    } else {
        (whole(r.values, COMPACT_V4_LEN), COMPACT_V4_LEN)
    };
    let nodes = whole(r.nodes, COMPACT_NODE_V4_LEN);
    let nodes6 = whole(r.nodes6, COMPACT_NODE_V6_LEN);
    let samples = r.samples.unwrap_or_default();
    out.reserve(
        128 + transaction_id.len()
            + nodes.len()
            + nodes6.len()
            + values.len() / entry * (entry + 3)
            + samples.len(),
    );
    out.push(b'd');
    put_ip(out, requester);
    out.extend_from_slice(b"1:rd2:id20:");
    out.extend_from_slice(&r.id.0);
    if let Some(interval) = r.interval {
        out.extend_from_slice(b"8:interval");
        put_int(out, interval);
    }
    if !nodes.is_empty() {
        out.extend_from_slice(b"5:nodes");
        put_bytes(out, nodes);
    }
    if !nodes6.is_empty() {
        out.extend_from_slice(b"6:nodes6");
        put_bytes(out, nodes6);
    }
    if let Some(num) = r.num {
        out.extend_from_slice(b"3:num");
        put_int(out, num);
    }
    if let Some(samples) = r.samples {
        out.extend_from_slice(b"7:samples");
        put_bytes(out, samples);
    }
    if let Some(token) = r.token {
        out.extend_from_slice(b"5:token");
        put_bytes(out, token);
    }
    if !values.is_empty() {
        out.extend_from_slice(b"6:valuesl");
        for peer in values.chunks_exact(entry) {
            put_bytes(out, peer);
        }
        out.push(b'e');
    }
    out.push(b'e');
    put_tail(out, transaction_id, version, b'r');
}

/// Appends an error (`y`=`e`): `e` = `[code, message]` (see [`error_code`](super::error_code)),
/// `ip` (BEP 42, if `requester` is given), `t`, `v` (if given).
pub fn write_error(
    out: &mut Vec<u8>,
    transaction_id: &[u8],
    requester: Option<SocketAddr>,
    version: Option<&[u8]>,
    code: i64,
    message: &str,
) {
    out.reserve(64 + transaction_id.len() + message.len());
    out.extend_from_slice(b"d1:el");
    put_int(out, code);
    put_bytes(out, message.as_bytes());
    out.push(b'e');
    put_ip(out, requester);
    put_tail(out, transaction_id, version, b'e');
}

/// Appends a query (`y`=`q`): `a` (with `id`, the method's arguments and `want` if not empty),
/// `q` (the method's name), `ro`=1 if `read_only` (BEP 43), `t`, `v` (if given).
///
/// Keys of `a`, in order: `id`, `implied_port`, `info_hash`, `noseed`, `port`, `scrape`,
/// `seed`, `target`, `token`, `want`; flags are written (as 1) only when set, `port` always for
/// announce_peer. An unknown method writes its name with its `info_hash` and `target`, if any.
pub fn write_query(
    out: &mut Vec<u8>,
    transaction_id: &[u8],
    id: NodeId,
    method: &Method<'_>,
    want: Want,
    read_only: bool,
    version: Option<&[u8]>,
) {
    out.reserve(160 + transaction_id.len());
    out.extend_from_slice(b"d1:ad2:id20:");
    out.extend_from_slice(&id.0);
    let flag = |out: &mut Vec<u8>, set: bool, key: &[u8]| {
        if set {
            out.extend_from_slice(key);
            out.extend_from_slice(b"i1e");
        }
    };
    match *method {
        Method::Ping => {}
        Method::FindNode { target } | Method::SampleInfohashes { target } => {
            out.extend_from_slice(b"6:target20:");
            out.extend_from_slice(&target.0);
        }
        Method::GetPeers {
            info_hash,
            noseed,
            scrape,
        } => {
            out.extend_from_slice(b"9:info_hash20:");
            out.extend_from_slice(&info_hash.0);
            flag(out, noseed, b"6:noseed");
            flag(out, scrape, b"6:scrape");
        }
        Method::AnnouncePeer {
            info_hash,
            port,
            implied_port,
            token,
            seed,
        } => {
            flag(out, implied_port, b"12:implied_port");
            out.extend_from_slice(b"9:info_hash20:");
            out.extend_from_slice(&info_hash.0);
            out.extend_from_slice(b"4:port");
            put_int(out, i64::from(port));
            flag(out, seed, b"4:seed");
            out.extend_from_slice(b"5:token");
            put_bytes(out, token);
        }
        Method::Unknown {
            target, info_hash, ..
        } => {
            if let Some(info_hash) = info_hash {
                out.extend_from_slice(b"9:info_hash20:");
                out.extend_from_slice(&info_hash.0);
            }
            if let Some(target) = target {
                out.extend_from_slice(b"6:target20:");
                out.extend_from_slice(&target.0);
            }
        }
    }
    if !want.is_empty() {
        out.extend_from_slice(b"4:wantl");
        if want.n4 {
            out.extend_from_slice(b"2:n4");
        }
        if want.n6 {
            out.extend_from_slice(b"2:n6");
        }
        out.push(b'e');
    }
    out.extend_from_slice(b"e1:q");
    put_bytes(out, method.name());
    if read_only {
        out.extend_from_slice(b"2:roi1e");
    }
    put_tail(out, transaction_id, version, b'q');
}

#[cfg(test)]
mod tests;
