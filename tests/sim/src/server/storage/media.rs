//! Media files (photos, signatures) by SHA-256: the upload's progress and its
//! bytes, stored as the chunks they arrived in.

use super::{StorageError, to_i64, to_u64};
use rusqlite::{OptionalExtension, Transaction, params};

/// What the server holds of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRecord {
    /// The whole file's size, as the first chunk announced it.
    pub size: u64,
    pub received: u64,
    /// Every byte arrived and the hash matched.
    pub complete: bool,
}

pub fn get(tx: &Transaction<'_>, sha256: &str) -> Result<Option<MediaRecord>, StorageError> {
    let row: Option<(i64, i64, bool)> = tx
        .query_row("SELECT size, received, complete FROM media WHERE sha256 = ?1", [sha256], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    row.map(|(size, received, complete)| {
        Ok(MediaRecord { size: to_u64("media.size", size)?, received: to_u64("media.received", received)?, complete })
    })
    .transpose()
}

/// Stores the chunk starting at `offset` (which the caller checked is the
/// number of bytes held) and returns the new record.
pub fn append_chunk(
    tx: &Transaction<'_>,
    sha256: &str,
    size: u64,
    offset: u64,
    data: &[u8],
) -> Result<MediaRecord, StorageError> {
    tx.execute(
        "INSERT INTO media (sha256, size, received, complete) VALUES (?1, ?2, 0, 0) ON CONFLICT (sha256) DO NOTHING",
        params![sha256, to_i64(size)],
    )?;
    tx.execute(
        "INSERT INTO media_chunks (sha256, offset, data) VALUES (?1, ?2, ?3)",
        params![sha256, to_i64(offset), data],
    )?;
    let received = offset + data.len() as u64;
    tx.execute("UPDATE media SET received = ?2 WHERE sha256 = ?1", params![sha256, to_i64(received)])?;
    Ok(MediaRecord { size, received, complete: false })
}

pub fn mark_complete(tx: &Transaction<'_>, sha256: &str) -> Result<(), StorageError> {
    tx.execute("UPDATE media SET complete = 1 WHERE sha256 = ?1", [sha256])?;
    Ok(())
}

/// Forgets an upload and every byte of it.
pub fn discard(tx: &Transaction<'_>, sha256: &str) -> Result<(), StorageError> {
    tx.execute("DELETE FROM media_chunks WHERE sha256 = ?1", [sha256])?;
    tx.execute("DELETE FROM media WHERE sha256 = ?1", [sha256])?;
    Ok(())
}

/// Feeds the file's bytes, in order, to `sink`.
pub fn read_chunks(tx: &Transaction<'_>, sha256: &str, mut sink: impl FnMut(&[u8])) -> Result<(), StorageError> {
    let mut statement = tx.prepare("SELECT data FROM media_chunks WHERE sha256 = ?1 ORDER BY offset")?;
    let mut rows = statement.query([sha256])?;
    while let Some(row) = rows.next()? {
        let data =
            row.get_ref(0)?.as_blob().map_err(|err| StorageError::Corrupt(format!("media_chunks.data: {err}")))?;
        sink(data);
    }
    Ok(())
}
