//! BEP 41 announce options: validating the option bytes after the 98-byte announce, assembling
//! the URL data they carry, and writing it back as `URLData` options.
//!
//! Options start at offset 98 and run to the end of the packet or to an `EndOfOptions` (type
//! 0x0), whichever comes first; bytes after `EndOfOptions` are ignored. `NOP` (0x1) is one byte.
//! Every other type, known or not, is followed by a length byte and that many data bytes, so
//! unknown types are skipped. A missing length byte, or a length running past the end of the
//! packet, makes the options malformed. `URLData` (0x2) payloads concatenate into the URL's path
//! and query (BEP 41 allows several, since one holds at most 255 bytes).

use std::fmt;

/// Option type: stop parsing options.
const END_OF_OPTIONS: u8 = 0x0;
/// Option type: one byte of padding.
const NOP: u8 = 0x1;
/// Option type: a chunk of the URL's path and query.
const URL_DATA: u8 = 0x2;
/// Most data bytes one option carries (its length is one byte).
const MAX_CHUNK: usize = 255;

/// BEP 41 URL data (the tracker URL's path and query, e.g. `/KEY/announce?x=1`) as received in
/// an announce, or as given to [`write_announce_request`](super::write_announce_request).
///
/// A parsed value is a view over the packet's validated option bytes: the URL data may be split
/// over several `URLData` options, and this view assembles them lazily, without allocating.
/// Equality compares the assembled URL data, however it was split.
#[derive(Clone, Copy)]
pub struct UrlData<'a> {
    repr: Repr<'a>,
}

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// Validated option bytes (up to, not including, any `EndOfOptions`) and the total length of
    /// their `URLData` payloads.
    Options { bytes: &'a [u8], len: usize },
    /// The assembled URL data itself.
    Plain(&'a [u8]),
}

impl<'a> UrlData<'a> {
    /// URL data to send: the path and query of the tracker URL, of any length (the writer splits
    /// it into `URLData` options of at most 255 bytes).
    pub const fn new(url: &'a [u8]) -> Self {
        Self {
            repr: Repr::Plain(url),
        }
    }

    /// Whether there is no URL data (no `URLData` option, or only empty ones).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total length of the URL data in bytes.
    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Options { len, .. } => len,
            Repr::Plain(url) => url.len(),
        }
    }

    /// The pieces of URL data in order: the non-empty `URLData` payloads of a parsed announce (at
    /// most 255 bytes each), or the given URL in 255-byte pieces. Concatenated, they are the URL
    /// data.
    pub fn chunks(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        Chunks { repr: self.repr }
    }

    /// The URL data as one slice, when it is in one piece (always for [`UrlData::new`]; for a
    /// parsed announce, when it came in at most one non-empty `URLData` option, which is what
    /// clients send for URLs up to 255 bytes). Lets a server route the common case without
    /// copying; otherwise use [`UrlData::write_to`].
    pub fn as_contiguous(&self) -> Option<&'a [u8]> {
        match self.repr {
            Repr::Plain(url) => Some(url),
            Repr::Options { .. } => {
                let mut chunks = self.chunks();
                let first = chunks.next().unwrap_or_default();
                chunks.next().is_none().then_some(first)
            }
        }
    }

    /// Appends the assembled URL data to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        for chunk in self.chunks() {
            out.extend_from_slice(chunk);
        }
    }
}

impl Default for UrlData<'_> {
    fn default() -> Self {
        Self::new(&[])
    }
}

impl PartialEq for UrlData<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.chunks().flatten().eq(other.chunks().flatten())
    }
}

impl Eq for UrlData<'_> {}

impl fmt::Debug for UrlData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UrlData(\"")?;
        for chunk in self.chunks() {
            write!(f, "{}", chunk.escape_ascii())?;
        }
        f.write_str("\")")
    }
}

/// One step of the walk over option bytes.
enum Step<'a> {
    /// End of the bytes, or `EndOfOptions`.
    Stop,
    /// An option: its type, its data (empty for `NOP`) and the bytes after it.
    Opt {
        kind: u8,
        data: &'a [u8],
        rest: &'a [u8],
    },
    /// A type byte without its length byte, or a length past the end.
    Malformed,
}

fn step(bytes: &[u8]) -> Step<'_> {
    match bytes {
        [] | [END_OF_OPTIONS, ..] => Step::Stop,
        [NOP, rest @ ..] => Step::Opt {
            kind: NOP,
            data: &[],
            rest,
        },
        [kind, len, tail @ ..] => match tail.split_at_checked(usize::from(*len)) {
            Some((data, rest)) => Step::Opt {
                kind: *kind,
                data,
                rest,
            },
            None => Step::Malformed,
        },
        [_] => Step::Malformed,
    }
}

/// Validates the option bytes of an announce (everything after its first 98 bytes); `None` if
/// they are malformed.
pub(super) fn parse_options(options: &[u8]) -> Option<UrlData<'_>> {
    let mut rest = options;
    let mut len = 0usize;
    loop {
        match step(rest) {
            Step::Stop => break,
            Step::Opt {
                kind,
                data,
                rest: r,
            } => {
                if kind == URL_DATA {
                    len += data.len();
                }
                rest = r;
            }
            Step::Malformed => return None,
        }
    }
    let bytes = options.get(..options.len() - rest.len())?;
    Some(UrlData {
        repr: Repr::Options { bytes, len },
    })
}

/// Appends `url_data` as `URLData` options of at most 255 bytes each, then `EndOfOptions`;
/// nothing at all when it is empty.
pub(super) fn write_url_data(out: &mut Vec<u8>, url_data: &UrlData<'_>) {
    let len = url_data.len();
    if len == 0 {
        return;
    }
    out.reserve(len + 2 * len.div_ceil(MAX_CHUNK) + 1);
    for chunk in url_data.chunks().flat_map(|c| c.chunks(MAX_CHUNK)) {
        out.push(URL_DATA);
        out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(chunk);
    }
    out.push(END_OF_OPTIONS);
}

struct Chunks<'a> {
    repr: Repr<'a>,
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        match &mut self.repr {
            Repr::Plain(url) => {
                if url.is_empty() {
                    return None;
                }
                let (chunk, rest) = url.split_at(url.len().min(MAX_CHUNK));
                *url = rest;
                Some(chunk)
            }
            Repr::Options { bytes, .. } => loop {
                match step(bytes) {
                    Step::Opt { kind, data, rest } => {
                        *bytes = rest;
                        if kind == URL_DATA && !data.is_empty() {
                            return Some(data);
                        }
                    }
                    Step::Stop | Step::Malformed => {
                        *bytes = &[];
                        return None;
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assembled(u: &UrlData<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        u.write_to(&mut out);
        out
    }

    #[test]
    fn bep41_examples() {
        // "0x2, 0xC, '/', 'd', 'i', 'r', '?', 'a', '=', 'b', '&', 'c', '=', 'd'"
        let plain = b"\x02\x0c/dir?a=b&c=d";
        // The same, then two NOPs and EndOfOptions (with junk after it here).
        let padded = b"\x02\x0c/dir?a=b&c=d\x01\x01\x00\x02\xffjunk";
        for bytes in [&plain[..], &padded[..]] {
            let u = parse_options(bytes).unwrap();
            assert_eq!(u.len(), 12);
            assert_eq!(assembled(&u), b"/dir?a=b&c=d");
            assert_eq!(u.as_contiguous(), Some(&b"/dir?a=b&c=d"[..]));
            assert_eq!(u, UrlData::new(b"/dir?a=b&c=d"));
        }
        // An empty URLData: supported, but no URL data.
        let empty = parse_options(b"\x02\x00").unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.chunks().count(), 0);
        assert_eq!(empty, UrlData::default());
        assert_eq!(empty.as_contiguous(), Some(&b""[..]));
    }

    #[test]
    fn chunks_concatenate() {
        let bytes = b"\x02\x03/an\x01\x02\x00\x07\x02ab\x02\x08nounce?x\x00\x02\x03zzz";
        let u = parse_options(bytes).unwrap();
        assert_eq!(u.chunks().collect::<Vec<_>>(), [&b"/an"[..], b"nounce?x"]);
        assert_eq!(u.len(), 11);
        assert_eq!(u.as_contiguous(), None);
        assert_eq!(format!("{u:?}"), "UrlData(\"/announce?x\")");
    }

    #[test]
    fn malformed_and_unknown() {
        for bad in [
            &b"\x02"[..],                // type without length
            b"\x02\x05abcd",             // length past the end
            b"\x01\x01\x07",             // unknown type without length
            b"\x09\x02a",                // unknown type, length past the end
            b"\x02\x01a\x02\x02b",       // second option truncated
            b"\x02\x01a\x01\xff\x10abc", // after NOPs
        ] {
            assert!(parse_options(bad).is_none(), "{bad:?}");
        }
        // Unknown types are skipped, whatever their data.
        let u = parse_options(b"\x03\x02\x00\x00\xff\x00\x02\x01/\x80\x01\x02").unwrap();
        assert_eq!(assembled(&u), b"/");
        // No options at all.
        assert!(parse_options(b"").unwrap().is_empty());
        assert!(parse_options(b"\x00\x02").unwrap().is_empty());
    }

    #[test]
    fn writes_chunks_of_at_most_255() {
        let url: Vec<u8> = (0..300u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut out = Vec::new();
        write_url_data(&mut out, &UrlData::new(&url));
        assert_eq!(out.len(), 2 + 255 + 2 + 45 + 1);
        assert_eq!(&out[..2], &[URL_DATA, 255]);
        assert_eq!(&out[2..257], &url[..255]);
        assert_eq!(&out[257..259], &[URL_DATA, 45]);
        assert_eq!(&out[259..304], &url[255..]);
        assert_eq!(out[304], END_OF_OPTIONS);
        let u = parse_options(&out).unwrap();
        assert_eq!(u.len(), 300);
        assert_eq!(u, UrlData::new(&url));
        assert_eq!(u.chunks().count(), 2);

        out.clear();
        write_url_data(&mut out, &UrlData::default());
        assert!(out.is_empty());
    }

    #[test]
    fn equality_ignores_splitting() {
        let a = parse_options(b"\x02\x02ab\x02\x01c").unwrap();
        let b = parse_options(b"\x01\x02\x03abc\x00").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, parse_options(b"\x02\x03abd").unwrap());
        assert_ne!(a, UrlData::new(b"ab"));
    }
}
