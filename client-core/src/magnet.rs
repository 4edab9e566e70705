//! Magnet links in the BEP 9 URI form: `magnet:?xt=urn:btih:<hash>&dn=<name>&tr=<tracker>...`.
//!
//! The hash is read as 40 hex digits or 32 base32 characters and always written as lowercase
//! hex. Values are percent-decoded on parse and percent-encoded (all but RFC 3986 unreserved
//! characters) on output. Unknown parameters are ignored.

use std::fmt;

use swarmd_proto::InfoHash;

/// A parsed BEP 9 magnet link (v1 info hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Magnet {
    /// The `xt=urn:btih:` info hash.
    pub info_hash: InfoHash,
    /// `dn`: the display name.
    pub name: Option<String>,
    /// `tr`: trackers, in link order.
    pub trackers: Vec<String>,
}

/// Why a magnet link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MagnetError {
    /// It does not start with `magnet:?`.
    #[error("not a magnet link (expected `magnet:?`)")]
    NotMagnet,
    /// No `xt=urn:btih:` parameter.
    #[error("no `xt=urn:btih:` parameter")]
    MissingInfoHash,
    /// The btih value is neither 40 hex digits nor 32 base32 characters.
    #[error("info hash is neither 40 hex digits nor 32 base32 characters")]
    BadInfoHash,
    /// A `%` not followed by two hex digits, or a value that is not UTF-8 once decoded.
    #[error("bad percent-encoding in `{0}`")]
    BadEncoding(String),
}

impl Magnet {
    /// Parses a magnet link.
    pub fn parse(s: &str) -> Result<Self, MagnetError> {
        let query = s.strip_prefix("magnet:?").ok_or(MagnetError::NotMagnet)?;
        let mut info_hash = None;
        let mut name = None;
        let mut trackers = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(raw).ok_or_else(|| MagnetError::BadEncoding(key.into()))?;
            match key {
                "xt" if info_hash.is_none() => {
                    if let Some(h) = value.strip_prefix("urn:btih:") {
                        info_hash = Some(parse_btih(h)?);
                    }
                }
                "dn" => name = Some(value),
                "tr" => trackers.push(value),
                _ => {}
            }
        }
        Ok(Self {
            info_hash: info_hash.ok_or(MagnetError::MissingInfoHash)?,
            name,
            trackers,
        })
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "magnet:?xt=urn:btih:{}", self.info_hash)?;
        if let Some(name) = &self.name {
            write!(f, "&dn={}", PercentEncoded(name))?;
        }
        for tr in &self.trackers {
            write!(f, "&tr={}", PercentEncoded(tr))?;
        }
        Ok(())
    }
}

fn parse_btih(s: &str) -> Result<InfoHash, MagnetError> {
    match s.len() {
        40 => s.parse().map_err(|_| MagnetError::BadInfoHash),
        32 => base32(s).map(InfoHash).ok_or(MagnetError::BadInfoHash),
        _ => Err(MagnetError::BadInfoHash),
    }
}

/// RFC 4648 base32 (case-insensitive, no padding) of exactly 20 bytes.
fn base32(s: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    let (mut acc, mut bits, mut n) = (0u64, 0u32, 0usize);
    for c in s.bytes() {
        let v = match c.to_ascii_uppercase() {
            c @ b'A'..=b'Z' => c - b'A',
            c @ b'2'..=b'7' => c - b'2' + 26,
            _ => return None,
        };
        acc = (acc << 5) | u64::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    (n == 20).then_some(out)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

struct PercentEncoded<'a>(&'a str);

impl fmt::Display for PercentEncoded<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0.as_bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn parses_hex_and_base32() {
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=a%20b+c&tr=udp%3A%2F%2Ft.example%3A80&tr=http://x/a?b"
        ))
        .unwrap();
        assert_eq!(m.info_hash.to_string(), HEX);
        assert_eq!(m.name.as_deref(), Some("a b+c"));
        assert_eq!(m.trackers, ["udp://t.example:80", "http://x/a?b"]);
        let b32 = Magnet::parse("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK").unwrap();
        assert_eq!(b32.info_hash.to_string(), HEX);
        let lower = Magnet::parse("magnet:?xt=urn:btih:yex6dqdlxisuvhoj6um3gnnkpqjwpkek").unwrap();
        assert_eq!(lower.info_hash, b32.info_hash);
    }

    #[test]
    fn round_trips() {
        let m = Magnet {
            info_hash: HEX.parse().unwrap(),
            name: Some("dir/ä &=x".into()),
            trackers: vec!["http://t/announce?k=1&x".into(), "udp://u:1".into()],
        };
        let s = m.to_string();
        assert!(s.starts_with(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=dir%2F%C3%A4%20%26%3Dx"
        )));
        assert_eq!(Magnet::parse(&s).unwrap(), m);
    }

    #[test]
    fn refuses_bad_links() {
        assert_eq!(Magnet::parse("http://x"), Err(MagnetError::NotMagnet));
        assert_eq!(
            Magnet::parse("magnet:?dn=x"),
            Err(MagnetError::MissingInfoHash)
        );
        assert_eq!(
            Magnet::parse("magnet:?xt=urn:btih:abc"),
            Err(MagnetError::BadInfoHash)
        );
        assert_eq!(
            Magnet::parse("magnet:?xt=urn:btih:0000000000000000000000000000000000000000000g"),
            Err(MagnetError::BadInfoHash)
        );
        assert_eq!(
            Magnet::parse("magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKE1"),
            Err(MagnetError::BadInfoHash)
        );
        assert_eq!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&dn=%4")),
            Err(MagnetError::BadEncoding("dn".into()))
        );
    }
}
