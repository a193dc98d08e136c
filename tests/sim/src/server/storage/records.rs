//! Signed records devices sent with their mutations (proofs of delivery,
//! handoff receipts, door audits), kept whole as evidence.

use super::StorageError;
use crate::server::wire::StoredRecord;
use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};
use uuid::Uuid;

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS records (
    client_id    TEXT NOT NULL,
    mutation_id  INTEGER NOT NULL,
    job_id       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    body         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    PRIMARY KEY (client_id, mutation_id)
);
CREATE INDEX IF NOT EXISTS records_by_job ON records(job_id, received_at);
"#;

pub fn insert(
    tx: &Transaction<'_>,
    client_id: Uuid,
    mutation_id: u64,
    job_id: Uuid,
    kind: &str,
    body: &serde_json::Value,
    at: DateTime<Utc>,
) -> Result<(), StorageError> {
    tx.prepare_cached(
        "INSERT INTO records (client_id, mutation_id, job_id, kind, body, received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        client_id.to_string(),
        mutation_id as i64,
        job_id.to_string(),
        kind,
        body.to_string(),
        at.to_rfc3339(),
    ])?;
    Ok(())
}

/// Every record for a job, in the order received.
pub fn for_job(tx: &Transaction<'_>, job_id: Uuid) -> Result<Vec<StoredRecord>, StorageError> {
    let mut stmt = tx.prepare_cached(
        "SELECT client_id, mutation_id, kind, body, received_at FROM records WHERE job_id = ?1 \
         ORDER BY received_at, client_id, mutation_id",
    )?;
    let rows = stmt.query_map([job_id.to_string()], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?, row.get::<_, String>(4)?))
    })?;
    rows.map(|row| {
        let (client_id, mutation_id, kind, body, received_at) = row?;
        let corrupt = |what: &str| StorageError::Corrupt(format!("record {client_id}/{mutation_id}: {what}"));
        Ok(StoredRecord {
            client_id: Uuid::parse_str(&client_id).map_err(|_| corrupt("client id"))?,
            mutation_id: mutation_id as u64,
            kind,
            body: serde_json::from_str(&body).map_err(|_| corrupt("body"))?,
            received_at: DateTime::parse_from_rfc3339(&received_at).map_err(|_| corrupt("time"))?.with_timezone(&Utc),
        })
    })
    .collect()
}
