//! Bearer tokens: which driver each one stands for.

use super::StorageError;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};

pub fn insert(tx: &Transaction<'_>, token: &str, driver_id: &str, now: DateTime<Utc>) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO tokens (token, driver_id, issued_at) VALUES (?1, ?2, ?3)",
        params![token, driver_id, now.to_rfc3339()],
    )?;
    Ok(())
}

/// The driver a live token belongs to; `None` when unknown or revoked.
pub fn driver_of(tx: &Transaction<'_>, token: &str) -> Result<Option<String>, StorageError> {
    Ok(tx.query_row("SELECT driver_id FROM tokens WHERE token = ?1", [token], |row| row.get(0)).optional()?)
}

/// Revokes a token; revoking an unknown one is not an error.
pub fn delete(tx: &Transaction<'_>, token: &str) -> Result<(), StorageError> {
    tx.execute("DELETE FROM tokens WHERE token = ?1", [token])?;
    Ok(())
}
