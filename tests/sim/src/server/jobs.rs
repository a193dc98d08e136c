//! Dispatch's side of jobs: assigning them from a `doorstep.dispatch/1`
//! document, changing the fields the server owns, cancelling, reassigning,
//! and the per-driver delta the devices pull.
//!
//! Owns the server's rules for those operations. Validation of job content
//! is the core's (`dispatch::parse_document`), never repeated here; the
//! driver's own actions are [`super::mutations`]'.

use super::AppState;
use super::auth::check_driver_id;
use super::problem::Problem;
use super::storage::StorageError;
use super::storage::jobs::{self as stored, ChangeKind, JobRecord};
use super::wire::{self, AdminJob, AssignJobs, AssignedJobs, DeltaJob, JobStatus, JobUpdate, JobsDelta, Reassign};
use axum::http::StatusCode;
use chrono::Utc;
use doorstep_core::dispatch::{self, DispatchDocument};
use doorstep_core::{CoreError, JobState};
use rusqlite::Transaction;
use serde::Deserialize;
use uuid::Uuid;

pub const DEFAULT_DELTA_LIMIT: u32 = 500;
pub const MAX_DELTA_LIMIT: u32 = 1000;

/// Creates the document's jobs, all assigned to one driver, and keeps the
/// stores they reference. Nothing is written unless every job is new.
pub async fn assign(state: &AppState, request: AssignJobs) -> Result<AssignedJobs, Problem> {
    check_driver_id("driver_id", &request.driver_id)?;
    let document = parse_document(&request.document)?;
    let driver_id = request.driver_id;
    state
        .db
        .call(move |tx| {
            for (index, job) in document.jobs.iter().enumerate() {
                if stored::exists(tx, job.id)? {
                    return Ok(Err(Problem::new(StatusCode::CONFLICT, "job-exists", "The job already exists")
                        .with_field(format!("document.jobs[{index}].id"))
                        .with_detail(format!(
                            "job {} already exists; change it with PATCH /admin/jobs/{}",
                            job.id, job.id
                        ))));
                }
            }
            let now = Utc::now();
            let mut job_ids = Vec::with_capacity(document.jobs.len());
            for job in &document.jobs {
                stored::upsert_store(tx, &wire::Store::from(&job.pickup.store))?;
                stored::insert(tx, &wire::Job::from(job), &driver_id, now)?;
                job_ids.push(job.id);
            }
            Ok(Ok(AssignedJobs { job_ids }))
        })
        .await?
}

/// The core's validation of a document given as JSON; its errors name the
/// field inside the request (`document.jobs[0].dropoff.location.lat`).
fn parse_document(document: &serde_json::Value) -> Result<DispatchDocument, Problem> {
    let bytes = serde_json::to_vec(document)
        .map_err(|err| Problem::bad_request(format!("cannot re-encode the document: {err}")))?;
    dispatch::parse_document(&bytes).map_err(|err| match err {
        CoreError::InvalidInput { field, reason } => {
            let field = if field == "document" { field } else { format!("document.{field}") };
            Problem::invalid(field, reason)
        }
        other => Problem::invalid("document", other.to_string()),
    })
}

/// The server's whole view of a job.
pub async fn view(state: &AppState, job_id: &str) -> Result<AdminJob, Problem> {
    let job_id = parse_job_id(job_id)?;
    state
        .db
        .call(move |tx| match stored::get(tx, job_id)? {
            Some(record) => admin_view(tx, &record).map(Ok),
            None => Ok(Err(no_such_job(job_id))),
        })
        .await?
}

/// Changes the server-owned fields of a job (drop-off address and notes,
/// windows), validated by the core as a one-job document.
pub async fn update(state: &AppState, job_id: &str, update: JobUpdate) -> Result<AdminJob, Problem> {
    let job_id = parse_job_id(job_id)?;
    if update.is_empty() {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-request", "Nothing to change")
            .with_detail("give at least one of address, access_notes, dropoff_window, pickup_window"));
    }
    state
        .db
        .call(move |tx| {
            let Some(mut record) = stored::get(tx, job_id)? else { return Ok(Err(no_such_job(job_id))) };
            let store = stored::store(tx, record.job.pickup.store_id)?
                .ok_or_else(|| StorageError::Corrupt(format!("job {job_id} names a missing store")))?;
            let mut job = record.job.clone();
            apply_update(&mut job, update);
            match revalidate(job, store) {
                Ok(job) => record.job = job,
                Err(problem) => return Ok(Err(problem)),
            }
            stored::save(tx, &mut record, ChangeKind::Updated, Utc::now())?;
            admin_view(tx, &record).map(Ok)
        })
        .await?
}

fn apply_update(job: &mut wire::Job, update: JobUpdate) {
    if let Some(address) = update.address {
        job.dropoff.address = address;
    }
    if let Some(notes) = update.access_notes {
        job.dropoff.access_notes = (!notes.trim().is_empty()).then_some(notes);
    }
    if let Some(window) = update.dropoff_window {
        job.dropoff.window = window;
    }
    if let Some(window) = update.pickup_window {
        job.pickup.window = window;
    }
}

/// Runs a changed job through the core's document validation and returns it
/// canonical; a refusal names the update's own field.
fn revalidate(job: wire::Job, store: wire::Store) -> Result<wire::Job, Problem> {
    let document = serde_json::json!({ "format": dispatch::FORMAT, "stores": [store], "jobs": [job] });
    let bytes =
        serde_json::to_vec(&document).map_err(|err| Problem::bad_request(format!("cannot encode the job: {err}")))?;
    match dispatch::parse_document(&bytes) {
        Ok(parsed) => parsed
            .jobs
            .first()
            .map(wire::Job::from)
            .ok_or_else(|| Problem::internal().with_detail("the core dropped the job")),
        Err(CoreError::InvalidInput { field, reason }) => Err(Problem::invalid(update_field(&field), reason)),
        Err(other) => Err(Problem::invalid("job", other.to_string())),
    }
}

/// Maps the core's path inside the one-job document to the update's field.
fn update_field(core_field: &str) -> String {
    const FIELDS: [(&str, &str); 4] = [
        ("jobs[0].dropoff.window", "dropoff_window"),
        ("jobs[0].pickup.window", "pickup_window"),
        ("jobs[0].dropoff.address", "address"),
        ("jobs[0].dropoff.access_notes", "access_notes"),
    ];
    FIELDS
        .iter()
        .find_map(|(prefix, name)| core_field.strip_prefix(prefix).map(|rest| format!("{name}{rest}")))
        .unwrap_or_else(|| core_field.to_owned())
}

/// Withdraws the job. Its state stays what the device last reported: that is
/// where the packages physically are. Cancelling twice changes nothing.
pub async fn cancel(state: &AppState, job_id: &str) -> Result<AdminJob, Problem> {
    let job_id = parse_job_id(job_id)?;
    state
        .db
        .call(move |tx| {
            let Some(mut record) = stored::get(tx, job_id)? else { return Ok(Err(no_such_job(job_id))) };
            if record.status != JobStatus::Cancelled {
                record.status = JobStatus::Cancelled;
                stored::save(tx, &mut record, ChangeKind::Cancelled, Utc::now())?;
            }
            admin_view(tx, &record).map(Ok)
        })
        .await?
}

/// Gives the job to another driver, starting over from `assigned`; only
/// while the packages are still at the store.
pub async fn reassign(state: &AppState, job_id: &str, request: Reassign) -> Result<AdminJob, Problem> {
    let job_id = parse_job_id(job_id)?;
    check_driver_id("driver_id", &request.driver_id)?;
    state
        .db
        .call(move |tx| {
            let Some(mut record) = stored::get(tx, job_id)? else { return Ok(Err(no_such_job(job_id))) };
            if let Err(problem) = check_reassignable(&record, &request.driver_id) {
                return Ok(Err(problem));
            }
            record.driver_id = request.driver_id;
            record.state = JobState::Assigned;
            record.failure = None;
            stored::save(tx, &mut record, ChangeKind::Reassigned, Utc::now())?;
            admin_view(tx, &record).map(Ok)
        })
        .await?
}

fn check_reassignable(record: &JobRecord, new_driver: &str) -> Result<(), Problem> {
    let refuse = |detail: String| {
        Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "not-reassignable", "The job cannot be reassigned")
            .with_detail(detail))
    };
    if record.status == JobStatus::Cancelled {
        return refuse("the job is cancelled".to_owned());
    }
    if record.driver_id == new_driver {
        return refuse(format!("the job is already assigned to {new_driver}"));
    }
    match record.state {
        JobState::Assigned | JobState::Accepted | JobState::AtPickup | JobState::Declined => Ok(()),
        state => refuse(format!("the job is {state}: its packages were picked up by {}", record.driver_id)),
    }
}

/// The query of `GET /v1/jobs/delta`, as text so that a bad value is our
/// own 400 naming the parameter.
#[derive(Debug, Deserialize)]
pub struct DeltaQuery {
    since: Option<String>,
    limit: Option<String>,
}

/// One page of the driver's job changes after `since` (all the jobs the
/// driver holds, without it).
pub async fn delta(state: &AppState, driver_id: String, query: DeltaQuery) -> Result<JobsDelta, Problem> {
    let since = query.since.as_deref().map(parse_cursor).transpose()?;
    let limit = query.limit.as_deref().map(parse_limit).transpose()?.unwrap_or(DEFAULT_DELTA_LIMIT);
    state
        .db
        .call(move |tx| {
            let (records, has_more) = stored::delta_page(tx, &driver_id, since, limit)?;
            let cursor = match records.last() {
                Some(last) => last.change_seq,
                None => stored::latest_change_seq(tx)?.max(since.unwrap_or(0)),
            };
            let mut stores = Vec::new();
            let mut jobs = Vec::with_capacity(records.len());
            for record in records {
                let store_id = record.job.pickup.store_id;
                if !stores.iter().any(|store: &wire::Store| store.id == store_id) {
                    stores.push(stored::store(tx, store_id)?.ok_or_else(|| {
                        StorageError::Corrupt(format!("job {} names a missing store", record.job.id))
                    })?);
                }
                let status = record.status_for(&driver_id);
                jobs.push(DeltaJob {
                    job: record.job,
                    revision: record.revision,
                    status,
                    state: record.state.as_str().to_owned(),
                });
            }
            Ok(JobsDelta {
                format: wire::DELTA_FORMAT.to_owned(),
                cursor: cursor.to_string(),
                has_more,
                server_time: Utc::now(),
                stores,
                jobs,
            })
        })
        .await
        .map_err(Problem::from)
}

/// A cursor is 1 to 19 digits (so it always fits a u64).
fn parse_cursor(text: &str) -> Result<u64, Problem> {
    let digits = (1..=19).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse::<u64>().ok()).flatten().ok_or_else(|| {
        Problem::bad_request("since must be a cursor returned by this endpoint (1 to 19 digits)").with_field("since")
    })
}

fn parse_limit(text: &str) -> Result<u32, Problem> {
    text.parse::<u32>().ok().filter(|limit| (1..=MAX_DELTA_LIMIT).contains(limit)).ok_or_else(|| {
        Problem::bad_request(format!("limit must be an integer from 1 to {MAX_DELTA_LIMIT}")).with_field("limit")
    })
}

/// A job id in a path; anything but a UUID names no job.
fn parse_job_id(text: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(text).map_err(|_| Problem::not_found(format!("no job has the id {text:?}")))
}

fn no_such_job(job_id: Uuid) -> Problem {
    Problem::not_found(format!("no job {job_id}"))
}

fn admin_view(tx: &Transaction<'_>, record: &JobRecord) -> Result<AdminJob, StorageError> {
    Ok(AdminJob {
        job: record.job.clone(),
        driver_id: record.driver_id.clone(),
        status: record.status,
        state: record.state.as_str().to_owned(),
        revision: record.revision,
        conflicts: stored::conflicts(tx, record.job.id)?,
        records: super::storage::records::for_job(tx, record.job.id)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_errors_name_the_update_field() {
        assert_eq!(update_field("jobs[0].dropoff.window.end"), "dropoff_window.end");
        assert_eq!(update_field("jobs[0].pickup.window.end"), "pickup_window.end");
        assert_eq!(update_field("jobs[0].dropoff.address"), "address");
        assert_eq!(update_field("jobs[0].dropoff.access_notes"), "access_notes");
        assert_eq!(update_field("jobs[0].reference"), "jobs[0].reference");
    }

    #[test]
    fn cursors_and_limits_are_checked() {
        assert_eq!(parse_cursor("0").ok(), Some(0));
        assert_eq!(parse_cursor("9999999999999999999").ok(), Some(9_999_999_999_999_999_999));
        assert!(parse_cursor("").is_err());
        assert!(parse_cursor("-1").is_err());
        assert!(parse_cursor("12345678901234567890").is_err());
        assert_eq!(parse_limit("1").ok(), Some(1));
        assert!(parse_limit("0").is_err());
        assert!(parse_limit("1001").is_err());
        assert!(parse_limit("ten").is_err());
    }
}
