//! Store devices: their bearer tokens and the handoff receipts they sent,
//! kept once per receipt hash.

use super::StorageError;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS store_tokens (
    token      TEXT PRIMARY KEY,
    store_id   TEXT NOT NULL,
    issued_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS store_receipts (
    receipt_hash  TEXT PRIMARY KEY,
    store_id      TEXT NOT NULL,
    handoff_id    TEXT NOT NULL,
    body          TEXT NOT NULL,
    received_at   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS store_receipts_by_store ON store_receipts(store_id, received_at);
"#;

pub fn insert_token(tx: &Transaction<'_>, token: &str, store_id: Uuid, now: DateTime<Utc>) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO store_tokens (token, store_id, issued_at) VALUES (?1, ?2, ?3)",
        params![token, store_id.to_string(), now.to_rfc3339()],
    )?;
    Ok(())
}

/// The store a live token belongs to; `None` when unknown.
pub fn store_of(tx: &Transaction<'_>, token: &str) -> Result<Option<Uuid>, StorageError> {
    let store: Option<String> = tx.query_row("SELECT store_id FROM store_tokens WHERE token = ?1", [token], |row| row.get(0)).optional()?;
    store.map(|s| Uuid::parse_str(&s).map_err(|_| StorageError::Corrupt(format!("store token names store {s:?}")))).transpose()
}

/// Keeps a receipt unless one with its hash is already kept; says whether
/// it was new.
pub fn insert_receipt(
    tx: &Transaction<'_>,
    receipt_hash: &str,
    store_id: Uuid,
    handoff_id: Uuid,
    body: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<bool, StorageError> {
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO store_receipts (receipt_hash, store_id, handoff_id, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![receipt_hash, store_id.to_string(), handoff_id.to_string(), body.to_string(), at.to_rfc3339()])?;
    Ok(inserted == 1)
}

/// (receipt hash, handoff id, body, received at) of every receipt a store
/// sent, in the order received.
pub type StoredStoreReceipt = (String, Uuid, serde_json::Value, DateTime<Utc>);

pub fn for_store(tx: &Transaction<'_>, store_id: Uuid) -> Result<Vec<StoredStoreReceipt>, StorageError> {
    let mut stmt = tx.prepare_cached(
        "SELECT receipt_hash, handoff_id, body, received_at FROM store_receipts WHERE store_id = ?1 ORDER BY received_at, receipt_hash",
    )?;
    let rows = stmt.query_map([store_id.to_string()], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?))
    })?;
    rows.map(|row| {
        let (hash, handoff, body, at) = row?;
        let corrupt = |what: &str| StorageError::Corrupt(format!("store receipt {hash}: {what}"));
        Ok((
            hash.clone(),
            Uuid::parse_str(&handoff).map_err(|_| corrupt("handoff id"))?,
            serde_json::from_str(&body).map_err(|_| corrupt("body"))?,
            DateTime::parse_from_rfc3339(&at).map_err(|_| corrupt("time"))?.with_timezone(&Utc),
        ))
    })
    .collect()
}
