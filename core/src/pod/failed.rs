//! Failed delivery: what evidence each reason needs, and what happens next
//! (try again later on the route, or take the packages back to the store).
//! Pure rules over a job and a draft.

use super::draft::PodDraft;
use crate::jobs::{FailureReason, Job, Transition};
use serde::{Deserialize, Serialize};

/// What the driver does with the packages after a failed attempt. Nothing
/// is ever left behind: the packages stay with the driver either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureNextStep {
    /// Keep the packages and try again later on the route.
    Reattempt,
    /// Take the packages back to the store.
    ReturnToStore,
}

impl FailureNextStep {
    pub fn transition(self) -> Transition {
        match self {
            FailureNextStep::Reattempt => Transition::Reattempt,
            FailureNextStep::ReturnToStore => Transition::StartReturn,
        }
    }
}

/// The evidence `reason` needs that `draft` lacks, as stable codes (empty
/// when the failure can be sealed):
/// - `photos`: a photo of the place (the door, the closed business, the
///   damage) when the job asks for photos, except at an unsafe location,
///   where the driver is not asked to stay and take one;
/// - `note`: the driver's words for an unsafe location, a refusal, damage or
///   a wrong address, which a photo does not explain;
/// - `age_check`: an ID check that failed is only a reason on a job with a
///   minimum age, after the driver recorded the check;
/// - `next_step`: an ID check that failed, or a damaged or refused delivery,
///   cannot be attempted again: the packages go back to the store.
pub fn failure_evidence_missing(job: &Job, draft: &PodDraft, reason: FailureReason, next_step: FailureNextStep) -> Vec<&'static str> {
    use FailureReason::*;
    let mut missing = Vec::new();
    let photos_apply = reason != UnsafeLocation;
    if photos_apply && (draft.photos.len() as u32) < job.pod.min_photos.max(1) {
        missing.push("photos");
    }
    if matches!(reason, UnsafeLocation | Refused | Damaged | WrongAddress) && draft.note.is_none() {
        missing.push("note");
    }
    if reason == IdCheckFailed {
        let recorded_failure = draft.age_check.is_some_and(|check| !(check.id_checked && check.meets_minimum));
        if job.pod.minimum_age.is_none() || !recorded_failure {
            missing.push("age_check");
        }
    }
    let final_reason = matches!(reason, IdCheckFailed | Damaged | Refused);
    if final_reason && next_step == FailureNextStep::Reattempt {
        missing.push("next_step");
    }
    missing
}
