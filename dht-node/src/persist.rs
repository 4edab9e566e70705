//! The node-table file: our id and a list of nodes, saved on shutdown and loaded on start.
//!
//! Format (version 1, all integers big endian):
//!
//! ```text
//! magic    8 bytes  "SWDHTNT\0"
//! version  u32      1
//! own id   20 bytes
//! n4       u32      IPv4 nodes
//! n6       u32      IPv6 nodes
//! n4 x     26 bytes id, IPv4 address, port
//! n6 x     38 bytes id, IPv6 address, port
//! check    u64      SipHash-2-4 (key 0) of every byte before it
//! ```
//!
//! A file whose length does not match its counts, whose checksum fails, or of another version
//! is refused with a [`PersistError`]; the caller logs it and starts empty. Saving writes a
//! temporary file beside the target and renames it over, so a crash never leaves half a file.

use std::hash::Hasher;
use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use siphasher::sip::SipHasher24;
use swarmd_proto::NodeId;

use crate::NodeInfo;

const MAGIC: &[u8; 8] = b"SWDHTNT\0";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 8 + 4 + 20 + 4 + 4;
const V4_LEN: usize = 26;
const V6_LEN: usize = 38;
const CHECK_LEN: usize = 8;
/// Files larger than this are refused unread (about 200 million IPv4 nodes).
const MAX_FILE: u64 = 8 << 30;

/// What a node-table file holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The node id in use when the file was written.
    pub own_id: NodeId,
    /// The saved nodes, IPv4 and IPv6.
    pub nodes: Vec<NodeInfo>,
}

/// Why a node-table file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("node table file: {0}")]
    Io(#[from] io::Error),
    /// Not a node-table file.
    #[error("node table file: bad magic")]
    BadMagic,
    /// A version this build does not read.
    #[error("node table file: unsupported version {0}")]
    Version(u32),
    /// Its length does not match its counts (truncated or padded).
    #[error(
        "node table file: length {got} does not match the {expected} bytes its header implies"
    )]
    Length {
        /// Bytes found.
        got: usize,
        /// Bytes the header implies.
        expected: usize,
    },
    /// The checksum does not match: the content is corrupt.
    #[error("node table file: checksum mismatch")]
    Checksum,
}

fn checksum(bytes: &[u8]) -> u64 {
    let mut h = SipHasher24::new_with_keys(0, 0);
    h.write(bytes);
    h.finish()
}

/// Encodes a snapshot.
pub fn encode(s: &Snapshot) -> Vec<u8> {
    let v4: Vec<&NodeInfo> = s.nodes.iter().filter(|n| n.addr.is_ipv4()).collect();
    let v6: Vec<&NodeInfo> = s.nodes.iter().filter(|n| n.addr.is_ipv6()).collect();
    let mut out =
        Vec::with_capacity(HEADER_LEN + V4_LEN * v4.len() + V6_LEN * v6.len() + CHECK_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&s.own_id.0);
    out.extend_from_slice(&(v4.len() as u32).to_be_bytes());
    out.extend_from_slice(&(v6.len() as u32).to_be_bytes());
    for n in v4.into_iter().chain(v6) {
        out.extend_from_slice(&n.id.0);
        match n.addr {
            SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
            SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
        }
        out.extend_from_slice(&n.addr.port().to_be_bytes());
    }
    let c = checksum(&out);
    out.extend_from_slice(&c.to_be_bytes());
    out
}

fn be32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

/// Decodes a snapshot, checking magic, version, length and checksum.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, PersistError> {
    if bytes.len() < HEADER_LEN + CHECK_LEN || &bytes[..8] != MAGIC {
        return Err(if bytes.len() >= 8 && &bytes[..8] != MAGIC {
            PersistError::BadMagic
        } else {
            PersistError::Length {
                got: bytes.len(),
                expected: HEADER_LEN + CHECK_LEN,
            }
        });
    }
    let version = be32(&bytes[8..]);
    if version != VERSION {
        return Err(PersistError::Version(version));
    }
    let n4 = be32(&bytes[32..]) as usize;
    let n6 = be32(&bytes[36..]) as usize;
    let expected = n4
        .checked_mul(V4_LEN)
        .zip(n6.checked_mul(V6_LEN))
        .and_then(|(a, b)| a.checked_add(b))
        .and_then(|e| e.checked_add(HEADER_LEN + CHECK_LEN))
        .unwrap_or(usize::MAX);
    if bytes.len() != expected {
        return Err(PersistError::Length {
            got: bytes.len(),
            expected,
        });
    }
    let (body, check) = bytes.split_at(bytes.len() - CHECK_LEN);
    let mut c = [0u8; 8];
    c.copy_from_slice(check);
    if checksum(body) != u64::from_be_bytes(c) {
        return Err(PersistError::Checksum);
    }
    let mut own = [0u8; 20];
    own.copy_from_slice(&body[12..32]);
    let mut nodes = Vec::with_capacity(n4 + n6);
    let records = &body[HEADER_LEN..];
    let (r4, r6) = records.split_at(n4 * V4_LEN);
    for r in r4.chunks_exact(V4_LEN) {
        let ip = Ipv4Addr::new(r[20], r[21], r[22], r[23]);
        nodes.push(node(&r[..20], ip.into(), &r[24..26]));
    }
    for r in r6.chunks_exact(V6_LEN) {
        let mut ip = [0u8; 16];
        ip.copy_from_slice(&r[20..36]);
        nodes.push(node(&r[..20], Ipv6Addr::from(ip).into(), &r[36..38]));
    }
    Ok(Snapshot {
        own_id: NodeId(own),
        nodes,
    })
}

fn node(id: &[u8], ip: std::net::IpAddr, port: &[u8]) -> NodeInfo {
    let mut i = [0u8; 20];
    i.copy_from_slice(id);
    NodeInfo {
        id: NodeId(i),
        addr: SocketAddr::new(ip, u16::from_be_bytes([port[0], port[1]])),
    }
}

/// Reads and decodes the file at `path`.
pub fn load(path: &Path) -> Result<Snapshot, PersistError> {
    let len = std::fs::metadata(path)?.len();
    if len > MAX_FILE {
        return Err(PersistError::Length {
            got: usize::try_from(len).unwrap_or(usize::MAX),
            expected: usize::try_from(MAX_FILE).unwrap_or(usize::MAX),
        });
    }
    decode(&std::fs::read(path)?)
}

/// Encodes `s` and writes it to `path` through a temporary file renamed over it.
pub fn save(path: &Path, s: &Snapshot) -> Result<(), PersistError> {
    let bytes = encode(s);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Snapshot {
        Snapshot {
            own_id: NodeId([7; 20]),
            nodes: vec![
                NodeInfo {
                    id: NodeId([1; 20]),
                    addr: "1.2.3.4:5".parse().unwrap(),
                },
                NodeInfo {
                    id: NodeId([2; 20]),
                    addr: "[2001:db8::1]:6881".parse().unwrap(),
                },
                NodeInfo {
                    id: NodeId([3; 20]),
                    addr: "9.8.7.6:65535".parse().unwrap(),
                },
            ],
        }
    }

    #[test]
    fn round_trip_through_a_file() {
        let dir = std::env::temp_dir().join(format!("swarmd-dht-persist-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.bin");
        let s = sample();
        save(&path, &s).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back.own_id, s.own_id);
        // IPv4 first, then IPv6.
        let mut want = s.nodes.clone();
        want.sort_by_key(|n| n.addr.is_ipv6());
        assert_eq!(back.nodes, want);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            HEADER_LEN + 2 * V4_LEN + V6_LEN + CHECK_LEN
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_files_are_refused() {
        let good = encode(&sample());
        assert!(decode(&good).is_ok());
        // Every single-byte flip is caught.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {i} accepted");
        }
        // Every truncation and an extension are caught.
        for n in 0..good.len() {
            assert!(decode(&good[..n]).is_err(), "truncation to {n} accepted");
        }
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(decode(&long), Err(PersistError::Length { .. })));
        let mut v2 = good.clone();
        v2[11] = 2;
        assert!(matches!(decode(&v2), Err(PersistError::Version(2))));
        assert!(matches!(
            decode(b"garbage garbage garbage garbage garbage garbage garbage"),
            Err(PersistError::BadMagic)
        ));
        // Huge counts do not overflow or allocate.
        let mut huge = good.clone();
        huge[32..36].copy_from_slice(&u32::MAX.to_be_bytes());
        huge[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&huge), Err(PersistError::Length { .. })));
        assert!(matches!(
            load(Path::new("/nonexistent/swarmd/nodes.bin")),
            Err(PersistError::Io(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
