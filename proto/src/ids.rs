//! Fixed-size identifiers shared by every protocol: info hashes, peer ids, announce events.

use std::fmt;
use std::str::FromStr;

/// Error from parsing a hex identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 40 hexadecimal digits")]
pub struct ParseIdError;

macro_rules! id20 {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; 20]);

        impl $name {
            /// The raw 20 bytes.
            pub const fn as_bytes(&self) -> &[u8; 20] {
                &self.0
            }

            /// Builds the id from a slice, if it is exactly 20 bytes long.
            pub fn from_slice(bytes: &[u8]) -> Option<Self> {
                <[u8; 20]>::try_from(bytes).ok().map(Self)
            }

            /// Writes the id as 40 lowercase hex digits into `out`.
            pub fn write_hex(&self, out: &mut [u8; 40]) {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                for (i, b) in self.0.iter().enumerate() {
                    out[2 * i] = HEX[usize::from(b >> 4)];
                    out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
                }
            }
        }

        impl From<[u8; 20]> for $name {
            fn from(bytes: [u8; 20]) -> Self {
                Self(bytes)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut hex = [0u8; 40];
                self.write_hex(&mut hex);
                // Hex digits are ASCII, so this never fails.
                f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let s = s.as_bytes();
                if s.len() != 40 {
                    return Err(ParseIdError);
                }
                let mut out = [0u8; 20];
                for (i, pair) in s.chunks_exact(2).enumerate() {
                    let hi = hex_val(pair[0]).ok_or(ParseIdError)?;
                    let lo = hex_val(pair[1]).ok_or(ParseIdError)?;
                    out[i] = (hi << 4) | lo;
                }
                Ok(Self(out))
            }
        }
    };
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

id20!(
    /// A torrent's info hash (BEP 3): the SHA-1 of its bencoded info dictionary, or, for generic
    /// peer discovery, the SHA-1 of any name.
    InfoHash
);
id20!(
    /// A peer's self-chosen 20-byte id (BEP 3).
    PeerId
);
id20!(
    /// A DHT node's 160-bit id (BEP 5), ideally derived from its address (BEP 42).
    NodeId
);

impl NodeId {
    /// The Kademlia XOR distance to `other`, as a big-endian 160-bit number.
    pub fn distance(&self, other: &NodeId) -> [u8; 20] {
        let mut d = [0u8; 20];
        for (i, b) in d.iter_mut().enumerate() {
            *b = self.0[i] ^ other.0[i];
        }
        d
    }

    /// How many leading bits `self` and `other` share (160 if equal).
    pub fn common_prefix_len(&self, other: &NodeId) -> u32 {
        for i in 0..20 {
            let x = self.0[i] ^ other.0[i];
            if x != 0 {
                return i as u32 * 8 + x.leading_zeros();
            }
        }
        160
    }
}

impl From<InfoHash> for NodeId {
    fn from(ih: InfoHash) -> Self {
        NodeId(ih.0)
    }
}

/// The `event` of an announce (BEP 3, BEP 15, BEP 21).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Event {
    /// A regular, periodic announce (no event, or `event=empty`).
    #[default]
    None,
    /// The first announce of a download.
    Started,
    /// The download just finished; counted once per peer in `downloaded`.
    Completed,
    /// The peer leaves the swarm: it is removed and gets no peers.
    Stopped,
    /// BEP 21: the peer is a partial seed (it wants no more pieces but is not complete).
    Paused,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let ih = InfoHash([0xab; 20]);
        let s = ih.to_string();
        assert_eq!(s, "abababababababababababababababababababab");
        assert_eq!(s.parse::<InfoHash>().unwrap(), ih);
        assert_eq!("AB".repeat(20).parse::<InfoHash>().unwrap(), ih);
        assert!("zz".repeat(20).parse::<InfoHash>().is_err());
        assert!("ab".parse::<InfoHash>().is_err());
    }

    #[test]
    fn node_id_distance_and_prefix() {
        let a = NodeId([0; 20]);
        let mut b = NodeId([0; 20]);
        assert_eq!(a.common_prefix_len(&b), 160);
        b.0[0] = 0b0001_0000;
        assert_eq!(a.common_prefix_len(&b), 3);
        b.0 = [0; 20];
        b.0[19] = 1;
        assert_eq!(a.common_prefix_len(&b), 159);
        assert_eq!(a.distance(&b)[19], 1);
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(PeerId::from_slice(&[0; 19]).is_none());
        assert_eq!(PeerId::from_slice(&[7; 20]), Some(PeerId([7; 20])));
    }
}
