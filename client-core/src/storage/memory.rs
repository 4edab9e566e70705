//! [`MemoryStorage`]: a torrent's bytes in one buffer behind a lock, for tests and small
//! transfers. Bytes never written read as zeros.

use std::sync::{PoisonError, RwLock};

use super::{Storage, StorageError};

/// A [`Storage`] over a `Vec<u8>` of the torrent's length.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    bytes: RwLock<Vec<u8>>,
}

impl MemoryStorage {
    /// Zero-filled storage of `len` bytes.
    pub fn new(len: usize) -> Self {
        Self::from_vec(vec![0; len])
    }

    /// Storage holding `bytes` (a seed's content, say).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self {
            bytes: RwLock::new(bytes),
        }
    }

    /// A copy of the bytes.
    pub fn to_vec(&self) -> Vec<u8> {
        self.bytes
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.bytes
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn range(len: usize, offset: u64, n: usize) -> Result<std::ops::Range<usize>, StorageError> {
        let err = || StorageError::OutOfRange {
            offset,
            len: n as u64,
            total: len as u64,
        };
        let start = usize::try_from(offset).map_err(|_| err())?;
        let end = start.checked_add(n).filter(|e| *e <= len).ok_or_else(err)?;
        Ok(start..end)
    }
}

impl Storage for MemoryStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        // No code panics while holding the lock, so poisoning cannot leave torn state.
        let bytes = self.bytes.read().unwrap_or_else(PoisonError::into_inner);
        let r = Self::range(bytes.len(), offset, buf.len())?;
        buf.copy_from_slice(&bytes[r]);
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let mut bytes = self.bytes.write().unwrap_or_else(PoisonError::into_inner);
        let r = Self::range(bytes.len(), offset, data.len())?;
        bytes[r].copy_from_slice(data);
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_writes_and_zeros() {
        let s = MemoryStorage::new(10);
        s.write_at(3, b"abc").unwrap();
        let mut buf = [9u8; 7];
        s.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"\0\0\0abc\0");
        assert!(s.write_at(8, b"abc").is_err());
        assert!(s.read_at(u64::MAX, &mut buf).is_err());
        s.sync().unwrap();
        assert_eq!(s.stored_len(0).unwrap(), None);
        assert_eq!(s.into_vec().len(), 10);
    }
}
