//! [`FileStorage`]: a torrent's bytes in its own files under a root folder, read and written with
//! positional I/O through a bounded cache of open handles.
//!
//! A single-file torrent is the file `root/name`; a multi-file torrent the folder `root/name` with
//! its files below (the paths of the [`Layout`]). Every path component is checked again here,
//! whatever the metainfo parser already refused: nothing is ever opened outside `root`. (Symbolic
//! links the user placed under `root` are followed: that is the user's choice, not the torrent's.)
//!
//! Virtual files ([`LayoutFile::is_virtual`](super::LayoutFile::is_virtual): BEP 47 pad files and
//! symbolic links) are never created, opened or preallocated: their bytes read as zeros, and a
//! write must carry zeros there ([`StorageError::PadNotZero`] otherwise, before anything is
//! written). Files with the BEP 47 `x` attribute are created executable (mode 0777 less the
//! umask, where others get 0666).
//!
//! Files deleted or replaced behind the storage's back stay readable through a cached handle
//! until it is evicted; [`FileStorage::close_files`] drops them all.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::cache::{CacheStats, FileCache, Handle};
use super::{Layout, Op, Storage, StorageError};

/// Default bound of the open-file cache.
pub const DEFAULT_OPEN_FILES: usize = 64;

/// What the storage may do to its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Downloading: files are opened read-write and created (with their folders) as needed.
    #[default]
    ReadWrite,
    /// Seeding only: files are opened read-only, nothing is created, writes are refused.
    ReadOnly,
}

/// Options of [`FileStorage::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageOptions {
    /// Read-write (downloading) or read-only (seeding).
    pub mode: Mode,
    /// In [`Mode::ReadWrite`], create every file at once at its full length (sparse: `set_len`,
    /// so no blocks are allocated until written). Files are never shortened. Without it a file
    /// is created on its first write and grows as pieces arrive.
    pub preallocate: bool,
    /// Bound of the open-file cache (at least 1).
    pub open_files: usize,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            mode: Mode::ReadWrite,
            preallocate: false,
            open_files: DEFAULT_OPEN_FILES,
        }
    }
}

/// A [`Storage`] over the torrent's files on disk.
#[derive(Debug)]
pub struct FileStorage {
    layout: Layout,
    paths: Vec<PathBuf>,
    read_only: AtomicBool,
    /// Files written since the last [`Storage::sync`].
    dirty: Vec<AtomicBool>,
    cache: FileCache,
}

fn io(path: &Path, op: Op) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        op,
        source,
    }
}

/// `root` joined with `components`, refusing anything that could leave `root`.
fn safe_join(root: &Path, components: &[String]) -> Result<PathBuf, StorageError> {
    let mut path = root.to_path_buf();
    let escape = |path: &Path, rest: &[String]| StorageError::PathEscape {
        path: rest.iter().fold(path.to_path_buf(), |p, c| p.join(c)),
    };
    if components.is_empty() {
        return Err(escape(&path, &[]));
    }
    for (i, c) in components.iter().enumerate() {
        let bad = c.is_empty()
            || c == "."
            || c == ".."
            || c.contains(['/', '\\', '\0'])
            || !matches!(Path::new(c).components().next(), Some(Component::Normal(_)));
        if bad {
            return Err(escape(&path, &components[i..]));
        }
        path.push(c);
    }
    // Belt and braces: what was added is only plain names.
    match path.strip_prefix(root) {
        Ok(rel) if rel.components().all(|c| matches!(c, Component::Normal(_))) => Ok(path),
        _ => Err(StorageError::PathEscape { path }),
    }
}

impl FileStorage {
    /// Storage for `layout` under `root`. In [`Mode::ReadWrite`] it creates the folders and the
    /// zero-length files at once (they are never written), and with `preallocate` every file at
    /// full length; otherwise it touches nothing until used. Virtual files (pad files, symbolic
    /// links) are never created.
    pub fn new(
        root: impl AsRef<Path>,
        layout: &Layout,
        options: StorageOptions,
    ) -> Result<Self, StorageError> {
        let root = root.as_ref();
        let paths = layout
            .files()
            .iter()
            .map(|f| safe_join(root, &f.path))
            .collect::<Result<Vec<_>, _>>()?;
        let storage = Self {
            layout: layout.clone(),
            dirty: paths.iter().map(|_| AtomicBool::new(false)).collect(),
            paths,
            read_only: AtomicBool::new(options.mode == Mode::ReadOnly),
            cache: FileCache::new(options.open_files),
        };
        if options.mode == Mode::ReadWrite {
            let mut made_dir: Option<&Path> = None;
            for (f, path) in layout.files().iter().zip(&storage.paths) {
                if f.is_virtual() || (f.length != 0 && !options.preallocate) {
                    continue;
                }
                if let Some(parent) = path.parent().filter(|p| Some(*p) != made_dir) {
                    std::fs::create_dir_all(parent).map_err(io(parent, Op::CreateDir))?;
                    made_dir = Some(parent);
                }
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .mode(create_mode(f.attr.executable))
                    .open(path)
                    .map_err(io(path, Op::Open))?;
                let len = file.metadata().map_err(io(path, Op::Metadata))?.len();
                if len < f.length {
                    file.set_len(f.length).map_err(io(path, Op::SetLen))?;
                }
            }
        }
        Ok(storage)
    }

    /// The layout this storage serves.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Where file `file` (an index into [`Layout::files`]) lives on disk.
    pub fn path(&self, file: usize) -> Option<&Path> {
        self.paths.get(file).map(PathBuf::as_path)
    }

    /// The current mode.
    pub fn mode(&self) -> Mode {
        if self.read_only.load(Ordering::Acquire) {
            Mode::ReadOnly
        } else {
            Mode::ReadWrite
        }
    }

    /// Switches mode (a finished download becomes a seed): syncs, then drops the cached handles
    /// so files are reopened the new way.
    pub fn set_mode(&self, mode: Mode) -> Result<(), StorageError> {
        if mode == Mode::ReadOnly {
            self.sync()?;
        }
        self.read_only
            .store(mode == Mode::ReadOnly, Ordering::Release);
        self.cache.clear();
        Ok(())
    }

    /// Closes the cached handles (each closes once no operation still uses it). A cached handle
    /// keeps reading a file deleted or replaced behind our back; after this, files are opened
    /// afresh by path.
    pub fn close_files(&self) {
        self.cache.clear();
    }

    /// Counters of the open-file cache.
    pub fn cache_stats(&self) -> CacheStats {
        self.cache.stats()
    }

    fn handle(&self, index: usize, write: bool) -> Result<Arc<Handle>, StorageError> {
        let path = &self.paths[index];
        if write && self.mode() == Mode::ReadOnly {
            return Err(StorageError::ReadOnly { path: path.clone() });
        }
        self.cache
            .get(index, write, || self.open(index, path, write))
    }

    fn open(&self, index: usize, path: &Path, write: bool) -> Result<(File, bool), StorageError> {
        if self.mode() == Mode::ReadOnly {
            return match File::open(path) {
                Ok(f) => Ok((f, false)),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(StorageError::Missing {
                    path: path.to_owned(),
                }),
                Err(e) => Err(io(path, Op::Open)(e)),
            };
        }
        let mut rw = OpenOptions::new();
        rw.read(true).write(true);
        if write {
            let executable = self.layout.files()[index].attr.executable;
            rw.create(true)
                .truncate(false)
                .mode(create_mode(executable));
        }
        match rw.open(path) {
            Ok(f) => Ok((f, true)),
            Err(e) if e.kind() == ErrorKind::NotFound && write => {
                // A folder removed under us: make it again, once.
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io(parent, Op::CreateDir))?;
                }
                Ok((rw.open(path).map_err(io(path, Op::Open))?, true))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Err(StorageError::Missing {
                path: path.to_owned(),
            }),
            // A complete file we may only read (seeding from read-only media in read-write mode).
            Err(e)
                if !write
                    && matches!(
                        e.kind(),
                        ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                Ok((File::open(path).map_err(io(path, Op::Open))?, false))
            }
            Err(e) => Err(io(path, Op::Open)(e)),
        }
    }
}

/// The permission bits a new file is created with (before the umask): BEP 47 `x` files are
/// executable.
fn create_mode(executable: bool) -> u32 {
    if executable {
        0o777
    } else {
        0o666
    }
}

/// Fills `buf` from `file` at `offset`, looping over short reads.
fn read_full(
    file: &File,
    path: &Path,
    mut buf: &mut [u8],
    offset: u64,
) -> Result<(), StorageError> {
    let wanted = offset + buf.len() as u64;
    let mut at = offset;
    while !buf.is_empty() {
        match file.read_at(buf, at) {
            Ok(0) => {
                let len = file.metadata().map_or(at, |m| m.len());
                return Err(StorageError::Truncated {
                    path: path.to_owned(),
                    len,
                    wanted,
                });
            }
            Ok(n) => {
                buf = &mut buf[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path, Op::Read)(e)),
        }
    }
    Ok(())
}

/// Writes all of `data` to `file` at `offset`, looping over short writes.
fn write_full(file: &File, path: &Path, mut data: &[u8], offset: u64) -> Result<(), StorageError> {
    let mut at = offset;
    while !data.is_empty() {
        match file.write_at(data, at) {
            Ok(0) => return Err(io(path, Op::Write)(ErrorKind::WriteZero.into())),
            Ok(n) => {
                data = &data[n..];
                at += n as u64;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path, Op::Write)(e)),
        }
    }
    Ok(())
}

impl Storage for FileStorage {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), StorageError> {
        for span in self.layout.spans(offset, buf.len() as u64)? {
            // Spans lie inside `buf`, whose length is a usize.
            let dst = &mut buf[span.pos as usize..(span.pos + span.len) as usize];
            if self.layout.files()[span.file].is_virtual() {
                dst.fill(0);
                continue;
            }
            let handle = self.handle(span.file, false)?;
            read_full(&handle.file, &self.paths[span.file], dst, span.file_offset)?;
        }
        Ok(())
    }

    fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let spans = self.layout.spans(offset, data.len() as u64)?;
        if self.mode() == Mode::ReadOnly {
            // Refused even when every byte falls in pad files, which are never written anyway.
            if let Some(span) = spans.clone().next() {
                return Err(StorageError::ReadOnly {
                    path: self.paths[span.file].clone(),
                });
            }
        }
        // Checked before anything is written, so corrupt data leaves no trace.
        if let Some(offset) = self.layout.first_nonzero_virtual(offset, data) {
            return Err(StorageError::PadNotZero { offset });
        }
        for span in spans {
            if self.layout.files()[span.file].is_virtual() {
                continue;
            }
            let src = &data[span.pos as usize..(span.pos + span.len) as usize];
            let handle = self.handle(span.file, true)?;
            write_full(&handle.file, &self.paths[span.file], src, span.file_offset)?;
            self.dirty[span.file].store(true, Ordering::Release);
        }
        Ok(())
    }

    fn sync(&self) -> Result<(), StorageError> {
        for (index, dirty) in self.dirty.iter().enumerate() {
            if !dirty.swap(false, Ordering::AcqRel) {
                continue;
            }
            // fsync flushes the file whichever descriptor it is called on.
            let r = self
                .handle(index, false)
                .and_then(|h| h.file.sync_data().map_err(io(&self.paths[index], Op::Sync)));
            if let Err(e) = r {
                dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    fn stored_len(&self, file: usize) -> Result<Option<u64>, StorageError> {
        let (Some(path), Some(f)) = (self.paths.get(file), self.layout.files().get(file)) else {
            return Ok(Some(0));
        };
        if f.is_virtual() {
            // Zeros, always there.
            return Ok(Some(f.length));
        }
        match std::fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(Some(m.len().min(f.length))),
            Ok(_) => Ok(Some(0)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Some(0)),
            Err(e) => Err(io(path, Op::Metadata)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_join_refuses_escapes() {
        let root = Path::new("/srv/data");
        let ok = safe_join(root, &["t".into(), "a b".into(), "..c".into()]).unwrap();
        assert_eq!(ok, Path::new("/srv/data/t/a b/..c"));
        for bad in [
            vec![],
            vec!["..".to_string()],
            vec!["t".into(), "..".into(), "..".into(), "etc".into()],
            vec![".".into()],
            vec!["".into()],
            vec!["/etc".into()],
            vec!["a/../../b".into()],
            vec!["a\\..".into()],
            vec!["a\0b".into()],
        ] {
            assert!(
                matches!(safe_join(root, &bad), Err(StorageError::PathEscape { .. })),
                "{bad:?}"
            );
        }
    }
}
