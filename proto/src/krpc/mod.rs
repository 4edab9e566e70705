//! The DHT's KRPC codec (BEP 5, with BEP 32 IPv6, BEP 33 flags, BEP 42 `ip`, BEP 43 `ro` and
//! BEP 51 `sample_infohashes`), sans-IO: parse bencoded datagrams into typed [`Message`]s, and
//! write queries, replies and errors into caller-owned buffers.
//!
//! Receiving: [`parse_message`]. It borrows from the packet, allocates nothing and never panics;
//! a [`KrpcError`] says what is wrong (its text is the message of a 203 reply) and whether the
//! sender may be told at all ([`KrpcError::transaction_id`]): only a well-formed query is
//! answered with an error, anything else gets silence.
//!
//! Sending: [`write_query`], [`write_response`] (with [`ResponseFields`]), [`write_error`], and
//! [`write_compact_node`] / [`write_compact_addr`] to build `nodes`, `nodes6` and `values`.
//! Writers emit canonical bencode (sorted keys); a reply carries the requester's address as
//! BEP 42 `ip` when given.
//!
//! ```
//! use swarmd_proto::krpc::{
//!     parse_message, write_compact_node, write_error, write_query, write_response, Body,
//!     Method, ResponseFields, Want, error_code,
//! };
//! use swarmd_proto::{InfoHash, NodeId};
//!
//! // A client asks for peers of an info hash, IPv4 and IPv6 nodes welcome.
//! let mut packet = Vec::new();
//! let method = Method::GetPeers { info_hash: InfoHash([0xaa; 20]), noseed: false, scrape: false };
//! write_query(&mut packet, b"t1", NodeId([1; 20]), &method, Want { n4: true, n6: true },
//!             false, Some(b"SW\x00\x01"));
//!
//! // The node parses it...
//! let msg = parse_message(&packet).unwrap();
//! let Body::Query(q) = msg.body else { panic!() };
//! assert_eq!(q.method, method);
//! assert!(q.want.n4 && q.want.n6);
//!
//! // ...and answers with a token and the closest nodes it knows.
//! let mut nodes = Vec::new();
//! write_compact_node(&mut nodes, &NodeId([2; 20]), "192.0.2.7:6881".parse().unwrap());
//! let mut reply = Vec::new();
//! let requester = "198.51.100.1:4000".parse().ok();
//! write_response(&mut reply, msg.transaction_id, requester, None, &ResponseFields {
//!     nodes: &nodes, token: Some(b"tok1"), ..ResponseFields::new(NodeId([9; 20]))
//! });
//! let Body::Response(r) = parse_message(&reply).unwrap().body else { panic!() };
//! assert_eq!(r.nodes.iter().next().unwrap().1.port(), 6881);
//! assert_eq!(r.token, Some(&b"tok1"[..]));
//!
//! // A query missing an argument gets a 203 error naming it.
//! let bad = b"d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe";
//! let err = parse_message(bad).unwrap_err();
//! assert_eq!(err.transaction_id, Some(&b"aa"[..]));
//! reply.clear();
//! write_error(&mut reply, b"aa", None, None, error_code::PROTOCOL, &err.to_string());
//! assert_eq!(reply, b"d1:eli203e14:missing targete1:t2:aa1:y1:ee");
//! ```

mod bencode;
mod decode;
mod encode;
mod error;
mod message;

pub use decode::parse_message;
pub use encode::{
    write_compact_addr, write_compact_node, write_error, write_query, write_response,
    ResponseFields,
};
pub use error::{Field, KrpcError, KrpcErrorKind};
pub use message::{
    compact_addr, Body, CompactNodesV4, CompactNodesV6, Message, Method, Query, Response, Values,
    Want,
};

/// Size of one compact IPv4 node: 20-byte id, 4-byte address, 2-byte port.
pub const COMPACT_NODE_V4_LEN: usize = 26;
/// Size of one compact IPv6 node (BEP 32): 20-byte id, 16-byte address, 2-byte port.
pub const COMPACT_NODE_V6_LEN: usize = 38;

/// How deeply lists and dictionaries may nest in a packet, the top-level dictionary counting
/// as one level. KRPC itself needs 3 (message, `r`, `values`); the rest is room for unknown
/// extension keys (such as BEP 44 values), which are skipped. Deeper input is refused, silently.
pub const MAX_DEPTH: usize = 16;
/// The longest transaction id (`t`) accepted. Real clients send 2 to 8 bytes.
pub const MAX_TRANSACTION_ID_LEN: usize = 32;
/// The longest `token` accepted, in queries and replies. Real nodes send 4 to 20 bytes.
pub const MAX_TOKEN_LEN: usize = 64;

// The bencode reader keeps one bit per open container in a u64.
const _: () = assert!(MAX_DEPTH <= 64);

/// The error codes of BEP 5 (`e` = `[code, message]`).
pub mod error_code {
    /// Generic error.
    pub const GENERIC: i64 = 201;
    /// Server error.
    pub const SERVER: i64 = 202;
    /// Protocol error: a malformed packet, an invalid argument or a bad token.
    pub const PROTOCOL: i64 = 203;
    /// Method unknown.
    pub const METHOD_UNKNOWN: i64 = 204;
}
