//! The driver's actions, exactly once and in order: `POST /v1/mutations`.
//!
//! Owns the batch rules (validated whole before anything is processed), the
//! mapping from action names to the core's [`Transition`]s, and the outcome
//! of each mutation (applied, duplicate, conflict, rejected). Whether a move
//! is legal is the core's state machine ([`next_step`]), never decided here.
//! A batch is processed inside one transaction: its outcomes, the client's
//! last processed id and the jobs' changes commit together, then the answer
//! goes out.

use super::AppState;
use super::problem::Problem;
use super::storage::jobs::{self as stored, ChangeKind, failure_reason};
use super::records;
use super::storage::records as stored_records;
use super::storage::{StorageError, clients};
use super::wire::{
    AdminClient, Conflict, JobStatus, Mutation, MutationBatch, MutationResult, MutationResults, Outcome,
};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use doorstep_core::{Transition, next_step};
use rusqlite::Transaction;
use uuid::Uuid;

/// Most mutations one batch may carry.
pub const MAX_BATCH: usize = 500;
/// Mutation ids stay exact in every client's JSON numbers (2^53 - 1).
pub const MAX_MUTATION_ID: u64 = 9_007_199_254_740_991;

/// The driver actions a device may send, by the core's transition names.
/// `fail` is mapped separately (it carries a reason); `cancel` is dispatch's,
/// never a driver's.
const DRIVER_TRANSITIONS: [Transition; 9] = [
    Transition::Accept,
    Transition::Decline,
    Transition::ArriveAtPickup,
    Transition::ConfirmPickup,
    Transition::ArriveAtDropoff,
    Transition::Deliver,
    Transition::Reattempt,
    Transition::StartReturn,
    Transition::CompleteReturn,
];

const FAIL: &str = "fail";
/// The action of a mutation that carries only a record (a door audit).
pub const RECORD_ACTION: &str = "record";

/// The transition a mutation asks for, or why it names none (field, detail).
/// A `failure_reason` on any action but `fail` is ignored.
pub fn transition_for(action: &str, failure: Option<&str>) -> Result<Transition, (&'static str, String)> {
    if action == FAIL {
        let name = failure.ok_or(("failure_reason", "the fail action needs a failure_reason".to_owned()))?;
        let reason = failure_reason(name).ok_or(("failure_reason", format!("{name:?} is not a failure reason")))?;
        return Ok(Transition::Fail { reason });
    }
    DRIVER_TRANSITIONS
        .into_iter()
        .find(|transition| transition.name() == action)
        .ok_or(("action", format!("{action:?} is not a driver action")))
}

fn is_idempotency_key(key: &str) -> bool {
    (1..=100).contains(&key.len())
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Checks the whole batch before any of it is processed, and returns each
/// mutation's transition (none for a mutation that carries only a record).
pub fn check_batch(batch: &MutationBatch) -> Result<Vec<Option<Transition>>, Problem> {
    if batch.mutations.is_empty() {
        return Err(Problem::invalid("mutations", "a batch carries at least one mutation"));
    }
    if batch.mutations.len() > MAX_BATCH {
        return Err(Problem::too_large(format!(
            "{} mutations; a batch carries at most {MAX_BATCH}",
            batch.mutations.len()
        ))
        .with_field("mutations"));
    }
    let mut previous_id = 0;
    let mut transitions = Vec::with_capacity(batch.mutations.len());
    for (index, mutation) in batch.mutations.iter().enumerate() {
        let field = |name: &str| format!("mutations[{index}].{name}");
        if !(1..=MAX_MUTATION_ID).contains(&mutation.mutation_id) {
            return Err(Problem::invalid(field("mutation_id"), format!("must be from 1 to {MAX_MUTATION_ID}")));
        }
        if mutation.mutation_id <= previous_id {
            return Err(Problem::invalid(
                field("mutation_id"),
                format!("ids must increase within a batch: {} follows {previous_id}", mutation.mutation_id),
            ));
        }
        previous_id = mutation.mutation_id;
        if !is_idempotency_key(&mutation.idempotency_key) {
            return Err(Problem::invalid(field("idempotency_key"), "must be 1 to 100 of A-Z a-z 0-9 _ . : -"));
        }
        if let Some(record) = &mutation.record {
            records::check(record).map_err(|(name, detail)| Problem::invalid(field(&format!("record.{name}")), detail))?;
        }
        if mutation.action == RECORD_ACTION {
            if mutation.record.is_none() {
                return Err(Problem::invalid(field("record"), "the record action carries a record"));
            }
            transitions.push(None);
            continue;
        }
        let transition = transition_for(&mutation.action, mutation.failure_reason.as_deref())
            .map_err(|(name, detail)| Problem::invalid(field(name), detail))?;
        transitions.push(Some(transition));
    }
    Ok(transitions)
}

/// Processes a batch for the driver: each mutation once, in order.
pub async fn process(state: &AppState, driver_id: String, batch: MutationBatch) -> Result<MutationResults, Problem> {
    let transitions = check_batch(&batch)?;
    Ok(state.db.call(move |tx| process_batch(tx, &driver_id, &batch, &transitions, Utc::now())).await?)
}

/// Everything the server processed for a device: `GET /admin/clients/{id}`.
pub async fn client_record(state: &AppState, client_id: &str) -> Result<AdminClient, Problem> {
    let unknown = || Problem::not_found(format!("no device has sent mutations as {client_id:?}"));
    let id = Uuid::parse_str(client_id).map_err(|_| unknown())?;
    let record = state
        .db
        .call(move |tx| {
            let Some(last) = clients::last_processed(tx, id)? else { return Ok(None) };
            let processed = clients::processed(tx, id)?;
            Ok(Some(AdminClient { client_id: id, last_processed_mutation_id: last, processed }))
        })
        .await?;
    record.ok_or_else(unknown)
}

fn process_batch(
    tx: &Transaction<'_>,
    driver_id: &str,
    batch: &MutationBatch,
    transitions: &[Option<Transition>],
    now: DateTime<Utc>,
) -> Result<MutationResults, StorageError> {
    let client_id = batch.client_id;
    let known_last = clients::last_processed(tx, client_id)?;
    let mut last = known_last.unwrap_or(0);
    let mut results = Vec::with_capacity(batch.mutations.len());
    for (mutation, transition) in batch.mutations.iter().zip(transitions) {
        if mutation.mutation_id <= last {
            results.push(duplicate(tx, driver_id, client_id, mutation)?);
            continue;
        }
        let result = process_one(tx, driver_id, client_id, mutation, *transition, now)?;
        clients::record_processed(tx, client_id, mutation, result.outcome, now)?;
        last = mutation.mutation_id;
        results.push(result);
    }
    if known_last != Some(last) {
        clients::set_last_processed(tx, client_id, last)?;
    }
    Ok(MutationResults { last_processed_mutation_id: last, results })
}

/// A mutation processed before: its stored outcome, nothing changed.
fn duplicate(
    tx: &Transaction<'_>,
    driver_id: &str,
    client_id: Uuid,
    mutation: &Mutation,
) -> Result<MutationResult, StorageError> {
    let mut result = outcome(mutation, Outcome::Duplicate);
    result.outcome_of_original = clients::original_outcome(tx, client_id, mutation.mutation_id)?;
    if let Some(record) = stored::get(tx, mutation.job_id)?
        && stored::was_held_by(tx, mutation.job_id, driver_id)?
    {
        result.job_state = Some(record.state.as_str().to_owned());
        result.job_status = Some(record.status_for(driver_id));
    }
    Ok(result)
}

fn process_one(
    tx: &Transaction<'_>,
    driver_id: &str,
    client_id: Uuid,
    mutation: &Mutation,
    transition: Option<Transition>,
    now: DateTime<Utc>,
) -> Result<MutationResult, StorageError> {
    // A job the driver never held is as unknown to them as one that does not exist.
    let record = match stored::get(tx, mutation.job_id)? {
        Some(record) if stored::was_held_by(tx, mutation.job_id, driver_id)? => record,
        _ => return Ok(rejected(mutation, Problem::unknown_job(mutation.job_id))),
    };
    let mut record = record;
    let status = record.status_for(driver_id);
    // Evidence is kept whatever became of the job since: a door audit or a
    // proof of delivery of a job cancelled meanwhile still happened.
    if let Some(evidence) = &mutation.record {
        if let Err(problem) = records::verify(tx, driver_id, mutation.job_id, evidence) {
            return Ok(rejected(mutation, problem));
        }
        stored_records::insert(tx, client_id, mutation.mutation_id, mutation.job_id, &evidence.kind, &evidence.body, now)?;
    }
    let Some(transition) = transition else {
        let mut result = outcome(mutation, Outcome::Applied);
        result.job_state = Some(record.state.as_str().to_owned());
        result.job_status = Some(status);
        return Ok(result);
    };
    if status != JobStatus::Active {
        let conflict = Conflict {
            mutation_id: mutation.mutation_id,
            client_id,
            action: mutation.action.clone(),
            server_status: status,
            recorded_at: now,
        };
        stored::insert_conflict(tx, record.job.id, &conflict)?;
        stored::save(tx, &mut record, ChangeKind::ConflictRecorded, now)?;
        let mut result = outcome(mutation, Outcome::Conflict);
        result.job_state = Some(record.state.as_str().to_owned());
        result.job_status = Some(status);
        return Ok(result);
    }
    match next_step(record.state, record.failure, transition) {
        Ok(step) => {
            record.state = step.state;
            record.failure = step.failure;
            stored::save(tx, &mut record, ChangeKind::MutationApplied, now)?;
            let mut result = outcome(mutation, Outcome::Applied);
            result.job_state = Some(record.state.as_str().to_owned());
            result.job_status = Some(status);
            Ok(result)
        }
        Err(err) => {
            let problem = Problem::new(StatusCode::CONFLICT, "invalid-transition", "The job cannot make that move")
                .with_detail(err.to_string());
            let mut result = rejected(mutation, problem);
            result.job_state = Some(record.state.as_str().to_owned());
            result.job_status = Some(status);
            Ok(result)
        }
    }
}

fn outcome(mutation: &Mutation, outcome: Outcome) -> MutationResult {
    MutationResult {
        mutation_id: mutation.mutation_id,
        outcome,
        outcome_of_original: None,
        job_state: None,
        job_status: None,
        problem: None,
    }
}

fn rejected(mutation: &Mutation, problem: Problem) -> MutationResult {
    MutationResult { problem: Some(problem), ..outcome(mutation, Outcome::Rejected) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doorstep_core::FailureReason;

    #[test]
    fn every_contract_action_maps_to_its_transition() {
        for action in [
            "accept",
            "decline",
            "arrive_at_pickup",
            "confirm_pickup",
            "arrive_at_dropoff",
            "deliver",
            "reattempt",
            "start_return",
            "complete_return",
        ] {
            assert_eq!(transition_for(action, None).map(Transition::name), Ok(action));
        }
        assert_eq!(transition_for("fail", Some("refused")), Ok(Transition::Fail { reason: FailureReason::Refused }));
    }

    #[test]
    fn unknown_actions_and_reasonless_failures_are_refused() {
        assert_eq!(transition_for("cancel", None).map_err(|(field, _)| field), Err("action"));
        assert_eq!(transition_for("teleport", None).map_err(|(field, _)| field), Err("action"));
        assert_eq!(transition_for("fail", None).map_err(|(field, _)| field), Err("failure_reason"));
        assert_eq!(transition_for("fail", Some("bored")).map_err(|(field, _)| field), Err("failure_reason"));
    }
}
