//! The BEP 10 extension handshake: the bencoded dictionary carried by extended message 0, which
//! names the extensions a peer speaks and the ids it wants them sent under.
//!
//! Parsing is tolerant, because real clients differ in what they send: unknown keys are
//! ignored, and so is a known key whose value has the wrong type or is out of range (a `p` of
//! 0 or above 65535, a `yourip` that is neither 4 nor 16 bytes, an `m` entry whose id is not
//! 0..=255), as if the key were absent. Only a payload that is not a bencoded dictionary is an
//! error. Bytes after the dictionary are ignored.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::bencode::{decode_prefix, DecodeError, Value};

/// A BEP 10 extension handshake. Byte strings borrow from the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtHandshake<'a> {
    /// `m`: extension name -> the extended message id the sender wants to receive it under.
    /// Id 0 means the sender disables the extension (in a handshake sent later on).
    pub m: Vec<(&'a [u8], u8)>,
    /// `p`: the sender's listen port.
    pub p: Option<u16>,
    /// `v`: the sender's client name and version (UTF-8 by convention, not checked).
    pub v: Option<&'a [u8]>,
    /// `yourip`: the receiver's address as the sender sees it.
    pub yourip: Option<IpAddr>,
    /// `ipv4`: the sender's own IPv4 address.
    pub ipv4: Option<Ipv4Addr>,
    /// `ipv6`: the sender's own IPv6 address.
    pub ipv6: Option<Ipv6Addr>,
    /// `reqq`: how many outstanding requests the sender queues without dropping.
    pub reqq: Option<u32>,
    /// `metadata_size` (BEP 9): size of the info dictionary in bytes.
    pub metadata_size: Option<u64>,
    /// `upload_only` (BEP 21): the sender is a partial seed and will download nothing.
    pub upload_only: bool,
}

/// An extension handshake that is not a bencoded dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ExtHandshakeError {
    /// The payload is not valid bencode.
    #[error("extension handshake: {0}")]
    Bencode(#[from] DecodeError),
    /// The payload is bencode, but not a dictionary.
    #[error("extension handshake is not a dictionary")]
    NotADict,
}

impl<'a> ExtHandshake<'a> {
    /// The id under which the sender wants extension `name`, or `None` if it does not speak it
    /// (absent, or disabled with id 0).
    pub fn ext_id(&self, name: &[u8]) -> Option<u8> {
        self.m
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
            .filter(|id| *id != 0)
    }

    /// Parses the payload of extended message 0 (after the extended id byte).
    pub fn parse(payload: &'a [u8]) -> Result<Self, ExtHandshakeError> {
        let (value, _) = decode_prefix(payload)?;
        let Value::Dict(entries) = value else {
            return Err(ExtHandshakeError::NotADict);
        };
        let mut h = Self::default();
        for (key, value) in entries {
            match key {
                b"m" => {
                    if let Value::Dict(m) = value {
                        h.m = m
                            .into_iter()
                            .filter_map(|(name, id)| Some((name, u8::try_from(id.as_int()?).ok()?)))
                            .collect();
                    }
                }
                b"p" => h.p = int(&value).filter(|p| *p != 0),
                b"v" => h.v = value.as_bytes(),
                b"yourip" => h.yourip = value.as_bytes().and_then(ip),
                b"ipv4" => {
                    h.ipv4 = value
                        .as_bytes()
                        .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        .map(Ipv4Addr::from);
                }
                b"ipv6" => {
                    h.ipv6 = value
                        .as_bytes()
                        .and_then(|b| <[u8; 16]>::try_from(b).ok())
                        .map(Ipv6Addr::from);
                }
                b"reqq" => h.reqq = int(&value),
                b"metadata_size" => h.metadata_size = int(&value),
                b"upload_only" => h.upload_only = value.as_int().is_some_and(|i| i != 0),
                _ => {}
            }
        }
        Ok(h)
    }

    /// Appends the handshake as a bencoded dictionary (keys sorted) to `out`: the payload of
    /// extended message 0. `m` is always written, even empty, as BEP 10 requires.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let yourip: Option<Vec<u8>> = self.yourip.map(|ip| match ip {
            IpAddr::V4(ip) => ip.octets().to_vec(),
            IpAddr::V6(ip) => ip.octets().to_vec(),
        });
        let ipv4 = self.ipv4.map(|ip| ip.octets());
        let ipv6 = self.ipv6.map(|ip| ip.octets());
        let m = self
            .m
            .iter()
            .map(|(name, id)| (*name, Value::Int(i64::from(*id))))
            .collect();
        let mut entries: Vec<(&[u8], Value<'_>)> = vec![(b"m", Value::Dict(m))];
        let mut push = |key: &'static [u8], v: Option<Value<'a>>| {
            if let Some(v) = v {
                entries.push((key, v));
            }
        };
        push(b"p", self.p.map(|p| Value::Int(i64::from(p))));
        push(b"v", self.v.map(Value::Bytes));
        push(b"reqq", self.reqq.map(|r| Value::Int(i64::from(r))));
        push(
            b"metadata_size",
            self.metadata_size
                .map(|s| Value::Int(i64::try_from(s).unwrap_or(i64::MAX))),
        );
        push(b"upload_only", self.upload_only.then_some(Value::Int(1)));
        if let Some(ip) = &yourip {
            entries.push((b"yourip", Value::Bytes(ip)));
        }
        if let Some(ip) = &ipv4 {
            entries.push((b"ipv4", Value::Bytes(ip)));
        }
        if let Some(ip) = &ipv6 {
            entries.push((b"ipv6", Value::Bytes(ip)));
        }
        Value::Dict(entries).encode(out);
    }
}

/// A non-negative integer that fits `T`, or `None`.
fn int<T: TryFrom<i64>>(v: &Value<'_>) -> Option<T> {
    v.as_int()
        .filter(|i| *i >= 0)
        .and_then(|i| T::try_from(i).ok())
}

/// A compact address: 4 bytes IPv4, 16 bytes IPv6.
fn ip(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_real_handshake() {
        // As libtorrent 2.0 sends it (abridged), keys unsorted to check tolerance of order.
        let payload = b"d1:md11:ut_metadatai2e6:ut_pexi1ee13:metadata_sizei31235e\
                        1:pi6881e4:reqqi500e1:v16:libtorrent 2.0.96:yourip4:\x7f\x00\x00\x01e";
        let h = ExtHandshake::parse(payload).unwrap();
        assert_eq!(h.ext_id(b"ut_metadata"), Some(2));
        assert_eq!(h.ext_id(b"ut_pex"), Some(1));
        assert_eq!(h.ext_id(b"lt_donthave"), None);
        assert_eq!(h.metadata_size, Some(31235));
        assert_eq!((h.p, h.reqq), (Some(6881), Some(500)));
        assert_eq!(h.v, Some(&b"libtorrent 2.0.9"[..]));
        assert_eq!(h.yourip, Some(IpAddr::from([127, 0, 0, 1])));
    }

    #[test]
    fn round_trip_sorted() {
        let h = ExtHandshake {
            m: vec![(b"ut_metadata", 3), (b"lt_donthave", 0)],
            p: Some(51413),
            v: Some(b"swarmd 0.1"),
            yourip: Some(IpAddr::from([
                0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ])),
            ipv4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ipv6: None,
            reqq: Some(250),
            metadata_size: Some(1 << 20),
            upload_only: true,
        };
        let mut out = Vec::new();
        h.encode(&mut out);
        // Canonical: the decoder's re-encoding (sorted keys) is byte-identical.
        assert_eq!(Value::decode(&out).unwrap().to_bytes(), out);
        let back = ExtHandshake::parse(&out).unwrap();
        // `m` comes back sorted by name.
        assert_eq!(
            back.m,
            vec![(&b"lt_donthave"[..], 0), (&b"ut_metadata"[..], 3)]
        );
        assert_eq!(back.ext_id(b"lt_donthave"), None);
        assert_eq!(
            ExtHandshake {
                m: h.m.clone(),
                ..back
            },
            h
        );
        out.clear();
        ExtHandshake::default().encode(&mut out);
        assert_eq!(out, b"d1:mdee");
    }

    #[test]
    fn tolerates_bad_values_of_known_keys() {
        let payload = b"d1:md1:ai300e1:bi-1e1:c3:str1:di7ee1:pi0e4:reqqi-5e\
                        13:metadata_size3:big1:vi3e6:yourip3:abc4:ipv41:x7:unknowni1ee";
        let h = ExtHandshake::parse(payload).unwrap();
        assert_eq!(h.m, vec![(&b"d"[..], 7)]);
        assert_eq!(
            h,
            ExtHandshake {
                m: h.m.clone(),
                ..Default::default()
            }
        );
        // `m` that is not a dict: no extensions.
        assert_eq!(ExtHandshake::parse(b"d1:mi1ee").unwrap().m, vec![]);
        // Trailing bytes are ignored.
        assert!(ExtHandshake::parse(b"de junk").is_ok());
    }

    #[test]
    fn refuses_what_is_not_a_dict() {
        assert_eq!(
            ExtHandshake::parse(b"li1ee"),
            Err(ExtHandshakeError::NotADict)
        );
        assert!(matches!(
            ExtHandshake::parse(b"d1:m"),
            Err(ExtHandshakeError::Bencode(_))
        ));
        assert!(ExtHandshake::parse(b"").is_err());
    }
}
