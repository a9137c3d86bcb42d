//! A memory-mapped file of fixed-size entries: the storage under both the offset index and the
//! time index.
//!
//! Invariants:
//! - `entries * entry_size <= map.len() == file length`; bytes past `entries` are unused (zero).
//! - Every byte of the map is backed by blocks the filesystem has already allocated: an active
//!   segment's file grows in steps whose bytes are first *written* (zeros, with `pwrite`), and
//!   only then mapped. Writing through a map over a hole (a sparse `set_len`) makes the
//!   filesystem allocate at page-fault time, and on a full disk that is a SIGBUS that kills the
//!   process; a failed `pwrite` is an ordinary ENOSPC error instead.
//! - [`IndexFile::trim`] cuts the file to the used entries when the segment seals; an index file
//!   found on disk is therefore exactly `entries * entry_size` long when it was sealed cleanly,
//!   and the owner checks the contents before trusting them.
//! - Only this process writes these files, and never truncates one while it is mapped.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

/// Entries an active index file grows by at a time (32 KiB of offset index, 48 KiB of time
/// index): one growth per ~16 MiB of log at the default index interval.
const GROW_ENTRIES: usize = 4096;

#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    map: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
    /// Most entries the file may hold: what its segment can need at most.
    max_entries: usize,
}

impl IndexFile {
    /// Creates (or empties) the file, which holds up to `max_entries` entries. No space is
    /// taken until entries are pushed.
    pub(crate) fn create(path: &Path, entry_size: usize, max_entries: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            file,
            map: None,
            entry_size,
            entries: 0,
            max_entries,
        })
    }

    /// Maps an existing (sealed) file; every whole entry in it counts as used. Returns `None`
    /// when the file is missing or its length is not a whole number of entries (the caller then
    /// rebuilds the index).
    pub(crate) fn open_existing(path: &Path, entry_size: usize) -> io::Result<Option<Self>> {
        let file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len() as usize;
        if len % entry_size != 0 {
            return Ok(None);
        }
        let map = map(&file)?;
        Ok(Some(IndexFile {
            path: path.to_path_buf(),
            file,
            map,
            entry_size,
            entries: len / entry_size,
            max_entries: len / entry_size,
        }))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.max_entries
    }

    fn mapped_entries(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len() / self.entry_size)
    }

    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.entries);
        let start = i * self.entry_size;
        match &self.map {
            Some(m) => &m[start..start + self.entry_size],
            None => &[],
        }
    }

    /// Appends an entry: `Ok(false)` when the file holds `max_entries` already, an error when it
    /// had to grow and the filesystem refused the space (the index is unchanged then).
    pub(crate) fn push(&mut self, entry: &[u8]) -> io::Result<bool> {
        debug_assert_eq!(entry.len(), self.entry_size);
        if self.is_full() {
            return Ok(false);
        }
        if self.entries >= self.mapped_entries() {
            self.grow()?;
        }
        let start = self.entries * self.entry_size;
        match self.map.as_mut() {
            Some(m) => m[start..start + self.entry_size].copy_from_slice(entry),
            None => return Ok(false),
        }
        self.entries += 1;
        Ok(true)
    }

    /// Writes the next step of zeros past the mapped end, then maps the longer file.
    fn grow(&mut self) -> io::Result<()> {
        let old_len = self.mapped_entries() * self.entry_size;
        let new_entries = (self.mapped_entries() + GROW_ENTRIES).min(self.max_entries);
        let new_len = new_entries * self.entry_size;
        if let Err(e) = self
            .file
            .write_all_at(&vec![0u8; new_len - old_len], old_len as u64)
        {
            // Leave the file as long as the map, which stays valid.
            let _ = self.file.set_len(old_len as u64);
            return Err(e);
        }
        let longer = map(&self.file)?;
        self.map = longer;
        Ok(())
    }

    /// Forgets entries from `n` on (their bytes are zeroed so a later trim cannot resurrect them).
    pub(crate) fn truncate_entries(&mut self, n: usize) {
        if n >= self.entries {
            return;
        }
        let (from, to) = (n * self.entry_size, self.entries * self.entry_size);
        if let Some(m) = self.map.as_mut() {
            m[from..to].fill(0);
        }
        self.entries = n;
    }

    /// Cuts the file to the used entries (done when a segment seals) and remaps it. On failure
    /// the index stays usable: it is remapped at whatever length the file has, and if even that
    /// fails it forgets its entries (lookups then scan from the segment start, slower but right).
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        // Unmap before shrinking: touching a mapped page past EOF is SIGBUS.
        self.map = None;
        let cut = self.file.set_len((self.entries * self.entry_size) as u64);
        match map(&self.file) {
            Ok(m) => self.map = m,
            Err(e) => {
                self.entries = 0;
                return Err(e);
            }
        }
        self.entries = self.entries.min(self.mapped_entries());
        self.max_entries = self.entries;
        cut
    }

    pub(crate) fn sync(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// The file handle, for fsync by the flusher.
    pub(crate) fn try_clone_file(&self) -> io::Result<File> {
        self.file.try_clone()
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Maps the whole file read-write; `None` for an empty file (a zero-length map is not allowed).
#[allow(unsafe_code)]
fn map(file: &File) -> io::Result<Option<MmapMut>> {
    let len = file.metadata()?.len() as usize;
    if len == 0 {
        return Ok(None);
    }
    // SAFETY: memmap2 requires that the file is not truncated or modified by anyone else while
    // mapped. The file lives in the broker's data directory, which the broker owns; inside this
    // process it is only resized by `grow` (which writes past the mapped end, then maps again)
    // and `trim` (which drops the map first).
    let m = unsafe { MmapOptions::new().len(len).map_mut(file)? };
    Ok(Some(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_in_written_steps_and_trims_to_the_entries() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("i");
        let mut f = IndexFile::create(&p, 8, GROW_ENTRIES + 10).unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0, "no space up front");
        for i in 0..(GROW_ENTRIES + 10) as u64 {
            assert!(f.push(&i.to_be_bytes()).unwrap());
        }
        assert!(!f.push(&[0; 8]).unwrap(), "full at max_entries");
        let meta = std::fs::metadata(&p).unwrap();
        assert_eq!(meta.len(), ((GROW_ENTRIES + 10) * 8) as u64);
        // Written, not sparse: every byte has a block.
        use std::os::unix::fs::MetadataExt;
        assert!(meta.blocks() * 512 >= meta.len(), "a sparse index file");
        assert_eq!(
            f.entry(GROW_ENTRIES + 9),
            &((GROW_ENTRIES + 9) as u64).to_be_bytes()
        );
        f.truncate_entries(3);
        f.trim().unwrap();
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 24);
        assert_eq!(f.len(), 3);
        assert!(f.is_full());
    }
}
