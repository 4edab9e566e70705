//! The torrent's metadata: the parsed [`Metainfo`] with its info dictionary byte for byte (to
//! serve to magnet peers, BEP 9) and its storage [`Layout`] ([`Meta`]); and, for a magnet link,
//! the fetch of that dictionary in 16 KiB pieces from the peers that advertise
//! `metadata_size` ([`MetaFetch`]).

use std::sync::Arc;

use sha1::{Digest, Sha1};
use swarmd_proto::bencode::raw_dict_entries;
use swarmd_proto::wire::{metadata_piece_count, metadata_piece_len, METADATA_PIECE_LEN};
use swarmd_proto::InfoHash;
use tokio::time::{Duration, Instant};

use super::shared::PeerKey;
use super::SessionError;
use crate::storage::Layout;
use crate::Metainfo;

/// Largest info dictionary fetched from peers (BEP 9 has no limit; real ones are far smaller).
pub(crate) const MAX_METADATA: u64 = 16 << 20;

/// A torrent's metadata.
#[derive(Debug)]
pub(crate) struct Meta {
    pub(crate) metainfo: Metainfo,
    /// The bencoded info dictionary, exactly as hashed.
    pub(crate) info: Vec<u8>,
    pub(crate) layout: Arc<Layout>,
}

impl Meta {
    /// The metadata of a `.torrent` file.
    pub(crate) fn from_torrent(bytes: &[u8]) -> Result<Self, SessionError> {
        let metainfo = Metainfo::from_bytes(bytes)?;
        let info = raw_dict_entries(bytes)
            .ok()
            .and_then(|e| e.into_iter().find(|(k, _)| *k == b"info"))
            .map(|(_, v)| v.to_vec())
            .ok_or(SessionError::BadMetadata("no info dictionary"))?;
        Self::new(metainfo, info)
    }

    /// The metadata from an info dictionary fetched from peers, checked against `info_hash`;
    /// `trackers` (a magnet link's) become its one tier.
    pub(crate) fn from_info(
        info: Vec<u8>,
        info_hash: InfoHash,
        trackers: &[String],
    ) -> Result<Self, SessionError> {
        if <[u8; 20]>::from(Sha1::digest(&info)) != info_hash.0 {
            return Err(SessionError::BadMetadata(
                "info dictionary does not match the hash",
            ));
        }
        let mut torrent = Vec::with_capacity(info.len() + 9);
        torrent.extend_from_slice(b"d4:info");
        torrent.extend_from_slice(&info);
        torrent.push(b'e');
        let mut metainfo = Metainfo::from_bytes(&torrent)?;
        if !trackers.is_empty() {
            metainfo.trackers = vec![trackers.to_vec()];
        }
        Self::new(metainfo, info)
    }

    fn new(metainfo: Metainfo, info: Vec<u8>) -> Result<Self, SessionError> {
        let layout = Layout::from_metainfo(&metainfo)
            .map_err(|_| SessionError::BadMetadata("layout does not fit"))?;
        Ok(Self {
            metainfo,
            info,
            layout: Arc::new(layout),
        })
    }

    /// Metadata piece `piece` (for a `ut_metadata` data message), or `None` past the end.
    pub(crate) fn info_piece(&self, piece: u32) -> Option<&[u8]> {
        let len = metadata_piece_len(self.info.len() as u64, piece)?;
        let start = piece as usize * METADATA_PIECE_LEN;
        self.info.get(start..start + len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Missing,
    Asked(PeerKey, Instant),
    Have,
}

/// The fetch of an info dictionary from peers. The size comes from the first peer that
/// advertises one; peers advertising another size are not asked. If the whole does not hash to
/// the info hash, [`MetaFetch::reset`] starts over.
#[derive(Debug, Default)]
pub(crate) struct MetaFetch {
    size: Option<u64>,
    buf: Vec<u8>,
    slots: Vec<Slot>,
}

impl MetaFetch {
    /// Considers a peer's `metadata_size`; true if we fetch that size (adopting it if we had
    /// none).
    pub(crate) fn offer(&mut self, size: u64) -> bool {
        if size == 0 || size > MAX_METADATA {
            return false;
        }
        match self.size {
            Some(s) => s == size,
            None => {
                self.size = Some(size);
                self.buf = vec![0; size as usize];
                self.slots = vec![Slot::Missing; metadata_piece_count(size) as usize];
                true
            }
        }
    }

    /// Appends to `out` pieces to ask `peer` for, keeping at most `max` asked of it; a piece
    /// asked of another peer more than `timeout` ago is asked again.
    pub(crate) fn pick(
        &mut self,
        peer: PeerKey,
        now: Instant,
        timeout: Duration,
        max: usize,
        out: &mut Vec<u32>,
    ) {
        let mut asked = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Asked(p, _) if *p == peer))
            .count();
        for (i, slot) in (0..).zip(self.slots.iter_mut()) {
            if asked >= max {
                return;
            }
            let free = match *slot {
                Slot::Missing => true,
                Slot::Asked(p, at) => p != peer && now.duration_since(at) >= timeout,
                Slot::Have => false,
            };
            if free {
                *slot = Slot::Asked(peer, now);
                out.push(i);
                asked += 1;
            }
        }
    }

    /// A data message. Returns the whole dictionary once every piece is in (the fetch then
    /// stays complete until [`Self::reset`]).
    pub(crate) fn on_data(&mut self, piece: u32, total_size: u64, data: &[u8]) -> Option<Vec<u8>> {
        if self.size != Some(total_size) {
            return None;
        }
        let slot = self.slots.get_mut(piece as usize)?;
        if *slot == Slot::Have {
            return None;
        }
        let start = piece as usize * METADATA_PIECE_LEN;
        // `MetadataMsg::parse` checked the length against `total_size`.
        self.buf
            .get_mut(start..start + data.len())?
            .copy_from_slice(data);
        *slot = Slot::Have;
        if self.slots.iter().all(|s| *s == Slot::Have) {
            return Some(std::mem::take(&mut self.buf));
        }
        None
    }

    /// `peer` will not send `piece`.
    pub(crate) fn on_reject(&mut self, peer: PeerKey, piece: u32) {
        if let Some(slot) = self.slots.get_mut(piece as usize) {
            if matches!(slot, Slot::Asked(p, _) if *p == peer) {
                *slot = Slot::Missing;
            }
        }
    }

    /// `peer` left: what it was asked is free again.
    pub(crate) fn release(&mut self, peer: PeerKey) {
        for slot in &mut self.slots {
            if matches!(slot, Slot::Asked(p, _) if *p == peer) {
                *slot = Slot::Missing;
            }
        }
    }

    /// Starts over (the dictionary failed its hash): the next advertised size is adopted.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_pieces_from_peers_and_reassembles() {
        let info: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
        let mut f = MetaFetch::default();
        assert!(!f.offer(0) && !f.offer(MAX_METADATA + 1));
        assert!(f.offer(40_000));
        assert!(!f.offer(39_999), "another size is not mixed in");
        let (a, b) = (PeerKey(1), PeerKey(2));
        let now = Instant::now();
        let t = Duration::from_secs(10);
        let mut out = Vec::new();
        f.pick(a, now, t, 2, &mut out);
        assert_eq!(out, [0, 1]);
        out.clear();
        f.pick(b, now, t, 2, &mut out);
        assert_eq!(out, [2]);
        out.clear();
        f.pick(b, now + t, t, 2, &mut out);
        assert_eq!(out, [0], "a late piece is asked again elsewhere");
        f.on_reject(b, 2);
        f.release(a);
        out.clear();
        f.pick(a, now, t, 3, &mut out);
        assert_eq!(out, [1, 2]);
        assert_eq!(f.on_data(0, 40_000, &info[..16384]), None);
        assert_eq!(f.on_data(0, 40_000, &info[..16384]), None);
        assert_eq!(f.on_data(1, 39_000, &info[16384..32768]), None);
        assert_eq!(f.on_data(1, 40_000, &info[16384..32768]), None);
        assert_eq!(f.on_data(2, 40_000, &info[32768..]), Some(info));
        f.reset();
        assert!(f.offer(123));
    }

    #[test]
    fn meta_round_trip_through_info_dict() {
        let info = b"d6:lengthi5e4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaae";
        let hash = InfoHash(Sha1::digest(info).into());
        let m = Meta::from_info(info.to_vec(), hash, &["http://t/announce".into()]).unwrap();
        assert_eq!(m.metainfo.info_hash(), hash);
        assert_eq!(
            m.metainfo.trackers(),
            [vec!["http://t/announce".to_string()]]
        );
        assert_eq!(m.info_piece(0), Some(&info[..]));
        assert_eq!(m.info_piece(1), None);
        let torrent = [&b"d8:announce3:url4:info"[..], info, b"e"].concat();
        let t = Meta::from_torrent(&torrent).unwrap();
        assert_eq!(t.info, info);
        assert_eq!(t.metainfo.info_hash(), hash);
        assert!(Meta::from_info(info.to_vec(), InfoHash([0; 20]), &[]).is_err());
    }
}
