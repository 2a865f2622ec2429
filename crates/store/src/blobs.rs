//! Blob files: `<data>/blobs/<snapshot id>.yjs`, and `<snapshot id>.tmp` while a save is in
//! progress.
//!
//! A save writes `<id>.tmp` and makes it durable (file and directory fsync) before its row
//! switch commits, and renames it to `<id>.yjs` after the commit. So a `.tmp` is either a save
//! that never committed (no blob row names it) or a committed snapshot whose rename has not
//! happened yet (a blob row names it): reads fall back to it, and the start-up sweep promotes it.
//!
//! This module only reads, writes, renames and removes files; which file may be removed is
//! decided from the database (`db`), never from what the folder holds.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const EXT: &str = "yjs";
const TMP_EXT: &str = "tmp";

#[derive(Debug, Clone)]
pub struct BlobDir {
    dir: PathBuf,
}

/// What the blob folder holds, by name (other files are not ours and are not listed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    /// Ids of the blob files in place (`<id>.yjs`).
    pub blobs: BTreeSet<String>,
    /// Ids of temp files (`<id>.tmp`): a save that never committed, or one whose rename is due.
    pub temps: BTreeSet<String>,
}

impl BlobDir {
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(BlobDir { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{EXT}"))
    }

    pub fn temp_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{TMP_EXT}"))
    }

    /// Writes `bytes` to `<id>.tmp` and makes it durable: fsyncs the file, then the directory,
    /// so the entry survives power loss. The directory fsync also makes every earlier rename
    /// and removal in the folder durable.
    pub fn write_temp(&self, id: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut file = File::create(self.temp_path(id))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        self.sync()
    }

    /// Renames `<id>.tmp` to `<id>.yjs`, without an fsync: a rename lost in a crash leaves the
    /// temp file, which reads fall back to and the start-up sweep promotes again.
    pub fn promote(&self, id: &str) -> std::io::Result<()> {
        fs::rename(self.temp_path(id), self.path(id))
    }

    /// Fsyncs the directory: every rename and removal made in it so far survives power loss.
    pub fn sync(&self) -> std::io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    /// Reads the blob of `id`: `<id>.yjs`, or `<id>.tmp` when its rename has not happened yet.
    pub fn read(&self, id: &str) -> std::io::Result<Vec<u8>> {
        match fs::read(self.path(id)) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::read(self.temp_path(id)),
            other => other,
        }
    }

    /// Removes the blob file of `id` and its temp file, if any; a missing file is not an error
    /// (a crash may have removed it already).
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        remove_if_present(&self.path(id))?;
        remove_if_present(&self.temp_path(id))
    }

    /// Removes only the temp file of `id`.
    pub fn remove_temp(&self, id: &str) -> std::io::Result<()> {
        remove_if_present(&self.temp_path(id))
    }

    /// The blob and temp files in the folder.
    pub fn list(&self) -> std::io::Result<Listing> {
        let mut listing = Listing::default();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_file() {
                continue;
            }
            let path = entry.path();
            let (Some(stem), Some(ext)) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|e| e.to_str()),
            ) else {
                continue;
            };
            match ext {
                EXT => listing.blobs.insert(stem.to_owned()),
                TMP_EXT => listing.temps.insert(stem.to_owned()),
                _ => false,
            };
        }
        Ok(listing)
    }
}

fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_promote_read_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        for (id, bytes) in [("live", b"one"), ("other", b"two"), ("due", b"new")] {
            blobs.write_temp(id, bytes).unwrap();
        }
        blobs.promote("live").unwrap();
        blobs.promote("other").unwrap();
        fs::write(dir.path().join("blobs/README"), b"not ours").unwrap();
        fs::create_dir(dir.path().join("blobs/sub.yjs")).unwrap();
        assert_eq!(blobs.read("live").unwrap(), b"one");
        // Not renamed yet: read from the temp file.
        assert_eq!(blobs.read("due").unwrap(), b"new");

        let listing = blobs.list().unwrap();
        assert_eq!(
            listing.blobs,
            ["live".to_string(), "other".to_string()].into()
        );
        assert_eq!(listing.temps, ["due".to_string()].into());

        blobs.remove_temp("due").unwrap();
        blobs.remove("live").unwrap();
        blobs.remove("live").unwrap(); // already gone: not an error
        for id in ["live", "due"] {
            assert_eq!(
                blobs.read(id).unwrap_err().kind(),
                std::io::ErrorKind::NotFound
            );
        }
        let mut left: Vec<String> = fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // Listing removed nothing on its own; only the named files went.
        assert_eq!(left, ["README", "other.yjs", "sub.yjs"]);
    }
}
