//! Why a KRPC packet was refused, and whether its sender may be told (a 203 error) or not.

use std::fmt;

/// A packet [`parse_message`](super::parse_message) refused.
///
/// A UDP source address is spoofable, so a node answers only what looks like a real query: when
/// [`transaction_id`](Self::transaction_id) is set, it may reply with a KRPC error of code
/// [`PROTOCOL`](super::error_code::PROTOCOL) (203) whose message is this error's text; when it is
/// `None`, it stays silent. Refused replies and errors are never answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct KrpcError<'a> {
    /// What is wrong. Its `Display` text is the message to send in a 203 reply.
    pub kind: KrpcErrorKind,
    /// Set when the packet was a well-formed bencoded dict with a `t` and `y`=`q`: the node may
    /// answer with a KRPC error (203) carrying this transaction id. None => answer with silence.
    pub transaction_id: Option<&'a [u8]>,
}

/// What is wrong with a packet. The `Display` text is short and precise (`missing info_hash`,
/// `invalid port`, `token too long`): it is the message of a 203 error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KrpcErrorKind {
    /// Not bencode: truncated, a bad integer or string length, a non-string dictionary key, a
    /// stray byte.
    #[error("malformed bencode")]
    Malformed,
    /// Lists and dictionaries nested deeper than [`MAX_DEPTH`](super::MAX_DEPTH).
    #[error("bencode nested too deep")]
    TooDeep,
    /// Valid bencode, but not a dictionary.
    #[error("message is not a dictionary")]
    NotADict,
    /// Bytes after the message's dictionary.
    #[error("trailing bytes after message")]
    TrailingBytes,
    /// A required key is absent.
    #[error("missing {0}")]
    Missing(Field),
    /// A key has the wrong type, a wrong length or a value out of range.
    #[error("invalid {0}")]
    Invalid(Field),
    /// A byte string is longer than allowed ([`MAX_TRANSACTION_ID_LEN`](super::MAX_TRANSACTION_ID_LEN),
    /// [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN)).
    #[error("{0} too long")]
    TooLong(Field),
}

/// A KRPC key named in an error. `Display` is the key as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// `t`: transaction id.
    T,
    /// `y`: message type (`q`, `r` or `e`).
    Y,
    /// `q`: method name of a query.
    Q,
    /// `a`: arguments of a query.
    A,
    /// `r`: body of a reply.
    R,
    /// `e`: `[code, message]` of an error.
    E,
    /// `id`: the sender's node id.
    Id,
    /// `target`: find_node, sample_infohashes.
    Target,
    /// `info_hash`: get_peers, announce_peer.
    InfoHash,
    /// `port`: announce_peer.
    Port,
    /// `implied_port`: announce_peer.
    ImpliedPort,
    /// `token`: announce_peer, get_peers replies.
    Token,
    /// `want` (BEP 32).
    Want,
    /// `noseed` (BEP 33): get_peers.
    Noseed,
    /// `scrape` (BEP 33): get_peers.
    Scrape,
    /// `seed` (BEP 33): announce_peer.
    Seed,
    /// `nodes`: compact IPv4 nodes in a reply.
    Nodes,
    /// `nodes6` (BEP 32): compact IPv6 nodes in a reply.
    Nodes6,
    /// `values`: compact peers in a get_peers reply.
    Values,
    /// `samples` (BEP 51).
    Samples,
    /// `interval` (BEP 51).
    Interval,
    /// `num` (BEP 51).
    Num,
}

impl Field {
    /// The key as it appears on the wire.
    pub const fn key(self) -> &'static str {
        match self {
            Self::T => "t",
            Self::Y => "y",
            Self::Q => "q",
            Self::A => "a",
            Self::R => "r",
            Self::E => "e",
            Self::Id => "id",
            Self::Target => "target",
            Self::InfoHash => "info_hash",
            Self::Port => "port",
            Self::ImpliedPort => "implied_port",
            Self::Token => "token",
            Self::Want => "want",
            Self::Noseed => "noseed",
            Self::Scrape => "scrape",
            Self::Seed => "seed",
            Self::Nodes => "nodes",
            Self::Nodes6 => "nodes6",
            Self::Values => "values",
            Self::Samples => "samples",
            Self::Interval => "interval",
            Self::Num => "num",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}
