//! Handoff receipts arriving as records: both signatures (the store
//! staff's over the offer, the driver's over its hash) must verify, the
//! readable summary must say what the signed bytes say, and the mutation's
//! job must be one the receipt moved. The core's own verifier does the
//! checking, so the device and the server cannot disagree on the format.

use super::problem::Problem;
use super::wire::MutationRecord;
use doorstep_core::handoff::HandoffReceipt;
use uuid::Uuid;

/// Verifies a receipt sent with a mutation of `job_id`: a receipt is
/// evidence for the jobs it lists and no others.
pub fn verify_for_job(record: &MutationRecord, job_id: Uuid) -> Result<HandoffReceipt, Problem> {
    let receipt =
        HandoffReceipt::from_record_body(&record.body).map_err(|e| Problem::invalid("record.body", e.to_string()))?;
    if receipt.offer.content.jobs.iter().any(|job| job.job_id == job_id) {
        Ok(receipt)
    } else {
        Err(Problem::invalid("record.body.jobs", format!("the receipt does not list job {job_id}")))
    }
}
