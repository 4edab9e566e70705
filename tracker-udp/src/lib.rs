//! The UDP BitTorrent tracker of swarmd (BEP 15, with BEP 41 URL data).
//!
//! [`UdpTracker`] is the sans-socket core: [`UdpTracker::handle`] takes one datagram and its
//! source and writes the reply, if any. Packets are parsed and replies written by
//! `swarmd_proto::udp`; swarms live in the shared `swarmd-swarm` registry, so peers announced
//! here are seen over HTTP and the DHT too. [`UdpServer`] runs it on `SO_REUSEPORT` sockets, one
//! blocking OS thread per socket (no async runtime: the kernel's UDP path is the floor, and a
//! thread per socket adds nothing above it), until a shutdown token fires.
//!
//! # Behaviour
//!
//! * **Connection ids** are stateless: a 16-bit issue time and a 48-bit SipHash-2-4 MAC of
//!   (client IP, client port, issue time) under a secret key. They are valid for
//!   [`UdpConfig::connection_id_lifetime`] seconds (default 600), ids from the future are
//!   refused, and verification costs one MAC and a branch-free comparison.
//! * **Silence** (no reply at all) for anything not authenticated by a valid connection id:
//!   packets under 16 bytes, garbage, unknown actions, a connect without the magic, and
//!   announces or scrapes with a bad, expired, future or foreign id. The only unauthenticated
//!   reply is the 16-byte connect reply to a 16-byte connect request, so the tracker never
//!   amplifies a spoofed packet.
//! * **Error replies** (action 3) for authenticated requests only: malformed announces (e.g. an
//!   unknown event), access-policy denials (the policy's reason), and a full registry.
//! * **Announce**: the peer's address is the datagram's source (IPv4-mapped IPv6 counted as
//!   IPv4), or the announce's IP field if [`UdpConfig::allow_ip_param`] and the source is IPv4.
//!   The reply carries peers of that family: 6 bytes each over IPv4, 18 over IPv6. `num_want`
//!   <= 0 means [`UdpConfig::default_numwant`]; peers are capped by
//!   [`UdpConfig::max_numwant`] and by [`UdpConfig::max_reply_bytes`].
//! * **BEP 41**: the URL data's path is routed like an HTTP tracker path (`/KEY/announce`,
//!   `/announce/KEY`); the key is the passkey handed to the access policy. Its query string is
//!   ignored. URL data that is absent or does not route (`/announce.php`, `/KEY`) gives no
//!   passkey: the policy decides (a public tracker serves it, a private one refuses it).
//! * **Scrape**: answered in request order for the first [`UdpConfig::max_scrape_hashes`]
//!   hashes (at most 74; extra hashes are ignored, not an error). Unknown and policy-denied
//!   hashes both get zeros, so a scrape never confirms a hidden torrent. Scrapes carry no URL
//!   data, hence no passkey.
//!
//! # Metrics
//!
//! `swarmd_requests_total{protocol="udp", action="connect|announce|scrape|other",
//! result="ok|bad_request|denied|limit|bad_connection_id"}`,
//! `swarmd_request_duration_seconds{protocol="udp", action}` (one request in 64 is timed),
//! `swarmd_bytes_received_total{protocol="udp"}`, `swarmd_bytes_sent_total{protocol="udp"}`,
//! `swarmd_dropped_packets_total{protocol="udp", reason="too_short|too_long|malformed|
//! bad_connection_id|send_error"}`. Workers count in plain integers and publish them at least
//! once a second and after 100 ms without packets: under sustained load counters may lag by up
//! to a second.
//!
//! # Batching
//!
//! [`UdpConfig::recv_batch`] > 1 (32 by default) makes workers use `recvmmsg`/`sendmmsg`
//! (Linux): one receive call takes every queued datagram up to the batch, one send call returns
//! all their replies. On a saturated loopback flood it answered about 10% more requests per
//! server CPU-second than plain `recv_from`/`send_to` (`recv_batch = 1`); figures and the command
//! to reproduce them are in the crate's README.

mod config;
mod cookie;
mod handler;
mod metrics;
#[cfg(target_os = "linux")]
mod mmsg;
mod server;

#[cfg(test)]
mod tests;

pub use config::{ConfigError, UdpConfig};
pub use handler::UdpTracker;
pub use server::{is_family_unavailable, UdpServer};
