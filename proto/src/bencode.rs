//! A small zero-copy bencode decoder and a canonical encoder, for cold paths (metainfo files).
//!
//! Decoding borrows byte strings from the input and never panics; nesting is limited to
//! [`MAX_DEPTH`]. Integers must be canonical (no leading zeros, no `-0`). Dictionary keys may
//! come in any order (real torrents have unsorted keys and their info hash must survive), but a
//! key may not appear twice. [`raw_dict_entries`] gives the raw bytes of each value of a
//! dictionary, exactly as they appear in the input: a metainfo info hash is the SHA-1 of those
//! bytes, never of a re-encoding. The encoder writes dictionary keys sorted, as BEP 3 requires.

use std::fmt;

/// Maximum nesting of lists and dictionaries accepted by the decoder.
pub const MAX_DEPTH: usize = 64;

/// A decoded bencode value, borrowing its byte strings from the input.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// `i<n>e`.
    Int(i64),
    /// `<len>:<bytes>`.
    Bytes(&'a [u8]),
    /// `l ... e`.
    List(Vec<Value<'a>>),
    /// `d ... e`: entries in input order (decoding) or any order (encoding sorts them).
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// What went wrong while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    /// The input ended inside a value.
    #[error("unexpected end of input")]
    UnexpectedEof,
    /// A byte that cannot start a value.
    #[error("unexpected byte")]
    UnexpectedByte,
    /// An integer that is empty, has leading zeros, is `-0` or holds a non-digit.
    #[error("malformed integer")]
    BadInteger,
    /// An integer that does not fit in an `i64`.
    #[error("integer out of range")]
    IntegerOverflow,
    /// A malformed or too large byte-string length.
    #[error("malformed byte-string length")]
    BadLength,
    /// A dictionary key that is not a byte string.
    #[error("dictionary key is not a byte string")]
    KeyNotBytes,
    /// A dictionary key that appears twice.
    #[error("duplicate dictionary key")]
    DuplicateKey,
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Bytes after the end of the top-level value.
    #[error("trailing bytes after the value")]
    TrailingData,
    /// The value is not a dictionary where one was required.
    #[error("expected a dictionary")]
    NotADict,
}

/// A bencode decoding error, with the byte offset where it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bencode: {kind} at byte {pos}")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// Byte offset in the input.
    pub pos: usize,
}

fn err<T>(kind: DecodeErrorKind, pos: usize) -> Result<T, DecodeError> {
    Err(DecodeError { kind, pos })
}

impl<'a> Value<'a> {
    /// Decodes exactly one value spanning the whole input (trailing bytes are an error).
    pub fn decode(input: &'a [u8]) -> Result<Self, DecodeError> {
        let (value, end) = decode_prefix(input)?;
        if end != input.len() {
            return err(DecodeErrorKind::TrailingData, end);
        }
        Ok(value)
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The list items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The dictionary entries, if this is a dictionary.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// The value under `key`, if this is a dictionary holding it.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.as_dict()?
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// Appends the canonical encoding (dictionary keys sorted) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => {
                out.push(b'i');
                out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes());
                out.push(b'e');
            }
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                let mut sorted: Vec<&(&[u8], Value<'_>)> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'd');
                for (k, v) in sorted {
                    encode_bytes(k, out);
                    v.encode(out);
                }
                out.push(b'e');
            }
        }
    }

    /// The canonical encoding as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (k.escape_ascii().to_string(), v)))
                .finish(),
        }
    }
}

fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(b.len()).as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// Decodes one value at the start of `input`; returns it and the offset just past it.
pub fn decode_prefix(input: &[u8]) -> Result<(Value<'_>, usize), DecodeError> {
    let mut d = Decoder { input, pos: 0 };
    let v = d.value(0)?;
    Ok((v, d.pos))
}

/// One dictionary entry: the key and the raw bytes of its value, as they appear in the input.
pub type RawEntry<'a> = (&'a [u8], &'a [u8]);

/// Parses a dictionary spanning the whole input and returns, for each entry in input order, its
/// key and the raw bytes of its value exactly as they appear in `input`.
pub fn raw_dict_entries(input: &[u8]) -> Result<Vec<RawEntry<'_>>, DecodeError> {
    let mut d = Decoder { input, pos: 0 };
    if d.peek()? != b'd' {
        return err(DecodeErrorKind::NotADict, 0);
    }
    d.pos += 1;
    let mut entries = Vec::new();
    while d.peek()? != b'e' {
        let key = d.key()?;
        let start = d.pos;
        d.value(1)?;
        entries.push((key, &input[start..d.pos]));
    }
    d.pos += 1;
    if d.pos != input.len() {
        return err(DecodeErrorKind::TrailingData, d.pos);
    }
    check_unique(entries.iter().map(|(k, _)| *k).collect(), 0)?;
    Ok(entries)
}

fn check_unique(mut keys: Vec<&[u8]>, pos: usize) -> Result<(), DecodeError> {
    if keys.windows(2).all(|w| w[0] < w[1]) {
        return Ok(());
    }
    keys.sort_unstable();
    if keys.windows(2).any(|w| w[0] == w[1]) {
        return err(DecodeErrorKind::DuplicateKey, pos);
    }
    Ok(())
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(b) => Ok(*b),
            None => err(DecodeErrorKind::UnexpectedEof, self.pos),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        if depth > MAX_DEPTH {
            return err(DecodeErrorKind::TooDeep, self.pos);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let end = self.find(b'e')?;
                let n = parse_int(&self.input[self.pos..end], self.pos)?;
                self.pos = end + 1;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(items))
            }
            b'd' => {
                let start = self.pos;
                self.pos += 1;
                let mut entries = Vec::new();
                while self.peek()? != b'e' {
                    let key = self.key()?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                self.pos += 1;
                check_unique(entries.iter().map(|(k, _)| *k).collect(), start)?;
                Ok(Value::Dict(entries))
            }
            _ => err(DecodeErrorKind::UnexpectedByte, self.pos),
        }
    }

    fn key(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.peek()? {
            b'0'..=b'9' => self.bytes(),
            _ => err(DecodeErrorKind::KeyNotBytes, self.pos),
        }
    }

    fn find(&self, byte: u8) -> Result<usize, DecodeError> {
        self.input[self.pos..]
            .iter()
            .position(|b| *b == byte)
            .map(|i| self.pos + i)
            .ok_or(DecodeError {
                kind: DecodeErrorKind::UnexpectedEof,
                pos: self.input.len(),
            })
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let colon = self.find(b':')?;
        let digits = &self.input[start..colon];
        let len = match parse_int(digits, start) {
            Ok(n) if !digits.starts_with(b"-") => usize::try_from(n).map_err(|_| DecodeError {
                kind: DecodeErrorKind::BadLength,
                pos: start,
            })?,
            _ => return err(DecodeErrorKind::BadLength, start),
        };
        let body = colon + 1;
        match body.checked_add(len) {
            Some(end) if end <= self.input.len() => {
                self.pos = end;
                Ok(&self.input[body..end])
            }
            _ => err(DecodeErrorKind::UnexpectedEof, self.input.len()),
        }
    }
}

fn parse_int(digits: &[u8], pos: usize) -> Result<i64, DecodeError> {
    let (neg, body) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    let canonical = match body {
        [] => false,
        [b'0'] => !neg,
        [b'0', ..] => false,
        _ => body.iter().all(u8::is_ascii_digit),
    };
    if !canonical {
        return err(DecodeErrorKind::BadInteger, pos);
    }
    let mut n: i64 = 0;
    for d in body {
        let d = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if neg {
                    n.checked_sub(d)
                } else {
                    n.checked_add(d)
                }
            })
            .ok_or(DecodeError {
                kind: DecodeErrorKind::IntegerOverflow,
                pos,
            })?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kind(input: &[u8]) -> DecodeErrorKind {
        Value::decode(input).unwrap_err().kind
    }

    #[test]
    fn decodes_all_kinds() {
        let v = Value::decode(b"d3:bar4:spam3:fooi42e4:listli-1e0:ee").unwrap();
        assert_eq!(v.get(b"bar"), Some(&Value::Bytes(b"spam")));
        assert_eq!(v.get(b"foo").and_then(Value::as_int), Some(42));
        assert_eq!(
            v.get(b"list"),
            Some(&Value::List(vec![Value::Int(-1), Value::Bytes(b"")]))
        );
        assert_eq!(Value::decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(
            Value::decode(b"i-9223372036854775808e").unwrap(),
            Value::Int(i64::MIN)
        );
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(kind(b""), DecodeErrorKind::UnexpectedEof);
        assert_eq!(kind(b"i01e"), DecodeErrorKind::BadInteger);
        assert_eq!(kind(b"i-0e"), DecodeErrorKind::BadInteger);
        assert_eq!(kind(b"ie"), DecodeErrorKind::BadInteger);
        assert_eq!(kind(b"i-e"), DecodeErrorKind::BadInteger);
        assert_eq!(kind(b"i1x2e"), DecodeErrorKind::BadInteger);
        assert_eq!(
            kind(b"i9223372036854775808e"),
            DecodeErrorKind::IntegerOverflow
        );
        assert_eq!(kind(b"-1:a"), DecodeErrorKind::UnexpectedByte);
        assert_eq!(kind(b"01:a"), DecodeErrorKind::BadLength);
        assert_eq!(kind(b"5:abc"), DecodeErrorKind::UnexpectedEof);
        assert_eq!(
            kind(b"99999999999999999999999:a"),
            DecodeErrorKind::BadLength
        );
        assert_eq!(kind(b"di1ei2ee"), DecodeErrorKind::KeyNotBytes);
        assert_eq!(kind(b"d1:ai1e1:ai2ee"), DecodeErrorKind::DuplicateKey);
        assert_eq!(kind(b"i1ei2e"), DecodeErrorKind::TrailingData);
        assert_eq!(kind(b"x"), DecodeErrorKind::UnexpectedByte);
        let deep = [vec![b'l'; MAX_DEPTH + 2], vec![b'e'; MAX_DEPTH + 2]].concat();
        assert_eq!(kind(&deep), DecodeErrorKind::TooDeep);
        let ok = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert!(Value::decode(&ok).is_ok());
    }

    #[test]
    fn error_reports_position() {
        let e = Value::decode(b"li1ei01ee").unwrap_err();
        assert_eq!(e.pos, 5);
        assert_eq!(e.to_string(), "bencode: malformed integer at byte 5");
    }

    #[test]
    fn unsorted_keys_accepted_and_raw_spans_exact() {
        let input = b"d4:infod1:zi1e1:ai2ee3:foo3:bare";
        let entries = raw_dict_entries(input).unwrap();
        assert_eq!(entries[0], (&b"info"[..], &b"d1:zi1e1:ai2ee"[..]));
        assert_eq!(entries[1], (&b"foo"[..], &b"3:bar"[..]));
        // Re-encoding sorts the keys, which is why a hash must use the raw span.
        let v = Value::decode(entries[0].1).unwrap();
        assert_eq!(v.to_bytes(), b"d1:ai2e1:zi1ee");
        assert_eq!(
            raw_dict_entries(b"d1:ai1ee ").unwrap_err().kind,
            DecodeErrorKind::TrailingData
        );
        assert_eq!(
            raw_dict_entries(b"li1ee").unwrap_err().kind,
            DecodeErrorKind::NotADict
        );
    }

    fn arb_value() -> impl Strategy<Value = OwnedValue> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(OwnedValue::Int),
            proptest::collection::vec(any::<u8>(), 0..12).prop_map(OwnedValue::Bytes),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(OwnedValue::List),
                proptest::collection::btree_map(
                    proptest::collection::vec(any::<u8>(), 0..6),
                    inner,
                    0..6
                )
                .prop_map(|m| OwnedValue::Dict(m.into_iter().collect())),
            ]
        })
    }

    #[derive(Debug, Clone)]
    enum OwnedValue {
        Int(i64),
        Bytes(Vec<u8>),
        List(Vec<OwnedValue>),
        Dict(Vec<(Vec<u8>, OwnedValue)>),
    }

    impl OwnedValue {
        fn borrow(&self) -> Value<'_> {
            match self {
                OwnedValue::Int(i) => Value::Int(*i),
                OwnedValue::Bytes(b) => Value::Bytes(b),
                OwnedValue::List(l) => Value::List(l.iter().map(Self::borrow).collect()),
                OwnedValue::Dict(d) => {
                    Value::Dict(d.iter().map(|(k, v)| (&k[..], v.borrow())).collect())
                }
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Value::decode(&bytes);
            let _ = raw_dict_entries(&bytes);
        }

        #[test]
        fn encode_decode_round_trip(v in arb_value()) {
            let v = v.borrow();
            let bytes = v.to_bytes();
            let back = Value::decode(&bytes).unwrap();
            prop_assert_eq!(&back, &v);
            prop_assert_eq!(back.to_bytes(), bytes);
        }
    }
}
