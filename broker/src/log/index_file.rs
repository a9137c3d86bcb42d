//! A memory-mapped file of fixed-size entries: the storage under both the offset index and the
//! time index.
//!
//! Invariants:
//! - `entries * entry_size <= map.len()`; bytes past `entries` are unused (zero on a fresh file).
//! - The file of an active segment is preallocated to the most entries the segment can need, so
//!   appends never remap. [`IndexFile::trim`] cuts it to the used length when the segment seals;
//!   an index file found on disk is therefore exactly `entries * entry_size` long when it was
//!   sealed cleanly, and the owner checks the contents before trusting them.
//! - Only this process writes these files, and never truncates one while it is mapped.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::{MmapMut, MmapOptions};

#[derive(Debug)]
pub(crate) struct IndexFile {
    path: PathBuf,
    file: File,
    map: Option<MmapMut>,
    entry_size: usize,
    entries: usize,
}

impl IndexFile {
    /// Creates (or empties) the file and preallocates room for `capacity` entries.
    pub(crate) fn create(path: &Path, entry_size: usize, capacity: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len((capacity * entry_size) as u64)?;
        let map = map(&file)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            file,
            map,
            entry_size,
            entries: 0,
        })
    }

    /// Maps an existing file; every whole entry in it counts as used. Returns `None` when the
    /// file is missing or its length is not a whole number of entries (the caller then rebuilds
    /// the index).
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
        }))
    }

    pub(crate) fn len(&self) -> usize {
        self.entries
    }

    pub(crate) fn capacity(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len() / self.entry_size)
    }

    pub(crate) fn is_full(&self) -> bool {
        self.entries >= self.capacity()
    }

    pub(crate) fn entry(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.entries);
        let start = i * self.entry_size;
        match &self.map {
            Some(m) => &m[start..start + self.entry_size],
            None => &[],
        }
    }

    /// Appends an entry; `false` when the preallocated room is used up.
    pub(crate) fn push(&mut self, entry: &[u8]) -> bool {
        debug_assert_eq!(entry.len(), self.entry_size);
        if self.is_full() {
            return false;
        }
        let start = self.entries * self.entry_size;
        if let Some(m) = self.map.as_mut() {
            m[start..start + self.entry_size].copy_from_slice(entry);
        }
        self.entries += 1;
        true
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

    /// Cuts the file to the used entries (done when a segment seals) and remaps it.
    pub(crate) fn trim(&mut self) -> io::Result<()> {
        // Unmap before shrinking: touching a mapped page past EOF is SIGBUS.
        self.map = None;
        self.file.set_len((self.entries * self.entry_size) as u64)?;
        self.map = map(&self.file)?;
        Ok(())
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
    // process it is only resized by `trim`, which drops the map first.
    let m = unsafe { MmapOptions::new().len(len).map_mut(file)? };
    Ok(Some(m))
}
