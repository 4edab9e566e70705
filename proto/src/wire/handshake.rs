//! The BEP 3 handshake: 19, `"BitTorrent protocol"`, 8 reserved bytes (feature bits), the info
//! hash and the peer id — 68 bytes, the first thing each side sends.

use std::fmt;

use super::WireError;
use crate::{InfoHash, PeerId};

/// The protocol string of a BitTorrent handshake, preceded on the wire by its length (19).
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Size of a handshake: 1 + 19 + 8 + 20 + 20 bytes.
pub const HANDSHAKE_LEN: usize = 68;

/// The first 20 bytes of every handshake: the protocol string's length, then the string.
const PREFIX: [u8; 20] = {
    let mut p = [19; 20];
    let mut i = 0;
    while i < PROTOCOL.len() {
        p[i + 1] = PROTOCOL[i];
        i += 1;
    }
    p
};

/// The 8 reserved bytes of a handshake: one bit per protocol extension. The bits this crate
/// knows have accessors; every other bit is kept as received.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// BEP 10 extension protocol: byte 5, `0x10`.
    pub const EXTENSIONS: (usize, u8) = (5, 0x10);
    /// BEP 6 fast extension: byte 7, `0x04`.
    pub const FAST: (usize, u8) = (7, 0x04);
    /// BEP 5 DHT (the peer accepts a `port` message): byte 7, `0x01`.
    pub const DHT: (usize, u8) = (7, 0x01);

    /// Whether the bit `(byte, mask)` is set.
    pub const fn has(&self, (byte, mask): (usize, u8)) -> bool {
        self.0[byte] & mask != 0
    }

    /// Sets or clears the bit `(byte, mask)`, leaving every other bit alone.
    #[must_use]
    pub const fn with(mut self, (byte, mask): (usize, u8), on: bool) -> Self {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
        self
    }

    /// Whether the sender speaks the BEP 10 extension protocol.
    pub const fn extensions(&self) -> bool {
        self.has(Self::EXTENSIONS)
    }

    /// Whether the sender speaks the BEP 6 fast extension.
    pub const fn fast(&self) -> bool {
        self.has(Self::FAST)
    }

    /// Whether the sender runs a BEP 5 DHT node.
    pub const fn dht(&self) -> bool {
        self.has(Self::DHT)
    }

    /// With the BEP 10 bit set or cleared.
    #[must_use]
    pub const fn with_extensions(self, on: bool) -> Self {
        self.with(Self::EXTENSIONS, on)
    }

    /// With the BEP 6 bit set or cleared.
    #[must_use]
    pub const fn with_fast(self, on: bool) -> Self {
        self.with(Self::FAST, on)
    }

    /// With the BEP 5 bit set or cleared.
    #[must_use]
    pub const fn with_dht(self, on: bool) -> Self {
        self.with(Self::DHT, on)
    }
}

impl fmt::Debug for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reserved({:016x}", u64::from_be_bytes(self.0))?;
        for (on, name) in [
            (self.extensions(), "ext"),
            (self.fast(), "fast"),
            (self.dht(), "dht"),
        ] {
            if on {
                write!(f, " {name}")?;
            }
        }
        f.write_str(")")
    }
}

/// A handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handshake {
    /// Feature bits.
    pub reserved: Reserved,
    /// The torrent the connection is about.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl Handshake {
    /// Appends the 68-byte handshake to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(HANDSHAKE_LEN);
        out.extend_from_slice(&PREFIX);
        out.extend_from_slice(&self.reserved.0);
        out.extend_from_slice(&self.info_hash.0);
        out.extend_from_slice(&self.peer_id.0);
    }

    /// Parses a handshake at the start of `buf`. `Ok(None)` while fewer than
    /// [`HANDSHAKE_LEN`] bytes are in, but a wrong protocol prefix is refused as soon as its
    /// first differing byte arrives. Bytes after the handshake are the first messages: skip
    /// [`HANDSHAKE_LEN`] bytes and hand the rest to [`decode`](super::decode).
    pub fn decode(buf: &[u8]) -> Result<Option<Self>, WireError> {
        let n = buf.len().min(PREFIX.len());
        if buf[..n] != PREFIX[..n] {
            return Err(WireError::NotBitTorrent);
        }
        let Some(head) = buf.first_chunk::<HANDSHAKE_LEN>() else {
            return Ok(None);
        };
        let field = |start: usize| -> [u8; 20] {
            let mut b = [0; 20];
            b.copy_from_slice(&head[start..start + 20]);
            b
        };
        let mut reserved = [0; 8];
        reserved.copy_from_slice(&head[20..28]);
        Ok(Some(Self {
            reserved: Reserved(reserved),
            info_hash: InfoHash(field(28)),
            peer_id: PeerId(field(48)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: Reserved([0x80, 0, 0, 0, 0, 0x10, 0, 0x05]),
            info_hash: InfoHash([0xaa; 20]),
            peer_id: PeerId(*b"-TR3000-abcdefghijkl"),
        }
    }

    #[test]
    fn layout() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        assert_eq!(out.len(), HANDSHAKE_LEN);
        assert_eq!(out[0], 19);
        assert_eq!(&out[1..20], PROTOCOL);
        assert_eq!(out[20..28], [0x80, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert_eq!(out[28..48], [0xaa; 20]);
        assert_eq!(&out[48..], b"-TR3000-abcdefghijkl");
        assert_eq!(Handshake::decode(&out), Ok(Some(sample())));
        // Trailing bytes (the first messages) are not the handshake's business.
        out.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(Handshake::decode(&out), Ok(Some(sample())));
    }

    #[test]
    fn waits_for_68_bytes_and_refuses_early() {
        let mut out = Vec::new();
        sample().encode(&mut out);
        for n in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::decode(&out[..n]), Ok(None), "{n}");
        }
        assert_eq!(
            Handshake::decode(b"GET / HTTP/1.1"),
            Err(WireError::NotBitTorrent)
        );
        assert_eq!(Handshake::decode(&[18]), Err(WireError::NotBitTorrent));
        assert_eq!(
            Handshake::decode(b"\x13BitTorrent pro_"),
            Err(WireError::NotBitTorrent)
        );
    }

    #[test]
    fn reserved_bits() {
        let r = sample().reserved;
        assert!(r.extensions() && r.fast() && r.dht());
        let none = Reserved::default();
        assert!(!none.extensions() && !none.fast() && !none.dht());
        let ours = none.with_extensions(true).with_fast(true).with_dht(true);
        assert_eq!(ours.0, [0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        // Clearing a bit keeps unknown bits as they were.
        let cleared = r.with_fast(false).with_dht(false).with_extensions(false);
        assert_eq!(cleared.0, [0x80, 0, 0, 0, 0, 0, 0, 0]);
        assert!(cleared.has((0, 0x80)));
        assert_eq!(format!("{r:?}"), "Reserved(8000000000100005 ext fast dht)");
    }
}
