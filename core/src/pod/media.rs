//! The media store: photos and signature images, one file per content,
//! named by the SHA-256 of its bytes, in a folder next to the database.
//!
//! Owns the files only: which of them are still needed, uploaded or due for
//! removal is recorded in the database (`store::pod`). A file is written to
//! a temporary name, synced, then renamed, so a kill never leaves a
//! half-written file under a hash name.

use super::draft::MediaRef;
use crate::error::{CoreError, Result};
use crate::keys::{hex, sha256};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The largest photo the core takes (what dispatch accepts).
pub const MAX_MEDIA_BYTES: u64 = 50 * 1024 * 1024;

/// A file now held by the store.
pub type MediaFile = MediaRef;

#[derive(Debug, Clone)]
pub struct MediaStore {
    dir: PathBuf,
}

impl MediaStore {
    /// The store for the database at `database`: `<database>.media/`.
    pub fn beside(database: &Path) -> MediaStore {
        let mut name = database.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".media");
        MediaStore { dir: database.with_file_name(name) }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the file of `sha256` lives (whether or not it is there).
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(sha256)
    }

    /// Copies the photo at `source` into the store.
    pub fn add_file(&self, source: &Path) -> Result<MediaFile> {
        let unusable = |reason: String| CoreError::MediaUnusable { path: source.display().to_string(), reason };
        let metadata = fs::metadata(source).map_err(|e| unusable(e.to_string()))?;
        if !metadata.is_file() {
            return Err(unusable("not a file".into()));
        }
        if metadata.len() > MAX_MEDIA_BYTES {
            return Err(unusable(format!("{} bytes; at most {MAX_MEDIA_BYTES}", metadata.len())));
        }
        let bytes = fs::read(source).map_err(|e| unusable(e.to_string()))?;
        self.add_image(&bytes, &source.display().to_string())
    }

    /// Stores photo bytes from the shell's camera.
    pub fn add_bytes(&self, bytes: &[u8]) -> Result<MediaFile> {
        self.add_image(bytes, "(bytes)")
    }

    fn add_image(&self, bytes: &[u8], origin: &str) -> Result<MediaFile> {
        let content_type = sniff_image(bytes)
            .ok_or_else(|| CoreError::MediaUnusable { path: origin.to_owned(), reason: "not a JPEG, PNG or HEIC image".into() })?;
        self.put(bytes, content_type)
    }

    /// Stores bytes the core made itself (a rendered signature).
    pub fn put(&self, bytes: &[u8], content_type: &str) -> Result<MediaFile> {
        if bytes.len() as u64 > MAX_MEDIA_BYTES {
            return Err(CoreError::MediaUnusable { path: "(bytes)".into(), reason: format!("larger than {MAX_MEDIA_BYTES} bytes") });
        }
        let digest = hex(&sha256(bytes));
        let target = self.path_of(&digest);
        let file = MediaRef { sha256: digest.clone(), content_type: content_type.to_owned(), size_bytes: bytes.len() as u64 };
        // The same content is stored once; a damaged copy is replaced.
        if self.read(&digest).is_ok() {
            return Ok(file);
        }
        fs::create_dir_all(&self.dir).map_err(|e| write_error(&self.dir, e))?;
        let partial = self.dir.join(format!("{digest}.partial"));
        let written = (|| {
            let mut out = fs::OpenOptions::new().write(true).create(true).truncate(true).open(&partial)?;
            out.write_all(bytes)?;
            out.sync_all()?;
            fs::rename(&partial, &target)
        })();
        if let Err(err) = written {
            let _ = fs::remove_file(&partial);
            return Err(write_error(&target, err));
        }
        Ok(file)
    }

    /// The bytes of a stored file, checked against its hash: a file changed
    /// on disk is reported as unusable, never passed on.
    pub fn read(&self, sha256_hex: &str) -> Result<Vec<u8>> {
        let path = self.path_of(sha256_hex);
        let bytes = fs::read(&path).map_err(|e| CoreError::MediaUnusable { path: path.display().to_string(), reason: e.to_string() })?;
        if hex(&sha256(&bytes)) != sha256_hex {
            return Err(CoreError::MediaUnusable { path: path.display().to_string(), reason: "the file no longer matches its hash".into() });
        }
        Ok(bytes)
    }

    pub fn contains(&self, sha256_hex: &str) -> bool {
        self.path_of(sha256_hex).is_file()
    }

    /// Removes a stored file; a file already gone is fine.
    pub fn remove(&self, sha256_hex: &str) -> Result<()> {
        match fs::remove_file(self.path_of(sha256_hex)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(CoreError::Storage { reason: format!("removing media {sha256_hex}: {e}") }),
        }
    }
}

fn write_error(path: &Path, err: io::Error) -> CoreError {
    // ENOSPC and EDQUOT: the disk (or the app's quota) is full.
    if err.kind() == io::ErrorKind::StorageFull || err.kind() == io::ErrorKind::QuotaExceeded || err.raw_os_error() == Some(28) {
        CoreError::DiskFull { reason: format!("writing {}: {err}", path.display()) }
    } else {
        CoreError::Storage { reason: format!("writing {}: {err}", path.display()) }
    }
}

/// The image type of `bytes` by their magic numbers: JPEG, PNG, or HEIC
/// (an ISO-BMFF `ftyp` box with a HEIF brand). `None` for anything else.
pub fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if bytes.len() >= 4 && bytes[..3] == [0xFF, 0xD8, 0xFF] {
        return Some("image/jpeg");
    }
    if bytes.len() > PNG.len() && bytes.starts_with(PNG) {
        return Some("image/png");
    }
    if bytes.len() >= 16 && &bytes[4..8] == b"ftyp" {
        let box_len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        if box_len < 16 || box_len > bytes.len() {
            return None;
        }
        const BRANDS: [&[u8; 4]; 8] = [b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"];
        // The major brand, then the compatible brands after the minor version.
        let major = &bytes[8..12];
        let compatible = bytes[16..box_len].chunks_exact(4);
        if std::iter::once(major).chain(compatible).any(|brand| BRANDS.iter().any(|known| brand == *known)) {
            return Some("image/heic");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn images_are_recognised_by_their_bytes() {
        assert_eq!(sniff_image(b"\xFF\xD8\xFF\xE0rest"), Some("image/jpeg"));
        assert_eq!(sniff_image(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        let mut heic = vec![0, 0, 0, 24];
        heic.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        assert_eq!(sniff_image(&heic), Some("image/heic"));
        let mut mp4 = vec![0, 0, 0, 20];
        mp4.extend_from_slice(b"ftypisom\0\0\0\0isom");
        assert_eq!(sniff_image(&mp4), None);
        assert_eq!(sniff_image(b"GIF89a......"), None);
        assert_eq!(sniff_image(b""), None);
    }

    proptest! {
        #[test]
        fn sniffing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = sniff_image(&bytes);
        }
    }

    #[test]
    fn a_stored_file_is_named_by_its_hash_and_checked_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = MediaStore::beside(&dir.path().join("driver.db"));
        let file = store.add_bytes(b"\xFF\xD8\xFF\xE0photo").unwrap();
        assert_eq!(file.content_type, "image/jpeg");
        assert_eq!(store.read(&file.sha256).unwrap(), b"\xFF\xD8\xFF\xE0photo");
        fs::write(store.path_of(&file.sha256), b"\xFF\xD8\xFF\xE0phot0").unwrap();
        assert!(matches!(store.read(&file.sha256), Err(CoreError::MediaUnusable { .. })));
        store.add_bytes(b"\xFF\xD8\xFF\xE0photo").unwrap();
        assert_eq!(store.read(&file.sha256).unwrap(), b"\xFF\xD8\xFF\xE0photo", "a damaged copy is replaced");
        assert!(matches!(store.add_bytes(b"plain text"), Err(CoreError::MediaUnusable { .. })));
        assert!(matches!(store.add_file(&dir.path().join("missing.jpg")), Err(CoreError::MediaUnusable { .. })));
    }
}
