//! Request side of the HTTP tracker: parsing `/announce` and `/scrape` query strings.
//!
//! The query is the raw bytes after `?` (as a server framework hands them over, never
//! pre-decoded). Parameters are split on `&` only (`;` is an ordinary byte), each at its first
//! `=`; parameter names are matched literally, values are percent-decoded where they are used.
//! Announce parsing allocates nothing: ids decode into stack arrays and numbers are read while
//! decoding. No input, however malformed, makes these functions panic.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::{Event, InfoHash, PeerId};

/// Why a query was rejected. The `Display` text is meant to be sent to the client verbatim as
/// the `failure reason`, so every message is short and names the offending parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A required parameter (`info_hash`, `peer_id`, `port` or `left`) is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// An id parameter did not decode to exactly 20 bytes.
    #[error("{param} must be 20 bytes (got {got})")]
    WrongLength {
        /// The parameter name.
        param: &'static str,
        /// How many bytes it decoded to.
        got: usize,
    },
    /// A `%` not followed by two hexadecimal digits.
    #[error("malformed percent-encoding in {0}")]
    MalformedEscape(&'static str),
    /// A number that is empty, has a non-digit, or overflows; or a port above 65535.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// `port=0`.
    #[error("port must not be 0")]
    PortZero,
    /// An `event` other than empty, `empty`, `started`, `completed`, `stopped` or `paused`.
    #[error("unknown event \"{0}\"")]
    UnknownEvent(Snippet),
    /// A parameter that an announce may carry once appeared again.
    #[error("{0} given more than once")]
    Duplicate(&'static str),
    /// A scrape named more info hashes than allowed (the limit is carried).
    #[error("too many info_hash values (at most {0})")]
    TooManyHashes(usize),
}

/// A short, bounded copy of a rejected value (at most [`Snippet::CAPACITY`] decoded bytes), kept
/// inline so that building an error never allocates. Displays with non-printable bytes escaped,
/// and `...` appended when the value was longer.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Snippet {
    buf: [u8; Snippet::CAPACITY],
    len: u8,
    truncated: bool,
}

impl Snippet {
    /// How many bytes of the value are kept.
    pub const CAPACITY: usize = 16;

    /// Keeps the first [`Snippet::CAPACITY`] bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut s = Self {
            buf: [0; Self::CAPACITY],
            len: 0,
            truncated: false,
        };
        for &b in bytes {
            s.push(b);
        }
        s
    }

    fn push(&mut self, b: u8) {
        match self.buf.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = b;
                self.len += 1;
            }
            None => self.truncated = true,
        }
    }

    /// The bytes kept.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// Whether the value was longer than what is kept.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl fmt::Display for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_bytes().escape_ascii())?;
        if self.truncated {
            f.write_str("...")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Snippet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snippet(\"{self}\")")
    }
}

/// A parsed announce query. Borrowed fields point into the query bytes, still percent-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnounceQuery<'a> {
    /// `info_hash`: required, percent-decoded to exactly 20 bytes.
    pub info_hash: InfoHash,
    /// `peer_id`: required, percent-decoded to exactly 20 bytes.
    pub peer_id: PeerId,
    /// `port`: required, 1..=65535.
    pub port: u16,
    /// `uploaded`: bytes uploaded so far (default 0).
    pub uploaded: u64,
    /// `downloaded`: bytes downloaded so far (default 0).
    pub downloaded: u64,
    /// `left`: required, bytes still missing (0 for a seeder).
    pub left: u64,
    /// `event`: absent, empty or `empty` give [`Event::None`].
    pub event: Event,
    /// `compact`: true unless `compact=0` (BEP 23).
    pub compact: bool,
    /// `no_peer_id`: true when present with any value other than `0`.
    pub no_peer_id: bool,
    /// `numwant`: `None` when absent or <= 0 ("use the default"); huge values saturate to
    /// `u32::MAX`, so the caller caps it.
    pub numwant: Option<u32>,
    /// `key`: the raw value as sent (still percent-encoded).
    pub key: Option<&'a [u8]>,
    /// `trackerid`: the raw value as sent (still percent-encoded).
    pub tracker_id: Option<&'a [u8]>,
    /// `ip`: set only when it decodes to an IPv4 or IPv6 literal (IPv6 maybe in brackets);
    /// hostnames and garbage give `None`. Whether to trust it is the caller's policy.
    pub ip: Option<IpAddr>,
}

/// Splits a query into `(name, value)` pairs: on `&`, each at its first `=`; empty segments and
/// segments without `=` are skipped. One pass over names, one over values.
fn params(query: &[u8]) -> Params<'_> {
    Params { rest: query }
}

struct Params<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let i = self.rest.iter().position(|&b| b == b'=' || b == b'&')?;
            let (name, after) = (&self.rest[..i], &self.rest[i + 1..]);
            if self.rest[i] == b'&' {
                // A segment without `=`: skip it.
                self.rest = after;
                continue;
            }
            let end = after.iter().position(|&b| b == b'&').unwrap_or(after.len());
            self.rest = after.get(end + 1..).unwrap_or_default();
            return Some((name, &after[..end]));
        }
    }
}

/// Value of each byte as a hex digit, or `0xff` for a non-hex byte.
const HEX_VAL: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Percent-decodes `raw`, handing each decoded byte to `sink`. Fails on a `%` that is not
/// followed by two hex digits (the bytes before it have been handed over already).
fn decode_each(raw: &[u8], mut sink: impl FnMut(u8)) -> Result<(), ()> {
    let mut rest = raw;
    loop {
        rest = match rest {
            [] => return Ok(()),
            [b'%', hi, lo, tail @ ..] => {
                let (hi, lo) = (HEX_VAL[usize::from(*hi)], HEX_VAL[usize::from(*lo)]);
                if (hi | lo) & 0xf0 != 0 {
                    return Err(());
                }
                sink((hi << 4) | lo);
                tail
            }
            [b'%', ..] => return Err(()),
            [b, tail @ ..] => {
                sink(*b);
                tail
            }
        };
    }
}

/// Decodes `raw` into a fixed buffer, returning the full decoded length (which may exceed `N`:
/// only the first `N` bytes are stored).
fn decode_array<const N: usize>(raw: &[u8], buf: &mut [u8; N]) -> Result<usize, ()> {
    let mut n = 0usize;
    decode_each(raw, |b| {
        if let Some(slot) = buf.get_mut(n) {
            *slot = b;
        }
        n += 1;
    })?;
    Ok(n)
}

fn decode_id(raw: &[u8], param: &'static str) -> Result<[u8; 20], QueryError> {
    let mut buf = [0u8; 20];
    let got = decode_array(raw, &mut buf).map_err(|()| QueryError::MalformedEscape(param))?;
    if got == 20 {
        Ok(buf)
    } else {
        Err(QueryError::WrongLength { param, got })
    }
}

/// Plain unsigned decimal (after percent-decoding); empty, non-digit or overflow is invalid.
fn decode_u64(raw: &[u8], param: &'static str) -> Result<u64, QueryError> {
    let mut acc = Some(0u64);
    let mut digits = 0usize;
    decode_each(raw, |b| {
        digits += 1;
        acc = acc.and_then(|a| {
            if b.is_ascii_digit() {
                a.checked_mul(10)?.checked_add(u64::from(b - b'0'))
            } else {
                None
            }
        });
    })
    .map_err(|()| QueryError::MalformedEscape(param))?;
    match acc {
        Some(v) if digits > 0 => Ok(v),
        _ => Err(QueryError::Invalid(param)),
    }
}

fn decode_port(raw: &[u8]) -> Result<u16, QueryError> {
    match decode_u64(raw, "port")? {
        0 => Err(QueryError::PortZero),
        p => u16::try_from(p).map_err(|_| QueryError::Invalid("port")),
    }
}

/// Signed decimal with an optional leading `-` or `+`; <= 0 is `None`, huge saturates.
fn decode_numwant(raw: &[u8]) -> Result<Option<u32>, QueryError> {
    const P: &str = "numwant";
    let (mut first, mut negative, mut ok) = (true, false, true);
    let (mut digits, mut acc) = (0usize, 0u32);
    decode_each(raw, |b| {
        if first && (b == b'-' || b == b'+') {
            negative = b == b'-';
        } else if b.is_ascii_digit() {
            digits += 1;
            acc = acc.saturating_mul(10).saturating_add(u32::from(b - b'0'));
        } else {
            ok = false;
        }
        first = false;
    })
    .map_err(|()| QueryError::MalformedEscape(P))?;
    if !ok || digits == 0 {
        Err(QueryError::Invalid(P))
    } else if negative || acc == 0 {
        Ok(None)
    } else {
        Ok(Some(acc))
    }
}

fn decode_event(raw: &[u8]) -> Result<Event, QueryError> {
    let mut buf = [0u8; Snippet::CAPACITY];
    let n = decode_array(raw, &mut buf).map_err(|()| QueryError::MalformedEscape("event"))?;
    let value = &buf[..n.min(buf.len())];
    match (value, n <= buf.len()) {
        (b"" | b"empty", true) => Ok(Event::None),
        (b"started", true) => Ok(Event::Started),
        (b"completed", true) => Ok(Event::Completed),
        (b"stopped", true) => Ok(Event::Stopped),
        (b"paused", true) => Ok(Event::Paused),
        (_, fits) => {
            let mut s = Snippet::new(value);
            s.truncated = !fits;
            Err(QueryError::UnknownEvent(s))
        }
    }
}

/// A flag: true unless the value decodes to exactly `0`.
fn decode_flag(raw: &[u8], param: &'static str) -> Result<bool, QueryError> {
    let mut buf = [0u8; 1];
    let n = decode_array(raw, &mut buf).map_err(|()| QueryError::MalformedEscape(param))?;
    Ok(!(n == 1 && buf[0] == b'0'))
}

/// An IP literal, or `None` for anything else (hostnames, garbage, bad escapes).
fn decode_ip(raw: &[u8]) -> Option<IpAddr> {
    // Longest textual IPv6 is 45 bytes; 2 more for brackets.
    let mut buf = [0u8; 47];
    let n = decode_array(raw, &mut buf).ok()?;
    let text = std::str::from_utf8(buf.get(..n)?).ok()?;
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(inner) => inner.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        None => text.parse().ok(),
    }
}

/// The announce parameters we read; each may appear once.
#[derive(Clone, Copy)]
enum Param {
    InfoHash,
    PeerId,
    Port,
    Uploaded,
    Downloaded,
    Left,
    Event,
    Compact,
    NoPeerId,
    Numwant,
    Key,
    TrackerId,
    Ip,
}

impl Param {
    fn from_name(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"info_hash" => Self::InfoHash,
            b"peer_id" => Self::PeerId,
            b"port" => Self::Port,
            b"uploaded" => Self::Uploaded,
            b"downloaded" => Self::Downloaded,
            b"left" => Self::Left,
            b"event" => Self::Event,
            b"compact" => Self::Compact,
            b"no_peer_id" => Self::NoPeerId,
            b"numwant" => Self::Numwant,
            b"key" => Self::Key,
            b"trackerid" => Self::TrackerId,
            b"ip" => Self::Ip,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::InfoHash => "info_hash",
            Self::PeerId => "peer_id",
            Self::Port => "port",
            Self::Uploaded => "uploaded",
            Self::Downloaded => "downloaded",
            Self::Left => "left",
            Self::Event => "event",
            Self::Compact => "compact",
            Self::NoPeerId => "no_peer_id",
            Self::Numwant => "numwant",
            Self::Key => "key",
            Self::TrackerId => "trackerid",
            Self::Ip => "ip",
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// Parses an announce query (the bytes after `?`).
///
/// Unknown parameters are ignored; a known parameter given twice is an error. Errors are
/// reported for the first offending parameter in query order, then for missing required ones
/// (`info_hash`, `peer_id`, `port`, `left`, in that order).
pub fn parse_announce(query: &[u8]) -> Result<AnnounceQuery<'_>, QueryError> {
    let mut seen = 0u16;
    let (mut info_hash, mut peer_id, mut port, mut left) = (None, None, None, None);
    let mut q = AnnounceQuery {
        info_hash: InfoHash::default(),
        peer_id: PeerId::default(),
        port: 0,
        uploaded: 0,
        downloaded: 0,
        left: 0,
        event: Event::None,
        compact: true,
        no_peer_id: false,
        numwant: None,
        key: None,
        tracker_id: None,
        ip: None,
    };
    for (name, value) in params(query) {
        let Some(param) = Param::from_name(name) else {
            continue;
        };
        if seen & param.bit() != 0 {
            return Err(QueryError::Duplicate(param.name()));
        }
        seen |= param.bit();
        let pname = param.name();
        match param {
            Param::InfoHash => info_hash = Some(InfoHash(decode_id(value, pname)?)),
            Param::PeerId => peer_id = Some(PeerId(decode_id(value, pname)?)),
            Param::Port => port = Some(decode_port(value)?),
            Param::Uploaded => q.uploaded = decode_u64(value, pname)?,
            Param::Downloaded => q.downloaded = decode_u64(value, pname)?,
            Param::Left => left = Some(decode_u64(value, pname)?),
            Param::Event => q.event = decode_event(value)?,
            Param::Compact => q.compact = decode_flag(value, pname)?,
            Param::NoPeerId => q.no_peer_id = decode_flag(value, pname)?,
            Param::Numwant => q.numwant = decode_numwant(value)?,
            Param::Key => q.key = Some(value),
            Param::TrackerId => q.tracker_id = Some(value),
            Param::Ip => q.ip = decode_ip(value),
        }
    }
    q.info_hash = info_hash.ok_or(QueryError::Missing("info_hash"))?;
    q.peer_id = peer_id.ok_or(QueryError::Missing("peer_id"))?;
    q.port = port.ok_or(QueryError::Missing("port"))?;
    q.left = left.ok_or(QueryError::Missing("left"))?;
    Ok(q)
}

/// Parses a scrape query: every `info_hash` parameter, decoded, is pushed to `out` (cleared
/// first) in request order; repeats are kept. Other parameters are ignored.
///
/// More than `max` hashes is [`QueryError::TooManyHashes`]. No hash at all is `Ok` with `out`
/// empty: the caller decides between a full scrape and an error.
pub fn parse_scrape(query: &[u8], max: usize, out: &mut Vec<InfoHash>) -> Result<(), QueryError> {
    out.clear();
    for (name, value) in params(query) {
        if name != b"info_hash" {
            continue;
        }
        if out.len() >= max {
            return Err(QueryError::TooManyHashes(max));
        }
        out.push(InfoHash(decode_id(value, "info_hash")?));
    }
    Ok(())
}

/// Percent-decodes `raw`, appending to `out`. `+` stays a literal `+` (clients escape binary
/// values fully, so it never means a space here). On error `out` is left as it was.
pub fn percent_decode_into(raw: &[u8], out: &mut Vec<u8>) -> Result<(), QueryError> {
    let start = out.len();
    out.reserve(raw.len());
    decode_each(raw, |b| out.push(b)).map_err(|()| {
        out.truncate(start);
        QueryError::MalformedEscape("value")
    })
}

/// Percent-encodes `raw` for use as a query value, appending to `out`: the RFC 3986 unreserved
/// bytes (`A-Z a-z 0-9 - . _ ~`) are kept, every other byte becomes `%XX` (uppercase hex).
pub fn percent_encode_into(raw: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(raw.len());
    for &b in raw {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests;
