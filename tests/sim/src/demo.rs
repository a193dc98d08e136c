//! The demo shift: a mall pickup run (3 stores, 10 drop-offs) walked through
//! its states on a simulated clock, printed as a timeline.

use chrono::{DateTime, Duration, Utc};
use doorstep_core::{
    CoreError, DriverSession, FailureReason, JobEvent, JobEventKind, JobObserver, JobState, ManualClock, SessionOptions,
    Transition,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use uuid::Uuid;

pub const MALL_PICKUP_RUN: &str = include_str!("../../scenarios/mall-pickup-run.json");

/// What the demo did, for tests and for its closing lines.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoReport {
    pub events: usize,
    pub final_states: BTreeMap<JobState, usize>,
    pub observed_changes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error("cannot write the timeline: {0}")]
    Output(#[from] std::io::Error),
}

struct CountingObserver(AtomicU64);

impl JobObserver for CountingObserver {
    fn job_changed(&self, _event: &JobEvent) -> Result<(), String> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Runs the shift against a fresh database at `db_path` and writes the
/// timeline to `out`.
pub fn run(db_path: &Path, out: &mut dyn Write) -> Result<DemoReport, DemoError> {
    let shift_start: DateTime<Utc> = "2026-11-23T16:50:00Z".parse().expect("a valid instant");
    let clock = Arc::new(ManualClock::starting_at(shift_start));
    let session = DriverSession::open_with(db_path, SessionOptions { clock: clock.clone(), ..SessionOptions::default() })?;
    let observer = Arc::new(CountingObserver(AtomicU64::new(0)));
    let subscription = session.subscribe(observer.clone());

    let imported = session.import_document(MALL_PICKUP_RUN.as_bytes())?;
    let jobs = session.jobs()?;
    writeln!(out, "Doorstep demo: mall pickup run, {} jobs from {} stores", imported.jobs.len(), count_stores(&session)?)?;
    writeln!(out, "database: {}", db_path.display())?;
    writeln!(out)?;

    let id_of = |reference: &str| jobs.iter().find(|j| j.reference == reference).map(|j| j.id);
    let by_store = group_by_store(&jobs);
    let act = |minutes: i64, job: Uuid, transition: Transition| -> Result<(), CoreError> {
        clock.advance(Duration::minutes(minutes));
        session.apply(job, transition).map(|_| ())
    };

    // The driver takes the run but turns down the farthest drop-off.
    let declined = id_of("HPM-2410").expect("the sample names HPM-2410");
    act(2, declined, Transition::Decline)?;
    for job in jobs.iter().filter(|j| j.id != declined) {
        act(0, job.id, Transition::Accept)?;
    }
    // One store after another inside the mall: arrive, then take each order.
    for (_store, store_jobs) in &by_store {
        let mut first = true;
        for &job in store_jobs.iter().filter(|&&j| j != declined) {
            act(if first { 6 } else { 1 }, job, Transition::ArriveAtPickup)?;
            first = false;
        }
        for &job in store_jobs.iter().filter(|&&j| j != declined) {
            act(2, job, Transition::ConfirmPickup)?;
        }
    }
    // Drop-offs in route order; one recipient is out, one fails the ID check.
    let out_job = id_of("HPM-2405").expect("the sample names HPM-2405");
    let id_job = id_of("HPM-2406").expect("the sample names HPM-2406");
    for job in jobs.iter().filter(|j| j.id != declined) {
        act(11, job.id, Transition::ArriveAtDropoff)?;
        if job.id == out_job {
            act(4, job.id, Transition::Fail { reason: FailureReason::RecipientUnavailable })?;
        } else if job.id == id_job {
            act(3, job.id, Transition::Fail { reason: FailureReason::IdCheckFailed })?;
            act(1, job.id, Transition::StartReturn)?;
        } else {
            act(3, job.id, Transition::Deliver)?;
        }
    }
    // Second try at the recipient who was out, then the wine back to the store.
    act(9, out_job, Transition::Reattempt)?;
    act(7, out_job, Transition::ArriveAtDropoff)?;
    act(2, out_job, Transition::Deliver)?;
    act(24, id_job, Transition::CompleteReturn)?;

    let references: HashMap<Uuid, &str> = jobs.iter().map(|j| (j.id, j.reference.as_str())).collect();
    let events = session.events_after(0, u32::MAX)?;
    writeln!(out, "{:<10} {:<9} {:<13} {}", "time", "job", "event", "state")?;
    for event in &events {
        writeln!(out, "{}", timeline_line(event, references.get(&event.job_id).copied().unwrap_or("?")))?;
    }

    let final_states = session.jobs()?.iter().fold(BTreeMap::new(), |mut counts, job| {
        *counts.entry(job.state).or_insert(0) += 1;
        counts
    });
    // Observers run on their own thread; give it a moment to catch up.
    wait_for(|| observer.0.load(Ordering::Relaxed) >= events.len() as u64);
    subscription.cancel();
    let report = DemoReport { events: events.len(), final_states, observed_changes: observer.0.load(Ordering::Relaxed) };
    writeln!(out)?;
    let states: Vec<String> = report.final_states.iter().map(|(state, n)| format!("{n} {state}")).collect();
    writeln!(out, "end of shift: {}", states.join(", "))?;
    writeln!(out, "{} events stored durably; the observer saw {} changes", report.events, report.observed_changes)?;
    Ok(report)
}

fn timeline_line(event: &JobEvent, reference: &str) -> String {
    let what = match event.kind {
        JobEventKind::Imported => "imported".to_owned(),
        JobEventKind::Updated => "updated".to_owned(),
        JobEventKind::Reconciled => "reconciled".to_owned(),
        JobEventKind::Transitioned => transition_word(event.from_state, event.to_state).to_owned(),
    };
    let state = match (event.from_state, event.failure) {
        (Some(from), Some(reason)) if event.kind == JobEventKind::Transitioned => {
            format!("{from} -> {} ({})", event.to_state, reason.as_str())
        }
        (Some(from), _) if event.kind == JobEventKind::Transitioned => format!("{from} -> {}", event.to_state),
        _ => event.to_state.to_string(),
    };
    format!("{:<10} {:<9} {:<13} {}", event.at.format("%H:%M UTC"), reference, what, state)
}

fn transition_word(from: Option<JobState>, to: JobState) -> &'static str {
    match (from, to) {
        (Some(JobState::Failed), JobState::PickedUp) => "reattempt",
        (_, JobState::Accepted) => "accept",
        (_, JobState::Declined) => "decline",
        (_, JobState::AtPickup) => "at store",
        (_, JobState::PickedUp) => "picked up",
        (_, JobState::AtDropoff) => "at door",
        (_, JobState::Delivered) => "delivered",
        (_, JobState::Failed) => "failed",
        (_, JobState::Returning) => "returning",
        (_, JobState::Returned) => "returned",
        (_, JobState::Cancelled) => "cancelled",
        (_, JobState::Assigned) => "assigned",
    }
}

fn count_stores(session: &DriverSession) -> Result<usize, CoreError> {
    let names: std::collections::BTreeSet<String> = session.jobs()?.into_iter().map(|j| j.store_name).collect();
    Ok(names.len())
}

fn group_by_store(jobs: &[doorstep_core::JobSummary]) -> BTreeMap<String, Vec<Uuid>> {
    let mut groups: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    for job in jobs {
        groups.entry(job.store_name.clone()).or_default().push(job.id);
    }
    groups
}

fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !done() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
