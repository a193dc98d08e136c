//! The outbox of driver actions and the device's sync state.
//!
//! A driver action is enqueued in the same transaction as the state change
//! it records (see `jobs::transition_in`), so an action is never committed
//! without its mutation nor a mutation without its action.

use super::Database;
use super::jobs::{TxError, append_event, set_state_in, to_json, upsert_definition_in};
use crate::dispatch::ServerJob;
use crate::error::{CoreError, Result};
use crate::jobs::*;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Transaction, params};
use uuid::Uuid;

/// One driver action waiting to reach dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    pub mutation_id: u64,
    pub idempotency_key: String,
    pub job_id: Uuid,
    pub body: MutationBody,
    pub occurred_at: DateTime<Utc>,
    pub status: MutationStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    /// Another mutation that must be acknowledged before this one is sent
    /// (a photo upload before the delivery that cites it).
    pub depends_on: Option<u64>,
}

/// What a mutation tells dispatch.
#[derive(Debug, Clone, PartialEq)]
pub enum MutationBody {
    /// A driver action on the job, with the signed record that proves it
    /// when there is one (a sealed proof of delivery, a handoff receipt).
    Action { transition: Transition, record: Option<Record> },
    /// Evidence that changes no job state (a door audit record).
    Record(Record),
}

impl MutationBody {
    pub fn transition(&self) -> Option<Transition> {
        match self {
            MutationBody::Action { transition, .. } => Some(*transition),
            MutationBody::Record(_) => None,
        }
    }

    pub fn record(&self) -> Option<&Record> {
        match self {
            MutationBody::Action { record, .. } => record.as_ref(),
            MutationBody::Record(record) => Some(record),
        }
    }
}

/// A signed record for dispatch, as canonical JSON text: the outbox sends it
/// byte for byte as it was sealed.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub kind: RecordKind,
    pub body: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    ProofOfDelivery,
    FailedDelivery,
    HandoffReceipt,
    DoorAudit,
}

impl RecordKind {
    pub const ALL: [RecordKind; 4] =
        [RecordKind::ProofOfDelivery, RecordKind::FailedDelivery, RecordKind::HandoffReceipt, RecordKind::DoorAudit];

    /// The stable name stored in the outbox and sent to dispatch.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::ProofOfDelivery => "proof_of_delivery",
            RecordKind::FailedDelivery => "failed_delivery",
            RecordKind::HandoffReceipt => "handoff_receipt",
            RecordKind::DoorAudit => "door_audit",
        }
    }

    pub fn parse(text: &str) -> Option<RecordKind> {
        RecordKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// The `action` of a mutation that carries only a record.
pub const RECORD_ACTION: &str = "record";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MutationStatus {
    /// Will be sent when the network allows.
    Pending,
    /// Dispatch refused it for good; it and later actions on the same job
    /// wait for the driver (or support) to retry or abandon it.
    Wedged,
}

/// What dispatch said about one mutation.
#[derive(Debug, Clone, PartialEq)]
pub enum MutationOutcome {
    /// Applied now or before: done.
    Acknowledged,
    /// Recorded by dispatch as a conflict: the job was withdrawn.
    Conflict { status: ServerStatus },
    /// Refused for good, with dispatch's reason.
    Rejected { reason: String },
}

/// The device's sync bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncState {
    pub client_id: Uuid,
    pub delta_cursor: Option<String>,
    pub server_offset_ms: i64,
    pub last_sync_at: Option<DateTime<Utc>>,
}

impl Database {
    /// Creates the device's identity the first time a database is opened.
    pub(super) fn ensure_device(&mut self) -> Result<()> {
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO device (singleton, client_id, next_mutation_id) VALUES (1, ?1, 1)",
                [Uuid::new_v4().to_string()],
            )?;
            Ok(())
        })
    }

    pub fn sync_state(&self) -> Result<SyncState> {
        let (client_id, delta_cursor, server_offset_ms, last_sync): (String, Option<String>, i64, Option<i64>) = self
            .conn
            .query_row("SELECT client_id, delta_cursor, server_offset_ms, last_sync_at_us FROM device", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
            })
            .map_err(|e| self.classify(e))?;
        Ok(SyncState {
            client_id: self.uuid(&client_id)?,
            delta_cursor,
            server_offset_ms,
            last_sync_at: last_sync.map(|us| self.instant(us)).transpose()?,
        })
    }

    /// Every mutation not yet acknowledged, oldest first.
    pub fn outbox(&self) -> Result<Vec<Mutation>> {
        self.mutations(
            "SELECT mutation_id, idempotency_key, job_id, action, failure, occurred_at_us, status, attempts, last_error, depends_on, \
                    record_kind, record_body \
             FROM outbox ORDER BY mutation_id LIMIT ?1",
            u32::MAX,
        )
    }

    /// The next mutations to send: pending ones, oldest first, leaving out any
    /// that follow a wedged mutation of the same job and any whose dependency
    /// is still in the outbox. A dependent keeps its place in the queue, so
    /// once its dependency is acknowledged it goes before later mutations.
    pub fn sendable(&self, limit: u32) -> Result<Vec<Mutation>> {
        self.mutations(
            "SELECT mutation_id, idempotency_key, job_id, action, failure, occurred_at_us, status, attempts, last_error, depends_on, \
                    record_kind, record_body \
             FROM outbox o WHERE status = 'pending' \
               AND NOT EXISTS (SELECT 1 FROM outbox w WHERE w.job_id = o.job_id AND w.status = 'wedged' AND w.mutation_id < o.mutation_id) \
               AND (o.depends_on IS NULL OR NOT EXISTS (SELECT 1 FROM outbox d WHERE d.mutation_id = o.depends_on)) \
             ORDER BY mutation_id LIMIT ?1",
            limit,
        )
    }

    pub fn outbox_counts(&self) -> Result<(u32, u32)> {
        self.conn
            .query_row(
                "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'wedged') FROM outbox",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .map_err(|e| self.classify(e))
    }

    fn mutations(&self, sql: &str, limit: u32) -> Result<Vec<Mutation>> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<String>>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, String>(6)?,
                    row.get::<_, i64>(7)?,
                    row.get::<_, Option<String>>(8)?,
                    row.get::<_, Option<i64>>(9)?,
                    row.get::<_, Option<String>>(10)?,
                    row.get::<_, Option<String>>(11)?,
                ))
            })
            .map_err(|e| self.classify(e))?;
        rows.map(|row| {
            let (id, key, job, action, failure, at, status, attempts, last_error, depends_on, record_kind, record_body) =
                row.map_err(|e| self.classify(e))?;
            let record = match (record_kind, record_body) {
                (Some(kind), Some(body)) => Some(Record {
                    kind: RecordKind::parse(&kind).ok_or_else(|| self.corrupt(format!("outbox record kind {kind:?}")))?,
                    body,
                }),
                (None, None) => None,
                _ => return Err(self.corrupt(format!("outbox mutation {id} has half a record"))),
            };
            let body = match (action.as_str(), record) {
                (RECORD_ACTION, Some(record)) => MutationBody::Record(record),
                (RECORD_ACTION, None) => return Err(self.corrupt(format!("outbox mutation {id} has no record"))),
                (_, record) => MutationBody::Action {
                    transition: Transition::from_name(&action, self.failure(failure)?)
                        .ok_or_else(|| self.corrupt(format!("outbox action {action:?}")))?,
                    record,
                },
            };
            Ok(Mutation {
                mutation_id: id as u64,
                idempotency_key: key,
                job_id: self.uuid(&job)?,
                body,
                occurred_at: self.instant(at)?,
                status: if status == "wedged" { MutationStatus::Wedged } else { MutationStatus::Pending },
                attempts: attempts as u32,
                last_error,
                depends_on: depends_on.map(|id| id as u64),
            })
        })
        .collect()
    }

    /// Records dispatch's answers, in one transaction: acknowledged and
    /// conflicting mutations leave the outbox, rejected ones are wedged, and
    /// any held-back dispatch view of a job whose outbox just emptied is
    /// applied.
    pub fn record_outcomes(&mut self, outcomes: &[(u64, MutationOutcome)], at: DateTime<Utc>) -> Result<Vec<JobEvent>> {
        self.write(|tx| {
            let mut events = Vec::new();
            let mut touched = Vec::new();
            for (mutation_id, outcome) in outcomes {
                let job: Option<String> = tx
                    .prepare_cached("SELECT job_id FROM outbox WHERE mutation_id = ?1")?
                    .query_row([*mutation_id as i64], |row| row.get(0))
                    .optional()?;
                // Already settled by an earlier answer (a duplicated response).
                let Some(job) = job else { continue };
                let job_id = Uuid::parse_str(&job).map_err(|e| TxError::Core(CoreError::Storage { reason: e.to_string() }))?;
                match outcome {
                    MutationOutcome::Acknowledged => {
                        tx.prepare_cached("DELETE FROM outbox WHERE mutation_id = ?1")?.execute([*mutation_id as i64])?;
                    }
                    MutationOutcome::Conflict { status } => {
                        tx.prepare_cached("DELETE FROM outbox WHERE mutation_id = ?1")?.execute([*mutation_id as i64])?;
                        let kind = if *status == ServerStatus::Reassigned { ConflictKind::Reassigned } else { ConflictKind::Cancelled };
                        if let Some(event) = raise_conflict_in(tx, job_id, kind, at)? {
                            events.push(event);
                        }
                    }
                    MutationOutcome::Rejected { reason } => {
                        tx.prepare_cached("UPDATE outbox SET status = 'wedged', last_error = ?2 WHERE mutation_id = ?1")?
                            .execute(params![*mutation_id as i64, reason])?;
                    }
                }
                touched.push(job_id);
            }
            for job_id in touched {
                events.extend(release_deferred_in(tx, job_id, at)?);
            }
            Ok(events)
        })
    }

    /// Counts a failed attempt to send these mutations.
    pub fn record_attempt(&mut self, mutation_ids: &[u64], error: &str) -> Result<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare_cached("UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE mutation_id = ?1")?;
            for id in mutation_ids {
                stmt.execute(params![*id as i64, error])?;
            }
            Ok(())
        })
    }

    /// Sends a wedged mutation again: it and the actions on its job queued
    /// behind it get new mutation ids (dispatch has already processed the
    /// old one) in their original order.
    pub fn retry_wedged(&mut self, mutation_id: u64) -> Result<()> {
        self.write(|tx| {
            let job = wedged_job(tx, mutation_id)?;
            let later: Vec<i64> = tx
                .prepare_cached("SELECT mutation_id FROM outbox WHERE job_id = ?1 AND mutation_id >= ?2 ORDER BY mutation_id")?
                .query_map(params![job, mutation_id as i64], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for old in later {
                let new = next_mutation_id(tx)?;
                tx.prepare_cached(
                    "UPDATE outbox SET mutation_id = ?2, idempotency_key = ?3, status = 'pending', attempts = 0 WHERE mutation_id = ?1",
                )?
                .execute(params![old, new, Uuid::new_v4().simple().to_string()])?;
                tx.prepare_cached("UPDATE outbox SET depends_on = ?2 WHERE depends_on = ?1")?.execute(params![old, new])?;
            }
            Ok(())
        })
    }

    /// Gives up on a wedged mutation and the actions on its job queued behind
    /// it. The job then takes dispatch's view at the next pull, which starts
    /// from scratch so the job is included.
    pub fn abandon_wedged(&mut self, mutation_id: u64) -> Result<()> {
        self.write(|tx| {
            let job = wedged_job(tx, mutation_id)?;
            // What waits on an abandoned mutation can never be sent either.
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS abandoned (mutation_id INTEGER PRIMARY KEY); DELETE FROM temp.abandoned;",
            )?;
            tx.prepare_cached("INSERT INTO temp.abandoned SELECT mutation_id FROM outbox WHERE job_id = ?1 AND mutation_id >= ?2")?
                .execute(params![job, mutation_id as i64])?;
            tx.execute(
                "INSERT OR IGNORE INTO temp.abandoned \
                 WITH RECURSIVE waiting(id) AS (SELECT mutation_id FROM temp.abandoned \
                   UNION SELECT o.mutation_id FROM outbox o JOIN waiting w ON o.depends_on = w.id) \
                 SELECT id FROM waiting",
                [],
            )?;
            tx.execute("DELETE FROM outbox WHERE mutation_id IN (SELECT mutation_id FROM temp.abandoned)", [])?;
            tx.execute("UPDATE device SET delta_cursor = NULL", [])?;
            Ok(())
        })
    }

    /// Applies a page of dispatch's job changes in one transaction. Jobs with
    /// unacknowledged actions are held back (a write checkpoint) so the
    /// driver never sees their own action undone.
    pub fn apply_delta(
        &mut self,
        jobs: &[ServerJob],
        cursor: &str,
        server_offset_ms: i64,
        at: DateTime<Utc>,
    ) -> Result<Vec<JobEvent>> {
        self.write(|tx| {
            let mut events = Vec::new();
            for (index, job) in jobs.iter().enumerate() {
                if has_pending(tx, job.definition.id)? {
                    tx.prepare_cached(
                        "INSERT INTO deferred_server_jobs (job_id, server_job) VALUES (?1, ?2) \
                         ON CONFLICT(job_id) DO UPDATE SET server_job = ?2",
                    )?
                    .execute(params![job.definition.id.to_string(), to_json(job)])?;
                } else {
                    events.extend(reconcile_in(tx, index, job, at)?);
                }
            }
            tx.prepare_cached("UPDATE device SET delta_cursor = ?1, server_offset_ms = ?2, last_sync_at_us = ?3")?
                .execute(params![cursor, server_offset_ms, at.timestamp_micros()])?;
            Ok(events)
        })
    }
}

/// Queues a driver action, with the record that proves it if any; sent only
/// after `depends_on` (when given) is acknowledged.
pub(crate) fn enqueue_action_in(
    tx: &Transaction<'_>,
    job_id: Uuid,
    transition: Transition,
    record: Option<&Record>,
    at: DateTime<Utc>,
    depends_on: Option<u64>,
) -> Result<u64, TxError> {
    let failure = match transition {
        Transition::Fail { reason } => Some(to_json(&reason)),
        _ => None,
    };
    insert_mutation(tx, job_id, transition.name(), failure, record, at, depends_on)
}

/// Queues a record that changes no job state (a door audit).
pub(crate) fn enqueue_record_in(
    tx: &Transaction<'_>,
    job_id: Uuid,
    record: &Record,
    at: DateTime<Utc>,
    depends_on: Option<u64>,
) -> Result<u64, TxError> {
    insert_mutation(tx, job_id, RECORD_ACTION, None, Some(record), at, depends_on)
}

fn insert_mutation(
    tx: &Transaction<'_>,
    job_id: Uuid,
    action: &str,
    failure: Option<String>,
    record: Option<&Record>,
    at: DateTime<Utc>,
    depends_on: Option<u64>,
) -> Result<u64, TxError> {
    let id = next_mutation_id(tx)?;
    tx.prepare_cached(
        "INSERT INTO outbox (mutation_id, job_id, action, failure, occurred_at_us, idempotency_key, depends_on, \
                             record_kind, record_body) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        id,
        job_id.to_string(),
        action,
        failure,
        at.timestamp_micros(),
        Uuid::new_v4().simple().to_string(),
        depends_on.map(|d| d as i64),
        record.map(|r| r.kind.as_str()),
        record.map(|r| r.body.as_str()),
    ])?;
    Ok(id as u64)
}

/// Ids only grow: above every queued mutation and above every one that ever
/// left the outbox (the floor the `outbox_ids_are_never_reused` trigger
/// keeps), so dispatch never takes a new action for a duplicate.
fn next_mutation_id(tx: &Transaction<'_>) -> Result<i64, TxError> {
    Ok(tx
        .prepare_cached(
            "SELECT max((SELECT next_mutation_id FROM device), coalesce((SELECT max(mutation_id) FROM outbox), 0) + 1)",
        )?
        .query_row([], |row| row.get(0))?)
}

fn wedged_job(tx: &Transaction<'_>, mutation_id: u64) -> Result<String, TxError> {
    let found: Option<(String, String)> = tx
        .prepare_cached("SELECT job_id, status FROM outbox WHERE mutation_id = ?1")?
        .query_row([mutation_id as i64], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match found {
        Some((job, status)) if status == "wedged" => Ok(job),
        Some(_) => Err(TxError::Core(CoreError::invalid("mutation_id", format!("mutation {mutation_id} is not wedged")))),
        None => Err(TxError::Core(CoreError::not_found("mutation", mutation_id))),
    }
}

fn has_pending(tx: &Transaction<'_>, job_id: Uuid) -> Result<bool, TxError> {
    Ok(tx.prepare_cached("SELECT 1 FROM outbox WHERE job_id = ?1")?.exists([job_id.to_string()])?)
}

/// Applies a held-back dispatch view once the job's outbox is empty.
fn release_deferred_in(tx: &Transaction<'_>, job_id: Uuid, at: DateTime<Utc>) -> Result<Vec<JobEvent>, TxError> {
    if has_pending(tx, job_id)? {
        return Ok(Vec::new());
    }
    let held: Option<String> = tx
        .prepare_cached("DELETE FROM deferred_server_jobs WHERE job_id = ?1 RETURNING server_job")?
        .query_row([job_id.to_string()], |row| row.get(0))
        .optional()?;
    let Some(held) = held else { return Ok(Vec::new()) };
    let job: ServerJob = serde_json::from_str(&held)
        .map_err(|e| TxError::Core(CoreError::Storage { reason: format!("held-back job {job_id}: {e}") }))?;
    reconcile_in(tx, 0, &job, at)
}

fn reconcile_in(tx: &Transaction<'_>, index: usize, job: &ServerJob, at: DateTime<Utc>) -> Result<Vec<JobEvent>, TxError> {
    let id = job.definition.id;
    let mut events = Vec::new();
    let (kind, local) = upsert_definition_in(tx, index, &job.definition, job.state, at)?;
    if let Some(event) = kind {
        events.push(event);
    }
    tx.prepare_cached("UPDATE jobs SET server_revision = ?2 WHERE id = ?1")?.execute(params![id.to_string(), job.revision as i64])?;
    let conflict: Option<String> =
        tx.prepare_cached("SELECT conflict FROM jobs WHERE id = ?1")?.query_row([id.to_string()], |row| row.get(0))?;
    let conflict: Option<JobConflict> = conflict.and_then(|text| serde_json::from_str(&text).ok());
    match reconcile(local, conflict, job.status, job.state, at) {
        Reconciliation::Keep => {}
        Reconciliation::AdoptState(state) => events.push(set_state_in(tx, id, local, state, JobEventKind::Reconciled, at)?),
        Reconciliation::Cancel => events.push(set_state_in(tx, id, local, JobState::Cancelled, JobEventKind::Transitioned, at)?),
        Reconciliation::Conflict(conflict) => events.push(write_conflict_in(tx, id, local, conflict, at)?),
    }
    Ok(events)
}

fn raise_conflict_in(tx: &Transaction<'_>, job_id: Uuid, kind: ConflictKind, at: DateTime<Utc>) -> Result<Option<JobEvent>, TxError> {
    let (state, existing): (String, Option<String>) = tx
        .prepare_cached("SELECT state, conflict FROM jobs WHERE id = ?1")?
        .query_row([job_id.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))?;
    if existing.is_some() {
        return Ok(None);
    }
    let state = JobState::parse(&state).ok_or_else(|| TxError::Core(CoreError::Storage { reason: format!("state {state:?}") }))?;
    Ok(Some(write_conflict_in(tx, job_id, state, conflict_for(kind, state, at), at)?))
}

fn write_conflict_in(tx: &Transaction<'_>, job_id: Uuid, state: JobState, conflict: JobConflict, at: DateTime<Utc>) -> Result<JobEvent, TxError> {
    tx.prepare_cached("UPDATE jobs SET conflict = ?2, updated_at_us = ?3 WHERE id = ?1")?
        .execute(params![job_id.to_string(), to_json(&conflict), at.timestamp_micros()])?;
    append_event(tx, job_id, at, JobEventKind::Reconciled, Some(state), state, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::parse_document;

    const SAMPLE: &str = include_str!("../../../tests/scenarios/mall-pickup-run.json");

    impl Database {
        /// A driver action that waits for `depends_on`, as proof of delivery
        /// will queue a delivery behind its photo uploads.
        fn transition_after(&mut self, job: Uuid, transition: Transition, at: DateTime<Utc>, depends_on: u64) -> u64 {
            self.write(|tx| {
                super::super::jobs::transition_in(tx, job, transition, at)?;
                enqueue_action_in(tx, job, transition, None, at, Some(depends_on))
            })
            .unwrap()
        }
    }

    fn sample() -> (tempfile::TempDir, Database, Vec<Uuid>, DateTime<Utc>) {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Database::open(&dir.path().join("t.db")).unwrap();
        let at: DateTime<Utc> = "2026-11-23T17:00:00Z".parse().unwrap();
        let jobs = parse_document(SAMPLE.as_bytes()).unwrap().jobs;
        db.import(&jobs, at).unwrap();
        let ids = jobs.iter().map(|j| j.id).collect();
        (dir, db, ids, at)
    }

    fn sendable_ids(db: &Database) -> Vec<u64> {
        db.sendable(100).unwrap().iter().map(|m| m.mutation_id).collect()
    }

    #[test]
    fn records_travel_with_their_action_or_alone_and_read_back_whole() {
        let (_dir, mut db, ids, at) = sample();
        let receipt = Record { kind: RecordKind::HandoffReceipt, body: r#"{"packages":["A","B"]}"#.into() };
        let audit = Record { kind: RecordKind::DoorAudit, body: r#"{"door":"lobby"}"#.into() };
        db.write(|tx| {
            super::super::jobs::transition_in(tx, ids[0], Transition::Accept, at)?;
            enqueue_action_in(tx, ids[0], Transition::Accept, Some(&receipt), at, None)?;
            enqueue_record_in(tx, ids[0], &audit, at, Some(1))
        })
        .unwrap();
        let bodies: Vec<MutationBody> = db.outbox().unwrap().into_iter().map(|m| m.body).collect();
        assert_eq!(
            bodies,
            [
                MutationBody::Action { transition: Transition::Accept, record: Some(receipt.clone()) },
                MutationBody::Record(audit.clone()),
            ]
        );
        assert_eq!(bodies[1].transition(), None);
        assert_eq!(bodies[1].record(), Some(&audit));
        assert_eq!(sendable_ids(&db), vec![1], "the audit waits for its dependency");
    }

    #[test]
    fn mutation_ids_keep_growing_after_the_outbox_drains_and_a_reopen() {
        let (dir, mut db, ids, at) = sample();
        db.transition(ids[0], Transition::Accept, at).unwrap();
        db.transition(ids[1], Transition::Accept, at).unwrap();
        db.record_outcomes(&[(1, MutationOutcome::Acknowledged), (2, MutationOutcome::Acknowledged)], at).unwrap();
        assert!(db.outbox().unwrap().is_empty());
        drop(db);
        let mut db = Database::open(&dir.path().join("t.db")).unwrap();
        db.transition(ids[2], Transition::Accept, at).unwrap();
        assert_eq!(sendable_ids(&db), vec![3], "an id dispatch has seen is never handed out again");
        db.record_outcomes(&[(3, MutationOutcome::Rejected { reason: "no".into() })], at).unwrap();
        db.retry_wedged(3).unwrap();
        db.transition(ids[3], Transition::Accept, at).unwrap();
        assert_eq!(sendable_ids(&db), vec![4, 5], "a retry takes a fresh id too");
    }

    #[test]
    fn record_kinds_have_stable_names() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(RecordKind::parse("selfie"), None);
    }

    #[test]
    fn a_dependent_waits_for_its_dependency_then_keeps_its_place() {
        let (_dir, mut db, ids, at) = sample();
        let first = db.transition(ids[0], Transition::Accept, at).unwrap().event.sequence;
        assert!(first > 0);
        // 1: accept job 0; 2: accept job 1 waiting on 1; 3: accept job 2.
        let dependent = db.transition_after(ids[1], Transition::Accept, at, 1);
        db.transition(ids[2], Transition::Accept, at).unwrap();
        assert_eq!(dependent, 2);
        assert_eq!(sendable_ids(&db), vec![1, 3]);
        db.record_outcomes(&[(1, MutationOutcome::Acknowledged)], at).unwrap();
        assert_eq!(sendable_ids(&db), vec![2, 3], "promoted ahead of later mutations");
    }

    #[test]
    fn abandoning_a_dependency_drops_what_waits_on_it() {
        let (_dir, mut db, ids, at) = sample();
        db.transition(ids[0], Transition::Accept, at).unwrap();
        let dependent = db.transition_after(ids[1], Transition::Accept, at, 1);
        let grandchild = db.transition_after(ids[2], Transition::Accept, at, dependent);
        db.transition(ids[3], Transition::Accept, at).unwrap();
        db.record_outcomes(&[(1, MutationOutcome::Rejected { reason: "no".into() })], at).unwrap();
        assert_eq!(sendable_ids(&db), vec![4]);
        db.abandon_wedged(1).unwrap();
        let left: Vec<u64> = db.outbox().unwrap().iter().map(|m| m.mutation_id).collect();
        assert_eq!(left, vec![4], "{grandchild} waited on an abandoned mutation");
    }

    #[test]
    fn retrying_a_dependency_keeps_its_dependents_waiting_on_it() {
        let (_dir, mut db, ids, at) = sample();
        db.transition(ids[0], Transition::Accept, at).unwrap();
        db.transition_after(ids[1], Transition::Accept, at, 1);
        db.record_outcomes(&[(1, MutationOutcome::Rejected { reason: "no".into() })], at).unwrap();
        db.retry_wedged(1).unwrap();
        let outbox = db.outbox().unwrap();
        let renumbered = outbox.iter().find(|m| m.job_id == ids[0]).unwrap().mutation_id;
        assert_eq!(renumbered, 3);
        assert_eq!(outbox.iter().find(|m| m.job_id == ids[1]).unwrap().depends_on, Some(3));
        assert_eq!(sendable_ids(&db), vec![3]);
    }
}
