//! Reads and writes of jobs, packages, stores and job events.

use super::Database;
use crate::dispatch::JobDefinition;
use crate::error::{CoreError, Result};
use crate::jobs::*;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, Row, Transaction, params};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

/// What an import did to one job.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedJob {
    pub job_id: Uuid,
    pub state: JobState,
    /// `Imported` or `Updated`; none when the definition was already known.
    pub event: Option<JobEvent>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ImportOutcome {
    pub jobs: Vec<ImportedJob>,
}

impl ImportOutcome {
    pub fn created(&self) -> usize {
        self.count(Some(JobEventKind::Imported))
    }

    pub fn updated(&self) -> usize {
        self.count(Some(JobEventKind::Updated))
    }

    pub fn unchanged(&self) -> usize {
        self.count(None)
    }

    fn count(&self, kind: Option<JobEventKind>) -> usize {
        self.jobs.iter().filter(|j| j.event.as_ref().map(|e| e.kind) == kind).count()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransitionOutcome {
    pub job: Job,
    pub event: JobEvent,
}

const SUMMARY_COLUMNS: &str = "id, reference, state, store_id, dropoff_address, pickup_start_us, pickup_end_us, \
     dropoff_start_us, dropoff_end_us, package_count, version, conflict";

impl Database {
    /// Writes a whole dispatch document in one transaction: new jobs start
    /// as `assigned`; known jobs get the new definition and keep their state.
    pub fn import(&mut self, definitions: &[JobDefinition], at: DateTime<Utc>) -> Result<ImportOutcome> {
        self.write(|tx| import_in(tx, definitions, at))
    }

    /// Applies one transition durably: the new state and its event row are
    /// committed together or not at all.
    pub fn transition(&mut self, job_id: Uuid, transition: Transition, at: DateTime<Utc>) -> Result<TransitionOutcome> {
        self.write_then_read(
            |tx| driver_transition_in(tx, job_id, transition, at),
            |store, event| Ok(TransitionOutcome { job: store.job(job_id)?, event }),
        )
    }

    /// Applies several transitions in one transaction: all of them, or (on
    /// the first refusal) none.
    pub fn transition_all(&mut self, actions: &[(Uuid, Transition)], at: DateTime<Utc>) -> Result<Vec<JobEvent>> {
        self.write(|tx| actions.iter().map(|&(job_id, transition)| driver_transition_in(tx, job_id, transition, at)).collect())
    }

    pub fn job(&self, job_id: Uuid) -> Result<Job> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT j.reference, j.state, j.failure, j.version, j.updated_at_us, j.pickup_start_us, j.pickup_end_us, \
                        d.dropoff, d.pod, d.route, s.id, s.name, s.address, s.latitude, s.longitude, s.time_zone, s.opening_hours, \
                        j.conflict \
                 FROM jobs j JOIN stores s ON s.id = j.store_id JOIN job_details d ON d.job_id = j.id WHERE j.id = ?1",
            )
            .and_then(|mut stmt| stmt.query_row([job_id.to_string()], RawJob::from_row).optional())
            .map_err(|e| self.classify(e))?
            .ok_or_else(|| CoreError::not_found("job", job_id))?;
        let packages = self.packages(job_id)?;
        row.into_job(self, job_id, packages)
    }

    /// The job list in drop-off order. Read as a plain table scan with the
    /// few store names looked up in memory and sorted here: on a cold open
    /// that is several times faster than an index-ordered join.
    pub fn summaries(&self) -> Result<Vec<JobSummary>> {
        let mut names = self.conn.prepare_cached("SELECT id, name FROM stores").map_err(|e| self.classify(e))?;
        let store_names: std::collections::HashMap<String, String> = names
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.classify(e))?;
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM jobs");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.classify(e))?;
        let rows = stmt.query_map([], RawSummary::from_row).map_err(|e| self.classify(e))?;
        let mut summaries = Vec::with_capacity(self.job_count_hint()?);
        for row in rows {
            summaries.push(row.map_err(|e| self.classify(e)).and_then(|raw| raw.into_summary(self, &store_names))?);
        }
        // Sorting positions rather than the summaries themselves moves each
        // summary once instead of once per merge pass.
        let mut order: Vec<u32> = (0..summaries.len() as u32).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&summaries[a as usize], &summaries[b as usize]);
            (a.dropoff_window.start, &a.reference).cmp(&(b.dropoff_window.start, &b.reference))
        });
        let mut slots: Vec<Option<JobSummary>> = summaries.into_iter().map(Some).collect();
        Ok(order.into_iter().filter_map(|at| slots[at as usize].take()).collect())
    }

    /// About how many jobs the store holds (the highest row id), read
    /// without a scan; the job list's vector is sized by it up front.
    fn job_count_hint(&self) -> Result<usize> {
        let highest: Option<i64> =
            self.conn.prepare_cached("SELECT max(rowid) FROM jobs").and_then(|mut stmt| stmt.query_row([], |row| row.get(0))).map_err(|e| self.classify(e))?;
        Ok(highest.unwrap_or(0).clamp(0, 1 << 20) as usize)
    }

    /// The job's history, oldest first.
    pub fn events(&self, job_id: Uuid) -> Result<Vec<JobEvent>> {
        self.job_exists(job_id)?;
        let mut stmt = self
            .conn
            .prepare_cached(
                "WITH RECURSIVE chain(sequence) AS ( \
                     SELECT last_event FROM jobs WHERE id = ?1 \
                     UNION ALL \
                     SELECT e.previous FROM job_events e JOIN chain c ON e.sequence = c.sequence WHERE e.previous IS NOT NULL) \
                 SELECT e.sequence, e.job_id, e.at_us, e.kind, e.from_state, e.to_state, e.failure \
                 FROM chain c JOIN job_events e ON e.sequence = c.sequence ORDER BY e.sequence",
            )
            .map_err(|e| self.classify(e))?;
        let rows = stmt.query_map([job_id.to_string()], RawEvent::from_row).map_err(|e| self.classify(e))?;
        rows.map(|row| row.map_err(|e| self.classify(e)).and_then(|raw| raw.into_event(self))).collect()
    }

    /// Every event since `after` (exclusive), oldest first, at most `limit`.
    pub fn events_after(&self, after: u64, limit: u32) -> Result<Vec<JobEvent>> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT sequence, job_id, at_us, kind, from_state, to_state, failure FROM job_events \
                 WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
            )
            .map_err(|e| self.classify(e))?;
        let rows = stmt.query_map(params![after as i64, limit], RawEvent::from_row).map_err(|e| self.classify(e))?;
        rows.map(|row| row.map_err(|e| self.classify(e)).and_then(|raw| raw.into_event(self))).collect()
    }

    fn job_exists(&self, job_id: Uuid) -> Result<()> {
        let found = self
            .conn
            .prepare_cached("SELECT 1 FROM jobs WHERE id = ?1")
            .and_then(|mut stmt| stmt.exists([job_id.to_string()]))
            .map_err(|e| self.classify(e))?;
        if found { Ok(()) } else { Err(CoreError::not_found("job", job_id)) }
    }

    fn packages(&self, job_id: Uuid) -> Result<Vec<Package>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, barcode, description, flags FROM packages WHERE job_id = ?1 ORDER BY position")
            .map_err(|e| self.classify(e))?;
        let rows = stmt
            .query_map([job_id.to_string()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?, row.get::<_, String>(3)?))
            })
            .map_err(|e| self.classify(e))?;
        rows.map(|row| {
            let (id, barcode, description, flags) = row.map_err(|e| self.classify(e))?;
            Ok(Package { id: self.uuid(&id)?, barcode, description, flags: self.from_json("package flags", &flags)? })
        })
        .collect()
    }

    pub(super) fn uuid(&self, text: &str) -> Result<Uuid> {
        Uuid::parse_str(text).map_err(|e| self.corrupt(format!("stored id {text:?}: {e}")))
    }

    pub(super) fn state(&self, text: &str) -> Result<JobState> {
        JobState::parse(text).ok_or_else(|| self.corrupt(format!("unknown stored job state {text:?}")))
    }

    pub(super) fn failure(&self, text: Option<String>) -> Result<Option<FailureReason>> {
        text.map(|t| self.from_json("failure reason", &t)).transpose()
    }

    pub(super) fn from_json<T: DeserializeOwned>(&self, what: &str, text: &str) -> Result<T> {
        serde_json::from_str(text).map_err(|e| self.corrupt(format!("stored {what}: {e}")))
    }

    pub(super) fn instant(&self, micros: i64) -> Result<DateTime<Utc>> {
        DateTime::from_timestamp_micros(micros).ok_or_else(|| self.corrupt(format!("stored time {micros} is out of range")))
    }
}

/// An error inside a write transaction, before it is classified against
/// the database's file.
pub(super) enum TxError {
    Core(CoreError),
    Sql(rusqlite::Error),
}

impl From<rusqlite::Error> for TxError {
    fn from(err: rusqlite::Error) -> Self {
        TxError::Sql(err)
    }
}

impl From<CoreError> for TxError {
    fn from(err: CoreError) -> Self {
        TxError::Core(err)
    }
}

fn import_in(tx: &Transaction<'_>, definitions: &[JobDefinition], at: DateTime<Utc>) -> Result<ImportOutcome, TxError> {
    let mut outcome = ImportOutcome::default();
    for (index, definition) in definitions.iter().enumerate() {
        let (event, state) = upsert_definition_in(tx, index, definition, JobState::Assigned, at)?;
        outcome.jobs.push(ImportedJob { job_id: definition.id, state, event });
    }
    Ok(outcome)
}

/// Writes dispatch's definition of a job: a new job starts in
/// `initial_state`; a known one keeps its state. Returns the event written
/// (none when nothing in the definition changed) and the job's state.
pub(super) fn upsert_definition_in(
    tx: &Transaction<'_>,
    index: usize,
    definition: &JobDefinition,
    initial_state: JobState,
    at: DateTime<Utc>,
) -> Result<(Option<JobEvent>, JobState), TxError> {
    upsert_store(tx, &definition.pickup.store)?;
    let id = definition.id.to_string();
    let existing: Option<String> =
        tx.prepare_cached("SELECT state FROM jobs WHERE id = ?1")?.query_row([&id], |row| row.get(0)).optional()?;
    let columns = params![
        id,
        definition.reference,
        definition.pickup.store.id.to_string(),
        definition.pickup.window.start.timestamp_micros(),
        definition.pickup.window.end.timestamp_micros(),
        definition.dropoff.address,
        definition.dropoff.window.start.timestamp_micros(),
        definition.dropoff.window.end.timestamp_micros(),
        definition.packages.len() as i64,
    ];
    let (kind, state) = match existing {
        None => {
            tx.prepare_cached(
                "INSERT INTO jobs (id, reference, store_id, pickup_start_us, pickup_end_us, dropoff_address, \
                 dropoff_start_us, dropoff_end_us, package_count, state, failure, version, updated_at_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, NULL, 0, ?11)",
            )?
            .execute(rusqlite::params_from_iter(
                columns.iter().copied().chain([&initial_state.as_str() as &dyn rusqlite::ToSql, &at.timestamp_micros()]),
            ))?;
            (JobEventKind::Imported, initial_state)
        }
        Some(state_text) => {
            let state = JobState::parse(&state_text)
                .ok_or_else(|| TxError::Core(CoreError::Storage { reason: format!("unknown stored state {state_text:?}") }))?;
            let unchanged: bool = tx
                .prepare_cached("SELECT dropoff = ?2 AND pod = ?3 AND route IS ?4 FROM job_details WHERE job_id = ?1")?
                .query_row(
                    params![id, to_json(&definition.dropoff), to_json(&definition.pod), definition.route.as_ref().map(to_json)],
                    |row| row.get(0),
                )
                .optional()?
                .unwrap_or(false);
            if unchanged && same_summary(tx, definition)? && same_packages(tx, definition)? {
                return Ok((None, state));
            }
            tx.prepare_cached(
                "UPDATE jobs SET reference = ?2, store_id = ?3, pickup_start_us = ?4, pickup_end_us = ?5, \
                 dropoff_address = ?6, dropoff_start_us = ?7, dropoff_end_us = ?8, package_count = ?9, \
                 updated_at_us = ?10 WHERE id = ?1",
            )?
            .execute(rusqlite::params_from_iter(columns.iter().copied().chain([&at.timestamp_micros() as &dyn rusqlite::ToSql])))?;
            tx.prepare_cached("DELETE FROM packages WHERE job_id = ?1")?.execute([&id])?;
            (JobEventKind::Updated, state)
        }
    };
    tx.prepare_cached(
        "INSERT INTO job_details (job_id, dropoff, pod, route) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(job_id) DO UPDATE SET dropoff = ?2, pod = ?3, route = ?4",
    )?
    .execute(params![id, to_json(&definition.dropoff), to_json(&definition.pod), definition.route.as_ref().map(to_json)])?;
    for (position, package) in definition.packages.iter().enumerate() {
        insert_package(tx, definition.id, index, position, package)?;
    }
    let from = (kind == JobEventKind::Updated).then_some(state);
    let event = append_event(tx, definition.id, at, kind, from, state, None)?;
    Ok((Some(event), state))
}

/// Whether the job's list row already says what `definition` says.
fn same_summary(tx: &Transaction<'_>, definition: &JobDefinition) -> Result<bool, TxError> {
    Ok(tx
        .prepare_cached(
            "SELECT 1 FROM jobs WHERE id = ?1 AND reference = ?2 AND store_id = ?3 AND pickup_start_us = ?4 \
             AND pickup_end_us = ?5 AND dropoff_address = ?6 AND dropoff_start_us = ?7 AND dropoff_end_us = ?8",
        )?
        .exists(params![
            definition.id.to_string(),
            definition.reference,
            definition.pickup.store.id.to_string(),
            definition.pickup.window.start.timestamp_micros(),
            definition.pickup.window.end.timestamp_micros(),
            definition.dropoff.address,
            definition.dropoff.window.start.timestamp_micros(),
            definition.dropoff.window.end.timestamp_micros(),
        ])?)
}

fn same_packages(tx: &Transaction<'_>, definition: &JobDefinition) -> Result<bool, TxError> {
    let stored: Vec<(String, String, String, String)> = tx
        .prepare_cached("SELECT id, barcode, description, flags FROM packages WHERE job_id = ?1 ORDER BY position")?
        .query_map([definition.id.to_string()], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let wanted: Vec<(String, String, String, String)> = definition
        .packages
        .iter()
        .map(|p| (p.id.to_string(), p.barcode.clone(), p.description.clone(), to_json(&p.flags)))
        .collect();
    Ok(stored == wanted)
}

fn upsert_store(tx: &Transaction<'_>, store: &crate::jobs::Store) -> Result<(), TxError> {
    tx.prepare_cached(
        "INSERT INTO stores (id, name, address, latitude, longitude, time_zone, opening_hours) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT(id) DO UPDATE SET name = ?2, address = ?3, latitude = ?4, longitude = ?5, \
         time_zone = ?6, opening_hours = ?7",
    )?
    .execute(params![
        store.id.to_string(),
        store.name,
        store.address,
        store.location.latitude,
        store.location.longitude,
        store.time_zone,
        to_json(&store.opening_hours),
    ])?;
    Ok(())
}

fn insert_package(tx: &Transaction<'_>, job_id: Uuid, job_index: usize, position: usize, package: &Package) -> Result<(), TxError> {
    let holder: Option<(String, String)> = tx
        .prepare_cached("SELECT id, job_id FROM packages WHERE barcode = ?1 OR id = ?2")?
        .query_row(params![package.barcode, package.id.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    if let Some((other_package, other_job)) = holder {
        return Err(TxError::Core(CoreError::invalid(
            format!("jobs[{job_index}].packages[{position}]"),
            format!("barcode or id is already used by package {other_package} of job {other_job}"),
        )));
    }
    tx.prepare_cached(
        "INSERT INTO packages (id, job_id, position, barcode, description, flags) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        package.id.to_string(),
        job_id.to_string(),
        position as i64,
        package.barcode,
        package.description,
        to_json(&package.flags),
    ])?;
    Ok(())
}

/// A driver's action: the state change, its event and its outbox mutation.
fn driver_transition_in(tx: &Transaction<'_>, job_id: Uuid, transition: Transition, at: DateTime<Utc>) -> Result<JobEvent, TxError> {
    driver_transition_with_record_in(tx, job_id, transition, None, at, None).map(|(event, _)| event)
}

/// A driver's action with the signed record that proves it (a sealed proof
/// of delivery, a handoff receipt): the state change, its event and one
/// outbox mutation carrying the record, sent after `depends_on` when given.
/// Returns the event and the mutation's id.
pub(super) fn driver_transition_with_record_in(
    tx: &Transaction<'_>,
    job_id: Uuid,
    transition: Transition,
    record: Option<&super::outbox::Record>,
    at: DateTime<Utc>,
    depends_on: Option<u64>,
) -> Result<(JobEvent, u64), TxError> {
    if !transition.is_driver_action() {
        return Err(TxError::Core(CoreError::invalid("transition", format!("{} comes from dispatch, not the driver", transition.name()))));
    }
    let event = transition_in(tx, job_id, transition, at)?;
    let mutation_id = super::outbox::enqueue_action_in(tx, job_id, transition, record, at, depends_on)?;
    Ok((event, mutation_id))
}

/// A driver action the device infers (an arrival): applied when legal now,
/// skipped when the job has already moved on.
pub(super) fn driver_transition_if_legal_in(
    tx: &Transaction<'_>,
    job_id: Uuid,
    transition: Transition,
    at: DateTime<Utc>,
) -> Result<Option<JobEvent>, TxError> {
    match driver_transition_in(tx, job_id, transition, at) {
        Ok(event) => Ok(Some(event)),
        Err(TxError::Core(CoreError::InvalidTransition { .. } | CoreError::NotFound { .. })) => Ok(None),
        Err(other) => Err(other),
    }
}

pub(super) fn transition_in(tx: &Transaction<'_>, job_id: Uuid, transition: Transition, at: DateTime<Utc>) -> Result<JobEvent, TxError> {
    let id = job_id.to_string();
    let current: Option<(String, Option<String>, i64)> = tx
        .prepare_cached("SELECT state, failure, version FROM jobs WHERE id = ?1")?
        .query_row([&id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let (state_text, failure_text, version) = current.ok_or_else(|| TxError::Core(CoreError::not_found("job", job_id)))?;
    let bad_row = |what: String| TxError::Core(CoreError::Storage { reason: format!("job {job_id}: {what}") });
    let from = JobState::parse(&state_text).ok_or_else(|| bad_row(format!("unknown stored state {state_text:?}")))?;
    let failure: Option<FailureReason> = failure_text
        .map(|text| serde_json::from_str(&text).map_err(|e| bad_row(format!("stored failure reason: {e}"))))
        .transpose()?;
    let step = next_step(from, failure, transition)?;
    tx.prepare_cached("UPDATE jobs SET state = ?2, failure = ?3, version = ?4, updated_at_us = ?5 WHERE id = ?1")?.execute(params![
        id,
        step.state.as_str(),
        step.failure.as_ref().map(to_json),
        version + 1,
        at.timestamp_micros(),
    ])?;
    append_event(tx, job_id, at, JobEventKind::Transitioned, Some(from), step.state, step.failure)
}

/// Sets a job's state to dispatch's, outside the state machine (the device
/// has nothing pending that says otherwise).
pub(super) fn set_state_in(
    tx: &Transaction<'_>,
    job_id: Uuid,
    from: JobState,
    to: JobState,
    kind: JobEventKind,
    at: DateTime<Utc>,
) -> Result<JobEvent, TxError> {
    let bump = i64::from(kind == JobEventKind::Transitioned);
    tx.prepare_cached("UPDATE jobs SET state = ?2, failure = NULL, version = version + ?3, updated_at_us = ?4 WHERE id = ?1")?
        .execute(params![job_id.to_string(), to.as_str(), bump, at.timestamp_micros()])?;
    append_event(tx, job_id, at, kind, Some(from), to, None)
}

pub(super) fn append_event(
    tx: &Transaction<'_>,
    job_id: Uuid,
    at: DateTime<Utc>,
    kind: JobEventKind,
    from_state: Option<JobState>,
    to_state: JobState,
    failure: Option<FailureReason>,
) -> Result<JobEvent, TxError> {
    tx.prepare_cached(
        "INSERT INTO job_events (job_id, at_us, kind, from_state, to_state, failure, previous) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, (SELECT last_event FROM jobs WHERE id = ?1))",
    )?
    .execute(params![
        job_id.to_string(),
        at.timestamp_micros(),
        kind.as_str(),
        from_state.map(JobState::as_str),
        to_state.as_str(),
        failure.as_ref().map(to_json),
    ])?;
    let sequence = tx.last_insert_rowid() as u64;
    // Stored times have microsecond precision; report what was stored.
    let at = DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at);
    Ok(JobEvent { sequence, job_id, at, kind, from_state, to_state, failure })
}

pub(super) fn to_json<T: Serialize>(value: &T) -> String {
    // The model's types are plain data; serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

struct RawJob {
    reference: String,
    state: String,
    failure: Option<String>,
    version: i64,
    updated_at_us: i64,
    pickup_start_us: i64,
    pickup_end_us: i64,
    dropoff: String,
    pod: String,
    route: Option<String>,
    store_id: String,
    store_name: String,
    store_address: String,
    latitude: f64,
    longitude: f64,
    time_zone: String,
    opening_hours: String,
    conflict: Option<String>,
}

impl RawJob {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawJob> {
        Ok(RawJob {
            reference: row.get(0)?,
            state: row.get(1)?,
            failure: row.get(2)?,
            version: row.get(3)?,
            updated_at_us: row.get(4)?,
            pickup_start_us: row.get(5)?,
            pickup_end_us: row.get(6)?,
            dropoff: row.get(7)?,
            pod: row.get(8)?,
            route: row.get(9)?,
            store_id: row.get(10)?,
            store_name: row.get(11)?,
            store_address: row.get(12)?,
            latitude: row.get(13)?,
            longitude: row.get(14)?,
            time_zone: row.get(15)?,
            opening_hours: row.get(16)?,
            conflict: row.get(17)?,
        })
    }

    fn into_job(self, store: &Database, id: Uuid, packages: Vec<Package>) -> Result<Job> {
        Ok(Job {
            id,
            reference: self.reference,
            state: store.state(&self.state)?,
            failure: store.failure(self.failure)?,
            pickup: PickupStop {
                store: crate::jobs::Store {
                    id: store.uuid(&self.store_id)?,
                    name: self.store_name,
                    address: self.store_address,
                    location: GeoPoint { latitude: self.latitude, longitude: self.longitude },
                    time_zone: self.time_zone,
                    opening_hours: store.from_json("opening hours", &self.opening_hours)?,
                },
                window: TimeWindow { start: store.instant(self.pickup_start_us)?, end: store.instant(self.pickup_end_us)? },
            },
            dropoff: store.from_json("drop-off", &self.dropoff)?,
            packages,
            pod: store.from_json("proof-of-delivery requirements", &self.pod)?,
            route: self.route.map(|r| store.from_json("route", &r)).transpose()?,
            conflict: self.conflict.map(|c| store.from_json("conflict", &c)).transpose()?,
            version: self.version as u64,
            updated_at: store.instant(self.updated_at_us)?,
        })
    }
}

struct RawSummary {
    id: String,
    reference: String,
    state: String,
    store_id: String,
    dropoff_address: String,
    times_us: [i64; 4],
    package_count: i64,
    version: i64,
    conflict: Option<String>,
}

impl RawSummary {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawSummary> {
        Ok(RawSummary {
            id: row.get(0)?,
            reference: row.get(1)?,
            state: row.get(2)?,
            store_id: row.get(3)?,
            dropoff_address: row.get(4)?,
            times_us: [row.get(5)?, row.get(6)?, row.get(7)?, row.get(8)?],
            package_count: row.get(9)?,
            version: row.get(10)?,
            conflict: row.get(11)?,
        })
    }

    fn into_summary(self, store: &Database, store_names: &std::collections::HashMap<String, String>) -> Result<JobSummary> {
        let [pickup_start, pickup_end, dropoff_start, dropoff_end] = self.times_us;
        let store_name =
            store_names.get(&self.store_id).cloned().ok_or_else(|| store.corrupt(format!("job names unknown store {}", self.store_id)))?;
        Ok(JobSummary {
            id: store.uuid(&self.id)?,
            reference: self.reference,
            state: store.state(&self.state)?,
            store_name,
            dropoff_address: self.dropoff_address,
            pickup_window: TimeWindow { start: store.instant(pickup_start)?, end: store.instant(pickup_end)? },
            dropoff_window: TimeWindow { start: store.instant(dropoff_start)?, end: store.instant(dropoff_end)? },
            package_count: self.package_count as u32,
            conflict: self.conflict.map(|c| store.from_json("conflict", &c)).transpose()?,
            version: self.version as u64,
        })
    }
}

struct RawEvent {
    sequence: i64,
    job_id: String,
    at_us: i64,
    kind: String,
    from_state: Option<String>,
    to_state: String,
    failure: Option<String>,
}

impl RawEvent {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawEvent> {
        Ok(RawEvent {
            sequence: row.get(0)?,
            job_id: row.get(1)?,
            at_us: row.get(2)?,
            kind: row.get(3)?,
            from_state: row.get(4)?,
            to_state: row.get(5)?,
            failure: row.get(6)?,
        })
    }

    fn into_event(self, store: &Database) -> Result<JobEvent> {
        Ok(JobEvent {
            sequence: self.sequence as u64,
            job_id: store.uuid(&self.job_id)?,
            at: store.instant(self.at_us)?,
            kind: JobEventKind::parse(&self.kind).ok_or_else(|| store.corrupt(format!("unknown event kind {:?}", self.kind)))?,
            from_state: self.from_state.map(|s| store.state(&s)).transpose()?,
            to_state: store.state(&self.to_state)?,
            failure: store.failure(self.failure)?,
        })
    }
}
