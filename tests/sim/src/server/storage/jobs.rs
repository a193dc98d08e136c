//! Jobs, their stores, the global change sequence, who held each job, and the
//! conflicts recorded against it.
//!
//! Every write to a job goes through [`insert`] or [`save`], which take a new
//! change sequence number and grow the job's revision: the delta cursor and
//! the revision can never miss a change.

use super::{StorageError, parse_stored, to_i64, to_u64};
use crate::server::wire::{self, JobStatus};
use chrono::{DateTime, Utc};
use doorstep_core::{FailureReason, JobState};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use uuid::Uuid;

/// The server's record of one job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job: wire::Job,
    pub driver_id: String,
    /// `Active` or `Cancelled`; `Reassigned` exists only in a former driver's view.
    pub status: JobStatus,
    pub state: JobState,
    pub failure: Option<FailureReason>,
    pub revision: u64,
    pub change_seq: u64,
}

impl JobRecord {
    /// The status as `driver_id` sees the job: anyone but its current driver
    /// sees it as reassigned away.
    pub fn status_for(&self, driver_id: &str) -> JobStatus {
        if self.driver_id == driver_id { self.status } else { JobStatus::Reassigned }
    }
}

/// What happened to a job, kept in the change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Updated,
    Cancelled,
    Reassigned,
    MutationApplied,
    ConflictRecorded,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Cancelled => "cancelled",
            ChangeKind::Reassigned => "reassigned",
            ChangeKind::MutationApplied => "mutation_applied",
            ChangeKind::ConflictRecorded => "conflict_recorded",
        }
    }
}

const JOB_COLUMNS: &str = "j.body, j.driver_id, j.status, j.state, j.failure, j.revision, j.change_seq";

struct RawJob {
    body: String,
    driver_id: String,
    status: String,
    state: String,
    failure: Option<String>,
    revision: i64,
    change_seq: i64,
}

fn raw_job(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        body: row.get(0)?,
        driver_id: row.get(1)?,
        status: row.get(2)?,
        state: row.get(3)?,
        failure: row.get(4)?,
        revision: row.get(5)?,
        change_seq: row.get(6)?,
    })
}

impl RawJob {
    fn into_record(self) -> Result<JobRecord, StorageError> {
        Ok(JobRecord {
            job: serde_json::from_str(&self.body).map_err(|err| StorageError::Corrupt(format!("jobs.body: {err}")))?,
            driver_id: self.driver_id,
            status: parse_stored("jobs.status", &self.status, JobStatus::parse)?,
            state: parse_stored("jobs.state", &self.state, JobState::parse)?,
            failure: self
                .failure
                .as_deref()
                .map(|name| parse_stored("jobs.failure", name, failure_reason))
                .transpose()?,
            revision: to_u64("jobs.revision", self.revision)?,
            change_seq: to_u64("jobs.change_seq", self.change_seq)?,
        })
    }
}

/// A failure reason by its wire name, as the core itself spells it.
pub fn failure_reason(name: &str) -> Option<FailureReason> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StorageError> {
    serde_json::to_string(value).map_err(|err| StorageError::Corrupt(format!("cannot encode: {err}")))
}

fn record_change(
    tx: &Transaction<'_>,
    job_id: Uuid,
    kind: ChangeKind,
    now: DateTime<Utc>,
) -> Result<u64, StorageError> {
    tx.execute(
        "INSERT INTO changes (job_id, kind, at) VALUES (?1, ?2, ?3)",
        params![job_id.to_string(), kind.as_str(), now.to_rfc3339()],
    )?;
    to_u64("changes.seq", tx.last_insert_rowid())
}

/// The highest change sequence number so far (0 before any change).
pub fn latest_change_seq(tx: &Transaction<'_>) -> Result<u64, StorageError> {
    let seq: i64 = tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM changes", [], |row| row.get(0))?;
    to_u64("changes.seq", seq)
}

pub fn exists(tx: &Transaction<'_>, job_id: Uuid) -> Result<bool, StorageError> {
    Ok(tx.query_row("SELECT 1 FROM jobs WHERE id = ?1", [job_id.to_string()], |_| Ok(())).optional()?.is_some())
}

pub fn get(tx: &Transaction<'_>, job_id: Uuid) -> Result<Option<JobRecord>, StorageError> {
    let sql = format!("SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = ?1");
    tx.query_row(&sql, [job_id.to_string()], raw_job).optional()?.map(RawJob::into_record).transpose()
}

/// Creates a job assigned to `driver_id`: state assigned, active, revision 1.
pub fn insert(
    tx: &Transaction<'_>,
    job: &wire::Job,
    driver_id: &str,
    now: DateTime<Utc>,
) -> Result<JobRecord, StorageError> {
    let change_seq = record_change(tx, job.id, ChangeKind::Created, now)?;
    let record = JobRecord {
        job: job.clone(),
        driver_id: driver_id.to_owned(),
        status: JobStatus::Active,
        state: JobState::Assigned,
        failure: None,
        revision: 1,
        change_seq,
    };
    tx.execute(
        "INSERT INTO jobs (id, store_id, body, driver_id, status, state, failure, revision, change_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL, ?7, ?8)",
        params![
            job.id.to_string(),
            job.pickup.store_id.to_string(),
            to_json(job)?,
            driver_id,
            record.status.as_str(),
            record.state.as_str(),
            to_i64(record.revision),
            to_i64(change_seq)
        ],
    )?;
    remember_driver(tx, job.id, driver_id)?;
    Ok(record)
}

/// Writes `record` back as one more change of the job: a new change
/// sequence number and the next revision (both updated in `record`).
pub fn save(
    tx: &Transaction<'_>,
    record: &mut JobRecord,
    kind: ChangeKind,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    record.change_seq = record_change(tx, record.job.id, kind, now)?;
    record.revision += 1;
    tx.execute(
        "UPDATE jobs SET store_id = ?2, body = ?3, driver_id = ?4, status = ?5, state = ?6, failure = ?7,
                         revision = ?8, change_seq = ?9
         WHERE id = ?1",
        params![
            record.job.id.to_string(),
            record.job.pickup.store_id.to_string(),
            to_json(&record.job)?,
            record.driver_id,
            record.status.as_str(),
            record.state.as_str(),
            record.failure.map(FailureReason::as_str),
            to_i64(record.revision),
            to_i64(record.change_seq)
        ],
    )?;
    remember_driver(tx, record.job.id, &record.driver_id)
}

fn remember_driver(tx: &Transaction<'_>, job_id: Uuid, driver_id: &str) -> Result<(), StorageError> {
    tx.execute(
        "INSERT OR IGNORE INTO job_drivers (driver_id, job_id) VALUES (?1, ?2)",
        params![driver_id, job_id.to_string()],
    )?;
    Ok(())
}

/// Whether `driver_id` ever held the job (and so may hear about it).
pub fn was_held_by(tx: &Transaction<'_>, job_id: Uuid, driver_id: &str) -> Result<bool, StorageError> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM job_drivers WHERE driver_id = ?1 AND job_id = ?2",
            params![driver_id, job_id.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// One page of a driver's delta: the jobs they held whose latest change is
/// after `since`, in change order. Without `since`, only the jobs the driver
/// holds now. Returns at most `limit` jobs and whether more remain.
pub fn delta_page(
    tx: &Transaction<'_>,
    driver_id: &str,
    since: Option<u64>,
    limit: u32,
) -> Result<(Vec<JobRecord>, bool), StorageError> {
    let sql = format!(
        "SELECT {JOB_COLUMNS} FROM job_drivers d JOIN jobs j ON j.id = d.job_id
         WHERE d.driver_id = ?1 AND j.change_seq > ?2 AND (?3 OR j.driver_id = ?1)
         ORDER BY j.change_seq LIMIT ?4"
    );
    let include_former = since.is_some();
    let mut statement = tx.prepare(&sql)?;
    let raw = statement
        .query_map(params![driver_id, to_i64(since.unwrap_or(0)), include_former, i64::from(limit) + 1], raw_job)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut records = raw.into_iter().map(RawJob::into_record).collect::<Result<Vec<_>, _>>()?;
    let has_more = records.len() > limit as usize;
    records.truncate(limit as usize);
    Ok((records, has_more))
}

/// Inserts or replaces a store (stores are kept per id, the latest wins).
pub fn upsert_store(tx: &Transaction<'_>, store: &wire::Store) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO stores (id, body) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
        params![store.id.to_string(), to_json(store)?],
    )?;
    Ok(())
}

pub fn store(tx: &Transaction<'_>, store_id: Uuid) -> Result<Option<wire::Store>, StorageError> {
    let body: Option<String> =
        tx.query_row("SELECT body FROM stores WHERE id = ?1", [store_id.to_string()], |row| row.get(0)).optional()?;
    body.map(|body| serde_json::from_str(&body).map_err(|err| StorageError::Corrupt(format!("stores.body: {err}"))))
        .transpose()
}

pub fn insert_conflict(tx: &Transaction<'_>, job_id: Uuid, conflict: &wire::Conflict) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO conflicts (job_id, mutation_id, client_id, action, server_status, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            job_id.to_string(),
            to_i64(conflict.mutation_id),
            conflict.client_id.to_string(),
            conflict.action,
            conflict.server_status.as_str(),
            conflict.recorded_at.to_rfc3339()
        ],
    )?;
    Ok(())
}

/// The conflicts recorded against a job, oldest first.
pub fn conflicts(tx: &Transaction<'_>, job_id: Uuid) -> Result<Vec<wire::Conflict>, StorageError> {
    let mut statement = tx.prepare(
        "SELECT mutation_id, client_id, action, server_status, recorded_at FROM conflicts WHERE job_id = ?1 ORDER BY id",
    )?;
    let rows = statement
        .query_map([job_id.to_string()], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(mutation_id, client_id, action, server_status, recorded_at)| {
            Ok(wire::Conflict {
                mutation_id: to_u64("conflicts.mutation_id", mutation_id)?,
                client_id: parse_stored("conflicts.client_id", &client_id, |text| Uuid::parse_str(text).ok())?,
                action,
                server_status: parse_stored("conflicts.server_status", &server_status, JobStatus::parse)?,
                recorded_at: parse_stored("conflicts.recorded_at", &recorded_at, parse_instant)?,
            })
        })
        .collect()
}

pub(crate) fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|at| at.with_timezone(&Utc))
}
