//! Blob files: `<data>/blobs/<snapshot id>.yjs`, written crash-safely.
//!
//! This module only reads, writes and removes files; which file may be removed is decided from
//! the database (`db::blob_sweep`), never from what the folder holds.

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
    /// Ids of the complete blob files (`<id>.yjs`).
    pub blobs: BTreeSet<String>,
    /// Ids of temp files (`<id>.tmp`): a write that never reached its rename.
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

    fn temp_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{TMP_EXT}"))
    }

    /// Writes `bytes` under a temp name, fsyncs, renames into place and fsyncs the directory.
    pub fn write(&self, id: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.temp_path(id);
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, self.path(id))?;
        File::open(&self.dir)?.sync_all()
    }

    pub fn read(&self, id: &str) -> std::io::Result<Vec<u8>> {
        fs::read(self.path(id))
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
    fn write_read_list_remove() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        blobs.write("live", b"one").unwrap();
        blobs.write("other", b"two").unwrap();
        fs::write(dir.path().join("blobs/half.tmp"), b"partial").unwrap();
        fs::write(dir.path().join("blobs/README"), b"not ours").unwrap();
        fs::create_dir(dir.path().join("blobs/sub.yjs")).unwrap();
        assert_eq!(blobs.read("live").unwrap(), b"one");

        let listing = blobs.list().unwrap();
        assert_eq!(
            listing.blobs,
            ["live".to_string(), "other".to_string()].into()
        );
        assert_eq!(listing.temps, ["half".to_string()].into());

        blobs.remove_temp("half").unwrap();
        blobs.remove("live").unwrap();
        blobs.remove("live").unwrap(); // already gone: not an error
        assert_eq!(
            blobs.read("live").unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        let mut left: Vec<String> = fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        // Listing removed nothing on its own; only the named files went.
        assert_eq!(left, ["README", "other.yjs", "sub.yjs"]);
    }
}
