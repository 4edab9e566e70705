//! The typed KRPC messages (BEP 5 + 32, 33, 42, 43, 51) that parsing produces and writing
//! consumes, and zero-copy views over compact nodes and peers.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::bencode::{Decoder, Items};
use super::{COMPACT_NODE_V4_LEN, COMPACT_NODE_V6_LEN};
use crate::{InfoHash, NodeId, COMPACT_V4_LEN, COMPACT_V6_LEN};

/// A parsed KRPC message. Borrowed parts point into the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// `t`: echoed in the reply (at most [`MAX_TRANSACTION_ID_LEN`](super::MAX_TRANSACTION_ID_LEN)
    /// bytes).
    pub transaction_id: &'a [u8],
    /// `y` and what it selects: `q` + `a`, `r`, or `e`.
    pub body: Body<'a>,
    /// BEP 42 `ip` key (compact 6 or 18 bytes) — in replies: what the replier sees as OUR
    /// address. `None` if absent or of another length.
    pub ip: Option<SocketAddr>,
    /// BEP 43 `ro` = 1 (top-level key): the sender is read-only and must not enter a routing
    /// table. Any non-zero integer counts.
    pub read_only: bool,
    /// `v`: the sender's client version (conventionally 2 letters and 2 version bytes).
    pub version: Option<&'a [u8]>,
}

/// What a message carries, by its `y`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body<'a> {
    /// `y`=`q`.
    Query(Query<'a>),
    /// `y`=`r`.
    Response(Response<'a>),
    /// `y`=`e`: `e` is `[code, message]` (see [`error_code`](super::error_code)).
    Error {
        /// The error code.
        code: i64,
        /// The error text, as sent (not necessarily UTF-8).
        message: &'a [u8],
    },
}

/// A query: `q` (the method) with its arguments `a`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    /// `a.id`: the querying node's id.
    pub id: NodeId,
    /// `q` and the arguments that method uses.
    pub method: Method<'a>,
    /// `a.want` (BEP 32).
    pub want: Want,
}

/// BEP 32 `want` list; both false = key absent
/// (the replier then sends the nodes of its own address family).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Want {
    /// `n4`: the querier wants IPv4 nodes (`nodes`).
    pub n4: bool,
    /// `n6`: the querier wants IPv6 nodes (`nodes6`).
    pub n6: bool,
}

impl Want {
    /// Whether the key is absent (or named neither `n4` nor `n6`).
    pub const fn is_empty(&self) -> bool {
        !self.n4 && !self.n6
    }
}

/// A query's method and the arguments it uses. Arguments a method does not use are not
/// checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method<'a> {
    /// `ping`.
    Ping,
    /// `find_node`: the `K` closest nodes to `target`.
    FindNode {
        /// `a.target`.
        target: NodeId,
    },
    /// `get_peers`: peers of `info_hash`, else the closest nodes, and a token.
    GetPeers {
        /// `a.info_hash`.
        info_hash: InfoHash,
        /// BEP 33 `noseed`=1: the querier wants no seeds.
        noseed: bool,
        /// BEP 33 `scrape`=1: the querier wants the `BFsd`/`BFpe` bloom filters.
        scrape: bool,
    },
    /// `announce_peer`: the querier joins `info_hash`'s swarm.
    AnnouncePeer {
        /// `a.info_hash`.
        info_hash: InfoHash,
        /// `a.port`; when `implied_port` is set, whatever valid port was sent, else 0.
        port: u16,
        /// `a.implied_port`=1: use the packet's source port instead of `port`.
        implied_port: bool,
        /// `a.token`, from an earlier get_peers reply (at most
        /// [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN) bytes).
        token: &'a [u8],
        /// BEP 33 `seed`=1: the announcing peer is a seed.
        seed: bool,
    },
    /// BEP 51 `sample_infohashes`: a sample of the info hashes we store, and nodes near `target`.
    SampleInfohashes {
        /// `a.target`.
        target: NodeId,
    },
    /// Any other method. BEP 5 asks us to treat unknown queries carrying `target` like
    /// find_node and those carrying `info_hash` like get_peers (see
    /// [`Method::lookup_target`]); with neither, answer error 204.
    Unknown {
        /// `q`.
        name: &'a [u8],
        /// `a.target`, if it is a 20-byte string.
        target: Option<NodeId>,
        /// `a.info_hash`, if it is a 20-byte string.
        info_hash: Option<InfoHash>,
    },
}

impl<'a> Method<'a> {
    /// The method name (`q`) on the wire.
    pub const fn name(&self) -> &'a [u8] {
        match self {
            Self::Ping => b"ping",
            Self::FindNode { .. } => b"find_node",
            Self::GetPeers { .. } => b"get_peers",
            Self::AnnouncePeer { .. } => b"announce_peer",
            Self::SampleInfohashes { .. } => b"sample_infohashes",
            Self::Unknown { name, .. } => name,
        }
    }

    /// The id near which the reply's nodes are chosen: `target`, or `info_hash` as a node id;
    /// for an unknown method, its `target`, else its `info_hash` (BEP 5). `None` for `ping` and
    /// for an unknown method with neither (answer it with error 204).
    pub fn lookup_target(&self) -> Option<NodeId> {
        match *self {
            Self::Ping => None,
            Self::FindNode { target } | Self::SampleInfohashes { target } => Some(target),
            Self::GetPeers { info_hash, .. } | Self::AnnouncePeer { info_hash, .. } => {
                Some(info_hash.into())
            }
            Self::Unknown {
                target, info_hash, ..
            } => target.or(info_hash.map(NodeId::from)),
        }
    }
}

/// A reply: all KRPC replies share one shape; which fields matter depends on the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    /// `r.id`: the replying node's id.
    pub id: NodeId,
    /// `nodes`, 26n bytes (a trailing partial entry is ignored).
    pub nodes: CompactNodesV4<'a>,
    /// `nodes6` (BEP 32), 38n bytes (a trailing partial entry is ignored).
    pub nodes6: CompactNodesV6<'a>,
    /// `values`: list of 6- or 18-byte compact peers (wrong-length items skipped).
    pub values: Values<'a>,
    /// `token`, for a later announce_peer (at most [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN)
    /// bytes).
    pub token: Option<&'a [u8]>,
    /// BEP 51 `samples`: concatenated 20-byte info hashes (empty if absent); see
    /// [`Response::sample_hashes`].
    pub samples: &'a [u8],
    /// BEP 51 `interval`: seconds before the replier should be sampled again.
    pub interval: Option<i64>,
    /// BEP 51 `num`: how many info hashes the replier stores.
    pub num: Option<i64>,
}

impl<'a> Response<'a> {
    /// The BEP 51 samples as info hashes (a trailing partial one is ignored).
    pub fn sample_hashes(&self) -> impl ExactSizeIterator<Item = InfoHash> + Clone + 'a {
        self.samples
            .chunks_exact(20)
            .map(|h| InfoHash(<[u8; 20]>::try_from(h).unwrap_or_default()))
    }
}

/// Splits one compact node into its id and its compact address.
fn split_node(chunk: &[u8]) -> (NodeId, &[u8]) {
    match chunk.split_first_chunk::<20>() {
        Some((id, addr)) => (NodeId(*id), addr),
        None => (NodeId::default(), &[]),
    }
}

macro_rules! compact_nodes {
    ($(#[$meta:meta])* $name:ident, $len:expr, $addr:ty, $parse:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name<'a> {
            raw: &'a [u8],
        }

        impl<'a> $name<'a> {
            /// Wraps compact nodes; a trailing partial entry is ignored.
            pub fn new(raw: &'a [u8]) -> Self {
                Self {
                    raw: &raw[..raw.len() - raw.len() % $len],
                }
            }

            /// The whole entries, as sent.
            pub const fn raw(&self) -> &'a [u8] {
                self.raw
            }

            /// How many nodes.
            pub const fn len(&self) -> usize {
                self.raw.len() / $len
            }

            /// Whether there is no node.
            pub const fn is_empty(&self) -> bool {
                self.raw.is_empty()
            }

            /// The nodes: id and address.
            pub fn iter(&self) -> impl ExactSizeIterator<Item = (NodeId, $addr)> + Clone + 'a {
                self.raw.chunks_exact($len).map(|c| {
                    let (id, addr) = split_node(c);
                    (id, $parse(addr))
                })
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.iter()).finish()
            }
        }
    };
}

fn addr_v4(b: &[u8]) -> SocketAddrV4 {
    let a = <[u8; COMPACT_V4_LEN]>::try_from(b).unwrap_or_default();
    SocketAddrV4::new(
        Ipv4Addr::new(a[0], a[1], a[2], a[3]),
        u16::from_be_bytes([a[4], a[5]]),
    )
}

fn addr_v6(b: &[u8]) -> SocketAddrV6 {
    let a = <[u8; COMPACT_V6_LEN]>::try_from(b).unwrap_or([0; COMPACT_V6_LEN]);
    let (ip, port) = a.split_at(16);
    let ip = <[u8; 16]>::try_from(ip).unwrap_or_default();
    SocketAddrV6::new(
        Ipv6Addr::from(ip),
        u16::from_be_bytes([port[0], port[1]]),
        0,
        0,
    )
}

/// A compact address: 6 bytes (IPv4 + port) or 18 bytes (IPv6 + port), big endian; `None` for
/// any other length.
pub fn compact_addr(bytes: &[u8]) -> Option<SocketAddr> {
    match bytes.len() {
        COMPACT_V4_LEN => Some(SocketAddr::V4(addr_v4(bytes))),
        COMPACT_V6_LEN => Some(SocketAddr::V6(addr_v6(bytes))),
        _ => None,
    }
}

compact_nodes!(
    /// `nodes`: compact IPv4 nodes, [`COMPACT_NODE_V4_LEN`] (26) bytes each: 20-byte id, 4-byte
    /// address, 2-byte port.
    CompactNodesV4,
    COMPACT_NODE_V4_LEN,
    SocketAddrV4,
    addr_v4
);
compact_nodes!(
    /// `nodes6` (BEP 32): compact IPv6 nodes, [`COMPACT_NODE_V6_LEN`] (38) bytes each: 20-byte
    /// id, 16-byte address, 2-byte port.
    CompactNodesV6,
    COMPACT_NODE_V6_LEN,
    SocketAddrV6,
    addr_v6
);

/// `values`: a bencoded list of compact peers, 6 bytes (IPv4) or 18 bytes (IPv6) each; items of
/// another length are skipped. Parsing guarantees every item is a byte string.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Values<'a> {
    /// The list's items, between its `l` and `e`.
    items: &'a [u8],
}

impl<'a> Values<'a> {
    /// Wraps the bencoded items of a list (what lies between its `l` and `e`).
    pub(super) const fn from_items(items: &'a [u8]) -> Self {
        Self { items }
    }

    /// The bencoded items, as sent (without the list's `l` and `e`).
    pub const fn raw(&self) -> &'a [u8] {
        self.items
    }

    /// The peers (items of a length other than 6 or 18 skipped).
    pub fn iter(&self) -> impl Iterator<Item = SocketAddr> + Clone + 'a {
        Items(Decoder::new(self.items)).filter_map(|item| item.bytes().and_then(compact_addr))
    }

    /// How many peers (counted by iterating).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is no peer.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
