//! Who owns what about a job, as pure rules.
//!
//! Dispatch owns assignment, addresses, time windows and cancellation; the
//! device owns physical facts (arrivals, pickup, delivery, failure, returns).
//! Dispatch's view of a job is applied only once the device's own actions on
//! it are acknowledged, so these rules never see a driver's unsent action.

use super::model::{ConflictKind, JobConflict, NextStep};
use super::state::JobState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether the job is still this driver's, as dispatch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServerStatus {
    Active,
    Cancelled,
    Reassigned,
}

/// What the device does with dispatch's view of one of its jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciliation {
    /// Nothing to change beyond the definition.
    Keep,
    /// Dispatch's state wins (the device has nothing pending that says
    /// otherwise, e.g. after an abandoned action).
    AdoptState(JobState),
    /// Dispatch withdrew the job before the driver had the packages.
    Cancel,
    /// Dispatch withdrew the job after the driver acted on it: keep the
    /// driver's facts and show the conflict with what to do next.
    Conflict(JobConflict),
}

/// Decides how dispatch's view of a job meets the device's, once the device
/// has no unacknowledged action on it.
pub fn reconcile(
    local: JobState,
    local_conflict: Option<JobConflict>,
    status: ServerStatus,
    server_state: JobState,
    at: DateTime<Utc>,
) -> Reconciliation {
    let kind = match status {
        ServerStatus::Active if server_state != local => return Reconciliation::AdoptState(server_state),
        ServerStatus::Active => return Reconciliation::Keep,
        ServerStatus::Cancelled => ConflictKind::Cancelled,
        ServerStatus::Reassigned => ConflictKind::Reassigned,
    };
    if local_conflict.is_some() {
        return Reconciliation::Keep;
    }
    match local {
        JobState::Assigned | JobState::Accepted | JobState::AtPickup => Reconciliation::Cancel,
        JobState::Declined | JobState::Returned | JobState::Cancelled => Reconciliation::Keep,
        state => Reconciliation::Conflict(conflict_for(kind, state, at)),
    }
}

/// The conflict a driver sees when dispatch withdrew a job they are in the
/// middle of.
pub fn conflict_for(kind: ConflictKind, local: JobState, at: DateTime<Utc>) -> JobConflict {
    let next_step = if local.driver_has_packages() { NextStep::ReturnToStore } else { NextStep::ContactDispatch };
    JobConflict { kind, next_step, detected_at: at }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2026-11-23T18:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_cancellation_before_pickup_cancels() {
        for local in [JobState::Assigned, JobState::Accepted, JobState::AtPickup] {
            assert_eq!(reconcile(local, None, ServerStatus::Cancelled, local, at()), Reconciliation::Cancel);
        }
    }

    #[test]
    fn a_cancellation_after_pickup_is_a_conflict_with_a_return() {
        let outcome = reconcile(JobState::PickedUp, None, ServerStatus::Cancelled, JobState::PickedUp, at());
        assert_eq!(
            outcome,
            Reconciliation::Conflict(JobConflict { kind: ConflictKind::Cancelled, next_step: NextStep::ReturnToStore, detected_at: at() })
        );
    }

    #[test]
    fn a_delivered_job_taken_away_needs_dispatch() {
        let outcome = reconcile(JobState::Delivered, None, ServerStatus::Reassigned, JobState::Delivered, at());
        assert!(matches!(outcome, Reconciliation::Conflict(JobConflict { next_step: NextStep::ContactDispatch, .. })));
    }

    #[test]
    fn an_active_job_takes_dispatchs_state_only_when_it_differs() {
        assert_eq!(reconcile(JobState::Accepted, None, ServerStatus::Active, JobState::Accepted, at()), Reconciliation::Keep);
        assert_eq!(
            reconcile(JobState::Accepted, None, ServerStatus::Active, JobState::Assigned, at()),
            Reconciliation::AdoptState(JobState::Assigned)
        );
    }
}
