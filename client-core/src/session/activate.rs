//! Bringing a torrent's data up once its metadata is known: open the storage, recheck what is
//! already there (resume), build the picker, start verifying, and tell the connected peers.
//! For a magnet link this follows [`metadata_fetched`]; for a `.torrent` it runs at start,
//! before any peer is accepted or dialed.

use std::sync::Arc;

use super::metadata::Meta;
use super::pieces::Data;
use super::shared::{Cmd, Shared};
use super::stats::TorrentState;
use super::{SessionError, StorageConfig, TorrentSource};
use crate::storage::{
    recheck, FileStorage, MemoryStorage, Mode, Storage, StorageOptions, Verifier,
};

/// The info dictionary was fetched from peers: check it against the info hash and activate,
/// or start the fetch over.
pub(crate) async fn metadata_fetched(shared: Arc<Shared>, info: Vec<u8>) {
    let trackers = match &shared.config.source {
        TorrentSource::Magnet(m) => m.trackers.clone(),
        TorrentSource::Torrent(_) => Vec::new(),
    };
    let info_hash = shared.info_hash;
    let parsed =
        tokio::task::spawn_blocking(move || Meta::from_info(info, info_hash, &trackers)).await;
    let meta = match parsed {
        Ok(Ok(meta)) => Arc::new(meta),
        _ => {
            // Peers that advertised a size will offer it again at their next tick.
            shared.lock().fetch.reset();
            return;
        }
    };
    shared.lock().meta = Some(Arc::clone(&meta));
    let activated = tokio::select! {
        r = activate(&shared, meta) => r,
        () = shared.shutdown_signal() => return,
    };
    if let Err(e) = activated {
        fail(&shared, &e);
    }
}

/// Records a fatal error and shuts the torrent down.
pub(crate) fn fail(shared: &Shared, e: &SessionError) {
    let mut st = shared.lock();
    shared.set_state(&mut st, TorrentState::Failed(e.to_string()));
    drop(st);
    shared.shut_down();
}

/// Opens the storage, rechecks it, and installs the torrent's [`Data`].
pub(crate) async fn activate(shared: &Arc<Shared>, meta: Arc<Meta>) -> Result<(), SessionError> {
    {
        let mut st = shared.lock();
        shared.set_state(&mut st, TorrentState::Checking);
    }
    let seed_only = shared.config.seed_only;
    let storage_cfg = shared.config.storage.clone();
    let (m, s) = (Arc::clone(&meta), Arc::clone(shared));
    let opened = tokio::task::spawn_blocking(move || -> Result<_, SessionError> {
        let layout = &m.layout;
        let n = layout.piece_count() as usize;
        let (storage, fresh): (Arc<dyn Storage>, bool) = match storage_cfg {
            StorageConfig::Directory(root) => {
                let mode = if seed_only {
                    Mode::ReadOnly
                } else {
                    Mode::ReadWrite
                };
                let options = StorageOptions {
                    mode,
                    ..StorageOptions::default()
                };
                (Arc::new(FileStorage::new(root, layout, options)?), false)
            }
            StorageConfig::Memory => {
                let len = usize::try_from(layout.total_length())
                    .map_err(|_| SessionError::BadMetadata("too large for memory"))?;
                (Arc::new(MemoryStorage::new(len)), true)
            }
            StorageConfig::Custom(s) => (s, false),
        };
        let have = if fresh {
            vec![false; n]
        } else {
            let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
            recheck(&*storage, layout, m.metainfo.pieces(), threads, |p| {
                s.lock().recheck = Some(p);
            })?
        };
        Ok((storage, have))
    })
    .await;
    let (storage, have) =
        opened.map_err(|_| SessionError::Failed("recheck task died".into()))??;
    let verifier = Arc::new(Verifier::with_defaults(
        Arc::clone(&storage),
        Arc::clone(&meta.layout),
    )?);
    let mut data = Data::new(storage, verifier, meta, &have);
    let mut st = shared.lock();
    let st = &mut *st;
    let n = data.picker.piece_count();
    // Pieces peers announced before we knew the piece count are checked and counted now.
    for e in st.peers.values_mut() {
        let fits = e.pieces.all || valid_bits(&e.pieces.bits, n);
        if !fits {
            // Never counted by the picker, so nothing to withdraw when it leaves.
            e.pieces = Default::default();
            e.send(Cmd::Close);
            continue;
        }
        e.pieces.bits.resize(n.div_ceil(8) as usize, 0);
        data.picker.peer_bitfield(&e.pieces);
        e.wanted = data.wanted_in(&e.pieces);
    }
    let done = data.picker.is_complete() || shared.config.seed_only;
    st.data = Some(data);
    st.recheck = None;
    let state = if done {
        TorrentState::Seeding
    } else {
        TorrentState::Downloading
    };
    shared.set_state(st, state);
    st.broadcast(Cmd::Ready);
    Ok(())
}

/// Whether `bits` sets no piece at or past `n` (and is no longer than `n` needs).
fn valid_bits(bits: &[u8], n: u32) -> bool {
    let full = n.div_ceil(8) as usize;
    if bits.len() > full {
        return false;
    }
    let spare = (8 - n % 8) % 8;
    match bits.get(full.wrapping_sub(1)) {
        Some(last) if spare > 0 => last & ((1u8 << spare) - 1) == 0,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::valid_bits;

    #[test]
    fn bits_checked_against_piece_count() {
        assert!(valid_bits(&[], 10));
        assert!(valid_bits(&[0xff, 0xc0], 10));
        assert!(!valid_bits(&[0xff, 0xe0], 10));
        assert!(!valid_bits(&[0, 0, 1], 10));
        assert!(valid_bits(&[0xff], 8));
        assert!(
            valid_bits(&[0x80], 10),
            "shorter than needed: the rest is unset"
        );
    }
}
