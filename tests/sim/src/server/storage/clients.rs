//! Devices (`client_id`s): the last mutation processed for each and the
//! outcome of every mutation processed, the record exactly-once rests on.

use super::{StorageError, parse_stored, to_i64, to_u64};
use crate::server::wire::{self, Outcome};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

/// The last processed mutation id of a client; `None` for a client never seen.
pub fn last_processed(tx: &Transaction<'_>, client_id: Uuid) -> Result<Option<u64>, StorageError> {
    let last: Option<i64> = tx
        .query_row(
            "SELECT last_processed_mutation_id FROM clients WHERE client_id = ?1",
            [client_id.to_string()],
            |row| row.get(0),
        )
        .optional()?;
    last.map(|last| to_u64("clients.last_processed_mutation_id", last)).transpose()
}

pub fn set_last_processed(tx: &Transaction<'_>, client_id: Uuid, mutation_id: u64) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO clients (client_id, last_processed_mutation_id) VALUES (?1, ?2)
         ON CONFLICT (client_id) DO UPDATE SET last_processed_mutation_id = excluded.last_processed_mutation_id",
        params![client_id.to_string(), to_i64(mutation_id)],
    )?;
    Ok(())
}

/// How a mutation went when it was processed; `None` when the server never
/// processed that id (it lies below a gap in the client's ids).
pub fn original_outcome(
    tx: &Transaction<'_>,
    client_id: Uuid,
    mutation_id: u64,
) -> Result<Option<Outcome>, StorageError> {
    let outcome: Option<String> = tx
        .query_row(
            "SELECT outcome FROM processed_mutations WHERE client_id = ?1 AND mutation_id = ?2",
            params![client_id.to_string(), to_i64(mutation_id)],
            |row| row.get(0),
        )
        .optional()?;
    outcome.map(|outcome| parse_stored("processed_mutations.outcome", &outcome, Outcome::parse)).transpose()
}

pub fn record_processed(
    tx: &Transaction<'_>,
    client_id: Uuid,
    mutation: &wire::Mutation,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO processed_mutations
            (client_id, mutation_id, idempotency_key, job_id, action, failure_reason, occurred_at, outcome, processed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            client_id.to_string(),
            to_i64(mutation.mutation_id),
            mutation.idempotency_key,
            mutation.job_id.to_string(),
            mutation.action,
            mutation.failure_reason,
            mutation.occurred_at.to_rfc3339(),
            outcome.as_str(),
            now.to_rfc3339()
        ],
    )?;
    Ok(())
}

/// Every mutation processed for a client, in id order.
pub fn processed(tx: &Transaction<'_>, client_id: Uuid) -> Result<Vec<wire::ProcessedMutation>, StorageError> {
    let mut statement = tx.prepare(
        "SELECT mutation_id, job_id, action, outcome FROM processed_mutations WHERE client_id = ?1 ORDER BY mutation_id",
    )?;
    let rows = statement
        .query_map([client_id.to_string()], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mutation_id, job_id, action, outcome)| {
            Ok(wire::ProcessedMutation {
                mutation_id: to_u64("processed_mutations.mutation_id", mutation_id)?,
                job_id: parse_stored("processed_mutations.job_id", &job_id, |text| Uuid::parse_str(text).ok())?,
                action,
                outcome: parse_stored("processed_mutations.outcome", &outcome, Outcome::parse)?,
            })
        })
        .collect()
}
