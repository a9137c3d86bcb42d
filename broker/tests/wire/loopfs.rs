//! A real filesystem that fails on demand, for the storage-fault tests: an ext4 image on a small
//! tmpfs, loop-mounted. Two ways to fail:
//! - a failing device: the image is larger than the tmpfs, so once the tmpfs is full the loop
//!   device cannot write the blocks ext4 thinks it has: `fdatasync` fails (ENOSPC/EIO), exactly
//!   what a dying disk does under the page cache;
//! - a full disk: the tmpfs has room for the whole image, so ext4 itself runs out of blocks and
//!   says ENOSPC to `write` (and to a page fault on a memory-mapped hole: SIGBUS), and gives the
//!   space back when a file is deleted.
//!
//! Needs root (mount), as CI has.

use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) struct LoopFs {
    outer: tempfile::TempDir,
    inner: PathBuf,
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed (these tests need root and loop devices): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl LoopFs {
    /// An ext4 filesystem of `image_mb` on `backing_mb` of real space (less: a failing device;
    /// more: a disk that fills up).
    pub(crate) fn new(backing_mb: u32, image_mb: u32) -> LoopFs {
        let outer = tempfile::tempdir().unwrap();
        let inner = outer.path().join("fs");
        let backing = outer.path().join("backing");
        std::fs::create_dir_all(&backing).unwrap();
        std::fs::create_dir_all(&inner).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={backing_mb}m"),
                "tmpfs",
                backing.to_str().unwrap(),
            ],
        );
        let img = backing.join("img");
        run(
            "truncate",
            &["-s", &format!("{image_mb}M"), img.to_str().unwrap()],
        );
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-E",
                "lazy_itable_init=0,lazy_journal_init=0",
                img.to_str().unwrap(),
            ],
        );
        run(
            "mount",
            &["-o", "loop", img.to_str().unwrap(), inner.to_str().unwrap()],
        );
        LoopFs { outer, inner }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.inner
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.inner).status();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.outer.path().join("backing"))
            .status();
    }
}
