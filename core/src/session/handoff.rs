//! The driver's side of a store handoff: showing the device key to staff,
//! accepting a scanned offer (checked against the driver's own jobs), and
//! the custody records each job keeps.

use super::DriverSession;
use crate::error::{CoreError, Result};
use crate::handoff::codec::{self, CheckIn, Direction, DiscrepancyKind, Message, SignedOffer};
use crate::handoff::receipt::{self, HandoffReceipt, JobCustody};
use crate::handoff::{OFFER_VALIDITY, custody_of, latest_custody, receipt_hash_bytes, stored_receipt};
use crate::jobs::{Job, JobState, Transition};
use crate::keys;
use crate::store::{Record, RecordKind};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// What the driver's device shows back after accepting an offer.
#[derive(Debug, Clone, PartialEq)]
pub struct AcceptedHandoff {
    /// The text of the QR code staff scan to complete the handoff.
    pub acceptance_code: String,
    /// Hex of the receipt's hash, the same on both devices.
    pub receipt_hash: String,
    pub direction: Direction,
    /// The jobs as they now are (picked up, or returned).
    pub jobs: Vec<Job>,
}

impl DriverSession {
    /// The text of the QR code the driver shows staff on arrival: the
    /// device's public key, so the offer can name it.
    pub fn handoff_check_in_code(&self) -> Result<String> {
        let driver_key = keys::device_public_key(self.device_signer()?.as_ref())?;
        let at = receipt::whole_millis(self.inner.clock.now());
        Ok(codec::to_text(&Message::CheckIn(CheckIn { driver_key, at }))?)
    }

    /// Accepts a scanned handoff offer: checks the staff signature, that the
    /// offer is for this device, fresh and not used before, and that every
    /// package fits the driver's jobs; signs the acceptance with the device
    /// key; then, in one transaction, keeps the receipt and moves each job
    /// (picked up, or returned) with its outbox mutation. Anything wrong is
    /// a typed error and changes nothing.
    #[tracing::instrument(skip_all)]
    pub fn accept_handoff_offer(&self, offer_code: &str) -> Result<AcceptedHandoff> {
        let offer = codec::expect_offer(offer_code)?;
        receipt::verify_offer(&offer)?;
        let signer = self.device_signer()?;
        let own_key = keys::device_public_key(signer.as_ref())?;
        if own_key != offer.content.driver_key {
            return Err(CoreError::HandoffWrongDevice {
                expected_key_id: offer.content.driver_key.key_id(),
                actual_key_id: own_key.key_id(),
            });
        }
        let handoff_id = offer.content.handoff_id;
        let now = self.inner.clock.now();
        let plan = {
            let store = self.store();
            if store.receipt_exists_for_handoff(handoff_id)? {
                return Err(CoreError::HandoffReplayed { handoff_id: handoff_id.to_string() });
            }
            let age = now - offer.content.created_at;
            if age.abs() > OFFER_VALIDITY {
                return Err(CoreError::HandoffExpired { age_seconds: age.num_seconds() });
            }
            let mut owners = HashMap::new();
            for summary in store.summaries()? {
                let job = store.job(summary.id)?;
                for package in &job.packages {
                    owners.insert(package.barcode.clone(), job.reference.clone());
                }
            }
            let mut plan = Vec::with_capacity(offer.content.jobs.len());
            for (index, offered) in offer.content.jobs.iter().enumerate() {
                let job = store.job(offered.job_id)?;
                let previous = match offer.content.direction {
                    Direction::Pickup => None,
                    Direction::Return => latest_custody(&store, job.id, Direction::Pickup)?,
                };
                plan.push((job.id, plan_job(&offer, index, &job, previous.as_ref(), &owners)?));
            }
            plan
        };
        // The platform's key store may prompt or wait: not under the lock.
        let acceptance = receipt::accept_offer(&offer, signer.as_ref(), now)?;
        let receipt = HandoffReceipt::verified(offer, acceptance)?;
        let stored = stored_receipt(&receipt, now)?;
        let record = Record { kind: RecordKind::HandoffReceipt, body: receipt.to_record_body()?.to_string() };
        let mut store = self.store();
        let events = store.accept_handoff(&stored, &record, &plan, now)?;
        self.notify(events);
        let jobs = plan.iter().map(|(job_id, _)| store.job(*job_id)).collect::<Result<Vec<_>>>()?;
        drop(store);
        self.inner.sync.wake();
        tracing::info!(%handoff_id, jobs = jobs.len(), "handoff accepted");
        Ok(AcceptedHandoff {
            acceptance_code: codec::to_text(&Message::Acceptance(receipt.acceptance.clone()))?,
            receipt_hash: keys::hex(&receipt.hash()?),
            direction: receipt.offer.content.direction,
            jobs,
        })
    }

    /// The job's custody chain on this device, oldest first: each handoff
    /// with the packages confirmed in it.
    pub fn handoff_custody(&self, job_id: Uuid) -> Result<Vec<JobCustody>> {
        custody_of(&self.store(), job_id)
    }
}

/// Checks one job of an offer against the driver's job and returns the
/// transitions accepting it makes.
fn plan_job(
    offer: &SignedOffer,
    index: usize,
    job: &Job,
    previous: Option<&JobCustody>,
    owners: &HashMap<String, String>,
) -> Result<Vec<Transition>> {
    let content = &offer.content;
    let offered = &content.jobs[index];
    let mismatch = |reason: String| CoreError::HandoffMismatch { reason };
    if content.jobs.iter().filter(|other| other.job_id == job.id).count() > 1 {
        return Err(mismatch(format!("job {} is listed twice", job.reference)));
    }
    if job.pickup.store.id != content.store_id {
        return Err(mismatch(format!("job {} is not picked up at this store", job.reference)));
    }
    let manifest: Vec<String> = match (content.direction, previous) {
        (Direction::Return, Some(previous)) => previous.confirmed.clone(),
        _ => job.packages.iter().map(|p| p.barcode.clone()).collect(),
    };
    let expected_previous = previous.map(receipt_hash_bytes);
    if offered.previous_receipt != expected_previous {
        return Err(mismatch(format!("job {}: the offer does not follow this device's custody record", job.reference)));
    }
    let mut seen = HashSet::new();
    for barcode in &offered.confirmed {
        if !seen.insert(barcode.as_str()) {
            return Err(CoreError::DuplicateScan { barcode: barcode.clone() });
        }
        if !manifest.contains(barcode) {
            return Err(match owners.get(barcode) {
                Some(reference) if *reference != job.reference => {
                    CoreError::BarcodeOfOtherJob { barcode: barcode.clone(), job_reference: reference.clone() }
                }
                _ => CoreError::UnknownBarcode { barcode: barcode.clone() },
            });
        }
    }
    if offered.confirmed.is_empty() {
        return Err(mismatch(format!("job {}: no package changes hands", job.reference)));
    }
    for discrepancy in &offered.discrepancies {
        if !manifest.contains(&discrepancy.barcode) {
            return Err(CoreError::UnknownBarcode { barcode: discrepancy.barcode.clone() });
        }
        let confirmed = seen.contains(discrepancy.barcode.as_str());
        if (discrepancy.kind == DiscrepancyKind::Missing) == confirmed {
            return Err(mismatch(format!("package {} is both handed over and missing, or damaged and not handed over", discrepancy.barcode)));
        }
    }
    let reported_missing: HashSet<&str> =
        offered.discrepancies.iter().filter(|d| d.kind == DiscrepancyKind::Missing).map(|d| d.barcode.as_str()).collect();
    if let Some(unaccounted) = manifest.iter().find(|b| !seen.contains(b.as_str()) && !reported_missing.contains(b.as_str())) {
        return Err(mismatch(format!("package {unaccounted} of job {} is neither handed over nor reported missing", job.reference)));
    }
    if !reported_missing.is_empty() && offered.partial_reason.is_none() {
        return Err(mismatch(format!("job {} is partial without a reason", job.reference)));
    }
    match (content.direction, job.state) {
        (Direction::Pickup, JobState::Accepted) => Ok(vec![Transition::ArriveAtPickup, Transition::ConfirmPickup]),
        (Direction::Pickup, JobState::AtPickup) => Ok(vec![Transition::ConfirmPickup]),
        (Direction::Pickup, from) => Err(CoreError::InvalidTransition { from, to: JobState::PickedUp }),
        (Direction::Return, JobState::Returning) => Ok(vec![Transition::CompleteReturn]),
        (Direction::Return, from) => Err(CoreError::InvalidTransition { from, to: JobState::Returned }),
    }
}
