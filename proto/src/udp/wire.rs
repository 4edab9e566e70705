//! Big-endian field reading for the BEP 15 codecs: a cursor over a packet that never panics.

/// Reads fixed-size fields off the front of a byte slice; every read is `None` past the end.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) const fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    pub(super) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.rest.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*head)
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_be_bytes)
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_be_bytes)
    }

    pub(super) fn i32(&mut self) -> Option<i32> {
        self.array().map(i32::from_be_bytes)
    }

    pub(super) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// What has not been read yet.
    pub(super) const fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// Appends the big-endian `action` and `transaction_id` that open every response.
pub(super) fn put_action_tid(out: &mut Vec<u8>, action: u32, transaction_id: u32) {
    out.extend_from_slice(&action.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_stops_at_the_end() {
        let mut r = Reader::new(&[0, 1, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xfe, 9]);
        assert_eq!(r.u16(), Some(1));
        assert_eq!(r.u32(), Some(2));
        assert_eq!(r.i32(), Some(-2));
        assert_eq!(r.u64(), None);
        assert_eq!(r.rest(), &[9]);
        assert_eq!(r.array::<1>(), Some([9]));
        assert_eq!(r.u16(), None);
        assert!(r.rest().is_empty());
    }
}
