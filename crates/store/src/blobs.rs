//! Blob files: `<data>/blobs/<snapshot id>.yjs`, written crash-safely.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const EXT: &str = "yjs";
const TMP_EXT: &str = "tmp";

#[derive(Debug, Clone)]
pub struct BlobDir {
    dir: PathBuf,
}

impl BlobDir {
    pub fn open(dir: PathBuf) -> std::io::Result<Self> {
        fs::create_dir_all(&dir)?;
        Ok(BlobDir { dir })
    }

    pub fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.{EXT}"))
    }

    /// Writes `bytes` under a temp name, fsyncs, renames into place and fsyncs the directory.
    pub fn write(&self, id: &str, bytes: &[u8]) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{id}.{TMP_EXT}"));
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

    /// Removes a blob file; a missing file is not an error (a crash may have removed it).
    pub fn remove(&self, id: &str) -> std::io::Result<()> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Deletes temp files and blob files whose id is not in `live`; returns how many.
    pub fn collect_orphans(
        &self,
        live: &std::collections::HashSet<String>,
    ) -> std::io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if orphan(&path, live) {
                fs::remove_file(&path)?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn orphan(path: &Path, live: &std::collections::HashSet<String>) -> bool {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    match path.extension().and_then(|e| e.to_str()) {
        Some(TMP_EXT) => true,
        Some(EXT) => !live.contains(stem),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn write_read_remove_and_collect_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::open(dir.path().join("blobs")).unwrap();
        blobs.write("live", b"one").unwrap();
        blobs.write("orphan", b"two").unwrap();
        fs::write(dir.path().join("blobs/half.tmp"), b"partial").unwrap();
        fs::write(dir.path().join("blobs/README"), b"not ours").unwrap();
        assert_eq!(blobs.read("live").unwrap(), b"one");

        let live: HashSet<String> = ["live".to_string()].into();
        assert_eq!(blobs.collect_orphans(&live).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path().join("blobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["README", "live.yjs"]);

        blobs.remove("live").unwrap();
        blobs.remove("live").unwrap(); // already gone: not an error
        assert_eq!(
            blobs.read("live").unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
