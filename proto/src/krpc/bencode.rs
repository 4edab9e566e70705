//! A tiny zero-copy bencode reader for KRPC: strict about syntax, bounded in nesting, iterative
//! (no recursion at all), allocation-free; plus the writer helpers the encoder shares.
//!
//! Reading happens in two steps. A caller walks the dictionaries it cares about with
//! [`Decoder::eat`], [`Decoder::bytes`] (keys) and [`Decoder::value`], which validates one whole
//! value (any type, any nesting up to [`MAX_DEPTH`]) and returns it as a [`Raw`] span. A `Raw`
//! is then interpreted on demand ([`Raw::bytes`], [`Raw::int`], [`Raw::list`]); since its span
//! was validated, those views only re-read bytes known to be well formed (and still never panic
//! if they were not).
//!
//! Syntax rules: integers are `i<digits>e` with an optional `-`, no `+`, no leading zeros, no
//! `-0`, and must fit in an `i64`; string lengths have no leading zeros and must fit in what is
//! left of the buffer; dictionary keys must be strings (any order, duplicates allowed: readers
//! of the map take the last).

use super::MAX_DEPTH;

/// What is syntactically wrong with a bencoded buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SyntaxError {
    /// Truncated, a bad integer or length, a non-string key, an unexpected byte.
    Malformed,
    /// Lists and dictionaries nested deeper than [`MAX_DEPTH`].
    TooDeep,
}

/// A cursor over a bencoded buffer.
#[derive(Clone)]
pub(super) struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub(super) const fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Whether every byte has been read.
    pub(super) const fn is_at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes `byte` if it comes next.
    pub(super) fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        if next {
            self.pos += 1;
        }
        next
    }

    /// Reads a byte string `<len>:<bytes>`.
    pub(super) fn bytes(&mut self) -> Result<&'a [u8], SyntaxError> {
        let len = self.digits(b':')?;
        let start = self.pos;
        let end = start.checked_add(len).ok_or(SyntaxError::Malformed)?;
        let bytes = self.buf.get(start..end).ok_or(SyntaxError::Malformed)?;
        self.pos = end;
        Ok(bytes)
    }

    /// Reads an integer `i<digits>e`.
    pub(super) fn int(&mut self) -> Result<i64, SyntaxError> {
        if self.peek() != Some(b'i') {
            return Err(SyntaxError::Malformed);
        }
        self.pos += 1;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let magnitude = self.digits(b'e')?;
        let magnitude = u64::try_from(magnitude).map_err(|_| SyntaxError::Malformed)?;
        if negative {
            if magnitude == 0 {
                return Err(SyntaxError::Malformed); // `i-0e`
            }
            0i64.checked_sub_unsigned(magnitude)
                .ok_or(SyntaxError::Malformed)
        } else {
            i64::try_from(magnitude).map_err(|_| SyntaxError::Malformed)
        }
    }

    /// Reads one or more decimal digits (no leading zero unless the number is 0), then
    /// `terminator`. Overflow is an error.
    fn digits(&mut self, terminator: u8) -> Result<usize, SyntaxError> {
        let start = self.pos;
        let mut value: usize = 0;
        while let Some(c @ b'0'..=b'9') = self.peek() {
            if self.pos > start && self.buf[start] == b'0' {
                return Err(SyntaxError::Malformed); // leading zero
            }
            value = value
                .checked_mul(10)
                .and_then(|v| v.checked_add(usize::from(c - b'0')))
                .ok_or(SyntaxError::Malformed)?;
            self.pos += 1;
        }
        if self.pos == start || self.peek() != Some(terminator) {
            return Err(SyntaxError::Malformed);
        }
        self.pos += 1;
        Ok(value)
    }

    /// Validates one whole value starting here, found inside `depth` enclosing containers, and
    /// returns its span. Iterative: one bit per open container says whether it is a dictionary.
    pub(super) fn value(&mut self, depth: usize) -> Result<Raw<'a>, SyntaxError> {
        let start = self.pos;
        // Bit i set: the i-th open container (0 = outermost opened here) is a dictionary.
        let mut dicts: u64 = 0;
        let mut open: usize = 0;
        // Inside a dictionary: whether the next item is a key (else a value).
        let mut want_key = false;
        loop {
            let in_dict = open > 0 && dicts & (1 << (open - 1)) != 0;
            let c = self.peek().ok_or(SyntaxError::Malformed)?;
            match c {
                b'e' if open > 0 => {
                    if in_dict && !want_key {
                        return Err(SyntaxError::Malformed); // a key without a value
                    }
                    self.pos += 1;
                    open -= 1;
                    dicts &= !(1 << open);
                    // A closed container was a value: its parent, if a dict, wants a key.
                    want_key = open > 0 && dicts & (1 << (open - 1)) != 0;
                }
                b'l' | b'd' => {
                    if in_dict && want_key {
                        return Err(SyntaxError::Malformed);
                    }
                    if depth + open >= MAX_DEPTH {
                        return Err(SyntaxError::TooDeep);
                    }
                    if c == b'd' {
                        dicts |= 1 << open;
                    }
                    open += 1;
                    want_key = c == b'd';
                    self.pos += 1;
                }
                b'i' => {
                    if in_dict && want_key {
                        return Err(SyntaxError::Malformed);
                    }
                    self.int()?;
                    want_key = in_dict;
                }
                b'0'..=b'9' => {
                    self.bytes()?;
                    want_key = in_dict && !want_key;
                }
                _ => return Err(SyntaxError::Malformed),
            }
            if open == 0 {
                return Ok(Raw(&self.buf[start..self.pos]));
            }
        }
    }
}

/// The bytes of one validated bencoded value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Raw<'a>(pub(super) &'a [u8]);

impl<'a> Raw<'a> {
    /// The value as a byte string, if it is one.
    pub(super) fn bytes(self) -> Option<&'a [u8]> {
        let mut d = Decoder::new(self.0);
        d.bytes().ok().filter(|_| d.is_at_end())
    }

    /// The value as an integer, if it is one.
    pub(super) fn int(self) -> Option<i64> {
        let mut d = Decoder::new(self.0);
        d.int().ok().filter(|_| d.is_at_end())
    }

    /// The value's items, if it is a list.
    pub(super) fn list(self) -> Option<Items<'a>> {
        Some(Items(Decoder::new(self.list_body()?)))
    }

    /// What lies between a list's `l` and `e`.
    pub(super) fn list_body(self) -> Option<&'a [u8]> {
        self.0.strip_prefix(b"l")?.strip_suffix(b"e")
    }
}

/// The items of a list (or of a list's body); stops at the first malformed byte.
#[derive(Clone)]
pub(super) struct Items<'a>(pub(super) Decoder<'a>);

impl<'a> Iterator for Items<'a> {
    type Item = Raw<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_at_end() {
            return None;
        }
        self.0.value(1).ok()
    }
}

/// Appends `<len>:<bytes>`.
pub(super) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(itoa::Buffer::new().format(bytes.len()).as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

/// Appends `i<v>e`.
pub(super) fn put_int(out: &mut Vec<u8>, v: i64) {
    out.push(b'i');
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    out.push(b'e');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(s: &[u8]) -> Result<Raw<'_>, SyntaxError> {
        let mut d = Decoder::new(s);
        let v = d.value(0)?;
        assert!(d.is_at_end(), "trailing bytes in {s:?}");
        Ok(v)
    }

    #[test]
    fn integers() {
        for (s, v) in [
            (&b"i0e"[..], 0),
            (b"i42e", 42),
            (b"i-42e", -42),
            (b"i9223372036854775807e", i64::MAX),
            (b"i-9223372036854775808e", i64::MIN),
        ] {
            assert_eq!(value(s).unwrap().int(), Some(v), "{s:?}");
        }
        for s in [
            &b"ie"[..],
            b"i-e",
            b"i-0e",
            b"i03e",
            b"i-03e",
            b"i+3e",
            b"i3",
            b"i 3e",
            b"i9223372036854775808e",
            b"i-9223372036854775809e",
            b"i99999999999999999999999999e",
        ] {
            assert_eq!(value(s), Err(SyntaxError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn strings() {
        assert_eq!(value(b"0:").unwrap().bytes(), Some(&b""[..]));
        assert_eq!(value(b"4:spam").unwrap().bytes(), Some(&b"spam"[..]));
        for s in [
            &b"5:spam"[..],
            b"04:spam",
            b"4spam",
            b":",
            b"-1:",
            b"99999999999999999999999:x",
            b"18446744073709551615:x",
        ] {
            let mut d = Decoder::new(s);
            assert_eq!(d.value(0), Err(SyntaxError::Malformed), "{s:?}");
        }
        // A string is not an integer and vice versa.
        assert_eq!(value(b"1:x").unwrap().int(), None);
        assert_eq!(value(b"i1e").unwrap().bytes(), None);
    }

    /// The entries of a dictionary value.
    fn entries(raw: Raw<'_>) -> Vec<(&[u8], Raw<'_>)> {
        let mut d = Decoder::new(raw.0);
        assert!(d.eat(b'd'));
        let mut out = Vec::new();
        while !d.eat(b'e') {
            out.push((d.bytes().unwrap(), d.value(1).unwrap()));
        }
        assert!(d.is_at_end());
        out
    }

    #[test]
    fn containers() {
        let d = value(b"d1:ai1e1:bl1:xi2eee").unwrap();
        let entries = entries(d);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0], (&b"a"[..], Raw(b"i1e")));
        assert_eq!(entries[1].0, b"b");
        let items: Vec<_> = entries[1].1.list().unwrap().collect();
        assert_eq!(items, [Raw(b"1:x"), Raw(b"i2e")]);
        assert_eq!(entries[1].1.list_body(), Some(&b"1:xi2e"[..]));
        assert!(d.list().is_none() && d.bytes().is_none() && d.int().is_none());
        assert_eq!(value(b"le").unwrap().list().unwrap().count(), 0);
        // Unsorted keys are accepted when reading.
        assert_eq!(self::entries(value(b"d1:bi1e1:ai2ee").unwrap()).len(), 2);
    }

    #[test]
    fn malformed_containers() {
        for s in [
            &b"d"[..],
            b"l",
            b"di1ei2ee",    // integer key
            b"dlei2ee",     // list key
            b"d1:ae",       // key without value
            b"d1:ai1e1:be", // second key without value
            b"e",
            b"x",
            b"",
            b"l1:x",
            b"ld",
        ] {
            let mut d = Decoder::new(s);
            assert_eq!(d.value(0), Err(SyntaxError::Malformed), "{s:?}");
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let ok = [&b"l"[..]; MAX_DEPTH].concat();
        let ok = [ok, vec![b'e'; MAX_DEPTH]].concat();
        assert!(value(&ok).is_ok());
        let deep = [vec![b'l'; MAX_DEPTH + 1], vec![b'e'; MAX_DEPTH + 1]].concat();
        assert_eq!(Decoder::new(&deep).value(0), Err(SyntaxError::TooDeep));
        // Depth counts the containers already open around the value.
        assert_eq!(Decoder::new(&ok).value(1), Err(SyntaxError::TooDeep));
        let huge = vec![b'l'; 100_000];
        assert_eq!(Decoder::new(&huge).value(0), Err(SyntaxError::TooDeep));
        let dicts = b"d1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ad1:ai1e";
        assert_eq!(Decoder::new(dicts).value(0), Err(SyntaxError::TooDeep));
    }

    #[test]
    fn writers() {
        let mut out = Vec::new();
        put_bytes(&mut out, b"spam");
        put_int(&mut out, -7);
        put_bytes(&mut out, b"");
        assert_eq!(out, b"4:spami-7e0:");
    }
}
